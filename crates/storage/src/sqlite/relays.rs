//! [`SqliteRelayCursors`]: the relays' cursors and leases in a SQLite file (see
//! `crate::events::RelayCursors`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::{Handle, lease_end, to_db_time};
use crate::codec::{from_db_count, to_db_count};
use crate::events::{EventsUnavailable, RelayCursors};
use crate::failure::unavailable;

/// ?1 the relay, ?2 the holder, ?3 now, ?4 the lease's end: takes or renews the relay when
/// it is free, held by ?2, expired, or held by an instance that has no row.
const CLAIM: &str = "
    INSERT INTO event_relays (name, position, holder, lease_expires_at) VALUES (?1, 0, ?2, ?4)
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                                     lease_expires_at = excluded.lease_expires_at
    WHERE event_relays.holder IS NULL
       OR event_relays.holder = excluded.holder
       OR event_relays.lease_expires_at <= ?3
       OR NOT EXISTS (SELECT 1 FROM instances WHERE id = event_relays.holder)
    RETURNING position";

/// ?1 the relay, ?2 the holder, ?3 the position, ?4 the lease's end.
const ADVANCE: &str = "
    UPDATE event_relays SET position = max(position, ?3), lease_expires_at = ?4
    WHERE name = ?1 AND holder = ?2";

/// The [`RelayCursors`] of a SQLite database.
#[derive(Debug, Clone)]
pub(crate) struct SqliteRelayCursors {
    handle: Handle,
}

impl SqliteRelayCursors {
    pub(crate) fn new(handle: Handle) -> Self {
        Self { handle }
    }
}

#[async_trait]
impl RelayCursors for SqliteRelayCursors {
    async fn claim(
        &self,
        name: &str,
        holder: Uuid,
        lease: Duration,
    ) -> Result<Option<u64>, EventsUnavailable> {
        let name = name.to_owned();
        let now = Utc::now();
        let (now_text, expires) = (to_db_time(now), to_db_time(lease_end(now, lease)));
        self.handle
            .write(move |connection| {
                connection
                    .prepare_cached(CLAIM)
                    .and_then(|mut statement| {
                        statement
                            .query_row(params![name, holder.as_bytes(), now_text, expires], |row| {
                                row.get::<_, i64>(0)
                            })
                            .optional()
                    })
                    .map(|position| position.map(from_db_count))
                    .map_err(unavailable::<EventsUnavailable>)
            })
            .await
    }

    async fn advance(
        &self,
        name: &str,
        holder: Uuid,
        position: u64,
        lease: Duration,
    ) -> Result<bool, EventsUnavailable> {
        let name = name.to_owned();
        let expires = to_db_time(lease_end(Utc::now(), lease));
        let position = to_db_count(position);
        self.handle
            .write(move |connection| {
                connection
                    .prepare_cached(ADVANCE)
                    .and_then(|mut statement| {
                        statement.execute(params![name, holder.as_bytes(), position, expires])
                    })
                    .map(|updated| updated == 1)
                    .map_err(unavailable::<EventsUnavailable>)
            })
            .await
    }

    async fn release(&self, name: &str, holder: Uuid) -> Result<(), EventsUnavailable> {
        let name = name.to_owned();
        self.handle
            .write(move |connection| {
                connection
                    .prepare_cached(
                        "UPDATE event_relays SET holder = NULL, lease_expires_at = NULL
                         WHERE name = ?1 AND holder = ?2",
                    )
                    .and_then(|mut statement| statement.execute(params![name, holder.as_bytes()]))
                    .map(drop)
                    .map_err(unavailable::<EventsUnavailable>)
            })
            .await
    }
}
