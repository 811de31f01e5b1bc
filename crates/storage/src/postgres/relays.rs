//! [`PgRelayCursors`]: the relays' cursors and leases in PostgreSQL (see
//! `crate::events::RelayCursors`), their leases on the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use uuid::Uuid;

use crate::codec::{from_db_count, to_db_count};
use crate::events::{EventsUnavailable, RelayCursors};
use crate::failure::unavailable;
use crate::instances::lease_millis;

/// $1 the relay, $2 the holder, $3 the lease in milliseconds: takes or renews the relay when
/// it is free, held by $2, expired, or held by an instance that has no row (stopped cleanly
/// or reaped).
const CLAIM: &str = "
    INSERT INTO event_relays (name, position, holder, lease_expires_at)
    VALUES ($1, 0, $2, clock_timestamp() + $3::bigint * interval '1 millisecond')
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                                     lease_expires_at = excluded.lease_expires_at
    WHERE event_relays.holder IS NULL
       OR event_relays.holder = excluded.holder
       OR event_relays.lease_expires_at <= clock_timestamp()
       OR NOT EXISTS (SELECT 1 FROM instances WHERE id = event_relays.holder)
    RETURNING position";

/// $1 the relay, $2 the holder, $3 the position, $4 the lease in milliseconds.
const ADVANCE: &str = "
    UPDATE event_relays
    SET position = greatest(position, $3),
        lease_expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond'
    WHERE name = $1 AND holder = $2";

/// The [`RelayCursors`] of a PostgreSQL database.
#[derive(Debug, Clone)]
pub(crate) struct PgRelayCursors {
    pool: PgPool,
}

impl PgRelayCursors {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl RelayCursors for PgRelayCursors {
    async fn claim(
        &self,
        name: &str,
        holder: Uuid,
        lease: Duration,
    ) -> Result<Option<u64>, EventsUnavailable> {
        let position: Option<i64> = sqlx::query_scalar(CLAIM)
            .bind(name)
            .bind(holder)
            .bind(lease_millis(lease))
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable::<EventsUnavailable>)?;
        Ok(position.map(from_db_count))
    }

    async fn advance(
        &self,
        name: &str,
        holder: Uuid,
        position: u64,
        lease: Duration,
    ) -> Result<bool, EventsUnavailable> {
        let updated = sqlx::query(ADVANCE)
            .bind(name)
            .bind(holder)
            .bind(to_db_count(position))
            .bind(lease_millis(lease))
            .execute(&self.pool)
            .await
            .map_err(unavailable::<EventsUnavailable>)?
            .rows_affected();
        Ok(updated == 1)
    }

    async fn release(&self, name: &str, holder: Uuid) -> Result<(), EventsUnavailable> {
        sqlx::query(
            "UPDATE event_relays SET holder = NULL, lease_expires_at = NULL
             WHERE name = $1 AND holder = $2",
        )
        .bind(name)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(unavailable::<EventsUnavailable>)?;
        Ok(())
    }
}
