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

pub(crate) async fn register_instance(
    pool: &Handle,
    instance: crate::InstanceId,
    lease: std::time::Duration,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO instances (id, started_at, expires_at)
         VALUES ($1, clock_timestamp(), clock_timestamp() + $2::bigint * interval '1 millisecond')
         ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(instance.as_uuid())
    .bind(crate::instances::lease_millis(lease))
    .execute(pool)
    .await
    .map(drop)
    .map_err(unavailable)
}

pub(crate) async fn renew_lease(
    pool: &Handle,
    instance: crate::InstanceId,
    lease: std::time::Duration,
) -> Result<bool, StorageError> {
    let renewed = sqlx::query(
        "UPDATE instances
         SET expires_at = clock_timestamp() + $2::bigint * interval '1 millisecond'
         WHERE id = $1",
    )
    .bind(instance.as_uuid())
    .bind(crate::instances::lease_millis(lease))
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(renewed.rows_affected() == 1)
}

/// Deleting a row waits for the `FOR KEY SHARE` locks of the orders being recorded under it.
pub(crate) async fn reap_expired_leases(pool: &Handle) -> Result<u64, StorageError> {
    let reaped = sqlx::query("DELETE FROM instances WHERE expires_at < clock_timestamp()")
        .execute(pool)
        .await
        .map_err(unavailable)?;
    Ok(reaped.rows_affected())
}

pub(crate) async fn instance_leases(
    pool: &Handle,
) -> Result<Vec<(uuid::Uuid, DateTime<Utc>)>, StorageError> {
    sqlx::query_as("SELECT id, expires_at FROM instances")
        .fetch_all(pool)
        .await
        .map_err(unavailable)
}

pub(crate) async fn deregister_instance(
    pool: &Handle,
    instance: crate::InstanceId,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM instances WHERE id = $1")
        .bind(instance.as_uuid())
        .execute(pool)
        .await
        .map(drop)
        .map_err(unavailable)
}
