//! The one error type of the inventory domain.

use bookstore_types::{Isbn, QuantityError};

/// Everything that can go wrong in the catalogue, one variant per cause.
///
/// The gateway maps each variant to one problem response; nothing here knows about HTTP.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// No book has this ISBN (a look-up or an update by ISBN).
    #[error("no book with isbn {isbn}")]
    NotFound {
        /// The ISBN that was asked for.
        isbn: Isbn,
    },
    /// A book with this ISBN is already in the catalogue.
    #[error("a book with isbn {isbn} already exists")]
    AlreadyExists {
        /// The ISBN of the existing book.
        isbn: Isbn,
    },
    /// A stock line names a book that is not in the catalogue.
    #[error("the catalogue has no book with isbn {isbn} to take stock from or give stock back to")]
    UnknownBook {
        /// The ISBN named by the line.
        isbn: Isbn,
    },
    /// There are fewer copies in stock than asked for.
    #[error("not enough stock of isbn {isbn}: requested {requested}, available {available}")]
    OutOfStock {
        /// The book that lacks stock.
        isbn: Isbn,
        /// How many copies were asked for, all lines for this ISBN together.
        requested: u32,
        /// How many copies are in stock.
        available: u32,
    },
    /// A title was empty, too long or contained control characters.
    #[error("invalid title: {reason}")]
    InvalidTitle {
        /// Which rule the title broke.
        reason: &'static str,
    },
    /// An author was empty, too long or contained control characters.
    #[error("invalid author: {reason}")]
    InvalidAuthor {
        /// Which rule the author broke.
        reason: &'static str,
    },
    /// The lines for one ISBN add up to more copies than one order line may ask for.
    #[error("the lines for isbn {isbn} ask for too many copies: {error}")]
    QuantityTooLarge {
        /// The ISBN whose lines were merged.
        isbn: Isbn,
        /// The merged quantity that is out of range.
        error: QuantityError,
    },
    /// Giving stock back would make the stock count larger than it can hold.
    #[error("the stock of isbn {isbn} would exceed the largest count a store can hold")]
    StockOverflow {
        /// The book whose stock would overflow.
        isbn: Isbn,
    },
    /// A reservation with this id is already in the journal; nothing was taken.
    #[error("reservation {reservation} already exists")]
    ReservationExists {
        /// The id that was reused.
        reservation: crate::ReservationId,
    },
    /// The store cannot answer at all (a database is down, say); the cause is attached.
    #[error("the catalogue store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}
