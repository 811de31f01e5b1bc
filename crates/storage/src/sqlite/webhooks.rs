//! [`SqliteWebhookStore`]: webhook endpoints, deliveries and attempts in SQLite.
//!
//! One writer: a fan-out (cursor check, deliveries, cursor move) and a claim are each one
//! write job, so nothing comes between their read and their write.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::{Handle, corrupt, optional_time_at, time_at, to_db_time, uuid_at};
use crate::codec::{ClaimRow, from_db_count, outcome_columns, to_db_count};
use crate::events::webhooks::{
    AttemptOutcome, AttemptPage, ClaimedDelivery, DeliveryAttempt, EndpointChanges, NewDelivery,
    PURGE_BATCH, PendingAge, WebhookEndpoint, WebhookSecret, WebhookStore, WebhooksUnavailable,
};
use crate::failure::{CorruptRow, unavailable};
use crate::sql::webhooks::{
    ADVANCE_CURSOR, CLEAR_FAILING, DELETE_ENDPOINT, DISABLE_ENDPOINT, ENDPOINTS_BEHIND,
    FAILING_SINCE, FINISH_ATTEMPT, GET_ENDPOINT, INSERT_ATTEMPT, INSERT_DELIVERY, INSERT_ENDPOINT,
    LIST_ATTEMPTS, LIST_ENDPOINTS, PENDING_AGES, PURGE_FINISHED, ROTATE_SECRET, START_FAILING,
    UPDATE_ENDPOINT, claim_due,
};

/// A [`WebhookStore`] in SQLite.
#[derive(Debug, Clone)]
pub(crate) struct SqliteWebhookStore {
    handle: Handle,
}

impl SqliteWebhookStore {
    pub(crate) fn new(handle: Handle) -> Self {
        Self { handle }
    }
}

type Result<T> = std::result::Result<T, WebhooksUnavailable>;

fn endpoint_from_row(row: &Row<'_>) -> rusqlite::Result<WebhookEndpoint> {
    let event_types: String = row.get("event_types")?;
    let previous: Option<String> = row.get("previous_secret")?;
    let previous_until = optional_time_at(row, "previous_secret_until")?;
    let cursor: i64 = row.get("cursor")?;
    Ok(WebhookEndpoint {
        id: uuid_at(row, "id")?,
        url: row.get("url")?,
        description: row.get("description")?,
        event_types: crate::codec::event_types(&event_types).map_err(corrupt)?,
        enabled: row.get("enabled")?,
        disabled_reason: row.get("disabled_reason")?,
        secret: WebhookSecret::new(row.get("secret")?),
        previous_secret: previous
            .zip(previous_until)
            .map(|(secret, until)| (WebhookSecret::new(secret), until)),
        created_at: time_at(row, "created_at")?,
        cursor: from_db_count(cursor),
        failing_since: optional_time_at(row, "failing_since")?,
    })
}

fn attempt_from_row(row: &Row<'_>) -> rusqlite::Result<DeliveryAttempt> {
    let status: Option<i64> = row.get("status_code")?;
    let duration: i64 = row.get("duration_ms")?;
    Ok(DeliveryAttempt {
        id: uuid_at(row, "id")?,
        delivery_id: uuid_at(row, "delivery_id")?,
        endpoint_id: uuid_at(row, "endpoint_id")?,
        event_id: uuid_at(row, "event_id")?,
        event_type: row.get("event_type")?,
        attempted_at: time_at(row, "attempted_at")?,
        status_code: status.and_then(|status| u16::try_from(status).ok()),
        error: row.get("error")?,
        duration_ms: from_db_count(duration),
    })
}

fn endpoint_in(connection: &Connection, id: Uuid) -> rusqlite::Result<Option<WebhookEndpoint>> {
    connection
        .prepare_cached(GET_ENDPOINT)?
        .query_row([id.as_bytes()], endpoint_from_row)
        .optional()
}

fn insert_deliveries(connection: &Connection, deliveries: &[NewDelivery]) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(INSERT_DELIVERY)?;
    for delivery in deliveries {
        statement.execute(params![
            delivery.id.as_bytes(),
            delivery.endpoint_id.as_bytes(),
            delivery.event_id.as_bytes(),
            delivery.event_type,
            delivery.body,
            to_db_time(delivery.created_at),
        ])?;
    }
    Ok(())
}

/// Runs `job` as one write job, its SQLite errors as [`WebhooksUnavailable`].
async fn write<T: Send + 'static>(
    handle: &Handle,
    job: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T> {
    handle
        .write(move |connection| job(connection).map_err(unavailable::<WebhooksUnavailable>))
        .await
}

/// [`write`] in the background queue: the dispatcher's work (fan-out, claims, attempts)
/// and the purge wait behind the requests' writes.
async fn write_background<T: Send + 'static>(
    handle: &Handle,
    job: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T> {
    handle
        .write_background(move |connection| {
            job(connection).map_err(unavailable::<WebhooksUnavailable>)
        })
        .await
}

#[async_trait]
impl WebhookStore for SqliteWebhookStore {
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let endpoint = endpoint.clone();
        write(&self.handle, move |connection| {
            let (previous, until) = match &endpoint.previous_secret {
                Some((secret, until)) => (Some(secret.expose().to_owned()), Some(*until)),
                None => (None, None),
            };
            connection
                .prepare_cached(INSERT_ENDPOINT)?
                .execute(params![
                    endpoint.id.as_bytes(),
                    endpoint.url,
                    endpoint.description,
                    crate::codec::event_types_text(&endpoint.event_types),
                    endpoint.enabled,
                    endpoint.disabled_reason,
                    endpoint.secret.expose(),
                    previous,
                    until.map(to_db_time),
                    to_db_time(endpoint.created_at),
                    to_db_count(endpoint.cursor),
                    endpoint.failing_since.map(to_db_time),
                ])?;
            Ok(())
        })
        .await
    }

    async fn endpoint(&self, id: Uuid) -> Result<Option<WebhookEndpoint>> {
        self.handle.read(|connection| endpoint_in(connection, id))
    }

    async fn list_endpoints(
        &self,
        after: Uuid,
        limit: usize,
    ) -> Result<(Vec<WebhookEndpoint>, bool)> {
        let mut endpoints: Vec<WebhookEndpoint> = self.handle.read(|connection| {
            connection
                .prepare_cached(LIST_ENDPOINTS)?
                .query_map(
                    params![after.as_bytes(), (limit + 1) as i64],
                    endpoint_from_row,
                )?
                .collect()
        })?;
        let has_more = endpoints.len() > limit;
        endpoints.truncate(limit);
        Ok((endpoints, has_more))
    }

    async fn update_endpoint(
        &self,
        id: Uuid,
        changes: &EndpointChanges,
    ) -> Result<Option<WebhookEndpoint>> {
        let changes = changes.clone();
        write(&self.handle, move |connection| {
            connection
                .prepare_cached(UPDATE_ENDPOINT)?
                .execute(params![
                    changes.url,
                    changes.description,
                    changes
                        .event_types
                        .as_deref()
                        .map(crate::codec::event_types_text),
                    changes.enabled,
                    id.as_bytes(),
                ])?;
            endpoint_in(connection, id)
        })
        .await
    }

    async fn delete_endpoint(&self, id: Uuid) -> Result<bool> {
        write(&self.handle, move |connection| {
            Ok(connection
                .prepare_cached(DELETE_ENDPOINT)?
                .execute([id.as_bytes()])?
                == 1)
        })
        .await
    }

    async fn rotate_secret(
        &self,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpoint>> {
        let secret = secret.clone();
        write(&self.handle, move |connection| {
            connection.prepare_cached(ROTATE_SECRET)?.execute(params![
                to_db_time(previous_until),
                secret.expose(),
                id.as_bytes(),
            ])?;
            endpoint_in(connection, id)
        })
        .await
    }

    async fn disable_endpoint(&self, id: Uuid, reason: &str) -> Result<()> {
        let reason = reason.to_owned();
        write(&self.handle, move |connection| {
            connection
                .prepare_cached(DISABLE_ENDPOINT)?
                .execute(params![reason, id.as_bytes()])?;
            Ok(())
        })
        .await
    }

    async fn endpoints_behind(&self, last_position: u64) -> Result<Vec<WebhookEndpoint>> {
        self.handle.read(|connection| {
            connection
                .prepare_cached(ENDPOINTS_BEHIND)?
                .query_map([to_db_count(last_position)], endpoint_from_row)?
                .collect()
        })
    }

    async fn fan_out(
        &self,
        endpoint_id: Uuid,
        from: u64,
        to: u64,
        deliveries: &[NewDelivery],
    ) -> Result<bool> {
        let deliveries = deliveries.to_vec();
        write_background(&self.handle, move |connection| {
            let moved = connection.prepare_cached(ADVANCE_CURSOR)?.execute(params![
                to_db_count(to),
                endpoint_id.as_bytes(),
                to_db_count(from),
            ])?;
            if moved == 0 {
                return Ok(false);
            }
            insert_deliveries(connection, &deliveries)?;
            Ok(true)
        })
        .await
    }

    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<()> {
        let deliveries = deliveries.to_vec();
        write(&self.handle, move |connection| {
            insert_deliveries(connection, &deliveries)
        })
        .await
    }

    async fn claim_due(
        &self,
        claimer: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        write_background(&self.handle, move |connection| {
            let claimed: Vec<ClaimRow> = connection
                .prepare_cached(&claim_due(""))?
                .query_map(
                    params![
                        claimer.as_bytes(),
                        to_db_time(until),
                        to_db_time(now),
                        limit as i64
                    ],
                    |row| {
                        Ok(ClaimRow {
                            id: uuid_at(row, "id")?,
                            endpoint_id: uuid_at(row, "endpoint_id")?,
                            event_id: uuid_at(row, "event_id")?,
                            event_type: row.get("event_type")?,
                            body: row.get("body")?,
                            attempts: row.get("attempts")?,
                            created_at: time_at(row, "created_at")?,
                        })
                    },
                )?
                .collect::<rusqlite::Result<_>>()?;
            let mut endpoints: HashMap<Uuid, WebhookEndpoint> = HashMap::new();
            let mut answered = Vec::with_capacity(claimed.len());
            for row in claimed {
                let endpoint = match endpoints.get(&row.endpoint_id) {
                    Some(endpoint) => endpoint.clone(),
                    None => {
                        let endpoint =
                            endpoint_in(connection, row.endpoint_id)?.ok_or_else(|| {
                                corrupt(CorruptRow {
                                    what: "webhook endpoint",
                                })
                            })?;
                        endpoints.insert(row.endpoint_id, endpoint.clone());
                        endpoint
                    }
                };
                answered.push(row.with_endpoint(endpoint));
            }
            Ok(answered)
        })
        .await
    }

    async fn record_attempts(
        &self,
        attempts: &[(DeliveryAttempt, AttemptOutcome)],
    ) -> Result<Vec<Option<DateTime<Utc>>>> {
        let attempts = attempts.to_vec();
        write_background(&self.handle, move |connection| {
            attempts
                .iter()
                .map(|(attempt, outcome)| record_attempt(connection, attempt, *outcome))
                .collect()
        })
        .await
    }

    async fn attempts(
        &self,
        endpoint_id: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<AttemptPage> {
        let before = before.unwrap_or(Uuid::max());
        let mut attempts: Vec<DeliveryAttempt> = self.handle.read(|connection| {
            connection
                .prepare_cached(LIST_ATTEMPTS)?
                .query_map(
                    params![
                        endpoint_id.as_bytes(),
                        before.as_bytes(),
                        (limit + 1) as i64
                    ],
                    attempt_from_row,
                )?
                .collect()
        })?;
        let has_more = attempts.len() > limit;
        attempts.truncate(limit);
        Ok(AttemptPage { attempts, has_more })
    }

    async fn pending_ages(&self) -> Result<HashMap<Uuid, PendingAge>> {
        self.handle.read(|connection| {
            connection
                .prepare_cached(PENDING_AGES)?
                .query_map([], |row| {
                    let pending: i64 = row.get("pending")?;
                    Ok((
                        uuid_at(row, "endpoint_id")?,
                        PendingAge {
                            pending: from_db_count(pending),
                            oldest: optional_time_at(row, "oldest")?,
                        },
                    ))
                })?
                .collect()
        })
    }

    async fn purge_finished(&self, before: DateTime<Utc>) -> Result<u64> {
        let before = to_db_time(before);
        let mut purged = 0;
        loop {
            let before = before.clone();
            let deleted = write_background(&self.handle, move |connection| {
                Ok(connection
                    .prepare_cached(PURGE_FINISHED)?
                    .execute(params![before, to_db_count(PURGE_BATCH)])? as u64)
            })
            .await?;
            purged += deleted;
            if deleted < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }
}

/// One attempt of [`WebhookStore::record_attempts`].
fn record_attempt(
    connection: &Connection,
    attempt: &DeliveryAttempt,
    outcome: AttemptOutcome,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    connection.prepare_cached(INSERT_ATTEMPT)?.execute(params![
        attempt.id.as_bytes(),
        attempt.delivery_id.as_bytes(),
        attempt.endpoint_id.as_bytes(),
        attempt.event_id.as_bytes(),
        attempt.event_type,
        to_db_time(attempt.attempted_at),
        attempt.status_code,
        attempt.error,
        to_db_count(attempt.duration_ms),
    ])?;
    let (state, next) = outcome_columns(outcome, attempt.attempted_at);
    connection.prepare_cached(FINISH_ATTEMPT)?.execute(params![
        state.as_str(),
        to_db_time(next),
        attempt.delivery_id.as_bytes(),
    ])?;
    if outcome == AttemptOutcome::Succeeded {
        connection
            .prepare_cached(CLEAR_FAILING)?
            .execute([attempt.endpoint_id.as_bytes()])?;
    } else {
        connection.prepare_cached(START_FAILING)?.execute(params![
            to_db_time(attempt.attempted_at),
            attempt.endpoint_id.as_bytes(),
        ])?;
    }
    let since: Option<Option<DateTime<Utc>>> = connection
        .prepare_cached(FAILING_SINCE)?
        .query_row([attempt.endpoint_id.as_bytes()], |row| {
            optional_time_at(row, "failing_since")
        })
        .optional()?;
    Ok(since.flatten())
}
