//! [`SqlitePaymentGateway`]: the simulated processor with its ledger in SQLite.

use async_trait::async_trait;
use bookstore_sales::{
    Capture, PaymentError, PaymentGateway, PaymentStatus, PaymentToken, TransactionId,
    simulated_decision,
};
use bookstore_types::{Money, OrderId};
use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::events::record;
use super::{Handle, corrupt, to_db_time, uuid_at};
use crate::codec;
use crate::events::{Fact, Outbox, PaymentRecord};
use crate::failure::unavailable;
use crate::sql::payments::{CAPTURE_FOR, COUNT_WITH_STATUS, INSERT_CAPTURE, REFUND, TRANSACTION};

/// The test-mode processor of [`bookstore_sales::SimulatedPaymentGateway`] (tokens decided
/// by [`simulated_decision`]), its ledger in the `payments` table, so captures survive
/// restarts.
///
/// One capture per reference is a `UNIQUE` constraint: a capture inserts with `ON CONFLICT
/// DO NOTHING`, and one that inserted nothing answers with the capture already there. A
/// refund is a conditional update (`WHERE status = 'captured'`).
///
/// A capture that inserted its row records `payment.captured`, a refund that updated one
/// `payment.refunded`, in the same write job; a repeated capture records nothing.
#[derive(Debug, Clone)]
pub(crate) struct SqlitePaymentGateway {
    handle: Handle,
    outbox: Outbox,
}

impl SqlitePaymentGateway {
    pub(crate) fn new(handle: Handle, outbox: Outbox) -> Self {
        Self { handle, outbox }
    }

    /// The amount and status of one transaction, if the ledger has it.
    pub(crate) async fn transaction(
        &self,
        transaction_id: TransactionId,
    ) -> Result<Option<(Money, PaymentStatus)>, PaymentError> {
        self.handle
            .read(|connection| transaction_in(connection, transaction_id))
    }

    /// How many transactions are in `status`.
    pub(crate) async fn count_with_status(
        &self,
        status: PaymentStatus,
    ) -> Result<usize, PaymentError> {
        let count: i64 = self.handle.read(|connection| {
            connection
                .prepare_cached(COUNT_WITH_STATUS)?
                .query_row([status.as_str()], |row| row.get(0))
        })?;
        Ok(usize::try_from(count).unwrap_or_default())
    }
}

fn amount_and_status(row: &Row<'_>) -> rusqlite::Result<(Money, PaymentStatus)> {
    let cents: i64 = row.get("amount_cents")?;
    let currency: String = row.get("currency")?;
    let status: String = row.get("status")?;
    Ok((
        codec::money(cents, &currency).map_err(corrupt)?,
        codec::payment_status(&status).map_err(corrupt)?,
    ))
}

fn capture_in(connection: &Connection, reference: OrderId) -> rusqlite::Result<Option<Capture>> {
    connection
        .prepare_cached(CAPTURE_FOR)?
        .query_row([reference.as_uuid().as_bytes()], |row| {
            let (amount, status) = amount_and_status(row)?;
            Ok(Capture {
                transaction_id: TransactionId::from_uuid(uuid_at(row, "transaction_id")?),
                amount,
                status,
            })
        })
        .optional()
}

fn transaction_in(
    connection: &Connection,
    transaction_id: TransactionId,
) -> rusqlite::Result<Option<(Money, PaymentStatus)>> {
    connection
        .prepare_cached(TRANSACTION)?
        .query_row([transaction_id.as_uuid().as_bytes()], amount_and_status)
        .optional()
}

#[async_trait]
impl PaymentGateway for SqlitePaymentGateway {
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
        // Rendered before the job, so that the writer thread only writes it.
        let captured = PaymentRecord {
            transaction_id,
            order_id: reference,
            amount,
            status: PaymentStatus::Captured,
        };
        let event = self
            .outbox
            .event(Fact::PaymentCaptured(&captured), Utc::now());
        self.handle
            .write(move |connection| {
                let inserted = connection
                    .prepare_cached(INSERT_CAPTURE)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            transaction_id.as_uuid().as_bytes(),
                            reference.as_uuid().as_bytes(),
                            amount.cents(),
                            amount.currency().as_str(),
                            to_db_time(Utc::now()),
                        ])
                    })
                    .map_err(unavailable)?;
                if inserted == 1 {
                    record(connection, &[event]).map_err(unavailable)?;
                    return Ok(transaction_id);
                }
                // The reference was captured before: answer with that capture.
                capture_in(connection, reference)
                    .map_err(unavailable)?
                    .map(|capture| capture.transaction_id)
                    .ok_or_else(|| PaymentError::Unavailable("a capture vanished".to_owned()))
            })
            .await
    }

    async fn capture_for(&self, reference: OrderId) -> Result<Option<Capture>, PaymentError> {
        self.handle
            .read(|connection| capture_in(connection, reference))
    }

    async fn refund(&self, transaction_id: TransactionId) -> Result<(), PaymentError> {
        let outbox = self.outbox.clone();
        self.handle
            .write(move |connection| {
                let refunded = connection
                    .prepare_cached(REFUND)
                    .and_then(|mut statement| {
                        statement
                            .query_row([transaction_id.as_uuid().as_bytes()], |row| {
                                let cents: i64 = row.get("amount_cents")?;
                                let currency: String = row.get("currency")?;
                                Ok(PaymentRecord {
                                    transaction_id,
                                    order_id: OrderId::from_uuid(uuid_at(row, "reference")?),
                                    amount: codec::money(cents, &currency).map_err(corrupt)?,
                                    status: PaymentStatus::Refunded,
                                })
                            })
                            .optional()
                    })
                    .map_err(unavailable)?;
                if let Some(refunded) = refunded {
                    let event = outbox.event(Fact::PaymentRefunded(&refunded), Utc::now());
                    return record(connection, &[event]).map_err(unavailable);
                }
                match transaction_in(connection, transaction_id).map_err(unavailable)? {
                    None => Err(PaymentError::UnknownTransaction { transaction_id }),
                    Some(_) => Err(PaymentError::AlreadyRefunded { transaction_id }),
                }
            })
            .await
    }
}
