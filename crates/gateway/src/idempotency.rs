//! Idempotency keys: a retried POST replays the first response instead of acting twice.
//!
//! A request with an `Idempotency-Key` first *claims* the key (scoped to the caller's API
//! key) together with a fingerprint of its method, path and body. The claim either starts
//! the work, finds the finished first response to replay, finds the first request still in
//! flight (409), or finds the key used for a different request (422). The records, their
//! rules and every store of them (in memory, SQLite, PostgreSQL) are
//! [`bookstore_storage::idempotency`]'s; this module is the request side.

use std::future::Future;

use bookstore_sales::CustomerId;
use chrono::Utc;

pub use bookstore_storage::idempotency::{
    Claim, Fingerprint, IdempotencyStore, IdempotencyUnavailable, InMemoryIdempotencyStore,
};

use crate::http::extract::IdempotencyKey;
use crate::http::problem::{ApiError, ProblemKind};
use crate::http::reply::Reply;
use crate::metrics::BusinessEvent;

/// SHA-256 of several byte strings, each prefixed by its length so that no two different
/// lists of parts hash the same input ([`Fingerprint::of_parts`]).
pub fn digest_of_parts(parts: &[&[u8]]) -> [u8; 32] {
    Fingerprint::of_parts(parts).as_bytes()
}

/// The fingerprint of a request: its method, its path and its body.
pub fn request_fingerprint(method: &str, path: &str, body: &[u8]) -> Fingerprint {
    Fingerprint::of_parts(&[method.as_bytes(), path.as_bytes(), body])
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

/// One idempotent request: who sends it, with which key, asking for what.
pub struct IdempotentRequest<'a> {
    /// The idempotency store.
    pub store: &'a dyn IdempotencyStore,
    /// The caller the key is scoped to.
    pub owner: &'a CustomerId,
    /// The key, if the client sent one.
    pub key: &'a IdempotencyKey,
    /// What the request asks for; computed only when there is a key to hold it to.
    pub fingerprint: Option<Fingerprint>,
    /// The request id, kept in a stored error body so that a replay is byte-identical.
    pub request_id: &'a str,
}

impl<'a> IdempotentRequest<'a> {
    /// The idempotent request `http` with its parsed `body`, sent by `owner`. The fingerprint
    /// covers the method, the path and the body as parsed (so whitespace and key order do
    /// not matter); without a key there is nothing to compare it with, and it is not made.
    pub fn new<T: serde::Serialize>(
        store: &'a dyn IdempotencyStore,
        owner: &'a CustomerId,
        key: &'a IdempotencyKey,
        request_id: &'a str,
        http: &actix_web::HttpRequest,
        body: &T,
    ) -> Self {
        let fingerprint = key.as_deref().map(|_| {
            let bytes = serde_json::to_vec(body).unwrap_or_default();
            request_fingerprint(http.method().as_str(), http.path(), &bytes)
        });
        Self {
            store,
            owner,
            key,
            fingerprint,
            request_id,
        }
    }
}

impl IdempotentRequest<'_> {
    /// Runs `work` at most once per key: replays a finished response, refuses a key in
    /// flight (409) or reused for another request (422).
    pub async fn run<T, const STATUS: u16, Fut>(
        self,
        work: impl FnOnce(Attempt) -> Fut,
    ) -> Result<Reply<T, STATUS>, ApiError>
    where
        Fut: Future<Output = Result<Reply<T, STATUS>, ApiError>>,
    {
        let (Some(key), Some(fingerprint)) = (self.key.as_deref(), self.fingerprint) else {
            return work(Attempt::First).await;
        };
        let claim = self
            .store
            .claim(self.owner, key, fingerprint, Utc::now())
            .await
            .map_err(ApiError::unavailable)?;
        let attempt = match claim {
            Claim::Started => Attempt::First,
            Claim::Resumed => Attempt::Resumed,
            Claim::Replay(stored) => {
                BusinessEvent::IdempotentReplay.record();
                return Ok(Reply::replay(stored));
            }
            Claim::InFlight => {
                return Err(ApiError::new(
                    ProblemKind::IdempotencyKeyInFlight,
                    "a request with this Idempotency-Key is still being processed; retry later",
                ));
            }
            Claim::Mismatch => {
                return Err(ApiError::new(
                    ProblemKind::IdempotencyKeyReused,
                    "this Idempotency-Key was used for a different request",
                ));
            }
        };
        let result = work(attempt).await;
        let stored = match &result {
            Ok(reply) => Some(reply.stored().clone()),
            Err(error) if error.kind().status().is_server_error() => None,
            Err(error) => Some(error.stored_response(self.request_id)),
        };
        let recorded = match stored {
            Some(stored) => {
                self.store
                    .complete(self.owner, key, stored, Utc::now())
                    .await
            }
            None => self.store.release(self.owner, key).await,
        };
        if let Err(error) = recorded {
            // The work is done and its answer is correct; only a replay may be lost.
            tracing::warn!(error = %error, "could not record an idempotent response");
        }
        result
    }
}
