//! The SQLite backend: connection settings, the SQL of every store (one submodule per
//! store), and the Rust that runs it, expanded from [`crate::shared`].
//!
//! # Connections
//!
//! A SQLite database has one writer at a time. Writes therefore go through *one* connection
//! behind a fair async mutex: writers queue in the application, in arrival order, instead of
//! failing with `SQLITE_BUSY` and sleeping in SQLite's busy handler. Reads use their own
//! connections (WAL mode lets them run while the writer writes). Connections are held in
//! mutexes rather than sqlx pools because a pool's acquire-and-release costs several times
//! the statement itself (measured: ~60-140 µs against ~10 µs for `SELECT 1`), and SQLite
//! connections to a local file do not drop out the way network connections do.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection as _, Sqlite, SqliteConnection, Transaction};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::failure::{BoxError, CorruptRow, unavailable};
use crate::{ConnectOptions, StorageError};

pub(crate) mod catalogue;
pub(crate) mod deliveries;
#[allow(dead_code)]
pub(crate) mod engine;
pub(crate) mod idempotency;
#[allow(dead_code)]
pub(crate) mod migrate;
pub(crate) mod orders;
pub(crate) mod payments;

/// The sqlx database type of this backend.
pub(crate) type Db = Sqlite;

/// How long a connection waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection, or `None` once the database is closed.
type Slot = Mutex<Option<SqliteConnection>>;

/// A connection in use; others wait until it is dropped.
pub(crate) type ConnectionGuard<'a> = MappedMutexGuard<'a, SqliteConnection>;

/// The connections of a SQLite database: one that writes, several that read.
#[derive(Clone)]
pub(crate) struct Handle(Arc<Connections>);

struct Connections {
    /// The exclusive lock on `PATH.lock` (none for an in-memory database), released on close.
    lock_file: std::sync::Mutex<Option<std::fs::File>>,
    writer: Slot,
    /// Empty for an in-memory database: the writer reads too.
    readers: Vec<Slot>,
    next_reader: AtomicUsize,
    acquire_timeout: Duration,
}

impl Handle {
    /// Closes every connection; later uses fail as if a pool were closed.
    pub(crate) async fn close(&self) {
        // Dropping the file releases the lock.
        drop(
            self.0
                .lock_file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        for slot in std::iter::once(&self.0.writer).chain(&self.0.readers) {
            if let Some(connection) = slot.lock().await.take() {
                let _ = connection.close().await;
            }
        }
    }
}

/// Waits (at most the acquire timeout) for the connection in `slot`.
async fn lock(slot: &Slot, timeout: Duration) -> Result<ConnectionGuard<'_>, sqlx::Error> {
    let guard = tokio::time::timeout(timeout, slot.lock())
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?;
    MutexGuard::try_map(guard, Option::as_mut).map_err(|_| sqlx::Error::PoolClosed)
}

/// The connection that writes, for single statements and transactions.
async fn write_connection(handle: &Handle) -> Result<ConnectionGuard<'_>, sqlx::Error> {
    lock(&handle.0.writer, handle.0.acquire_timeout).await
}

/// A connection for statements that only read: a free one if there is one, else the next
/// in turn.
async fn read_connection(handle: &Handle) -> Result<ConnectionGuard<'_>, sqlx::Error> {
    let connections = &handle.0;
    if connections.readers.is_empty() {
        return write_connection(handle).await;
    }
    let start = connections.next_reader.fetch_add(1, Ordering::Relaxed);
    let count = connections.readers.len();
    for offset in 0..count {
        if let Ok(guard) = connections.readers[(start + offset) % count].try_lock() {
            return MutexGuard::try_map(guard, Option::as_mut).map_err(|_| sqlx::Error::PoolClosed);
        }
    }
    lock(
        &connections.readers[start % count],
        connections.acquire_timeout,
    )
    .await
}

/// Starts a write transaction on `connection`, taking the database's write lock at once (so
/// another process sharing the file waits for it up front instead of failing half-way).
async fn begin_write(
    connection: &mut SqliteConnection,
) -> Result<Transaction<'_, Db>, sqlx::Error> {
    connection.begin_with("BEGIN IMMEDIATE").await
}

/// How timestamps are stored: fixed-width UTC text, so that text order is time order.
type DbTime = String;

/// `2026-01-02T03:04:05.678901Z`: always six fractional digits (the domains keep
/// microseconds), always `Z`.
fn to_db_time(time: DateTime<Utc>) -> DbTime {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn from_db_time(text: DbTime) -> Result<DateTime<Utc>, BoxError> {
    DateTime::parse_from_rfc3339(&text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| CorruptRow { what: "timestamp" }.into())
}

pub(crate) async fn connect(url: &str, options: &ConnectOptions) -> Result<Handle, StorageError> {
    let connect_options = SqliteConnectOptions::from_str(url)
        .map_err(StorageError::InvalidUrl)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let open = || async {
        tokio::time::timeout(
            options.connect_timeout,
            SqliteConnection::connect_with(&connect_options),
        )
        .await
        .map_err(|_| StorageError::Connect(sqlx::Error::PoolTimedOut))?
        .map_err(StorageError::Connect)
    };
    // The writer connects first: it creates the file and switches it to WAL. Then the file
    // is locked for this process, before anything is read or written.
    let writer = open().await?;
    let lock_file = if in_memory {
        None
    } else {
        match lock_exclusively(connect_options.get_filename()) {
            Ok(file) => Some(file),
            Err(error) => {
                let _ = writer.close().await;
                return Err(error);
            }
        }
    };
    // Separate connections to an in-memory database would see separate databases (or lock
    // each other out through the shared cache): the writer does everything.
    let reader_count = if in_memory {
        0
    } else {
        options.max_connections.max(1)
    };
    let mut readers = Vec::new();
    for _ in 0..reader_count {
        readers.push(Mutex::new(Some(open().await?)));
    }
    Ok(Handle(Arc::new(Connections {
        lock_file: std::sync::Mutex::new(lock_file),
        writer: Mutex::new(Some(writer)),
        readers,
        next_reader: AtomicUsize::new(0),
        acquire_timeout: options.connect_timeout,
    })))
}

/// Creates `PATH.lock` beside the database file and locks it exclusively, or fails with
/// [`StorageError::InUse`] when another process holds it. The lock is the operating
/// system's (`flock`): it goes with the process, so a process killed with `kill -9` never
/// blocks the next start.
fn lock_exclusively(database: &std::path::Path) -> Result<std::fs::File, StorageError> {
    let mut lock = database.as_os_str().to_owned();
    lock.push(".lock");
    let lock = std::path::PathBuf::from(lock);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|source| StorageError::Lock {
            lock: lock.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::InUse {
            path: database.to_owned(),
            lock,
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StorageError::Lock { lock, source }),
    }
}

pub(crate) async fn register_instance(
    handle: &Handle,
    instance: crate::InstanceId,
    lease: Duration,
) -> Result<(), StorageError> {
    let now = Utc::now();
    let mut connection = write_connection(handle).await.map_err(unavailable)?;
    let mut transaction = begin_write(&mut connection).await.map_err(unavailable)?;
    // This process holds the file's lock: every other instance has stopped.
    sqlx::query("DELETE FROM instances WHERE id <> ?1")
        .bind(instance.as_uuid())
        .execute(&mut *transaction)
        .await
        .map_err(unavailable)?;
    sqlx::query(
        "INSERT INTO instances (id, started_at, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(instance.as_uuid())
    .bind(to_db_time(now))
    .bind(to_db_time(lease_end(now, lease)))
    .execute(&mut *transaction)
    .await
    .map_err(unavailable)?;
    transaction.commit().await.map_err(unavailable)
}

pub(crate) async fn renew_lease(
    handle: &Handle,
    instance: crate::InstanceId,
    lease: Duration,
) -> Result<bool, StorageError> {
    let renewed = sqlx::query("UPDATE instances SET expires_at = ?2 WHERE id = ?1")
        .bind(instance.as_uuid())
        .bind(to_db_time(lease_end(Utc::now(), lease)))
        .execute(&mut *write_connection(handle).await.map_err(unavailable)?)
        .await
        .map_err(unavailable)?;
    Ok(renewed.rows_affected() == 1)
}

pub(crate) async fn reap_expired_leases(handle: &Handle) -> Result<u64, StorageError> {
    let reaped = sqlx::query("DELETE FROM instances WHERE expires_at < ?1")
        .bind(to_db_time(Utc::now()))
        .execute(&mut *write_connection(handle).await.map_err(unavailable)?)
        .await
        .map_err(unavailable)?;
    Ok(reaped.rows_affected())
}

pub(crate) async fn deregister_instance(
    handle: &Handle,
    instance: crate::InstanceId,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM instances WHERE id = ?1")
        .bind(instance.as_uuid())
        .execute(&mut *write_connection(handle).await.map_err(unavailable)?)
        .await
        .map(drop)
        .map_err(unavailable)
}

pub(crate) async fn instance_leases(
    handle: &Handle,
) -> Result<Vec<(uuid::Uuid, DateTime<Utc>)>, StorageError> {
    let rows: Vec<(uuid::Uuid, DbTime)> = sqlx::query_as("SELECT id, expires_at FROM instances")
        .fetch_all(&mut *read_connection(handle).await.map_err(unavailable)?)
        .await
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|(id, expires_at)| Ok((id, from_db_time(expires_at).map_err(unavailable)?)))
        .collect()
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

pub(crate) async fn check_ready(handle: &Handle) -> Result<(), StorageError> {
    let mut connection = read_connection(handle).await.map_err(unavailable)?;
    sqlx::query("SELECT 1")
        .execute(&mut *connection)
        .await
        .map(drop)
        .map_err(unavailable)
}

pub(crate) async fn migrate(handle: &Handle) -> Result<(), StorageError> {
    let mut connection = write_connection(handle)
        .await
        .map_err(|error| StorageError::Migrate(error.into()))?;
    crate::migrations::sqlite()
        .run(&mut *connection)
        .await
        .map_err(StorageError::Migrate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_timestamps_have_one_width_and_sort_as_text_in_time_order() {
        let times: Vec<DateTime<Utc>> = [
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.1Z",
            "2026-01-02T03:04:05.123456Z",
            "2026-01-02T03:04:06Z",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        let stored: Vec<String> = times.iter().map(|time| to_db_time(*time)).collect();
        assert!(stored.iter().all(|text| text.len() == 27), "{stored:?}");
        assert!(stored.is_sorted(), "{stored:?}");
        for (time, text) in times.iter().zip(stored) {
            assert_eq!(from_db_time(text).unwrap(), *time);
        }
    }
}
