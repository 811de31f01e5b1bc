//! [`PgEventLog`] with its sequencer, and [`record`]: the outbox write every store's
//! transaction makes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, PgPool, Postgres, Row as _};
use uuid::Uuid;

use crate::codec::{from_db_count, to_db_count};
use crate::events::{
    Event, EventDirection, EventLog, EventPage, EventQuery, EventType, EventsUnavailable, NewEvent,
};
use crate::failure::{CorruptRow, unavailable};

/// One statement: the resource's next sequence number, and the event with it. $1 the id,
/// $2 the type, $3 the resource, $4 the time, $5 the data.
///
/// Other statements can record an event in the same statement as their change with the
/// same two steps as CTEs (see the order store).
pub(crate) const INSERT_EVENT: &str = "
    WITH sequence AS (
        INSERT INTO event_sequences (resource_id, last) VALUES ($3, 1)
        ON CONFLICT (resource_id) DO UPDATE SET last = event_sequences.last + 1
        RETURNING last
    )
    INSERT INTO events (id, type, resource_id, sequence, created_at, data)
    SELECT $1, $2, $3, sequence.last, $4, $5::json FROM sequence";

const COLUMNS: &str = "position, id, type, resource_id, sequence, created_at, data::text AS data";

/// The key of the advisory lock the sequencer holds while it numbers events (`events` in
/// ASCII), so that one instance at a time numbers.
const SEQUENCER_LOCK: i64 = 0x6576_656e_7473;

/// Numbers up to 10,000 committed events without a position, in id order, after the
/// highest position given. Run only under [`SEQUENCER_LOCK`].
const SEQUENCE: &str = "
    WITH base AS (SELECT coalesce(max(position), 0) AS last FROM events),
    pending AS (
        SELECT id, row_number() OVER (ORDER BY id) AS n
        FROM (SELECT id FROM events WHERE position IS NULL ORDER BY id LIMIT 10000) AS p
    )
    UPDATE events SET position = base.last + pending.n
    FROM base, pending WHERE events.id = pending.id";

/// Binds the five parameters of `event` that [`INSERT_EVENT`] and the statements recording
/// an event in CTEs take last, in this order: id, type, resource, time, data.
pub(crate) fn bind_event<'q>(
    query: Query<'q, Postgres, PgArguments>,
    event: &'q NewEvent,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(event.id)
        .bind(event.event_type.as_str())
        .bind(&event.resource_id)
        .bind(event.created_at)
        .bind(&event.data)
}

/// Records `events`, in order, on `connection`: call it inside the transaction that makes
/// the change they describe, so both commit or neither does. One statement per event: two
/// events of one resource cannot share a statement (its `event_sequences` row would be
/// upserted twice).
pub(crate) async fn record(
    connection: &mut PgConnection,
    events: &[NewEvent],
) -> Result<(), sqlx::Error> {
    for event in events {
        bind_event(sqlx::query(INSERT_EVENT), event)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

fn event_from_row(row: &PgRow) -> Result<Event, EventsUnavailable> {
    let read = || -> Result<Event, sqlx::Error> {
        let kind: String = row.try_get("type")?;
        let position: Option<i64> = row.try_get("position")?;
        let sequence: i64 = row.try_get("sequence")?;
        Ok(Event {
            id: row.try_get("id")?,
            position: position.map(from_db_count),
            event_type: EventType::parse(&kind).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "type".to_owned(),
                source: Box::new(CorruptRow { what: "event type" }),
            })?,
            resource_id: row.try_get("resource_id")?,
            sequence: from_db_count(sequence),
            created_at: row.try_get("created_at")?,
            data: row.try_get("data")?,
        })
    };
    read().map_err(unavailable)
}

/// The [`EventLog`] of a PostgreSQL database.
#[derive(Debug, Clone)]
pub(crate) struct PgEventLog {
    pool: PgPool,
}

impl PgEventLog {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl EventLog for PgEventLog {
    async fn list(&self, query: &EventQuery) -> Result<EventPage, EventsUnavailable> {
        let types: Option<Vec<&'static str>> = (!query.types.is_empty()).then(|| {
            query
                .types
                .iter()
                .flat_map(|pattern| pattern.types())
                .map(EventType::as_str)
                .collect()
        });
        let limit = query.limit.get() as usize;
        let (comparison, order, start) = match query.direction {
            EventDirection::NewestBefore(before) => {
                ("<", "DESC", before.map_or(i64::MAX, to_db_count))
            }
            EventDirection::OldestAfter(after) => (">", "ASC", to_db_count(after)),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM events
             WHERE position {comparison} $1
               AND ($2::text[] IS NULL OR type = ANY($2))
               AND ($3::text IS NULL OR resource_id = $3)
             ORDER BY position {order} LIMIT $4"
        );
        // Built only from the constants above.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(start)
            .bind(types)
            .bind(&query.resource_id)
            .bind((limit + 1) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable::<EventsUnavailable>)?;
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let has_more = events.len() > limit;
        events.truncate(limit);
        Ok(EventPage { events, has_more })
    }

    async fn get(&self, id: Uuid) -> Result<Option<Event>, EventsUnavailable> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM events WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable::<EventsUnavailable>)?;
        row.as_ref().map(event_from_row).transpose()
    }

    async fn after(&self, position: u64, limit: usize) -> Result<Vec<Event>, EventsUnavailable> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
        )))
        .bind(to_db_count(position))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable::<EventsUnavailable>)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn sequence(&self) -> Result<u64, EventsUnavailable> {
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(unavailable::<EventsUnavailable>)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .fetch_one(&mut *transaction)
            .await
            .map_err(unavailable::<EventsUnavailable>)?;
        if !locked {
            // Another instance is numbering; what it numbers is in the feed for everyone.
            return Ok(0);
        }
        let numbered = sqlx::query(SEQUENCE)
            .execute(&mut *transaction)
            .await
            .map_err(unavailable::<EventsUnavailable>)?
            .rows_affected();
        transaction
            .commit()
            .await
            .map_err(unavailable::<EventsUnavailable>)?;
        Ok(numbered)
    }

    async fn last_position(&self) -> Result<u64, EventsUnavailable> {
        let last: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable::<EventsUnavailable>)?;
        Ok(last.map_or(0, from_db_count))
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, EventsUnavailable> {
        // Never the highest numbered event, so that `max(position)` (where the sequencer
        // goes on) never goes back; in batches, so that no lock is held for long.
        const BATCH: i64 = 5_000;
        let mut purged = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM events WHERE id IN (
                    SELECT id FROM events
                    WHERE created_at < $1 AND position IS NOT NULL
                      AND position < (SELECT max(position) FROM events)
                    LIMIT $2)",
            )
            .bind(before)
            .bind(BATCH)
            .execute(&self.pool)
            .await
            .map_err(unavailable::<EventsUnavailable>)?
            .rows_affected();
            purged += deleted;
            if deleted < BATCH as u64 {
                return Ok(purged);
            }
        }
    }
}
