//! The processes a benchmark talks to: a started server ([`Running`]), the database it gets
//! ([`Store`], [`FreshDatabase`]) and the generated catalogue it is seeded with
//! ([`Catalogue`]).

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The customer key the servers accept during a run.
pub(super) const CUSTOMER_KEY: &str = "bench-customer";
/// The admin key the servers accept during a run.
pub(super) const ADMIN_KEY: &str = "bench-admin";
/// How long a server with an empty catalogue may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Books a server is given per second of start-up on top of [`START_TIMEOUT`] (seeding
/// 1,000,000 books into PostgreSQL takes minutes).
const SEEDED_BOOKS_PER_SECOND: u64 = 2_000;
/// The stock of the book every order buys: it never runs out within a run.
const ORDER_BOOK_STOCK: u64 = 4_000_000_000;

/// A free TCP port on 127.0.0.1 (the listener is closed before the server binds it).
pub(super) fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// A server process, stopped (SIGTERM, then SIGKILL) when dropped.
pub(super) struct Running {
    pub(super) name: String,
    child: Child,
    port: u16,
    /// How long it took to answer its first request (start-up, migrations, seeding).
    pub(super) ready_after: Duration,
}

impl Running {
    /// Starts `command` and waits (at most `timeout`) until `GET probe_path` answers 200.
    pub(super) fn start(
        name: &str,
        mut command: Command,
        port: u16,
        probe_path: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        println!("bench: starting {name} on 127.0.0.1:{port}");
        let started = Instant::now();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        let mut server = Running {
            name: name.to_owned(),
            child,
            port,
            ready_after: Duration::ZERO,
        };
        loop {
            if let Some(status) = server.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("{name} exited during start-up ({status})"));
            }
            if get_status(port, probe_path) == Some(200) {
                server.ready_after = started.elapsed();
                return Ok(server);
            }
            if started.elapsed() > timeout {
                return Err(format!("{name} did not answer within {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub(super) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// A field of `/proc/PID/status`, in KiB.
    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The most memory the process has held since start or [`Self::reset_peak_rss`].
    pub(super) fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    pub(super) fn current_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// Resets `VmHWM` to the current RSS (Linux: `5` into `clear_refs`), so the next peak
    /// is that of one workload.
    pub(super) fn reset_peak_rss(&self) {
        let _ = fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        eprintln!("bench: {} ignored SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of `GET path` on 127.0.0.1:`port` with the customer key (HTTP/1.0, one
/// short exchange), or `None` when nothing answers.
pub(super) fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nX-API-Key: {CUSTOMER_KEY}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The catalogue `bookstore --seed-generated-books N` loads: book `n` has the ISBN `978`,
/// `n` in nine digits and the check digit (as `bookstore_inventory::generated_isbn` makes
/// it; [`Catalogue::check_served_by`] confirms the server agrees).
///
/// [`Catalogue::isbn`] computes the ISBN-13 check digit itself, the one copy of that rule
/// outside `bookstore_types::Isbn::from_first_twelve_digits`: xtask depends on nothing but
/// `serde_json` so that it builds in seconds. A unit test holds it to
/// `bookstore_inventory::generated_isbn` (a dev-dependency, built only for xtask's tests).
#[derive(Debug, Clone, Copy)]
pub(super) struct Catalogue {
    pub(super) books: u64,
}

impl Catalogue {
    pub(super) fn isbn(serial: u64) -> String {
        let body = format!("978{serial:09}");
        let sum: u32 = body
            .bytes()
            .enumerate()
            .map(|(i, digit)| u32::from(digit - b'0') * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        format!("{body}{}", (10 - sum % 10) % 10)
    }

    /// The book every order buys.
    pub(super) fn order_isbn(self) -> String {
        Self::isbn(0)
    }

    /// The cursor the server issues after the book 90 % of the way through the catalogue
    /// (hex of `b` + ISBN, as `bookstore_gateway::wire::Cursor` encodes it).
    pub(super) fn deep_cursor(self) -> String {
        std::iter::once(b'b')
            .chain(Self::isbn(self.books * 9 / 10).bytes())
            .fold(String::new(), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }

    /// One `GET /api/books/{isbn}` URL per line, at most `max_urls`, spread evenly over the
    /// catalogue, for oha's `--urls-from-file` (which picks a line at random per request).
    pub(super) fn write_urls(self, path: &Path, port: u16, max_urls: u64) -> Result<(), String> {
        let step = self.books.div_ceil(max_urls).max(1);
        let mut urls = String::new();
        for serial in (0..self.books).step_by(usize::try_from(step).unwrap_or(1)) {
            let _ = writeln!(
                urls,
                "http://127.0.0.1:{port}/api/books/{}",
                Self::isbn(serial)
            );
        }
        super::write(path, &urls)
    }

    /// Fails unless the server has the first and the last book and nothing after them:
    /// the ISBNs here and the server's generated ones agree.
    pub(super) fn check_served_by(self, server: &Running) -> Result<(), String> {
        for (serial, expected) in [(0, 200), (self.books - 1, 200), (self.books, 404)] {
            let path = format!("/api/books/{}", Self::isbn(serial));
            let status = get_status(server.port(), &path);
            if status != Some(expected) {
                return Err(format!(
                    "{}: GET {path} answered {status:?}, expected {expected}: the bench and \
                     `bookstore --seed-generated-books` disagree on the generated ISBNs",
                    server.name
                ));
            }
        }
        Ok(())
    }

    /// Gives the order book a stock no run can sell out (`PATCH`, with curl).
    pub(super) fn stock_order_book(self, server: &Running) -> Result<(), String> {
        let patch = Command::new("curl")
            .args([
                "--silent",
                "--output",
                "/dev/null",
                "--write-out",
                "%{http_code}",
            ])
            .args(["-X", "PATCH", "-H", &format!("X-API-Key: {ADMIN_KEY}")])
            .args(["-H", "Content-Type: application/json"])
            .args(["--data", &format!("{{\"stock\":{ORDER_BOOK_STOCK}}}")])
            .arg(format!(
                "{}/api/books/{}",
                server.base_url(),
                self.order_isbn()
            ))
            .output()
            .map_err(|e| format!("running curl: {e}"))?;
        if patch.stdout == b"200" {
            Ok(())
        } else {
            Err(format!(
                "{}: PATCH of the order book answered {}",
                server.name,
                String::from_utf8_lossy(&patch.stdout)
            ))
        }
    }
}

/// Subscribes a webhook endpoint at `url` to every event type (`POST
/// /api/webhook-endpoints`, with curl).
pub(super) fn subscribe(server: &Running, url: &str) -> Result<(), String> {
    let created = Command::new("curl")
        .args([
            "--silent",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
        ])
        .args(["-X", "POST", "-H", &format!("X-API-Key: {ADMIN_KEY}")])
        .args(["-H", "Content-Type: application/json"])
        .args([
            "--data",
            &format!("{{\"url\":\"{url}\",\"event_types\":[\"*\"]}}"),
        ])
        .arg(format!("{}/api/webhook-endpoints", server.base_url()))
        .output()
        .map_err(|e| format!("running curl: {e}"))?;
    if created.stdout == b"201" {
        Ok(())
    } else {
        Err(format!(
            "{}: POST /api/webhook-endpoints answered {}",
            server.name,
            String::from_utf8_lossy(&created.stdout)
        ))
    }
}

/// Where a server keeps its data.
#[derive(Debug, Clone)]
pub(super) enum Store {
    Memory,
    /// A file under this directory, new for every server.
    Sqlite(PathBuf),
    /// A database created on the server of this URL, new for every server.
    Postgres(String),
}

impl Store {
    /// The names `--stores` accepts.
    pub(super) const KEYS: [&'static str; 3] = ["memory", "sqlite", "postgres"];

    /// This store's name in `--stores`.
    pub(super) fn key(&self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Sqlite(_) => "SQLite",
            Store::Postgres(_) => "PostgreSQL",
        }
    }

    /// A database of this store that nothing has used yet.
    pub(super) fn fresh(&self, label: &str) -> Result<FreshDatabase, String> {
        match self {
            Store::Memory => Ok(FreshDatabase {
                url: "memory".to_owned(),
                cleanup: Cleanup::Nothing,
            }),
            Store::Sqlite(dir) => {
                let path = dir.join(format!("bench-{label}.db"));
                remove_sqlite_files(&path);
                Ok(FreshDatabase {
                    url: format!("sqlite://{}", path.display()),
                    cleanup: Cleanup::SqliteFile(path),
                })
            }
            Store::Postgres(admin_url) => {
                let name = format!(
                    "bookstore_bench_{}_{}",
                    std::process::id(),
                    label.replace('-', "_")
                );
                psql(admin_url, &format!("DROP DATABASE IF EXISTS {name}"))?;
                psql(admin_url, &format!("CREATE DATABASE {name}"))?;
                let (without_query, query) = match admin_url.split_once('?') {
                    Some((url, query)) => (url, format!("?{query}")),
                    None => (admin_url.as_str(), String::new()),
                };
                let server = without_query
                    .rsplit_once('/')
                    .map_or(without_query, |(server, _database)| server);
                Ok(FreshDatabase {
                    url: format!("{server}/{name}{query}"),
                    cleanup: Cleanup::PostgresDatabase {
                        admin_url: admin_url.clone(),
                        name,
                    },
                })
            }
        }
    }
}

/// A database for one server, removed when dropped (drop it after the server).
pub(super) struct FreshDatabase {
    pub(super) url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Nothing,
    SqliteFile(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Nothing => {}
            Cleanup::SqliteFile(path) => remove_sqlite_files(path),
            Cleanup::PostgresDatabase { admin_url, name } => {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(error) = psql(admin_url, &sql) {
                    eprintln!("bench: could not drop database {name}: {error}");
                }
            }
        }
    }
}

/// Removes a SQLite database and its WAL and shared-memory files.
fn remove_sqlite_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = fs::remove_file(file);
    }
}

fn psql(url: &str, sql: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .map_err(|e| format!("running psql (needed for the PostgreSQL run): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Starts `binary` on `database` with `seed` books (`None`: the demo catalogue), rate
/// limiting off and warnings-only JSON logs, and waits until it is ready.
pub(super) fn start_bookstore(
    binary: &Path,
    name: &str,
    database: &FreshDatabase,
    seed: Option<Catalogue>,
) -> Result<Running, String> {
    start_bookstore_with(binary, name, database, seed, &[])
}

/// [`start_bookstore`] with `extra` flags.
pub(super) fn start_bookstore_with(
    binary: &Path,
    name: &str,
    database: &FreshDatabase,
    seed: Option<Catalogue>,
    extra: &[&str],
) -> Result<Running, String> {
    let port = free_port()?;
    let mut command = Command::new(binary);
    command
        .args(extra)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--database-url", &database.url])
        .args(["--rate-limit-per-second", "0", "--log-format", "json"])
        .env(
            "BOOKSTORE_API_KEYS",
            format!("{CUSTOMER_KEY}:customer,{ADMIN_KEY}:admin"),
        )
        .env("RUST_LOG", "warn");
    let books = seed.map_or(0, |catalogue| catalogue.books);
    if let Some(catalogue) = seed {
        command.args(["--seed-generated-books", &catalogue.books.to_string()]);
    }
    let timeout = START_TIMEOUT + Duration::from_secs(books / SEEDED_BOOKS_PER_SECOND);
    Running::start(name, command, port, "/health/ready", timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_isbns_carry_the_isbn13_check_digit() {
        assert_eq!(Catalogue::isbn(30_640_615), "9780306406157");
        assert_eq!(Catalogue::isbn(0), "9780000000002");
    }

    #[test]
    fn generated_isbns_are_the_ones_the_server_seeds() {
        let serials = (0..20_000).chain((0..1_000).map(|n| 999_999_999 - n * 7_919));
        for serial in serials {
            assert_eq!(
                Catalogue::isbn(serial),
                bookstore_inventory::generated_isbn(serial).as_str(),
                "serial {serial}"
            );
        }
    }

    #[test]
    fn the_deep_cursor_is_hex_of_b_and_the_isbn_ninety_percent_in() {
        let cursor = Catalogue { books: 10 }.deep_cursor();
        let isbn_hex: String = Catalogue::isbn(9)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(cursor, format!("62{isbn_hex}"));
    }
}
