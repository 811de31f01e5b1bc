//! [`SqlPaymentGateway`]: the simulated card processor with its ledger in SQL.

use bookstore_sales::{
    Capture, PaymentError, PaymentGateway, PaymentStatus, PaymentToken, TransactionId,
};
use bookstore_types::{Money, OrderId};

use crate::Database;
use crate::database::dispatch;

/// The test-mode processor of [`bookstore_sales::SimulatedPaymentGateway`] (tokens decided
/// by [`bookstore_sales::simulated_decision`]), with its ledger in a `payments` table, so
/// captures survive restarts and are shared by every instance.
///
/// One capture per reference is a `UNIQUE` constraint: a capture looks up its reference
/// first, and a concurrent capture that loses the insert answers with the winner's
/// transaction. A refund is a conditional update (`WHERE status = 'captured'`).
#[derive(Debug, Clone)]
pub struct SqlPaymentGateway {
    database: Database,
}

impl SqlPaymentGateway {
    /// The ledger kept in `database` (migrated with [`migrate`](crate::migrate)).
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// The amount and status of one transaction, if this ledger has it.
    pub async fn transaction(
        &self,
        transaction_id: TransactionId,
    ) -> Result<Option<(Money, PaymentStatus)>, PaymentError> {
        dispatch!(self.database, payments::transaction(transaction_id))
    }

    /// How many transactions are captured (taken and not refunded).
    pub async fn captured_count(&self) -> Result<usize, PaymentError> {
        dispatch!(
            self.database,
            payments::count_with_status(PaymentStatus::Captured)
        )
    }

    /// How many transactions have been refunded.
    pub async fn refunded_count(&self) -> Result<usize, PaymentError> {
        dispatch!(
            self.database,
            payments::count_with_status(PaymentStatus::Refunded)
        )
    }
}

#[async_trait::async_trait]
impl PaymentGateway for SqlPaymentGateway {
    async fn capture(
        &self,
        token: &PaymentToken,
        amount: Money,
        reference: OrderId,
    ) -> Result<TransactionId, PaymentError> {
        dispatch!(self.database, payments::capture(token, amount, reference))
    }

    async fn capture_for(&self, reference: OrderId) -> Result<Option<Capture>, PaymentError> {
        dispatch!(self.database, payments::capture_for(reference))
    }

    async fn refund(&self, transaction_id: TransactionId) -> Result<(), PaymentError> {
        dispatch!(self.database, payments::refund(transaction_id))
    }
}
