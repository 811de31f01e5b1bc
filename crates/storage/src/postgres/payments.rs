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

use crate::codec;
use crate::failure::{BoxError, unavailable};
use crate::sql::payments::{CAPTURE_FOR, COUNT_WITH_STATUS, INSERT_CAPTURE, REFUND, TRANSACTION};

/// The test-mode processor of [`bookstore_sales::SimulatedPaymentGateway`] (tokens decided
/// by [`simulated_decision`]), its ledger in the `payments` table, so captures survive
/// restarts and are shared by every instance.
///
/// One capture per reference is a `UNIQUE` constraint: a capture inserts with `ON CONFLICT
/// DO NOTHING`, and one that inserted nothing (the reference was captured before, or
/// concurrently) answers with that capture's transaction. A refund is a conditional update
/// (`WHERE status = 'captured'`).
#[derive(Debug, Clone)]
pub(crate) struct PgPaymentGateway {
    pool: PgPool,
}

impl PgPaymentGateway {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
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
        let inserted = sqlx::query(INSERT_CAPTURE)
            .bind(transaction_id.as_uuid())
            .bind(reference.as_uuid())
            .bind(amount.cents())
            .bind(amount.currency().as_str())
            .bind(Utc::now())
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
        let refunded = sqlx::query(REFUND)
            .bind(transaction_id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        if refunded.rows_affected() == 1 {
            return Ok(());
        }
        match self.transaction(transaction_id).await? {
            None => Err(PaymentError::UnknownTransaction { transaction_id }),
            Some(_) => Err(PaymentError::AlreadyRefunded { transaction_id }),
        }
    }
}
