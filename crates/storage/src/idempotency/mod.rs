//! Idempotency keys: the records that let a retried request replay the first response
//! instead of acting twice. One trait ([`IdempotencyStore`]), one set of types, and every
//! implementation: [`InMemoryIdempotencyStore`] here, and the SQL stores of each backend
//! (built by [`Database::stores`](crate::Database::stores)), whose SQL is in `crate::sql::idempotency`.
//!
//! A request with a key first *claims* it (scoped to its owner) together with a
//! [`Fingerprint`] of what it asks for. The claim starts the work, resumes the work of a
//! first attempt that died, finds the finished first response to replay, finds the first
//! request still in flight, or finds the key used for a different request. Finished
//! responses are kept for [`IDEMPOTENCY_RETENTION`]; a claim whose request never finished
//! may be taken over after [`IDEMPOTENCY_IN_FLIGHT_TIMEOUT`]. Nothing here knows HTTP: a
//! [`StoredResponse`] is the bytes and headers the caller asked to keep.

use std::time::Duration;

use async_trait::async_trait;
use bookstore_sales::CustomerId;
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

mod memory;

pub use memory::InMemoryIdempotencyStore;

/// How long a finished response is kept for replay.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a claim may stay in flight before another request may take the key over.
pub const IDEMPOTENCY_IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(60);

/// A digest of what a request asks for (for HTTP: its method, path and body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// A fingerprint from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// SHA-256 of several byte strings, each prefixed by its length so that no two
    /// different lists of parts hash the same input.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }
}

/// A response kept for replay, exactly as it was first sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
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
pub enum Claim {
    /// The key is new (or its record expired): do the work, then complete or release.
    Started,
    /// The first request with this key died in flight (its instance stopped, or it timed
    /// out): do the work again, finishing what the first attempt may have begun.
    Resumed,
    /// The first request finished: replay its response.
    Replay(StoredResponse),
    /// The first request is still being processed (here or on another instance).
    InFlight,
    /// The key was used for a different request (another fingerprint).
    Mismatch,
}

/// The idempotency store could not answer.
#[derive(Debug, thiserror::Error)]
#[error("the idempotency store is unavailable")]
pub struct IdempotencyUnavailable(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl From<crate::StorageError> for IdempotencyUnavailable {
    fn from(error: crate::StorageError) -> Self {
        Self(Box::new(error))
    }
}

/// Where claims and finished responses are kept.
///
/// A claim is atomic, across instances for the SQL stores: of concurrent claims of one key,
/// exactly one starts.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for `owner` with `fingerprint` at `now`.
    async fn claim(
        &self,
        owner: &CustomerId,
        key: &str,
        fingerprint: Fingerprint,
        now: DateTime<Utc>,
    ) -> Result<Claim, IdempotencyUnavailable>;

    /// Records the response of a started claim, for replay until `now` +
    /// [`IDEMPOTENCY_RETENTION`]. A key that has no record (released, purged) is left alone.
    async fn complete(
        &self,
        owner: &CustomerId,
        key: &str,
        response: StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<(), IdempotencyUnavailable>;

    /// Forgets a started claim whose work failed in a way worth retrying.
    async fn release(&self, owner: &CustomerId, key: &str) -> Result<(), IdempotencyUnavailable>;

    /// Deletes the expired records; returns how many were deleted.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, IdempotencyUnavailable>;
}

/// `now + after`, saturating at the latest representable time.
pub(crate) fn expiry(now: DateTime<Utc>, after: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(after)
        .ok()
        .and_then(|after| now.checked_add_signed(after))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
