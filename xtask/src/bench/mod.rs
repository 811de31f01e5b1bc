//! `cargo xtask bench`: load tests of a real `bookstore` process, against a bare actix-web
//! baseline, with the `oha` load generator.
//!
//! One run:
//!
//! 1. builds the release binaries, and the server again with `--profile release-default`
//!    (cargo's own release settings) to show what the tuned profile buys (unless
//!    `--no-default-profile`);
//! 2. drives `GET /api/books/{isbn}` at `bookstore-bench-baseline`, the framework's ceiling;
//! 3. for each store (memory, SQLite, and PostgreSQL when `BOOKSTORE_TEST_POSTGRES_URL` is
//!    set) starts `bookstore` with the demo catalogue to read its idle RSS, then again with
//!    `--seed-generated-books N` and runs every [`Workload`] and the 90/10 mix; then
//!    `POST /api/orders` again on a server with one webhook endpoint subscribed to every
//!    event (a local receiver answering 204 at once, [`Sink`]), and the delivery lag;
//! 4. compares a 1,000-book catalogue with a large one (`--scale-books`, default 1,000,000)
//!    for the reads, on memory and SQLite, at the same fixed request rate;
//! 5. runs the GET workload on the default-profile build (unless `--no-default-profile`);
//! 6. prints the report and writes `target/bench/report.md` and `target/bench/report.json`.
//!
//! Every process it starts is stopped when its guard is dropped, so an error stops them too.
//! Nothing here is a library HTTP client: `oha` and `curl` do the talking.

mod load;
mod report;
mod server;
mod sink;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use load::{Load, Workload, drive, drive_mix, mix_rate, oha_binary};
use report::{BEFORE_SUFFIX, IdleRss, ProfileBuild, Report};
use server::{
    Catalogue, FreshDatabase, Running, Store, free_port, start_bookstore, start_bookstore_with,
    subscribe,
};
use sink::Sink;

use crate::{cargo, workspace_root};

/// What `cargo xtask bench --help` prints.
pub(crate) const USAGE: &str = "\
Usage: cargo xtask bench [--books N] [--scale-books N] [--duration SECONDS[s]] [--connections N]

Builds the release binaries, then load-tests a real `bookstore` (memory, SQLite, and
PostgreSQL when BOOKSTORE_TEST_POSTGRES_URL is set) and a bare actix-web baseline with oha.

  --books N          books in the catalogue of the main table (default 10000)
  --scale-books N    the large catalogue compared with 1,000 books (default 1000000;
                     0 skips the comparison)
  --duration D       seconds per workload (default 10s)
  --connections N    connections for every workload (default 32)
  --before PATH      also measure this `bookstore` binary (built from an earlier commit)
                     on every store with the same flat-out workloads, in the same run:
                     its rows are labelled `STORE (before)`
  --stores LIST      only these stores, comma-separated: memory, sqlite, postgres
                     (default: all; postgres only when BOOKSTORE_TEST_POSTGRES_URL is set)
  --no-default-profile
                     skip building and measuring cargo's default release profile

Writes target/bench/report.md and target/bench/report.json.
";

/// Most URLs written to the GET-book URL file (oha picks one at random per request).
const MAX_URLS: u64 = 100_000;
/// The small catalogue of the catalogue-size comparison.
const SMALL_CATALOGUE: u64 = 1_000;
/// The share of a store's predicted capacity its 90/10 mix is driven at: at the capacity
/// itself, any misjudgement queues requests and the latencies measure the queue.
const MIX_LOAD: f64 = 0.8;
/// The share of the small catalogue's capacity at which the catalogue-size comparison
/// measures latency: well below saturation, so that p99 shows the work a request does
/// rather than how two busy processes share the cores.
const SCALE_LOAD: f64 = 0.25;
/// How many times each measured workload runs; the report keeps the [`best`] run.
const RUNS: usize = 2;
/// How long each server of the catalogue-size comparison is warmed up before a measured run.
const WARM_UP_SECONDS: u64 = 3;
/// How long a server sits after start-up before its idle RSS is read.
const IDLE_SETTLE: Duration = Duration::from_secs(1);

/// The command line of `cargo xtask bench`.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    books: u64,
    scale_books: u64,
    duration_seconds: u64,
    connections: u64,
    /// An earlier `bookstore` binary to measure beside this one.
    before: Option<PathBuf>,
    /// Whether to build and measure the `release-default` profile too.
    default_profile: bool,
    /// The stores measured, by [`Store::key`] (all when `None`).
    stores: Option<Vec<String>>,
}

impl Options {
    /// Parses the flags of [`USAGE`], in any order.
    pub(crate) fn parse(args: &[&str]) -> Result<Self, String> {
        let mut options = Options {
            books: 10_000,
            scale_books: 1_000_000,
            duration_seconds: 10,
            connections: 32,
            before: None,
            default_profile: true,
            stores: None,
        };
        let mut rest = args.iter();
        while let Some(&flag) = rest.next() {
            if flag == "--no-default-profile" {
                options.default_profile = false;
                continue;
            }
            let value = rest
                .next()
                .ok_or_else(|| format!("`{flag}` needs a value"))?;
            let number = |text: &str, least: u64| {
                text.parse::<u64>()
                    .ok()
                    .filter(|&n| n >= least && n < 1_000_000_000)
                    .ok_or_else(|| format!("`{flag} {value}`: expected a number from {least}"))
            };
            match flag {
                "--books" => options.books = number(value, 10)?,
                "--scale-books" => options.scale_books = number(value, 0)?,
                "--duration" => options.duration_seconds = number(value.trim_end_matches('s'), 1)?,
                "--connections" => options.connections = number(value, 2)?,
                "--before" => {
                    let binary = PathBuf::from(value);
                    if !binary.is_file() {
                        return Err(format!("`--before {value}`: no such file"));
                    }
                    options.before = Some(binary);
                }
                "--stores" => {
                    let stores: Vec<String> =
                        value.split(',').map(|s| s.trim().to_lowercase()).collect();
                    if let Some(unknown) =
                        stores.iter().find(|s| !Store::KEYS.contains(&s.as_str()))
                    {
                        return Err(format!(
                            "`--stores {value}`: unknown store `{unknown}` (expected {})",
                            Store::KEYS.join(", ")
                        ));
                    }
                    options.stores = Some(stores);
                }
                _ => return Err(format!("unknown option `{flag}`")),
            }
        }
        Ok(options)
    }

    fn load(&self) -> Load {
        Load {
            duration_seconds: self.duration_seconds,
            connections: self.connections,
        }
    }
}

/// One line of a table.
#[derive(Debug, Clone)]
struct Row {
    workload: String,
    store: String,
    /// Books in the catalogue.
    books: u64,
    requests_per_second: f64,
    /// The rate oha was held to, if any (else as fast as the server answers).
    driven_at: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    peak_rss_kib: Option<u64>,
}

/// The binaries of one cargo profile.
struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    fn bookstore(&self) -> PathBuf {
        self.dir.join("bookstore")
    }
}

/// Runs the whole benchmark.
pub(crate) fn run(options: Options) -> Result<(), String> {
    println!("bench: {options:?}");
    let started = Instant::now();
    let release = build(
        "release",
        &["bookstore-gateway", "bookstore-bench-baseline"],
    )?;
    let default_profile = if options.default_profile {
        Some(build("release-default", &["bookstore-gateway"])?)
    } else {
        None
    };
    let oha = oha_binary()?;
    let out_dir = workspace_target().join("bench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    let urls_file = out_dir.join("book-paths.txt");
    let load = options.load();
    let catalogue = Catalogue {
        books: options.books,
    };

    let before = options.before.clone();
    let mut report = Report::new(options);

    // The GET workload, flat out, on a server with `catalogue`.
    let get_books = |server: &Running| {
        catalogue.write_urls(&urls_file, server.port(), MAX_URLS)?;
        measure(
            &oha,
            load,
            server,
            catalogue,
            Workload::GetBook,
            &urls_file,
            None,
        )
    };

    // The baseline: the same GET workload against a server that does nothing else. It is
    // measured at the start and again at the end, and the better figure kept.
    let baseline = {
        let port = free_port()?;
        let mut command = Command::new(release.dir.join("bookstore-bench-baseline"));
        command
            .args(["--port", &port.to_string()])
            .env("BASELINE_API_KEY", server::CUSTOMER_KEY);
        let server = Running::start(
            "baseline",
            command,
            port,
            "/api/books/9780306406157",
            Duration::from_secs(30),
        )?;
        let row = get_books(&server)?;
        (server, row)
    };

    let mut stores = vec![Store::Memory, Store::Sqlite(out_dir.clone())];
    match env::var("BOOKSTORE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => stores.push(Store::Postgres(url)),
        _ => report
            .notes
            .push("PostgreSQL not measured: BOOKSTORE_TEST_POSTGRES_URL is not set.".into()),
    }
    if let Some(only) = &report.options().stores {
        stores.retain(|store| only.iter().any(|key| key == store.key()));
    }

    for store in &stores {
        report
            .idle
            .push(idle_rss(&release.bookstore(), "release", store)?);

        let database = store.fresh("main")?;
        let server = start_seeded(&release, store, &database, catalogue, &mut report)?;
        catalogue.stock_order_book(&server)?;
        catalogue.write_urls(&urls_file, server.port(), MAX_URLS)?;
        let mut measured = Vec::new();
        for workload in Workload::ALL {
            let row = measure(&oha, load, &server, catalogue, workload, &urls_file, None)?;
            measured.push(row);
        }
        let rate = MIX_LOAD
            * mix_rate(
                measured[0].requests_per_second,
                measured[3].requests_per_second,
            );
        server.reset_peak_rss();
        let (read, write) = drive_mix(&oha, load, &server, catalogue, &urls_file, rate)?;
        report.mix_rates.push((store.name().to_owned(), rate));
        for row in measured.into_iter().chain([read, write]) {
            report.rows.push(Row {
                store: store.name().to_owned(),
                books: catalogue.books,
                peak_rss_kib: row.peak_rss_kib.or_else(|| server.peak_rss_kib()),
                ..row
            });
        }
        drop(server);
        measure_with_subscriber(
            &oha,
            load,
            &release,
            store,
            catalogue,
            &urls_file,
            &mut report,
        )?;

        if let Some(before) = &before {
            let name = format!("{}{BEFORE_SUFFIX}", store.name());
            let database = store.fresh("before")?;
            let server = start_bookstore(before, &name, &database, Some(catalogue))?;
            catalogue.check_served_by(&server)?;
            catalogue.stock_order_book(&server)?;
            catalogue.write_urls(&urls_file, server.port(), MAX_URLS)?;
            for workload in Workload::ALL {
                let row = measure(&oha, load, &server, catalogue, workload, &urls_file, None)?;
                report.rows.push(Row {
                    store: name.clone(),
                    ..row
                });
            }
        }
    }

    if report.options().scale_books > 0 {
        for store in stores
            .iter()
            .filter(|store| !matches!(store, Store::Postgres(_)))
        {
            compare_sizes(
                &oha,
                &release,
                load,
                store,
                report.options().scale_books,
                &out_dir,
                &mut report,
            )?;
        }
    }

    // What the tuned profile buys: the same GET workload on cargo's default release build.
    if let Some(default_profile) = &default_profile {
        report.idle.push(idle_rss(
            &default_profile.bookstore(),
            "release-default",
            &Store::Memory,
        )?);
        let database = Store::Memory.fresh("profile")?;
        let server = start_bookstore(
            &default_profile.bookstore(),
            "memory (release-default)",
            &database,
            Some(catalogue),
        )?;
        let row = get_books(&server)?;
        report.rows.push(Row {
            store: "memory, release-default profile".to_owned(),
            books: catalogue.books,
            ..row
        });
    }
    let (baseline_server, first) = baseline;
    let again = get_books(&baseline_server)?;
    let row = best(vec![first, again], None);
    report.baseline_rps = row.requests_per_second;
    report.rows.insert(
        0,
        Row {
            store: "baseline".to_owned(),
            ..row
        },
    );
    drop(baseline_server);

    report.builds = std::iter::once(ProfileBuild::of("release", &release.bookstore()))
        .chain(
            default_profile
                .iter()
                .map(|binaries| ProfileBuild::of("release-default", &binaries.bookstore())),
        )
        .collect();

    report.elapsed = started.elapsed();
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

/// Starts the release `bookstore` on `database` seeded with `catalogue`, checks it serves
/// the catalogue's ISBNs, and notes how long start-up took.
fn start_seeded(
    release: &Binaries,
    store: &Store,
    database: &FreshDatabase,
    catalogue: Catalogue,
    report: &mut Report,
) -> Result<Running, String> {
    let server = start_bookstore(
        &release.bookstore(),
        store.name(),
        database,
        Some(catalogue),
    )?;
    report.notes.push(format!(
        "{}: start-up with {} generated books took {:.1} s.",
        store.name(),
        catalogue.books,
        server.ready_after.as_secs_f64()
    ));
    catalogue.check_served_by(&server)?;
    Ok(server)
}

/// The catalogue-size comparison on `store`: a server with 1,000 books and one with
/// `large` books run side by side. For each read workload the small one is first driven
/// flat out to find its capacity; then each, warmed up, is driven at [`SCALE_LOAD`] of it,
/// small then large, so their latencies are compared at the same load. Both list pages are driven at
/// the rate of the first page, so the deep page is compared with it at the same load too.
fn compare_sizes(
    oha: &Path,
    release: &Binaries,
    load: Load,
    store: &Store,
    large: u64,
    out_dir: &Path,
    report: &mut Report,
) -> Result<(), String> {
    let mut servers = Vec::new();
    for books in [SMALL_CATALOGUE, large] {
        let catalogue = Catalogue { books };
        let database = store.fresh(&format!("scale{books}"))?;
        let server = start_seeded(release, store, &database, catalogue, report)?;
        let urls = out_dir.join(format!("book-paths-{books}.txt"));
        catalogue.write_urls(&urls, server.port(), MAX_URLS)?;
        servers.push((catalogue, database, server, urls));
    }
    let mut list_rate = None;
    for workload in [
        Workload::GetBook,
        Workload::ListFirstPage,
        Workload::ListDeepPage,
    ] {
        let rate = match (workload, list_rate) {
            (Workload::ListDeepPage, Some(rate)) => rate,
            _ => {
                let (catalogue, _, server, urls) = &servers[0];
                let capacity = drive(oha, load, server, *catalogue, workload, urls, None)?;
                SCALE_LOAD * capacity.requests_per_second
            }
        };
        if workload == Workload::ListFirstPage {
            list_rate = Some(rate);
        }
        let mut runs: Vec<Vec<Row>> = vec![Vec::new(); servers.len()];
        for _round in 0..RUNS {
            for ((catalogue, _, server, urls), runs) in servers.iter().zip(&mut runs) {
                // Warm up first (discarded): the SQLite store fills its book cache.
                let warm_up = Load {
                    duration_seconds: WARM_UP_SECONDS.min(load.duration_seconds),
                    ..load
                };
                drive(oha, warm_up, server, *catalogue, workload, urls, None)?;
                let row = drive(oha, load, server, *catalogue, workload, urls, Some(rate))?;
                runs.push(Row {
                    books: catalogue.books,
                    ..row
                });
            }
        }
        for runs in runs {
            report.scale_rows.push(Row {
                store: store.name().to_owned(),
                ..best(runs, Some(rate))
            });
        }
    }
    Ok(())
}

/// How long the receiver may take to get the last deliveries after the load stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// `POST /api/orders` on a fresh server with one webhook endpoint subscribed to every
/// event: flat out (its ratio to the same store without one), then on another fresh server
/// held to [`PACED_SHARE`] of the rate without one, a load the machine can carry; each with
/// the delivery lag, drain included.
fn measure_with_subscriber(
    oha: &Path,
    load: Load,
    release: &Binaries,
    store: &Store,
    catalogue: Catalogue,
    urls_file: &Path,
    report: &mut Report,
) -> Result<(), String> {
    let without = report
        .rows
        .iter()
        .find(|other| other.store == store.name() && other.workload == Workload::PlaceOrder.name())
        .map(|other| other.requests_per_second);
    let name = format!("{} + webhook", store.name());
    let (row, delivered) =
        with_subscriber(oha, load, release, store, catalogue, urls_file, &name, None)?;
    let ratio = without.map_or_else(
        || "?".to_owned(),
        |without| format!("{:.2}", row.requests_per_second / without),
    );
    report.notes.push(format!(
        "{name}: POST /api/orders {:.0} requests/s flat out with one endpoint subscribed to every event, \
         {ratio}× the {} without one; {delivered}",
        row.requests_per_second,
        store.name(),
    ));
    report.rows.push(Row {
        store: name.clone(),
        ..row
    });
    if let Some(without) = without {
        let rate = (without * PACED_SHARE).max(1.0);
        let (paced, delivered) = with_subscriber(
            oha,
            load,
            release,
            store,
            catalogue,
            urls_file,
            &name,
            Some(rate),
        )?;
        report.notes.push(format!(
            "{name}: POST /api/orders held to {rate:.0} requests/s ({:.0} % of the rate without an \
             endpoint): p50 {:.1} ms, p99 {:.1} ms; {delivered}",
            PACED_SHARE * 100.0,
            paced.p50_ms,
            paced.p99_ms,
        ));
        report.rows.push(Row {
            store: name,
            ..paced
        });
    }
    Ok(())
}

/// The share of the order rate without an endpoint at which the paced run with one is held.
const PACED_SHARE: f64 = 0.5;

/// One server with a subscribed [`Sink`]: drives the orders (flat out, or at `rate`), waits
/// for the deliveries to stop arriving (at most [`DRAIN_LIMIT`]); answers the row and what
/// was delivered, with the lag.
#[allow(clippy::too_many_arguments)]
fn with_subscriber(
    oha: &Path,
    load: Load,
    release: &Binaries,
    store: &Store,
    catalogue: Catalogue,
    urls_file: &Path,
    name: &str,
    rate: Option<f64>,
) -> Result<(Row, String), String> {
    let sink = Sink::start()?;
    let database = store.fresh(if rate.is_some() {
        "webhook-paced"
    } else {
        "webhook"
    })?;
    let server = start_bookstore_with(
        &release.bookstore(),
        name,
        &database,
        Some(catalogue),
        &["--webhook-allow-private-addresses"],
    )?;
    catalogue.stock_order_book(&server)?;
    subscribe(&server, &sink.url())?;
    let row = measure(
        oha,
        load,
        &server,
        catalogue,
        Workload::PlaceOrder,
        urls_file,
        rate,
    )?;
    let at_end = sink.received();
    let started = Instant::now();
    let mut last = (at_end, Instant::now());
    while started.elapsed() < DRAIN_LIMIT && last.1.elapsed() < Duration::from_secs(2) {
        thread::sleep(Duration::from_millis(100));
        let now = sink.received();
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    let lag = sink.lag_percentiles_ms().map_or_else(
        || "no delivery arrived".to_owned(),
        |(p50, p99)| format!("delivery lag p50 {p50} ms, p99 {p99} ms"),
    );
    let orders = row.requests_per_second * load.duration_seconds as f64 * RUNS as f64;
    Ok((
        row,
        format!(
            "{} deliveries received ({at_end} when the load stopped) of about {:.0} \
             (two per order), {lag} (from the event's timestamp to its arrival, drain included)",
            sink.received(),
            orders * 2.0,
        ),
    ))
}

/// Runs one workload [`RUNS`] times, keeps the [`best`] run, and reads the server's peak
/// RSS during them.
fn measure(
    oha: &Path,
    load: Load,
    server: &Running,
    catalogue: Catalogue,
    workload: Workload,
    urls_file: &Path,
    rate: Option<f64>,
) -> Result<Row, String> {
    server.reset_peak_rss();
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        runs.push(drive(
            oha, load, server, catalogue, workload, urls_file, rate,
        )?);
    }
    Ok(Row {
        books: catalogue.books,
        peak_rss_kib: server.peak_rss_kib(),
        ..best(runs, rate)
    })
}

/// The better of several runs of one workload: the most requests per second when driven
/// flat out, the lowest p99 when held to a rate. Other processes on the machine only ever
/// slow a run down, so the better run is the closer to what the server can do.
fn best(runs: Vec<Row>, rate: Option<f64>) -> Row {
    let key = |row: &Row| match rate {
        None => -row.requests_per_second,
        Some(_) => row.p99_ms,
    };
    runs.into_iter()
        .min_by(|a, b| key(a).total_cmp(&key(b)))
        .expect("at least one run")
}

/// Starts `binary` on a fresh database of `store` with the demo catalogue and reads its RSS
/// once it has sat idle for a moment.
fn idle_rss(binary: &Path, profile: &str, store: &Store) -> Result<IdleRss, String> {
    let database = store.fresh("idle")?;
    let server = start_bookstore(binary, store.name(), &database, None)?;
    thread::sleep(IDLE_SETTLE);
    Ok(IdleRss {
        store: store.name().to_owned(),
        profile: profile.to_owned(),
        kib: server.current_rss_kib(),
    })
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// `cargo build --profile PROFILE -p …` of `packages`.
fn build(profile: &str, packages: &[&str]) -> Result<Binaries, String> {
    println!(
        "bench: building {} with --profile {profile}",
        packages.join(", ")
    );
    let mut args = vec!["build", "--profile", profile];
    for package in packages {
        args.extend(["-p", package]);
    }
    let status = cargo(&args)
        .status()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --profile {profile} failed ({status})"));
    }
    Ok(Binaries {
        dir: cargo_target_dir().join(profile),
    })
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR`, else `target/`.
fn cargo_target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_target(),
    }
}

/// The workspace's own `target/`, where reports and tools go whatever `CARGO_TARGET_DIR` is.
fn workspace_target() -> PathBuf {
    workspace_root().join("target")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_and_parse_in_any_order() {
        let defaults = Options::parse(&[]).unwrap();
        assert_eq!(
            (
                defaults.books,
                defaults.scale_books,
                defaults.duration_seconds,
                defaults.connections
            ),
            (10_000, 1_000_000, 10, 32)
        );
        let options =
            Options::parse(&["--duration", "5s", "--books", "1000", "--scale-books", "0"]).unwrap();
        assert_eq!(
            (options.books, options.scale_books, options.duration_seconds),
            (1000, 0, 5)
        );
        assert!(Options::parse(&["--books"]).is_err());
        assert!(Options::parse(&["--books", "0"]).is_err());
        assert!(Options::parse(&["--connections", "1"]).is_err());
        assert!(Options::parse(&["--speed", "1"]).is_err());
        assert!(Options::parse(&["--stores", "memory,mongo"]).is_err());
        let some = Options::parse(&["--stores", "SQLite,postgres"]).unwrap();
        assert_eq!(
            some.stores,
            Some(vec!["sqlite".to_owned(), "postgres".to_owned()])
        );
        assert!(Options::parse(&["--before", "/no/such/bookstore"]).is_err());
        assert!(defaults.default_profile);
        let quick = Options::parse(&["--no-default-profile", "--duration", "5"]).unwrap();
        assert!(!quick.default_profile);
        assert_eq!(quick.duration_seconds, 5);
        let cargo = env!("CARGO");
        let with_before = Options::parse(&["--before", cargo]).unwrap();
        assert_eq!(with_before.before, Some(PathBuf::from(cargo)));
    }
}
