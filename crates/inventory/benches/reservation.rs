//! `cargo bench -p bookstore-inventory`: one all-or-nothing reservation of five lines on an
//! [`InMemoryCatalogue`] of 10,000 books, confirmed at once so the journal stays small.

use std::hint::black_box;

use bookstore_inventory::{
    Author, Book, CatalogueStore, InMemoryCatalogue, ReservationId, StockLine, Title,
};
use bookstore_types::{Currency, Isbn, Money, Quantity};
use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;

/// Books in the catalogue.
const BOOKS: u64 = 10_000;

/// The ISBN-13 `978` + `serial` (nine digits) + its check digit.
fn isbn(serial: u64) -> Isbn {
    let body = format!("978{serial:09}");
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, digit)| u32::from(digit - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    Isbn::parse(&format!("{body}{}", (10 - sum % 10) % 10)).expect("a valid ISBN-13")
}

fn catalogue() -> InMemoryCatalogue {
    let usd = Currency::parse("USD").expect("a currency");
    InMemoryCatalogue::with_books((0..BOOKS).map(|serial| Book {
        isbn: isbn(serial),
        title: Title::parse(format!("Book {serial}")).expect("a title"),
        author: Author::parse("A. Author").expect("an author"),
        price: Money::from_cents(1999, usd).expect("a price"),
        stock: u32::MAX,
    }))
    .expect("distinct ISBNs")
}

fn reserve_five_lines(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let catalogue = catalogue();
    let lines: Vec<StockLine> = [17, 4_242, 9_999, 123, 5_000]
        .into_iter()
        .map(|serial| StockLine {
            isbn: isbn(serial),
            quantity: Quantity::new(1).expect("a quantity"),
        })
        .collect();
    c.bench_function("reserve_all_5_lines_and_confirm", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let reservation = ReservationId::from_uuid(Uuid::new_v4());
                let reserved = catalogue
                    .reserve_all(reservation, black_box(&lines))
                    .await
                    .expect("stock is plentiful");
                catalogue
                    .confirm_reservation(reservation)
                    .await
                    .expect("the reservation exists");
                reserved
            })
        });
    });
}

criterion_group!(benches, reserve_five_lines);
criterion_main!(benches);
