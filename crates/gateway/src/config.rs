//! Command-line and environment configuration of the `bookstore` binary.
//!
//! Every flag can also be set through the environment variable named in `--help`.

use std::net::IpAddr;

use clap::{Parser, Subcommand, ValueEnum};

use crate::http::extract::DEFAULT_BODY_LIMIT_BYTES;
use crate::http::rate_limit::RedisUrl;
use crate::stores::Seed;

/// The Bookstore API server.
#[derive(Debug, Clone, Parser)]
#[command(name = "bookstore", version, about, long_about = None)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on.
    #[arg(
        long,
        env = "BOOKSTORE_HOST",
        default_value = "127.0.0.1",
        global = true
    )]
    pub host: IpAddr,

    /// Port to listen on.
    #[arg(long, env = "BOOKSTORE_PORT", default_value_t = 5001, global = true)]
    pub port: u16,

    /// Where data is kept: `sqlite://PATH` (created if missing), `postgres://USER@HOST:PORT/DB`
    /// (for several instances sharing one database), or `memory` (lost on restart).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://bookstore.db",
        global = true
    )]
    pub database_url: String,

    /// Most pooled database connections per process (PostgreSQL; SQLite uses one writer).
    #[arg(
        long,
        env = "BOOKSTORE_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub database_max_connections: u32,

    /// How long to wait for a database connection, in seconds.
    #[arg(
        long,
        env = "BOOKSTORE_DATABASE_CONNECT_TIMEOUT_SECONDS",
        default_value_t = 5,
        global = true
    )]
    pub database_connect_timeout_seconds: u64,

    /// Start with an empty catalogue instead of the demo books.
    #[arg(long, env = "BOOKSTORE_NO_SEED", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_seed: bool,

    /// Fill an empty catalogue with this many generated books (ISBN 978 + a nine-digit
    /// serial + check digit, 1,000,000 copies each) instead of the demo books; for load
    /// tests and benchmarks.
    #[arg(
        long,
        env = "BOOKSTORE_SEED_GENERATED_BOOKS",
        global = true,
        conflicts_with = "no_seed",
        value_parser = clap::value_parser!(u64).range(1..1_000_000_000)
    )]
    pub seed_generated_books: Option<u64>,

    /// API keys and roles, e.g. `key1:customer,key2:admin`. When unset, the demo keys
    /// `secret123` (customer) and `admin123` (admin) are active and a warning is logged.
    #[arg(
        long,
        env = "BOOKSTORE_API_KEYS",
        hide_env_values = true,
        global = true
    )]
    pub api_keys: Option<String>,

    /// Log format.
    #[arg(long, env = "BOOKSTORE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Largest request body accepted, in bytes (larger bodies get 413).
    #[arg(long, env = "BOOKSTORE_BODY_LIMIT_BYTES", default_value_t = DEFAULT_BODY_LIMIT_BYTES, global = true)]
    pub body_limit_bytes: usize,

    /// Longest URL (path and query) accepted, in bytes (longer URLs get 414).
    #[arg(long, env = "BOOKSTORE_MAX_URL_BYTES", default_value_t = 8 * 1024, global = true)]
    pub max_url_bytes: usize,

    /// Largest total size of request header names and values, in bytes (larger get 431).
    #[arg(long, env = "BOOKSTORE_MAX_HEADER_BYTES", default_value_t = 16 * 1024, global = true)]
    pub max_header_bytes: usize,

    /// Requests per second allowed per API key (and per client address for requests
    /// without a valid key); 0 turns rate limiting off.
    #[arg(
        long,
        env = "BOOKSTORE_RATE_LIMIT_PER_SECOND",
        default_value_t = 1000,
        global = true
    )]
    pub rate_limit_per_second: u32,

    /// Requests a key may send at once before the per-second rate applies.
    #[arg(
        long,
        env = "BOOKSTORE_RATE_LIMIT_BURST",
        default_value_t = 2000,
        global = true
    )]
    pub rate_limit_burst: u32,

    /// Redis whose rate-limit budgets every instance shares, e.g.
    /// `redis://:PASSWORD@HOST:6379/0`; unset, each instance keeps its own. While Redis is
    /// unavailable each instance falls back to its own limits (fail open).
    #[arg(
        long,
        env = "BOOKSTORE_RATE_LIMIT_REDIS_URL",
        value_name = "URL",
        hide_env_values = true,
        global = true
    )]
    pub rate_limit_redis_url: Option<RedisUrl>,

    /// Longest wait for Redis per request, in milliseconds, before this instance's own limits
    /// apply instead.
    #[arg(
        long,
        env = "BOOKSTORE_RATE_LIMIT_REDIS_TIMEOUT_MS",
        default_value_t = 100,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=10_000)
    )]
    pub rate_limit_redis_timeout_ms: u64,

    /// Time a client has to send the request head, in milliseconds (then 408); 0 disables.
    #[arg(
        long,
        env = "BOOKSTORE_CLIENT_REQUEST_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub client_request_timeout_ms: u64,

    /// How long an idle keep-alive connection stays open, in seconds; 0 disables keep-alive.
    #[arg(
        long,
        env = "BOOKSTORE_KEEP_ALIVE_SECONDS",
        default_value_t = 5,
        global = true
    )]
    pub keep_alive_seconds: u64,

    /// Most concurrent connections per worker; further connections wait to be accepted.
    #[arg(
        long,
        env = "BOOKSTORE_MAX_CONNECTIONS",
        default_value_t = 25_000,
        global = true
    )]
    pub max_connections: usize,

    /// On SIGTERM or SIGINT, how long in-flight requests may take to finish, in seconds.
    #[arg(
        long,
        env = "BOOKSTORE_SHUTDOWN_TIMEOUT_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_timeout_seconds: u64,

    /// On SIGTERM or SIGINT, how long to go on serving with `/health/ready` answering 503
    /// before the listener closes, in seconds, so that a load balancer stops sending new
    /// requests first; a second signal cuts it short.
    #[arg(
        long,
        env = "BOOKSTORE_SHUTDOWN_DRAIN_SECONDS",
        default_value_t = 0,
        global = true,
        value_parser = clap::value_parser!(u64).range(0..=300)
    )]
    pub shutdown_drain_seconds: u64,

    /// How old an unfinished order attempt must be before recovery settles it (refunds its
    /// payment and returns its stock), in seconds. Recovery runs at start-up and every
    /// minute. Keep it well above the longest request; lower it only when no other instance
    /// shares the database.
    #[arg(
        long,
        env = "BOOKSTORE_RECOVERY_GRACE_SECONDS",
        default_value_t = crate::workflow::RECOVERY_GRACE_PERIOD.as_secs(),
        global = true
    )]
    pub recovery_grace_seconds: u64,

    /// How long this process's lease in the database lasts, in seconds. The process renews
    /// it every fifth of that; when a process stops renewing (it was killed), another
    /// instance settles its unfinished orders within the lease and two fifths more (14 s by
    /// default). On SQLite the next start settles them at once.
    #[arg(
        long,
        env = "BOOKSTORE_INSTANCE_LEASE_SECONDS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(2..=3600),
        global = true
    )]
    pub instance_lease_seconds: u64,

    /// The most deliveries one day takes; a delivery goes to the next business day with
    /// room. Unlimited when unset.
    #[arg(
        long,
        env = "BOOKSTORE_DELIVERY_CAPACITY_PER_DAY",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        global = true
    )]
    pub delivery_capacity_per_day: Option<u32>,

    /// Days no delivery goes out (public holidays, stock-taking), as a comma-separated list
    /// of `YYYY-MM-DD` dates; skipped like weekends.
    #[arg(
        long,
        env = "BOOKSTORE_DELIVERY_CLOSED_DAYS",
        value_delimiter = ',',
        value_parser = parse_closed_day,
        global = true
    )]
    pub delivery_closed_days: Vec<chrono::NaiveDate>,

    /// Worker threads serving requests (default: one per CPU core).
    #[arg(long, env = "BOOKSTORE_WORKERS", global = true)]
    pub workers: Option<usize>,
}

/// One closed day: exactly `YYYY-MM-DD`.
fn parse_closed_day(text: &str) -> Result<chrono::NaiveDate, String> {
    crate::wire::tracking::strict_date(text.trim())
        .ok_or_else(|| format!("{text:?} is not a date written YYYY-MM-DD"))
}

impl Cli {
    /// Which days deliveries go out, and how many a day takes.
    pub fn delivery_policy(&self) -> crate::app::DeliveryPolicy {
        crate::app::DeliveryPolicy {
            calendar: bookstore_delivery::DeliveryCalendar::with_closed_days(
                self.delivery_closed_days.iter().copied(),
            ),
            capacity_per_day: self.delivery_capacity_per_day,
        }
    }

    /// What an empty catalogue is filled with at start-up.
    pub fn seed(&self) -> Seed {
        match (self.no_seed, self.seed_generated_books) {
            (true, _) => Seed::Nothing,
            (false, Some(count)) => Seed::Generated(count),
            (false, None) => Seed::Demo,
        }
    }
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print the OpenAPI document to standard output and exit.
    Openapi,
    /// Apply the database migrations and exit (for deploy pipelines; serving applies them too).
    Migrate,
    /// Ask the server on this machine (`--host`, `--port`) whether it is ready; exit 0 when
    /// `/health/ready` answers 200, 1 otherwise. For container health checks.
    Probe,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_serve_on_localhost_port_5001_from_a_sqlite_file() {
        let cli = Cli::try_parse_from(["bookstore"]).unwrap();
        assert_eq!(cli.host.to_string(), "127.0.0.1");
        assert_eq!(cli.port, 5001);
        assert_eq!(cli.database_url, "sqlite://bookstore.db");
        assert_eq!(cli.seed(), Seed::Demo);
        assert!(cli.command.is_none());
    }

    #[test]
    fn closed_days_and_the_capacity_make_the_delivery_policy() {
        let cli = Cli::try_parse_from([
            "bookstore",
            "--delivery-closed-days",
            "2026-12-25,2027-01-01",
            "--delivery-capacity-per-day",
            "40",
        ])
        .unwrap();
        let policy = cli.delivery_policy();
        assert_eq!(policy.capacity_per_day, Some(40));
        assert_eq!(
            policy
                .calendar
                .closed_days()
                .map(|day| day.to_string())
                .collect::<Vec<_>>(),
            vec!["2026-12-25", "2027-01-01"]
        );
        let unlimited = Cli::try_parse_from(["bookstore"])
            .unwrap()
            .delivery_policy();
        assert_eq!(unlimited, crate::app::DeliveryPolicy::default());
        for bad in [
            &["--delivery-closed-days", "2026-12-5"][..],
            &["--delivery-closed-days", "25.12.2026"],
            &["--delivery-capacity-per-day", "0"],
            &["--delivery-capacity-per-day", "1000001"],
        ] {
            let args = std::iter::once("bookstore").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_redis_timeout_and_the_drain_are_bounded_and_the_redis_url_never_shows_its_password() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("bookstore").chain(args.iter().copied()))
        };
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.rate_limit_redis_url, None);
        assert_eq!(cli.rate_limit_redis_timeout_ms, 100);
        assert_eq!(cli.shutdown_drain_seconds, 0);
        for refused in [
            &["--rate-limit-redis-timeout-ms", "0"][..],
            &["--rate-limit-redis-timeout-ms", "10001"],
            &["--shutdown-drain-seconds", "301"],
        ] {
            assert!(parse(refused).is_err(), "{refused:?}");
        }
        let cli = parse(&["--rate-limit-redis-url", "redis://:pw-123@cache:6379/1"]).unwrap();
        let shown = format!("{cli:?}");
        assert!(!shown.contains("pw-123"), "{shown}");
        assert!(shown.contains("redis://:***@cache:6379/1"), "{shown}");
    }

    #[test]
    fn the_seed_is_the_demo_nothing_or_a_generated_catalogue() {
        let seed = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("bookstore").chain(args.iter().copied()))
                .map(|cli| cli.seed())
        };
        assert_eq!(seed(&["--no-seed"]).unwrap(), Seed::Nothing);
        assert_eq!(
            seed(&["--seed-generated-books", "1000000"]).unwrap(),
            Seed::Generated(1_000_000)
        );
        assert!(seed(&["--seed-generated-books", "0"]).is_err());
        assert!(seed(&["--no-seed", "--seed-generated-books", "5"]).is_err());
    }
}
