//! Opening the stores a `--database-url` names: in memory, SQLite or PostgreSQL.
//!
//! The gateway sees every store as a trait object, so the rest of the application does not
//! know which backend it runs on. The SQL stores come from `bookstore-storage`
//! ([`Database::stores`]); this module only picks the backend, runs the migrations,
//! registers this process's instance and fills an empty catalogue (demo or generated books).

use std::sync::Arc;
use std::time::Duration;

use bookstore_inventory::{
    Book, BookQuery, CatalogueStore, InMemoryCatalogue, InventoryError, PageLimit, demo_catalogue,
    generated_catalogue,
};
use bookstore_storage::events::Outbox;
use bookstore_storage::{ConnectOptions, Database, StorageError};

use crate::app::AppState;
use crate::http::auth::ApiKeys;
use crate::wire::event_data::WireRenderer;

/// The URL that keeps everything in process memory.
pub const MEMORY_URL: &str = "memory";

/// How to open a database.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// The connections: how many, and how long to wait for one.
    pub connect: ConnectOptions,
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
    Seed(#[from] InventoryError),
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
        let stores = bookstore_storage::memory::stores(
            Outbox::new(Arc::new(WireRenderer)),
            InMemoryCatalogue::with_books(seed.books())?,
        );
        return Ok(OpenedStores {
            state: AppState::with_stores(stores, api_keys),
            database: None,
        });
    }
    let database = connect_and_migrate(url, options).await?;
    // On SQLite this also marks every earlier process as stopped, for recovery to settle.
    database.register_instance(options.instance_lease).await?;
    let stores = database.stores(&Outbox::new(Arc::new(WireRenderer)));
    seed_if_empty(&database, stores.catalogue.as_ref(), seed).await?;
    Ok(OpenedStores {
        state: AppState::with_stores(stores, api_keys),
        database: Some(database),
    })
}

/// Connects to `url` and applies the migrations (what `bookstore migrate` does).
pub async fn connect_and_migrate(
    url: &str,
    options: &DatabaseOptions,
) -> Result<Database, StorageError> {
    let database = bookstore_storage::connect(url, &options.connect).await?;
    bookstore_storage::migrate(&database).await?;
    Ok(database)
}

/// Books loaded per transaction: large enough to be fast, small enough that the writer is
/// not held for long.
const SEED_BATCH: usize = 10_000;

/// Loads the `seed` books when the catalogue has none. Another instance seeding the same
/// database at the same moment is harmless: ISBNs already taken are skipped.
async fn seed_if_empty(
    database: &Database,
    catalogue: &dyn CatalogueStore,
    seed: Seed,
) -> Result<(), InventoryError> {
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
        database.insert_missing_books(&batch).await?;
    }
    Ok(())
}
