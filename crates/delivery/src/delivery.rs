//! A delivery of one order and the life cycle of its status.
//!
//! ```text
//! Scheduled ──dispatched()──▶ Dispatched ──delivered()──▶ Delivered
//!     │
//!     └──cancelled()──▶ Cancelled
//! ```
//!
//! Every change is a method that consumes the delivery and returns the changed one, or an
//! error naming why the change is not allowed. There are no setters.

use std::fmt;

use bookstore_types::OrderId;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};

use crate::address::Address;
use crate::error::DeliveryError;
use crate::schedule::schedule_date;
use crate::tracking::TrackingNumber;

bookstore_types::uuid_id! {
    /// The id of a delivery.
    pub struct DeliveryId;
}

/// Where a delivery is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Booked for a date; can still be cancelled.
    Scheduled,
    /// Handed to the carrier; can no longer be cancelled.
    Dispatched,
    /// Received by the customer. Final.
    Delivered,
    /// Cancelled before dispatch. Final.
    Cancelled,
}

impl DeliveryStatus {
    /// The status as a lower-case word: `"scheduled"`, `"dispatched"`, `"delivered"` or
    /// `"cancelled"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Dispatched => "dispatched",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The delivery of one order to one address.
///
/// `Debug` shows every field, but the address prints as `Address(<redacted>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    id: DeliveryId,
    order_id: OrderId,
    status: DeliveryStatus,
    address: Address,
    scheduled_date: NaiveDate,
    tracking_number: TrackingNumber,
    created_at: DateTime<Utc>,
}

impl Delivery {
    /// Schedules a new delivery of `order_id` to `address`.
    ///
    /// The date follows [`schedule_date`] with `now`'s UTC date as today; the id and the
    /// tracking number are freshly generated and the status is
    /// [`DeliveryStatus::Scheduled`]. `created_at` is `now` kept to the microsecond, as
    /// databases keep timestamps.
    pub fn schedule(
        order_id: OrderId,
        address: Address,
        requested: Option<NaiveDate>,
        now: DateTime<Utc>,
    ) -> Result<Self, DeliveryError> {
        let scheduled_date = schedule_date(requested, now.date_naive())?;
        Ok(Self {
            id: DeliveryId::generate(),
            order_id,
            status: DeliveryStatus::Scheduled,
            address,
            scheduled_date,
            tracking_number: TrackingNumber::generate(),
            created_at: now.trunc_subsecs(6),
        })
    }

    /// Rebuilds a delivery from stored fields, for stores reading rows back. Nothing is
    /// re-checked: the fields are trusted to come from a delivery made by this crate.
    pub fn restore(
        id: DeliveryId,
        order_id: OrderId,
        status: DeliveryStatus,
        address: Address,
        scheduled_date: NaiveDate,
        tracking_number: TrackingNumber,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            order_id,
            status,
            address,
            scheduled_date,
            tracking_number,
            created_at,
        }
    }

    /// The delivery's id.
    pub fn id(&self) -> DeliveryId {
        self.id
    }

    /// The order being delivered.
    pub fn order_id(&self) -> OrderId {
        self.order_id
    }

    /// Where the delivery is in its life cycle.
    pub fn status(&self) -> DeliveryStatus {
        self.status
    }

    /// Where the parcel goes.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The business day the parcel goes out.
    pub fn scheduled_date(&self) -> NaiveDate {
        self.scheduled_date
    }

    /// The number the customer quotes to follow the parcel.
    pub fn tracking_number(&self) -> &TrackingNumber {
        &self.tracking_number
    }

    /// When the delivery was scheduled.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// Hands a scheduled delivery to the carrier.
    ///
    /// Any other status is [`DeliveryError::InvalidTransition`].
    pub fn dispatched(self) -> Result<Self, DeliveryError> {
        match self.status {
            DeliveryStatus::Scheduled => Ok(self.with_status(DeliveryStatus::Dispatched)),
            from => Err(DeliveryError::InvalidTransition {
                from,
                to: DeliveryStatus::Dispatched,
            }),
        }
    }

    /// Records that a dispatched delivery reached the customer.
    ///
    /// Any other status is [`DeliveryError::InvalidTransition`].
    pub fn delivered(self) -> Result<Self, DeliveryError> {
        match self.status {
            DeliveryStatus::Dispatched => Ok(self.with_status(DeliveryStatus::Delivered)),
            from => Err(DeliveryError::InvalidTransition {
                from,
                to: DeliveryStatus::Delivered,
            }),
        }
    }

    /// Cancels a delivery that has not been dispatched yet.
    ///
    /// A dispatched or delivered parcel is [`DeliveryError::AlreadyDispatched`]; cancelling
    /// twice is [`DeliveryError::InvalidTransition`].
    pub fn cancelled(self) -> Result<Self, DeliveryError> {
        match self.status {
            DeliveryStatus::Scheduled => Ok(self.with_status(DeliveryStatus::Cancelled)),
            DeliveryStatus::Dispatched | DeliveryStatus::Delivered => {
                Err(DeliveryError::AlreadyDispatched {
                    delivery_id: self.id,
                })
            }
            DeliveryStatus::Cancelled => Err(DeliveryError::InvalidTransition {
                from: DeliveryStatus::Cancelled,
                to: DeliveryStatus::Cancelled,
            }),
        }
    }

    fn with_status(self, status: DeliveryStatus) -> Self {
        Self { status, ..self }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::address::tests::valid_address;

    /// A delivery of a fresh order, restored in the given status.
    pub(crate) fn delivery_in_status(status: DeliveryStatus) -> Delivery {
        delivery_for_order_in_status(OrderId::generate(), status)
    }

    /// A delivery of `order_id`, restored in the given status.
    pub(crate) fn delivery_for_order_in_status(
        order_id: OrderId,
        status: DeliveryStatus,
    ) -> Delivery {
        Delivery::restore(
            DeliveryId::generate(),
            order_id,
            status,
            valid_address(),
            "2026-11-27".parse().unwrap(),
            TrackingNumber::generate(),
            "2026-11-26T10:00:00Z".parse().unwrap(),
        )
    }

    #[test]
    fn scheduling_a_delivery_uses_the_utc_date_of_now_and_starts_scheduled() {
        let order_id = OrderId::generate();
        // 23:30 UTC on Thursday 26 November; the next business day is Friday.
        let now: DateTime<Utc> = "2026-11-26T23:30:00Z".parse().unwrap();
        let delivery = Delivery::schedule(order_id, valid_address(), None, now).unwrap();
        assert_eq!(delivery.order_id(), order_id);
        assert_eq!(delivery.status(), DeliveryStatus::Scheduled);
        assert_eq!(delivery.address(), &valid_address());
        assert_eq!(delivery.scheduled_date(), "2026-11-27".parse().unwrap());
        assert_eq!(delivery.created_at(), now);
        assert_eq!(delivery.tracking_number().as_str().len(), 12);
    }

    #[test]
    fn the_scheduling_time_is_kept_to_the_microsecond() {
        let now: DateTime<Utc> = "2026-11-26T10:00:00.123456789Z".parse().unwrap();
        let delivery = Delivery::schedule(OrderId::generate(), valid_address(), None, now).unwrap();
        assert_eq!(
            delivery.created_at(),
            "2026-11-26T10:00:00.123456Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
        );
    }

    #[test]
    fn scheduling_for_a_date_in_the_past_fails() {
        let now: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        let requested = "2026-11-25".parse().unwrap();
        let error = Delivery::schedule(OrderId::generate(), valid_address(), Some(requested), now)
            .unwrap_err();
        assert!(
            matches!(error, DeliveryError::DateInPast { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn scheduled_deliveries_get_distinct_ids_and_tracking_numbers() {
        let now = Utc::now();
        let first = Delivery::schedule(OrderId::generate(), valid_address(), None, now).unwrap();
        let second = Delivery::schedule(OrderId::generate(), valid_address(), None, now).unwrap();
        assert_ne!(first.id(), second.id());
        assert_ne!(first.tracking_number(), second.tracking_number());
    }

    #[test]
    fn each_status_allows_only_its_documented_transitions() {
        use DeliveryStatus::{Cancelled, Delivered, Dispatched, Scheduled};
        type Transition = fn(Delivery) -> Result<Delivery, DeliveryError>;
        /// What a transition should do: move to a status, or fail in a named way.
        #[derive(Debug)]
        enum Outcome {
            Becomes(DeliveryStatus),
            InvalidTransition,
            AlreadyDispatched,
        }
        use Outcome::{AlreadyDispatched, Becomes, InvalidTransition};
        let transitions: [(&str, Transition, DeliveryStatus); 3] = [
            ("dispatched", Delivery::dispatched, Dispatched),
            ("delivered", Delivery::delivered, Delivered),
            ("cancelled", Delivery::cancelled, Cancelled),
        ];
        // Rows: from; columns: dispatched(), delivered(), cancelled().
        let table = [
            (
                Scheduled,
                [Becomes(Dispatched), InvalidTransition, Becomes(Cancelled)],
            ),
            (
                Dispatched,
                [InvalidTransition, Becomes(Delivered), AlreadyDispatched],
            ),
            (
                Delivered,
                [InvalidTransition, InvalidTransition, AlreadyDispatched],
            ),
            (
                Cancelled,
                [InvalidTransition, InvalidTransition, InvalidTransition],
            ),
        ];
        for (from, outcomes) in table {
            for ((name, transition, to), expected) in transitions.iter().zip(outcomes) {
                let before = delivery_in_status(from);
                let result = transition(before.clone());
                let case = format!("{from} -> {name}()");
                match (expected, result) {
                    (Becomes(status), Ok(after)) => {
                        assert_eq!(after.status(), status, "{case}");
                        assert_eq!(
                            after,
                            Delivery { status, ..before },
                            "{case} changed more than the status"
                        );
                    }
                    (
                        InvalidTransition,
                        Err(DeliveryError::InvalidTransition { from: f, to: t }),
                    ) => {
                        assert_eq!((f, t), (from, *to), "{case}");
                    }
                    (AlreadyDispatched, Err(DeliveryError::AlreadyDispatched { delivery_id })) => {
                        assert_eq!(delivery_id, before.id(), "{case}");
                    }
                    (expected, actual) => panic!("{case}: expected {expected:?}, got {actual:?}"),
                }
            }
        }
    }

    #[test]
    fn statuses_render_as_lower_case_words() {
        let statuses = [
            (DeliveryStatus::Scheduled, "scheduled"),
            (DeliveryStatus::Dispatched, "dispatched"),
            (DeliveryStatus::Delivered, "delivered"),
            (DeliveryStatus::Cancelled, "cancelled"),
        ];
        for (status, word) in statuses {
            assert_eq!(status.as_str(), word);
            assert_eq!(status.to_string(), word);
        }
    }

    #[test]
    fn delivery_ids_render_as_lowercase_hyphenated_uuids() {
        let id: DeliveryId = "67E55044-10B1-426F-9247-BB680E5FE0C8".parse().unwrap();
        assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_eq!(DeliveryId::from_uuid(id.as_uuid()), id);
    }

    #[test]
    fn generated_delivery_ids_are_distinct_and_time_ordered() {
        let first = DeliveryId::generate();
        let second = DeliveryId::generate();
        assert_ne!(first, second);
        assert!(first < second);
        assert_eq!(first.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn debug_output_of_a_delivery_hides_the_address() {
        let printed = format!("{:?}", delivery_in_status(DeliveryStatus::Scheduled));
        assert!(printed.contains("Address(<redacted>)"), "{printed}");
        assert!(!printed.contains("Lovelace"), "{printed}");
    }
}
