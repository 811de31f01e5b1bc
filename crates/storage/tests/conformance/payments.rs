//! The simulated processor: test-mode tokens, one capture per reference, refunds.

use std::collections::HashSet;
use std::sync::Arc;

use bookstore_sales::{
    Capture, PaymentError, PaymentGateway, PaymentStatus, PaymentToken, TransactionId,
};
use bookstore_types::OrderId;

use crate::harness::{Backend, join_all, usd};

crate::conformance!(
    test_mode_tokens_capture_decline_or_are_invalid,
    a_reference_is_captured_at_most_once,
    a_refund_happens_once,
    of_sixteen_concurrent_captures_for_one_reference_exactly_one_charges;
    sql_only: captures_survive_reconnecting,
);

fn token(text: &str) -> PaymentToken {
    PaymentToken::parse(text).unwrap()
}

async fn test_mode_tokens_capture_decline_or_are_invalid(backend: Backend) {
    let stores = backend.stores().await;
    for (text, cents) in [("tok_visa", 12_997), ("tok_mastercard", 4_499)] {
        let reference = OrderId::generate();
        let transaction_id = stores
            .payments
            .capture(&token(text), usd(cents), reference)
            .await
            .unwrap();
        assert_eq!(
            stores.ledger.transaction(transaction_id).await,
            Some((usd(cents), PaymentStatus::Captured)),
            "{text}"
        );
    }
    let declined = stores
        .payments
        .capture(&token("tok_chargeDeclined"), usd(100), OrderId::generate())
        .await;
    assert_eq!(declined, Err(PaymentError::Declined));
    for text in ["tok_unknown", "TOK_VISA", " tok_visa"] {
        let invalid = stores
            .payments
            .capture(&token(text), usd(100), OrderId::generate())
            .await;
        assert_eq!(invalid, Err(PaymentError::InvalidToken), "{text:?}");
    }
    assert_eq!(stores.ledger.captured_count().await, 2);
}

async fn a_reference_is_captured_at_most_once(backend: Backend) {
    let stores = backend.stores().await;
    let reference = OrderId::generate();
    assert_eq!(stores.payments.capture_for(reference).await.unwrap(), None);
    let declined = stores
        .payments
        .capture(&token("tok_chargeDeclined"), usd(4_499), reference)
        .await;
    assert_eq!(declined, Err(PaymentError::Declined));
    assert_eq!(stores.payments.capture_for(reference).await.unwrap(), None);

    let first = stores
        .payments
        .capture(&token("tok_visa"), usd(4_499), reference)
        .await
        .unwrap();
    for (text, cents) in [
        ("tok_visa", 4_499),
        ("tok_chargeDeclined", 1),
        ("tok_unknown", 2),
    ] {
        let again = stores
            .payments
            .capture(&token(text), usd(cents), reference)
            .await;
        assert_eq!(again, Ok(first), "{text}");
    }
    assert_eq!(stores.ledger.captured_count().await, 1);
    assert_eq!(
        stores.payments.capture_for(reference).await.unwrap(),
        Some(Capture {
            transaction_id: first,
            amount: usd(4_499),
            status: PaymentStatus::Captured,
        })
    );
}

async fn a_refund_happens_once(backend: Backend) {
    let stores = backend.stores().await;
    let reference = OrderId::generate();
    let transaction_id = stores
        .payments
        .capture(&token("tok_visa"), usd(4_499), reference)
        .await
        .unwrap();
    stores.payments.refund(transaction_id).await.unwrap();
    assert_eq!(
        stores.payments.refund(transaction_id).await,
        Err(PaymentError::AlreadyRefunded { transaction_id })
    );
    assert_eq!(
        stores
            .payments
            .capture_for(reference)
            .await
            .unwrap()
            .map(|c| c.status),
        Some(PaymentStatus::Refunded)
    );
    // Capturing the reference again still charges nothing.
    assert_eq!(
        stores
            .payments
            .capture(&token("tok_visa"), usd(1), reference)
            .await,
        Ok(transaction_id)
    );
    assert_eq!(stores.ledger.captured_count().await, 0);
    assert_eq!(stores.ledger.refunded_count().await, 1);

    let unknown = TransactionId::generate();
    assert_eq!(
        stores.payments.refund(unknown).await,
        Err(PaymentError::UnknownTransaction {
            transaction_id: unknown
        })
    );
    assert_eq!(stores.ledger.transaction(unknown).await, None);
}

async fn of_sixteen_concurrent_captures_for_one_reference_exactly_one_charges(backend: Backend) {
    let stores = backend.stores().await;
    let reference = OrderId::generate();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks = (0..16)
        .map(|_| {
            let payments: Arc<dyn PaymentGateway> = Arc::clone(&stores.payments);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                payments
                    .capture(&token("tok_visa"), usd(100), reference)
                    .await
            })
        })
        .collect();
    let ids: HashSet<TransactionId> = join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(stores.ledger.captured_count().await, 1);
}

async fn captures_survive_reconnecting(backend: Backend) {
    let stores = backend.stores().await;
    let reference = OrderId::generate();
    let transaction_id = stores
        .payments
        .capture(&token("tok_visa"), usd(4_499), reference)
        .await
        .unwrap();
    stores.database.as_ref().unwrap().close().await;

    let reopened_database = stores.location.as_ref().unwrap().open().await;
    let reopened = reopened_database
        .stores(&bookstore_storage::events::Outbox::id_only())
        .payments;
    assert_eq!(
        reopened
            .capture_for(reference)
            .await
            .unwrap()
            .map(|c| c.transaction_id),
        Some(transaction_id)
    );
    // Still at most once per reference, across the restart.
    assert_eq!(
        reopened
            .capture(&token("tok_visa"), usd(4_499), reference)
            .await,
        Ok(transaction_id)
    );
    reopened.refund(transaction_id).await.unwrap();
    assert_eq!(
        reopened_database
            .payment_count(bookstore_sales::PaymentStatus::Captured)
            .await
            .unwrap(),
        0
    );
}
