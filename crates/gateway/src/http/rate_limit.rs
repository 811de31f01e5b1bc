//! Rate limiting per account (all its API keys together), and per client address for
//! requests without a valid key.
//!
//! A generic cell rate algorithm (the `governor` crate) per key: `per_second` requests are
//! replenished every second, up to `burst` at once. Over the limit a request is answered
//! 429 with `Retry-After` before any handler runs.
//!
//! By default each process keeps its own budgets. With a [`SharedBudget`]
//! (`--rate-limit-redis-url`) every instance draws on one budget per key kept in Redis
//! ([`shared`]), and falls back to its own limiter while Redis is unavailable.

pub mod shared;

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub use shared::{RedisUrl, RedisUrlError, SharedBudget, SharedVerdict};

/// The limiter shared by all workers.
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    per_second: NonZeroU32,
    burst: NonZeroU32,
    shared: Option<SharedBudget>,
}

impl RateLimits {
    /// `per_second` requests per second with bursts of up to `burst` (at least 1) per key;
    /// `None` when `per_second` is 0 (limiting off).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            per_second: rate,
            burst,
            shared: None,
        })
    }

    /// The same limits, kept in the Redis at `url` for every instance that uses it; each
    /// Redis call waits at most `timeout`. Must be called inside a Tokio runtime.
    pub fn shared_through(
        mut self,
        url: &RedisUrl,
        timeout: Duration,
    ) -> Result<Self, RedisUrlError> {
        self.shared = Some(SharedBudget::new(
            url,
            self.per_second.get(),
            self.burst.get(),
            timeout,
        )?);
        Ok(self)
    }

    /// Counts a request for `key` against the shared budget if there is one and Redis
    /// answers, else against this process's own; `Err(wait)` when over the limit.
    pub async fn admit(&self, key: &str) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            match shared.check(key).await {
                SharedVerdict::Admitted => return Ok(()),
                SharedVerdict::Refused(wait) => return Err(wait),
                SharedVerdict::Unavailable => shared.count_fallback(),
            }
        }
        self.check(key)
    }

    /// Counts a request for `key` against this process's own limiter; `Err(wait)` when
    /// over the limit.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets keys that are back to a full burst, bounding memory under floods of new
    /// client addresses. Call periodically.
    pub fn forget_idle_keys(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Whole seconds to put in `Retry-After` (at least 1).
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_is_limited_while_other_keys_are_not() {
        let limits = RateLimits::new(1, 3).unwrap();
        for _ in 0..3 {
            assert!(limits.check("alice").is_ok());
        }
        assert!(limits.check("alice").is_err());
        assert!(limits.check("bob").is_ok());
    }

    #[test]
    fn a_rate_of_zero_turns_limiting_off() {
        assert!(RateLimits::new(0, 10).is_none());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
