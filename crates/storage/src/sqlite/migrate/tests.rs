//! The runner agrees with sqlx's migrator: same list, same bookkeeping, same schema.

use std::str::FromStr;

use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};

use super::*;
use crate::sqlite::engine::tests::TemporaryDatabase;
use crate::sqlite::engine::{EngineOptions, EnginePath};

/// Migrates the file with sqlx's migrator, as the SQLite backend has done so far.
async fn migrate_with_sqlx(database: &TemporaryDatabase) {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", database.path.display()))
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
    crate::migrations::sqlite()
        .run(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
}

/// Every schema object's type, name and SQL, and the bookkeeping rows but their times.
fn schema_and_bookkeeping(database: &TemporaryDatabase) -> (Vec<[String; 3]>, Vec<String>) {
    let connection = Connection::open(&database.path).unwrap();
    let schema = connection
        .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name")
        .unwrap()
        .query_map([], |row| Ok([row.get(0)?, row.get(1)?, row.get(2)?]))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let bookkeeping = connection
        .prepare(
            "SELECT version || ' ' || description || ' ' || success || ' ' || hex(checksum) \
             || ' ' || (execution_time >= 0) FROM _sqlx_migrations ORDER BY version",
        )
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    (schema, bookkeeping)
}

async fn migrate_with_engine(database: &TemporaryDatabase) -> Result<(), StorageError> {
    let engine = Engine::open(&database.engine_path(), &EngineOptions::default()).unwrap();
    let migrated = migrate(&engine).await;
    engine.close().await;
    migrated
}

#[test]
fn the_runner_lists_the_migrations_sqlx_applies_with_the_same_checksums() {
    let sqlx_migrations: Vec<(i64, String, Vec<u8>)> = crate::migrations::sqlite()
        .iter()
        .map(|migration| {
            (
                migration.version,
                migration.description.to_string(),
                migration.checksum.to_vec(),
            )
        })
        .collect();
    let ours: Vec<(i64, String, Vec<u8>)> = MIGRATIONS
        .iter()
        .map(|migration| {
            (
                migration.version,
                migration.description.to_owned(),
                migration.checksum(),
            )
        })
        .collect();
    assert_eq!(ours, sqlx_migrations);
}

#[tokio::test]
async fn a_file_migrated_by_sqlx_is_up_to_date_for_the_runner() {
    let database = TemporaryDatabase::new();
    migrate_with_sqlx(&database).await;
    let before = {
        let connection = Connection::open(&database.path).unwrap();
        connection
            .prepare("SELECT version, installed_on, execution_time FROM _sqlx_migrations")
            .unwrap()
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
    };
    assert_eq!(before.len(), MIGRATIONS.len());
    let schema_before = schema_and_bookkeeping(&database);
    migrate_with_engine(&database).await.unwrap();
    let after = {
        let connection = Connection::open(&database.path).unwrap();
        connection
            .prepare("SELECT version, installed_on, execution_time FROM _sqlx_migrations")
            .unwrap()
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
    };
    assert_eq!(after, before, "nothing was applied again");
    assert_eq!(schema_and_bookkeeping(&database), schema_before);
}

#[tokio::test]
async fn a_fresh_file_gets_the_schema_and_bookkeeping_sqlx_gives_it() {
    let by_sqlx = TemporaryDatabase::new();
    migrate_with_sqlx(&by_sqlx).await;
    let by_runner = TemporaryDatabase::new();
    migrate_with_engine(&by_runner).await.unwrap();
    assert_eq!(
        schema_and_bookkeeping(&by_runner),
        schema_and_bookkeeping(&by_sqlx)
    );
    // And migrating again changes nothing.
    migrate_with_engine(&by_runner).await.unwrap();
    assert_eq!(
        schema_and_bookkeeping(&by_runner),
        schema_and_bookkeeping(&by_sqlx)
    );
}

#[tokio::test]
async fn a_database_half_migrated_by_an_older_build_gets_the_rest() {
    let database = TemporaryDatabase::new();
    let engine = Engine::open(&database.engine_path(), &EngineOptions::default()).unwrap();
    engine
        .write_alone(|connection| apply_migrations(connection, &MIGRATIONS[..1]))
        .await
        .unwrap();
    migrate(&engine).await.unwrap();
    engine.close().await;
    let full = TemporaryDatabase::new();
    migrate_with_sqlx(&full).await;
    assert_eq!(
        schema_and_bookkeeping(&database),
        schema_and_bookkeeping(&full)
    );
}

#[tokio::test]
async fn a_database_whose_applied_migration_was_changed_is_refused() {
    let database = TemporaryDatabase::new();
    migrate_with_sqlx(&database).await;
    Connection::open(&database.path)
        .unwrap()
        .execute(
            "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 2",
            [],
        )
        .unwrap();
    let refused = migrate_with_engine(&database).await;
    assert!(
        matches!(
            refused,
            Err(StorageError::Migrate(MigrateError::VersionMismatch(2)))
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let database = TemporaryDatabase::new();
    migrate_with_sqlx(&database).await;
    Connection::open(&database.path)
        .unwrap()
        .execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99, 'future', TRUE, x'00', 1)",
            [],
        )
        .unwrap();
    let refused = migrate_with_engine(&database).await;
    assert!(
        matches!(
            refused,
            Err(StorageError::Migrate(MigrateError::VersionMissing(99)))
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_database_with_a_failed_migration_is_refused() {
    let database = TemporaryDatabase::new();
    migrate_with_sqlx(&database).await;
    Connection::open(&database.path)
        .unwrap()
        .execute(
            "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 3",
            [],
        )
        .unwrap();
    let refused = migrate_with_engine(&database).await;
    assert!(
        matches!(refused, Err(StorageError::Migrate(MigrateError::Dirty(3)))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_of_itself_behind() {
    let engine = Engine::open(&EnginePath::Memory, &EngineOptions::default()).unwrap();
    let broken = [
        MigrationFile {
            version: 1,
            description: "good",
            sql: "CREATE TABLE kept (id INTEGER)",
        },
        MigrationFile {
            version: 2,
            description: "broken",
            sql: "CREATE TABLE dropped (id INTEGER); SELECT * FROM no_such_table;",
        },
    ];
    let failed = engine
        .write_alone(move |connection| apply_migrations(connection, &broken))
        .await;
    assert!(
        matches!(
            failed,
            Err(WriteError::Job(MigrateError::ExecuteMigration(_, 2)))
        ),
        "{failed:?}"
    );
    let (tables, versions) = engine
        .read(|connection| {
            let tables: Vec<String> = connection
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let versions: Vec<i64> = connection
                .prepare("SELECT version FROM _sqlx_migrations")?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((tables, versions))
        })
        .unwrap();
    assert_eq!(tables, ["_sqlx_migrations", "kept"]);
    assert_eq!(versions, [1]);
    engine.close().await;
}
