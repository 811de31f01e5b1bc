//! Command-line and environment configuration of the `bookstore` binary.
//!
//! Every flag can also be set through the environment variable named in `--help`. Every
//! numeric flag has a range, checked by clap before anything starts: a value outside it
//! stops the program with a message naming the flag and the range (the ranges are listed
//! in the README).

use std::net::IpAddr;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand, ValueEnum};
use secrecy::SecretString;
use url::Url;

use crate::http::extract::DEFAULT_BODY_LIMIT_BYTES;
use crate::http::rate_limit::RedisUrl;
use crate::stores::Seed;

/// The Bookstore API server: its settings, parsed once at start-up.
///
/// The API keys and the database URL (which may hold a password) are [`SecretString`]s and
/// the Redis URL a [`RedisUrl`], so `Debug` never shows them: the derived `Debug` is safe to
/// log.
#[derive(Clone, Debug, Parser)]
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

    /// Port to listen on (1 to 65535).
    #[arg(
        long,
        env = "BOOKSTORE_PORT",
        default_value_t = 5001,
        global = true,
        value_parser = RangedU64ValueParser::<u16>::new().range(1..=65_535)
    )]
    pub port: u16,

    /// Where data is kept: `sqlite://PATH` (created if missing), `postgres://USER@HOST:PORT/DB`
    /// (for several instances sharing one database), or `memory` (lost on restart).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://bookstore.db",
        global = true
    )]
    pub database_url: SecretString,

    /// Most pooled database connections per process (PostgreSQL; SQLite uses one writer);
    /// 1 to 1000.
    #[arg(
        long,
        env = "BOOKSTORE_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true,
        value_parser = RangedU64ValueParser::<u32>::new().range(1..=1000)
    )]
    pub database_max_connections: u32,

    /// How long to wait for a database connection, in seconds (1 to 300).
    #[arg(
        long,
        env = "BOOKSTORE_DATABASE_CONNECT_TIMEOUT_SECONDS",
        default_value_t = 5,
        global = true,
        value_parser = RangedU64ValueParser::<u64>::new().range(1..=300)
    )]
    pub database_connect_timeout_seconds: u64,

    /// Start with an empty catalogue instead of the demo books.
    #[arg(long, env = "BOOKSTORE_NO_SEED", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_seed: bool,

    /// Fill an empty catalogue with this many generated books (ISBN 978 + a nine-digit
    /// serial + check digit, 1,000,000 copies each) instead of the demo books; for load
    /// tests and benchmarks. 1 to 999,999,999.
    #[arg(
        long,
        env = "BOOKSTORE_SEED_GENERATED_BOOKS",
        global = true,
        conflicts_with = "no_seed",
        value_parser = RangedU64ValueParser::<u64>::new().range(1..=999_999_999)
    )]
    pub seed_generated_books: Option<u64>,

    /// API keys, their roles and optionally their accounts: `KEY:ROLE` or `KEY:ROLE:ACCOUNT`
    /// entries, e.g. `key1:customer,key2:admin,key3:customer:shop`. Keys with one account see
    /// the same orders. When unset, the demo keys `secret123` (customer) and `admin123`
    /// (admin) are active and a warning is logged.
    #[arg(
        long,
        env = "BOOKSTORE_API_KEYS",
        hide_env_values = true,
        global = true
    )]
    pub api_keys: Option<SecretString>,

    /// Log format.
    #[arg(long, env = "BOOKSTORE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Largest request body accepted, in bytes (larger bodies get 413); 1024 to 16777216.
    #[arg(
        long,
        env = "BOOKSTORE_BODY_LIMIT_BYTES",
        default_value_t = DEFAULT_BODY_LIMIT_BYTES,
        global = true,
        value_parser = RangedU64ValueParser::<usize>::new().range(1024..=16 * 1024 * 1024)
    )]
    pub body_limit_bytes: usize,

    /// Longest URL (path and query) accepted, in bytes (longer URLs get 414); 256 to 65536.
    #[arg(
        long,
        env = "BOOKSTORE_MAX_URL_BYTES",
        default_value_t = 8 * 1024,
        global = true,
        value_parser = RangedU64ValueParser::<usize>::new().range(256..=64 * 1024)
    )]
    pub max_url_bytes: usize,

    /// Largest total size of request header names and values, in bytes (larger get 431);
    /// 1024 to 65536.
    #[arg(
        long,
        env = "BOOKSTORE_MAX_HEADER_BYTES",
        default_value_t = 16 * 1024,
        global = true,
        value_parser = RangedU64ValueParser::<usize>::new().range(1024..=64 * 1024)
    )]
    pub max_header_bytes: usize,

    /// Requests per second allowed per account (and per client address for requests
    /// without a valid key); 0 turns rate limiting off. 0 to 1000000.
    #[arg(
        long,
        env = "BOOKSTORE_RATE_LIMIT_PER_SECOND",
        default_value_t = 1000,
        global = true,
        value_parser = RangedU64ValueParser::<u32>::new().range(0..=1_000_000)
    )]
    pub rate_limit_per_second: u32,

    /// Requests a key may send at once before the per-second rate applies (0: the
    /// per-second rate). 0 to 1000000.
    #[arg(
        long,
        env = "BOOKSTORE_RATE_LIMIT_BURST",
        default_value_t = 2000,
        global = true,
        value_parser = RangedU64ValueParser::<u32>::new().range(0..=1_000_000)
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
    /// apply instead; 1 to 10000.
    #[arg(
        long,
        env = "BOOKSTORE_RATE_LIMIT_REDIS_TIMEOUT_MS",
        default_value_t = 100,
        global = true,
        value_parser = RangedU64ValueParser::<u64>::new().range(1..=10_000)
    )]
    pub rate_limit_redis_timeout_ms: u64,

    /// Time a client has to send the request head, in milliseconds (then 408); 0 disables.
    /// 0 to 600000.
    #[arg(
        long,
        env = "BOOKSTORE_CLIENT_REQUEST_TIMEOUT_MS",
        default_value_t = 5000,
        global = true,
        value_parser = RangedU64ValueParser::<u64>::new().range(0..=600_000)
    )]
    pub client_request_timeout_ms: u64,

    /// How long an idle keep-alive connection stays open, in seconds; 0 disables keep-alive.
    /// 0 to 3600.
    #[arg(
        long,
        env = "BOOKSTORE_KEEP_ALIVE_SECONDS",
        default_value_t = 5,
        global = true,
        value_parser = RangedU64ValueParser::<u64>::new().range(0..=3600)
    )]
    pub keep_alive_seconds: u64,

    /// Most concurrent connections per worker; further connections wait to be accepted.
    /// 1 to 1000000.
    #[arg(
        long,
        env = "BOOKSTORE_MAX_CONNECTIONS",
        default_value_t = 25_000,
        global = true,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000)
    )]
    pub max_connections: usize,

    /// On SIGTERM or SIGINT, how long in-flight requests may take to finish, in seconds
    /// (0 to 3600).
    #[arg(
        long,
        env = "BOOKSTORE_SHUTDOWN_TIMEOUT_SECONDS",
        default_value_t = 30,
        global = true,
        value_parser = RangedU64ValueParser::<u64>::new().range(0..=3600)
    )]
    pub shutdown_timeout_seconds: u64,

    /// On SIGTERM or SIGINT, how long to go on serving with `/health/ready` answering 503
    /// before the listener closes, in seconds, so that a load balancer stops sending new
    /// requests first; a second signal cuts it short. 0 to 300.
    #[arg(
        long,
        env = "BOOKSTORE_SHUTDOWN_DRAIN_SECONDS",
        default_value_t = 0,
        global = true,
        value_parser = RangedU64ValueParser::<u64>::new().range(0..=300)
    )]
    pub shutdown_drain_seconds: u64,

    /// How old an unfinished order attempt must be before recovery settles it (refunds its
    /// payment and returns its stock), in seconds. Recovery runs at start-up and every
    /// minute. Keep it well above the longest request; lower it only when no other instance
    /// shares the database. 0 to 86400 (a day).
    #[arg(
        long,
        env = "BOOKSTORE_RECOVERY_GRACE_SECONDS",
        default_value_t = crate::workflow::RECOVERY_GRACE_PERIOD.as_secs(),
        global = true,
        value_parser = RangedU64ValueParser::<u64>::new().range(0..=86_400)
    )]
    pub recovery_grace_seconds: u64,

    /// How long this process's lease in the database lasts, in seconds. The process renews
    /// it every fifth of that; when a process stops renewing (it was killed), another
    /// instance settles its unfinished orders within the lease and two fifths more (14 s by
    /// default). On SQLite the next start settles them at once. 2 to 3600.
    #[arg(
        long,
        env = "BOOKSTORE_INSTANCE_LEASE_SECONDS",
        default_value_t = 10,
        value_parser = RangedU64ValueParser::<u64>::new().range(2..=3600),
        global = true
    )]
    pub instance_lease_seconds: u64,

    /// The most deliveries one day takes; a delivery goes to the next business day with
    /// room. Unlimited when unset; 1 to 1000000.
    #[arg(
        long,
        env = "BOOKSTORE_DELIVERY_CAPACITY_PER_DAY",
        value_parser = RangedU64ValueParser::<u32>::new().range(1..=1_000_000),
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

    /// How long events are kept, in days: older ones are purged every ten minutes (and
    /// leave the feed). 1 to 3650.
    #[arg(
        long,
        env = "BOOKSTORE_EVENT_RETENTION_DAYS",
        default_value_t = 30,
        global = true,
        value_parser = RangedU64ValueParser::<u64>::new().range(1..=3650)
    )]
    pub event_retention_days: u64,

    /// A NATS server with JetStream to publish every event to, e.g. `nats://127.0.0.1:4222`
    /// (credentials may be in the URL); unset, nothing is published.
    #[arg(
        long,
        env = "BOOKSTORE_EVENTS_NATS_URL",
        value_name = "URL",
        hide_env_values = true,
        global = true
    )]
    pub events_nats_url: Option<SecretString>,

    /// The JetStream stream events are published to, created when absent.
    #[arg(
        long,
        env = "BOOKSTORE_EVENTS_NATS_STREAM",
        default_value = "BOOKSTORE_EVENTS",
        value_parser = parse_stream_name,
        global = true
    )]
    pub events_nats_stream: String,

    /// The subjects' prefix: an event goes to `<PREFIX>.<type>`, and a stream created here
    /// captures `<PREFIX>.>`.
    #[arg(
        long,
        env = "BOOKSTORE_EVENTS_NATS_SUBJECT_PREFIX",
        default_value = "bookstore.events",
        value_parser = parse_subject_prefix,
        global = true
    )]
    pub events_nats_subject_prefix: String,

    /// Worker threads serving requests (default: one per CPU core); 1 to 512.
    #[arg(
        long,
        env = "BOOKSTORE_WORKERS",
        global = true,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=512)
    )]
    pub workers: Option<usize>,

    /// How long a webhook endpoint has to answer a delivery, in milliseconds (100 to 60000);
    /// slower is a failed attempt.
    #[arg(
        long,
        env = "BOOKSTORE_WEBHOOK_TIMEOUT_MS",
        default_value_t = 15_000,
        global = true,
        value_parser = RangedU64ValueParser::<u64>::new().range(100..=60_000)
    )]
    pub webhook_timeout_ms: u64,

    /// How often the webhook dispatcher looks for events and due deliveries, in
    /// milliseconds (10 to 60000).
    #[arg(
        long,
        env = "BOOKSTORE_WEBHOOK_TICK_MS",
        default_value_t = 200,
        global = true,
        value_parser = RangedU64ValueParser::<u64>::new().range(10..=60_000)
    )]
    pub webhook_tick_ms: u64,

    /// The most webhook deliveries one instance sends at once (1 to 1024).
    #[arg(
        long,
        env = "BOOKSTORE_WEBHOOK_CONCURRENCY",
        default_value_t = 16,
        global = true,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024)
    )]
    pub webhook_concurrency: usize,

    /// Multiplies every wait of the webhook retry schedule and the 5 days after which a
    /// failing endpoint is disabled: 1 in production, e.g. 0.001 in tests (above 0, at
    /// most 1).
    #[arg(
        long,
        env = "BOOKSTORE_WEBHOOK_RETRY_SCHEDULE_SCALE",
        default_value_t = 1.0,
        global = true,
        value_parser = parse_schedule_scale
    )]
    pub webhook_retry_schedule_scale: f64,

    /// How many nice levels below the API's threads the webhook dispatcher's thread runs
    /// (0 to 19): under a load that saturates the machine, the API keeps the CPU and
    /// deliveries catch up when it eases. 0 runs it at the API's priority.
    #[arg(
        long,
        env = "BOOKSTORE_WEBHOOK_NICE",
        default_value_t = crate::webhooks::DEFAULT_NICE,
        global = true,
        value_parser = RangedU64ValueParser::<u8>::new().range(0..=19)
    )]
    pub webhook_nice: u8,

    /// Let webhook endpoints be `http://` and reach loopback, private and link-local
    /// addresses: for local development and tests only.
    #[arg(long, env = "BOOKSTORE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", global = true)]
    pub webhook_allow_private_addresses: bool,
}

/// A retry schedule scale: a number above 0 and at most 1.
fn parse_schedule_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(scale) if scale > 0.0 && scale <= 1.0 => Ok(scale),
        _ => Err(format!("{text} is not a number above 0 and at most 1")),
    }
}

/// One closed day: exactly `YYYY-MM-DD`.
fn parse_closed_day(text: &str) -> Result<chrono::NaiveDate, String> {
    crate::wire::parse_date(text.trim())
        .map_err(|_| format!("{text:?} is not a date written YYYY-MM-DD"))
}

/// A JetStream stream name: 1 to 64 letters, digits, `-` or `_`.
fn parse_stream_name(text: &str) -> Result<String, String> {
    let valid = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    valid
        .then(|| text.to_owned())
        .ok_or_else(|| format!("{text:?} is not a stream name: 1 to 64 letters, digits, - or _"))
}

/// A subject prefix: dot-separated tokens of letters, digits, `-` or `_`, no wildcard.
fn parse_subject_prefix(text: &str) -> Result<String, String> {
    let valid = text.len() <= 200
        && text.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        });
    valid.then(|| text.to_owned()).ok_or_else(|| {
        format!("{text:?} is not a subject prefix: dot-separated tokens of letters, digits, - or _")
    })
}

/// What replaces a password in a redacted URL.
const REDACTED: &str = "***";

/// A database URL fit for logs and errors: its password, and the value of any query
/// parameter naming a password (`?password=…`), replaced by `***`.
///
/// The URL is read by the same WHATWG parser the database driver uses, so the password is
/// exactly what the driver would send: `postgres://u:p@ss@host/db` has the password `p@ss`
/// (the last `@` ends the credentials) and is shown as `postgres://u:***@host/db`. A URL
/// that does not parse, or whose path holds an `@` after a host or without `//` (a password
/// with an unencoded `/`, say), is redacted from the scheme to its last `@` instead. A URL without a
/// password is returned exactly as given.
pub fn redacted_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return redacted_by_hand(url);
    };
    let names_a_server = parsed.host_str().is_some_and(|host| !host.is_empty());
    if parsed.path().contains('@') && (names_a_server || parsed.cannot_be_a_base()) {
        return redacted_by_hand(url);
    }
    let mut changed = false;
    if parsed.password().is_some() {
        if parsed.set_password(Some(REDACTED)).is_err() {
            return redacted_by_hand(url);
        }
        changed = true;
    }
    if parsed
        .query_pairs()
        .any(|(name, _)| names_a_password(&name))
    {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if names_a_password(&name) {
                    REDACTED.to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        parsed.to_string()
    } else {
        url.to_owned()
    }
}

/// Whether a query parameter carries a password (`password`, `sslpassword`, …).
fn names_a_password(name: &str) -> bool {
    name.to_ascii_lowercase().contains("password")
}

/// The fallback of [`redacted_url`]: everything from after `scheme://` (or `scheme:`) to
/// the last `@` becomes `***`, and a query that names a password is dropped.
fn redacted_by_hand(url: &str) -> String {
    let credentials_start = match url.find("://") {
        Some(index) => index + 3,
        None => url.find(':').map_or(0, |index| index + 1),
    };
    let mut redacted = match url.rfind('@') {
        Some(at) if at >= credentials_start => {
            format!("{}{REDACTED}{}", &url[..credentials_start], &url[at..])
        }
        _ => url.to_owned(),
    };
    if let Some(query) = redacted.find('?')
        && names_a_password(&redacted[query..])
    {
        redacted.truncate(query);
        redacted.push('?');
        redacted.push_str(REDACTED);
    }
    redacted
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

    /// How webhooks are delivered.
    pub fn webhook_settings(&self) -> crate::webhooks::WebhookSettings {
        crate::webhooks::WebhookSettings {
            timeout: std::time::Duration::from_millis(self.webhook_timeout_ms),
            tick: std::time::Duration::from_millis(self.webhook_tick_ms),
            concurrency: self.webhook_concurrency,
            retry: crate::webhooks::schedule::RetryPolicy {
                scale: self.webhook_retry_schedule_scale,
            },
            allow_private_addresses: self.webhook_allow_private_addresses,
            nice: self.webhook_nice,
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
    use secrecy::ExposeSecret;

    #[test]
    fn passwords_in_database_urls_are_redacted_entirely() {
        for (url, shown) in [
            (
                "postgres://postgres:hunter2@127.0.0.1:1/nothing",
                "postgres://postgres:***@127.0.0.1:1/nothing",
            ),
            // The last `@` ends the credentials, as the driver reads them.
            ("postgres://u:p@ss@host/db", "postgres://u:***@host/db"),
            ("postgres://u:p%40ss@host/db", "postgres://u:***@host/db"),
            ("postgres://u:p%3Ass@host/db", "postgres://u:***@host/db"),
            ("postgres://u:p%2Fss@host/db", "postgres://u:***@host/db"),
            (
                "postgres://u:%40%3A%2F@host:5432/db?sslmode=require",
                "postgres://u:***@host:5432/db?sslmode=require",
            ),
            ("postgres://u:p:ss@host/db", "postgres://u:***@host/db"),
            ("postgresql://:secret@host/db", "postgresql://:***@host/db"),
            (
                "postgres://u@host/db?sslmode=require&password=s3cr%40t",
                "postgres://u@host/db?sslmode=require&password=***",
            ),
            (
                "postgres://u@host/db?sslpassword=s3cr3t",
                "postgres://u@host/db?sslpassword=***",
            ),
            // Unencoded `/` or `?` in a password: the URL does not parse, or its path
            // holds the rest of the credentials; everything up to the last `@` goes.
            ("postgres://u:pa/ss@host/db", "postgres://***@host/db"),
            ("postgres://u:123/ss@host/db", "postgres://***@host/db"),
            ("postgres://u:pa?ss@host/db", "postgres://***@host/db"),
            (
                "postgres://u:p@ss@host:notaport/db",
                "postgres://***@host:notaport/db",
            ),
            ("postgres:u:p@ss@host", "postgres:***@host"),
        ] {
            let redacted = redacted_url(url);
            assert_eq!(redacted, shown, "{url}");
            for secret in [
                "hunter2",
                "p@ss",
                "p%40ss",
                "p%3Ass",
                "p%2Fss",
                "p:ss",
                "%40%3A%2F",
                "secret",
                "s3cr",
                "pa/ss",
                "123/ss",
                "pa?ss",
            ] {
                if url.contains(secret) {
                    assert!(
                        !redacted.contains(secret),
                        "{url} shows {secret}: {redacted}"
                    );
                }
            }
        }
    }

    #[test]
    fn urls_without_a_password_are_shown_as_given() {
        for url in [
            "sqlite://bookstore.db",
            "sqlite:///var/lib/bookstore/bookstore.db",
            "sqlite://bookstore.db?mode=rwc",
            "memory",
            "postgres://postgres@127.0.0.1:5432/bookstore",
            "postgres://127.0.0.1/bookstore?sslmode=disable",
            "postgres://user@host/db?application_name=shop%20front",
        ] {
            assert_eq!(redacted_url(url), url);
        }
    }

    #[test]
    fn the_debug_output_of_the_configuration_shows_no_key_and_no_password() {
        let cli = Cli::try_parse_from([
            "bookstore",
            "--api-keys",
            "k3y-for-the-shop:customer,k3y-for-the-office:admin",
            "--database-url",
            "postgres://shop:pa%40ss@db.internal:5432/shop",
            "--events-nats-url",
            "nats://relay:n4ts-s3cret@nats.internal:4222",
        ])
        .unwrap();
        let printed = format!("{cli:?}");
        for secret in ["k3y-for-the", "pa%40ss", "pa@ss", "n4ts-s3cret"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(
            printed.contains("database_url: SecretBox<str>([REDACTED])"),
            "{printed}"
        );
        assert!(
            printed.contains("api_keys: Some(SecretBox<str>([REDACTED]))"),
            "{printed}"
        );
        assert!(printed.contains("port: 5001"), "{printed}");
    }

    #[test]
    fn the_debug_output_of_the_settings_holds_none_of_the_secrets() {
        let settings = Cli::try_parse_from([
            "bookstore",
            "--api-keys",
            "customer-s3cret:customer,admin-s3cret:admin:office",
            "--database-url",
            "postgres://shop:db-s3cret@db.internal:5432/shop",
            "--rate-limit-redis-url",
            "redis://:redis-s3cret@cache.internal:6379/0",
        ])
        .unwrap();
        let printed = format!("{settings:?}");
        for secret in [
            "customer-s3cret",
            "admin-s3cret",
            "db-s3cret",
            "redis-s3cret",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert_eq!(
            settings.database_url.expose_secret(),
            "postgres://shop:db-s3cret@db.internal:5432/shop"
        );
    }

    /// Every numeric flag: its lowest and highest accepted values.
    const NUMERIC_FLAGS: &[(&str, u64, u64)] = &[
        ("--port", 1, 65_535),
        ("--database-max-connections", 1, 1_000),
        ("--database-connect-timeout-seconds", 1, 300),
        ("--seed-generated-books", 1, 999_999_999),
        ("--body-limit-bytes", 1_024, 16_777_216),
        ("--max-url-bytes", 256, 65_536),
        ("--max-header-bytes", 1_024, 65_536),
        ("--rate-limit-per-second", 0, 1_000_000),
        ("--rate-limit-burst", 0, 1_000_000),
        ("--rate-limit-redis-timeout-ms", 1, 10_000),
        ("--client-request-timeout-ms", 0, 600_000),
        ("--keep-alive-seconds", 0, 3_600),
        ("--max-connections", 1, 1_000_000),
        ("--shutdown-timeout-seconds", 0, 3_600),
        ("--shutdown-drain-seconds", 0, 300),
        ("--recovery-grace-seconds", 0, 86_400),
        ("--instance-lease-seconds", 2, 3_600),
        ("--delivery-capacity-per-day", 1, 1_000_000),
        ("--event-retention-days", 1, 3_650),
        ("--workers", 1, 512),
        ("--webhook-timeout-ms", 100, 60_000),
        ("--webhook-tick-ms", 10, 60_000),
        ("--webhook-concurrency", 1, 1_024),
        ("--webhook-nice", 0, 19),
    ];

    #[test]
    fn the_nats_stream_and_subject_prefix_are_checked_before_anything_starts() {
        for (flag, value) in [
            ("--events-nats-stream", ""),
            ("--events-nats-stream", "BOOKSTORE.EVENTS"),
            ("--events-nats-stream", "has space"),
            ("--events-nats-subject-prefix", "bookstore.*"),
            ("--events-nats-subject-prefix", "bookstore..events"),
            ("--events-nats-subject-prefix", "bookstore.>"),
            ("--events-nats-subject-prefix", ""),
        ] {
            assert!(parse(flag, value).is_err(), "{flag}={value:?}");
        }
        let cli = parse("--events-nats-subject-prefix", "shop-1.events").unwrap();
        assert_eq!(cli.events_nats_subject_prefix, "shop-1.events");
        assert_eq!(cli.events_nats_stream, "BOOKSTORE_EVENTS");
        assert!(cli.events_nats_url.is_none(), "off by default");
        assert_eq!(cli.event_retention_days, 30);
    }

    #[test]
    fn every_numeric_flag_is_bounded_and_listed_here_and_in_the_readme() {
        let readme = include_str!("../../../README.md");
        let numeric = [
            std::any::TypeId::of::<u8>(),
            std::any::TypeId::of::<u16>(),
            std::any::TypeId::of::<u32>(),
            std::any::TypeId::of::<u64>(),
            std::any::TypeId::of::<usize>(),
        ];
        let command = Cli::command();
        let flags: Vec<String> = command
            .get_arguments()
            .filter(|argument| {
                let value_type = argument.get_value_parser().type_id();
                numeric
                    .iter()
                    .any(|&numeric_type| value_type == numeric_type)
            })
            .filter_map(|argument| argument.get_long().map(|long| format!("--{long}")))
            .collect();
        assert!(flags.len() >= NUMERIC_FLAGS.len(), "{flags:?}");
        for flag in &flags {
            let Some(&(_, lowest, highest)) = NUMERIC_FLAGS.iter().find(|(f, ..)| f == flag) else {
                panic!("{flag} is numeric: add it to NUMERIC_FLAGS with its range");
            };
            assert!(parse(flag, &u64::MAX.to_string()).is_err(), "{flag}");
            let row = readme
                .lines()
                .find(|line| line.starts_with(&format!("| `{flag}` |")))
                .unwrap_or_else(|| panic!("the README's range table has no row for {flag}"));
            assert!(
                row.contains(&format!("| {lowest} to {highest} |")),
                "the README gives {flag} another range than {lowest} to {highest}: {row}"
            );
        }
    }

    fn parse(flag: &str, value: &str) -> Result<Cli, clap::Error> {
        // `--flag=value`, so that `-1` is read as a value, not as a flag.
        Cli::try_parse_from(["bookstore".to_owned(), format!("{flag}={value}")])
    }

    #[test]
    fn every_numeric_flag_accepts_both_ends_of_its_range() {
        for &(flag, lowest, highest) in NUMERIC_FLAGS {
            for value in [lowest, highest] {
                if let Err(error) = parse(flag, &value.to_string()) {
                    panic!("{flag} {value} is refused: {error}");
                }
            }
        }
        let cli = parse("--recovery-grace-seconds", "86400").unwrap();
        assert_eq!(cli.recovery_grace_seconds, 86_400);
        let cli = parse("--workers", "512").unwrap();
        assert_eq!(cli.workers, Some(512));
    }

    #[test]
    fn numeric_flags_outside_their_range_are_refused_with_the_flag_and_the_range() {
        for &(flag, lowest, highest) in NUMERIC_FLAGS {
            let mut outside = vec![
                highest.saturating_add(1).to_string(),
                u64::MAX.to_string(),
                "18446744073709551616".to_owned(),
                "-1".to_owned(),
                "ten".to_owned(),
                String::new(),
            ];
            if lowest > 0 {
                outside.push((lowest - 1).to_string());
            }
            for value in outside {
                let error = match parse(flag, &value) {
                    Ok(cli) => panic!("{flag} {value:?} is accepted: {cli:?}"),
                    Err(error) => error,
                };
                assert_eq!(
                    error.kind(),
                    clap::error::ErrorKind::ValueValidation,
                    "{flag} {value:?}"
                );
                let message = error.to_string();
                assert!(message.contains(flag), "{flag} {value:?}: {message}");
                if value.parse::<u64>().is_ok() {
                    assert!(
                        message.contains(&format!("{lowest}..={highest}")),
                        "{flag} {value:?}: {message}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_serve_on_localhost_port_5001_from_a_sqlite_file() {
        let cli = Cli::try_parse_from(["bookstore"]).unwrap();
        assert_eq!(cli.host.to_string(), "127.0.0.1");
        assert_eq!(cli.port, 5001);
        assert_eq!(cli.database_url.expose_secret(), "sqlite://bookstore.db");
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
