//! The PostgreSQL backend: connection settings, the SQL of every store (one submodule per
//! store), and the Rust that runs it, expanded from [`crate::shared`].

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool, Postgres, Transaction};

use crate::failure::{BoxError, unavailable};
use crate::{ConnectOptions, StorageError};

pub(crate) mod catalogue;
pub(crate) mod deliveries;
pub(crate) mod idempotency;
pub(crate) mod orders;
pub(crate) mod payments;

/// The sqlx database type of this backend.
pub(crate) type Db = Postgres;

/// The pool of a PostgreSQL database.
pub(crate) type Handle = PgPool;

/// A connection taken from the pool; it goes back when dropped.
pub(crate) type ConnectionGuard<'a> = PoolConnection<Postgres>;

/// A connection for statements that write.
async fn write_connection(pool: &Handle) -> Result<ConnectionGuard<'_>, sqlx::Error> {
    pool.acquire().await
}

/// A connection for statements that only read.
async fn read_connection(pool: &Handle) -> Result<ConnectionGuard<'_>, sqlx::Error> {
    pool.acquire().await
}

/// Starts a transaction on `connection` (READ COMMITTED: rows are locked by the statements
/// that change them).
async fn begin_write(connection: &mut PgConnection) -> Result<Transaction<'_, Db>, sqlx::Error> {
    connection.begin().await
}

/// How timestamps are stored: `TIMESTAMPTZ`.
type DbTime = DateTime<Utc>;

fn to_db_time(time: DateTime<Utc>) -> DbTime {
    time
}

fn from_db_time(time: DbTime) -> Result<DateTime<Utc>, BoxError> {
    Ok(time)
}

pub(crate) async fn connect(url: &str, options: &ConnectOptions) -> Result<Handle, StorageError> {
    let connect_options = PgConnectOptions::from_str(url).map_err(StorageError::InvalidUrl)?;
    PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .connect_with(connect_options)
        .await
        .map_err(StorageError::Connect)
}

pub(crate) async fn check_ready(pool: &Handle) -> Result<(), StorageError> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .map(drop)
        .map_err(unavailable)
}

pub(crate) async fn migrate(pool: &Handle) -> Result<(), StorageError> {
    crate::migrations::postgres()
        .run(pool)
        .await
        .map_err(StorageError::Migrate)
}
