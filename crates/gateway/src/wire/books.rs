//! `/api/books`: the book bodies, the catalogue queries and the admin's requests.

use apistos::{ApiComponent, JsonSchema};
use bookstore_inventory::{Author, Book, BookPatch, Title};
use bookstore_types::{Currency, Isbn, Money};
use serde::{Deserialize, Serialize};

use super::{collect, finish};
use crate::http::problem::{ApiError, FieldError};
use crate::http::reply::SerializesAs;

/// A book in the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Book")]
pub struct BookBody {
    /// ISBN-13, bare 13 digits.
    #[schemars(regex(pattern = r"^97[89][0-9]{10}$"))]
    pub isbn: String,
    /// Title.
    pub title: String,
    /// Author(s).
    pub author: String,
    /// Price in minor units of `currency`.
    #[schemars(range(min = 0))]
    pub price_cents: i64,
    /// ISO 4217 currency code.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// Copies in stock.
    pub stock: u32,
}

impl From<&Book> for BookBody {
    fn from(book: &Book) -> Self {
        Self {
            isbn: book.isbn.to_string(),
            title: book.title.as_str().to_owned(),
            author: book.author.as_str().to_owned(),
            price_cents: book.price.cents(),
            currency: book.price.currency().to_string(),
            stock: book.stock,
        }
    }
}

/// One page of books.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "BookPage", transform = super::next_cursor_is_always_present)]
pub struct BookPageBody {
    /// Books on this page, ordered by ISBN.
    pub items: Vec<BookBody>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A [`Book`] written as a [`BookBody`] straight from the domain type, without copying its
/// strings into one first: the book routes are the hottest, and a page has twenty books.
/// Serializes byte for byte as `BookBody::from(book)` does (a test holds the two together).
#[derive(Debug, Clone, Copy)]
pub struct BookView<'a>(pub &'a Book);

impl Serialize for BookView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let book = self.0;
        let mut body = serializer.serialize_struct("BookBody", 6)?;
        body.serialize_field("isbn", book.isbn.as_str())?;
        body.serialize_field("title", book.title.as_str())?;
        body.serialize_field("author", book.author.as_str())?;
        body.serialize_field("price_cents", &book.price.cents())?;
        body.serialize_field("currency", book.price.currency().as_str())?;
        body.serialize_field("stock", &book.stock)?;
        body.end()
    }
}

impl SerializesAs<BookBody> for BookView<'_> {}

/// A page of books written as a [`BookPageBody`] straight from the domain books (see
/// [`BookView`]).
#[derive(Debug, Clone)]
pub struct BookPageView<'a> {
    /// Books on this page, ordered by ISBN.
    pub books: &'a [Book],
    /// The cursor of the next page.
    pub next_cursor: Option<String>,
}

impl Serialize for BookPageView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Items<'a>(&'a [Book]);
        impl Serialize for Items<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(BookView))
            }
        }
        let mut page = serializer.serialize_struct("BookPageBody", 2)?;
        page.serialize_field("items", &Items(self.books))?;
        page.serialize_field("next_cursor", &self.next_cursor)?;
        page.end()
    }
}

impl SerializesAs<BookPageBody> for BookPageView<'_> {
    fn json_size_hint(&self) -> usize {
        // A generated book is about 150 bytes of JSON; real titles run longer.
        64 + 192 * self.books.len()
    }
}

/// Query parameters of `GET /api/books`.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct ListBooksQuery {
    /// Page size, 1 to 100 (default 20).
    // `skip_serializing_if` only keeps schemars from writing `"default": null`.
    #[serde(
        default,
        deserialize_with = "super::deserialize_limit",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100), extend("format" = "int32", "default" = 20))]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page, passed back as it came (an opaque value).
    pub cursor: Option<String>,
    /// Only books by exactly this author (case-insensitive).
    pub author: Option<String>,
    /// Only books whose title or author contains this text (case-insensitive).
    pub q: Option<String>,
}

/// `POST /api/books`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct NewBookRequest {
    /// ISBN-13 or ISBN-10; hyphens and spaces allowed.
    #[schemars(regex(pattern = r"^[0-9Xx -]{10,17}$"))]
    pub isbn: String,
    /// Title (not blank, at most 500 characters).
    #[schemars(length(min = 1, max = 500), regex(pattern = r"\S"))]
    pub title: String,
    /// Author(s) (not blank, at most 500 characters).
    #[schemars(length(min = 1, max = 500), regex(pattern = r"\S"))]
    pub author: String,
    /// Price in minor units, not negative.
    #[schemars(range(min = 0))]
    pub price_cents: i64,
    /// Copies in stock, not negative.
    #[schemars(range(min = 0, max = 4_294_967_295_i64))]
    pub stock: i64,
    /// ISO 4217 currency code; `USD` when omitted.
    #[schemars(regex(pattern = r"^[A-Za-z]{3}$"))]
    pub currency: Option<String>,
}

fn parse_stock(stock: i64, errors: &mut Vec<FieldError>) -> Option<u32> {
    match u32::try_from(stock) {
        Ok(stock) => Some(stock),
        Err(_) if stock < 0 => {
            errors.push(FieldError::new("stock", "must not be negative"));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(
                "stock",
                format!("must be at most {}", u32::MAX),
            ));
            None
        }
    }
}

impl NewBookRequest {
    /// The book this request describes, or a 422 listing every invalid field.
    pub fn into_book(self) -> Result<Book, ApiError> {
        let mut errors = Vec::new();
        let isbn = collect("isbn", Isbn::parse(&self.isbn), &mut errors);
        let title = collect("title", Title::parse(self.title), &mut errors);
        let author = collect("author", Author::parse(self.author), &mut errors);
        let currency = match self.currency.as_deref() {
            None => Some(Currency::USD),
            Some(code) => collect("currency", Currency::parse(code), &mut errors),
        };
        let price = currency.and_then(|c| {
            collect(
                "price_cents",
                Money::from_cents(self.price_cents, c),
                &mut errors,
            )
        });
        let stock = parse_stock(self.stock, &mut errors);
        match (isbn, title, author, price, stock) {
            (Some(isbn), Some(title), Some(author), Some(price), Some(stock))
                if errors.is_empty() =>
            {
                Ok(Book {
                    isbn,
                    title,
                    author,
                    price,
                    stock,
                })
            }
            // A field that did not parse left its error in `errors`.
            _ => Err(ApiError::validation(errors)),
        }
    }
}

/// `PATCH /api/books/{isbn}`: any of the fields; the others stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "apistos", extend("minProperties" = 1))]
pub struct BookPatchRequest {
    /// New title (not blank, at most 500 characters).
    #[schemars(length(min = 1, max = 500), regex(pattern = r"\S"))]
    pub title: Option<String>,
    /// New author(s) (not blank, at most 500 characters).
    #[schemars(length(min = 1, max = 500), regex(pattern = r"\S"))]
    pub author: Option<String>,
    /// New price in minor units of the book's currency, not negative.
    #[schemars(range(min = 0))]
    pub price_cents: Option<i64>,
    /// New number of copies in stock, not negative.
    #[schemars(range(min = 0, max = 4_294_967_295_i64))]
    pub stock: Option<i64>,
}

impl BookPatchRequest {
    /// The change this request describes (`currency` is the book's), or a 422.
    pub fn into_patch(self, currency: Currency) -> Result<BookPatch, ApiError> {
        let mut errors = Vec::new();
        if self.title.is_none()
            && self.author.is_none()
            && self.price_cents.is_none()
            && self.stock.is_none()
        {
            errors.push(FieldError::new(
                "body",
                "give at least one of title, author, price_cents, stock",
            ));
        }
        let patch = BookPatch {
            title: self
                .title
                .and_then(|t| collect("title", Title::parse(t), &mut errors)),
            author: self
                .author
                .and_then(|a| collect("author", Author::parse(a), &mut errors)),
            price: self.price_cents.and_then(|cents| {
                collect(
                    "price_cents",
                    Money::from_cents(cents, currency),
                    &mut errors,
                )
            }),
            stock: self.stock.and_then(|stock| parse_stock(stock, &mut errors)),
        };
        finish(errors)?;
        Ok(patch)
    }
}

/// A path holding an ISBN (any accepted spelling).
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct IsbnPath {
    /// ISBN-13 or ISBN-10; hyphens and spaces allowed.
    #[schemars(regex(pattern = r"^[0-9Xx -]{10,17}$"))]
    pub isbn: String,
}

impl IsbnPath {
    /// The ISBN, or a 400 for a malformed one.
    pub fn parse(&self) -> Result<Isbn, ApiError> {
        Isbn::parse(&self.isbn)
            .map_err(|error| ApiError::malformed(format!("malformed ISBN in the path: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::cursor;

    fn book(isbn: &str, title: &str, author: &str, cents: i64, currency: &str, stock: u32) -> Book {
        Book {
            isbn: Isbn::parse(isbn).unwrap(),
            title: Title::parse(title).unwrap(),
            author: Author::parse(author).unwrap(),
            price: Money::from_cents(cents, Currency::parse(currency).unwrap()).unwrap(),
            stock,
        }
    }

    #[test]
    fn the_book_views_write_the_same_bytes_as_the_wire_bodies() {
        let books = [
            book("9780306406157", "Plain", "Author", 3999, "USD", 7),
            book(
                "9781593278281",
                r#"Quotes "and" \ back\slashes / é 漢字 🦀"#,
                "Ünïcode",
                0,
                "EUR",
                0,
            ),
            book(
                "9780134685991",
                r"A \t that is not a tab",
                "A, B and C",
                i64::MAX,
                "JPY",
                u32::MAX,
            ),
        ];
        for book in &books {
            assert_eq!(
                serde_json::to_string(&BookView(book)).unwrap(),
                serde_json::to_string(&BookBody::from(book)).unwrap()
            );
        }
        for next_cursor in [None, Some(cursor::for_book(&books[2].isbn))] {
            for count in 0..=books.len() {
                let view = BookPageView {
                    books: &books[..count],
                    next_cursor: next_cursor.clone(),
                };
                let body = BookPageBody {
                    items: books[..count].iter().map(BookBody::from).collect(),
                    next_cursor: next_cursor.clone(),
                };
                assert_eq!(
                    serde_json::to_string(&view).unwrap(),
                    serde_json::to_string(&body).unwrap()
                );
            }
        }
    }

    fn field_errors(error: ApiError) -> Vec<String> {
        error
            .problem()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn new_book_requests_list_every_invalid_field() {
        let request: NewBookRequest = serde_json::from_value(serde_json::json!({
            "isbn": "123", "title": "  ", "author": "A", "price_cents": -1, "stock": -5
        }))
        .unwrap();
        assert_eq!(
            field_errors(request.into_book().unwrap_err()),
            ["isbn", "title", "price_cents", "stock"]
        );
    }
}
