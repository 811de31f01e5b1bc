//! A delivery of one order and the life cycle of its status.
//!
//! ```text
//! scheduled ──▶ dispatched ──▶ in_transit ──▶ out_for_delivery ──▶ delivered
//!     │             │              │               │   ▲
//!     ▼             │              │               ▼   │
//! cancelled         │              │         attempted_delivery
//!                   └──────────────┴───────────────┴──────▶ failed ──▶ returned_to_sender
//! ```
//!
//! [`DeliveryStatus::can_become`] is the whole table (tested exhaustively below): the shop
//! cancels a scheduled delivery; carriers move it forward, possibly skipping steps (a parcel
//! may be delivered without an `in_transit` scan), and out for delivery and an attempted
//! delivery alternate until it is delivered, failed or returned. `delivered`,
//! `returned_to_sender` and `cancelled` are final.
//!
//! Carriers' updates arrive late and out of order, so [`Delivery::record`] keeps every
//! update in the history (in `occurred_at` order) but moves the status only forward: an
//! update older than the one that set the current status never moves it back (a late
//! "dispatched" never turns a delivered parcel back into a dispatched one). Every change is
//! a method that consumes the delivery and returns the changed one. There are no setters.

use std::fmt;

use bookstore_types::OrderId;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};

use crate::address::Address;
use crate::error::DeliveryError;
use crate::schedule::schedule_date;
use crate::tracking::TrackingNumber;
use crate::update::{Carrier, CarrierTrackingNumber, CarrierUpdate, Recorded, TrackingEntry};

bookstore_types::uuid_id! {
    /// The id of a delivery.
    pub struct DeliveryId;
}

/// Where a delivery is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryStatus {
    /// Booked for a date; can still be cancelled.
    Scheduled,
    /// Handed to the carrier; can no longer be cancelled.
    Dispatched,
    /// Moving through the carrier's network.
    InTransit,
    /// On the van for today.
    OutForDelivery,
    /// The carrier tried and failed to hand it over; it goes out again.
    AttemptedDelivery,
    /// Received by the customer. Final.
    Delivered,
    /// The carrier gave up (lost, damaged, undeliverable); it may still be returned.
    Failed,
    /// Back with the shop. Final.
    ReturnedToSender,
    /// Cancelled before dispatch. Final.
    Cancelled,
}

impl DeliveryStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [DeliveryStatus; 9] = [
        Self::Scheduled,
        Self::Dispatched,
        Self::InTransit,
        Self::OutForDelivery,
        Self::AttemptedDelivery,
        Self::Delivered,
        Self::Failed,
        Self::ReturnedToSender,
        Self::Cancelled,
    ];

    /// The statuses a carrier update may report: all but `scheduled` and `cancelled`, which
    /// only the shop sets.
    pub const CARRIER_STATUSES: [DeliveryStatus; 7] = [
        Self::Dispatched,
        Self::InTransit,
        Self::OutForDelivery,
        Self::AttemptedDelivery,
        Self::Delivered,
        Self::Failed,
        Self::ReturnedToSender,
    ];

    /// The statuses a delivery in this status may move to: the life-cycle table.
    pub const fn next(self) -> &'static [DeliveryStatus] {
        use DeliveryStatus::*;
        match self {
            Scheduled => &[Dispatched, Cancelled],
            Dispatched => &[
                InTransit,
                OutForDelivery,
                Delivered,
                Failed,
                ReturnedToSender,
            ],
            InTransit => &[OutForDelivery, Delivered, Failed, ReturnedToSender],
            OutForDelivery => &[AttemptedDelivery, Delivered, Failed, ReturnedToSender],
            AttemptedDelivery => &[OutForDelivery, Failed, ReturnedToSender],
            Failed => &[ReturnedToSender],
            Delivered | ReturnedToSender | Cancelled => &[],
        }
    }

    /// Whether a delivery in this status may move to `next`.
    pub fn can_become(self, next: DeliveryStatus) -> bool {
        self.next().contains(&next)
    }

    /// Whether a carrier update may report this status.
    pub fn is_carrier_status(self) -> bool {
        Self::CARRIER_STATUSES.contains(&self)
    }

    /// Whether nothing can follow this status.
    pub fn is_final(self) -> bool {
        self.next().is_empty()
    }

    /// The status as a lower-case word (`"scheduled"`, `"out_for_delivery"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Dispatched => "dispatched",
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::AttemptedDelivery => "attempted_delivery",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::ReturnedToSender => "returned_to_sender",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status named by its word, as [`as_str`](Self::as_str) writes it.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == word)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most updates one delivery's history holds; a further one is
/// [`DeliveryError::HistoryFull`].
pub const MAX_HISTORY: usize = 500;

/// What a carrier has said about a delivery: who carries it, under which number, and every
/// update, in `occurred_at` order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracking {
    /// The carrier, once an update named it (the latest named wins).
    pub carrier: Option<Carrier>,
    /// The carrier's tracking number, once an update named it (the latest named wins).
    pub carrier_tracking_number: Option<CarrierTrackingNumber>,
    /// When the update that set the current status happened; `None` while no carrier update
    /// has moved the status.
    pub status_since: Option<DateTime<Utc>>,
    /// Every update, in `occurred_at` order (updates at the same moment in the order they
    /// were recorded).
    pub history: Vec<TrackingEntry>,
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
    tracking: Tracking,
}

impl Delivery {
    /// Schedules a new delivery of `order_id` to `address`.
    ///
    /// The date follows [`schedule_date`] with `now`'s UTC date as today; see
    /// [`Delivery::schedule_on`].
    pub fn schedule(
        order_id: OrderId,
        address: Address,
        requested: Option<NaiveDate>,
        now: DateTime<Utc>,
    ) -> Result<Self, DeliveryError> {
        let scheduled_date = schedule_date(requested, now.date_naive())?;
        Ok(Self::schedule_on(order_id, address, scheduled_date, now))
    }

    /// Schedules a new delivery of `order_id` to `address` on `scheduled_date` (which the
    /// caller chose with a [`DeliveryCalendar`](crate::DeliveryCalendar) and a day with
    /// room). The id and the tracking number are freshly generated and the status is
    /// [`DeliveryStatus::Scheduled`]. `created_at` is `now` kept to the microsecond, as
    /// databases keep timestamps.
    pub fn schedule_on(
        order_id: OrderId,
        address: Address,
        scheduled_date: NaiveDate,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: DeliveryId::generate(),
            order_id,
            status: DeliveryStatus::Scheduled,
            address,
            scheduled_date,
            tracking_number: TrackingNumber::generate(),
            created_at: now.trunc_subsecs(6),
            tracking: Tracking::default(),
        }
    }

    /// Rebuilds a delivery from stored fields, for stores reading rows back. Nothing is
    /// re-checked: the fields are trusted to come from a delivery made by this crate.
    #[allow(clippy::too_many_arguments, reason = "one argument per stored field")]
    pub fn restore(
        id: DeliveryId,
        order_id: OrderId,
        status: DeliveryStatus,
        address: Address,
        scheduled_date: NaiveDate,
        tracking_number: TrackingNumber,
        created_at: DateTime<Utc>,
        tracking: Tracking,
    ) -> Self {
        Self {
            id,
            order_id,
            status,
            address,
            scheduled_date,
            tracking_number,
            created_at,
            tracking,
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

    /// The business day the parcel goes out: the date promised to the customer.
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

    /// The carrier, its tracking number and the history of updates.
    pub fn tracking(&self) -> &Tracking {
        &self.tracking
    }

    /// Whether the delivery missed its promised date: it was delivered after the end of that
    /// day (UTC), or, not delivered (nor cancelled), that day has ended by `now`.
    pub fn is_late(&self, now: DateTime<Utc>) -> bool {
        // The start of the day after the promised one; none past the end of the calendar.
        let Some(deadline) = self
            .scheduled_date
            .succ_opt()
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|time| time.and_utc())
        else {
            return false;
        };
        match self.status {
            DeliveryStatus::Cancelled => false,
            DeliveryStatus::Delivered => self
                .tracking
                .status_since
                .is_some_and(|delivered_at| delivered_at >= deadline),
            _ => now >= deadline,
        }
    }

    /// Records a carrier's update in the history, and moves the status if the update may:
    ///
    /// - the same update recorded before → [`Recorded::Duplicate`], nothing changes;
    /// - an update older than the one that set the current status → kept in the history,
    ///   the status stays ([`Recorded::Kept`]): the status never moves backwards;
    /// - the table allows the current status to become the update's → the status moves
    ///   ([`Recorded::Applied`]), and the update's carrier and tracking number, if any,
    ///   become the delivery's;
    /// - the same status again (another scan on the way) → [`Recorded::Kept`];
    /// - anything else is [`DeliveryError::InvalidTransition`] naming the current status,
    ///   and nothing is recorded. A full history is [`DeliveryError::HistoryFull`].
    pub fn record(
        self,
        update: CarrierUpdate,
        recorded_at: DateTime<Utc>,
    ) -> Result<(Self, Recorded), DeliveryError> {
        if self
            .tracking
            .history
            .iter()
            .any(|entry| entry.update == update)
        {
            return Ok((self, Recorded::Duplicate));
        }
        if self.tracking.history.len() >= MAX_HISTORY {
            return Err(DeliveryError::HistoryFull {
                delivery_id: self.id,
                max: MAX_HISTORY,
            });
        }
        let late = self
            .tracking
            .status_since
            .is_some_and(|since| update.occurred_at < since);
        let outcome = if late || update.status == self.status {
            Recorded::Kept
        } else if self.status.can_become(update.status) {
            Recorded::Applied
        } else {
            return Err(DeliveryError::InvalidTransition {
                from: self.status,
                to: update.status,
            });
        };
        let mut delivery = self;
        let applied = outcome == Recorded::Applied;
        if applied {
            delivery.status = update.status;
            delivery.tracking.status_since = Some(update.occurred_at);
            if let Some(carrier) = &update.carrier {
                delivery.tracking.carrier = Some(carrier.clone());
            }
            if let Some(number) = &update.tracking_number {
                delivery.tracking.carrier_tracking_number = Some(number.clone());
            }
        }
        let history = &mut delivery.tracking.history;
        let position =
            history.partition_point(|entry| entry.update.occurred_at <= update.occurred_at);
        history.insert(
            position,
            TrackingEntry {
                update,
                recorded_at: recorded_at.trunc_subsecs(6),
                applied,
            },
        );
        Ok((delivery, outcome))
    }

    /// Hands a scheduled delivery to the carrier (an update at `now` with no detail).
    ///
    /// Any other status is [`DeliveryError::InvalidTransition`].
    pub fn dispatched(self) -> Result<Self, DeliveryError> {
        self.moved_by_carrier(DeliveryStatus::Dispatched)
    }

    /// Records that the delivery reached the customer (an update at `now` with no detail).
    ///
    /// A status the table does not allow to become `delivered` is
    /// [`DeliveryError::InvalidTransition`].
    pub fn delivered(self) -> Result<Self, DeliveryError> {
        self.moved_by_carrier(DeliveryStatus::Delivered)
    }

    fn moved_by_carrier(self, to: DeliveryStatus) -> Result<Self, DeliveryError> {
        if !self.status.can_become(to) {
            return Err(DeliveryError::InvalidTransition {
                from: self.status,
                to,
            });
        }
        let now = Utc::now();
        let update = CarrierUpdate::new(to, now).map_err(|_| DeliveryError::InvalidTransition {
            from: self.status,
            to,
        })?;
        self.record(update, now).map(|(delivery, _)| delivery)
    }

    /// Cancels a delivery that has not been dispatched yet.
    ///
    /// A delivery the carrier has (any carrier status) is
    /// [`DeliveryError::AlreadyDispatched`]; cancelling twice is
    /// [`DeliveryError::InvalidTransition`].
    pub fn cancelled(self) -> Result<Self, DeliveryError> {
        match self.status {
            DeliveryStatus::Scheduled => Ok(Self {
                status: DeliveryStatus::Cancelled,
                ..self
            }),
            DeliveryStatus::Cancelled => Err(DeliveryError::InvalidTransition {
                from: DeliveryStatus::Cancelled,
                to: DeliveryStatus::Cancelled,
            }),
            _ => Err(DeliveryError::AlreadyDispatched {
                delivery_id: self.id,
                status: self.status,
            }),
        }
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
            Tracking::default(),
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
    fn the_life_cycle_table_allows_exactly_the_documented_moves() {
        use DeliveryStatus::*;
        let allowed: &[(DeliveryStatus, DeliveryStatus)] = &[
            (Scheduled, Dispatched),
            (Scheduled, Cancelled),
            (Dispatched, InTransit),
            (Dispatched, OutForDelivery),
            (Dispatched, Delivered),
            (Dispatched, Failed),
            (Dispatched, ReturnedToSender),
            (InTransit, OutForDelivery),
            (InTransit, Delivered),
            (InTransit, Failed),
            (InTransit, ReturnedToSender),
            (OutForDelivery, AttemptedDelivery),
            (OutForDelivery, Delivered),
            (OutForDelivery, Failed),
            (OutForDelivery, ReturnedToSender),
            (AttemptedDelivery, OutForDelivery),
            (AttemptedDelivery, Failed),
            (AttemptedDelivery, ReturnedToSender),
            (Failed, ReturnedToSender),
        ];
        for from in DeliveryStatus::ALL {
            for to in DeliveryStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        let finals: Vec<DeliveryStatus> = DeliveryStatus::ALL
            .into_iter()
            .filter(|status| status.is_final())
            .collect();
        assert_eq!(finals, vec![Delivered, ReturnedToSender, Cancelled]);
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn update(status: DeliveryStatus, time: &str) -> CarrierUpdate {
        CarrierUpdate::new(status, at(time)).unwrap()
    }

    #[test]
    fn every_carrier_update_from_every_status_moves_keeps_or_is_refused_as_the_table_says() {
        // The delivery reached `from` by an update at 10:00; the new update is later.
        for from in DeliveryStatus::ALL {
            for to in DeliveryStatus::CARRIER_STATUSES {
                let mut before = delivery_in_status(from);
                if from.is_carrier_status() {
                    before.tracking.status_since = Some(at("2026-11-27T10:00:00Z"));
                }
                let result = before
                    .clone()
                    .record(update(to, "2026-11-27T11:00:00Z"), Utc::now());
                let case = format!("{from} + {to}");
                match result {
                    Ok((after, Recorded::Applied)) => {
                        assert!(from.can_become(to), "{case} moved");
                        assert_eq!(after.status(), to, "{case}");
                        assert_eq!(after.tracking.history.len(), 1, "{case}");
                    }
                    Ok((after, Recorded::Kept)) => {
                        assert_eq!(from, to, "{case}: only a repeat is kept");
                        assert_eq!(after.status(), from, "{case}");
                    }
                    Ok((_, Recorded::Duplicate)) => panic!("{case}: nothing to duplicate"),
                    Err(DeliveryError::InvalidTransition { from: f, to: t }) => {
                        assert!(!from.can_become(to) && from != to, "{case} refused");
                        assert_eq!((f, t), (from, to), "{case} names the current status");
                    }
                    Err(error) => panic!("{case}: {error:?}"),
                }
            }
        }
    }

    #[test]
    fn scheduled_and_cancelled_are_not_carrier_statuses() {
        for status in [DeliveryStatus::Scheduled, DeliveryStatus::Cancelled] {
            assert_eq!(
                CarrierUpdate::new(status, Utc::now()),
                Err(crate::UpdateFieldError::NotACarrierStatus { status })
            );
        }
    }

    #[test]
    fn a_late_update_joins_the_history_in_time_order_but_never_moves_the_status_back() {
        use DeliveryStatus::*;
        let delivery = delivery_in_status(Scheduled);
        let (delivery, _) = delivery
            .record(update(Dispatched, "2026-11-27T08:00:00Z"), Utc::now())
            .unwrap();
        let (delivery, recorded) = delivery
            .record(update(Delivered, "2026-11-27T15:00:00Z"), Utc::now())
            .unwrap();
        assert_eq!(recorded, Recorded::Applied);
        // A scan from the morning arrives after the delivery.
        let (delivery, recorded) = delivery
            .record(update(InTransit, "2026-11-27T09:30:00Z"), Utc::now())
            .unwrap();
        assert_eq!(recorded, Recorded::Kept);
        assert_eq!(delivery.status(), Delivered);
        let statuses: Vec<(DeliveryStatus, bool)> = delivery
            .tracking()
            .history
            .iter()
            .map(|entry| (entry.update.status, entry.applied))
            .collect();
        assert_eq!(
            statuses,
            vec![(Dispatched, true), (InTransit, false), (Delivered, true)]
        );
        // Even a late "dispatched" from before everything stays in the history only.
        let (delivery, recorded) = delivery
            .record(update(Dispatched, "2026-11-27T07:00:00Z"), Utc::now())
            .unwrap();
        assert_eq!(recorded, Recorded::Kept);
        assert_eq!(delivery.status(), Delivered);
        assert_eq!(
            delivery.tracking().status_since,
            Some(at("2026-11-27T15:00:00Z"))
        );
    }

    #[test]
    fn the_same_update_sent_twice_is_recorded_once() {
        let sent = CarrierUpdate {
            carrier: Some(Carrier::parse("DHL").unwrap()),
            tracking_number: Some(CarrierTrackingNumber::parse("JJD0099").unwrap()),
            ..update(DeliveryStatus::Dispatched, "2026-11-27T08:00:00Z")
        };
        let (once, first) = delivery_in_status(DeliveryStatus::Scheduled)
            .record(sent.clone(), Utc::now())
            .unwrap();
        assert_eq!(first, Recorded::Applied);
        assert_eq!(
            once.tracking().carrier.as_ref().map(Carrier::as_str),
            Some("DHL")
        );
        assert_eq!(
            once.tracking()
                .carrier_tracking_number
                .as_ref()
                .map(CarrierTrackingNumber::as_str),
            Some("JJD0099")
        );
        let (twice, second) = once.clone().record(sent, Utc::now()).unwrap();
        assert_eq!(second, Recorded::Duplicate);
        assert_eq!(twice, once);
    }

    #[test]
    fn attempts_and_new_tries_alternate_until_delivered() {
        use DeliveryStatus::*;
        let mut delivery = delivery_in_status(Scheduled);
        for (status, time) in [
            (Dispatched, "2026-11-27T08:00:00Z"),
            (OutForDelivery, "2026-11-27T09:00:00Z"),
            (AttemptedDelivery, "2026-11-27T12:00:00Z"),
            (OutForDelivery, "2026-11-28T09:00:00Z"),
            (Delivered, "2026-11-28T11:00:00Z"),
        ] {
            let (next, recorded) = delivery.record(update(status, time), Utc::now()).unwrap();
            assert_eq!(recorded, Recorded::Applied, "{status}");
            delivery = next;
        }
        assert_eq!(delivery.status(), Delivered);
        assert_eq!(delivery.tracking().history.len(), 5);
    }

    #[test]
    fn a_full_history_refuses_another_update() {
        let mut delivery = delivery_in_status(DeliveryStatus::Scheduled);
        let start = at("2026-11-27T08:00:00Z");
        let (next, _) = delivery
            .record(
                CarrierUpdate::new(DeliveryStatus::Dispatched, start).unwrap(),
                start,
            )
            .unwrap();
        delivery = next;
        for minute in 1..MAX_HISTORY as i64 {
            let time = start + chrono::Duration::minutes(minute);
            let (next, _) = delivery
                .record(
                    CarrierUpdate::new(DeliveryStatus::Dispatched, time).unwrap(),
                    time,
                )
                .unwrap();
            delivery = next;
        }
        let error = delivery
            .record(
                update(DeliveryStatus::Delivered, "2026-12-31T00:00:00Z"),
                Utc::now(),
            )
            .unwrap_err();
        assert!(
            matches!(error, DeliveryError::HistoryFull { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn cancelling_works_only_before_the_carrier_has_the_parcel() {
        for from in DeliveryStatus::ALL {
            let before = delivery_in_status(from);
            match (from, before.clone().cancelled()) {
                (DeliveryStatus::Scheduled, Ok(after)) => {
                    assert_eq!(after.status(), DeliveryStatus::Cancelled)
                }
                (DeliveryStatus::Cancelled, Err(DeliveryError::InvalidTransition { .. })) => {}
                (
                    _,
                    Err(DeliveryError::AlreadyDispatched {
                        delivery_id,
                        status,
                    }),
                ) => {
                    assert!(from.is_carrier_status(), "{from}");
                    assert_eq!((delivery_id, status), (before.id(), from));
                }
                (from, other) => panic!("cancelling a {from} delivery: {other:?}"),
            }
        }
    }

    #[test]
    fn a_delivery_is_late_once_its_promised_day_ends_undelivered_or_if_delivered_after() {
        // Promised for Friday 27 November.
        let scheduled = delivery_in_status(DeliveryStatus::Scheduled);
        assert!(!scheduled.is_late(at("2026-11-27T23:59:59Z")));
        assert!(scheduled.is_late(at("2026-11-28T00:00:00Z")));
        let cancelled = delivery_in_status(DeliveryStatus::Cancelled);
        assert!(!cancelled.is_late(at("2026-12-28T00:00:00Z")));

        let (dispatched, _) = scheduled
            .record(
                update(DeliveryStatus::Dispatched, "2026-11-27T08:00:00Z"),
                Utc::now(),
            )
            .unwrap();
        let (on_time, _) = dispatched
            .clone()
            .record(
                update(DeliveryStatus::Delivered, "2026-11-27T18:00:00Z"),
                Utc::now(),
            )
            .unwrap();
        assert!(!on_time.is_late(at("2026-12-28T00:00:00Z")));
        let (behind, _) = dispatched
            .record(
                update(DeliveryStatus::Delivered, "2026-11-28T09:00:00Z"),
                Utc::now(),
            )
            .unwrap();
        assert!(behind.is_late(at("2026-11-28T10:00:00Z")));
    }

    #[test]
    fn statuses_render_as_lower_case_words_and_parse_back() {
        let statuses = [
            (DeliveryStatus::Scheduled, "scheduled"),
            (DeliveryStatus::Dispatched, "dispatched"),
            (DeliveryStatus::InTransit, "in_transit"),
            (DeliveryStatus::OutForDelivery, "out_for_delivery"),
            (DeliveryStatus::AttemptedDelivery, "attempted_delivery"),
            (DeliveryStatus::Delivered, "delivered"),
            (DeliveryStatus::Failed, "failed"),
            (DeliveryStatus::ReturnedToSender, "returned_to_sender"),
            (DeliveryStatus::Cancelled, "cancelled"),
        ];
        assert_eq!(statuses.len(), DeliveryStatus::ALL.len());
        for (status, word) in statuses {
            assert_eq!(status.as_str(), word);
            assert_eq!(status.to_string(), word);
            assert_eq!(DeliveryStatus::parse(word), Some(status));
        }
        assert_eq!(DeliveryStatus::parse("Delivered"), None);
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
