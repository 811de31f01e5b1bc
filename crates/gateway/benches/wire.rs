//! `cargo bench -p bookstore-gateway --bench wire`: converting a book and an order to their
//! wire types ([`BookBody`], [`OrderBody`]) and serializing them to JSON, as every response
//! that carries one does; and writing books straight from the domain type ([`BookView`],
//! [`BookPageView`]), as the book routes do.

use std::hint::black_box;

use bookstore_gateway::wire::books::{BookBody, BookPageBody, BookPageView, BookView};
use bookstore_gateway::wire::orders::OrderBody;
use bookstore_inventory::{Author, Book, Title};
use bookstore_sales::{CustomerId, Order, OrderLine, Payment, PaymentStatus, TransactionId};
use bookstore_types::{Currency, Isbn, Money, OrderId, Quantity};
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};

fn book() -> Book {
    Book {
        isbn: Isbn::parse("9780306406157").expect("a valid ISBN"),
        title: Title::parse("The Rust Programming Language").expect("a title"),
        author: Author::parse("Steve Klabnik, Carol Nichols").expect("an author"),
        price: Money::from_cents(3999, Currency::parse("USD").expect("a currency"))
            .expect("a price"),
        stock: 100,
    }
}

fn order() -> Order {
    let book = book();
    let lines = (1..=3)
        .map(|quantity| OrderLine {
            isbn: book.isbn,
            title: book.title.as_str().to_owned(),
            quantity: Quantity::new(quantity).expect("a quantity"),
            unit_price: book.price,
        })
        .collect();
    let payment = Payment {
        transaction_id: TransactionId::generate(),
        status: PaymentStatus::Captured,
    };
    Order::confirmed(
        OrderId::generate(),
        CustomerId::new("bench"),
        lines,
        payment,
        Utc::now(),
    )
    .expect("a valid order")
}

fn wire(c: &mut Criterion) {
    let book = book();
    let order = order();
    c.bench_function("book_body_to_json", |b| {
        b.iter(|| serde_json::to_vec(&BookBody::from(black_box(&book))).expect("serializable"));
    });
    c.bench_function("book_view_to_json", |b| {
        b.iter(|| serde_json::to_vec(&BookView(black_box(&book))).expect("serializable"));
    });
    // A page of 20, as `GET /api/books?limit=20` answers: built as wire bodies, and
    // written straight from the books as the route does.
    let page: Vec<Book> = bookstore_inventory::generated_catalogue(20).collect();
    c.bench_function("book_page_body_to_json", |b| {
        b.iter(|| {
            let body = BookPageBody {
                items: black_box(&page).iter().map(BookBody::from).collect(),
                next_cursor: None,
            };
            serde_json::to_vec(&body).expect("serializable")
        });
    });
    c.bench_function("book_page_view_to_json", |b| {
        b.iter(|| {
            let view = BookPageView {
                books: black_box(&page),
                next_cursor: None,
            };
            serde_json::to_vec(&view).expect("serializable")
        });
    });
    c.bench_function("order_body_to_json", |b| {
        b.iter(|| serde_json::to_vec(&OrderBody::from(black_box(&order))).expect("serializable"));
    });
}

criterion_group!(benches, wire);
criterion_main!(benches);
