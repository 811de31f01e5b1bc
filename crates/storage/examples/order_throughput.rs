//! How many orders per second the SQL stores sustain: 32 concurrent tasks place orders the
//! way the gateway does (idempotency claim → reserve → capture → record → confirm → store
//! the response), without HTTP.
//!
//! ```text
//! cargo run --release -p bookstore-storage --example order_throughput [URL] [SECONDS] [CLIENTS] [no-keys]
//! ```
//!
//! Without a URL (or with "") it uses a fresh SQLite file in the temporary directory;
//! `no-keys` leaves out the idempotency records.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bookstore_inventory::{Author, Book, ReservationId, StockLine, Title};
use bookstore_sales::{CapturedPayment, CustomerId, Order, OrderLine, PaymentToken, PricedLines};
use bookstore_storage::idempotency::{Claim, Fingerprint, StoredResponse};
use bookstore_storage::{ConnectOptions, connect, migrate};
use bookstore_types::{Currency, Isbn, Money, OrderId, Quantity};
use chrono::Utc;

const BOOKS: u32 = 50;

fn isbn(number: u32) -> Isbn {
    Isbn::from_first_twelve_digits(&format!("979{number:09}")).unwrap()
}

#[tokio::main]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let path = std::env::temp_dir().join(format!(
        "bookstore-throughput-{}.sqlite",
        uuid::Uuid::new_v4()
    ));
    let url = arguments
        .next()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| format!("sqlite://{}", path.display()));
    let seconds: u64 = arguments.next().map_or(10, |s| s.parse().unwrap());
    let client_count: usize = arguments.next().map_or(32, |s| s.parse().unwrap());
    let with_keys = arguments.next().as_deref() != Some("no-keys");

    let database = connect(&url, &ConnectOptions::default()).await.unwrap();
    migrate(&database).await.unwrap();
    database
        .register_instance(Duration::from_secs(600))
        .await
        .unwrap();
    let stores = database.stores(&bookstore_storage::events::Outbox::id_only());
    let (catalogue, orders, payments, idempotency) = (
        stores.catalogue,
        stores.orders,
        stores.payments,
        stores.idempotency,
    );
    for number in 0..BOOKS {
        let book = Book {
            isbn: isbn(number),
            title: Title::parse(format!("Book {number}")).unwrap(),
            author: Author::parse("Author").unwrap(),
            price: Money::from_cents(1999, Currency::USD).unwrap(),
            stock: u32::MAX / 2,
        };
        let _ = catalogue.insert(book).await;
    }

    let placed = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let clients: Vec<_> = (0..client_count)
        .map(|client| {
            let (catalogue, orders, payments, idempotency, placed) = (
                Arc::clone(&catalogue),
                Arc::clone(&orders),
                Arc::clone(&payments),
                Arc::clone(&idempotency),
                Arc::clone(&placed),
            );
            tokio::spawn(async move {
                let owner = CustomerId::new(format!("client-{client}"));
                let token = PaymentToken::parse("tok_visa").unwrap();
                let mut round = 0u32;
                while Instant::now() < deadline {
                    round += 1;
                    let key = format!("{round}");
                    if with_keys {
                        let claim = idempotency
                            .claim(&owner, &key, Fingerprint::from_bytes([7; 32]), Utc::now())
                            .await
                            .unwrap();
                        assert_eq!(claim, Claim::Started);
                    }
                    let order_id = OrderId::generate();
                    let lines = [StockLine {
                        isbn: isbn((client as u32 * 7 + round) % BOOKS),
                        quantity: Quantity::new(1).unwrap(),
                    }];
                    let reservation = ReservationId::from_uuid(order_id.as_uuid());
                    let reserved = catalogue.reserve_all(reservation, &lines).await.unwrap();
                    let lines: Vec<OrderLine> = reserved
                        .into_iter()
                        .map(|line| OrderLine {
                            isbn: line.isbn,
                            title: line.title.as_str().to_owned(),
                            quantity: line.quantity,
                            unit_price: line.unit_price,
                        })
                        .collect();
                    let priced = PricedLines::new(lines).unwrap();
                    let transaction_id = payments
                        .capture(&token, priced.total(), order_id)
                        .await
                        .unwrap();
                    let order = Order::confirmed(
                        order_id,
                        owner.clone(),
                        priced,
                        CapturedPayment::new(transaction_id),
                        Utc::now(),
                    );
                    orders.insert(order).await.unwrap();
                    catalogue.confirm_reservation(reservation).await.unwrap();
                    let response = StoredResponse {
                        status: 201,
                        content_type: "application/json".to_owned(),
                        location: Some(format!("/api/orders/{order_id}")),
                        body: vec![b'x'; 400],
                    };
                    if with_keys {
                        idempotency
                            .complete(&owner, &key, response, Utc::now())
                            .await
                            .unwrap();
                    }
                    placed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let placed = placed.load(Ordering::Relaxed);
    println!(
        "{placed} orders in {elapsed:.1} s: {:.0} orders/s ({:?}, {client_count} clients)",
        placed as f64 / elapsed,
        database.kind()
    );
    database.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}
