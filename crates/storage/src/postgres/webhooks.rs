//! [`PgWebhookStore`]: webhook endpoints, deliveries and attempts in PostgreSQL, for
//! several instances at once.
//!
//! A fan-out holds its endpoint's row (`FOR UPDATE SKIP LOCKED`: an instance finding it
//! held skips it) and moves the cursor only from where it read it, in the transaction that
//! inserts the deliveries; a claim takes due rows with `FOR UPDATE SKIP LOCKED` and marks
//! them with the claimer and the claim's end, so two instances never send one delivery at
//! the same time, and a dead instance's claims are taken over once they run out.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row as _};
use uuid::Uuid;

use crate::codec::{
    ClaimRow, event_types, event_types_text, from_db_count, outcome_columns, to_db_count,
};
use crate::events::webhooks::{
    AttemptOutcome, AttemptPage, ClaimedDelivery, DeliveryAttempt, EndpointChanges, NewDelivery,
    PURGE_BATCH, PendingAge, WebhookEndpoint, WebhookSecret, WebhookStore, WebhooksUnavailable,
};
use crate::failure::{CorruptRow, finish, unavailable};
use crate::sql::webhooks::{
    ADVANCE_CURSOR, CLEAR_FAILING, DELETE_ENDPOINT, DISABLE_ENDPOINT, ENDPOINTS_BEHIND,
    FAILING_SINCE, FINISH_ATTEMPT, GET_ENDPOINT, INSERT_ATTEMPT, INSERT_DELIVERY, INSERT_ENDPOINT,
    LIST_ATTEMPTS, LIST_ENDPOINTS, PENDING_AGES, PURGE_FINISHED, ROTATE_SECRET, START_FAILING,
    UPDATE_ENDPOINT, claim_due,
};

/// A [`WebhookStore`] in PostgreSQL.
#[derive(Debug, Clone)]
pub(crate) struct PgWebhookStore {
    pool: PgPool,
}

impl PgWebhookStore {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

type Result<T> = std::result::Result<T, WebhooksUnavailable>;

fn failed(error: sqlx::Error) -> WebhooksUnavailable {
    unavailable(error)
}

fn endpoint_from_row(row: &PgRow) -> Result<WebhookEndpoint> {
    let read = || -> std::result::Result<WebhookEndpoint, sqlx::Error> {
        let types: String = row.try_get("event_types")?;
        let previous: Option<String> = row.try_get("previous_secret")?;
        let previous_until: Option<DateTime<Utc>> = row.try_get("previous_secret_until")?;
        let cursor: i64 = row.try_get("cursor")?;
        Ok(WebhookEndpoint {
            id: row.try_get("id")?,
            url: row.try_get("url")?,
            description: row.try_get("description")?,
            event_types: event_types(&types).map_err(|error| sqlx::Error::ColumnDecode {
                index: "event_types".to_owned(),
                source: Box::new(error),
            })?,
            enabled: row.try_get("enabled")?,
            disabled_reason: row.try_get("disabled_reason")?,
            secret: WebhookSecret::new(row.try_get("secret")?),
            previous_secret: previous
                .zip(previous_until)
                .map(|(secret, until)| (WebhookSecret::new(secret), until)),
            created_at: row.try_get("created_at")?,
            cursor: from_db_count(cursor),
            failing_since: row.try_get("failing_since")?,
        })
    };
    read().map_err(failed)
}

fn attempt_from_row(row: &PgRow) -> Result<DeliveryAttempt> {
    let read = || -> std::result::Result<DeliveryAttempt, sqlx::Error> {
        let status: Option<i32> = row.try_get("status_code")?;
        let duration: i64 = row.try_get("duration_ms")?;
        Ok(DeliveryAttempt {
            id: row.try_get("id")?,
            delivery_id: row.try_get("delivery_id")?,
            endpoint_id: row.try_get("endpoint_id")?,
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            attempted_at: row.try_get("attempted_at")?,
            status_code: status.and_then(|status| u16::try_from(status).ok()),
            error: row.try_get("error")?,
            duration_ms: from_db_count(duration),
        })
    };
    read().map_err(failed)
}

async fn endpoint_on(connection: &mut PgConnection, id: Uuid) -> Result<Option<WebhookEndpoint>> {
    sqlx::query(GET_ENDPOINT)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await
        .map_err(failed)?
        .as_ref()
        .map(endpoint_from_row)
        .transpose()
}

async fn insert_deliveries(
    connection: &mut PgConnection,
    deliveries: &[NewDelivery],
) -> Result<()> {
    for delivery in deliveries {
        sqlx::query(INSERT_DELIVERY)
            .bind(delivery.id)
            .bind(delivery.endpoint_id)
            .bind(delivery.event_id)
            .bind(&delivery.event_type)
            .bind(&delivery.body)
            .bind(delivery.created_at)
            .execute(&mut *connection)
            .await
            .map_err(failed)?;
    }
    Ok(())
}

#[async_trait]
impl WebhookStore for PgWebhookStore {
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        let (previous, until) = match &endpoint.previous_secret {
            Some((secret, until)) => (Some(secret.expose()), Some(*until)),
            None => (None, None),
        };
        sqlx::query(INSERT_ENDPOINT)
            .bind(endpoint.id)
            .bind(&endpoint.url)
            .bind(&endpoint.description)
            .bind(event_types_text(&endpoint.event_types))
            .bind(endpoint.enabled)
            .bind(&endpoint.disabled_reason)
            .bind(endpoint.secret.expose())
            .bind(previous)
            .bind(until)
            .bind(endpoint.created_at)
            .bind(to_db_count(endpoint.cursor))
            .bind(endpoint.failing_since)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn endpoint(&self, id: Uuid) -> Result<Option<WebhookEndpoint>> {
        let mut connection = self.pool.acquire().await.map_err(failed)?;
        endpoint_on(&mut connection, id).await
    }

    async fn list_endpoints(
        &self,
        after: Uuid,
        limit: usize,
    ) -> Result<(Vec<WebhookEndpoint>, bool)> {
        let rows = sqlx::query(LIST_ENDPOINTS)
            .bind(after)
            .bind((limit + 1) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(failed)?;
        let mut endpoints = rows
            .iter()
            .map(endpoint_from_row)
            .collect::<Result<Vec<_>>>()?;
        let has_more = endpoints.len() > limit;
        endpoints.truncate(limit);
        Ok((endpoints, has_more))
    }

    async fn update_endpoint(
        &self,
        id: Uuid,
        changes: &EndpointChanges,
    ) -> Result<Option<WebhookEndpoint>> {
        let mut connection = self.pool.acquire().await.map_err(failed)?;
        sqlx::query(UPDATE_ENDPOINT)
            .bind(&changes.url)
            .bind(&changes.description)
            .bind(changes.event_types.as_deref().map(event_types_text))
            .bind(changes.enabled)
            .bind(id)
            .execute(&mut *connection)
            .await
            .map_err(failed)?;
        endpoint_on(&mut connection, id).await
    }

    async fn delete_endpoint(&self, id: Uuid) -> Result<bool> {
        let deleted = sqlx::query(DELETE_ENDPOINT)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn rotate_secret(
        &self,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpoint>> {
        let mut connection = self.pool.acquire().await.map_err(failed)?;
        sqlx::query(ROTATE_SECRET)
            .bind(previous_until)
            .bind(secret.expose())
            .bind(id)
            .execute(&mut *connection)
            .await
            .map_err(failed)?;
        endpoint_on(&mut connection, id).await
    }

    async fn disable_endpoint(&self, id: Uuid, reason: &str) -> Result<()> {
        sqlx::query(DISABLE_ENDPOINT)
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn endpoints_behind(&self, last_position: u64) -> Result<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(ENDPOINTS_BEHIND)
            .bind(to_db_count(last_position))
            .fetch_all(&self.pool)
            .await
            .map_err(failed)?;
        rows.iter().map(endpoint_from_row).collect()
    }

    async fn fan_out(
        &self,
        endpoint_id: Uuid,
        from: u64,
        to: u64,
        deliveries: &[NewDelivery],
    ) -> Result<bool> {
        let mut transaction = self.pool.begin().await.map_err(failed)?;
        let result = async {
            // Held by another instance's fan-out: it does this work.
            let held: Option<i64> = sqlx::query_scalar(
                "SELECT cursor FROM webhook_endpoints WHERE id = $1 AND enabled
                 FOR UPDATE SKIP LOCKED",
            )
            .bind(endpoint_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(failed)?;
            if held != Some(to_db_count(from)) {
                return Ok(false);
            }
            sqlx::query(ADVANCE_CURSOR)
                .bind(to_db_count(to))
                .bind(endpoint_id)
                .bind(to_db_count(from))
                .execute(&mut *transaction)
                .await
                .map_err(failed)?;
            insert_deliveries(&mut transaction, deliveries).await?;
            Ok(true)
        }
        .await;
        finish(transaction, result).await
    }

    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<()> {
        let mut transaction = self.pool.begin().await.map_err(failed)?;
        let result = insert_deliveries(&mut transaction, deliveries).await;
        finish(transaction, result).await
    }

    async fn claim_due(
        &self,
        claimer: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>> {
        let mut connection = self.pool.acquire().await.map_err(failed)?;
        // Built only from constants.
        let rows = sqlx::query(sqlx::AssertSqlSafe(claim_due(
            "FOR UPDATE OF d SKIP LOCKED",
        )))
        .bind(claimer)
        .bind(until)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&mut *connection)
        .await
        .map_err(failed)?;
        let mut endpoints: HashMap<Uuid, WebhookEndpoint> = HashMap::new();
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let read = || -> std::result::Result<ClaimRow, sqlx::Error> {
                Ok(ClaimRow {
                    id: row.try_get("id")?,
                    endpoint_id: row.try_get("endpoint_id")?,
                    event_id: row.try_get("event_id")?,
                    event_type: row.try_get("event_type")?,
                    body: row.try_get("body")?,
                    attempts: i64::from(row.try_get::<i32, _>("attempts")?),
                    created_at: row.try_get("created_at")?,
                })
            };
            let row = read().map_err(failed)?;
            let endpoint = match endpoints.get(&row.endpoint_id) {
                Some(endpoint) => endpoint.clone(),
                None => {
                    let endpoint = endpoint_on(&mut connection, row.endpoint_id)
                        .await?
                        .ok_or_else(|| {
                            unavailable::<WebhooksUnavailable>(CorruptRow {
                                what: "webhook endpoint",
                            })
                        })?;
                    endpoints.insert(row.endpoint_id, endpoint.clone());
                    endpoint
                }
            };
            claimed.push(row.with_endpoint(endpoint));
        }
        Ok(claimed)
    }

    async fn record_attempts(
        &self,
        attempts: &[(DeliveryAttempt, AttemptOutcome)],
    ) -> Result<Vec<Option<DateTime<Utc>>>> {
        let mut transaction = self.pool.begin().await.map_err(failed)?;
        let result = async {
            let mut answers = Vec::with_capacity(attempts.len());
            for (attempt, outcome) in attempts {
                answers.push(record_attempt(&mut transaction, attempt, *outcome).await?);
            }
            Ok(answers)
        }
        .await;
        finish(transaction, result).await
    }

    async fn attempts(
        &self,
        endpoint_id: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<AttemptPage> {
        let rows = sqlx::query(LIST_ATTEMPTS)
            .bind(endpoint_id)
            .bind(before.unwrap_or(Uuid::max()))
            .bind((limit + 1) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(failed)?;
        let mut attempts = rows
            .iter()
            .map(attempt_from_row)
            .collect::<Result<Vec<_>>>()?;
        let has_more = attempts.len() > limit;
        attempts.truncate(limit);
        Ok(AttemptPage { attempts, has_more })
    }

    async fn pending_ages(&self) -> Result<HashMap<Uuid, PendingAge>> {
        let rows = sqlx::query(PENDING_AGES)
            .fetch_all(&self.pool)
            .await
            .map_err(failed)?;
        rows.iter()
            .map(|row| {
                let pending: i64 = row.try_get("pending").map_err(failed)?;
                Ok((
                    row.try_get("endpoint_id").map_err(failed)?,
                    PendingAge {
                        pending: from_db_count(pending),
                        oldest: row.try_get("oldest").map_err(failed)?,
                    },
                ))
            })
            .collect()
    }

    async fn purge_finished(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut purged = 0;
        loop {
            let deleted = sqlx::query(PURGE_FINISHED)
                .bind(before)
                .bind(to_db_count(PURGE_BATCH))
                .execute(&self.pool)
                .await
                .map_err(failed)?
                .rows_affected();
            purged += deleted;
            if deleted < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }
}

/// One attempt of [`WebhookStore::record_attempts`], in the caller's transaction.
async fn record_attempt(
    connection: &mut PgConnection,
    attempt: &DeliveryAttempt,
    outcome: AttemptOutcome,
) -> Result<Option<DateTime<Utc>>> {
    sqlx::query(INSERT_ATTEMPT)
        .bind(attempt.id)
        .bind(attempt.delivery_id)
        .bind(attempt.endpoint_id)
        .bind(attempt.event_id)
        .bind(&attempt.event_type)
        .bind(attempt.attempted_at)
        .bind(attempt.status_code.map(i32::from))
        .bind(&attempt.error)
        .bind(to_db_count(attempt.duration_ms))
        .execute(&mut *connection)
        .await
        .map_err(failed)?;
    let (state, next) = outcome_columns(outcome, attempt.attempted_at);
    sqlx::query(FINISH_ATTEMPT)
        .bind(state.as_str())
        .bind(next)
        .bind(attempt.delivery_id)
        .execute(&mut *connection)
        .await
        .map_err(failed)?;
    if outcome == AttemptOutcome::Succeeded {
        sqlx::query(CLEAR_FAILING)
            .bind(attempt.endpoint_id)
            .execute(&mut *connection)
            .await
            .map_err(failed)?;
    } else {
        sqlx::query(START_FAILING)
            .bind(attempt.attempted_at)
            .bind(attempt.endpoint_id)
            .execute(&mut *connection)
            .await
            .map_err(failed)?;
    }
    let since: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(FAILING_SINCE)
        .bind(attempt.endpoint_id)
        .fetch_optional(&mut *connection)
        .await
        .map_err(failed)?;
    Ok(since.flatten())
}
