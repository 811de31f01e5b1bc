//! The storage interface of the catalogue, [`CatalogueStore`].

use bookstore_types::Isbn;

use crate::{Book, BookPage, BookPatch, BookQuery, InventoryError, ReservedLine, StockLine};

/// Where the catalogue lives: an in-memory map today ([`InMemoryCatalogue`](crate::InMemoryCatalogue)),
/// a database later.
///
/// Every method is atomic with respect to the others, and any method may fail with
/// [`InventoryError::Unavailable`] when the store cannot answer at all.
#[async_trait::async_trait]
pub trait CatalogueStore: Send + Sync + 'static {
    /// Adds a new book and returns it.
    ///
    /// Fails with [`InventoryError::AlreadyExists`] if a book has the same ISBN.
    async fn insert(&self, book: Book) -> Result<Book, InventoryError>;

    /// The book with this ISBN, or [`InventoryError::NotFound`].
    async fn get(&self, isbn: &Isbn) -> Result<Book, InventoryError>;

    /// Applies `patch` to the book with this ISBN in one step and returns the updated book.
    ///
    /// Fails with [`InventoryError::NotFound`] if there is no such book.
    async fn update(&self, isbn: &Isbn, patch: BookPatch) -> Result<Book, InventoryError>;

    /// One page of the books matching `query`, in ISBN order (see [`BookQuery`]).
    async fn list(&self, query: &BookQuery) -> Result<BookPage, InventoryError>;

    /// Takes the stock for every line, or for none.
    ///
    /// Lines with the same ISBN are merged first; their summed quantity must still be a valid
    /// [`Quantity`](bookstore_types::Quantity), else [`InventoryError::QuantityTooLarge`]. Then
    /// every book must exist ([`InventoryError::UnknownBook`]) and have the merged quantity in
    /// stock ([`InventoryError::OutOfStock`] with the merged `requested` amount). Only then is
    /// the stock of every line taken; on any error nothing is taken.
    ///
    /// Returns one [`ReservedLine`] per distinct ISBN, ordered by ISBN, with the title and
    /// price at the moment the stock was taken. An empty `lines` takes nothing and returns
    /// nothing.
    async fn reserve_all(&self, lines: &[StockLine]) -> Result<Vec<ReservedLine>, InventoryError>;

    /// Gives back stock taken by [`reserve_all`](CatalogueStore::reserve_all), for example
    /// when an order is cancelled; all lines or none.
    ///
    /// Lines are merged as in `reserve_all` ([`InventoryError::QuantityTooLarge`]); fails with
    /// [`InventoryError::UnknownBook`] if a book is gone and
    /// [`InventoryError::StockOverflow`] if a stock count would not fit in a `u32`.
    async fn release_all(&self, lines: &[StockLine]) -> Result<(), InventoryError>;

    /// `Ok` when the store can answer queries (a health check).
    async fn check_ready(&self) -> Result<(), InventoryError>;
}
