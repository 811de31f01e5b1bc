//! The one place where domain errors become HTTP problems.
//!
//! Each domain crate reports failures in its own error enum, with no notion of HTTP, and so
//! does the workflow that spans them ([`WorkflowError`]). This module maps every variant to
//! exactly one [`ProblemKind`], so a status code for a given failure is decided here and
//! nowhere else.

use bookstore_delivery::DeliveryError;
use bookstore_inventory::InventoryError;
use bookstore_sales::{PaymentError, SalesError};

use crate::http::problem::{ApiError, FieldError, ProblemKind};
use crate::workflow::WorkflowError;

impl From<WorkflowError> for ApiError {
    fn from(error: WorkflowError) -> Self {
        let detail = error.to_string();
        match error {
            WorkflowError::Inventory(error) => error.into(),
            WorkflowError::Sales(error) => error.into(),
            WorkflowError::Payment(error) => error.into(),
            WorkflowError::Delivery(error) => error.into(),
            WorkflowError::OrderNotFound => ApiError::not_found("order"),
            WorkflowError::OrderAlreadyCancelled => {
                ApiError::new(ProblemKind::OrderNotCancellable, detail)
            }
            WorkflowError::OrderCancelled => ApiError::new(ProblemKind::OrderCancelled, detail),
            WorkflowError::DerivedOrderIdTaken => ApiError::internal(error),
        }
    }
}

impl From<InventoryError> for ApiError {
    fn from(error: InventoryError) -> Self {
        let detail = error.to_string();
        match error {
            InventoryError::NotFound { .. } => ApiError::not_found("book"),
            InventoryError::AlreadyExists { isbn } => {
                ApiError::new(ProblemKind::BookExists, detail).with_isbn(isbn, None, None)
            }
            InventoryError::UnknownBook { isbn } => {
                ApiError::new(ProblemKind::ValidationFailed, detail)
                    .with_isbn(isbn, None, None)
                    .with_field_error(FieldError::new(
                        "items",
                        format!("no book with isbn {isbn}"),
                    ))
            }
            InventoryError::OutOfStock {
                isbn,
                requested,
                available,
            } => ApiError::new(ProblemKind::OutOfStock, detail).with_isbn(
                isbn,
                Some(requested),
                Some(available),
            ),
            InventoryError::InvalidTitle { reason } => {
                ApiError::validation(vec![FieldError::new("title", reason)])
            }
            InventoryError::InvalidAuthor { reason } => {
                ApiError::validation(vec![FieldError::new("author", reason)])
            }
            InventoryError::QuantityTooLarge { isbn, error } => {
                ApiError::validation(vec![FieldError::new(
                    "items",
                    format!("isbn {isbn}: {error}"),
                )])
                .with_isbn(isbn, None, None)
            }
            InventoryError::StockOverflow { isbn } => {
                ApiError::validation(vec![FieldError::new("stock", detail)])
                    .with_isbn(isbn, None, None)
            }
            // Reservation ids are fresh order ids: a clash is a bug, not the client's doing.
            InventoryError::ReservationExists { .. } => ApiError::internal(error),
            InventoryError::Unavailable(source) => ApiError::unavailable(source),
        }
    }
}

impl From<SalesError> for ApiError {
    fn from(error: SalesError) -> Self {
        let detail = error.to_string();
        match error {
            SalesError::EmptyOrder => ApiError::validation(vec![FieldError::new("items", detail)]),
            SalesError::MixedCurrencies | SalesError::TotalTooLarge => {
                ApiError::validation(vec![FieldError::new("items", detail)])
            }
            SalesError::NotFound { .. } => ApiError::not_found("order"),
            SalesError::AlreadyCancelled { .. } => {
                ApiError::new(ProblemKind::OrderNotCancellable, detail)
            }
            SalesError::AlreadyExists { .. } => ApiError::internal(error),
            SalesError::Unavailable(source) => ApiError::unavailable(source),
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        let detail = error.to_string();
        match error {
            PaymentError::Declined => ApiError::new(ProblemKind::PaymentDeclined, detail),
            PaymentError::InvalidToken | PaymentError::CardNumberNotAccepted => {
                ApiError::validation(vec![FieldError::new("payment.token", detail)])
            }
            PaymentError::UnknownTransaction { .. } | PaymentError::AlreadyRefunded { .. } => {
                ApiError::internal(error)
            }
            PaymentError::Unavailable(_) => ApiError::unavailable(error),
        }
    }
}

impl From<DeliveryError> for ApiError {
    fn from(error: DeliveryError) -> Self {
        let detail = error.to_string();
        match error {
            DeliveryError::DateInPast { .. } => {
                ApiError::validation(vec![FieldError::new("requested_date", detail)])
            }
            DeliveryError::NotFound { .. } => ApiError::not_found("delivery"),
            DeliveryError::AlreadyScheduled { .. } => {
                ApiError::new(ProblemKind::DeliveryExists, detail)
            }
            DeliveryError::AlreadyDispatched { .. } => {
                ApiError::new(ProblemKind::OrderNotCancellable, detail)
            }
            DeliveryError::InvalidTransition { from, to } => ApiError::new(
                ProblemKind::DeliveryStatusConflict,
                format!("the delivery is {from}; it cannot become {to}"),
            ),
            DeliveryError::HistoryFull { .. } => {
                ApiError::new(ProblemKind::DeliveryStatusConflict, detail)
            }
            DeliveryError::NoDayWithRoom { .. } | DeliveryError::DayFull { .. } => {
                ApiError::new(ProblemKind::NoDeliveryDay, detail)
            }
            DeliveryError::InvalidTrackingNumber => ApiError::internal(error),
            DeliveryError::Unavailable(source) => ApiError::unavailable(source),
        }
    }
}

impl From<bookstore_storage::events::WebhooksUnavailable> for ApiError {
    fn from(error: bookstore_storage::events::WebhooksUnavailable) -> Self {
        ApiError::unavailable(error)
    }
}

impl From<bookstore_storage::events::EventsUnavailable> for ApiError {
    fn from(error: bookstore_storage::events::EventsUnavailable) -> Self {
        ApiError::unavailable(error)
    }
}
