//! The schema migrations of both backends, compiled in. PostgreSQL's (`migrations/postgres`)
//! are applied by sqlx's migrator; SQLite's (`migrations/sqlite`) by the engine's runner
//! ([`crate::sqlite::migrate`]), which keeps sqlx's bookkeeping; its tests check it against
//! sqlx's migrator built from the same list.
//!
//! They are listed here with `include_str!` rather than found by `sqlx::migrate!`, because
//! that macro needs sqlx's `macros` feature, which compiles both database drivers (and
//! SQLite's C sources) a second time for the proc-macro. A test checks that every file in
//! the folders is listed.

use std::borrow::Cow;

use sha2::{Digest, Sha384};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// One migration file: its version, description and SQL.
pub(crate) struct MigrationFile {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

impl MigrationFile {
    /// What sqlx stores in `checksum`: the SHA-384 of the SQL text.
    pub(crate) fn checksum(&self) -> Vec<u8> {
        Sha384::digest(self.sql.as_bytes()).to_vec()
    }
}

/// The SQLite migrations, oldest first (`migrations/sqlite/<version>_<description>.sql`).
pub(crate) const SQLITE: &[MigrationFile] = &[
    MigrationFile {
        version: 1,
        description: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    MigrationFile {
        version: 2,
        description: "instances",
        sql: include_str!("../migrations/sqlite/0002_instances.sql"),
    },
    MigrationFile {
        version: 3,
        description: "fulfilment",
        sql: include_str!("../migrations/sqlite/0003_fulfilment.sql"),
    },
    MigrationFile {
        version: 4,
        description: "events",
        sql: include_str!("../migrations/sqlite/0004_events.sql"),
    },
    MigrationFile {
        version: 5,
        description: "webhooks",
        sql: include_str!("../migrations/sqlite/0005_webhooks.sql"),
    },
    MigrationFile {
        version: 6,
        description: "relays",
        sql: include_str!("../migrations/sqlite/0006_relays.sql"),
    },
];

/// The PostgreSQL migrations, oldest first (`migrations/postgres/<version>_<description>.sql`).
const POSTGRES: &[MigrationFile] = &[
    MigrationFile {
        version: 1,
        description: "initial",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    MigrationFile {
        version: 2,
        description: "instances",
        sql: include_str!("../migrations/postgres/0002_instances.sql"),
    },
    MigrationFile {
        version: 3,
        description: "fulfilment",
        sql: include_str!("../migrations/postgres/0003_fulfilment.sql"),
    },
    MigrationFile {
        version: 4,
        description: "events",
        sql: include_str!("../migrations/postgres/0004_events.sql"),
    },
    MigrationFile {
        version: 5,
        description: "webhooks",
        sql: include_str!("../migrations/postgres/0005_webhooks.sql"),
    },
    MigrationFile {
        version: 6,
        description: "relays",
        sql: include_str!("../migrations/postgres/0006_relays.sql"),
    },
];

fn migrator(files: &[MigrationFile]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|file| {
                Migration::new(
                    file.version,
                    Cow::Borrowed(file.description),
                    MigrationType::Simple,
                    file.sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// The migrator sqlx would use for SQLite.
#[cfg(test)]
pub(crate) fn sqlite() -> Migrator {
    migrator(SQLITE)
}

/// The migrator for PostgreSQL.
pub(crate) fn postgres() -> Migrator {
    migrator(POSTGRES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `(version, description)` of every `.sql` file in `migrations/<backend>`, sorted.
    fn files_in(backend: &str) -> Vec<(i64, String)> {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut found: Vec<(i64, String)> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter_map(|name| name.strip_suffix(".sql").map(str::to_owned))
            .map(|stem| {
                let (version, description) = stem.split_once('_').unwrap();
                (version.parse().unwrap(), description.to_owned())
            })
            .collect();
        found.sort();
        found
    }

    fn listed(files: &[MigrationFile]) -> Vec<(i64, String)> {
        files
            .iter()
            .map(|file| (file.version, file.description.to_owned()))
            .collect()
    }

    #[test]
    fn every_migration_file_is_listed_in_order() {
        assert_eq!(listed(SQLITE), files_in("sqlite"));
        assert_eq!(listed(POSTGRES), files_in("postgres"));
    }

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        assert_eq!(listed(SQLITE), listed(POSTGRES));
    }
}
