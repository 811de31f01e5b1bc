//! Opening a database: [`connect`], [`migrate`], the [`Database`] handle, and the
//! [`Stores`] on it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bookstore_delivery::DeliveryStore;
use bookstore_inventory::{Book, CatalogueStore, InventoryError};
use bookstore_sales::{OrderStore, PaymentError, PaymentGateway, PaymentStatus, TransactionId};
use bookstore_types::Money;
use sqlx::PgPool;

use crate::events::{EventLog, EventsUnavailable, NewEvent, Outbox, RelayCursors, WebhookStore};
use crate::idempotency::IdempotencyStore;
use crate::{InstanceId, StorageError, postgres, sqlite};

/// How to open a database.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// PostgreSQL: the size of the connection pool. SQLite: the number of connections that
    /// read (writes go through one connection of their own).
    pub max_connections: u32,
    /// PostgreSQL: how long to wait for a connection (to open one, or for one to be free in
    /// the pool) before giving up. SQLite opens its file at once and does not wait.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    /// Eight connections, five seconds.
    fn default() -> Self {
        Self {
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Which database a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// An open database: the connections that the stores share (cloning is cheap).
///
/// The stores behave identically on both backends; what differs is how they get there:
///
/// - **SQLite** (one instance), on rusqlite: the file is opened in WAL mode with
///   `synchronous = NORMAL` (a commit survives a process crash; the last commits may be lost
///   on a power cut), `busy_timeout` 5 s and foreign keys on. Writes are jobs for one writer
///   thread, which commits every job queued together in one transaction (each job in a
///   savepoint of its own, so a failing job rolls back only itself) and answers them after
///   the COMMIT. Reads run on [`ConnectOptions::max_connections`] reader connections, on
///   the caller's thread, and never wait for the writer. A reservation is one write job.
///   Timestamps are stored as fixed-width UTC text so that they compare correctly. An
///   in-memory URL (`sqlite::memory:`) uses one connection for everything.
/// - **PostgreSQL** (several instances): one pool of [`ConnectOptions::max_connections`]
///   connections; transactions run at READ COMMITTED, and every check-and-change is a single
///   conditional statement (`UPDATE ... WHERE stock >= n`, `INSERT ... ON CONFLICT`,
///   `DELETE ... RETURNING`), so concurrent instances never oversell, cancel twice or
///   schedule two deliveries. A reservation updates its lines one statement each, in ISBN
///   order, so two reservations lock rows in the same order and cannot deadlock.
///   Timestamps are `TIMESTAMPTZ`, ids `UUID`, order lines `JSONB`.
#[derive(Clone)]
pub struct Database {
    backend: Backend,
    pub(crate) instance: InstanceId,
}

/// The connections of one backend.
#[derive(Clone)]
pub(crate) enum Backend {
    Sqlite(sqlite::Handle),
    Postgres(PgPool),
}

impl Database {
    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// `Ok` when the database answers a `SELECT 1`.
    pub async fn check_ready(&self) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Sqlite(handle) => sqlite::check_ready(handle).await,
            Backend::Postgres(pool) => postgres::check_ready(pool).await,
        }
    }

    /// Closes every connection; later calls on any store using this database fail as
    /// unavailable.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(handle) => handle.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The stores on this database (call [`migrate`] first), as the domains' trait objects.
    /// They share this database's connections; on SQLite, every catalogue store of one
    /// `Database` also shares its book cache, so calling this again is cheap and safe.
    ///
    /// `outbox` renders the data of the events the stores record with their changes, each in
    /// the transaction (SQLite: the write job) of its change (see [`crate::events`]).
    pub fn stores(&self, outbox: &Outbox) -> Stores {
        let instance = self.instance;
        match &self.backend {
            Backend::Sqlite(handle) => Stores {
                catalogue: Arc::new(sqlite::SqliteCatalogue::new(
                    handle.clone(),
                    instance,
                    outbox.clone(),
                )),
                orders: Arc::new(sqlite::SqliteOrderStore::new(
                    handle.clone(),
                    instance,
                    outbox.clone(),
                )),
                deliveries: Arc::new(sqlite::SqliteDeliveryStore::new(
                    handle.clone(),
                    outbox.clone(),
                )),
                payments: Arc::new(sqlite::SqlitePaymentGateway::new(
                    handle.clone(),
                    outbox.clone(),
                )),
                idempotency: Arc::new(sqlite::SqliteIdempotencyStore::new(
                    handle.clone(),
                    instance,
                )),
                events: Arc::new(sqlite::SqliteEventLog::new(handle.clone())),
                webhooks: Arc::new(sqlite::SqliteWebhookStore::new(handle.clone())),
                relays: Arc::new(sqlite::SqliteRelayCursors::new(handle.clone())),
            },
            Backend::Postgres(pool) => Stores {
                catalogue: Arc::new(postgres::PgCatalogue::new(
                    pool.clone(),
                    instance,
                    outbox.clone(),
                )),
                orders: Arc::new(postgres::PgOrderStore::new(
                    pool.clone(),
                    instance,
                    outbox.clone(),
                )),
                deliveries: Arc::new(postgres::PgDeliveryStore::new(pool.clone(), outbox.clone())),
                payments: Arc::new(postgres::PgPaymentGateway::new(
                    pool.clone(),
                    outbox.clone(),
                )),
                idempotency: Arc::new(postgres::PgIdempotencyStore::new(pool.clone(), instance)),
                events: Arc::new(postgres::PgEventLog::new(pool.clone())),
                webhooks: Arc::new(postgres::PgWebhookStore::new(pool.clone())),
                relays: Arc::new(postgres::PgRelayCursors::new(pool.clone())),
            },
        }
    }

    /// Adds every book of `books` whose ISBN is not taken yet, in one transaction, and
    /// returns how many it added.
    ///
    /// This loads a whole catalogue (the demo books, or a generated one for a benchmark)
    /// much faster than one [`CatalogueStore::insert`] per book, and is safe when another
    /// process loads the same books at the same moment. On an error nothing is added.
    ///
    /// It records **no events**: it seeds the catalogue at start-up (before any consumer
    /// could care) and is not a change a shop makes; a `book.created` per seeded book would
    /// flood the feed and every webhook with the demo or benchmark catalogue.
    pub async fn insert_missing_books(&self, books: &[Book]) -> Result<u64, InventoryError> {
        match &self.backend {
            Backend::Sqlite(handle) => {
                sqlite::SqliteCatalogue::new(handle.clone(), self.instance, Outbox::id_only())
                    .insert_missing(books)
                    .await
            }
            Backend::Postgres(pool) => {
                postgres::PgCatalogue::new(pool.clone(), self.instance, Outbox::id_only())
                    .insert_missing(books)
                    .await
            }
        }
    }

    /// Records `events` in one transaction of their own, with no change beside them: for
    /// tests and tools that need events in the log (the stores record theirs with their
    /// changes).
    pub async fn record_events(&self, events: Vec<NewEvent>) -> Result<(), EventsUnavailable> {
        match &self.backend {
            Backend::Sqlite(handle) => {
                handle
                    .write(move |connection| {
                        sqlite::record_events(connection, &events)
                            .map_err(crate::failure::unavailable::<EventsUnavailable>)
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let mut transaction = pool
                    .begin()
                    .await
                    .map_err(crate::failure::unavailable::<EventsUnavailable>)?;
                let result = postgres::events::record(&mut transaction, &events)
                    .await
                    .map_err(crate::failure::unavailable::<EventsUnavailable>);
                crate::failure::finish(transaction, result).await
            }
        }
    }

    /// The amount and status of one transaction of the payment ledger, if it has it.
    pub async fn payment_transaction(
        &self,
        transaction_id: TransactionId,
    ) -> Result<Option<(Money, PaymentStatus)>, PaymentError> {
        match &self.backend {
            Backend::Sqlite(handle) => {
                sqlite::SqlitePaymentGateway::new(handle.clone(), Outbox::id_only())
                    .transaction(transaction_id)
                    .await
            }
            Backend::Postgres(pool) => {
                postgres::PgPaymentGateway::new(pool.clone(), Outbox::id_only())
                    .transaction(transaction_id)
                    .await
            }
        }
    }

    /// How many transactions of the payment ledger are in `status` (captured: taken and not
    /// refunded).
    pub async fn payment_count(&self, status: PaymentStatus) -> Result<usize, PaymentError> {
        match &self.backend {
            Backend::Sqlite(handle) => {
                sqlite::SqlitePaymentGateway::new(handle.clone(), Outbox::id_only())
                    .count_with_status(status)
                    .await
            }
            Backend::Postgres(pool) => {
                postgres::PgPaymentGateway::new(pool.clone(), Outbox::id_only())
                    .count_with_status(status)
                    .await
            }
        }
    }
}

/// The stores of one [`Database`], as the domains' trait objects.
#[derive(Clone)]
pub struct Stores {
    /// Books, stock and the reservation journal.
    pub catalogue: Arc<dyn CatalogueStore>,
    /// Orders.
    pub orders: Arc<dyn OrderStore>,
    /// Deliveries and the count of deliveries per day.
    pub deliveries: Arc<dyn DeliveryStore>,
    /// The simulated card processor, its ledger in the database.
    pub payments: Arc<dyn PaymentGateway>,
    /// Idempotency keys, shared by every instance on the database.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// The events the other stores record with their changes (`crate::events`).
    pub events: Arc<dyn EventLog>,
    /// Webhook endpoints, their deliveries and attempts (`crate::events::webhooks`).
    pub webhooks: Arc<dyn WebhookStore>,
    /// How far each relay of the event log has got, and which instance holds it
    /// (`crate::events::RelayCursors`).
    pub relays: Arc<dyn RelayCursors>,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("kind", &self.kind())
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// Opens the database at `url`:
///
/// - `sqlite://PATH` (or `sqlite:PATH`): the file is created if missing; see [`Database`]
///   for the settings applied. A SQLite file serves one process: this takes an exclusive
///   lock on `PATH.lock` (created if missing), held until [`Database::close`] or the end of
///   the process (the operating system releases it even after `kill -9`), and fails with
///   [`StorageError::InUse`] while another process holds it;
/// - `postgres://...` or `postgresql://...`: a pool of
///   [`ConnectOptions::max_connections`] connections.
///
/// One connection is opened straight away, so an unreachable database fails here with
/// [`StorageError::Connect`]. Call [`migrate`] before using the stores.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Database, StorageError> {
    let backend = if url.starts_with("sqlite:") {
        Backend::Sqlite(sqlite::connect(url, options).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Backend::Postgres(postgres::connect(url, options).await?)
    } else {
        return Err(StorageError::UnsupportedUrl);
    };
    Ok(Database {
        backend,
        instance: InstanceId::generate(),
    })
}

/// Applies the migrations compiled into this crate that the database has not seen yet.
/// Safe to run from several instances at once (the migrator takes a lock).
pub async fn migrate(database: &Database) -> Result<(), StorageError> {
    match &database.backend {
        Backend::Sqlite(handle) => sqlite::migrate(handle).await,
        Backend::Postgres(pool) => postgres::migrate(pool).await,
    }
}
