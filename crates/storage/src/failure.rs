//! Turning database failures into each domain's error, and finishing transactions.

use bookstore_delivery::DeliveryError;
use bookstore_inventory::InventoryError;
use bookstore_sales::{PaymentError, SalesError};
use sqlx::Transaction;

use crate::StorageError;

/// Any error, boxed: the cause kept inside an `Unavailable` variant.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error type with a variant for "the store cannot answer".
pub(crate) trait StoreFailure {
    /// The `Unavailable` variant carrying `cause`.
    fn unavailable(cause: BoxError) -> Self;
}

impl StoreFailure for InventoryError {
    fn unavailable(cause: BoxError) -> Self {
        InventoryError::Unavailable(cause)
    }
}

impl StoreFailure for SalesError {
    fn unavailable(cause: BoxError) -> Self {
        SalesError::Unavailable(cause)
    }
}

impl StoreFailure for DeliveryError {
    fn unavailable(cause: BoxError) -> Self {
        DeliveryError::Unavailable(cause)
    }
}

impl StoreFailure for PaymentError {
    fn unavailable(cause: BoxError) -> Self {
        PaymentError::Unavailable(cause.to_string())
    }
}

impl StoreFailure for crate::idempotency::IdempotencyUnavailable {
    fn unavailable(cause: BoxError) -> Self {
        crate::idempotency::IdempotencyUnavailable(cause)
    }
}

impl StoreFailure for crate::events::EventsUnavailable {
    fn unavailable(cause: BoxError) -> Self {
        crate::events::EventsUnavailable(cause)
    }
}

impl StoreFailure for crate::events::WebhooksUnavailable {
    fn unavailable(cause: BoxError) -> Self {
        crate::events::WebhooksUnavailable(cause)
    }
}

impl StoreFailure for StorageError {
    fn unavailable(cause: BoxError) -> Self {
        StorageError::Unavailable(cause)
    }
}

/// `cause` (a driver error, an unreadable row) as the `Unavailable` error of `E`; meant for
/// `map_err`.
pub(crate) fn unavailable<E: StoreFailure>(cause: impl Into<BoxError>) -> E {
    E::unavailable(cause.into())
}

/// A row the database returned that this version cannot read back into a domain value.
#[derive(Debug, thiserror::Error)]
#[error("unreadable {what} in a stored row")]
pub(crate) struct CorruptRow {
    /// Which value could not be read.
    pub(crate) what: &'static str,
}

/// Commits `transaction` if `result` is `Ok`, rolls it back otherwise, and returns `result`
/// (or the commit's failure).
pub(crate) async fn finish<DB: sqlx::Database, T, E: StoreFailure>(
    transaction: Transaction<'_, DB>,
    result: Result<T, E>,
) -> Result<T, E> {
    match result {
        Ok(value) => {
            transaction.commit().await.map_err(unavailable)?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback_error) = transaction.rollback().await {
                // The connection is discarded by the pool; the original error matters more.
                tracing::debug!(error = %rollback_error, "rollback failed");
            }
            Err(error)
        }
    }
}
