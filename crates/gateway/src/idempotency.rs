//! Idempotency keys: a retried POST replays the first response instead of acting twice.
//!
//! A request with an `Idempotency-Key` first *claims* the key (scoped to the caller's API
//! key) together with a fingerprint of its method, path and body. The claim either starts
//! the work, finds the finished first response to replay, finds the first request still in
//! flight (409), or finds the key used for a different request (422). Finished responses are
//! kept for [`RETENTION`]; a claim whose request never finished (the process was stopped, or
//! the client went away and the work was dropped) may be taken over after [`IN_FLIGHT_TIMEOUT`].

use std::time::Duration;

use async_trait::async_trait;
use bookstore_sales::CustomerId;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use sha2::{Digest, Sha256};

use crate::http::reply::StoredResponse;

/// How long a finished response is kept for replay.
pub const RETENTION: Duration = bookstore_storage::IDEMPOTENCY_RETENTION;

/// How long a claim may stay in flight before another request may take the key over.
pub const IN_FLIGHT_TIMEOUT: Duration = bookstore_storage::IDEMPOTENCY_IN_FLIGHT_TIMEOUT;

/// A digest of what a request asks for: method, path and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The digest's bytes.
    pub fn as_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The fingerprint of a request.
    pub fn of(method: &str, path: &str, body: &[u8]) -> Self {
        Self(digest_of_parts(&[method.as_bytes(), path.as_bytes(), body]))
    }
}

/// SHA-256 of several byte strings, each prefixed by its length so that no two different
/// lists of parts hash the same input.
pub fn digest_of_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Whether the work of a request is its key's first attempt, or resumes one that died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Nothing was done for this request before (or it has no `Idempotency-Key`).
    First,
    /// An earlier attempt with the same key and request died in flight: it may have done
    /// some of the work, which this attempt finishes instead of refusing.
    Resumed,
}

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or expired): do the work, then complete or release the claim.
    Started,
    /// The first request with this key died in flight (its process stopped, or it timed
    /// out): do the work again, finishing what the first attempt may have begun.
    Resumed,
    /// The first request finished: replay its response.
    Replay(StoredResponse),
    /// The first request is still being processed.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

/// The idempotency store could not answer.
#[derive(Debug, thiserror::Error)]
#[error("the idempotency store is unavailable")]
pub struct IdempotencyUnavailable(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Where claims and finished responses are kept.
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

    /// Records the response of a started claim, for replay.
    async fn complete(
        &self,
        owner: &CustomerId,
        key: &str,
        response: StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<(), IdempotencyUnavailable>;

    /// Forgets a started claim whose work failed in a way worth retrying (5xx).
    async fn release(&self, owner: &CustomerId, key: &str) -> Result<(), IdempotencyUnavailable>;

    /// Deletes records older than [`RETENTION`]; returns how many were deleted.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, IdempotencyUnavailable>;
}

#[derive(Debug, Clone)]
enum RecordState {
    InFlight {
        since: DateTime<Utc>,
    },
    Finished {
        response: StoredResponse,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone)]
struct Record {
    fingerprint: Fingerprint,
    state: RecordState,
}

impl Record {
    fn is_expired(&self, now: DateTime<Utc>) -> bool {
        match &self.state {
            RecordState::InFlight { since } => elapsed(*since, now) >= IN_FLIGHT_TIMEOUT,
            RecordState::Finished { at, .. } => elapsed(*at, now) >= RETENTION,
        }
    }
}

fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or(Duration::ZERO)
}

/// Idempotency records in memory (lost on restart).
#[derive(Debug, Default)]
pub struct InMemoryIdempotencyStore {
    records: DashMap<(CustomerId, String), Record>,
}

impl InMemoryIdempotencyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl IdempotencyStore for InMemoryIdempotencyStore {
    async fn claim(
        &self,
        owner: &CustomerId,
        key: &str,
        fingerprint: Fingerprint,
        now: DateTime<Utc>,
    ) -> Result<Claim, IdempotencyUnavailable> {
        let fresh = Record {
            fingerprint,
            state: RecordState::InFlight { since: now },
        };
        match self.records.entry((owner.clone(), key.to_owned())) {
            Entry::Vacant(vacant) => {
                vacant.insert(fresh);
                Ok(Claim::Started)
            }
            Entry::Occupied(mut occupied) => {
                let record = occupied.get();
                if record.is_expired(now) {
                    let resumed = record.fingerprint == fingerprint
                        && matches!(record.state, RecordState::InFlight { .. });
                    occupied.insert(fresh);
                    return Ok(if resumed {
                        Claim::Resumed
                    } else {
                        Claim::Started
                    });
                }
                if record.fingerprint != fingerprint {
                    return Ok(Claim::Mismatch);
                }
                Ok(match &record.state {
                    RecordState::InFlight { .. } => Claim::InFlight,
                    RecordState::Finished { response, .. } => Claim::Replay(response.clone()),
                })
            }
        }
    }

    async fn complete(
        &self,
        owner: &CustomerId,
        key: &str,
        response: StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<(), IdempotencyUnavailable> {
        if let Some(mut record) = self.records.get_mut(&(owner.clone(), key.to_owned())) {
            record.state = RecordState::Finished { response, at: now };
        }
        Ok(())
    }

    async fn release(&self, owner: &CustomerId, key: &str) -> Result<(), IdempotencyUnavailable> {
        self.records.remove(&(owner.clone(), key.to_owned()));
        Ok(())
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, IdempotencyUnavailable> {
        let before = self.records.len();
        self.records.retain(|_, record| !record.is_expired(now));
        Ok(before.saturating_sub(self.records.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &str) -> StoredResponse {
        StoredResponse {
            status: 201,
            content_type: "application/json".to_owned(),
            location: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn a_key_is_started_then_in_flight_then_replayed() {
        let store = InMemoryIdempotencyStore::new();
        let owner = CustomerId::new("alice");
        let print = Fingerprint::of("POST", "/api/orders", b"{}");
        let now = Utc::now();
        assert_eq!(
            store.claim(&owner, "k", print, now).await.unwrap(),
            Claim::Started
        );
        assert_eq!(
            store.claim(&owner, "k", print, now).await.unwrap(),
            Claim::InFlight
        );
        store
            .complete(&owner, "k", response("first"), now)
            .await
            .unwrap();
        assert_eq!(
            store.claim(&owner, "k", print, now).await.unwrap(),
            Claim::Replay(response("first"))
        );
    }

    #[tokio::test]
    async fn a_key_reused_for_another_request_is_a_mismatch() {
        let store = InMemoryIdempotencyStore::new();
        let owner = CustomerId::new("alice");
        let now = Utc::now();
        store
            .claim(&owner, "k", Fingerprint::of("POST", "/a", b"1"), now)
            .await
            .unwrap();
        for other in [
            Fingerprint::of("POST", "/a", b"2"),
            Fingerprint::of("POST", "/b", b"1"),
        ] {
            assert_eq!(
                store.claim(&owner, "k", other, now).await.unwrap(),
                Claim::Mismatch
            );
        }
    }

    #[tokio::test]
    async fn keys_are_scoped_to_the_api_key() {
        let store = InMemoryIdempotencyStore::new();
        let print = Fingerprint::of("POST", "/a", b"1");
        let now = Utc::now();
        assert_eq!(
            store
                .claim(&CustomerId::new("a"), "k", print, now)
                .await
                .unwrap(),
            Claim::Started
        );
        assert_eq!(
            store
                .claim(&CustomerId::new("b"), "k", print, now)
                .await
                .unwrap(),
            Claim::Started
        );
    }

    #[tokio::test]
    async fn another_request_takes_a_stale_claim_over_as_a_fresh_start() {
        let store = InMemoryIdempotencyStore::new();
        let owner = CustomerId::new("alice");
        let start = Utc::now();
        let first = Fingerprint::of("POST", "/a", b"1");
        store.claim(&owner, "k", first, start).await.unwrap();
        let later = start + chrono::Duration::seconds(61);
        assert_eq!(
            store
                .claim(&owner, "k", Fingerprint::of("POST", "/b", b"2"), later)
                .await
                .unwrap(),
            Claim::Started
        );
    }

    #[tokio::test]
    async fn finished_keys_expire_after_the_retention_and_stale_claims_can_be_taken_over() {
        let store = InMemoryIdempotencyStore::new();
        let owner = CustomerId::new("alice");
        let print = Fingerprint::of("POST", "/a", b"1");
        let start = Utc::now();
        store.claim(&owner, "stale", print, start).await.unwrap();
        let later = start + chrono::Duration::seconds(61);
        // The same request takes its own stale claim over as a resumed attempt.
        assert_eq!(
            store.claim(&owner, "stale", print, later).await.unwrap(),
            Claim::Resumed
        );

        store.claim(&owner, "done", print, start).await.unwrap();
        store
            .complete(&owner, "done", response("x"), start)
            .await
            .unwrap();
        let almost = start + chrono::Duration::hours(23);
        assert_eq!(
            store.claim(&owner, "done", print, almost).await.unwrap(),
            Claim::Replay(response("x"))
        );
        let day_later = start + chrono::Duration::hours(24);
        // Both the finished key and the abandoned "stale" claim are gone.
        assert_eq!(store.purge_expired(day_later).await.unwrap(), 2);
        assert_eq!(
            store.claim(&owner, "done", print, day_later).await.unwrap(),
            Claim::Started
        );
    }

    #[tokio::test]
    async fn a_released_claim_can_be_started_again() {
        let store = InMemoryIdempotencyStore::new();
        let owner = CustomerId::new("alice");
        let print = Fingerprint::of("POST", "/a", b"1");
        let now = Utc::now();
        store.claim(&owner, "k", print, now).await.unwrap();
        store.release(&owner, "k").await.unwrap();
        assert_eq!(
            store.claim(&owner, "k", print, now).await.unwrap(),
            Claim::Started
        );
    }
}
