//! Opening the stores a `--database-url` names: in memory, SQLite or PostgreSQL.
//!
//! The gateway sees every store as a trait object, so the rest of the application does not
//! know which backend it runs on. The SQL stores come from `bookstore-storage`; this module
//! only picks them, runs the migrations, fills an empty catalogue (demo or generated books),
//! and adapts the SQL idempotency records to the gateway's [`IdempotencyStore`] trait.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bookstore_inventory::{
    Book, BookQuery, CatalogueStore, InMemoryCatalogue, PageLimit, demo_catalogue,
    generated_catalogue,
};
use bookstore_sales::CustomerId;
use bookstore_storage::{
    ConnectOptions, Database, IdempotencyClaim, IdempotentResponse, SqlCatalogue, SqlDeliveryStore,
    SqlIdempotencyStore, SqlOrderStore, SqlPaymentGateway, StorageError,
};
use chrono::{DateTime, Utc};

use crate::app::AppState;
use crate::http::auth::ApiKeys;
use crate::http::reply::StoredResponse;
use crate::idempotency::{Claim, Fingerprint, IdempotencyStore, IdempotencyUnavailable};

/// The URL that keeps everything in process memory.
pub const MEMORY_URL: &str = "memory";

/// How to open a database.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// The largest number of pooled connections (PostgreSQL; SQLite uses one writer and a few
    /// readers).
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long this process's lease lasts (see `bookstore_storage::InstanceId`): the
    /// process registers with it when the stores open, and must renew it while it runs.
    pub instance_lease: Duration,
}

/// Why the stores could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database could not be reached or used.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The starting catalogue could not be loaded.
    #[error("could not load the starting catalogue: {0}")]
    Seed(#[from] bookstore_inventory::InventoryError),
}

/// What an empty catalogue is filled with at start-up. A catalogue that has any book is left
/// as it is, so a restart loads nothing and a shop's own books are never mixed with these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    /// Nothing: the catalogue starts empty.
    Nothing,
    /// The demo catalogue ([`demo_catalogue`]).
    Demo,
    /// This many generated books ([`generated_catalogue`]), for load tests and benchmarks.
    Generated(u64),
}

impl Seed {
    fn books(self) -> Box<dyn Iterator<Item = Book> + Send> {
        match self {
            Seed::Nothing => Box::new(std::iter::empty()),
            Seed::Demo => Box::new(demo_catalogue().into_iter()),
            Seed::Generated(count) => Box::new(generated_catalogue(count)),
        }
    }
}

/// The stores of one database, and the database itself (to close it at shutdown).
pub struct OpenedStores {
    /// The application state around the stores.
    pub state: AppState,
    /// The SQL database, `None` in memory.
    pub database: Option<Database>,
}

/// Opens the database `url` names (applying migrations), fills an empty catalogue as `seed`
/// says, and builds the state around it.
pub async fn open(
    url: &str,
    options: &DatabaseOptions,
    api_keys: ApiKeys,
    seed: Seed,
) -> Result<OpenedStores, OpenError> {
    if url == MEMORY_URL {
        let mut state = AppState::in_memory(api_keys);
        state.catalogue = Arc::new(InMemoryCatalogue::with_books(seed.books())?);
        return Ok(OpenedStores {
            state,
            database: None,
        });
    }
    let database = connect_and_migrate(url, options).await?;
    // On SQLite this also marks every earlier process as stopped, for recovery to settle.
    database.register_instance(options.instance_lease).await?;
    let catalogue = SqlCatalogue::new(database.clone());
    seed_if_empty(&catalogue, seed).await?;
    let state = AppState {
        catalogue: Arc::new(catalogue),
        orders: Arc::new(SqlOrderStore::new(database.clone())),
        deliveries: Arc::new(SqlDeliveryStore::new(database.clone())),
        payments: Arc::new(SqlPaymentGateway::new(database.clone())),
        idempotency: Arc::new(SqlIdempotencyStore::new(database.clone())),
        ..AppState::in_memory(api_keys)
    };
    Ok(OpenedStores {
        state,
        database: Some(database),
    })
}

/// Connects to `url` and applies the migrations (what `bookstore migrate` does).
pub async fn connect_and_migrate(
    url: &str,
    options: &DatabaseOptions,
) -> Result<Database, StorageError> {
    let connect_options = ConnectOptions {
        max_connections: options.max_connections,
        connect_timeout: options.connect_timeout,
    };
    let database = bookstore_storage::connect(url, &connect_options).await?;
    bookstore_storage::migrate(&database).await?;
    Ok(database)
}

/// Books loaded per transaction: large enough to be fast, small enough that the writer is
/// not held for long.
const SEED_BATCH: usize = 10_000;

/// Loads the `seed` books when the catalogue has none. Another instance seeding the same
/// database at the same moment is harmless: ISBNs already taken are skipped.
async fn seed_if_empty(
    catalogue: &SqlCatalogue,
    seed: Seed,
) -> Result<(), bookstore_inventory::InventoryError> {
    if seed == Seed::Nothing {
        return Ok(());
    }
    let first = catalogue
        .list(&BookQuery {
            limit: PageLimit::clamped(1),
            ..BookQuery::default()
        })
        .await?;
    if !first.books.is_empty() {
        return Ok(());
    }
    let mut books = seed.books().peekable();
    while books.peek().is_some() {
        let batch: Vec<Book> = books.by_ref().take(SEED_BATCH).collect();
        catalogue.insert_missing(&batch).await?;
    }
    Ok(())
}

fn unavailable(error: StorageError) -> IdempotencyUnavailable {
    IdempotencyUnavailable(Box::new(error))
}

fn to_stored(response: IdempotentResponse) -> StoredResponse {
    StoredResponse {
        status: response.status,
        content_type: response.content_type,
        location: response.location,
        body: response.body,
    }
}

#[async_trait]
impl IdempotencyStore for SqlIdempotencyStore {
    async fn claim(
        &self,
        owner: &CustomerId,
        key: &str,
        fingerprint: Fingerprint,
        now: DateTime<Utc>,
    ) -> Result<Claim, IdempotencyUnavailable> {
        let claim =
            SqlIdempotencyStore::claim(self, owner.as_str(), key, fingerprint.as_bytes(), now)
                .await
                .map_err(unavailable)?;
        Ok(match claim {
            IdempotencyClaim::Started => Claim::Started,
            IdempotencyClaim::Resumed => Claim::Resumed,
            IdempotencyClaim::Replay(response) => Claim::Replay(to_stored(response)),
            IdempotencyClaim::InFlight => Claim::InFlight,
            IdempotencyClaim::Mismatch => Claim::Mismatch,
        })
    }

    async fn complete(
        &self,
        owner: &CustomerId,
        key: &str,
        response: StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<(), IdempotencyUnavailable> {
        let response = IdempotentResponse {
            status: response.status,
            content_type: response.content_type,
            location: response.location,
            body: response.body,
        };
        SqlIdempotencyStore::complete(self, owner.as_str(), key, &response, now)
            .await
            .map_err(unavailable)
    }

    async fn release(&self, owner: &CustomerId, key: &str) -> Result<(), IdempotencyUnavailable> {
        SqlIdempotencyStore::release(self, owner.as_str(), key)
            .await
            .map_err(unavailable)
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, IdempotencyUnavailable> {
        SqlIdempotencyStore::purge_expired(self, now)
            .await
            .map_err(unavailable)
    }
}
