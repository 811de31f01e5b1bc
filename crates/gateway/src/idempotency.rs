//! Idempotency keys: a retried POST replays the first response instead of acting twice.
//!
//! A request with an `Idempotency-Key` first *claims* the key (scoped to the caller's API
//! key) together with a fingerprint of its method, path and body. The claim either starts
//! the work, finds the finished first response to replay, finds the first request still in
//! flight (409), or finds the key used for a different request (422). The records, their
//! rules and every store of them (in memory, SQLite, PostgreSQL) are
//! [`bookstore_storage::idempotency`]'s; this module adds what the gateway derives from a
//! request (its fingerprint, the attempt), and `http::idempotent` runs the claim.

pub use bookstore_storage::idempotency::{
    Claim, Fingerprint, IdempotencyStore, IdempotencyUnavailable, InMemoryIdempotencyStore,
};

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
