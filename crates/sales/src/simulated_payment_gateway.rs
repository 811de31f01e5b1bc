//! A payment processor in test mode: no network, fixed tokens, every transaction kept in
//! memory where tests and operators can look at it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bookstore_types::{Money, OrderId};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::payment::{
    Capture, PaymentError, PaymentGateway, PaymentStatus, PaymentToken, TransactionId,
};

/// Tokens that always approve.
const APPROVING_TOKENS: [&str; 2] = ["tok_visa", "tok_mastercard"];
/// A token that is always declined.
const DECLINING_TOKEN: &str = "tok_chargeDeclined";

/// What the test-mode processor answers to a token: `Ok` for `tok_visa` and
/// `tok_mastercard`, [`PaymentError::Declined`] for `tok_chargeDeclined`, and
/// [`PaymentError::InvalidToken`] for any other token (tokens are case-sensitive).
///
/// [`SimulatedPaymentGateway`] applies it; other implementations of the simulated processor
/// (one that keeps its ledger in a database, say) apply it too, so that they all agree.
pub fn simulated_decision(token: &PaymentToken) -> Result<(), PaymentError> {
    let token = token.expose_secret();
    if token == DECLINING_TOKEN {
        return Err(PaymentError::Declined);
    }
    if !APPROVING_TOKENS.contains(&token) {
        return Err(PaymentError::InvalidToken);
    }
    Ok(())
}

/// A test-mode processor, like a card processor's sandbox.
///
/// Tokens are decided by [`simulated_decision`]. Every captured transaction is recorded with
/// its amount, status and reference; a reference is captured at most once.
///
/// Lock order: a guard on `transaction_ids_by_reference` may be held while taking one on
/// `transactions`, never the other way round.
#[derive(Default)]
pub struct SimulatedPaymentGateway {
    transactions: DashMap<TransactionId, SimulatedTransaction>,
    transaction_ids_by_reference: DashMap<OrderId, TransactionId>,
    observer: Option<PaymentObserver>,
}

/// Told of every new capture and every refund: the reference (the order paid for) and the
/// transaction as the change left it, while the transaction's entry is still locked, so no
/// reader sees a change before its observer was told. It must not call back into the
/// processor.
pub type PaymentObserver = Arc<dyn Fn(OrderId, &Capture) + Send + Sync>;

/// One transaction as the simulated processor remembers it.
#[derive(Debug, Clone, Copy)]
struct SimulatedTransaction {
    reference: OrderId,
    amount: Money,
    status: PaymentStatus,
}

impl std::fmt::Debug for SimulatedPaymentGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedPaymentGateway")
            .field("transactions", &self.transactions.len())
            .finish_non_exhaustive()
    }
}

impl SimulatedPaymentGateway {
    /// A processor with no transactions yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// This processor, telling `observer` of every later capture and refund.
    pub fn observed_by(mut self, observer: PaymentObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    fn tell(&self, transaction_id: TransactionId, transaction: &SimulatedTransaction) {
        if let Some(observer) = &self.observer {
            observer(
                transaction.reference,
                &Capture {
                    transaction_id,
                    amount: transaction.amount,
                    status: transaction.status,
                },
            );
        }
    }

    /// How many transactions are currently captured (taken and not refunded).
    pub fn captured_count(&self) -> usize {
        self.count_with_status(PaymentStatus::Captured)
    }

    /// How many transactions have been refunded.
    pub fn refunded_count(&self) -> usize {
        self.count_with_status(PaymentStatus::Refunded)
    }

    /// The amount and status of one transaction, if this processor made it.
    pub fn transaction(&self, transaction_id: TransactionId) -> Option<(Money, PaymentStatus)> {
        self.transactions
            .get(&transaction_id)
            .map(|transaction| (transaction.amount, transaction.status))
    }

    fn count_with_status(&self, status: PaymentStatus) -> usize {
        self.transactions
            .iter()
            .filter(|transaction| transaction.status == status)
            .count()
    }
}

#[async_trait::async_trait]
impl PaymentGateway for SimulatedPaymentGateway {
    async fn capture(
        &self,
        token: &PaymentToken,
        amount: Money,
        reference: OrderId,
    ) -> Result<TransactionId, PaymentError> {
        // A real processor is a network round trip away; let concurrent tasks interleave.
        YieldNow::default().await;
        // The reference's entry stays locked until the transaction is recorded, so of
        // concurrent captures for one reference only the first charges.
        let reference_entry = match self.transaction_ids_by_reference.entry(reference) {
            Entry::Occupied(occupied) => return Ok(*occupied.get()),
            Entry::Vacant(vacant) => vacant,
        };
        simulated_decision(token)?;
        let transaction_id = TransactionId::generate();
        let transaction = SimulatedTransaction {
            reference,
            amount,
            status: PaymentStatus::Captured,
        };
        // Told while the reference's entry is locked: `capture_for` waits for it.
        self.tell(transaction_id, &transaction);
        self.transactions.insert(transaction_id, transaction);
        reference_entry.insert(transaction_id);
        Ok(transaction_id)
    }

    async fn capture_for(&self, reference: OrderId) -> Result<Option<Capture>, PaymentError> {
        YieldNow::default().await;
        let Some(transaction_id) = self
            .transaction_ids_by_reference
            .get(&reference)
            .map(|id| *id)
        else {
            return Ok(None);
        };
        Ok(self
            .transactions
            .get(&transaction_id)
            .map(|transaction| Capture {
                transaction_id,
                amount: transaction.amount,
                status: transaction.status,
            }))
    }

    async fn refund(&self, transaction_id: TransactionId) -> Result<(), PaymentError> {
        YieldNow::default().await;
        let mut transaction = self
            .transactions
            .get_mut(&transaction_id)
            .ok_or(PaymentError::UnknownTransaction { transaction_id })?;
        match transaction.status {
            PaymentStatus::Refunded => Err(PaymentError::AlreadyRefunded { transaction_id }),
            PaymentStatus::Captured => {
                transaction.status = PaymentStatus::Refunded;
                self.tell(transaction_id, &transaction);
                Ok(())
            }
        }
    }
}

/// A future that is pending once, asking to be polled again straight away, then ready.
///
/// Awaiting it hands control back to the executor for one turn, without depending on any
/// particular runtime.
#[derive(Debug, Default)]
struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        context.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use bookstore_types::Currency;

    use super::*;

    fn usd(cents: i64) -> Money {
        Money::from_cents(cents, Currency::USD).unwrap()
    }

    fn token(text: &str) -> PaymentToken {
        PaymentToken::parse(text).unwrap()
    }

    #[tokio::test]
    async fn visa_and_mastercard_tokens_capture_and_record_the_amount() {
        let gateway = SimulatedPaymentGateway::new();
        for (text, cents) in [("tok_visa", 12_997), ("tok_mastercard", 4_499)] {
            let transaction_id = gateway
                .capture(&token(text), usd(cents), OrderId::generate())
                .await
                .unwrap();
            assert_eq!(
                gateway.transaction(transaction_id),
                Some((usd(cents), PaymentStatus::Captured)),
                "token {text}"
            );
        }
        assert_eq!(gateway.captured_count(), 2);
        assert_eq!(gateway.refunded_count(), 0);
    }

    #[tokio::test]
    async fn a_declining_token_is_declined_and_nothing_is_captured() {
        let gateway = SimulatedPaymentGateway::new();
        let result = gateway
            .capture(&token("tok_chargeDeclined"), usd(100), OrderId::generate())
            .await;
        assert_eq!(result, Err(PaymentError::Declined));
        assert_eq!(gateway.captured_count(), 0);
    }

    #[tokio::test]
    async fn unknown_tokens_are_invalid_and_tokens_are_case_sensitive() {
        let gateway = SimulatedPaymentGateway::new();
        for text in ["tok_unknown", "TOK_VISA", "tok_Visa", " tok_visa"] {
            let result = gateway
                .capture(&token(text), usd(100), OrderId::generate())
                .await;
            assert_eq!(result, Err(PaymentError::InvalidToken), "token {text:?}");
        }
        assert_eq!(gateway.captured_count(), 0);
    }

    #[tokio::test]
    async fn a_refund_marks_the_transaction_refunded() {
        let gateway = SimulatedPaymentGateway::new();
        let transaction_id = gateway
            .capture(&token("tok_visa"), usd(4_499), OrderId::generate())
            .await
            .unwrap();
        gateway.refund(transaction_id).await.unwrap();
        assert_eq!(
            gateway.transaction(transaction_id),
            Some((usd(4_499), PaymentStatus::Refunded))
        );
        assert_eq!(gateway.captured_count(), 0);
        assert_eq!(gateway.refunded_count(), 1);
    }

    #[tokio::test]
    async fn refunding_twice_is_already_refunded() {
        let gateway = SimulatedPaymentGateway::new();
        let transaction_id = gateway
            .capture(&token("tok_visa"), usd(4_499), OrderId::generate())
            .await
            .unwrap();
        gateway.refund(transaction_id).await.unwrap();
        assert_eq!(
            gateway.refund(transaction_id).await,
            Err(PaymentError::AlreadyRefunded { transaction_id })
        );
        assert_eq!(gateway.refunded_count(), 1);
    }

    #[tokio::test]
    async fn refunding_an_unknown_transaction_is_unknown_transaction() {
        let gateway = SimulatedPaymentGateway::new();
        let transaction_id = TransactionId::generate();
        assert_eq!(
            gateway.refund(transaction_id).await,
            Err(PaymentError::UnknownTransaction { transaction_id })
        );
        assert_eq!(gateway.transaction(transaction_id), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_many_concurrent_refunds_of_one_transaction_exactly_one_succeeds() {
        let gateway = Arc::new(SimulatedPaymentGateway::new());
        let transaction_id = gateway
            .capture(&token("tok_visa"), usd(100), OrderId::generate())
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let refunds: Vec<_> = (0..16)
            .map(|_| {
                let gateway = Arc::clone(&gateway);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    gateway.refund(transaction_id).await
                })
            })
            .collect();
        let results = futures_util::future::join_all(refunds).await;
        let successes = results
            .into_iter()
            .map(|joined| joined.unwrap())
            .filter(|result| match result {
                Ok(()) => true,
                Err(error) => {
                    assert_eq!(error, &PaymentError::AlreadyRefunded { transaction_id });
                    false
                }
            })
            .count();
        assert_eq!(successes, 1);
        assert_eq!(gateway.refunded_count(), 1);
    }

    #[tokio::test]
    async fn capturing_one_reference_again_returns_the_first_transaction_and_charges_nothing() {
        let gateway = SimulatedPaymentGateway::new();
        let order = OrderId::generate();
        let first = gateway
            .capture(&token("tok_visa"), usd(4_499), order)
            .await
            .unwrap();
        // Another token, even a declining one, and another amount change nothing.
        for (text, cents) in [("tok_visa", 4_499), ("tok_chargeDeclined", 1)] {
            let again = gateway.capture(&token(text), usd(cents), order).await;
            assert_eq!(again, Ok(first), "token {text}");
        }
        assert_eq!(gateway.captured_count(), 1);
        assert_eq!(
            gateway.capture_for(order).await.unwrap(),
            Some(Capture {
                transaction_id: first,
                amount: usd(4_499),
                status: PaymentStatus::Captured,
            })
        );
    }

    #[tokio::test]
    async fn capture_for_reports_nothing_before_a_capture_and_the_refund_after_one() {
        let gateway = SimulatedPaymentGateway::new();
        let order = OrderId::generate();
        assert_eq!(gateway.capture_for(order).await.unwrap(), None);

        let declined = gateway
            .capture(&token("tok_chargeDeclined"), usd(100), order)
            .await;
        assert_eq!(declined, Err(PaymentError::Declined));
        assert_eq!(gateway.capture_for(order).await.unwrap(), None);

        let transaction_id = gateway
            .capture(&token("tok_mastercard"), usd(100), order)
            .await
            .unwrap();
        gateway.refund(transaction_id).await.unwrap();
        let capture = gateway.capture_for(order).await.unwrap().unwrap();
        assert_eq!(capture.transaction_id, transaction_id);
        assert_eq!(capture.status, PaymentStatus::Refunded);
        // Capturing a refunded reference again still charges nothing.
        assert_eq!(
            gateway.capture(&token("tok_visa"), usd(100), order).await,
            Ok(transaction_id)
        );
        assert_eq!(gateway.captured_count(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_sixteen_concurrent_captures_for_one_reference_exactly_one_charges() {
        let gateway = Arc::new(SimulatedPaymentGateway::new());
        let order = OrderId::generate();
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let captures: Vec<_> = (0..16)
            .map(|_| {
                let gateway = Arc::clone(&gateway);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    gateway.capture(&token("tok_visa"), usd(100), order).await
                })
            })
            .collect();
        let ids: std::collections::HashSet<TransactionId> =
            futures_util::future::join_all(captures)
                .await
                .into_iter()
                .map(|joined| joined.unwrap().unwrap())
                .collect();
        assert_eq!(ids.len(), 1);
        assert_eq!(gateway.captured_count(), 1);
    }

    #[test]
    fn the_simulated_decision_follows_the_test_mode_tokens() {
        for (text, expected) in [
            ("tok_visa", Ok(())),
            ("tok_mastercard", Ok(())),
            ("tok_chargeDeclined", Err(PaymentError::Declined)),
            ("tok_unknown", Err(PaymentError::InvalidToken)),
            ("TOK_VISA", Err(PaymentError::InvalidToken)),
        ] {
            assert_eq!(simulated_decision(&token(text)), expected, "token {text}");
        }
    }

    /// Counts how often it is woken.
    #[derive(Default)]
    struct CountingWaker {
        wakes: AtomicUsize,
    }

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn yield_now_is_pending_once_after_asking_to_be_woken_then_ready() {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        let mut context = Context::from_waker(&waker);
        let mut future = YieldNow::default();
        assert_eq!(Pin::new(&mut future).poll(&mut context), Poll::Pending);
        assert_eq!(counter.wakes.load(Ordering::SeqCst), 1);
        assert_eq!(Pin::new(&mut future).poll(&mut context), Poll::Ready(()));
        assert_eq!(counter.wakes.load(Ordering::SeqCst), 1);
    }
}
