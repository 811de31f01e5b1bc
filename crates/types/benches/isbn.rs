//! `cargo bench -p bookstore-types`: how long parsing an ISBN takes, in the shapes clients
//! send (bare ISBN-13, hyphenated ISBN-13, ISBN-10 converted to ISBN-13).

use std::hint::black_box;

use bookstore_types::Isbn;
use criterion::{Criterion, criterion_group, criterion_main};

fn isbn_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("isbn_parse");
    for (name, input) in [
        ("bare_isbn13", "9780306406157"),
        ("hyphenated_isbn13", "978-0-306-40615-7"),
        ("isbn10", "0306406152"),
    ] {
        group.bench_function(name, |b| b.iter(|| Isbn::parse(black_box(input))));
    }
    group.finish();
}

criterion_group!(benches, isbn_parse);
criterion_main!(benches);
