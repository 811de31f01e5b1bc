//! The engine's guarantees: group commit keeps the jobs that succeed, answers only after
//! the commit, survives panics, refuses work once closed, and holds the file's lock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::Barrier;

use super::*;

/// A database file in the temporary directory, removed (with its WAL, shared memory and
/// lock files) when dropped.
pub(crate) struct TemporaryDatabase {
    pub(crate) path: PathBuf,
}

impl TemporaryDatabase {
    pub(crate) fn new() -> Self {
        TemporaryDatabase {
            path: std::env::temp_dir().join(format!(
                "bookstore-engine-test-{}.sqlite",
                uuid::Uuid::new_v4().simple()
            )),
        }
    }

    pub(crate) fn engine_path(&self) -> EnginePath {
        EnginePath::File(self.path.clone())
    }
}

impl Drop for TemporaryDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let mut file = self.path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

/// An engine on a fresh file with a table `items (name TEXT PRIMARY KEY, value INTEGER)`.
async fn engine_with_items(database: &TemporaryDatabase, options: &EngineOptions) -> Engine {
    let engine = Engine::open(&database.engine_path(), options).unwrap();
    engine
        .write(|connection| {
            connection.execute_batch("CREATE TABLE items (name TEXT PRIMARY KEY, value INTEGER)")
        })
        .await
        .unwrap();
    engine
}

fn insert_item(
    name: &str,
    value: i64,
) -> impl FnOnce(&Connection) -> rusqlite::Result<usize> + Send + use<> {
    let name = name.to_owned();
    move |connection| {
        connection
            .prepare_cached("INSERT INTO items (name, value) VALUES (?1, ?2)")?
            .execute((name, value))
    }
}

fn value_of(connection: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    connection
        .query_row("SELECT value FROM items WHERE name = ?1", [name], |row| {
            row.get(0)
        })
        .optional()
}

fn count_items(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row("SELECT count(*) FROM items", [], |row| row.get(0))
}

#[derive(Debug, PartialEq, Eq)]
struct Refused;

/// Queues a job that holds the writer thread until the returned sender is used (or
/// dropped): the writes queued meanwhile are taken as one batch.
async fn hold_writer(engine: &Engine) -> std::sync::mpsc::Sender<()> {
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel();
    let engine = engine.clone();
    tokio::spawn(async move {
        engine
            .write(move |_| {
                let _ = started.send(());
                let _ = gate.recv();
                Ok::<_, Refused>(())
            })
            .await
    });
    running.await.unwrap();
    release
}

/// Polls every write once, which queues its job (the queue has room for many), so that
/// they wait behind [`hold_writer`] in order.
async fn queue_all<F: Future + Unpin>(writes: &mut [F]) {
    std::future::poll_fn(|context| {
        for write in writes.iter_mut() {
            assert!(std::pin::Pin::new(&mut *write).poll(context).is_pending());
        }
        std::task::Poll::Ready(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_is_rolled_back_and_the_other_jobs_of_its_batch_commit() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    let release = hold_writer(&engine).await;
    let before = engine.statistics();
    // Queued together, so one batch: the failing job sits between two that succeed.
    let mut first = Box::pin(engine.write(insert_item("first", 1)));
    let mut failing = Box::pin(engine.write(|connection| {
        insert_item("failing", 2)(connection).unwrap();
        Err::<(), _>(Refused)
    }));
    let mut last = Box::pin(engine.write(insert_item("last", 3)));
    std::future::poll_fn(|context| {
        for write in [
            first.as_mut().poll(context).is_pending(),
            failing.as_mut().poll(context).is_pending(),
            last.as_mut().poll(context).is_pending(),
        ] {
            assert!(write);
        }
        std::task::Poll::Ready(())
    })
    .await;
    release.send(()).unwrap();
    let (first, failing, last) = (first.await, failing.await, last.await);
    assert_eq!(first.unwrap(), 1);
    assert!(
        matches!(failing, Err(WriteError::Job(Refused))),
        "{failing:?}"
    );
    assert_eq!(last.unwrap(), 1);
    let names: Vec<Option<i64>> = engine
        .read(|connection| {
            ["first", "failing", "last"]
                .iter()
                .map(|name| value_of(connection, name))
                .collect()
        })
        .unwrap();
    assert_eq!(names, [Some(1), None, Some(3)]);
    let after = engine.statistics();
    assert_eq!(
        (after.jobs - before.jobs, after.batches - before.batches),
        (3, 1)
    );
    engine.close().await;
}

#[tokio::test]
async fn a_job_that_breaks_a_constraint_is_answered_its_error_and_the_batch_commits() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    engine.write(insert_item("taken", 1)).await.unwrap();
    let (duplicate, other) = tokio::join!(
        engine.write(insert_item("taken", 2)),
        engine.write(insert_item("free", 3)),
    );
    let Err(WriteError::Job(rusqlite::Error::SqliteFailure(failure, _))) = duplicate else {
        panic!("expected a constraint violation, got {duplicate:?}");
    };
    assert_eq!(failure.code, rusqlite::ErrorCode::ConstraintViolation);
    other.unwrap();
    let values = engine
        .read(|connection| {
            Ok((
                value_of(connection, "taken")?,
                value_of(connection, "free")?,
            ))
        })
        .unwrap();
    assert_eq!(values, (Some(1), Some(3)));
    engine.close().await;
}

#[tokio::test]
async fn a_write_is_committed_when_it_resolves_so_another_connection_sees_it() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    let outsider = Connection::open(&database.path).unwrap();
    for round in 0..20 {
        let name = format!("item-{round}");
        engine.write(insert_item(&name, round)).await.unwrap();
        assert_eq!(value_of(&outsider, &name).unwrap(), Some(round));
        assert_eq!(
            engine
                .read(|connection| value_of(connection, &name))
                .unwrap(),
            Some(round)
        );
    }
    engine.close().await;
}

#[tokio::test]
async fn a_closed_engine_answers_closed_to_writes_and_reads() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    let clone = engine.clone();
    engine.close().await;
    let write = clone.write(insert_item("late", 1)).await;
    assert!(
        matches!(write, Err(WriteError::Engine(EngineError::Closed))),
        "{write:?}"
    );
    let alone = clone.write_alone(|_| Ok::<_, Refused>(())).await;
    assert!(
        matches!(alone, Err(WriteError::Engine(EngineError::Closed))),
        "{alone:?}"
    );
    let read = clone.read(count_items);
    assert!(matches!(read, Err(ReadError::Closed)), "{read:?}");
    // Closing again is harmless.
    clone.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_the_writes_already_queued_and_they_commit() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    let release = hold_writer(&engine).await;
    let mut writes: Vec<_> = (0..50)
        .map(|number| Box::pin(engine.write(insert_item(&format!("{number}"), number))))
        .collect();
    queue_all(&mut writes).await;
    let closing = tokio::spawn({
        let engine = engine.clone();
        async move { engine.close().await }
    });
    release.send(()).unwrap();
    for write in writes {
        write.await.unwrap();
    }
    closing.await.unwrap();
    let late = engine.write(insert_item("late", 1)).await;
    assert!(
        matches!(late, Err(WriteError::Engine(EngineError::Closed))),
        "{late:?}"
    );
    let outsider = Connection::open(&database.path).unwrap();
    assert_eq!(count_items(&outsider).unwrap(), 50);
}

#[tokio::test]
async fn a_panicking_job_is_answered_an_error_and_the_writer_thread_goes_on() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    let (panicked, other) = tokio::join!(
        engine.write(|connection| -> rusqlite::Result<()> {
            insert_item("from the panicking job", 1)(connection)?;
            panic!("a bug in a job");
        }),
        engine.write(insert_item("other", 2)),
    );
    assert!(
        matches!(panicked, Err(WriteError::Engine(EngineError::JobPanicked))),
        "{panicked:?}"
    );
    other.unwrap();
    engine.write(insert_item("after", 3)).await.unwrap();
    let names = engine
        .read(|connection| {
            Ok((
                value_of(connection, "from the panicking job")?,
                value_of(connection, "other")?,
                value_of(connection, "after")?,
            ))
        })
        .unwrap();
    assert_eq!(names, (None, Some(2), Some(3)));
    engine.close().await;
}

#[tokio::test]
async fn a_job_that_ends_the_transaction_fails_its_batch_and_the_next_batch_works() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    let release = hold_writer(&engine).await;
    let mut before = Box::pin(engine.write(insert_item("before the rogue job", 1)));
    let mut rogue = Box::pin(engine.write(|connection| connection.execute_batch("ROLLBACK")));
    std::future::poll_fn(|context| {
        assert!(before.as_mut().poll(context).is_pending());
        assert!(rogue.as_mut().poll(context).is_pending());
        std::task::Poll::Ready(())
    })
    .await;
    release.send(()).unwrap();
    let (before, rogue) = (before.await, rogue.await);
    assert!(
        matches!(before, Err(WriteError::Engine(EngineError::RolledBack))),
        "{before:?}"
    );
    assert!(
        matches!(rogue, Err(WriteError::Engine(EngineError::RolledBack))),
        "{rogue:?}"
    );
    engine.write(insert_item("next", 2)).await.unwrap();
    let names = engine
        .read(|connection| {
            Ok((
                value_of(connection, "before the rogue job")?,
                value_of(connection, "next")?,
            ))
        })
        .unwrap();
    assert_eq!(names, (None, Some(2)));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_writers_all_commit_in_fewer_transactions_than_jobs() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    let before = engine.statistics();
    let start = Arc::new(Barrier::new(64));
    let writers: Vec<_> = (0..64)
        .map(|writer| {
            let (engine, start) = (engine.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                for round in 0..10 {
                    engine
                        .write(insert_item(&format!("{writer}-{round}"), round))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let after = engine.statistics();
    assert_eq!(after.jobs - before.jobs, 640);
    assert!(
        after.batches - before.batches < 640,
        "{} transactions for 640 jobs",
        after.batches - before.batches
    );
    assert_eq!(engine.read(count_items).unwrap(), 640);
    engine.close().await;
}

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused_until_the_first_closes() {
    let database = TemporaryDatabase::new();
    let engine = Engine::open(&database.engine_path(), &EngineOptions::default()).unwrap();
    let Err(error) = Engine::open(&database.engine_path(), &EngineOptions::default()) else {
        panic!("a second open succeeded");
    };
    assert!(matches!(error, StorageError::InUse { .. }), "{error:?}");
    engine.close().await;
    let reopened = Engine::open(&database.engine_path(), &EngineOptions::default()).unwrap();
    reopened.close().await;
}

#[tokio::test]
async fn opening_a_file_in_a_missing_directory_fails_to_connect() {
    let path = std::env::temp_dir()
        .join(format!("missing-{}", uuid::Uuid::new_v4().simple()))
        .join("bookstore.db");
    let Err(error) = Engine::open(&EnginePath::File(path), &EngineOptions::default()) else {
        panic!("opened a file in a missing directory");
    };
    assert!(matches!(error, StorageError::Connect(_)), "{error:?}");
    let chain = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(chain.contains("unable to open"), "{chain}");
}

#[tokio::test]
async fn the_file_is_in_wal_mode_with_the_settings_on_every_connection() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    let pragma = |connection: &Connection, name: &str| -> rusqlite::Result<String> {
        connection.query_row(&format!("PRAGMA {name}"), [], |row| {
            Ok(match row.get_ref(0)? {
                rusqlite::types::ValueRef::Integer(number) => number.to_string(),
                other => other.as_str()?.to_owned(),
            })
        })
    };
    let read = engine
        .read(|connection| {
            Ok([
                pragma(connection, "journal_mode")?,
                pragma(connection, "synchronous")?,
                pragma(connection, "foreign_keys")?,
                pragma(connection, "query_only")?,
            ])
        })
        .unwrap();
    assert_eq!(read, ["wal", "1", "1", "1"]);
    let written = engine
        .write(move |connection| {
            Ok::<_, rusqlite::Error>([
                pragma(connection, "journal_mode")?,
                pragma(connection, "synchronous")?,
                pragma(connection, "foreign_keys")?,
                pragma(connection, "query_only")?,
            ])
        })
        .await
        .unwrap();
    assert_eq!(written, ["wal", "1", "1", "0"]);
    engine.close().await;
}

#[tokio::test]
async fn an_in_memory_engine_reads_what_it_wrote_through_its_one_connection() {
    let engine = Engine::open(&EnginePath::Memory, &EngineOptions::default()).unwrap();
    engine
        .write(|connection| {
            connection.execute_batch("CREATE TABLE items (name TEXT PRIMARY KEY, value INTEGER)")
        })
        .await
        .unwrap();
    engine.write(insert_item("kept", 7)).await.unwrap();
    assert_eq!(
        engine
            .read(|connection| value_of(connection, "kept"))
            .unwrap(),
        Some(7)
    );
    engine.close().await;
    assert!(matches!(engine.read(count_items), Err(ReadError::Closed)));
}

#[tokio::test]
async fn a_job_run_alone_runs_outside_any_transaction() {
    let engine = Engine::open(&EnginePath::Memory, &EngineOptions::default()).unwrap();
    let autocommit = engine
        .write_alone(|connection| Ok::<_, Refused>(connection.is_autocommit()))
        .await
        .unwrap();
    assert!(autocommit);
    let in_batch = engine
        .write(|connection| Ok::<_, Refused>(connection.is_autocommit()))
        .await
        .unwrap();
    assert!(!in_batch);
    engine.close().await;
}

#[test]
fn sqlite_urls_name_a_file_or_memory_as_sqlx_reads_them() {
    let cases = [
        ("sqlite::memory:", Some(EnginePath::Memory)),
        ("sqlite://:memory:", Some(EnginePath::Memory)),
        (
            "sqlite://shared?mode=memory&cache=shared",
            Some(EnginePath::Memory),
        ),
        (
            "sqlite://bookstore.db",
            Some(EnginePath::File("bookstore.db".into())),
        ),
        (
            "sqlite://bookstore.db?mode=rwc",
            Some(EnginePath::File("bookstore.db".into())),
        ),
        (
            "sqlite:bookstore.db",
            Some(EnginePath::File("bookstore.db".into())),
        ),
        (
            "sqlite:///var/lib/bookstore/bookstore.db",
            Some(EnginePath::File("/var/lib/bookstore/bookstore.db".into())),
        ),
        ("sqlite://", None),
        ("postgres://localhost/db", None),
    ];
    for (url, expected) in cases {
        assert_eq!(EnginePath::from_url(url), expected, "{url}");
    }
}

#[test]
fn a_write_waits_out_the_busy_timeout_for_another_process_then_fails_and_the_next_one_works() {
    let database = TemporaryDatabase::new();
    let options = EngineOptions {
        busy_timeout: Duration::from_millis(50),
        ..EngineOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let engine = runtime.block_on(engine_with_items(&database, &options));
    let outsider = Connection::open(&database.path).unwrap();
    outsider.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let blocked = runtime.block_on(engine.write(insert_item("blocked", 1)));
    assert!(
        matches!(
            blocked,
            Err(WriteError::Engine(EngineError::Transaction(_)))
        ),
        "{blocked:?}"
    );
    outsider.execute_batch("ROLLBACK").unwrap();
    runtime
        .block_on(engine.write(insert_item("unblocked", 2)))
        .unwrap();
    runtime.block_on(engine.close());
}

#[tokio::test]
async fn committed_pages_reach_the_database_file_without_waiting_for_the_writer() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    // About 1 MiB: far below the writer's own checkpoint threshold.
    engine
        .write(|connection| {
            for number in 0..256 {
                connection.execute(
                    "INSERT INTO items (name, value) VALUES (?1 || randomblob(4000), ?2)",
                    (format!("{number}"), number),
                )?;
            }
            Ok::<_, rusqlite::Error>(())
        })
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let size = std::fs::metadata(&database.path).unwrap().len();
        if size > 1_000_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file is still {size} bytes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.close().await;
}

/// Inserts `name` with its place in the order of the writes (0 for the first).
fn insert_in_turn(
    name: &'static str,
) -> impl FnOnce(&Connection) -> rusqlite::Result<usize> + Send + use<> {
    move |connection| {
        connection.execute(
            "INSERT INTO items (name, value) VALUES (?1, (SELECT count(*) FROM items))",
            [name],
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_writes_wait_behind_the_requests_writes_one_per_batch_while_they_wait() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    let release = hold_writer(&engine).await;
    let before = engine.statistics();
    // The background writes are queued first, the requests' after them.
    let mut background: Vec<_> = ["b1", "b2", "b3"]
        .into_iter()
        .map(|name| Box::pin(engine.write_background(insert_in_turn(name))))
        .collect();
    let mut requests: Vec<_> = ["r1", "r2", "r3", "r4"]
        .into_iter()
        .map(|name| Box::pin(engine.write(insert_in_turn(name))))
        .collect();
    queue_all(&mut background).await;
    queue_all(&mut requests).await;
    release.send(()).unwrap();
    for write in requests {
        assert_eq!(write.await.unwrap(), 1);
    }
    for write in background {
        assert_eq!(write.await.unwrap(), 1);
    }
    let order: Vec<String> = engine
        .read(|connection| {
            connection
                .prepare("SELECT name FROM items ORDER BY value")?
                .query_map([], |row| row.get(0))?
                .collect()
        })
        .unwrap();
    assert_eq!(order, ["r1", "r2", "r3", "r4", "b1", "b2", "b3"]);
    let after = engine.statistics();
    // After the held job: the four requests with one background write, then the two
    // other background writes together.
    assert_eq!(
        (after.jobs - before.jobs, after.batches - before.batches),
        (7, 2)
    );
    engine.close().await;
}

#[tokio::test]
async fn close_answers_the_background_writes_already_queued() {
    let database = TemporaryDatabase::new();
    let engine = engine_with_items(&database, &EngineOptions::default()).await;
    let release = hold_writer(&engine).await;
    let mut queued = vec![Box::pin(engine.write_background(insert_item("late", 1)))];
    queue_all(&mut queued).await;
    let closing = engine.clone();
    let closed = tokio::spawn(async move { closing.close().await });
    release.send(()).unwrap();
    assert_eq!(queued.pop().unwrap().await.unwrap(), 1);
    closed.await.unwrap();
    assert!(matches!(
        engine.write_background(insert_item("after", 2)).await,
        Err(WriteError::Engine(EngineError::Closed))
    ));
}
