//! [`StorageError`]: failures of the storage crate's own operations (connecting, migrating,
//! health checks, idempotency records). Store trait methods report the domains' errors.

/// Why a database could not be opened, migrated or used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL names no supported backend.
    #[error("unsupported database url: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl,
    /// The URL could not be understood by the driver.
    #[error("invalid database url")]
    InvalidUrl(#[source] sqlx::Error),
    /// Another process has the SQLite file open (it holds the lock file).
    #[error(
        "the SQLite database {} is in use by another process (it holds {}); a SQLite file serves one process",
        path.display(),
        lock.display()
    )]
    InUse {
        /// The database file.
        path: std::path::PathBuf,
        /// The lock file the other process holds.
        lock: std::path::PathBuf,
    },
    /// The lock file of a SQLite database could not be created or locked.
    #[error("cannot lock {}", lock.display())]
    Lock {
        /// The lock file.
        lock: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database could not be reached or opened.
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database could not answer (down, closed, or a row it holds cannot be read).
    #[error("the database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}
