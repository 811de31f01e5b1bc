//! The SQLite backend, on rusqlite through the [`Engine`](engine::Engine): the instances'
//! leases, and one store type per domain trait ([`SqliteCatalogue`], [`SqliteOrderStore`],
//! [`SqliteDeliveryStore`], [`SqlitePaymentGateway`], [`SqliteIdempotencyStore`]), each
//! holding a [`Handle`].
//!
//! # Writes and reads
//!
//! Every store call that writes is **one** write job of the engine: the jobs queued
//! together run one after the other on the writer thread in one transaction (each in a
//! savepoint of its own) and are answered after its COMMIT, so concurrent requests share a
//! commit instead of queueing for one each; a job that fails has its own changes rolled
//! back. A reservation, for one, is one job: the journal row and the conditional stock
//! updates of every line. Every call that only reads is one read job, run on a reader
//! connection on the caller's thread (WAL lets readers run while the writer writes).
//!
//! Timestamps are stored as fixed-width UTC text (so that text order is time order), ids as
//! 16-byte blobs, days as `YYYY-MM-DD` text: what the earlier sqlx-based stores wrote, so a
//! file written by either reads the same.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, Row, RowIndex};
use uuid::Uuid;

use crate::failure::{CorruptRow, StoreFailure, unavailable};
use crate::{ConnectOptions, InstanceId, StorageError};

mod book_cache;
mod catalogue;
mod deliveries;
// `Engine::statistics` serves the engine example and tests only.
#[allow(dead_code)]
pub(crate) mod engine;
mod events;
mod idempotency;
pub(crate) mod migrate;
mod orders;
mod payments;
mod relays;
mod webhooks;

pub(crate) use catalogue::SqliteCatalogue;
pub(crate) use deliveries::SqliteDeliveryStore;
pub(crate) use events::{SqliteEventLog, record as record_events};
pub(crate) use idempotency::SqliteIdempotencyStore;
pub(crate) use orders::SqliteOrderStore;
pub(crate) use payments::SqlitePaymentGateway;
pub(crate) use relays::SqliteRelayCursors;
pub(crate) use webhooks::SqliteWebhookStore;

use engine::{Engine, EngineOptions, EnginePath, WriteError};

/// How long a connection waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open SQLite database: the engine, and the book cache every catalogue store on it
/// shares. Cloning is cheap.
#[derive(Clone)]
pub(crate) struct Handle {
    engine: Engine,
    books: Arc<book_cache::BookCache>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    /// The book cache every catalogue store on this database shares.
    pub(crate) fn book_cache(&self) -> Arc<book_cache::BookCache> {
        Arc::clone(&self.books)
    }

    /// Runs `job` as one write job of the engine (see the module documentation): its
    /// error, or the engine's as `E`'s `Unavailable`.
    pub(crate) async fn write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: StoreFailure + Send + 'static,
    {
        match self.engine.write(job).await {
            Ok(value) => Ok(value),
            Err(WriteError::Job(error)) => Err(error),
            Err(WriteError::Engine(error)) => Err(unavailable(error)),
        }
    }

    /// [`Handle::write`] in the engine's background queue (the webhook dispatcher, the
    /// purges): behind the requests' writes.
    pub(crate) async fn write_background<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: StoreFailure + Send + 'static,
    {
        match self.engine.write_background(job).await {
            Ok(value) => Ok(value),
            Err(WriteError::Job(error)) => Err(error),
            Err(WriteError::Engine(error)) => Err(unavailable(error)),
        }
    }

    /// Runs `job` on a reader connection, on this thread; a failure is `E`'s `Unavailable`.
    pub(crate) fn read<T, E: StoreFailure>(
        &self,
        job: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, E> {
        self.engine.read(job).map_err(unavailable)
    }

    /// Closes the database: later calls of every store fail as unavailable.
    pub(crate) async fn close(&self) {
        self.engine.close().await;
    }
}

/// `2026-01-02T03:04:05.678901Z`: always six fractional digits (the domains keep
/// microseconds), always `Z`.
pub(crate) fn to_db_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn from_db_time(text: &str) -> Result<DateTime<Utc>, CorruptRow> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| CorruptRow { what: "timestamp" })
}

/// A day as stored: `YYYY-MM-DD`.
pub(crate) fn to_db_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A value of a row that does not read back as its domain value, as rusqlite reports a
/// column it cannot convert.
pub(crate) fn corrupt(error: CorruptRow) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, Type::Null, Box::new(error))
}

/// The UUID stored (as 16 bytes) in column `name` (or at that index).
pub(crate) fn uuid_at(row: &Row<'_>, name: impl RowIndex) -> rusqlite::Result<Uuid> {
    let bytes: Vec<u8> = row.get(name)?;
    Uuid::from_slice(&bytes).map_err(|_| corrupt(CorruptRow { what: "uuid" }))
}

/// The timestamp stored in column `name`.
pub(crate) fn time_at(row: &Row<'_>, name: &str) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(name)?;
    from_db_time(&text).map_err(corrupt)
}

/// The timestamp stored in column `name`, if any.
pub(crate) fn optional_time_at(
    row: &Row<'_>,
    name: &str,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(name)?;
    text.map(|text| from_db_time(&text).map_err(corrupt))
        .transpose()
}

/// The day stored in column `name`.
pub(crate) fn date_at(row: &Row<'_>, name: &str) -> rusqlite::Result<NaiveDate> {
    let text: String = row.get(name)?;
    NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| corrupt(CorruptRow { what: "date" }))
}

/// Opens the SQLite database `url` names (see [`crate::connect`]).
pub(crate) async fn connect(url: &str, options: &ConnectOptions) -> Result<Handle, StorageError> {
    let path = EnginePath::from_url(url).ok_or(StorageError::UnsupportedUrl)?;
    let engine_options = EngineOptions {
        readers: usize::try_from(options.max_connections.max(1)).unwrap_or(1),
        busy_timeout: BUSY_TIMEOUT,
        ..EngineOptions::default()
    };
    Ok(Handle {
        engine: Engine::open(&path, &engine_options)?,
        books: Arc::default(),
    })
}

pub(crate) async fn migrate(handle: &Handle) -> Result<(), StorageError> {
    migrate::migrate(&handle.engine).await
}

pub(crate) async fn check_ready(handle: &Handle) -> Result<(), StorageError> {
    handle.read(|connection| connection.query_row("SELECT 1", [], |_| Ok(())))
}

/// This process holds the file's lock: every other instance has stopped, so their rows go.
pub(crate) async fn register_instance(
    handle: &Handle,
    instance: InstanceId,
    lease: Duration,
) -> Result<(), StorageError> {
    let now = Utc::now();
    let (started, expires) = (to_db_time(now), to_db_time(lease_end(now, lease)));
    handle
        .write(move |connection| {
            connection
                .prepare_cached("DELETE FROM instances WHERE id <> ?1")?
                .execute([instance.as_uuid().as_bytes()])?;
            connection
                .prepare_cached(
                    "INSERT INTO instances (id, started_at, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
                )?
                .execute(rusqlite::params![
                    instance.as_uuid().as_bytes(),
                    started,
                    expires
                ])?;
            Ok::<_, Failed>(())
        })
        .await
        .map_err(|error: Failed| error.0)
}

pub(crate) async fn renew_lease(
    handle: &Handle,
    instance: InstanceId,
    lease: Duration,
) -> Result<bool, StorageError> {
    let expires = to_db_time(lease_end(Utc::now(), lease));
    handle
        .write(move |connection| {
            let renewed = connection
                .prepare_cached("UPDATE instances SET expires_at = ?2 WHERE id = ?1")?
                .execute(rusqlite::params![instance.as_uuid().as_bytes(), expires])?;
            Ok::<_, Failed>(renewed == 1)
        })
        .await
        .map_err(|error: Failed| error.0)
}

pub(crate) async fn reap_expired_leases(handle: &Handle) -> Result<u64, StorageError> {
    let now = to_db_time(Utc::now());
    handle
        .write(move |connection| {
            let reaped = connection
                .prepare_cached("DELETE FROM instances WHERE expires_at < ?1")?
                .execute([now])?;
            Ok::<_, Failed>(u64::try_from(reaped).unwrap_or(u64::MAX))
        })
        .await
        .map_err(|error: Failed| error.0)
}

pub(crate) async fn deregister_instance(
    handle: &Handle,
    instance: InstanceId,
) -> Result<(), StorageError> {
    handle
        .write(move |connection| {
            connection
                .prepare_cached("DELETE FROM instances WHERE id = ?1")?
                .execute([instance.as_uuid().as_bytes()])?;
            Ok::<_, Failed>(())
        })
        .await
        .map_err(|error: Failed| error.0)
}

pub(crate) async fn instance_leases(
    handle: &Handle,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, StorageError> {
    handle.read(|connection| {
        connection
            .prepare_cached("SELECT id, expires_at FROM instances")?
            .query_map([], |row| {
                Ok((uuid_at(row, "id")?, time_at(row, "expires_at")?))
            })?
            .collect()
    })
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

/// A write job's failure as a [`StorageError`] (for the jobs that answer one).
struct Failed(StorageError);

impl StoreFailure for Failed {
    fn unavailable(cause: crate::failure::BoxError) -> Self {
        Failed(StorageError::Unavailable(cause))
    }
}

impl From<rusqlite::Error> for Failed {
    fn from(error: rusqlite::Error) -> Self {
        Failed(unavailable(error))
    }
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
            assert_eq!(from_db_time(&text).unwrap(), *time);
        }
    }

    /// The page statements read one row more than the largest page and the caller stops
    /// early: SQLite compiles a statement with a bound `LIMIT` again on every run.
    #[test]
    fn the_page_and_feed_statements_bind_no_limit_and_are_never_recompiled() {
        let page_rows = bookstore_types::PageLimit::MAX + 1;
        let connection = Connection::open_in_memory().unwrap();
        migrate::apply_migrations(&connection, crate::migrations::SQLITE).unwrap();
        let feed = [
            events::feed_statement("<", "DESC"),
            events::feed_statement(">", "ASC"),
        ];
        let pages = [
            catalogue::LIST_BOOKS,
            catalogue::LIST_BOOKS_BY_AUTHOR,
            catalogue::LIST_BOOKS_BY_TEXT,
            catalogue::LIST_BOOKS_BY_AUTHOR_AND_TEXT,
            orders::LIST_ORDERS,
            orders::LIST_ORDERS_BEFORE,
            &feed[0],
            &feed[1],
        ];
        let after = events::after_statement();
        for sql in pages.into_iter().chain([after.as_str()]) {
            if sql != after {
                assert!(
                    sql.trim_end().ends_with(&format!("LIMIT {page_rows}")),
                    "{sql}"
                );
            }
            let mut statement = connection.prepare(sql).unwrap();
            let parameters = statement.parameter_count();
            for run in 0..5 {
                let values: Vec<String> = (0..parameters).map(|k| format!("{run}-{k}")).collect();
                let mut rows = statement
                    .query(rusqlite::params_from_iter(values.iter()))
                    .unwrap();
                while rows.next().unwrap().is_some() {}
            }
            assert_eq!(
                statement.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{sql}"
            );
        }
    }

    #[test]
    fn every_shared_statement_gives_each_dollar_parameter_its_own_number_on_sqlite() {
        let connection = Connection::open_in_memory().unwrap();
        migrate::apply_migrations(&connection, crate::migrations::SQLITE).unwrap();
        for sql in crate::sql::ALL {
            let statement = connection.prepare(sql).unwrap_or_else(|error| {
                panic!("SQLite prepares {sql}: {error}");
            });
            let count = statement.parameter_count();
            assert!(count > 0, "{sql}");
            for k in 1..=count {
                assert_eq!(
                    statement.parameter_index(&format!("${k}")).unwrap(),
                    Some(k),
                    "${k} in {sql}"
                );
            }
        }
    }
}
