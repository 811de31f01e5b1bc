//! `/api/delivery`: scheduling a delivery and the delivery body (carrier updates, the
//! tracking history and pages of deliveries are in [`super::tracking`]).

use apistos::{ApiComponent, JsonSchema};
use bookstore_delivery::{Address, AddressInput, Delivery, schedule_date};
use bookstore_types::OrderId;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{collect, parse_date, parse_uuid, timestamp, tracking};
use crate::http::problem::{ApiError, FieldError};
use crate::workflow::ValidDeliveryRequest;

/// A postal address.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Address")]
pub struct AddressBody {
    /// Who receives the parcel.
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub recipient: String,
    /// Street and number.
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub line1: String,
    /// Optional second line.
    #[schemars(length(max = 200))]
    pub line2: Option<String>,
    /// City.
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub city: String,
    /// Postal code: letters, digits, spaces and hyphens.
    #[schemars(
        length(min = 1, max = 20),
        regex(pattern = r"^[A-Za-z0-9 -]*[A-Za-z0-9][A-Za-z0-9 -]*$")
    )]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, e.g. `GB`.
    #[schemars(regex(pattern = r"^[A-Za-z]{2}$"))]
    pub country: String,
}

impl From<&Address> for AddressBody {
    fn from(address: &Address) -> Self {
        Self {
            recipient: address.recipient().to_owned(),
            line1: address.line1().to_owned(),
            line2: address.line2().map(str::to_owned),
            city: address.city().to_owned(),
            postal_code: address.postal_code().to_owned(),
            country: address.country().as_str().to_owned(),
        }
    }
}

/// `POST /api/delivery`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct ScheduleDeliveryRequest {
    /// The order to deliver.
    #[schemars(with = "Uuid")]
    pub order_id: String,
    /// Where to deliver it.
    pub address: AddressBody,
    /// The wished-for date (UTC, `YYYY-MM-DD`); the next business day from tomorrow on when
    /// omitted, today, or a weekend.
    #[schemars(with = "Option<NaiveDate>")]
    pub requested_date: Option<String>,
}

impl ScheduleDeliveryRequest {
    /// Validates the order id, the address and the date; a 422 lists every problem.
    pub fn validate(self) -> Result<ValidDeliveryRequest, ApiError> {
        let mut errors = Vec::new();
        let order_id =
            collect("order_id", parse_uuid(&self.order_id), &mut errors).map(OrderId::from_uuid);
        let requested_date = match self.requested_date.as_deref() {
            None => None,
            Some(text) => collect("requested_date", parse_date(text), &mut errors),
        };
        // The scheduling rule is checked again when the delivery is created; checking it
        // here too lets one 422 report a past date together with any address problems.
        if let Err(error) = schedule_date(requested_date, Utc::now().date_naive()) {
            errors.push(FieldError::new("requested_date", error));
        }
        let input = AddressInput {
            recipient: self.address.recipient,
            line1: self.address.line1,
            line2: self.address.line2,
            city: self.address.city,
            postal_code: self.address.postal_code,
            country: self.address.country,
        };
        let address = match Address::parse(input) {
            Ok(address) => Some(address),
            Err(field_errors) => {
                errors.extend(
                    field_errors
                        .into_iter()
                        .map(|e| FieldError::new(format!("address.{}", e.field), e.message)),
                );
                None
            }
        };
        match (order_id, address) {
            (Some(order_id), Some(address)) if errors.is_empty() => Ok(ValidDeliveryRequest {
                order_id,
                address,
                requested_date,
            }),
            // A field that did not parse left its error in `errors`.
            _ => Err(ApiError::validation(errors)),
        }
    }
}

/// A delivery, with its tracking history.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Delivery")]
pub struct DeliveryBody {
    /// Delivery id.
    pub id: Uuid,
    /// The order delivered.
    pub order_id: Uuid,
    /// Where it is in its life cycle.
    pub status: tracking::DeliveryStatusBody,
    /// Where to.
    pub address: AddressBody,
    /// The business day it goes out.
    #[schemars(with = "NaiveDate")]
    pub scheduled_date: String,
    /// The day promised to the customer (the scheduled day).
    #[schemars(with = "NaiveDate")]
    pub promised_date: String,
    /// Whether it missed its promised date: delivered after the end of that day (UTC), or
    /// not delivered (nor cancelled) when that day has ended.
    pub late: bool,
    /// The shop's tracking number, `BK` and ten upper-case letters or digits.
    #[schemars(regex(pattern = r"^BK[0-9A-Z]{10}$"))]
    pub tracking_number: String,
    /// The carrier, once an update named it, or null.
    pub carrier: Option<String>,
    /// The carrier's own tracking number, once an update named it, or null.
    pub carrier_tracking_number: Option<String>,
    /// Every carrier update, in `occurred_at` order.
    pub history: Vec<tracking::TrackingEntryBody>,
    /// When it was scheduled (RFC 3339, UTC).
    #[schemars(with = "DateTime<Utc>")]
    pub created_at: String,
}

impl From<&Delivery> for DeliveryBody {
    /// The delivery as of now (`late` is computed at the moment of the response).
    fn from(delivery: &Delivery) -> Self {
        let date = delivery.scheduled_date().format("%Y-%m-%d").to_string();
        let tracked = delivery.tracking();
        Self {
            id: delivery.id().as_uuid(),
            order_id: delivery.order_id().as_uuid(),
            status: delivery.status().into(),
            address: AddressBody::from(delivery.address()),
            scheduled_date: date.clone(),
            promised_date: date,
            late: delivery.is_late(Utc::now()),
            tracking_number: delivery.tracking_number().as_str().to_owned(),
            carrier: tracked.carrier.as_ref().map(|v| v.as_str().to_owned()),
            carrier_tracking_number: tracked
                .carrier_tracking_number
                .as_ref()
                .map(|v| v.as_str().to_owned()),
            history: tracked
                .history
                .iter()
                .map(tracking::TrackingEntryBody::from)
                .collect(),
            created_at: timestamp(delivery.created_at()),
        }
    }
}

/// A path holding a delivery id.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct DeliveryPath {
    /// Delivery id.
    #[serde(deserialize_with = "super::deserialize_uuid")]
    pub id: Uuid,
}
