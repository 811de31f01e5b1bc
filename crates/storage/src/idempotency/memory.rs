//! [`InMemoryIdempotencyStore`]: idempotency records in process memory (lost on restart).

use std::time::Duration;

use async_trait::async_trait;
use bookstore_sales::CustomerId;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::{
    Claim, Fingerprint, IDEMPOTENCY_IN_FLIGHT_TIMEOUT, IDEMPOTENCY_RETENTION, IdempotencyStore,
    IdempotencyUnavailable, StoredResponse,
};

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
            RecordState::InFlight { since } => {
                elapsed(*since, now) >= IDEMPOTENCY_IN_FLIGHT_TIMEOUT
            }
            RecordState::Finished { at, .. } => elapsed(*at, now) >= IDEMPOTENCY_RETENTION,
        }
    }
}

fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or(Duration::ZERO)
}

/// Idempotency records in memory, for one process (lost on restart). Each key's record is
/// changed under its map entry's lock, so a claim is atomic.
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
