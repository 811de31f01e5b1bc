//! Opening the stores a `--database-url` names: in memory, SQLite or PostgreSQL.
//!
//! The gateway sees every store as a trait object, so the rest of the application does not
//! know which backend it runs on. The SQL stores come from `bookstore-storage`; this module
//! only picks them, runs the migrations, loads the demo catalogue into an empty catalogue,
//! and adapts the SQL idempotency records to the gateway's [`IdempotencyStore`] trait.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bookstore_inventory::{
    BookQuery, CatalogueStore, InMemoryCatalogue, PageLimit, demo_catalogue,
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
}

/// Why the stores could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database could not be reached or used.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The demo catalogue could not be loaded.
    #[error("could not load the demo catalogue: {0}")]
    Seed(#[from] bookstore_inventory::InventoryError),
}

/// The stores of one database, and the database itself (to close it at shutdown).
pub struct OpenedStores {
    /// The application state around the stores.
    pub state: AppState,
    /// The SQL database, `None` in memory.
    pub database: Option<Database>,
}

/// Opens the database `url` names (applying migrations) and builds the state around it.
/// `seed` loads the demo catalogue into an empty catalogue (so only once per database).
pub async fn open(
    url: &str,
    options: &DatabaseOptions,
    api_keys: ApiKeys,
    seed: bool,
) -> Result<OpenedStores, OpenError> {
    if url == MEMORY_URL {
        let mut state = AppState::in_memory(api_keys);
        if seed {
            state.catalogue = Arc::new(InMemoryCatalogue::with_books(demo_catalogue())?);
        }
        return Ok(OpenedStores {
            state,
            database: None,
        });
    }
    let database = connect_and_migrate(url, options).await?;
    let mut state = AppState::in_memory(api_keys);
    state.catalogue = Arc::new(SqlCatalogue::new(database.clone()));
    state.orders = Arc::new(SqlOrderStore::new(database.clone()));
    state.deliveries = Arc::new(SqlDeliveryStore::new(database.clone()));
    state.payments = Arc::new(SqlPaymentGateway::new(database.clone()));
    state.idempotency = Arc::new(SqlIdempotencyStore::new(database.clone()));
    if seed {
        seed_if_empty(state.catalogue.as_ref()).await?;
    }
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

/// Loads the demo books when the catalogue has none: a restart does not load them again,
/// and a shop that added its own books never gets them.
async fn seed_if_empty(
    catalogue: &dyn CatalogueStore,
) -> Result<(), bookstore_inventory::InventoryError> {
    let first = catalogue
        .list(&BookQuery {
            limit: PageLimit::new(1)?,
            ..BookQuery::default()
        })
        .await?;
    if !first.books.is_empty() {
        return Ok(());
    }
    for book in demo_catalogue() {
        match catalogue.insert(book).await {
            // Another instance seeding the same database at the same moment.
            Ok(_) | Err(bookstore_inventory::InventoryError::AlreadyExists { .. }) => {}
            Err(error) => return Err(error),
        }
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
