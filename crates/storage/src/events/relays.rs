//! Relay cursors: how far each follower of the event log (the NATS publisher, the events
//! counter) has got, and which instance follows it now.
//!
//! A relay reads the log in position order ([`EventLog::after`](super::EventLog::after)),
//! hands each event on, then records the last position it handed on with
//! [`RelayCursors::advance`]. A crash between the two hands the unrecorded tail on again
//! when the relay resumes: relays are at least once.
//!
//! One instance at a time holds a relay. [`RelayCursors::claim`] takes it under a lease
//! (PostgreSQL: on the database's clock) when nobody holds it, when the holder is the
//! caller, when the lease has expired, or (SQL stores) when the holder's instance row is
//! gone: the holder stopped cleanly or its instance lease was reaped, and on SQLite every
//! earlier process is gone once a new one registers. Claiming again renews the lease;
//! [`RelayCursors::advance`] renews it too, and answers `false` when another instance has
//! taken the relay meanwhile (the caller stalled past its lease): the caller must stop and
//! claim again. Two holders can overlap only when one stalls past its lease, and then
//! consumers see some events twice, never a gap.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::EventsUnavailable;

/// Where relays keep their cursors and leases.
#[async_trait]
pub trait RelayCursors: Send + Sync + 'static {
    /// Claims (or renews) relay `name` for `holder` for `lease` from now; answers the last
    /// position handed on (0 for a new relay) when the caller holds it, `None` when another
    /// live holder does.
    async fn claim(
        &self,
        name: &str,
        holder: Uuid,
        lease: Duration,
    ) -> Result<Option<u64>, EventsUnavailable>;

    /// Records that `holder` handed on every event up to `position` and renews its lease;
    /// answers `false` (and records nothing) when `holder` no longer holds the relay. The
    /// position never goes back.
    async fn advance(
        &self,
        name: &str,
        holder: Uuid,
        position: u64,
        lease: Duration,
    ) -> Result<bool, EventsUnavailable>;

    /// Gives the relay up, if `holder` holds it, so another instance can claim it at once.
    async fn release(&self, name: &str, holder: Uuid) -> Result<(), EventsUnavailable>;
}

/// The relay cursors of a process that keeps everything in memory.
#[derive(Debug, Default)]
pub struct InMemoryRelayCursors {
    relays: Mutex<HashMap<String, Relay>>,
}

#[derive(Debug, Default)]
struct Relay {
    position: u64,
    holder: Option<(Uuid, DateTime<Utc>)>,
}

impl InMemoryRelayCursors {
    /// No relay has started.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, name: &str, change: impl FnOnce(&mut Relay) -> T) -> T {
        let mut relays = self
            .relays
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(relays.entry(name.to_owned()).or_default())
    }
}

fn lease_end(lease: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl RelayCursors for InMemoryRelayCursors {
    async fn claim(
        &self,
        name: &str,
        holder: Uuid,
        lease: Duration,
    ) -> Result<Option<u64>, EventsUnavailable> {
        Ok(self.with(name, |relay| {
            let free = match relay.holder {
                None => true,
                Some((current, expires_at)) => current == holder || expires_at <= Utc::now(),
            };
            free.then(|| {
                relay.holder = Some((holder, lease_end(lease)));
                relay.position
            })
        }))
    }

    async fn advance(
        &self,
        name: &str,
        holder: Uuid,
        position: u64,
        lease: Duration,
    ) -> Result<bool, EventsUnavailable> {
        Ok(self.with(name, |relay| match relay.holder {
            Some((current, _)) if current == holder => {
                relay.position = relay.position.max(position);
                relay.holder = Some((holder, lease_end(lease)));
                true
            }
            _ => false,
        }))
    }

    async fn release(&self, name: &str, holder: Uuid) -> Result<(), EventsUnavailable> {
        self.with(name, |relay| {
            if relay.holder.is_some_and(|(current, _)| current == holder) {
                relay.holder = None;
            }
        });
        Ok(())
    }
}
