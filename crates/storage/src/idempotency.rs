//! [`SqlIdempotencyStore`]: idempotency keys in SQL, shared by every instance.
//!
//! The storage crate cannot know the gateway's types, so this store speaks plain ones (an
//! owner string, a 32-byte fingerprint, an [`IdempotentResponse`]); the gateway adapts it to
//! its own `IdempotencyStore` trait. The rules are the gateway's: a finished response is
//! replayed for [`IDEMPOTENCY_RETENTION`], an unfinished claim blocks the key (in flight)
//! for [`IDEMPOTENCY_IN_FLIGHT_TIMEOUT`], and an expired record of either kind may be taken
//! over by a new claim.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::database::dispatch;
use crate::{Database, StorageError};

/// How long a finished response is kept for replay.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a claim may stay in flight before another request may take the key over.
pub const IDEMPOTENCY_IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(60);

/// A response kept for replay, exactly as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: String,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The exact body bytes.
    pub body: Vec<u8>,
}

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new (or its record expired): do the work, then complete or release.
    Started,
    /// The first request with this key died in flight (its instance stopped, or it timed
    /// out): do the work again, finishing what the first attempt may have begun.
    Resumed,
    /// The first request finished: replay its response.
    Replay(IdempotentResponse),
    /// The first request is still being processed (here or on another instance).
    InFlight,
    /// The key was used for a different request (another fingerprint).
    Mismatch,
}

/// Idempotency records in a SQL database.
///
/// A claim is atomic across instances: `INSERT ... ON CONFLICT DO NOTHING` creates the
/// record, or a conditional `UPDATE ... WHERE expires_at <= now` takes over an expired one;
/// only if both change nothing is the existing record read and answered.
#[derive(Debug, Clone)]
pub struct SqlIdempotencyStore {
    database: Database,
}

impl SqlIdempotencyStore {
    /// The records kept in `database` (migrated with [`migrate`](crate::migrate)).
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Claims `key` for `owner` with `fingerprint` at `now`.
    pub async fn claim(
        &self,
        owner: &str,
        key: &str,
        fingerprint: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StorageError> {
        dispatch!(
            self.database,
            idempotency::claim(self.database.instance(), owner, key, fingerprint, now)
        )
    }

    /// Records the response of a started claim, for replay until `now` +
    /// [`IDEMPOTENCY_RETENTION`]. A key that has no record (released, purged) is left alone.
    pub async fn complete(
        &self,
        owner: &str,
        key: &str,
        response: &IdempotentResponse,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        dispatch!(
            self.database,
            idempotency::complete(owner, key, response, now)
        )
    }

    /// Forgets a claim whose work failed in a way worth retrying.
    pub async fn release(&self, owner: &str, key: &str) -> Result<(), StorageError> {
        dispatch!(self.database, idempotency::release(owner, key))
    }

    /// Deletes the expired records; returns how many were deleted.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, StorageError> {
        dispatch!(self.database, idempotency::purge_expired(now))
    }
}

/// `now + after`, saturating at the latest representable time.
pub(crate) fn expiry(now: DateTime<Utc>, after: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(after)
        .ok()
        .and_then(|after| now.checked_add_signed(after))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
