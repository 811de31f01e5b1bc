//! Opening a database: [`connect`], [`migrate`], and the [`Database`] handle the stores share.

use std::fmt;
use std::time::Duration;

use sqlx::PgPool;

use crate::{InstanceId, StorageError, postgres, sqlite};

/// How to open a database.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// PostgreSQL: the size of the connection pool. SQLite: the number of connections that
    /// read (writes go through one connection of their own).
    pub max_connections: u32,
    /// How long to wait for a connection (to open one, or for one to be free in the pool)
    /// before giving up.
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
/// - **SQLite** (one instance): the file is opened in WAL mode with `synchronous = NORMAL`
///   (a commit survives a process crash; the last commits may be lost on a power cut),
///   `busy_timeout` 5 s and foreign keys on. Writes go through *one* connection behind a fair
///   async mutex, so writers queue in the application instead of sleeping in SQLite's busy
///   handler; reads use [`ConnectOptions::max_connections`] connections of their own and
///   never block the writer. Write transactions start with `BEGIN IMMEDIATE`, so a second
///   process sharing the file waits for the lock up front instead of failing half-way. A
///   reservation's journal row and stock updates go to SQLite as one batch (one `UPDATE ...
///   FROM (VALUES ...)` for all lines). Timestamps are stored as fixed-width UTC text so that
///   they compare correctly. An in-memory URL (`sqlite::memory:`) uses one connection for
///   everything.
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

/// Calls `$module::$function(pools, args...)` of the database's backend and awaits it:
/// `dispatch!(self.database, catalogue::get(isbn))`.
macro_rules! dispatch {
    ($database:expr, $module:ident :: $function:ident ( $($argument:expr),* $(,)? )) => {
        match $database.backend() {
            $crate::database::Backend::Sqlite(handle) => {
                $crate::sqlite::$module::$function(handle, $($argument),*).await
            }
            $crate::database::Backend::Postgres(pool) => {
                $crate::postgres::$module::$function(pool, $($argument),*).await
            }
        }
    };
}

pub(crate) use dispatch;
