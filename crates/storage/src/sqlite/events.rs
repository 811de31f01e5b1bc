//! [`SqliteEventLog`], and [`record`]: the outbox write every store's write job makes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::{Handle, corrupt, time_at, to_db_time, uuid_at};
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
        position: Some(u64::try_from(position).unwrap_or_default()),
        event_type: EventType::parse(&kind).ok_or(corrupt(CorruptRow { what: "event type" }))?,
        resource_id: row.get("resource_id")?,
        sequence: u64::try_from(sequence).unwrap_or_default(),
        created_at: time_at(row, "created_at")?,
        data: row.get("data")?,
    })
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

/// A position as SQLite stores it (saturating: positions never come near `i64::MAX`).
fn position_parameter(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
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
                ("<", "DESC", before.map_or(i64::MAX, position_parameter))
            }
            EventDirection::OldestAfter(after) => (">", "ASC", position_parameter(after)),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM events
             WHERE position {comparison} ?1
               AND (?2 IS NULL OR type IN (SELECT value FROM json_each(?2)))
               AND (?3 IS NULL OR resource_id = ?3)
             ORDER BY position {order} LIMIT ?4"
        );
        let mut events = self.handle.read(|connection| {
            connection
                .prepare_cached(&sql)?
                .query_map(
                    params![start, types, query.resource_id, (limit + 1) as i64],
                    event_from_row,
                )?
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
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
                ))?
                .query_map(
                    params![position_parameter(position), limit as i64],
                    event_from_row,
                )?
                .collect()
        })
    }

    async fn sequence(&self) -> Result<u64, EventsUnavailable> {
        // Positions are given when events are recorded.
        Ok(0)
    }

    async fn last_position(&self) -> Result<u64, EventsUnavailable> {
        let last: Option<i64> = self.handle.read(|connection| {
            // AUTOINCREMENT keeps the highest position ever given in `sqlite_sequence`,
            // also after the newest events were purged.
            connection
                .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")?
                .query_row([], |row| row.get(0))
                .optional()
        })?;
        Ok(last.map_or(0, |last| u64::try_from(last).unwrap_or_default()))
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, EventsUnavailable> {
        // In batches, so that the writer is never held for long.
        const BATCH: usize = 5_000;
        let before = to_db_time(before);
        let mut purged = 0;
        loop {
            let before = before.clone();
            let deleted = self
                .handle
                .write(move |connection| {
                    connection
                        .prepare_cached(
                            "DELETE FROM events WHERE position IN
                                (SELECT position FROM events WHERE created_at < ?1 LIMIT ?2)",
                        )
                        .and_then(|mut statement| statement.execute(params![before, BATCH as i64]))
                        .map_err(unavailable::<EventsUnavailable>)
                })
                .await?;
            purged += deleted as u64;
            if deleted < BATCH {
                return Ok(purged);
            }
        }
    }
}
