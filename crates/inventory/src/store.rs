//! The storage interface of the catalogue, [`CatalogueStore`].

use bookstore_types::Isbn;
use chrono::{DateTime, Utc};

use crate::{
    Book, BookPage, BookPatch, BookQuery, InventoryError, ReservationId, ReservedLine, StockLine,
};

/// Journal records to settle: reservations and returns, each oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journal {
    /// Reservations (stock taken for an order not yet confirmed or cancelled).
    pub reservations: Vec<ReservationId>,
    /// Returns (stock of a cancelled order not yet given back).
    pub returns: Vec<ReservationId>,
}

/// Where the catalogue lives: an in-memory map ([`InMemoryCatalogue`](crate::InMemoryCatalogue))
/// or a database (the `bookstore-storage` crate).
///
/// Every method is atomic with respect to the others, and any method may fail with
/// [`InventoryError::Unavailable`] when the store cannot answer at all.
///
/// # The reservation journal
///
/// [`reserve_all`](CatalogueStore::reserve_all) records each reservation (its id, its merged
/// lines and when it was made) in the same atomic step that takes the stock. The record stays
/// until [`confirm_reservation`](CatalogueStore::confirm_reservation) (the stock stays taken)
/// or [`cancel_reservation`](CatalogueStore::cancel_reservation) (the stock is given back).
/// A process that dies half-way through an order therefore leaves a journal record behind,
/// which [`reservations_older_than`](CatalogueStore::reservations_older_than) finds later,
/// or, in a store that tracks which process made each record,
/// [`stopped_processes_journal`](CatalogueStore::stopped_processes_journal) as soon as that
/// process is known to have stopped.
///
/// # The return journal
///
/// Giving back the stock of a cancelled order spans other steps (marking the order cancelled,
/// refunding it), so it is journaled too: [`begin_return`](CatalogueStore::begin_return)
/// records the lines to give back under an id, without changing any stock;
/// [`complete_return`](CatalogueStore::complete_return) gives them back and forgets the
/// record in one atomic step, exactly once however often it is called;
/// [`abandon_return`](CatalogueStore::abandon_return) forgets the record and keeps the stock
/// taken. A cancellation cut off by a crash is therefore finished (or abandoned) later from
/// its record, and never gives the same stock back twice.
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

    /// Takes the stock for every line, or for none, and journals the reservation under
    /// `reservation` in the same atomic step.
    ///
    /// Lines with the same ISBN are merged first; their summed quantity must still be a valid
    /// [`Quantity`](bookstore_types::Quantity), else [`InventoryError::QuantityTooLarge`]. Then
    /// every book must exist ([`InventoryError::UnknownBook`]) and have the merged quantity in
    /// stock ([`InventoryError::OutOfStock`] with the merged `requested` amount). Only then is
    /// the stock of every line taken; on any error nothing is taken.
    ///
    /// Returns one [`ReservedLine`] per distinct ISBN, ordered by ISBN, with the title and
    /// price at the moment the stock was taken. An empty `lines` takes nothing and returns
    /// nothing (the id is journaled all the same).
    ///
    /// Fails with [`InventoryError::ReservationExists`] if `reservation` is already in the
    /// journal; nothing is taken then.
    async fn reserve_all(
        &self,
        reservation: ReservationId,
        lines: &[StockLine],
    ) -> Result<Vec<ReservedLine>, InventoryError>;

    /// Forgets the journal record of `reservation`: the stock stays taken for good (the order
    /// was recorded). An id that is not in the journal is `Ok`, so confirming is idempotent.
    async fn confirm_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError>;

    /// Gives back the stock journaled under `reservation` and forgets the record, in one
    /// atomic step. An id that is not in the journal (never made, confirmed or cancelled
    /// already) is `Ok` and gives nothing back: of several concurrent cancels of one
    /// reservation, the stock is given back exactly once.
    ///
    /// Fails as [`release_all`](CatalogueStore::release_all) does; the record is then kept.
    async fn cancel_reservation(&self, reservation: ReservationId) -> Result<(), InventoryError>;

    /// The ids of the journaled reservations made strictly before `cutoff`, oldest first.
    async fn reservations_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError>;

    /// Journals a return of stock taken earlier (a cancelled order's lines) under `id`,
    /// changing no stock yet. Lines are merged as in `reserve_all`
    /// ([`InventoryError::QuantityTooLarge`]). An `id` already in the return journal is `Ok`
    /// and keeps the first record, so a retried cancellation may call this again.
    async fn begin_return(
        &self,
        id: ReservationId,
        lines: &[StockLine],
    ) -> Result<(), InventoryError>;

    /// Gives back the stock of the return journaled under `id` and forgets the record, in one
    /// atomic step. An id not in the return journal (never begun, completed or abandoned
    /// already) is `Ok` and gives nothing back, so the stock comes back exactly once.
    ///
    /// Fails as [`release_all`](CatalogueStore::release_all) does; the record is then kept.
    async fn complete_return(&self, id: ReservationId) -> Result<(), InventoryError>;

    /// Forgets the return journaled under `id` without giving anything back (the
    /// cancellation it belonged to did not happen). An unknown id is `Ok`.
    async fn abandon_return(&self, id: ReservationId) -> Result<(), InventoryError>;

    /// The ids of the journaled returns begun strictly before `cutoff`, oldest first.
    async fn returns_older_than(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ReservationId>, InventoryError>;

    /// The reservations and returns journaled by processes that are known to have stopped
    /// (whatever their age), for a store that several processes share and that tracks which
    /// process wrote each record. A store that lives and dies with its process (the
    /// in-memory one) has none: the default answers an empty journal.
    async fn stopped_processes_journal(&self) -> Result<Journal, InventoryError> {
        Ok(Journal::default())
    }

    /// Gives back stock that is no longer journaled, for example when a confirmed order is
    /// cancelled; all lines or none.
    ///
    /// Lines are merged as in `reserve_all` ([`InventoryError::QuantityTooLarge`]); fails with
    /// [`InventoryError::UnknownBook`] if a book is gone and
    /// [`InventoryError::StockOverflow`] if a stock count would not fit in a `u32`.
    async fn release_all(&self, lines: &[StockLine]) -> Result<(), InventoryError>;

    /// `Ok` when the store can answer queries (a health check).
    async fn check_ready(&self) -> Result<(), InventoryError>;
}
