//! The `data` of events: each resource as the API returns it ([`WireRenderer`]), and the
//! payment body only events carry ([`PaymentEventBody`]).

use apistos::{ApiComponent, JsonSchema};
use bookstore_delivery::Delivery;
use bookstore_inventory::Book;
use bookstore_sales::Order;
use bookstore_storage::events::{EventRenderer, PaymentRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::books::BookView;
use super::deliveries::DeliveryBody;
use super::orders::{OrderBody, PaymentStatusBody};

/// A payment, as `payment.captured` and `payment.refunded` events describe it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "PaymentEvent")]
pub struct PaymentEventBody {
    /// The processor's transaction id.
    pub transaction_id: Uuid,
    /// The order it pays for.
    pub order_id: Uuid,
    /// The amount, in minor units of `currency`.
    #[schemars(range(min = 0))]
    pub amount_cents: i64,
    /// ISO 4217 currency code.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// `captured`, or `refunded` once given back.
    pub status: PaymentStatusBody,
}

impl From<&PaymentRecord> for PaymentEventBody {
    fn from(payment: &PaymentRecord) -> Self {
        Self {
            transaction_id: payment.transaction_id.as_uuid(),
            order_id: payment.order_id.as_uuid(),
            amount_cents: payment.amount.cents(),
            currency: payment.amount.currency().to_string(),
            status: PaymentStatusBody::from(payment.status),
        }
    }
}

/// Renders events' data with the API's own bodies, so an event's `data` is byte for byte
/// what a `GET` of the resource answered at that moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireRenderer;

/// The bodies are plain data: serializing them cannot fail.
fn to_json(body: &impl Serialize) -> String {
    serde_json::to_string(body).unwrap_or_else(|_| "null".to_owned())
}

impl EventRenderer for WireRenderer {
    fn book(&self, book: &Book) -> String {
        to_json(&BookView(book))
    }

    fn order(&self, order: &Order) -> String {
        to_json(&OrderBody::from(order))
    }

    fn payment(&self, payment: &PaymentRecord) -> String {
        to_json(&PaymentEventBody::from(payment))
    }

    fn delivery(&self, delivery: &Delivery) -> String {
        to_json(&DeliveryBody::from(delivery))
    }
}
