//! The JSON of fulfilment: delivery statuses, carrier updates, the tracking history, and
//! pages of deliveries.

use apistos::{ApiComponent, JsonSchema};
use bookstore_delivery::{
    Carrier, CarrierTrackingNumber, CarrierUpdate, DeliveryPage, DeliveryQuery, DeliveryStatus,
    Location, Note, TrackingEntry,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::deliveries::DeliveryBody;
use super::{FieldError, collect, cursor, finish, page_limit, parse_date, timestamp};
use crate::http::problem::ApiError;

/// How far in the future an update's `occurred_at` may lie (clocks differ a little).
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// Where a delivery is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "DeliveryStatus", transform = super::string_enum)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatusBody {
    /// Booked for its promised date; can still be cancelled.
    Scheduled,
    /// Handed to the carrier.
    Dispatched,
    /// Moving through the carrier's network.
    InTransit,
    /// On the van for today.
    OutForDelivery,
    /// The carrier tried and could not hand it over; it goes out again.
    AttemptedDelivery,
    /// Received. Final.
    Delivered,
    /// The carrier gave up; it may still be returned.
    Failed,
    /// Back with the shop. Final.
    ReturnedToSender,
    /// Cancelled before dispatch. Final.
    Cancelled,
}

impl From<DeliveryStatus> for DeliveryStatusBody {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Scheduled => Self::Scheduled,
            DeliveryStatus::Dispatched => Self::Dispatched,
            DeliveryStatus::InTransit => Self::InTransit,
            DeliveryStatus::OutForDelivery => Self::OutForDelivery,
            DeliveryStatus::AttemptedDelivery => Self::AttemptedDelivery,
            DeliveryStatus::Delivered => Self::Delivered,
            DeliveryStatus::Failed => Self::Failed,
            DeliveryStatus::ReturnedToSender => Self::ReturnedToSender,
            DeliveryStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// One carrier update in a delivery's history.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct TrackingEntryBody {
    /// The status the update reported.
    pub status: DeliveryStatusBody,
    /// When it happened (RFC 3339, UTC).
    #[schemars(with = "DateTime<Utc>")]
    pub occurred_at: String,
    /// When the shop recorded it (RFC 3339, UTC).
    #[schemars(with = "DateTime<Utc>")]
    pub recorded_at: String,
    /// The carrier the update named, or null.
    pub carrier: Option<String>,
    /// The carrier's tracking number the update named, or null.
    pub tracking_number: Option<String>,
    /// Where it happened, or null.
    pub location: Option<String>,
    /// The update's remark, or null.
    pub note: Option<String>,
    /// Whether it moved the delivery's status: false for a late update (older than the one
    /// that set the status) and for a repeated scan.
    pub applied: bool,
}

impl From<&TrackingEntry> for TrackingEntryBody {
    fn from(entry: &TrackingEntry) -> Self {
        let update = &entry.update;
        Self {
            status: update.status.into(),
            occurred_at: timestamp(update.occurred_at),
            recorded_at: timestamp(entry.recorded_at),
            carrier: update.carrier.as_ref().map(|v| v.as_str().to_owned()),
            tracking_number: update
                .tracking_number
                .as_ref()
                .map(|v| v.as_str().to_owned()),
            location: update.location.as_ref().map(|v| v.as_str().to_owned()),
            note: update.note.as_ref().map(|v| v.as_str().to_owned()),
            applied: entry.applied,
        }
    }
}

/// `POST /api/delivery/{id}/events`: what a carrier or the warehouse reports.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct CarrierUpdateRequest {
    /// The status reached: `dispatched`, `in_transit`, `out_for_delivery`,
    /// `attempted_delivery`, `delivered`, `failed` or `returned_to_sender`.
    #[schemars(extend("enum" = ["dispatched", "in_transit", "out_for_delivery", "attempted_delivery", "delivered", "failed", "returned_to_sender"]))]
    pub status: String,
    /// When it happened: RFC 3339 with an offset, at most five minutes in the future.
    #[schemars(with = "DateTime<Utc>")]
    pub occurred_at: String,
    /// The carrier (1 to 100 characters); a dispatch usually names it.
    pub carrier: Option<String>,
    /// The carrier's tracking number (1 to 64 characters).
    pub tracking_number: Option<String>,
    /// Where it happened (1 to 200 characters).
    pub location: Option<String>,
    /// A remark (1 to 1000 characters).
    pub note: Option<String>,
}

impl CarrierUpdateRequest {
    /// The update this request describes, or a 422 listing every invalid field.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<CarrierUpdate, ApiError> {
        let mut errors = Vec::new();
        let status = match DeliveryStatus::parse(&self.status) {
            Some(status) if status.is_carrier_status() => Some(status),
            _ => {
                errors.push(FieldError::new(
                    "status",
                    "must be one of dispatched, in_transit, out_for_delivery, attempted_delivery, delivered, failed, returned_to_sender",
                ));
                None
            }
        };
        let occurred_at = match DateTime::parse_from_rfc3339(&self.occurred_at) {
            Ok(time) if time.with_timezone(&Utc) > now + CLOCK_SKEW => {
                errors.push(FieldError::new("occurred_at", "must not lie in the future"));
                None
            }
            Ok(time) => Some(time.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new(
                    "occurred_at",
                    "must be an RFC 3339 date-time with an offset, e.g. 2026-12-03T09:30:00Z",
                ));
                None
            }
        };
        let carrier = self
            .carrier
            .as_deref()
            .and_then(|text| collect("carrier", Carrier::parse(text), &mut errors));
        let tracking_number = self.tracking_number.as_deref().and_then(|text| {
            collect(
                "tracking_number",
                CarrierTrackingNumber::parse(text),
                &mut errors,
            )
        });
        let location = self
            .location
            .as_deref()
            .and_then(|text| collect("location", Location::parse(text), &mut errors));
        let note = self
            .note
            .as_deref()
            .and_then(|text| collect("note", Note::parse(text), &mut errors));
        let (Some(status), Some(occurred_at)) = (status, occurred_at) else {
            // A field that did not parse left its error in `errors`.
            return Err(ApiError::validation(errors));
        };
        finish(errors)?;
        let mut update = CarrierUpdate::new(status, occurred_at)
            .map_err(|error| ApiError::validation(vec![FieldError::new("status", error)]))?;
        update.carrier = carrier;
        update.tracking_number = tracking_number;
        update.location = location;
        update.note = note;
        Ok(update)
    }
}

/// Query parameters of `GET /api/deliveries`.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct ListDeliveriesQuery {
    /// Only deliveries in this status.
    pub status: Option<DeliveryStatusBody>,
    /// Only deliveries promised for this day (`YYYY-MM-DD`, UTC): a day's pick list.
    #[schemars(with = "Option<NaiveDate>")]
    pub date: Option<String>,
    /// Page size, 1 to 100 (default 20).
    // `skip_serializing_if` only keeps schemars from writing `"default": null`.
    #[serde(
        default,
        deserialize_with = "super::deserialize_limit",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListDeliveriesQuery {
    /// The store query, or a problem naming the bad parameter.
    pub fn to_query(&self) -> Result<DeliveryQuery, ApiError> {
        let date =
            match self.date.as_deref() {
                None => None,
                Some(text) => Some(parse_date(text).map_err(|message| {
                    ApiError::validation(vec![FieldError::new("date", message)])
                })?),
            };
        let after = self
            .cursor
            .as_deref()
            .map(cursor::delivery_position)
            .transpose()?;
        Ok(DeliveryQuery {
            status: self.status.map(DeliveryStatus::from),
            date,
            after,
            limit: page_limit(self.limit)? as usize,
        })
    }
}

impl From<DeliveryStatusBody> for DeliveryStatus {
    fn from(status: DeliveryStatusBody) -> Self {
        match status {
            DeliveryStatusBody::Scheduled => Self::Scheduled,
            DeliveryStatusBody::Dispatched => Self::Dispatched,
            DeliveryStatusBody::InTransit => Self::InTransit,
            DeliveryStatusBody::OutForDelivery => Self::OutForDelivery,
            DeliveryStatusBody::AttemptedDelivery => Self::AttemptedDelivery,
            DeliveryStatusBody::Delivered => Self::Delivered,
            DeliveryStatusBody::Failed => Self::Failed,
            DeliveryStatusBody::ReturnedToSender => Self::ReturnedToSender,
            DeliveryStatusBody::Cancelled => Self::Cancelled,
        }
    }
}

/// One page of deliveries.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct DeliveryPageBody {
    /// The deliveries, in the order they were scheduled.
    pub deliveries: Vec<DeliveryBody>,
    /// The cursor of the next page, or null on the last page.
    pub next_cursor: Option<String>,
}

impl From<&DeliveryPage> for DeliveryPageBody {
    fn from(page: &DeliveryPage) -> Self {
        Self {
            deliveries: page.deliveries.iter().map(DeliveryBody::from).collect(),
            next_cursor: page.next_after.as_ref().map(cursor::for_delivery),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(status: &str, occurred_at: &str) -> CarrierUpdateRequest {
        CarrierUpdateRequest {
            status: status.to_owned(),
            occurred_at: occurred_at.to_owned(),
            carrier: None,
            tracking_number: None,
            location: None,
            note: None,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-12-03T12:00:00Z".parse().unwrap()
    }

    fn fields(error: ApiError) -> Vec<String> {
        error
            .problem()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_carrier_update_names_every_bad_field_at_once() {
        let bad = CarrierUpdateRequest {
            carrier: Some(" ".to_owned()),
            tracking_number: Some("x".repeat(65)),
            location: Some("hub\u{7}".to_owned()),
            note: Some("n".repeat(1001)),
            ..request("cancelled", "2026-12-03 09:00")
        };
        assert_eq!(
            fields(bad.validate(now()).unwrap_err()),
            vec![
                "status",
                "occurred_at",
                "carrier",
                "tracking_number",
                "location",
                "note"
            ]
        );
    }

    #[test]
    fn statuses_the_shop_sets_and_unknown_ones_are_refused() {
        for status in ["scheduled", "cancelled", "shipped", "DELIVERED", ""] {
            let error = request(status, "2026-12-03T09:00:00Z")
                .validate(now())
                .unwrap_err();
            assert_eq!(fields(error), vec!["status"], "{status}");
        }
    }

    #[test]
    fn an_update_from_the_future_is_refused_but_small_clock_skew_is_not() {
        assert!(
            request("dispatched", "2026-12-03T12:04:59Z")
                .validate(now())
                .is_ok()
        );
        let error = request("dispatched", "2026-12-03T12:05:01Z")
            .validate(now())
            .unwrap_err();
        assert_eq!(fields(error), vec!["occurred_at"]);
    }

    #[test]
    fn a_valid_update_keeps_its_details_and_its_time_in_utc() {
        let update = CarrierUpdateRequest {
            carrier: Some(" DHL ".to_owned()),
            tracking_number: Some("JJD0099".to_owned()),
            location: Some("Leipzig hub".to_owned()),
            note: Some("two parcels".to_owned()),
            ..request("in_transit", "2026-12-03T10:30:00+01:00")
        }
        .validate(now())
        .unwrap();
        assert_eq!(update.status, DeliveryStatus::InTransit);
        assert_eq!(
            update.occurred_at,
            "2026-12-03T09:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(update.carrier.unwrap().as_str(), "DHL");
        assert_eq!(update.location.unwrap().as_str(), "Leipzig hub");
    }

    #[test]
    fn a_date_filter_is_exactly_yyyy_mm_dd() {
        for good in ["2026-12-03", "2030-01-01"] {
            assert!(parse_date(good).is_ok(), "{good}");
        }
        for bad in [
            "2026-1-1",
            "2026-12-3",
            "26-12-03",
            "2026/12/03",
            "2026-13-01",
            " 2026-12-03",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
