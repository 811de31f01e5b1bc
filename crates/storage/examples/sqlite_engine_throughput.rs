//! How fast the SQLite engine (`src/sqlite/engine.rs`) writes and reads, through the stores
//! (which run on it) and as bare engine jobs, at the storage level (no HTTP):
//!
//! - **orders**: each task places orders the way the order workflow writes them, four
//!   writes each awaited in turn (reserve stock + journal row; capture the payment; record
//!   the order; confirm the reservation), first through the stores, then as bare engine
//!   write jobs with the same SQL;
//! - **reads**: each task alternates a page of 20 books and one book, through the stores,
//!   through [`engine::Engine::read`] on the calling thread, and through the same
//!   read handed to another thread (`spawn_blocking`), the alternative the engine rejected.
//!
//! ```text
//! cargo run --release -p bookstore-storage --example sqlite_engine_throughput [SECONDS] [TASKS] [WHICH]
//! ```
//!
//! Defaults: 5 seconds per run, 32 tasks, every run; WHICH is a comma-separated subset of
//! `stores-orders,engine-orders,stores-reads,engine-reads,engine-reads-handoff`. Each run uses
//! a fresh database file in the temporary directory.
//!
//! The engine is crate-private, so this example compiles its source files in directly.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bookstore_inventory::{Author, Book, BookQuery, PageLimit, ReservationId, StockLine, Title};
use bookstore_sales::{CapturedPayment, CustomerId, Order, OrderLine, PaymentToken, PricedLines};
use bookstore_storage::{ConnectOptions, StorageError, Stores, connect, migrate};
use bookstore_types::{Currency, Isbn, Money, OrderId, Quantity};
use chrono::Utc;

// Formatted as part of the library; rustfmt would look for their test modules here.
#[allow(dead_code)]
#[path = "../src/sqlite/engine.rs"]
#[rustfmt::skip]
mod engine;
#[allow(dead_code)]
#[path = "../src/sqlite/migrate.rs"]
#[rustfmt::skip]
mod migrate;
#[allow(dead_code)]
#[path = "../src/migrations.rs"]
#[rustfmt::skip]
mod migrations;

use engine::{Engine, EngineOptions, EnginePath};

const BOOKS: u32 = 50;

fn isbn(number: u32) -> Isbn {
    Isbn::from_first_twelve_digits(&format!("979{number:09}")).unwrap()
}

fn book(number: u32) -> Book {
    Book {
        isbn: isbn(number),
        title: Title::parse(format!("Book {number}")).unwrap(),
        author: Author::parse("Author").unwrap(),
        price: Money::from_cents(1999, Currency::USD).unwrap(),
        stock: u32::MAX / 2,
    }
}

/// A database file in the temporary directory, removed with its companions when dropped.
struct TemporaryFile(PathBuf);

impl TemporaryFile {
    fn new() -> Self {
        TemporaryFile(std::env::temp_dir().join(format!(
            "bookstore-engine-throughput-{}.sqlite",
            uuid::Uuid::new_v4().simple()
        )))
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let mut file = self.0.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Runs `round` in `tasks` tasks until `seconds` have passed; rounds per second.
async fn measure<F, R>(tasks: usize, seconds: u64, round: R) -> f64
where
    R: Fn(usize, u32) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send,
{
    let round = Arc::new(round);
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (round, done) = (Arc::clone(&round), Arc::clone(&done));
            tokio::spawn(async move {
                let mut number = 0u32;
                while Instant::now() < deadline {
                    number += 1;
                    round(task, number).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn stores_on(file: &TemporaryFile) -> Stores {
    let database = connect(
        &format!("sqlite://{}", file.0.display()),
        &ConnectOptions::default(),
    )
    .await
    .unwrap();
    migrate(&database).await.unwrap();
    // Orders are recorded only under a live lease.
    database
        .register_instance(Duration::from_secs(3600))
        .await
        .unwrap();
    let stores = database.stores(&bookstore_storage::events::Outbox::id_only());
    for number in 0..BOOKS {
        let _ = stores.catalogue.insert(book(number)).await;
    }
    stores
}

async fn stores_orders(tasks: usize, seconds: u64) -> f64 {
    let file = TemporaryFile::new();
    let stores = Arc::new(stores_on(&file).await);
    measure(tasks, seconds, move |task, number| {
        let stores = Arc::clone(&stores);
        async move {
            let (catalogue, orders, payments) =
                (&stores.catalogue, &stores.orders, &stores.payments);
            let order_id = OrderId::generate();
            let lines = [StockLine {
                isbn: isbn((task as u32 * 7 + number) % BOOKS),
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
            let token = PaymentToken::parse("tok_visa").unwrap();
            let transaction_id = payments
                .capture(&token, priced.total(), order_id)
                .await
                .unwrap();
            let payment = CapturedPayment::new(transaction_id);
            let owner = CustomerId::new(format!("client-{task}"));
            let order = Order::confirmed(order_id, owner, priced, payment, Utc::now());
            orders.insert(order).await.unwrap();
            catalogue.confirm_reservation(reservation).await.unwrap();
        }
    })
    .await
}

async fn stores_reads(tasks: usize, seconds: u64) -> f64 {
    let file = TemporaryFile::new();
    let catalogue = stores_on(&file).await.catalogue;
    measure(tasks, seconds, move |_, number| {
        let catalogue = Arc::clone(&catalogue);
        async move {
            if number.is_multiple_of(2) {
                let query = BookQuery {
                    after: None,
                    limit: PageLimit::new(20).unwrap(),
                    author: None,
                    text: None,
                };
                assert_eq!(catalogue.list(&query).await.unwrap().books.len(), 20);
            } else {
                catalogue.get(&isbn(number % BOOKS)).await.unwrap();
            }
        }
    })
    .await
}

/// An engine on a fresh, migrated file holding the books and this process's instance row.
async fn engine_with_books(file: &TemporaryFile) -> (Engine, [u8; 16]) {
    let engine = Engine::open(&EnginePath::File(file.0.clone()), &EngineOptions::default())
        .unwrap_or_else(|error: StorageError| panic!("{error}"));
    migrate::migrate(&engine).await.unwrap();
    let instance = *uuid::Uuid::new_v4().as_bytes();
    engine
        .write(move |connection| {
            connection.execute(
                "INSERT INTO instances (id, started_at, expires_at) VALUES (?1, ?2, ?2)",
                (&instance[..], now()),
            )?;
            let mut insert = connection.prepare_cached(
                "INSERT INTO books (isbn, title, author, author_key, title_text_key,
                    author_text_key, price_cents, currency, stock)
                 VALUES (?1, ?2, 'Author', 'author', ?3, 'author', 1999, 'USD', ?4)",
            )?;
            for number in 0..BOOKS {
                let title = format!("Book {number}");
                insert.execute((
                    isbn(number).as_str(),
                    &title,
                    title.to_lowercase(),
                    u32::MAX / 2,
                ))?;
            }
            Ok::<_, rusqlite::Error>(())
        })
        .await
        .unwrap();
    (engine, instance)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The four writes of an order, as the SQLite stores issue them.
async fn engine_order(engine: &Engine, instance: [u8; 16], task: usize, number: u32) {
    let order_id = *uuid::Uuid::now_v7().as_bytes();
    let book = isbn((task as u32 * 7 + number) % BOOKS).as_str().to_owned();
    let (title, price_cents): (String, i64) = engine
        .write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO reservations (id, lines, created_at, instance_id)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute((&order_id[..], format!("{book}:1"), now(), &instance[..]))?;
            connection
                .prepare_cached(
                    "UPDATE books SET stock = stock - taken.quantity
                     FROM (SELECT column1 AS quantity, column2 AS isbn FROM (VALUES (?1, ?2)))
                         AS taken
                     WHERE books.isbn = taken.isbn AND books.stock >= taken.quantity
                     RETURNING title, price_cents",
                )?
                .query_row((1, &book), |row| Ok((row.get(0)?, row.get(1)?)))
        })
        .await
        .unwrap();
    let transaction_id = *uuid::Uuid::new_v4().as_bytes();
    engine
        .write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO payments
                        (transaction_id, reference, amount_cents, currency, status, created_at)
                     VALUES (?1, ?2, ?3, 'USD', 'captured', ?4)",
                )?
                .execute((&transaction_id[..], &order_id[..], price_cents, now()))
        })
        .await
        .unwrap();
    engine
        .write(move |connection| {
            let lines = serde_json::json!([{
                "isbn": "", "title": title, "quantity": 1,
                "unit_price_cents": price_cents, "currency": "USD"
            }])
            .to_string();
            connection
                .prepare_cached(
                    "INSERT INTO orders
                        (id, owner, status, lines, total_cents, currency, transaction_id,
                         payment_status, created_at)
                     SELECT ?1, ?2, 'confirmed', ?3, ?4, 'USD', ?5, 'captured', ?6
                     WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?7)
                     ON CONFLICT (id) DO NOTHING",
                )?
                .execute((
                    &order_id[..],
                    format!("client-{task}"),
                    lines,
                    price_cents,
                    &transaction_id[..],
                    now(),
                    &instance[..],
                ))
        })
        .await
        .unwrap();
    engine
        .write(move |connection| {
            connection
                .prepare_cached("DELETE FROM reservations WHERE id = ?1")?
                .execute([&order_id[..]])
        })
        .await
        .unwrap();
}

async fn engine_orders(tasks: usize, seconds: u64) -> f64 {
    let file = TemporaryFile::new();
    let (engine, instance) = engine_with_books(&file).await;
    let before = engine.statistics();
    let measuring = engine.clone();
    let rate = measure(tasks, seconds, move |task, number| {
        let engine = measuring.clone();
        async move { engine_order(&engine, instance, task, number).await }
    })
    .await;
    let after = engine.statistics();
    println!(
        "    {} write jobs in {} transactions ({:.1} jobs per commit)",
        after.jobs - before.jobs,
        after.batches - before.batches,
        (after.jobs - before.jobs) as f64 / (after.batches - before.batches).max(1) as f64
    );
    engine.close().await;
    rate
}

/// What the catalogue reads of a book.
#[allow(dead_code)]
struct BookRow {
    isbn: String,
    title: String,
    author: String,
    price_cents: i64,
    currency: String,
    stock: i64,
}

fn book_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<BookRow> {
    Ok(BookRow {
        isbn: row.get(0)?,
        title: row.get(1)?,
        author: row.get(2)?,
        price_cents: row.get(3)?,
        currency: row.get(4)?,
        stock: row.get(5)?,
    })
}

/// A page of 20 books (even rounds) or one book (odd rounds), as the catalogue reads them.
fn engine_read(engine: &Engine, number: u32) {
    if number.is_multiple_of(2) {
        let page = engine
            .read(|connection| {
                connection
                    .prepare_cached(
                        "SELECT isbn, title, author, price_cents, currency, stock FROM books
                         WHERE isbn > ?1 ORDER BY isbn LIMIT ?2",
                    )?
                    .query_map(("", 21), book_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap();
        assert_eq!(page.len(), 21);
    } else {
        let isbn = isbn(number % BOOKS);
        engine
            .read(|connection| {
                connection
                    .prepare_cached(
                        "SELECT isbn, title, author, price_cents, currency, stock FROM books
                         WHERE isbn = ?1",
                    )?
                    .query_row([isbn.as_str()], book_row)
            })
            .unwrap();
    }
}

async fn engine_reads(tasks: usize, seconds: u64, hand_off: bool) -> f64 {
    let file = TemporaryFile::new();
    let (engine, _) = engine_with_books(&file).await;
    let measuring = engine.clone();
    let rate = measure(tasks, seconds, move |_, number| {
        let engine = measuring.clone();
        async move {
            if hand_off {
                tokio::task::spawn_blocking(move || engine_read(&engine, number))
                    .await
                    .unwrap();
            } else {
                engine_read(&engine, number);
            }
        }
    })
    .await;
    engine.close().await;
    rate
}

#[tokio::main]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let seconds: u64 = arguments.next().map_or(5, |s| s.parse().unwrap());
    let tasks: usize = arguments.next().map_or(32, |s| s.parse().unwrap());
    let which = arguments.next().unwrap_or_else(|| {
        "stores-orders,engine-orders,stores-reads,engine-reads,engine-reads-handoff".to_owned()
    });
    for run in which.split(',') {
        let rate = match run {
            "stores-orders" => stores_orders(tasks, seconds).await,
            "engine-orders" => engine_orders(tasks, seconds).await,
            "stores-reads" => stores_reads(tasks, seconds).await,
            "engine-reads" => engine_reads(tasks, seconds, false).await,
            "engine-reads-handoff" => engine_reads(tasks, seconds, true).await,
            other => panic!("unknown run {other}"),
        };
        let unit = if run.ends_with("orders") {
            "orders/s"
        } else {
            "reads/s (half pages of 20, half single books)"
        };
        println!("{run:>22}: {rate:>9.0} {unit} ({tasks} tasks, {seconds} s)");
    }
}
