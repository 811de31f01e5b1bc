//! [`SqliteEventLog`], and [`record`]: the outbox write every store's write job makes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::{Handle, corrupt, time_at, to_db_time, uuid_at};
use crate::codec::{from_db_count, to_db_count};
use crate::events::{
    Event, EventDirection, EventLog, EventPage, EventQuery, EventType, EventsUnavailable, NewEvent,
};
use crate::failure::{CorruptRow, unavailable};

/// ?1 the resource: its next sequence number.
const NEXT_SEQUENCE: &str = "
    INSERT INTO event_sequences (resource_id, last) VALUES (?1, 1)
    ON CONFLICT (resource_id) DO UPDATE SET last = last + 1
    RETURNING last";

const INSERT_EVENT: &str = "
    INSERT INTO events (id, type, resource_id, sequence, created_at, data)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

const COLUMNS: &str = "position, id, type, resource_id, sequence, created_at, data";

/// Records `events`, in order, on `connection`: call it inside the write job that makes
/// the change they describe, so both commit or neither does.
pub(crate) fn record(connection: &Connection, events: &[NewEvent]) -> rusqlite::Result<()> {
    for event in events {
        let sequence: i64 = connection
            .prepare_cached(NEXT_SEQUENCE)?
            .query_row([&event.resource_id], |row| row.get(0))?;
        connection.prepare_cached(INSERT_EVENT)?.execute(params![
            event.id.as_bytes(),
            event.event_type.as_str(),
            event.resource_id,
            sequence,
            to_db_time(event.created_at),
            event.data,
        ])?;
    }
    Ok(())
}

pub(crate) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let kind: String = row.get("type")?;
    let position: i64 = row.get("position")?;
    let sequence: i64 = row.get("sequence")?;
    Ok(Event {
        id: uuid_at(row, "id")?,
        position: Some(from_db_count(position)),
        event_type: EventType::parse(&kind).ok_or(corrupt(CorruptRow { what: "event type" }))?,
        resource_id: row.get("resource_id")?,
        sequence: from_db_count(sequence),
        created_at: time_at(row, "created_at")?,
        data: row.get("data")?,
    })
}

/// A page of the feed: ?1 the position to start from (`comparison` it), ?2 the types as a
/// JSON array or NULL, ?3 the resource or NULL, in `order` of position. It reads at most one
/// row more than the largest page and the caller stops after the rows it needs: SQLite
/// compiles a statement with a bound `LIMIT` again on every run that binds it.
pub(super) fn feed_statement(comparison: &str, order: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM events
         WHERE position {comparison} ?1
           AND (?2 IS NULL OR type IN (SELECT value FROM json_each(?2)))
           AND (?3 IS NULL OR resource_id = ?3)
         ORDER BY position {order} LIMIT 101"
    )
}

/// The events after position ?1, oldest first, with no `LIMIT` (see [`feed_statement`]):
/// `position` is the rowid, so the rows come in its order as they are read and the caller
/// stops after the ones it needs.
pub(super) fn after_statement() -> String {
    format!("SELECT {COLUMNS} FROM events WHERE position > ?1 ORDER BY position")
}

/// The [`EventLog`] of a SQLite database.
#[derive(Debug, Clone)]
pub(crate) struct SqliteEventLog {
    handle: Handle,
}

impl SqliteEventLog {
    pub(crate) fn new(handle: Handle) -> Self {
        Self { handle }
    }
}

#[async_trait]
impl EventLog for SqliteEventLog {
    async fn list(&self, query: &EventQuery) -> Result<EventPage, EventsUnavailable> {
        // The type filter as a JSON array of names, read with `json_each`; NULL for every type.
        let types = (!query.types.is_empty()).then(|| {
            let names: Vec<&str> = query
                .types
                .iter()
                .flat_map(|pattern| pattern.types())
                .map(EventType::as_str)
                .collect();
            serde_json::to_string(&names).unwrap_or_default()
        });
        let limit = query.limit.get() as usize;
        let (comparison, order, start) = match query.direction {
            EventDirection::NewestBefore(before) => {
                ("<", "DESC", before.map_or(i64::MAX, to_db_count))
            }
            EventDirection::OldestAfter(after) => (">", "ASC", to_db_count(after)),
        };
        let sql = feed_statement(comparison, order);
        let mut events = self.handle.read(|connection| {
            connection
                .prepare_cached(&sql)?
                .query_map(params![start, types, query.resource_id], event_from_row)?
                .take(limit + 1)
                .collect::<rusqlite::Result<Vec<Event>>>()
        })?;
        let has_more = events.len() > limit;
        events.truncate(limit);
        Ok(EventPage { events, has_more })
    }

    async fn get(&self, id: Uuid) -> Result<Option<Event>, EventsUnavailable> {
        self.handle.read(|connection| {
            connection
                .prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE id = ?1"))?
                .query_row([id.as_bytes()], event_from_row)
                .optional()
        })
    }

    async fn after(&self, position: u64, limit: usize) -> Result<Vec<Event>, EventsUnavailable> {
        self.handle.read(|connection| {
            connection
                .prepare_cached(&after_statement())?
                .query_map(params![to_db_count(position)], event_from_row)?
                .take(limit)
                .collect()
        })
    }

    async fn sequence(&self) -> Result<u64, EventsUnavailable> {
        // Positions are given when events are recorded.
        Ok(0)
    }

    async fn last_position(&self) -> Result<u64, EventsUnavailable> {
        // The newest event is never purged, so this is the highest position ever given.
        let last: Option<i64> = self.handle.read(|connection| {
            connection
                .prepare_cached("SELECT max(position) FROM events")?
                .query_row([], |row| row.get(0))
        })?;
        Ok(last.map_or(0, from_db_count))
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, EventsUnavailable> {
        // Oldest first, in batches, so that the writer is never held for long; a batch
        // stops at the first event not older than `before` (positions follow recording
        // time), and the newest event is always kept, so that positions (SQLite gives
        // the highest one plus one) are never given twice.
        const BATCH: i64 = 5_000;
        let before = to_db_time(before);
        let mut purged = 0;
        loop {
            let before = before.clone();
            let deleted = self
                .handle
                .write_background(move |connection| {
                    purge_batch(connection, &before, BATCH)
                        .map_err(unavailable::<EventsUnavailable>)
                })
                .await?;
            purged += deleted;
            if deleted < BATCH as u64 {
                return Ok(purged);
            }
        }
    }
}

/// Deletes up to `batch` of the oldest events recorded before `before`, never the newest
/// event; answers how many.
fn purge_batch(connection: &Connection, before: &str, batch: i64) -> rusqlite::Result<u64> {
    let oldest: Vec<(i64, String)> = connection
        .prepare_cached("SELECT position, created_at FROM events ORDER BY position LIMIT ?1")?
        .query_map([batch], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let Some(last) = oldest
        .iter()
        .take_while(|(_, created_at)| created_at.as_str() < before)
        .map(|(position, _)| *position)
        .last()
    else {
        return Ok(0);
    };
    let deleted = connection
        .prepare_cached(
            "DELETE FROM events
             WHERE position <= ?1 AND position < (SELECT max(position) FROM events)",
        )?
        .execute([last])?;
    Ok(deleted as u64)
}
