//! The errors of the delivery domain.

use bookstore_types::OrderId;
use chrono::NaiveDate;

use crate::delivery::{DeliveryId, DeliveryStatus};

/// Why a delivery could not be scheduled, found or changed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The customer asked for a delivery date that has already passed.
    #[error("the requested delivery date {requested} is before today ({today})")]
    DateInPast {
        /// The date the customer asked for.
        requested: NaiveDate,
        /// Today's date (UTC) when the request was made.
        today: NaiveDate,
    },
    /// No delivery has this id.
    #[error("no delivery has the id {delivery_id}")]
    NotFound {
        /// The id that was looked up.
        delivery_id: DeliveryId,
    },
    /// The order already has a delivery; an order has at most one.
    #[error("order {order_id} already has the delivery {delivery_id}")]
    AlreadyScheduled {
        /// The order that was to be scheduled again.
        order_id: OrderId,
        /// The delivery the order already has.
        delivery_id: DeliveryId,
    },
    /// The delivery has left the warehouse, so it can no longer be cancelled.
    #[error("delivery {delivery_id} has already been dispatched (it is {status})")]
    AlreadyDispatched {
        /// The delivery that could not be cancelled.
        delivery_id: DeliveryId,
        /// Its status.
        status: DeliveryStatus,
    },
    /// The delivery's status does not allow this change.
    #[error("a {from} delivery cannot become {to}")]
    InvalidTransition {
        /// The status the delivery has.
        from: DeliveryStatus,
        /// The status it was asked to take.
        to: DeliveryStatus,
    },
    /// The day asked for (or every day tried after it) has no room left.
    #[error("no delivery day has room between {from} and {until}")]
    NoDayWithRoom {
        /// The first day tried.
        from: NaiveDate,
        /// The last day tried.
        until: NaiveDate,
    },
    /// The day has as many deliveries as its capacity.
    #[error("{date} has no room for another delivery")]
    DayFull {
        /// The day.
        date: NaiveDate,
    },
    /// The delivery's history holds as many updates as it may.
    #[error("delivery {delivery_id} has {max} tracking updates, the most it may hold")]
    HistoryFull {
        /// The delivery.
        delivery_id: DeliveryId,
        /// The most updates a history holds.
        max: usize,
    },
    /// A string is not a tracking number.
    #[error("a tracking number is BK followed by 10 upper-case letters or digits")]
    InvalidTrackingNumber,
    /// The store behind the deliveries failed; the cause is kept for logging at the edge.
    #[error("the delivery store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a field of a carrier update is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateFieldError {
    /// Blank.
    #[error("{field} must not be blank")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// Longer than allowed.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The most characters allowed.
        max: usize,
    },
    /// Holds a control character.
    #[error("{field} must not contain control characters")]
    ControlCharacter {
        /// The field.
        field: &'static str,
    },
    /// `scheduled` or `cancelled`: statuses the shop sets, not a carrier.
    #[error("{status} is not a status a carrier reports")]
    NotACarrierStatus {
        /// The status sent.
        status: DeliveryStatus,
    },
}

/// Why a string is not an assigned country code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not exactly two ASCII letters.
    #[error("a country code is two letters, such as GB or US")]
    CountryCodeNotTwoLetters,
    /// Two letters, but not a code ISO 3166-1 has assigned to a country or territory.
    #[error("{code} is not an assigned ISO 3166-1 alpha-2 country code")]
    CountryCodeNotAssigned {
        /// The two letters, upper-cased.
        code: String,
    },
}
