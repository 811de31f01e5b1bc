//! The SQLite engine: one open database file, one writer thread that commits concurrent
//! writes together (group commit), and reader connections used on the caller's thread.
//!
//! # Writes
//!
//! [`Engine::write`] queues a job for the writer thread and waits for its answer. The writer
//! thread blocks for the first queued job, then takes whatever else is queued (up to
//! [`EngineOptions::max_batch`] jobs), and runs them all in one transaction:
//!
//! ```text
//! BEGIN IMMEDIATE
//!   SAVEPOINT engine_job; job 1; RELEASE engine_job                      -- job 1 returned Ok
//!   SAVEPOINT engine_job; job 2; ROLLBACK TO engine_job; RELEASE engine_job  -- job 2 returned Err
//!   ...
//! COMMIT
//! ```
//!
//! and only then answers every job of the batch. So an `Ok` from [`Engine::write`] means the
//! COMMIT holding the job succeeded: with WAL and `synchronous = NORMAL` it survives a crash of
//! the process (the last commits may be lost on a power cut, as before). A job that returns
//! `Err` or panics has its own changes rolled back and the others still commit; if the COMMIT
//! fails, every job of the batch gets [`EngineError::Transaction`].
//!
//! Committing many jobs at once is what makes writes fast (the same example, orders of four
//! awaited writes each, 32 tasks: 7,000–7,700 orders/s at 20–26 jobs per commit, against
//! 780–1,000 through the sqlx stores in the same runs): a transaction costs a BEGIN, a
//! COMMIT and the WAL frames of every page it touched, and concurrent requests mostly touch
//! the same pages (the end of an index, a few hot books), so one transaction for a batch
//! costs far less than one per write. The jobs of a batch run one after the other on one connection, so
//! each job sees what the jobs before it wrote, exactly as if they had committed in turn.
//!
//! The queue between callers and the writer thread is bounded (four batches): when it is
//! full, [`Engine::write`] waits for room, which pushes back on the callers instead of
//! letting a backlog grow without limit.
//!
//! **Background writes** ([`Engine::write_background`]: the webhook dispatcher's, the
//! retention purges) have a queue of their own, which the writer takes from only after the
//! requests' queue: a batch holds at most one background job while requests' writes wait,
//! and as many as fit when none does. A busy API's commits stay short, background work
//! uses the writer's idle time, and it still moves by a job per commit under any load.
//!
//! Checkpoints (copying the WAL into the database file, with a sync) run on a thread of
//! their own, not inside the writer's COMMITs; see [`Checkpointer`].
//!
//! # Reads
//!
//! [`Engine::read`] runs its job on a reader connection **on the calling thread**: in WAL
//! mode a reader never waits for the writer and sees every commit that finished before it
//! started. The alternative, handing each read to another thread and awaiting the answer,
//! costs two thread wake-ups per read, more than the read itself (a page of 20 books from
//! cached pages takes microseconds). Measured with the `sqlite_engine_throughput` example
//! (release, 2 cores shared with other work, 32 tasks, half pages of 20 books and half
//! single books), in reads per second:
//!
//! | run | calling thread | handed to `spawn_blocking` | sqlx (the stores before) |
//! |---|---|---|---|
//! | 1 | 21,662 | 13,250 | 10,912 |
//! | 2 | 35,935 | 15,231 | — |
//! | 3 | 64,158 | 22,821 | 23,293 |
//!
//! (The machine's load varied between runs, from 6 to 10 on 2 cores; in every run the calling
//! thread was fastest, by 1.6 to 2.8 times.) A read
//! that takes long blocks an async worker thread for that time, so reads should stay short
//! (a page of 20 books, one order): every read of the stores is.
//!
//! Readers are kept in a small set of mutexes; a read takes a free one, or waits for the
//! next in turn when all are busy. Give [`EngineOptions::readers`] at least as many
//! connections as there are threads calling [`Engine::read`].
//!
//! # In memory
//!
//! Separate connections to `:memory:` would each see their own empty database, so an
//! in-memory engine has one connection: the writer thread writes with it, and reads lock
//! it between two batches (a read never sees a batch half-done).
//!
//! # Statements
//!
//! Use `prepare_cached`: every connection keeps [`STATEMENT_CACHE_CAPACITY`] prepared
//! statements, more than the stores have, so a statement is compiled once per connection.
//!
//! # Rules for jobs
//!
//! A write job must not end the transaction it runs in (no COMMIT, ROLLBACK or RELEASE of a
//! savepoint it did not open) and must not call [`Engine::read`] or [`Engine::write`] (on an
//! in-memory engine a read inside a write would wait for itself). A write whose future is
//! dropped after it was queued still runs; only its answer is lost.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot, watch};

use crate::StorageError;

/// How many prepared statements each connection keeps: more than all the stores' statements.
pub(crate) const STATEMENT_CACHE_CAPACITY: usize = 128;

/// The statements around each job of a batch (run through the statement cache: parsing
/// them for every job costs more than running them).
const BEGIN: &str = "BEGIN IMMEDIATE";
const COMMIT: &str = "COMMIT";
const ROLLBACK: &str = "ROLLBACK";
const SAVEPOINT: &str = "SAVEPOINT engine_job";
const RELEASE: &str = "RELEASE engine_job";
const ROLLBACK_TO_SAVEPOINT: &str = "ROLLBACK TO engine_job";

/// Runs one statement that returns no rows through the statement cache.
fn run(connection: &Connection, statement: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(statement)?.execute([]).map(drop)
}

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnginePath {
    /// A file, created if missing; `PATH.lock` beside it is locked while the engine is open.
    File(PathBuf),
    /// A private in-memory database, gone when the engine closes.
    Memory,
}

impl EnginePath {
    /// The database a `sqlite:` URL names, as sqlx reads it: `sqlite::memory:`,
    /// `sqlite://:memory:` or any URL with `mode=memory` is in memory; `sqlite://PATH` and
    /// `sqlite:PATH` are the file at `PATH` (query parameters such as `?mode=rwc` are ignored:
    /// the file is always created if missing). `None` for any other URL, or a URL without a
    /// path. Percent-escapes in the path are not decoded.
    pub(crate) fn from_url(url: &str) -> Option<EnginePath> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        if location == ":memory:" || query.split('&').any(|pair| pair == "mode=memory") {
            Some(EnginePath::Memory)
        } else if location.is_empty() {
            None
        } else {
            Some(EnginePath::File(PathBuf::from(location)))
        }
    }
}

/// How an engine is opened.
#[derive(Debug, Clone)]
pub(crate) struct EngineOptions {
    /// Reader connections (a file only; an in-memory engine has one connection). At least 1.
    pub readers: usize,
    /// How long a statement waits for another process's lock on the file before failing.
    pub busy_timeout: Duration,
    /// The most write jobs committed by one transaction. At least 1.
    pub max_batch: usize,
}

impl Default for EngineOptions {
    /// 4 readers, 5 s busy timeout, batches of up to 64 jobs.
    fn default() -> Self {
        EngineOptions {
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            max_batch: 64,
        }
    }
}

/// Why the engine could not run or commit a write job (the job's own error is
/// [`WriteError::Job`]). Cloned to every job of a batch whose transaction failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum EngineError {
    /// [`Engine::close`] was called (or the writer thread is gone).
    #[error("the database is closed")]
    Closed,
    /// The job panicked; its changes were rolled back.
    #[error("a write job panicked")]
    JobPanicked,
    /// A job ended the batch's transaction (an error that rolls back the whole transaction,
    /// or a COMMIT or ROLLBACK of its own): nothing of the jobs before it in the batch is kept.
    #[error("the write transaction was rolled back")]
    RolledBack,
    /// BEGIN, a savepoint or COMMIT failed: nothing of the batch is kept.
    #[error("the write transaction failed")]
    Transaction(#[source] Arc<rusqlite::Error>),
}

impl EngineError {
    fn transaction(error: rusqlite::Error) -> EngineError {
        EngineError::Transaction(Arc::new(error))
    }
}

/// Why [`Engine::write`] failed: the job's own error (its changes rolled back, the rest of
/// the batch committed), or the engine's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError<E> {
    /// The job returned this error; what it changed was rolled back.
    #[error("the write job failed")]
    Job(#[source] E),
    /// The job did not run, or ran but was not committed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Why [`Engine::read`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// [`Engine::close`] was called.
    #[error("the database is closed")]
    Closed,
    /// The job's query failed.
    #[error("the read failed")]
    Query(#[source] rusqlite::Error),
}

/// How much group commit has grouped: `jobs / batches` jobs per transaction on average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EngineStatistics {
    /// Write transactions run by the writer thread.
    pub batches: u64,
    /// Write jobs run by the writer thread.
    pub jobs: u64,
}

/// An open SQLite database file: one writer thread that commits concurrent writes together,
/// and reader connections used on the caller's thread. Cloning is cheap.
#[derive(Clone)]
pub(crate) struct Engine(Arc<Shared>);

struct Shared {
    /// The way to the writer thread; `None` once closed.
    queue: RwLock<Option<mpsc::Sender<Box<dyn WriteJob>>>>,
    /// The way to the writer thread for background work; `None` once closed.
    background: RwLock<Option<mpsc::Sender<Box<dyn WriteJob>>>>,
    /// The writer thread's connection (`None` once it has stopped); reads of an in-memory
    /// engine use it too.
    writer_connection: Arc<Mutex<Option<Connection>>>,
    /// Empty for an in-memory engine.
    readers: Vec<Mutex<Option<Connection>>>,
    next_reader: AtomicUsize,
    /// True once the writer thread has answered its last job and closed its connection.
    writer_stopped: watch::Receiver<bool>,
    counters: Arc<Counters>,
    /// Copies the WAL into the database file in the background (none in memory).
    checkpointer: Option<Checkpointer>,
    /// The exclusive lock on `PATH.lock` (none in memory), released by [`Engine::close`].
    lock_file: Mutex<Option<std::fs::File>>,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    jobs: AtomicU64,
}

/// Locks `mutex`, even if a thread panicked while holding it: a connection stays usable
/// after a panic (its statements are reset when dropped).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Engine {
    /// Opens (creating if missing) the database at `path` with WAL, `synchronous = NORMAL`,
    /// `foreign_keys = ON` and the busy timeout, and starts the writer thread. A file is
    /// locked for this process first ([`lock_exclusively`]): [`StorageError::InUse`] when
    /// another process has it open.
    pub(crate) fn open(path: &EnginePath, options: &EngineOptions) -> Result<Engine, StorageError> {
        // Opening creates the file (and fails on a directory that does not exist); the lock
        // is taken before anything in the file is read or changed.
        let writer = open_connection(path)?;
        let lock_file = match path {
            EnginePath::File(file) => Some(lock_exclusively(file)?),
            EnginePath::Memory => None,
        };
        configure(&writer, options.busy_timeout, Role::Writer).map_err(cannot_open)?;
        if let EnginePath::File(_) = path {
            let mode: String = writer
                .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                .map_err(cannot_open)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(not_wal(&mode));
            }
        }
        let mut checkpointer = None;
        if let EnginePath::File(_) = path {
            // The writer checkpoints only as a backstop; the checkpointer thread does it.
            writer
                .execute_batch(&format!(
                    "PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES};"
                ))
                .map_err(cannot_open)?;
            let connection = open_connection(path)?;
            configure(&connection, options.busy_timeout, Role::Checkpointer)
                .map_err(cannot_open)?;
            checkpointer = Some(Checkpointer::start(connection)?);
        }
        let mut readers = Vec::new();
        if let EnginePath::File(_) = path {
            for _ in 0..options.readers.max(1) {
                let reader = open_connection(path)?;
                configure(&reader, options.busy_timeout, Role::Reader).map_err(cannot_open)?;
                readers.push(Mutex::new(Some(reader)));
            }
        }

        let max_batch = options.max_batch.max(1);
        let (sender, receiver) = mpsc::channel(max_batch * 4);
        let (background_sender, background_receiver) = mpsc::channel(max_batch * 4);
        let (stopped_sender, stopped) = watch::channel(false);
        let writer_connection = Arc::new(Mutex::new(Some(writer)));
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            queue: receiver,
            background: background_receiver,
            connection: Arc::clone(&writer_connection),
            counters: Arc::clone(&counters),
            max_batch,
            stopped: stopped_sender,
        };
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                // Jobs' panics are caught one by one; this is a panic of the engine itself.
                // Every queued and later write is then answered `Closed`.
                if catch_unwind(AssertUnwindSafe(|| writer.run())).is_err() {
                    tracing::error!("the SQLite writer thread panicked; writes now fail");
                }
            })
            .map_err(|error| StorageError::Unavailable(Box::new(error)))?;
        Ok(Engine(Arc::new(Shared {
            queue: RwLock::new(Some(sender)),
            background: RwLock::new(Some(background_sender)),
            writer_connection,
            readers,
            next_reader: AtomicUsize::new(0),
            writer_stopped: stopped,
            counters,
            checkpointer,
            lock_file: Mutex::new(lock_file),
        })))
    }

    /// Runs `job` on the writer thread inside a transaction shared with the other queued
    /// jobs, in a savepoint of its own, and answers once the COMMIT holding it succeeded (so
    /// an `Ok` is durable). A job that returns `Err` has its changes rolled back
    /// ([`WriteError::Job`]); if the transaction fails, every job of the batch gets
    /// [`WriteError::Engine`]. Waits for room when the queue is full.
    pub(crate) async fn write<T, E, F>(&self, job: F) -> Result<T, WriteError<E>>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.queue(job, Mode::InBatch, Lane::Requests).await
    }

    /// [`Engine::write`] for background work, queued behind the requests' writes (see the
    /// module documentation).
    pub(crate) async fn write_background<T, E, F>(&self, job: F) -> Result<T, WriteError<E>>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.queue(job, Mode::InBatch, Lane::Background).await
    }

    /// Runs `job` on the writer thread alone and outside any transaction (after committing
    /// the batch before it): for work that manages its own transactions, such as
    /// migrations, or statements SQLite refuses inside one (`VACUUM`, some `PRAGMA`s).
    /// A job that returns `Err` or panics is answered so, and nothing is rolled back for it.
    pub(crate) async fn write_alone<T, E, F>(&self, job: F) -> Result<T, WriteError<E>>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.queue(job, Mode::Alone, Lane::Requests).await
    }

    async fn queue<T, E, F>(&self, job: F, mode: Mode, lane: Lane) -> Result<T, WriteError<E>>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let queue = match lane {
            Lane::Requests => &self.0.queue,
            Lane::Background => &self.0.background,
        };
        let Some(queue) = queue.read().unwrap_or_else(PoisonError::into_inner).clone() else {
            return Err(EngineError::Closed.into());
        };
        let (reply, answer) = oneshot::channel();
        let job = Box::new(TypedJob {
            mode,
            job: Some(job),
            outcome: None,
            reply: Some(reply),
        });
        if queue.send(job).await.is_err() {
            return Err(EngineError::Closed.into());
        }
        drop(queue);
        // No answer: the writer thread stopped with the job still queued.
        answer.await.unwrap_or(Err(EngineError::Closed.into()))
    }

    /// Runs `job` on a reader connection, on the calling thread (see the module
    /// documentation): it sees every write that was answered before it started.
    pub(crate) fn read<T>(
        &self,
        job: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, ReadError> {
        let shared = &self.0;
        let run = |slot: MutexGuard<'_, Option<Connection>>| match slot.as_ref() {
            Some(connection) => job(connection).map_err(ReadError::Query),
            None => Err(ReadError::Closed),
        };
        if shared.readers.is_empty() {
            return run(lock(&shared.writer_connection));
        }
        let count = shared.readers.len();
        let start = shared.next_reader.fetch_add(1, Ordering::Relaxed);
        for offset in 0..count {
            match shared.readers[(start + offset) % count].try_lock() {
                Ok(slot) => return run(slot),
                Err(TryLockError::Poisoned(poisoned)) => return run(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        run(lock(&shared.readers[start % count]))
    }

    /// Stops taking writes, waits for the writer thread to commit and answer every job
    /// already queued, closes every connection and releases the lock file. Later calls fail
    /// with [`EngineError::Closed`] / [`ReadError::Closed`]. Closing twice is harmless.
    pub(crate) async fn close(&self) {
        // Dropping the last senders ends the writer thread's loop once the queues are empty.
        for queue in [&self.0.queue, &self.0.background] {
            drop(queue.write().unwrap_or_else(PoisonError::into_inner).take());
        }
        let mut stopped = self.0.writer_stopped.clone();
        // An error means the writer thread is gone, which is what we wait for.
        let _ = stopped.wait_for(|stopped| *stopped).await;
        for reader in &self.0.readers {
            if let Some(connection) = lock(reader).take() {
                let _ = connection.close();
            }
        }
        if let Some(checkpointer) = &self.0.checkpointer {
            checkpointer.stop();
        }
        // Dropping the file releases the lock.
        drop(lock(&self.0.lock_file).take());
    }

    /// How many write jobs and transactions the writer thread has run so far.
    pub(crate) fn statistics(&self) -> EngineStatistics {
        EngineStatistics {
            batches: self.0.counters.batches.load(Ordering::Relaxed),
            jobs: self.0.counters.jobs.load(Ordering::Relaxed),
        }
    }
}

/// The connection a database is opened with: `NO_MUTEX` because each connection is used by
/// one thread at a time (behind a mutex).
fn open_connection(path: &EnginePath) -> Result<Connection, StorageError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match path {
        EnginePath::File(file) => Connection::open_with_flags(file, flags),
        EnginePath::Memory => Connection::open_in_memory_with_flags(flags),
    }
    .map_err(cannot_open)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
    Checkpointer,
}

/// The settings of every connection: busy timeout, `synchronous = NORMAL` (with WAL, a
/// commit survives a process crash), foreign keys, the statement cache; readers are
/// `query_only`, so a write through one fails instead of bypassing the writer thread.
fn configure(connection: &Connection, busy_timeout: Duration, role: Role) -> rusqlite::Result<()> {
    connection.busy_timeout(busy_timeout)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    connection.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    if role == Role::Reader {
        connection.execute_batch("PRAGMA query_only = ON;")?;
    }
    Ok(())
}

/// A SQLite failure while opening, as the storage crate reports it.
///
/// [`StorageError::Connect`] carries a sqlx error, so the SQLite error travels inside an
/// I/O error ("error communicating with database: unable to open database file").
fn cannot_open(error: rusqlite::Error) -> StorageError {
    StorageError::Connect(sqlx::Error::Io(std::io::Error::other(error)))
}

/// The file stayed in journal `mode` when asked to switch to WAL (a file on a file system
/// without shared memory, for one).
fn not_wal(mode: &str) -> StorageError {
    StorageError::Connect(sqlx::Error::Protocol(format!(
        "SQLite refused to switch the file to WAL mode (it stays in {mode} mode)"
    )))
}

/// Creates `PATH.lock` beside the database file and locks it exclusively, or fails with
/// [`StorageError::InUse`] when another process holds it. The lock is the operating
/// system's (`flock`): it goes with the process, so a process killed with `kill -9` never
/// blocks the next start.
pub(crate) fn lock_exclusively(database: &Path) -> Result<std::fs::File, StorageError> {
    let mut lock = database.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
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

/// How often the checkpointer thread copies the WAL into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// The WAL size (in pages) at which the writer checkpoints by itself, should the
/// checkpointer fall behind: 16 times SQLite's default.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_000;

/// A thread that checkpoints the WAL every [`CHECKPOINT_INTERVAL`] on its own connection.
///
/// A checkpoint copies committed pages into the database file and syncs it, which takes
/// milliseconds; SQLite's automatic checkpoint would do it on the writer thread, inside a
/// COMMIT, holding up every job of the batch. A `PASSIVE` checkpoint on another connection
/// runs beside the writer and the readers without blocking either. The writer keeps a
/// backstop ([`WRITER_AUTOCHECKPOINT_PAGES`]) so the WAL stays bounded even if this thread
/// falls behind.
struct Checkpointer {
    connection: Arc<Mutex<Option<Connection>>>,
    /// Dropped (by [`Checkpointer::stop`] or with the engine) to end the thread.
    stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl Checkpointer {
    fn start(connection: Connection) -> Result<Checkpointer, StorageError> {
        let connection = Arc::new(Mutex::new(Some(connection)));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let slot = Arc::clone(&connection);
        std::thread::Builder::new()
            .name("sqlite-checkpointer".to_owned())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_INTERVAL)
                {
                    match lock(&slot).as_ref() {
                        // A failed checkpoint (the file busy with another process) is
                        // retried at the next tick; the writer's backstop covers the rest.
                        Some(connection) => {
                            let _ =
                                connection
                                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                        }
                        None => break,
                    }
                }
                if let Some(connection) = lock(&slot).take() {
                    let _ = connection.close();
                }
            })
            .map_err(|error| StorageError::Unavailable(Box::new(error)))?;
        Ok(Checkpointer {
            connection,
            stop: Mutex::new(Some(stop)),
        })
    }

    /// Ends the thread and closes its connection (waiting for a checkpoint under way).
    fn stop(&self) {
        drop(lock(&self.stop).take());
        if let Some(connection) = lock(&self.connection).take() {
            let _ = connection.close();
        }
    }
}

/// Which queue a job waits in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lane {
    /// The requests' writes, taken first.
    Requests,
    /// Background work: one job per batch while requests' writes wait.
    Background,
}

/// Whether a job joins the batch's transaction or runs alone outside any.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    InBatch,
    Alone,
}

/// A queued job, its type erased for the queue.
trait WriteJob: Send {
    fn mode(&self) -> Mode;
    /// Runs the job (once) and keeps its outcome; `true` if it succeeded.
    fn run(&mut self, connection: &Connection) -> bool;
    /// Answers the caller: the kept outcome when `committed` is `Ok`, else that error.
    fn answer(self: Box<Self>, committed: Result<(), EngineError>);
}

type Outcome<T, E> = Result<T, WriteError<E>>;

/// A job with its result types: the closure until it runs, then its outcome until the
/// transaction ends.
struct TypedJob<F, T, E> {
    mode: Mode,
    job: Option<F>,
    outcome: Option<Outcome<T, E>>,
    reply: Option<oneshot::Sender<Outcome<T, E>>>,
}

impl<F, T, E> WriteJob for TypedJob<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn mode(&self) -> Mode {
        self.mode
    }

    fn run(&mut self, connection: &Connection) -> bool {
        let Some(job) = self.job.take() else {
            return false;
        };
        let outcome = match catch_unwind(AssertUnwindSafe(|| job(connection))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(WriteError::Job(error)),
            Err(_panic) => Err(WriteError::Engine(EngineError::JobPanicked)),
        };
        let succeeded = outcome.is_ok();
        self.outcome = Some(outcome);
        succeeded
    }

    fn answer(mut self: Box<Self>, committed: Result<(), EngineError>) {
        let outcome = match committed {
            Ok(()) => self
                .outcome
                .take()
                .unwrap_or(Err(WriteError::Engine(EngineError::Closed))),
            Err(error) => Err(WriteError::Engine(error)),
        };
        if let Some(reply) = self.reply.take() {
            // The caller may have stopped waiting; the job ran all the same.
            let _ = reply.send(outcome);
        }
    }
}

/// The writer thread's state.
struct Writer {
    queue: mpsc::Receiver<Box<dyn WriteJob>>,
    background: mpsc::Receiver<Box<dyn WriteJob>>,
    connection: Arc<Mutex<Option<Connection>>>,
    counters: Arc<Counters>,
    max_batch: usize,
    stopped: watch::Sender<bool>,
}

impl Writer {
    /// Takes batches until every sender is gone and the queues are empty, then closes the
    /// connection and says so.
    fn run(mut self) {
        // Only to wait on both queues at once; it runs nothing else.
        let waiter = match tokio::runtime::Builder::new_current_thread().build() {
            Ok(waiter) => waiter,
            Err(error) => {
                tracing::error!(error = %error, "the SQLite writer thread could not start; writes now fail");
                return;
            }
        };
        let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(self.max_batch);
        while let Some((first, lane)) = self.next_job(&waiter) {
            batch.push(first);
            let mut background = usize::from(lane == Lane::Background);
            while batch.len() < self.max_batch {
                match self.queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            // One background job in a batch with requests' writes; as many as fit otherwise.
            let background_limit = if batch.len() > background {
                1
            } else {
                self.max_batch
            };
            while batch.len() < self.max_batch && background < background_limit {
                match self.background.try_recv() {
                    Ok(job) => {
                        batch.push(job);
                        background += 1;
                    }
                    Err(_) => break,
                }
            }
            let slot = lock(&self.connection);
            match slot.as_ref() {
                Some(connection) => self.run_batch(connection, &mut batch),
                None => {
                    for job in batch.drain(..) {
                        job.answer(Err(EngineError::Closed));
                    }
                }
            }
        }
        if let Some(connection) = lock(&self.connection).take() {
            let _ = connection.close();
        }
        self.stopped.send_replace(true);
    }

    /// The next job: the requests' queue first; `None` once both queues are closed and
    /// empty.
    fn next_job(&mut self, waiter: &tokio::runtime::Runtime) -> Option<(Box<dyn WriteJob>, Lane)> {
        if let Ok(job) = self.queue.try_recv() {
            return Some((job, Lane::Requests));
        }
        if let Ok(job) = self.background.try_recv() {
            return Some((job, Lane::Background));
        }
        let (queue, background) = (&mut self.queue, &mut self.background);
        waiter.block_on(async {
            tokio::select! {
                biased;
                Some(job) = queue.recv() => Some((job, Lane::Requests)),
                Some(job) = background.recv() => Some((job, Lane::Background)),
                else => None,
            }
        })
    }

    /// Runs the jobs of `batch` in one transaction (a job that runs alone commits what came
    /// before it first), then answers them.
    fn run_batch(&self, connection: &Connection, batch: &mut Vec<Box<dyn WriteJob>>) {
        let mut in_transaction: Vec<Box<dyn WriteJob>> = Vec::with_capacity(batch.len());
        for mut job in batch.drain(..) {
            self.counters.jobs.fetch_add(1, Ordering::Relaxed);
            if job.mode() == Mode::Alone {
                self.commit(connection, &mut in_transaction);
                job.run(connection);
                job.answer(Ok(()));
                continue;
            }
            if connection.is_autocommit() {
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = run(connection, BEGIN) {
                    job.answer(Err(EngineError::transaction(error)));
                    continue;
                }
            }
            if let Err(error) = run(connection, SAVEPOINT) {
                let error = EngineError::transaction(error);
                rollback(connection, &mut in_transaction, error.clone());
                job.answer(Err(error));
                continue;
            }
            let succeeded = job.run(connection);
            if connection.is_autocommit() {
                // The job's statement (or the job) ended the transaction.
                rollback(connection, &mut in_transaction, EngineError::RolledBack);
                job.answer(Err(EngineError::RolledBack));
                continue;
            }
            let ended = if succeeded {
                run(connection, RELEASE)
            } else {
                run(connection, ROLLBACK_TO_SAVEPOINT).and_then(|()| run(connection, RELEASE))
            };
            if let Err(error) = ended {
                let error = EngineError::transaction(error);
                rollback(connection, &mut in_transaction, error.clone());
                job.answer(Err(error));
                continue;
            }
            in_transaction.push(job);
        }
        self.commit(connection, &mut in_transaction);
    }

    /// Commits the open transaction, if any, and answers the jobs that ran in it.
    fn commit(&self, connection: &Connection, in_transaction: &mut Vec<Box<dyn WriteJob>>) {
        if connection.is_autocommit() {
            debug_assert!(in_transaction.is_empty());
            return;
        }
        match run(connection, COMMIT) {
            Ok(()) => {
                for job in in_transaction.drain(..) {
                    job.answer(Ok(()));
                }
            }
            Err(error) => rollback(connection, in_transaction, EngineError::transaction(error)),
        }
    }
}

/// Rolls back the open transaction, if any, and answers `error` to the jobs that ran in it.
fn rollback(
    connection: &Connection,
    in_transaction: &mut Vec<Box<dyn WriteJob>>,
    error: EngineError,
) {
    if !connection.is_autocommit() {
        // If even ROLLBACK fails the connection is unusable; the next BEGIN will say so.
        let _ = run(connection, ROLLBACK);
    }
    for job in in_transaction.drain(..) {
        job.answer(Err(error.clone()));
    }
}

#[cfg(test)]
pub(crate) mod tests;
