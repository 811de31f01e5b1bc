//! `cargo xtask bench`: load tests of a real `bookstore` process, against a bare actix-web
//! baseline, with the `oha` load generator.
//!
//! For each store (memory, SQLite, and PostgreSQL when `BOOKSTORE_TEST_POSTGRES_URL` is set)
//! it starts a release `bookstore` on a free port of 127.0.0.1, seeds it through the admin
//! API (`curl --parallel`), runs every [`Workload`] for a fixed duration with the same number
//! of connections, reads the server's peak RSS, and stops it. The GET workload also runs
//! against `bookstore-bench-baseline`. The table is printed and written to
//! `target/bench/report.md` and `target/bench/report.json`.
//!
//! Every process it starts is a [`Running`] guard, stopped when dropped, so an error stops
//! them too. Nothing here is a library HTTP client: `oha` and `curl` do the talking.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{cargo, workspace_root};

/// What `cargo xtask bench --help` prints.
pub(crate) const USAGE: &str = "\
Usage: cargo xtask bench [--books N] [--duration SECONDS[s]] [--connections N]

Builds the release binaries, then load-tests a real `bookstore` (memory, SQLite, and
PostgreSQL when BOOKSTORE_TEST_POSTGRES_URL is set) and a bare actix-web baseline with oha.
Defaults: --books 10000 --duration 10s --connections 32.
Writes target/bench/report.md and target/bench/report.json.
";

/// The customer key the servers accept during a run.
const CUSTOMER_KEY: &str = "bench-customer";
/// The admin key the servers accept during a run.
const ADMIN_KEY: &str = "bench-admin";
/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Most URLs written to the GET-book URL file (oha picks one at random per request).
const MAX_URLS: u64 = 100_000;
/// The stock of the book every order buys: it never runs out within a run.
const ORDER_BOOK_STOCK: u64 = 4_000_000_000;

/// The command line of `cargo xtask bench`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    books: u64,
    duration_seconds: u64,
    connections: u64,
}

impl Options {
    /// Parses `--books N`, `--duration 10s` and `--connections N`, in any order.
    pub(crate) fn parse(args: &[&str]) -> Result<Self, String> {
        let mut options = Options {
            books: 10_000,
            duration_seconds: 10,
            connections: 32,
        };
        let mut rest = args.iter();
        while let Some(&flag) = rest.next() {
            let value = rest
                .next()
                .ok_or_else(|| format!("`{flag}` needs a value"))?;
            let number = |text: &str| {
                text.parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("`{flag} {value}`: expected a positive number"))
            };
            match flag {
                "--books" => options.books = number(value)?,
                "--duration" => options.duration_seconds = number(value.trim_end_matches('s'))?,
                "--connections" => options.connections = number(value)?,
                _ => return Err(format!("unknown option `{flag}`")),
            }
        }
        Ok(options)
    }
}

/// One kind of traffic driven at a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// `GET /api/books/{isbn}` with a random seeded ISBN.
    GetBook,
    /// `GET /api/books?limit=20`.
    ListFirstPage,
    /// `GET /api/books?limit=20&cursor=…` 90 % of the way through the catalogue.
    ListDeepPage,
    /// `POST /api/orders`: one copy of one book, paid with `tok_visa`.
    PlaceOrder,
}

impl Workload {
    const ALL: [Workload; 4] = [
        Workload::GetBook,
        Workload::ListFirstPage,
        Workload::ListDeepPage,
        Workload::PlaceOrder,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::GetBook => "GET /api/books/{isbn}",
            Workload::ListFirstPage => "GET /api/books?limit=20",
            Workload::ListDeepPage => "GET /api/books?limit=20&cursor=(90%)",
            Workload::PlaceOrder => "POST /api/orders",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
struct Row {
    workload: String,
    store: String,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    peak_rss_kib: Option<u64>,
}

/// Runs the whole benchmark.
pub(crate) fn run(options: Options) -> Result<(), String> {
    println!("bench: {options:?}");
    build_release()?;
    let oha = oha_binary()?;
    let bin_dir = target_dir().join("release");
    let out_dir = workspace_root().join("target").join("bench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    let catalogue = Catalogue::new(options.books);
    let urls_file = out_dir.join("book-paths.txt");
    let started = Instant::now();

    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // The baseline: the same GET workload against a server that does nothing else.
    let baseline = {
        let port = free_port()?;
        let mut command = Command::new(bin_dir.join("bookstore-bench-baseline"));
        command
            .args(["--port", &port.to_string()])
            .env("BASELINE_API_KEY", CUSTOMER_KEY);
        let server = Running::start("baseline", command, port, "/api/books/9780306406157")?;
        catalogue.write_urls(&urls_file, port)?;
        let mut row = drive(&oha, &options, &server, Workload::GetBook, &urls_file)?;
        row.store = "baseline".to_owned();
        row.peak_rss_kib = server.peak_rss_kib();
        rows.push(row.clone());
        row
    };

    let mut stores = vec![
        ("memory".to_owned(), "memory".to_owned()),
        (
            "SQLite".to_owned(),
            format!("sqlite://{}", out_dir.join("bench.db").display()),
        ),
    ];
    let _ = fs::remove_file(out_dir.join("bench.db"));
    let postgres = match env::var("BOOKSTORE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(FreshPostgresDatabase::create(&url)?),
        _ => {
            notes.push("PostgreSQL not measured: BOOKSTORE_TEST_POSTGRES_URL is not set.".into());
            None
        }
    };
    if let Some(database) = &postgres {
        stores.push(("PostgreSQL".to_owned(), database.url.clone()));
    }

    let mut idle = Vec::new();
    for (store, database_url) in &stores {
        let port = free_port()?;
        let mut command = Command::new(bin_dir.join("bookstore"));
        command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--database-url", database_url, "--no-seed"])
            .args(["--rate-limit-per-second", "0", "--log-format", "json"])
            .env(
                "BOOKSTORE_API_KEYS",
                format!("{CUSTOMER_KEY}:customer,{ADMIN_KEY}:admin"),
            )
            .env("RUST_LOG", "warn");
        let server = Running::start(store, command, port, "/health/live")?;
        if let Some(rss) = server.current_rss_kib() {
            idle.push((store.clone(), rss));
        }
        let seeding = Instant::now();
        seed(&server, &catalogue, options.connections, &out_dir)?;
        notes.push(format!(
            "{store}: seeded {} books through POST /api/books in {:.1} s.",
            options.books,
            seeding.elapsed().as_secs_f64()
        ));
        catalogue.write_urls(&urls_file, port)?;
        for workload in Workload::ALL {
            server.reset_peak_rss();
            let mut row = drive(&oha, &options, &server, workload, &urls_file)?;
            row.store = store.clone();
            row.peak_rss_kib = server.peak_rss_kib();
            rows.push(row);
        }
    }
    drop(postgres);

    notes.push(
        "The 90/10 read/write mix is not measured: one oha run sends one method and body.".into(),
    );
    let report = Report {
        options,
        baseline_rps: baseline.requests_per_second,
        rows,
        idle,
        notes,
        elapsed: started.elapsed(),
    };
    let markdown = report.markdown();
    print!("\n{markdown}");
    write(&out_dir.join("report.md"), &markdown)?;
    write(
        &out_dir.join("report.json"),
        &serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?,
    )?;
    println!("wrote target/bench/report.md and target/bench/report.json");
    Ok(())
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// `cargo build --release` of the server and the baseline.
fn build_release() -> Result<(), String> {
    println!("bench: building the release binaries");
    let status = cargo(&[
        "build",
        "--release",
        "-p",
        "bookstore-gateway",
        "-p",
        "bookstore-bench-baseline",
    ])
    .status()
    .map_err(|e| format!("running cargo build: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo build --release failed ({status})"))
    }
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR`, else `target/`.
fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// `oha` on `PATH`, else in `target/tools/bin`, installed there on first use.
fn oha_binary() -> Result<PathBuf, String> {
    let works = |program: &Path| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if works(Path::new("oha")) {
        return Ok(PathBuf::from("oha"));
    }
    let root = workspace_root().join("target").join("tools");
    let installed = root.join("bin").join("oha");
    if !works(&installed) {
        println!(
            "bench: oha is not on PATH; installing it into target/tools with \
             `cargo install oha --locked` (this takes several minutes the first time)"
        );
        let root_arg = root.display().to_string();
        let status = cargo(&["install", "oha", "--locked", "--root", &root_arg])
            .status()
            .map_err(|e| format!("running cargo install oha: {e}"))?;
        if !status.success() || !works(&installed) {
            return Err(format!("cargo install oha failed ({status})"));
        }
    }
    Ok(installed)
}

/// A free TCP port on 127.0.0.1 (the listener is closed before the server binds it).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// A server process, stopped (SIGTERM, then SIGKILL) when dropped.
struct Running {
    name: String,
    child: Child,
    port: u16,
}

impl Running {
    /// Starts `command` and waits until `GET probe_path` answers 200.
    fn start(
        name: &str,
        mut command: Command,
        port: u16,
        probe_path: &str,
    ) -> Result<Self, String> {
        println!("bench: starting {name} on 127.0.0.1:{port}");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        let mut server = Running {
            name: name.to_owned(),
            child,
            port,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("{name} exited during start-up ({status})"));
            }
            if probe(port, probe_path) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not answer within {START_TIMEOUT:?}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
    fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    fn current_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// Resets `VmHWM` to the current RSS (Linux: `5` into `clear_refs`), so the next peak
    /// is that of one workload.
    fn reset_peak_rss(&self) {
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

/// Whether `GET path` on 127.0.0.1:`port` answers 200 (HTTP/1.0, one short exchange).
fn probe(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nX-API-Key: {CUSTOMER_KEY}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// The generated catalogue: `books` valid ISBN-13s, `978` + a nine-digit serial + check.
struct Catalogue {
    books: u64,
}

impl Catalogue {
    fn new(books: u64) -> Self {
        Catalogue { books }
    }

    fn isbn(serial: u64) -> String {
        let body = format!("978{serial:09}");
        let sum: u32 = body
            .bytes()
            .enumerate()
            .map(|(i, digit)| u32::from(digit - b'0') * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        format!("{body}{}", (10 - sum % 10) % 10)
    }

    /// The book every order buys.
    fn order_isbn(&self) -> String {
        Self::isbn(0)
    }

    /// The cursor the server issues after the book 90 % of the way through the catalogue
    /// (hex of `b` + ISBN, as `bookstore_gateway::wire::Cursor` encodes it).
    fn deep_cursor(&self) -> String {
        std::iter::once(b'b')
            .chain(Self::isbn(self.books * 9 / 10).bytes())
            .fold(String::new(), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }

    /// One `GET /api/books/{isbn}` URL per line, spread over the catalogue, for oha's
    /// `--urls-from-file` (which picks a line at random per request).
    fn write_urls(&self, path: &Path, port: u16) -> Result<(), String> {
        let step = self.books.div_ceil(MAX_URLS).max(1);
        let mut urls = String::new();
        for serial in (0..self.books).step_by(usize::try_from(step).unwrap_or(1)) {
            let _ = writeln!(
                urls,
                "http://127.0.0.1:{port}/api/books/{}",
                Self::isbn(serial)
            );
        }
        write(path, &urls)
    }
}

/// Adds the catalogue through `POST /api/books` (`curl --parallel`, one request per book),
/// then gives the order book a stock that never runs out (`PATCH`).
fn seed(
    server: &Running,
    catalogue: &Catalogue,
    connections: u64,
    out_dir: &Path,
) -> Result<(), String> {
    let base = server.base_url();
    let mut config = String::new();
    for serial in 0..catalogue.books {
        // `next` separates transfers; one after the last would start an empty transfer,
        // whose failure aborts all the others.
        if serial > 0 {
            config.push_str("next\n");
        }
        let _ = write!(
            config,
            "url = \"{base}/api/books\"\n\
             header = \"X-API-Key: {ADMIN_KEY}\"\n\
             header = \"Content-Type: application/json\"\n\
             data = \"{{\\\"isbn\\\":\\\"{}\\\",\\\"title\\\":\\\"Benchmark Book {serial}\\\",\\\"author\\\":\\\"Bench Author {}\\\",\\\"price_cents\\\":1999,\\\"stock\\\":1000000}}\"\n\
             output = \"/dev/null\"\n\
             write-out = \"%{{http_code}}\\n\"\n",
            Catalogue::isbn(serial),
            serial % 100,
        );
    }
    let config_path = out_dir.join("seed.curl");
    write(&config_path, &config)?;
    println!(
        "bench: seeding {} books into {}",
        catalogue.books, server.name
    );
    let output = Command::new("curl")
        .args([
            "--silent",
            "--parallel",
            "--parallel-max",
            &connections.to_string(),
        ])
        .arg("--config")
        .arg(&config_path)
        .output()
        .map_err(|e| format!("running curl: {e}"))?;
    let codes = String::from_utf8_lossy(&output.stdout);
    let created = codes.lines().filter(|code| *code == "201").count();
    if u64::try_from(created).ok() != Some(catalogue.books) {
        let mut others: BTreeMap<&str, usize> = BTreeMap::new();
        for code in codes.lines().filter(|code| *code != "201") {
            *others.entry(code).or_default() += 1;
        }
        return Err(format!(
            "seeding {}: {created} of {} books created; other answers: {others:?}",
            server.name, catalogue.books
        ));
    }
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
        .arg(format!("{base}/api/books/{}", catalogue.order_isbn()))
        .output()
        .map_err(|e| format!("running curl: {e}"))?;
    if patch.stdout != b"200" {
        return Err(format!(
            "PATCH of the order book answered {}",
            String::from_utf8_lossy(&patch.stdout)
        ));
    }
    Ok(())
}

/// Runs one workload with oha and reads its JSON summary.
fn drive(
    oha: &Path,
    options: &Options,
    server: &Running,
    workload: Workload,
    urls_file: &Path,
) -> Result<Row, String> {
    println!("bench: {} against {}", workload.name(), server.name);
    let base = server.base_url();
    let catalogue = Catalogue::new(options.books);
    let mut command = Command::new(oha);
    command
        .args(["--no-tui", "--output-format", "json"])
        .args(["-z", &format!("{}s", options.duration_seconds)])
        .args(["-c", &options.connections.to_string()])
        .args(["-H", &format!("X-API-Key: {CUSTOMER_KEY}")]);
    match workload {
        Workload::GetBook => {
            command.arg("--urls-from-file").arg(urls_file);
        }
        Workload::ListFirstPage => {
            command.arg(format!("{base}/api/books?limit=20"));
        }
        Workload::ListDeepPage => {
            command.arg(format!(
                "{base}/api/books?limit=20&cursor={}",
                catalogue.deep_cursor()
            ));
        }
        Workload::PlaceOrder => {
            let body = format!(
                r#"{{"items":[{{"isbn":"{}","quantity":1}}],"payment":{{"token":"tok_visa"}}}}"#,
                catalogue.order_isbn()
            );
            command
                .args(["-m", "POST", "-T", "application/json", "-d", &body])
                .arg(format!("{base}/api/orders"));
        }
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running oha: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "oha failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let summary: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("reading oha's JSON output: {e}"))?;
    let number = |pointer: &str| summary.pointer(pointer).and_then(Value::as_f64);
    let count = |pointer: &str, skip: &dyn Fn(&str) -> bool| {
        summary
            .pointer(pointer)
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter(|(key, _)| !skip(key))
                    .filter_map(|(_, n)| n.as_u64())
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let expected_status = match workload {
        Workload::PlaceOrder => "201",
        _ => "200",
    };
    let errors = count("/statusCodeDistribution", &|status| status == expected_status)
        // Requests cut off by the end of the run are not the server's errors.
        + count("/errorDistribution", &|error| error == "aborted due to deadline");
    Ok(Row {
        workload: workload.name().to_owned(),
        store: String::new(),
        requests_per_second: number("/metrics/requests_per_sec").unwrap_or(0.0),
        p50_ms: number("/metrics/latency_ms/p50").unwrap_or(f64::NAN),
        p99_ms: number("/metrics/latency_ms/p99").unwrap_or(f64::NAN),
        errors,
        peak_rss_kib: None,
    })
}

/// A database created on the server of `BOOKSTORE_TEST_POSTGRES_URL` for one run, dropped
/// when this is dropped (with `psql`).
struct FreshPostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl FreshPostgresDatabase {
    fn create(admin_url: &str) -> Result<Self, String> {
        let name = format!("bookstore_bench_{}", std::process::id());
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
        let (without_query, query) = match admin_url.split_once('?') {
            Some((url, query)) => (url, format!("?{query}")),
            None => (admin_url, String::new()),
        };
        let server = without_query
            .rsplit_once('/')
            .map_or(without_query, |(server, _database)| server);
        Ok(FreshPostgresDatabase {
            admin_url: admin_url.to_owned(),
            url: format!("{server}/{name}{query}"),
            name,
        })
    }
}

impl Drop for FreshPostgresDatabase {
    fn drop(&mut self) {
        if let Err(error) = psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("bench: could not drop database {}: {error}", self.name);
        }
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

/// Everything one run measured.
struct Report {
    options: Options,
    baseline_rps: f64,
    rows: Vec<Row>,
    idle: Vec<(String, u64)>,
    notes: Vec<String>,
    elapsed: Duration,
}

impl Report {
    fn ratio(&self, row: &Row) -> f64 {
        row.requests_per_second / self.baseline_rps
    }

    fn markdown(&self) -> String {
        let Options {
            books,
            duration_seconds,
            connections,
        } = self.options;
        let mut out = format!(
            "Books: {books}, duration: {duration_seconds} s per workload, connections: \
             {connections}; ratio = requests/s ÷ baseline GET requests/s.\n\n\
             | workload | store | requests/s | p50 ms | p99 ms | errors | peak RSS MiB | ratio to baseline |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n"
        );
        for row in &self.rows {
            let rss = row.peak_rss_kib.map_or_else(
                || "?".to_owned(),
                |kib| format!("{:.1}", kib as f64 / 1024.0),
            );
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {rss} | {:.2} |",
                row.workload,
                row.store,
                row.requests_per_second,
                row.p50_ms,
                row.p99_ms,
                row.errors,
                self.ratio(row),
            );
        }
        out.push('\n');
        for (store, kib) in &self.idle {
            let _ = writeln!(
                out,
                "- {store}: idle RSS after start-up (empty catalogue) {:.1} MiB.",
                *kib as f64 / 1024.0
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        let _ = writeln!(
            out,
            "- The whole run took {:.0} s.",
            self.elapsed.as_secs_f64()
        );
        out
    }

    fn json(&self) -> Value {
        json!({
            "books": self.options.books,
            "duration_seconds": self.options.duration_seconds,
            "connections": self.options.connections,
            "baseline_requests_per_second": self.baseline_rps,
            "rows": self.rows.iter().map(|row| json!({
                "workload": row.workload,
                "store": row.store,
                "requests_per_second": row.requests_per_second,
                "p50_ms": row.p50_ms,
                "p99_ms": row.p99_ms,
                "errors": row.errors,
                "peak_rss_kib": row.peak_rss_kib,
                "ratio_to_baseline": self.ratio(row),
            })).collect::<Vec<_>>(),
            "idle_rss_kib": self.idle.iter().map(|(store, kib)| json!({
                "store": store,
                "kib": kib,
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }
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
    fn the_deep_cursor_is_hex_of_b_and_the_isbn_ninety_percent_in() {
        let cursor = Catalogue::new(10).deep_cursor();
        let isbn_hex: String = Catalogue::isbn(9)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(cursor, format!("62{isbn_hex}"));
    }

    #[test]
    fn options_default_and_parse_in_any_order() {
        let defaults = Options::parse(&[]).unwrap();
        assert_eq!(
            (
                defaults.books,
                defaults.duration_seconds,
                defaults.connections
            ),
            (10_000, 10, 32)
        );
        let options = Options::parse(&["--duration", "5s", "--books", "1000"]).unwrap();
        assert_eq!((options.books, options.duration_seconds), (1000, 5));
        assert!(Options::parse(&["--books"]).is_err());
        assert!(Options::parse(&["--books", "0"]).is_err());
        assert!(Options::parse(&["--speed", "1"]).is_err());
    }
}
