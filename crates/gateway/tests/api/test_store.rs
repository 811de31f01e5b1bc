//! Which store the suite runs against, and a fresh database on it for each app.
//!
//! `BOOKSTORE_TEST_STORE` picks the store: `memory` (the default), `sqlite` (a new file in
//! the temporary directory per app) or `postgres` (a new database per app on the server
//! that `BOOKSTORE_TEST_POSTGRES_URL` names, else on 127.0.0.1:5432; its database must allow
//! `CREATE DATABASE`).
//! Every database is removed when its [`TestDatabase`] is dropped, even when the test fails.
//!
//! On PostgreSQL, `DROP DATABASE` waits for a checkpoint (about half of the time a test spent
//! on its database), so databases are dropped on background threads; the drop of the last
//! live database waits for all of them, so a run leaves no database behind. (Copying a
//! migrated and seeded template instead of migrating each database was tried and gained
//! nothing measurable: creating and dropping the copy cost the same.)

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use bookstore_gateway::stores::{DatabaseOptions, MEMORY_URL};
use bookstore_storage::ConnectOptions;
use uuid::Uuid;

use crate::postgres_support::{
    create_database, drop_database_blocking, needs_a_server, server_url, with_database,
};

/// The variable that picks the store under test.
const STORE_VARIABLE: &str = "BOOKSTORE_TEST_STORE";

/// The store the suite runs against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TestStore {
    /// The in-memory stores of the domain crates.
    Memory,
    /// A SQLite file per app.
    Sqlite,
    /// A PostgreSQL database per app, created through `server_url`.
    Postgres {
        /// A URL of the server whose database can run `CREATE DATABASE`.
        server_url: String,
    },
}

impl TestStore {
    /// The store of this run, read from the environment once and announced once.
    pub(crate) fn current() -> &'static TestStore {
        static CURRENT: OnceLock<TestStore> = OnceLock::new();
        CURRENT.get_or_init(|| {
            let store = Self::from_environment();
            // Written to the real stderr: `eprintln!` is captured by the test harness and
            // never shown for a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "API tests run against the {} store ({STORE_VARIABLE})",
                store.name()
            );
            store
        })
    }

    fn from_environment() -> Self {
        let choice = std::env::var(STORE_VARIABLE).unwrap_or_default();
        match choice.trim() {
            "" | "memory" => TestStore::Memory,
            "sqlite" => TestStore::Sqlite,
            "postgres" => TestStore::Postgres {
                server_url: server_url(),
            },
            other => panic!(
                "{STORE_VARIABLE}={other:?} is not a store: use memory (the default), sqlite \
                 or postgres"
            ),
        }
    }

    /// `memory`, `sqlite` or `postgres`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            TestStore::Memory => "memory",
            TestStore::Sqlite => "sqlite",
            TestStore::Postgres { .. } => "postgres",
        }
    }
}

/// How the test apps open their database: small pools, as many tests run at once on few
/// cores, and a patient connect timeout for the same reason.
pub(crate) fn test_database_options() -> DatabaseOptions {
    DatabaseOptions {
        connect: ConnectOptions {
            max_connections: 4,
            connect_timeout: Duration::from_secs(30),
        },
        instance_lease: Duration::from_secs(600),
    }
}

/// A fresh, empty database on the store under test (no schema yet: opening it through
/// `stores::open` migrates it). Removed when dropped.
pub(crate) struct TestDatabase {
    url: String,
    location: Location,
}

/// Where a test database lives.
enum Location {
    /// Nothing to remove.
    Memory,
    /// A SQLite file (with its `-wal` and `-shm` companions).
    SqliteFile(PathBuf),
    /// A database on a PostgreSQL server.
    Postgres {
        /// The URL the database was created through (to drop it).
        server_url: String,
        /// The database's name.
        name: String,
    },
}

impl TestDatabase {
    /// Creates a database on [`TestStore::current`].
    pub(crate) async fn create() -> Self {
        match TestStore::current() {
            TestStore::Memory => Self {
                url: MEMORY_URL.to_owned(),
                location: Location::Memory,
            },
            TestStore::Sqlite => {
                let path = std::env::temp_dir().join(format!(
                    "bookstore-api-test-{}.sqlite",
                    Uuid::new_v4().simple()
                ));
                Self {
                    url: format!("sqlite://{}", path.display()),
                    location: Location::SqliteFile(path),
                }
            }
            TestStore::Postgres { server_url } => {
                let name = format!("bookstore_test_{}", Uuid::new_v4().simple());
                POSTGRES_DROPS.created();
                // Built first, so that it is dropped (and counted out) if the creation fails.
                let database = Self {
                    url: with_database(server_url, &name),
                    location: Location::Postgres {
                        server_url: server_url.clone(),
                        name: name.clone(),
                    },
                };
                create_database(server_url, &name)
                    .await
                    .unwrap_or_else(|error| panic!("{}", needs_a_server(&error)));
                database
            }
        }
    }

    /// The URL to open the database with (`memory`, `sqlite://...` or `postgres://...`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.location {
            Location::Memory => {}
            Location::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Location::Postgres { server_url, name } => {
                POSTGRES_DROPS.drop_in_background(server_url.clone(), name.clone());
            }
        }
    }
}

/// The PostgreSQL test databases of this process, dropped in the background.
static POSTGRES_DROPS: BackgroundDrops = BackgroundDrops {
    counts: Mutex::new(DropCounts {
        live: 0,
        dropping: 0,
    }),
    all_dropped: Condvar::new(),
};

/// Drops databases off the tests' critical path, yet leaves none behind: the drop of the last
/// live database waits until every drop has finished, so the run cannot end before them.
struct BackgroundDrops {
    counts: Mutex<DropCounts>,
    all_dropped: Condvar,
}

struct DropCounts {
    /// Databases created (or being created) and not dropped yet.
    live: usize,
    /// Drops started and not finished.
    dropping: usize,
}

impl BackgroundDrops {
    fn counts(&self) -> MutexGuard<'_, DropCounts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a database about to be created.
    fn created(&self) {
        self.counts().live += 1;
    }

    /// Drops the database `name` on a thread of its own (Drop cannot await, and may run while
    /// the test's runtime unwinds a panic); waits for every drop if it was the last live one.
    fn drop_in_background(&'static self, server_url: String, name: String) {
        let last = {
            let mut counts = self.counts();
            counts.live -= 1;
            counts.dropping += 1;
            counts.live == 0
        };
        std::thread::spawn(move || {
            let dropped = drop_database_blocking(&server_url, &name);
            if let Err(error) = dropped {
                let _ = writeln!(
                    std::io::stderr(),
                    "could not drop the test database {name}: {error}"
                );
            }
            let mut counts = self.counts();
            counts.dropping -= 1;
            if counts.dropping == 0 {
                self.all_dropped.notify_all();
            }
        });
        if last {
            let mut counts = self.counts();
            while counts.dropping > 0 {
                counts = self
                    .all_dropped
                    .wait(counts)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}
