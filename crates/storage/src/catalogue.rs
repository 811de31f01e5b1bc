//! [`SqlCatalogue`]: the catalogue and its reservation journal in SQL.

use bookstore_inventory::{
    Book, BookPage, BookPatch, BookQuery, CatalogueStore, InventoryError, ReservationId,
    ReservedLine, StockLine,
};
use bookstore_types::Isbn;
use chrono::{DateTime, Utc};

use crate::Database;
use crate::database::dispatch;
use crate::failure::unavailable;

/// A [`CatalogueStore`] in a SQL database.
///
/// Listing filters compare keys written beside each book by Rust
/// ([`bookstore_inventory::author_filter_key`], [`bookstore_inventory::text_filter_key`]),
/// so they match exactly the books the in-memory store would, Unicode case folding
/// included. A reservation is one transaction: the journal row, then one conditional update
/// per merged line in ISBN order; the first line that cannot be served rolls it all back.
#[derive(Debug, Clone)]
pub struct SqlCatalogue {
    database: Database,
}

impl SqlCatalogue {
    /// The catalogue kept in `database` (migrated with [`migrate`](crate::migrate)).
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

#[async_trait::async_trait]
impl CatalogueStore for SqlCatalogue {
    async fn insert(&self, book: Book) -> Result<Book, InventoryError> {
        dispatch!(self.database, catalogue::insert(book))
    }

    async fn get(&self, isbn: &Isbn) -> Result<Book, InventoryError> {
        dispatch!(self.database, catalogue::get(isbn))
    }

    async fn update(&self, isbn: &Isbn, patch: BookPatch) -> Result<Book, InventoryError> {
        dispatch!(self.database, catalogue::update(isbn, patch))
    }

    async fn list(&self, query: &BookQuery) -> Result<BookPage, InventoryError> {
        dispatch!(self.database, catalogue::list(query))
    }

    async fn reserve_all(
        &self,
        reservation: ReservationId,
        lines: &[StockLine],
    ) -> Result<Vec<ReservedLine>, InventoryError> {
        dispatch!(self.database, catalogue::reserve_all(reservation, lines))
    }

    async fn confirm_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError> {
        dispatch!(self.database, catalogue::confirm_reservation(reservation))
    }

    async fn cancel_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError> {
        dispatch!(self.database, catalogue::cancel_reservation(reservation))
    }

    async fn reservations_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError> {
        dispatch!(self.database, catalogue::reservations_older_than(cutoff))
    }

    async fn release_all(&self, lines: &[StockLine]) -> Result<(), InventoryError> {
        dispatch!(self.database, catalogue::release_all(lines))
    }

    async fn check_ready(&self) -> Result<(), InventoryError> {
        self.database
            .check_ready()
            .await
            .map_err(unavailable::<InventoryError>)
    }
}
