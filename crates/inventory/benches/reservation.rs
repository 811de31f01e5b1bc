//! `cargo bench -p bookstore-inventory`: one all-or-nothing reservation of five lines on an
//! [`InMemoryCatalogue`] of 10,000 books, confirmed at once so the journal stays small.

use std::hint::black_box;

use bookstore_inventory::{
    Book, CatalogueStore, InMemoryCatalogue, ReservationId, StockLine, generated_catalogue,
    generated_isbn,
};
use bookstore_types::Quantity;
use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;

/// Books in the catalogue.
const BOOKS: u64 = 10_000;

/// A generated catalogue whose stock no run can sell out.
fn catalogue() -> InMemoryCatalogue {
    InMemoryCatalogue::with_books(generated_catalogue(BOOKS).map(|book| Book {
        stock: u32::MAX,
        ..book
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
            isbn: generated_isbn(serial),
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
