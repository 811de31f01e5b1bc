//! [`PgIdempotencyStore`]: idempotency records in PostgreSQL, shared by every instance.

use async_trait::async_trait;
use bookstore_sales::CustomerId;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row as _};

use crate::InstanceId;
use crate::failure::{BoxError, CorruptRow};
use crate::idempotency::{
    Claim, Fingerprint, IDEMPOTENCY_IN_FLIGHT_TIMEOUT, IDEMPOTENCY_RETENTION, IdempotencyStore,
    IdempotencyUnavailable, StoredResponse, expiry,
};
use crate::sql::idempotency::{
    COMPLETE_CLAIM, INSERT_CLAIM, PURGE_EXPIRED, READ_CLAIM, RELEASE_CLAIM, RESUME_CLAIM,
    TAKE_OVER_CLAIM,
};

/// An [`IdempotencyStore`] in PostgreSQL.
///
/// A claim is atomic across instances: `INSERT ... ON CONFLICT DO NOTHING` creates the
/// record, a conditional `UPDATE` resumes the claim of a stopped instance or takes over an
/// expired record; only if none changes anything is the existing record read and answered.
#[derive(Debug, Clone)]
pub(crate) struct PgIdempotencyStore {
    pool: PgPool,
    instance: InstanceId,
}

impl PgIdempotencyStore {
    pub(crate) fn new(pool: PgPool, instance: InstanceId) -> Self {
        Self { pool, instance }
    }
}

fn failed(error: sqlx::Error) -> IdempotencyUnavailable {
    IdempotencyUnavailable(Box::new(error))
}

#[async_trait]
impl IdempotencyStore for PgIdempotencyStore {
    async fn claim(
        &self,
        owner: &CustomerId,
        key: &str,
        fingerprint: Fingerprint,
        now: DateTime<Utc>,
    ) -> Result<Claim, IdempotencyUnavailable> {
        let owner = owner.as_str();
        let fingerprint = fingerprint.as_bytes();
        let in_flight_until = expiry(now, IDEMPOTENCY_IN_FLIGHT_TIMEOUT);
        let instance = self.instance.as_uuid();
        loop {
            let inserted = sqlx::query(INSERT_CLAIM)
                .bind(owner)
                .bind(key)
                .bind(&fingerprint[..])
                .bind(in_flight_until)
                .bind(instance)
                .execute(&self.pool)
                .await
                .map_err(failed)?;
            if inserted.rows_affected() == 1 {
                return Ok(Claim::Started);
            }
            let resumed = sqlx::query(RESUME_CLAIM)
                .bind(in_flight_until)
                .bind(instance)
                .bind(owner)
                .bind(key)
                .bind(&fingerprint[..])
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(failed)?;
            if resumed.rows_affected() == 1 {
                return Ok(Claim::Resumed);
            }
            let taken_over = sqlx::query(TAKE_OVER_CLAIM)
                .bind(&fingerprint[..])
                .bind(in_flight_until)
                .bind(instance)
                .bind(owner)
                .bind(key)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(failed)?;
            if taken_over.rows_affected() == 1 {
                return Ok(Claim::Started);
            }
            let row = sqlx::query(READ_CLAIM)
                .bind(owner)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(failed)?;
            // Released between the statements: claim it afresh.
            let Some(row) = row else { continue };
            return claim_from_row(&row, fingerprint).map_err(IdempotencyUnavailable);
        }
    }

    async fn complete(
        &self,
        owner: &CustomerId,
        key: &str,
        response: StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<(), IdempotencyUnavailable> {
        sqlx::query(COMPLETE_CLAIM)
            .bind(expiry(now, IDEMPOTENCY_RETENTION))
            .bind(i64::from(response.status))
            .bind(response.content_type.as_str())
            .bind(response.location.as_deref())
            .bind(response.body.as_slice())
            .bind(owner.as_str())
            .bind(key)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn release(&self, owner: &CustomerId, key: &str) -> Result<(), IdempotencyUnavailable> {
        sqlx::query(RELEASE_CLAIM)
            .bind(owner.as_str())
            .bind(key)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, IdempotencyUnavailable> {
        let purged = sqlx::query(PURGE_EXPIRED)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(usize::try_from(purged.rows_affected()).unwrap_or(usize::MAX))
    }
}

/// The answer to a claim that found a live record of the key (`READ_CLAIM`'s row).
fn claim_from_row(row: &PgRow, fingerprint: [u8; 32]) -> Result<Claim, BoxError> {
    let stored_fingerprint: Vec<u8> = row.try_get("fingerprint")?;
    if stored_fingerprint != fingerprint {
        return Ok(Claim::Mismatch);
    }
    let state: String = row.try_get("state")?;
    match state.as_str() {
        "in_flight" => Ok(Claim::InFlight),
        "finished" => Ok(Claim::Replay(crate::codec::stored_response(
            row.try_get("status")?,
            row.try_get("content_type")?,
            row.try_get("location")?,
            row.try_get("body")?,
        )?)),
        _ => Err(Box::new(CorruptRow {
            what: "idempotency state",
        })),
    }
}
