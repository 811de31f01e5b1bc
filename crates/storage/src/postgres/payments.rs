//! [`PgPaymentGateway`]: the simulated processor with its ledger in PostgreSQL.

use async_trait::async_trait;
use bookstore_sales::{
    Capture, PaymentError, PaymentGateway, PaymentStatus, PaymentToken, TransactionId,
    simulated_decision,
};
use bookstore_types::{Money, OrderId};
use chrono::Utc;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row as _};

use super::events::{bind_event, record};
use crate::codec;
use crate::events::{Fact, Outbox, PaymentRecord};
use crate::failure::{BoxError, finish, unavailable};
use crate::sql::payments::{CAPTURE_FOR, COUNT_WITH_STATUS, REFUND, TRANSACTION};

/// `INSERT_CAPTURE` of [`crate::sql::payments`] and, if it inserted the capture, its
/// `payment.captured` event ($6..$10, see [`bind_event`]), in one statement: the event's row
/// count says whether the capture was inserted.
const INSERT_CAPTURE_RECORDING_EVENT: &str = "
    WITH captured AS (
        INSERT INTO payments
            (transaction_id, reference, amount_cents, currency, status, created_at)
        VALUES ($1, $2, $3, $4, 'captured', $5)
        ON CONFLICT (reference) DO NOTHING
        RETURNING transaction_id
    ), sequence AS (
        INSERT INTO event_sequences (resource_id, last) SELECT $8, 1 FROM captured
        ON CONFLICT (resource_id) DO UPDATE SET last = event_sequences.last + 1
        RETURNING last
    )
    INSERT INTO events (id, type, resource_id, sequence, created_at, data)
    SELECT $6, $7, $8, sequence.last, $9, $10::json FROM sequence";

/// The test-mode processor of [`bookstore_sales::SimulatedPaymentGateway`] (tokens decided
/// by [`simulated_decision`]), its ledger in the `payments` table, so captures survive
/// restarts and are shared by every instance.
///
/// One capture per reference is a `UNIQUE` constraint: a capture inserts with `ON CONFLICT
/// DO NOTHING`, and one that inserted nothing (the reference was captured before, or
/// concurrently) answers with that capture's transaction. A refund is a conditional update
/// (`WHERE status = 'captured'`).
///
/// A capture that inserted its row records `payment.captured` in the same statement, a
/// refund that updated one `payment.refunded` in the same transaction; a repeated capture
/// records nothing.
#[derive(Debug, Clone)]
pub(crate) struct PgPaymentGateway {
    pool: PgPool,
    outbox: Outbox,
}

impl PgPaymentGateway {
    pub(crate) fn new(pool: PgPool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    /// The amount and status of one transaction, if the ledger has it.
    pub(crate) async fn transaction(
        &self,
        transaction_id: TransactionId,
    ) -> Result<Option<(Money, PaymentStatus)>, PaymentError> {
        let row = sqlx::query(TRANSACTION)
            .bind(transaction_id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| amount_and_status(&row).map_err(unavailable))
            .transpose()
    }

    /// How many transactions are in `status`.
    pub(crate) async fn count_with_status(
        &self,
        status: PaymentStatus,
    ) -> Result<usize, PaymentError> {
        let count: i64 = sqlx::query_scalar(COUNT_WITH_STATUS)
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(usize::try_from(count).unwrap_or_default())
    }
}

fn amount_and_status(row: &PgRow) -> Result<(Money, PaymentStatus), BoxError> {
    let currency: String = row.try_get("currency")?;
    let status: String = row.try_get("status")?;
    Ok((
        codec::money(row.try_get("amount_cents")?, &currency)?,
        codec::payment_status(&status)?,
    ))
}

#[async_trait]
impl PaymentGateway for PgPaymentGateway {
    async fn capture(
        &self,
        token: &PaymentToken,
        amount: Money,
        reference: OrderId,
    ) -> Result<TransactionId, PaymentError> {
        // A reference captured before answers with its transaction whatever the token; a
        // refused token is only an error if there is no such capture.
        if let Err(refused) = simulated_decision(token) {
            return match self.capture_for(reference).await? {
                Some(existing) => Ok(existing.transaction_id),
                None => Err(refused),
            };
        }
        let transaction_id = TransactionId::generate();
        let captured = PaymentRecord {
            transaction_id,
            order_id: reference,
            amount,
            status: PaymentStatus::Captured,
        };
        let event = self
            .outbox
            .event(Fact::PaymentCaptured(&captured), Utc::now());
        let query = sqlx::query(INSERT_CAPTURE_RECORDING_EVENT)
            .bind(transaction_id.as_uuid())
            .bind(reference.as_uuid())
            .bind(amount.cents())
            .bind(amount.currency().as_str())
            .bind(Utc::now());
        let inserted = bind_event(query, &event)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        if inserted.rows_affected() == 1 {
            return Ok(transaction_id);
        }
        // The reference was captured before (or concurrently): answer with that capture.
        self.capture_for(reference)
            .await?
            .map(|capture| capture.transaction_id)
            .ok_or_else(|| PaymentError::Unavailable("a capture vanished".to_owned()))
    }

    async fn capture_for(&self, reference: OrderId) -> Result<Option<Capture>, PaymentError> {
        let row = sqlx::query(CAPTURE_FOR)
            .bind(reference.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (amount, status) = amount_and_status(&row).map_err(unavailable)?;
        let transaction_id = row.try_get("transaction_id").map_err(unavailable)?;
        Ok(Some(Capture {
            transaction_id: TransactionId::from_uuid(transaction_id),
            amount,
            status,
        }))
    }

    async fn refund(&self, transaction_id: TransactionId) -> Result<(), PaymentError> {
        let mut transaction = self.pool.begin().await.map_err(unavailable)?;
        let refunded = sqlx::query(REFUND)
            .bind(transaction_id.as_uuid())
            .fetch_optional(&mut *transaction)
            .await;
        let result = async {
            let Some(row) = refunded.map_err(unavailable)? else {
                return Ok(false);
            };
            let read = || -> Result<PaymentRecord, BoxError> {
                let currency: String = row.try_get("currency")?;
                Ok(PaymentRecord {
                    transaction_id,
                    order_id: OrderId::from_uuid(row.try_get("reference")?),
                    amount: codec::money(row.try_get("amount_cents")?, &currency)?,
                    status: PaymentStatus::Refunded,
                })
            };
            let refunded = read().map_err(unavailable::<PaymentError>)?;
            let event = self
                .outbox
                .event(Fact::PaymentRefunded(&refunded), Utc::now());
            record(&mut transaction, &[event])
                .await
                .map_err(unavailable::<PaymentError>)?;
            Ok(true)
        }
        .await;
        if finish(transaction, result).await? {
            return Ok(());
        }
        match self.transaction(transaction_id).await? {
            None => Err(PaymentError::UnknownTransaction { transaction_id }),
            Some(_) => Err(PaymentError::AlreadyRefunded { transaction_id }),
        }
    }
}
