//! Opening a fresh set of stores on one backend, and the test data every check shares.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bookstore_delivery::{
    Address, AddressInput, Delivery, DeliveryId, DeliveryStatus, DeliveryStore, TrackingNumber,
};
use bookstore_inventory::{
    Author, Book, CatalogueStore, InMemoryCatalogue, ReservationId, StockLine, Title,
};
use bookstore_sales::{
    CapturedPayment, CustomerId, Order, OrderLine, OrderStore, PaymentGateway, PaymentStatus,
    PricedLines, SimulatedPaymentGateway, TransactionId,
};
use bookstore_storage::idempotency::IdempotencyStore;
use bookstore_storage::{ConnectOptions, Database, connect, migrate};
use bookstore_types::{Currency, Isbn, Money, OrderId, Quantity};
use chrono::{SubsecRound, Utc};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// The variable naming a PostgreSQL server to test against, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`.
const POSTGRES_URL_VARIABLE: &str = "BOOKSTORE_TEST_POSTGRES_URL";

/// The server the PostgreSQL tests use when the variable is unset.
const LOCAL_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The lease of a test's instance: longer than any test, so that only a test that says so
/// sees an instance stop.
pub(crate) const TEST_LEASE: Duration = Duration::from_secs(600);

/// Which implementation a check runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    InMemory,
    Sqlite,
    Postgres,
}

/// Where a SQL test database lives, and how to open it again.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A SQLite file in the temporary directory.
    SqliteFile(PathBuf),
    /// A database created on the PostgreSQL server for this test.
    Postgres {
        /// The URL of the test database.
        url: String,
        /// The URL of the database the test database was created from (to drop it).
        admin_url: String,
        /// The test database's name.
        name: String,
    },
}

impl Location {
    /// The URL to pass to [`connect`].
    pub(crate) fn url(&self) -> String {
        match self {
            Location::SqliteFile(path) => format!("sqlite://{}", path.display()),
            Location::Postgres { url, .. } => url.clone(),
        }
    }

    /// Opens another, independent connection pool on the same database (as a second
    /// instance or a restarted process would), migrated.
    pub(crate) async fn open(&self) -> Database {
        let database = connect(&self.url(), &test_connect_options())
            .await
            .expect("the test database opens");
        migrate(&database).await.expect("the migrations apply");
        database
            .register_instance(TEST_LEASE)
            .await
            .expect("the instance registers");
        database
    }
}

/// Removes the test database when the test ends, even when it fails.
struct Cleanup(Location);

impl Drop for Cleanup {
    fn drop(&mut self) {
        match &self.0 {
            Location::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm", ".lock"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Location::Postgres {
                admin_url, name, ..
            } => {
                let (admin_url, database) = (admin_url.clone(), name.clone());
                // Drop cannot await, and may run outside any runtime (after a panic): drop
                // the database from a thread with a runtime of its own.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for the cleanup");
                    runtime.block_on(async {
                        let mut admin = PgConnection::connect(&admin_url).await?;
                        admin
                            .execute(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                            )))
                            .await
                            .map(drop)
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop the test database {name}: {dropped:?}");
                }
            }
        }
    }
}

/// The counts of the payment ledger, whichever processor keeps it.
#[derive(Clone)]
pub(crate) enum Ledger {
    InMemory(Arc<SimulatedPaymentGateway>),
    Sql(Database),
}

impl Ledger {
    /// How many transactions are captured and not refunded.
    pub(crate) async fn captured_count(&self) -> usize {
        match self {
            Ledger::InMemory(gateway) => gateway.captured_count(),
            Ledger::Sql(database) => database
                .payment_count(PaymentStatus::Captured)
                .await
                .unwrap(),
        }
    }

    /// How many transactions were refunded.
    pub(crate) async fn refunded_count(&self) -> usize {
        match self {
            Ledger::InMemory(gateway) => gateway.refunded_count(),
            Ledger::Sql(database) => database
                .payment_count(PaymentStatus::Refunded)
                .await
                .unwrap(),
        }
    }

    /// The amount and status of one transaction.
    pub(crate) async fn transaction(&self, id: TransactionId) -> Option<(Money, PaymentStatus)> {
        match self {
            Ledger::InMemory(gateway) => gateway.transaction(id),
            Ledger::Sql(database) => database.payment_transaction(id).await.unwrap(),
        }
    }
}

/// A fresh set of stores on one backend. The database is removed when this is dropped.
pub(crate) struct Stores {
    pub(crate) catalogue: Arc<dyn CatalogueStore>,
    pub(crate) orders: Arc<dyn OrderStore>,
    pub(crate) deliveries: Arc<dyn DeliveryStore>,
    pub(crate) payments: Arc<dyn PaymentGateway>,
    pub(crate) idempotency: Arc<dyn IdempotencyStore>,
    /// The events the other stores record.
    pub(crate) events: Arc<dyn bookstore_storage::events::EventLog>,
    /// Webhook endpoints and deliveries.
    pub(crate) webhooks: Arc<dyn bookstore_storage::events::WebhookStore>,
    /// The relays' cursors and leases.
    pub(crate) relays: Arc<dyn bookstore_storage::events::RelayCursors>,
    pub(crate) ledger: Ledger,
    /// The database behind the SQL stores (`None` in memory).
    pub(crate) database: Option<Database>,
    /// Where the SQL database lives (`None` in memory).
    pub(crate) location: Option<Location>,
    _cleanup: Option<Cleanup>,
}

/// Small pools: many tests run at once on two cores.
fn test_connect_options() -> ConnectOptions {
    ConnectOptions {
        max_connections: 4,
        connect_timeout: Duration::from_secs(30),
    }
}

impl Backend {
    /// Fresh, empty stores on this backend. On PostgreSQL, a new database on the server
    /// [`postgres_url`] names; a test that gets here without a server fails (the PostgreSQL
    /// tests are `#[ignore]`d, so they run only when asked to).
    pub(crate) async fn stores(self) -> Stores {
        match self {
            Backend::InMemory => {
                let (stores, gateway) = bookstore_storage::memory::stores_and_processor(
                    bookstore_storage::events::Outbox::id_only(),
                    InMemoryCatalogue::new(),
                );
                Stores {
                    catalogue: stores.catalogue,
                    orders: stores.orders,
                    deliveries: stores.deliveries,
                    payments: stores.payments,
                    idempotency: stores.idempotency,
                    events: stores.events,
                    webhooks: stores.webhooks,
                    relays: stores.relays,
                    ledger: Ledger::InMemory(gateway),
                    database: None,
                    location: None,
                    _cleanup: None,
                }
            }
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!(
                    "bookstore-storage-test-{}.sqlite",
                    Uuid::new_v4().simple()
                ));
                sql_stores(Location::SqliteFile(path)).await
            }
            Backend::Postgres => {
                let base_url = postgres_url();
                let name = format!("bookstore_test_{}", Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&base_url)
                    .await
                    .unwrap_or_else(|error| {
                        panic!(
                            "a PostgreSQL test needs a server: none answers at the URL in \
                         {POSTGRES_URL_VARIABLE}, or at {LOCAL_POSTGRES_URL} when it is unset \
                         ({error})"
                        )
                    });
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("a test database can be created");
                admin.close().await.ok();
                let location = Location::Postgres {
                    url: with_database(&base_url, &name),
                    admin_url: base_url,
                    name,
                };
                sql_stores(location).await
            }
        }
    }
}

async fn sql_stores(location: Location) -> Stores {
    // The cleanup guard exists before anything can fail.
    let cleanup = Cleanup(location.clone());
    let database = location.open().await;
    let stores = database.stores(&bookstore_storage::events::Outbox::id_only());
    Stores {
        catalogue: stores.catalogue,
        orders: stores.orders,
        deliveries: stores.deliveries,
        payments: stores.payments,
        idempotency: stores.idempotency,
        events: stores.events,
        webhooks: stores.webhooks,
        relays: stores.relays,
        ledger: Ledger::Sql(database.clone()),
        database: Some(database),
        location: Some(location),
        _cleanup: Some(cleanup),
    }
}

/// The PostgreSQL server to test against: `BOOKSTORE_TEST_POSTGRES_URL`, or the local one.
fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_VARIABLE)
        .ok()
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| LOCAL_POSTGRES_URL.to_owned())
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// A valid ISBN-13 made from `number` (`979` and nine digits, plus the check digit);
/// distinct numbers give distinct ISBNs that sort as the numbers do.
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
    ReservationId::from_uuid(Uuid::new_v4())
}

/// Inserts `books` into the catalogue.
pub(crate) async fn stock_catalogue(stores: &Stores, books: impl IntoIterator<Item = Book>) {
    for book in books {
        stores.catalogue.insert(book).await.unwrap();
    }
}

/// The stock of the book [`isbn`]`(number)`.
pub(crate) async fn stock_of(stores: &Stores, number: u32) -> u32 {
    stores.catalogue.get(&isbn(number)).await.unwrap().stock
}

/// A confirmed order for `owner` with two lines.
pub(crate) fn order_for(owner: &str) -> Order {
    Order::confirmed(
        OrderId::generate(),
        CustomerId::new(owner),
        PricedLines::new(vec![
            OrderLine {
                isbn: Isbn::parse("9780134685991").unwrap(),
                title: "Effective Java".to_owned(),
                quantity: Quantity::new(2).unwrap(),
                unit_price: usd(4_499),
            },
            OrderLine {
                isbn: Isbn::parse("9781593278281").unwrap(),
                title: "The Rust Programming Language — 2nd ed.".to_owned(),
                quantity: Quantity::new(1).unwrap(),
                unit_price: usd(3_995),
            },
        ])
        .unwrap(),
        CapturedPayment::new(TransactionId::generate()),
        Utc::now(),
    )
}

/// A checked address with every field set.
pub(crate) fn address() -> Address {
    Address::parse(AddressInput {
        recipient: "Ada Lovelace".to_owned(),
        line1: "1 Main St".to_owned(),
        line2: Some("Flat 2".to_owned()),
        city: "London".to_owned(),
        postal_code: "N1 9GU".to_owned(),
        country: "gb".to_owned(),
    })
    .unwrap()
}

/// A delivery of `order_id` in `status`.
pub(crate) fn delivery_for_order_in_status(order_id: OrderId, status: DeliveryStatus) -> Delivery {
    Delivery::restore(
        DeliveryId::generate(),
        order_id,
        status,
        address(),
        "2026-11-27".parse().unwrap(),
        TrackingNumber::generate(),
        // Stores keep microseconds, as `Delivery::schedule` does.
        Utc::now().trunc_subsecs(6),
        bookstore_delivery::Tracking::default(),
    )
}

/// Awaits every task and returns the results in order.
pub(crate) async fn join_all<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("the task does not panic"))
        .collect()
}
