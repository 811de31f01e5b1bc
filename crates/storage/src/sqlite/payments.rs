//! The simulated processor's ledger in SQLite.

const CAPTURE_FOR: &str = "
    SELECT transaction_id, amount_cents, currency, status FROM payments WHERE reference = ?1";

/// A reference captured before (concurrently) inserts nothing.
const INSERT_CAPTURE: &str = "
    INSERT INTO payments (transaction_id, reference, amount_cents, currency, status, created_at)
    VALUES (?1, ?2, ?3, ?4, 'captured', ?5)
    ON CONFLICT (reference) DO NOTHING";

/// Only a captured transaction: of concurrent refunds, one updates a row.
const REFUND: &str = "
    UPDATE payments SET status = 'refunded' WHERE transaction_id = ?1 AND status = 'captured'";

const TRANSACTION: &str = "
    SELECT amount_cents, currency, status FROM payments WHERE transaction_id = ?1";

const COUNT_WITH_STATUS: &str = "SELECT count(*) FROM payments WHERE status = ?1";

crate::shared::payment_queries!();

use bookstore_sales::PaymentGateway;

/// The simulated processor with its ledger in SQLite.
#[derive(Clone)]
pub(crate) struct SqlitePaymentGateway {
    pub(crate) handle: Handle,
}

impl SqlitePaymentGateway {
    pub(crate) fn new(handle: Handle) -> Self {
        Self { handle }
    }

    /// The amount and status of one transaction, if the ledger has it.
    pub(crate) async fn transaction(
        &self,
        transaction_id: TransactionId,
    ) -> Result<Option<(Money, PaymentStatus)>, PaymentError> {
        transaction(&self.handle, transaction_id).await
    }

    /// How many transactions are in `status`.
    pub(crate) async fn count_with_status(
        &self,
        status: PaymentStatus,
    ) -> Result<usize, PaymentError> {
        count_with_status(&self.handle, status).await
    }
}

#[async_trait::async_trait]
impl PaymentGateway for SqlitePaymentGateway {
    async fn capture(
        &self,
        token: &PaymentToken,
        amount: Money,
        reference: OrderId,
    ) -> Result<TransactionId, PaymentError> {
        capture(&self.handle, token, amount, reference).await
    }

    async fn capture_for(&self, reference: OrderId) -> Result<Option<Capture>, PaymentError> {
        capture_for(&self.handle, reference).await
    }

    async fn refund(&self, transaction_id: TransactionId) -> Result<(), PaymentError> {
        refund(&self.handle, transaction_id).await
    }
}
