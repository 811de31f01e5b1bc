//! Instances and their leases: which process made each unsettled record.
//!
//! Every process that opens a [`Database`] gets an [`InstanceId`] (a fresh UUID v7). The
//! reservation and return journals and the in-flight idempotency claims record the instance
//! that wrote them, so that the work of a process that died is settled as soon as it is known
//! to have died, and the work of a live one never is:
//!
//! - [`Database::register_instance`] inserts the instance's row with a lease that
//!   [`Database::renew_lease`] extends while the process runs, and
//!   [`Database::deregister_instance`] deletes it when the process stops cleanly.
//! - [`Database::reap_expired_leases`] deletes the rows whose lease ran out. A record whose
//!   instance has no row belongs to a stopped process.
//! - **SQLite** serves one process per file (see [`crate::connect`]): registering deletes
//!   every other instance's row, so at start-up everything a previous process left behind is
//!   settled at once.
//! - **PostgreSQL** is shared: leases use the database's clock, so instances need not agree
//!   on the time. Recording an order locks its instance's row (`FOR KEY SHARE`, which lease
//!   renewals do not wait for), so a reaper's `DELETE` waits for the orders being recorded
//!   under that instance, and once the row is gone no order can be recorded under it: an
//!   instance that stalled past its lease cannot record an order whose stock and payment
//!   another instance has already settled. It learns so at its next renewal
//!   ([`LeaseRenewal::Lost`]) and must stop.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::database::Backend;
use crate::{Database, StorageError, postgres, sqlite};

/// The identity of one process using a database; fresh for every [`connect`](crate::connect).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId(Uuid);

impl InstanceId {
    /// A new, time-ordered id.
    pub(crate) fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({})", self.0)
    }
}

/// What [`Database::renew_lease`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseRenewal {
    /// The lease was extended.
    Renewed,
    /// The instance's row is gone: another instance found its lease expired and settled its
    /// work. The process must stop serving (its in-flight orders can no longer be recorded).
    Lost,
}

impl Database {
    /// This process's instance id, recorded on everything it journals.
    pub fn instance(&self) -> InstanceId {
        self.instance
    }

    /// Registers this instance with a lease of `lease` (registering again sets the lease
    /// anew). On SQLite, deletes every other
    /// instance's row first (a SQLite file serves one process), so that their work is
    /// settled at once.
    pub async fn register_instance(&self, lease: Duration) -> Result<(), StorageError> {
        match self.backend() {
            Backend::Sqlite(handle) => {
                sqlite::register_instance(handle, self.instance, lease).await
            }
            Backend::Postgres(pool) => {
                postgres::register_instance(pool, self.instance, lease).await
            }
        }
    }

    /// Extends this instance's lease to `lease` from now.
    pub async fn renew_lease(&self, lease: Duration) -> Result<LeaseRenewal, StorageError> {
        let renewed = match self.backend() {
            Backend::Sqlite(handle) => sqlite::renew_lease(handle, self.instance, lease).await,
            Backend::Postgres(pool) => postgres::renew_lease(pool, self.instance, lease).await,
        }?;
        Ok(if renewed {
            LeaseRenewal::Renewed
        } else {
            LeaseRenewal::Lost
        })
    }

    /// Deletes the rows of the instances whose lease has expired, waiting for the orders
    /// being recorded under them; returns how many were deleted.
    pub async fn reap_expired_leases(&self) -> Result<u64, StorageError> {
        match self.backend() {
            Backend::Sqlite(handle) => sqlite::reap_expired_leases(handle).await,
            Backend::Postgres(pool) => postgres::reap_expired_leases(pool).await,
        }
    }

    /// The other registered instances and when their leases expire. A starting instance
    /// takes this as a snapshot: an instance whose lease is later extended is alive, one
    /// whose row disappears has stopped (and its work is settled by recovery).
    pub async fn other_instances(
        &self,
    ) -> Result<HashMap<InstanceId, DateTime<Utc>>, StorageError> {
        let rows = match self.backend() {
            Backend::Sqlite(handle) => sqlite::instance_leases(handle).await,
            Backend::Postgres(pool) => postgres::instance_leases(pool).await,
        }?;
        Ok(rows
            .into_iter()
            .map(|(id, expires_at)| (InstanceId(id), expires_at))
            .filter(|(id, _)| *id != self.instance)
            .collect())
    }

    /// Deletes this instance's row (a clean stop): whatever it left unsettled is settled by
    /// the next recovery of another instance, without waiting for the lease to run out.
    pub async fn deregister_instance(&self) -> Result<(), StorageError> {
        match self.backend() {
            Backend::Sqlite(handle) => sqlite::deregister_instance(handle, self.instance).await,
            Backend::Postgres(pool) => postgres::deregister_instance(pool, self.instance).await,
        }
    }
}

/// Why an order could not be recorded: this instance's lease expired and another instance
/// settled its work.
#[derive(Debug, thiserror::Error)]
#[error("the lease of instance {instance} has expired: its work was settled by another instance")]
pub(crate) struct LeaseExpired {
    pub(crate) instance: InstanceId,
}

/// Reservations whose instance has no row: its process stopped. The same SQL on both
/// backends.
pub(crate) const STOPPED_RESERVATIONS: &str = "
    SELECT id FROM reservations AS journal
    WHERE instance_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM instances WHERE instances.id = journal.instance_id)
    ORDER BY created_at, id";

/// Returns whose instance has no row: its process stopped. The same SQL on both backends.
pub(crate) const STOPPED_RETURNS: &str = "
    SELECT id FROM stock_returns AS journal
    WHERE instance_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM instances WHERE instances.id = journal.instance_id)
    ORDER BY created_at, id";

/// A lease length in whole milliseconds, as the SQL binds it.
pub(crate) fn lease_millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}
