//! Helpers shared by the unit tests: made-up but valid ISBNs and books.

use bookstore_types::{Currency, Isbn, Money, Quantity};

use crate::{Author, Book, ReservationId, StockLine, Title};

/// A valid ISBN-13 made from `number`: `979` and nine digits of the number, plus the check
/// digit. Distinct numbers give distinct ISBNs, and they sort as the numbers do.
pub(crate) fn isbn(number: u32) -> Isbn {
    Isbn::from_first_twelve_digits(&format!("979{number:09}")).unwrap()
}

/// An amount in US cents.
pub(crate) fn usd(cents: i64) -> Money {
    Money::from_cents(cents, Currency::USD).unwrap()
}

/// A book with the ISBN [`isbn`]`(number)`.
pub(crate) fn book(number: u32, title: &str, author: &str, cents: i64, stock: u32) -> Book {
    Book {
        isbn: isbn(number),
        title: Title::parse(title).unwrap(),
        author: Author::parse(author).unwrap(),
        price: usd(cents),
        stock,
    }
}

/// A line asking for `quantity` copies of the book [`isbn`]`(number)`.
pub(crate) fn line(number: u32, quantity: u32) -> StockLine {
    StockLine {
        isbn: isbn(number),
        quantity: Quantity::new(u64::from(quantity)).unwrap(),
    }
}

/// A reservation id never used before.
pub(crate) fn fresh_reservation() -> ReservationId {
    ReservationId::from_uuid(uuid::Uuid::new_v4())
}
