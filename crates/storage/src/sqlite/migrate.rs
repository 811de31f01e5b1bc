//! The SQLite migration runner: applies `migrations/sqlite/*.sql` through the
//! [`Engine`](super::engine::Engine)'s writer connection, keeping the books exactly as
//! sqlx's migrator keeps them, so a database migrated by either is up to date for the other.
//!
//! The bookkeeping is sqlx's `_sqlx_migrations` table (`version`, `description`,
//! `installed_on`, `success`, `checksum` = SHA-384 of the SQL, `execution_time` in
//! nanoseconds). For each migration of this build, oldest first: one already applied is
//! skipped if its checksum matches, and refused ([`MigrateError::VersionMismatch`]) if not;
//! one not applied runs in its own transaction together with its row. A database that has a
//! version this build does not know ([`MigrateError::VersionMissing`]) or a migration that
//! failed half-way ([`MigrateError::Dirty`]) is refused before anything runs.
//!
//! The errors are sqlx's [`MigrateError`] because [`StorageError::Migrate`] carries one.

use std::time::Instant;

use rusqlite::Connection;
use sqlx::migrate::MigrateError;

use super::engine::{Engine, WriteError};
use crate::StorageError;
use crate::migrations::{MigrationFile, SQLITE as MIGRATIONS};

/// sqlx's bookkeeping table, created as sqlx creates it (to the whitespace, which SQLite
/// keeps in the schema).
const CREATE_MIGRATIONS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);";

const FIRST_FAILED_VERSION: &str =
    "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1";

const APPLIED: &str = "SELECT version, checksum FROM _sqlx_migrations ORDER BY version";

/// The row of a migration just run; its time is filled in after the commit, as sqlx does.
const RECORD_MIGRATION: &str = "
    INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
    VALUES (?1, ?2, TRUE, ?3, -1)";

const RECORD_EXECUTION_TIME: &str =
    "UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2";

/// Brings the engine's database up to date with [`MIGRATIONS`], on the writer thread and
/// outside any batch.
pub(crate) async fn migrate(engine: &Engine) -> Result<(), StorageError> {
    engine
        .write_alone(|connection| apply_migrations(connection, MIGRATIONS))
        .await
        .map_err(|error| match error {
            WriteError::Job(error) => StorageError::Migrate(error),
            WriteError::Engine(error) => StorageError::Migrate(MigrateError::Execute(
                sqlx::Error::Io(std::io::Error::other(error)),
            )),
        })
}

/// Applies the `migrations` that `connection`'s database has not seen, each in its own
/// transaction; see the module documentation for what is refused.
pub(crate) fn apply_migrations(
    connection: &Connection,
    migrations: &[MigrationFile],
) -> Result<(), MigrateError> {
    connection
        .execute_batch(CREATE_MIGRATIONS_TABLE)
        .map_err(execute)?;
    let failed: Option<i64> = {
        let mut statement = connection.prepare(FIRST_FAILED_VERSION).map_err(execute)?;
        let mut rows = statement.query([]).map_err(execute)?;
        match rows.next().map_err(execute)? {
            Some(row) => Some(row.get(0).map_err(execute)?),
            None => None,
        }
    };
    if let Some(version) = failed {
        return Err(MigrateError::Dirty(version));
    }
    let applied: Vec<(i64, Vec<u8>)> = connection
        .prepare(APPLIED)
        .and_then(|mut statement| {
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .map_err(execute)?;
    if let Some((version, _)) = applied
        .iter()
        .find(|(version, _)| !migrations.iter().any(|known| known.version == *version))
    {
        return Err(MigrateError::VersionMissing(*version));
    }
    for migration in migrations {
        match applied
            .iter()
            .find(|(version, _)| *version == migration.version)
        {
            Some((_, checksum)) if *checksum == migration.checksum() => {}
            Some(_) => return Err(MigrateError::VersionMismatch(migration.version)),
            None => apply(connection, migration)?,
        }
    }
    Ok(())
}

/// Runs one migration and records it, in one transaction.
fn apply(connection: &Connection, migration: &MigrationFile) -> Result<(), MigrateError> {
    let started = Instant::now();
    connection
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(execute)?;
    let applied = connection
        .execute_batch(migration.sql)
        .map_err(|error| MigrateError::ExecuteMigration(driver_error(error), migration.version))
        .and_then(|()| {
            connection
                .execute(
                    RECORD_MIGRATION,
                    (
                        migration.version,
                        migration.description,
                        migration.checksum(),
                    ),
                )
                .map_err(execute)
        })
        .and_then(|_| connection.execute_batch("COMMIT").map_err(execute));
    if let Err(error) = applied {
        if !connection.is_autocommit() {
            let _ = connection.execute_batch("ROLLBACK");
        }
        return Err(error);
    }
    let nanoseconds = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
    connection
        .execute(RECORD_EXECUTION_TIME, (nanoseconds, migration.version))
        .map_err(execute)?;
    Ok(())
}

/// A SQLite error as sqlx's migrator would report it.
fn driver_error(error: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(error))
}

fn execute(error: rusqlite::Error) -> MigrateError {
    MigrateError::Execute(driver_error(error))
}

#[cfg(test)]
mod tests;
