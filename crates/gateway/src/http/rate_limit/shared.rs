//! Rate limits shared by every instance through Redis (`--rate-limit-redis-url`): one budget
//! per key for the whole fleet, instead of one per process.
//!
//! The algorithm is the local limiter's (GCRA: `per_second` requests replenished every
//! second, up to `burst` at once), run as one Lua script (`gcra.lua`) so that reading and
//! advancing a key's theoretical arrival time is atomic, and timed by the Redis clock so that
//! every instance measures time alike.
//!
//! **Failure mode: fail open.** A Redis call is bounded by a short timeout. When it fails or
//! times out, the request is checked against the instance's own limiter instead (so during
//! an outage each instance allows the full rate on its own), never refused with a 5xx. Redis
//! is then left alone for [`RETRY_INTERVAL`], during which requests go straight to the local
//! limiter, and one request per interval tries it again: a hung Redis costs at most one
//! timeout per interval, not one per request. The switch is logged once each way, with a
//! reminder at most every [`WARNING_INTERVAL`] while it lasts, and counted in
//! `bookstore_rate_limit_redis_errors_total` and `bookstore_rate_limit_local_fallbacks_total`.
//! The URL's password never reaches a log line, an error or `Debug`.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::metrics::{RATE_LIMIT_LOCAL_FALLBACKS_TOTAL, RATE_LIMIT_REDIS_ERRORS_TOTAL};

/// How long Redis is left alone after a failed call before one request tries it again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest time between two warnings that Redis is still unavailable.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(30);

/// The prefix of every key the limiter writes in Redis.
pub const KEY_PREFIX: &str = "bookstore:rate:";

/// The GCRA script: see the comments in the file.
const GCRA_SCRIPT: &str = include_str!("gcra.lua");

/// A Redis URL as configured. It may hold a password, so it is kept as a secret and
/// displays and debugs redacted.
#[derive(Clone)]
pub struct RedisUrl(SecretString);

impl RedisUrl {
    /// The URL with its password, if any, replaced by `***`: fit for logs and errors.
    pub fn redacted(&self) -> String {
        crate::server::redacted_url(self.0.expose_secret())
    }
}

impl PartialEq for RedisUrl {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }
}

impl Eq for RedisUrl {}

impl FromStr for RedisUrl {
    type Err = std::convert::Infallible;

    /// Never fails: a parse error would be printed with the value, password included. The
    /// URL is checked when the server starts, and reported redacted.
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self(SecretString::from(url)))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_tuple("RedisUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.redacted())
    }
}

/// Why the shared limiter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid Redis URL {url} (--rate-limit-redis-url or BOOKSTORE_RATE_LIMIT_REDIS_URL): {reason}"
)]
pub struct RedisUrlError {
    /// The URL, redacted.
    pub url: String,
    /// What is wrong with it (never the URL itself).
    pub reason: String,
}

/// What Redis said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedVerdict {
    /// Within the key's budget; counted.
    Admitted,
    /// Over the budget; retry after this long.
    Refused(Duration),
    /// Redis did not answer in time (or is being left alone): check locally.
    Unavailable,
}

/// The connection to Redis and the budget it enforces.
pub struct SharedBudget {
    connection: ConnectionManager,
    script: redis::Script,
    per_second: u32,
    burst: u32,
    timeout: Duration,
    health: Health,
    url: RedisUrl,
}

impl SharedBudget {
    /// A budget of `per_second` and `burst` per key, kept in the Redis at `url`; each call
    /// waits at most `timeout`. Connects lazily: a Redis that is down at start-up is only a
    /// warning at the first request. Must be called inside a Tokio runtime.
    pub fn new(
        url: &RedisUrl,
        per_second: u32,
        burst: u32,
        timeout: Duration,
    ) -> Result<Self, RedisUrlError> {
        let invalid = |reason: String| RedisUrlError {
            url: url.redacted(),
            reason,
        };
        let client = redis::Client::open(url.0.expose_secret())
            .map_err(|error| invalid(error.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // One attempt per reconnection: the limiter decides when to try again.
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|error| invalid(error.to_string()))?;
        Ok(Self {
            connection,
            script: redis::Script::new(GCRA_SCRIPT),
            per_second,
            burst,
            timeout,
            health: Health::new(),
            url: url.clone(),
        })
    }

    /// Counts a request for `key` against the shared budget.
    pub async fn check(&self, key: &str) -> SharedVerdict {
        if !self.health.may_call() {
            return SharedVerdict::Unavailable;
        }
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{KEY_PREFIX}{key}"));
        invocation.arg(self.per_second).arg(self.burst);
        let call = invocation.invoke_async::<(i64, i64)>(&mut connection);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok((admitted, wait_micros))) => {
                self.health.succeeded(&self.url);
                if admitted == 1 {
                    SharedVerdict::Admitted
                } else {
                    let wait = u64::try_from(wait_micros).unwrap_or(0);
                    SharedVerdict::Refused(Duration::from_micros(wait))
                }
            }
            Ok(Err(error)) => {
                self.health.failed(&self.url, &error.to_string());
                SharedVerdict::Unavailable
            }
            Err(_elapsed) => {
                let reason = format!("no answer within {} ms", self.timeout.as_millis());
                self.health.failed(&self.url, &reason);
                SharedVerdict::Unavailable
            }
        }
    }

    /// Notes that a request was checked locally because Redis was unavailable.
    pub fn count_fallback(&self) {
        metrics::counter!(RATE_LIMIT_LOCAL_FALLBACKS_TOTAL).increment(1);
        self.health.fell_back(&self.url);
    }
}

/// Whether Redis answers, when to try it again, and when to warn again; shared by every
/// worker without a lock.
struct Health {
    /// When this was made; the instants below are milliseconds since then.
    epoch: Instant,
    /// 0 while Redis answers; otherwise when a request may try it again.
    retry_at_ms: AtomicU64,
    /// Whether requests are being checked locally.
    degraded: AtomicBool,
    /// When the last warning was logged.
    warned_at_ms: AtomicU64,
    /// Requests checked locally since the last warning.
    fallbacks_since_warning: AtomicU64,
}

impl Health {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            retry_at_ms: AtomicU64::new(0),
            degraded: AtomicBool::new(false),
            warned_at_ms: AtomicU64::new(0),
            fallbacks_since_warning: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether this request should call Redis: always while it answers; after a failure,
    /// one request per [`RETRY_INTERVAL`].
    fn may_call(&self) -> bool {
        let retry_at = self.retry_at_ms.load(Ordering::Relaxed);
        if retry_at == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= retry_at
            && self
                .retry_at_ms
                .compare_exchange(
                    retry_at,
                    now + millis(RETRY_INTERVAL),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn succeeded(&self, url: &RedisUrl) {
        if self.retry_at_ms.load(Ordering::Relaxed) != 0 {
            self.retry_at_ms.store(0, Ordering::Relaxed);
        }
        if self.degraded.load(Ordering::Relaxed) && self.degraded.swap(false, Ordering::Relaxed) {
            let checked_locally = self.fallbacks_since_warning.swap(0, Ordering::Relaxed);
            tracing::info!(
                redis = %url,
                checked_locally,
                "Redis answers again: rate limits are shared by every instance again"
            );
        }
    }

    fn failed(&self, url: &RedisUrl, reason: &str) {
        metrics::counter!(RATE_LIMIT_REDIS_ERRORS_TOTAL).increment(1);
        let now = self.now_ms();
        self.retry_at_ms
            .store(now + millis(RETRY_INTERVAL), Ordering::Relaxed);
        if !self.degraded.swap(true, Ordering::Relaxed) {
            self.warned_at_ms.store(now, Ordering::Relaxed);
            tracing::warn!(
                redis = %url,
                error = reason,
                "Redis is unavailable: rate limits are checked by this instance alone (each \
                 instance allows the full rate) until it answers again"
            );
        }
    }

    fn fell_back(&self, url: &RedisUrl) {
        let checked_locally = self.fallbacks_since_warning.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.now_ms();
        let warned_at = self.warned_at_ms.load(Ordering::Relaxed);
        if now.saturating_sub(warned_at) >= millis(WARNING_INTERVAL)
            && self
                .warned_at_ms
                .compare_exchange(warned_at, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.fallbacks_since_warning
                .fetch_sub(checked_locally, Ordering::Relaxed);
            tracing::warn!(
                redis = %url,
                checked_locally,
                "Redis is still unavailable: rate limits are checked by this instance alone"
            );
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_url_never_shows_its_password() {
        let url: RedisUrl = "redis://:s3cret@cache.internal:6379/2".parse().unwrap();
        for shown in [format!("{url}"), format!("{url:?}"), url.redacted()] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("cache.internal:6379/2"), "{shown}");
        }
        let with_user: RedisUrl = "rediss://app:s3cret@cache:6380".parse().unwrap();
        assert_eq!(with_user.redacted(), "rediss://app:***@cache:6380");
    }

    #[test]
    fn after_a_failure_one_request_per_interval_tries_redis_again() {
        // Made five seconds ago, so that "time 1 ms" is in the past.
        let health = Health {
            epoch: Instant::now() - Duration::from_secs(5),
            ..Health::new()
        };
        let url: RedisUrl = "redis://127.0.0.1:1".parse().unwrap();
        assert!(health.may_call());
        health.failed(&url, "refused");
        assert!(!health.may_call(), "left alone right after a failure");
        health.retry_at_ms.store(1, Ordering::Relaxed);
        assert!(
            health.may_call(),
            "the interval has passed: one request tries"
        );
        assert!(!health.may_call(), "the next one does not");
        health.succeeded(&url);
        assert!(health.may_call() && health.may_call(), "answering again");
    }

    #[tokio::test]
    async fn an_unparseable_redis_url_is_refused_without_its_password() {
        let url: RedisUrl = "mysql://root:s3cret@db".parse().unwrap();
        let error = SharedBudget::new(&url, 10, 10, Duration::from_millis(50))
            .err()
            .expect("not a Redis URL");
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    /// Tests of the script against a real Redis: `BOOKSTORE_TEST_REDIS_URL`, else the
    /// local server. Ignored by plain `cargo test`; `cargo xtask test` runs them when a
    /// server answers, and says so when none does.
    mod against_redis {
        use super::*;

        fn redis_url() -> RedisUrl {
            std::env::var("BOOKSTORE_TEST_REDIS_URL")
                .ok()
                .filter(|url| !url.trim().is_empty())
                .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
                .parse()
                .unwrap()
        }

        /// A budget on the test server, and a key nobody else uses.
        async fn budget(per_second: u32, burst: u32) -> (SharedBudget, String) {
            let url = redis_url();
            let budget = SharedBudget::new(&url, per_second, burst, Duration::from_secs(2))
                .expect("a valid URL");
            let mut connection = budget.connection.clone();
            let pong: Result<String, _> = redis::cmd("PING").query_async(&mut connection).await;
            assert!(
                pong.is_ok(),
                "this test needs Redis at {url} (or BOOKSTORE_TEST_REDIS_URL): {pong:?}"
            );
            (budget, format!("test:{}", uuid::Uuid::new_v4()))
        }

        #[tokio::test]
        #[ignore = "needs Redis at 127.0.0.1:6379 or BOOKSTORE_TEST_REDIS_URL; cargo xtask test runs it when one answers"]
        async fn redis_admits_a_burst_then_refuses_with_the_wait_until_the_next_request() {
            let (budget, key) = budget(2, 3).await;
            for attempt in 1..=3 {
                assert_eq!(
                    budget.check(&key).await,
                    SharedVerdict::Admitted,
                    "request {attempt} is within the burst"
                );
            }
            let SharedVerdict::Refused(wait) = budget.check(&key).await else {
                panic!("the fourth request at once is over the burst");
            };
            // At 2 per second one request is replenished every 500 ms; a little of that
            // has passed since the first request.
            assert!(
                wait > Duration::from_millis(300) && wait <= Duration::from_millis(500),
                "wait {wait:?}"
            );
            let (other, other_key) = budget_on_same_server(&budget);
            assert_eq!(other.check(&other_key).await, SharedVerdict::Admitted);
        }

        fn budget_on_same_server(budget: &SharedBudget) -> (SharedBudget, String) {
            let other =
                SharedBudget::new(&budget.url, budget.per_second, budget.burst, budget.timeout)
                    .expect("a valid URL");
            (other, format!("test:{}", uuid::Uuid::new_v4()))
        }

        #[tokio::test]
        #[ignore = "needs Redis at 127.0.0.1:6379 or BOOKSTORE_TEST_REDIS_URL; cargo xtask test runs it when one answers"]
        async fn redis_replenishes_one_request_per_interval_and_refusals_cost_nothing() {
            let (budget, key) = budget(10, 1).await;
            let started = Instant::now();
            assert_eq!(budget.check(&key).await, SharedVerdict::Admitted);
            // Refused requests do not push the next admission further away.
            for _ in 0..20 {
                assert!(matches!(
                    budget.check(&key).await,
                    SharedVerdict::Refused(_)
                ));
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                if budget.check(&key).await == SharedVerdict::Admitted {
                    break;
                }
                assert!(Instant::now() < deadline, "never replenished");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let elapsed = started.elapsed();
            assert!(
                elapsed >= Duration::from_millis(100) && elapsed <= Duration::from_millis(300),
                "at 10 per second the next request is admitted 100 ms after the first, not {elapsed:?}"
            );
        }

        #[tokio::test]
        #[ignore = "needs Redis at 127.0.0.1:6379 or BOOKSTORE_TEST_REDIS_URL; cargo xtask test runs it when one answers"]
        async fn redis_shares_one_budget_between_two_limiters_and_forgets_idle_keys() {
            let (first, key) = budget(1, 4).await;
            let (second, _) = budget_on_same_server(&first);
            let mut admitted = 0;
            for round in 0..10 {
                let limiter = if round % 2 == 0 { &first } else { &second };
                if limiter.check(&key).await == SharedVerdict::Admitted {
                    admitted += 1;
                }
            }
            assert_eq!(admitted, 4, "one burst for both limiters together");

            let mut connection = first.connection.clone();
            let ttl: i64 = redis::cmd("PTTL")
                .arg(format!("{KEY_PREFIX}{key}"))
                .query_async(&mut connection)
                .await
                .expect("PTTL");
            assert!(
                (3_000..=4_000).contains(&ttl),
                "the key lives until the burst is back (4 s at 1 per second), PTTL {ttl}"
            );
        }
    }
}
