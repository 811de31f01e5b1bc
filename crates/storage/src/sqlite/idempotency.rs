//! [`SqliteIdempotencyStore`]: idempotency records in SQLite.

use async_trait::async_trait;
use bookstore_sales::CustomerId;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Handle, to_db_time};
use crate::InstanceId;
use crate::codec;
use crate::failure::{BoxError, CorruptRow};
use crate::idempotency::{
    Claim, Fingerprint, IDEMPOTENCY_IN_FLIGHT_TIMEOUT, IDEMPOTENCY_RETENTION, IdempotencyStore,
    IdempotencyUnavailable, StoredResponse, expiry,
};
use crate::sql::idempotency::{
    COMPLETE_CLAIM, INSERT_CLAIM, PURGE_EXPIRED, READ_CLAIM, RELEASE_CLAIM, RESUME_CLAIM,
    TAKE_OVER_CLAIM,
};

/// An [`IdempotencyStore`] in SQLite: a claim is one write job (insert, resume, take over,
/// or read the record), so it is atomic.
#[derive(Debug, Clone)]
pub(crate) struct SqliteIdempotencyStore {
    handle: Handle,
    instance: InstanceId,
}

impl SqliteIdempotencyStore {
    pub(crate) fn new(handle: Handle, instance: InstanceId) -> Self {
        Self { handle, instance }
    }
}

fn failed(error: impl Into<BoxError>) -> IdempotencyUnavailable {
    IdempotencyUnavailable(error.into())
}

/// A live record of a key: its fingerprint, state and response columns.
type ClaimRow = (
    Vec<u8>,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
);

#[async_trait]
impl IdempotencyStore for SqliteIdempotencyStore {
    async fn claim(
        &self,
        owner: &CustomerId,
        key: &str,
        fingerprint: Fingerprint,
        now: DateTime<Utc>,
    ) -> Result<Claim, IdempotencyUnavailable> {
        let owner = owner.as_str().to_owned();
        let key = key.to_owned();
        let fingerprint = fingerprint.as_bytes();
        let in_flight_until = to_db_time(expiry(now, IDEMPOTENCY_IN_FLIGHT_TIMEOUT));
        let now = to_db_time(now);
        let instance = *self.instance.as_uuid().as_bytes();
        self.handle
            .write(move |connection| {
                claim_in(
                    connection,
                    ClaimParameters {
                        owner,
                        key,
                        fingerprint,
                        in_flight_until,
                        now,
                        instance,
                    },
                )
                .map_err(failed)?
                .map_err(failed)
            })
            .await
    }

    async fn complete(
        &self,
        owner: &CustomerId,
        key: &str,
        response: StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<(), IdempotencyUnavailable> {
        let owner = owner.as_str().to_owned();
        let key = key.to_owned();
        let expires = to_db_time(expiry(now, IDEMPOTENCY_RETENTION));
        self.handle
            .write(move |connection| {
                connection
                    .prepare_cached(COMPLETE_CLAIM)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            expires,
                            i64::from(response.status),
                            response.content_type,
                            response.location,
                            response.body,
                            owner,
                            key
                        ])
                    })
                    .map(drop)
                    .map_err(failed)
            })
            .await
    }

    async fn release(&self, owner: &CustomerId, key: &str) -> Result<(), IdempotencyUnavailable> {
        let owner = owner.as_str().to_owned();
        let key = key.to_owned();
        self.handle
            .write(move |connection| {
                connection
                    .prepare_cached(RELEASE_CLAIM)
                    .and_then(|mut statement| statement.execute(params![owner, key]))
                    .map(drop)
                    .map_err(failed)
            })
            .await
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, IdempotencyUnavailable> {
        let now = to_db_time(now);
        self.handle
            .write(move |connection| {
                connection
                    .prepare_cached(PURGE_EXPIRED)
                    .and_then(|mut statement| statement.execute([now]))
                    .map_err(failed)
            })
            .await
    }
}

/// What a claim binds.
struct ClaimParameters {
    owner: String,
    key: String,
    fingerprint: [u8; 32],
    in_flight_until: String,
    now: String,
    instance: [u8; 16],
}

/// Claims a key in one write job: insert the record, or resume the claim of a request that
/// died, or take over an expired record, or else answer from the record there.
fn claim_in(
    connection: &rusqlite::Connection,
    parameters: ClaimParameters,
) -> rusqlite::Result<Result<Claim, CorruptRow>> {
    let ClaimParameters {
        owner,
        key,
        fingerprint,
        in_flight_until,
        now,
        instance,
    } = parameters;
    let inserted = connection.prepare_cached(INSERT_CLAIM)?.execute(params![
        owner,
        key,
        &fingerprint[..],
        in_flight_until,
        instance
    ])?;
    if inserted == 1 {
        return Ok(Ok(Claim::Started));
    }
    let resumed = connection.prepare_cached(RESUME_CLAIM)?.execute(params![
        in_flight_until,
        instance,
        owner,
        key,
        &fingerprint[..],
        now
    ])?;
    if resumed == 1 {
        return Ok(Ok(Claim::Resumed));
    }
    let taken_over = connection
        .prepare_cached(TAKE_OVER_CLAIM)?
        .execute(params![
            &fingerprint[..],
            in_flight_until,
            instance,
            owner,
            key,
            now
        ])?;
    if taken_over == 1 {
        return Ok(Ok(Claim::Started));
    }
    // One writer: the record the insert collided with is still there.
    let row: Option<ClaimRow> = connection
        .prepare_cached(READ_CLAIM)?
        .query_row(params![owner, key], |row| {
            Ok((
                row.get("fingerprint")?,
                row.get("state")?,
                row.get("status")?,
                row.get("content_type")?,
                row.get("location")?,
                row.get("body")?,
            ))
        })
        .optional()?;
    Ok(match row {
        Some(row) => claim_from_row(row, fingerprint),
        None => Err(CorruptRow {
            what: "idempotency record",
        }),
    })
}

/// The answer to a claim that found a live record of the key.
fn claim_from_row(row: ClaimRow, fingerprint: [u8; 32]) -> Result<Claim, CorruptRow> {
    let (stored_fingerprint, state, status, content_type, location, body) = row;
    if stored_fingerprint != fingerprint {
        return Ok(Claim::Mismatch);
    }
    match state.as_str() {
        "in_flight" => Ok(Claim::InFlight),
        "finished" => Ok(Claim::Replay(codec::stored_response(
            status,
            content_type,
            location,
            body,
        )?)),
        _ => Err(CorruptRow {
            what: "idempotency state",
        }),
    }
}
