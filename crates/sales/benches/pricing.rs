//! `cargo bench -p bookstore-sales`: pricing an order ([`order_total`]) of 1, 10 and 100 lines.

use std::hint::black_box;

use bookstore_sales::{OrderLine, order_total};
use bookstore_types::{Currency, Isbn, Money, Quantity};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn order_lines(count: usize) -> Vec<OrderLine> {
    let usd = Currency::parse("USD").expect("a currency");
    (0..count)
        .map(|i| OrderLine {
            isbn: Isbn::parse("9780306406157").expect("a valid ISBN"),
            title: format!("Book {i}"),
            quantity: Quantity::new(3).expect("a quantity"),
            unit_price: Money::from_cents(1999, usd).expect("a price"),
        })
        .collect()
}

fn pricing(c: &mut Criterion) {
    let mut group = c.benchmark_group("order_total");
    for count in [1, 10, 100] {
        let lines = order_lines(count);
        group.bench_with_input(BenchmarkId::from_parameter(count), &lines, |b, lines| {
            b.iter(|| order_total(black_box(lines)));
        });
    }
    group.finish();
}

criterion_group!(benches, pricing);
criterion_main!(benches);
