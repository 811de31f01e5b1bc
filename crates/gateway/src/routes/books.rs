//! `/api/books`: browse the catalogue; admins add and change books.

use actix_web::web;
use apistos::api_operation;
use bookstore_inventory::BookQuery;
use bookstore_inventory::PageLimit;

use crate::app::AppState;
use crate::http::auth::{AdminCaller, Caller};
use crate::http::problem::ApiError;
use crate::http::reply::{Created, Reply};
use crate::wire::books::{
    BookBody, BookPageBody, BookPageView, BookPatchRequest, BookView, IsbnPath, ListBooksQuery,
    NewBookRequest,
};
use crate::wire::{cursor, page_limit};

/// Lists books ordered by ISBN, one page at a time.
#[api_operation(
    tag = "books",
    operation_id = "list_books",
    summary = "List books",
    description = "Books ordered by ISBN, `limit` per page. Follow `next_cursor` to visit every book exactly once, even while books are added. Filter with `author` (exact, case-insensitive) and `q` (substring of title or author, case-insensitive).",
    success_description = "A page of books",
    error_code = 400,
    error_code = 401,
    error_code = 429,
    error_code = 503
)]
pub async fn list_books(
    _caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ListBooksQuery>,
) -> Result<Reply<BookPageBody>, ApiError> {
    let query = query.into_inner();
    let limit = PageLimit::new(u64::from(page_limit(query.limit)?))?;
    let after = query
        .cursor
        .as_deref()
        .map(cursor::book_position)
        .transpose()?;
    let page = state
        .catalogue
        .list(&BookQuery {
            after,
            limit,
            author: query.author,
            text: query.q,
        })
        .await?;
    Reply::new(&BookPageView {
        books: &page.books,
        next_cursor: page.next_after.as_ref().map(cursor::for_book),
    })
}

/// Reads one book.
#[api_operation(
    tag = "books",
    operation_id = "get_book",
    summary = "Get a book",
    description = "The ISBN may be ISBN-13 or ISBN-10, with or without hyphens.",
    success_description = "The book",
    error_code = 400,
    error_code = 401,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn get_book(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<IsbnPath>,
) -> Result<Reply<BookBody>, ApiError> {
    let isbn = path.parse()?;
    let book = state.catalogue.get(&isbn).await?;
    Reply::new(&BookView(&book))
}

/// Adds a book (admin).
#[api_operation(
    tag = "books",
    operation_id = "create_book",
    summary = "Add a book",
    description = "Admin only. The ISBN is normalised to 13 digits; `currency` defaults to USD.",
    success_description = "The book as stored",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 409,
    error_code = 413,
    error_code = 415,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
pub async fn create_book(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    body: web::Json<NewBookRequest>,
) -> Result<Created<BookBody>, ApiError> {
    let book = body.into_inner().into_book()?;
    let book = state.catalogue.insert(book).await?;
    Ok(Created::new(&BookView(&book))?.with_location(format!("/api/books/{}", book.isbn)))
}

/// Changes a book (admin).
#[api_operation(
    tag = "books",
    operation_id = "update_book",
    summary = "Change a book",
    description = "Admin only. Any of `title`, `author`, `price_cents`, `stock`; the others are kept. `stock` sets the number of copies. Orders already placed keep their prices and titles.",
    success_description = "The book after the change",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 404,
    error_code = 413,
    error_code = 415,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
pub async fn update_book(
    _admin: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<IsbnPath>,
    body: web::Json<BookPatchRequest>,
) -> Result<Reply<BookBody>, ApiError> {
    let isbn = path.parse()?;
    let current = state.catalogue.get(&isbn).await?;
    let patch = body.into_inner().into_patch(current.price.currency())?;
    let book = state.catalogue.update(&isbn, patch).await?;
    Reply::new(&BookView(&book))
}
