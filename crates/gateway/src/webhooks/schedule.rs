//! When a failed delivery is tried again, and when an endpoint is given up on.
//!
//! - **The schedule** (Standard Webhooks): the first attempt at once, then retries 5 s,
//!   5 min, 30 min, 2 h, 5 h, 10 h and 10 h after the attempt before: 8 attempts over about
//!   27.6 h, then the delivery has failed.
//! - **Jitter:** each wait is multiplied by a random factor in [0.9, 1.1), so that the
//!   retries of many deliveries failed at once spread out.
//! - **`Retry-After`** (seconds, or an HTTP date) on a failed answer: the next attempt is
//!   no earlier than it says, and no later than the longest wait of the schedule (10 h) —
//!   a larger value is cut to 10 h. It is one of the 8 attempts.
//! - **Giving up on an endpoint:** when an attempt fails and every attempt to the endpoint
//!   since at least 5 days ago has failed (its failure streak began 5 days or more before,
//!   with no success since), the endpoint is disabled with that reason. Its pending
//!   deliveries wait, and resume when an admin enables it again.
//!
//! `--webhook-retry-schedule-scale` multiplies every wait, the `Retry-After` asked for and
//! the 5 days (0.001 makes 5 s into 5 ms): for tests.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// The waits before each retry: after attempt 1 comes `RETRY_WAITS[0]`, and so on.
pub const RETRY_WAITS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How many attempts a delivery gets.
pub const MAX_ATTEMPTS: u32 = RETRY_WAITS.len() as u32 + 1;

/// How long every attempt to an endpoint must have failed before it is disabled.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// The jitter: a wait is multiplied by a factor in `[1 - JITTER, 1 + JITTER)`.
pub const JITTER: f64 = 0.1;

/// The retry rules, scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// What every wait (and the 5 days) is multiplied by; 1 in production.
    pub scale: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { scale: 1.0 }
    }
}

impl RetryPolicy {
    fn scaled(&self, wait: Duration) -> Duration {
        wait.mul_f64(self.scale)
    }

    /// When to try again after attempt number `attempts` (1 for the first) failed at
    /// `now`, with `unit_random` in `[0, 1)` for the jitter and the `Retry-After` the answer
    /// carried; `None` when that was the last attempt.
    pub fn next_attempt(
        &self,
        attempts: u32,
        now: DateTime<Utc>,
        unit_random: f64,
        retry_after: Option<Duration>,
    ) -> Option<DateTime<Utc>> {
        let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
        let wait = *RETRY_WAITS.get(index)?;
        let factor = 1.0 - JITTER + 2.0 * JITTER * unit_random.clamp(0.0, 1.0);
        let mut wait = self.scaled(wait).mul_f64(factor);
        if let Some(asked) = retry_after {
            let longest = self.scaled(RETRY_WAITS[RETRY_WAITS.len() - 1]);
            wait = wait.max(self.scaled(asked).min(longest));
        }
        Some(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX))
    }

    /// Whether an endpoint failing since `failing_since` is given up on at `now`.
    pub fn gives_up(&self, failing_since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let window =
            chrono::Duration::from_std(self.scaled(GIVE_UP_AFTER)).unwrap_or(chrono::Duration::MAX);
        now - failing_since >= window
    }
}

/// The wait a `Retry-After` value asks for: delay-seconds, or an HTTP date (a date in the
/// past asks for none); `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// A random number in `[0, 1)` from the operating system (0.5 if it has none to give).
pub fn unit_random() -> f64 {
    let mut bytes = [0_u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_schedule_is_the_standard_webhooks_one_and_ends_after_eight_attempts() {
        let policy = RetryPolicy::default();
        let waits: Vec<i64> = (1..=7)
            .map(|attempt| {
                (policy.next_attempt(attempt, at(0), 0.5, None).unwrap() - at(0)).num_seconds()
            })
            .collect();
        assert_eq!(waits, vec![5, 300, 1800, 7200, 18_000, 36_000, 36_000]);
        assert_eq!(policy.next_attempt(8, at(0), 0.5, None), None);
        assert_eq!(MAX_ATTEMPTS, 8);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let policy = RetryPolicy::default();
        let low = policy.next_attempt(2, at(0), 0.0, None).unwrap() - at(0);
        let high = policy.next_attempt(2, at(0), 0.999_999, None).unwrap() - at(0);
        assert_eq!(low.num_seconds(), 270);
        assert!(
            high.num_seconds() <= 330 && high.num_seconds() >= 329,
            "{high}"
        );
    }

    #[test]
    fn retry_after_delays_the_next_attempt_up_to_ten_hours() {
        let policy = RetryPolicy::default();
        let asked = policy
            .next_attempt(1, at(0), 0.5, Some(Duration::from_secs(120)))
            .unwrap();
        assert_eq!((asked - at(0)).num_seconds(), 120);
        let shorter = policy
            .next_attempt(2, at(0), 0.5, Some(Duration::from_secs(1)))
            .unwrap();
        assert_eq!((shorter - at(0)).num_seconds(), 300);
        let capped = policy
            .next_attempt(1, at(0), 0.5, Some(Duration::from_secs(999_999)))
            .unwrap();
        assert_eq!((capped - at(0)).num_seconds(), 36_000);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        // 2015-10-21 07:28:00 UTC.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn a_scaled_schedule_waits_in_milliseconds_and_gives_up_sooner() {
        let policy = RetryPolicy { scale: 0.001 };
        let wait = policy.next_attempt(1, at(0), 0.5, None).unwrap() - at(0);
        assert_eq!(wait.num_milliseconds(), 5);
        assert!(policy.gives_up(at(0), at(432)));
        assert!(!policy.gives_up(at(0), at(431)));
        assert!(RetryPolicy::default().gives_up(at(0), at(5 * 86_400)));
        assert!(!RetryPolicy::default().gives_up(at(0), at(5 * 86_400 - 1)));
    }
}
