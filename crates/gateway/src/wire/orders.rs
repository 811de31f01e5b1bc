//! `/api/orders`: placing an order, the order bodies and their pages.

use std::collections::{BTreeMap, HashMap};

use apistos::{ApiComponent, JsonSchema};
use bookstore_inventory::StockLine;
use bookstore_sales::{Order, OrderStatus, PaymentStatus, PaymentToken};
use bookstore_types::{Isbn, OrderId, Quantity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{collect, timestamp};
use crate::http::problem::{ApiError, FieldError};
use crate::workflow::ValidOrderRequest;

/// Query parameters of `GET /api/orders`.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct ListOrdersQuery {
    /// Page size, 1 to 100 (default 20).
    // `skip_serializing_if` only keeps schemars from writing `"default": null`.
    #[serde(
        default,
        deserialize_with = "super::deserialize_limit",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100), extend("format" = "int32", "default" = 20))]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page, passed back as it came (an opaque value).
    pub cursor: Option<String>,
}

/// One line of `POST /api/orders`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct OrderItemRequest {
    /// ISBN-13 or ISBN-10 of a book in the catalogue.
    #[schemars(regex(pattern = r"^[0-9Xx -]{10,17}$"))]
    pub isbn: String,
    /// Copies, 1 to 100 (after merging lines for the same ISBN).
    #[schemars(range(min = 1, max = 100), extend("format" = "int32"))]
    pub quantity: i64,
}

/// How an order is paid: a token from the card processor, never card details.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct PaymentRequest {
    /// A payment token, e.g. `tok_visa`, `tok_mastercard` (approved) or `tok_chargeDeclined`.
    #[schemars(length(min = 1, max = 255))]
    pub token: String,
    /// Anything else a client sent in `payment` (rejected: only a token is accepted).
    #[serde(flatten)]
    #[schemars(skip)]
    pub other_fields: BTreeMap<String, serde_json::Value>,
}

/// `POST /api/orders`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct PlaceOrderRequest {
    /// The books to buy; lines for the same ISBN are merged.
    #[schemars(length(min = 1))]
    pub items: Vec<OrderItemRequest>,
    /// The payment.
    pub payment: PaymentRequest,
}

impl PlaceOrderRequest {
    /// Validates every line and the payment, merging lines for one ISBN; a 422 lists every
    /// problem found.
    pub fn validate(self) -> Result<ValidOrderRequest, ApiError> {
        let mut errors = Vec::new();
        if self.items.is_empty() {
            errors.push(FieldError::new("items", "must contain at least one line"));
        }
        let mut merged: Vec<(Isbn, u64)> = Vec::new();
        let mut position_of: HashMap<Isbn, usize> = HashMap::new();
        for (index, item) in self.items.iter().enumerate() {
            let isbn = collect(
                &format!("items[{index}].isbn"),
                Isbn::parse(&item.isbn),
                &mut errors,
            );
            let quantity = match u64::try_from(item.quantity) {
                Ok(q) => collect(
                    &format!("items[{index}].quantity"),
                    Quantity::new(q),
                    &mut errors,
                ),
                Err(_) => {
                    errors.push(FieldError::new(
                        format!("items[{index}].quantity"),
                        "must be between 1 and 100",
                    ));
                    None
                }
            };
            if let (Some(isbn), Some(quantity)) = (isbn, quantity) {
                let position = *position_of.entry(isbn).or_insert_with(|| {
                    merged.push((isbn, 0));
                    merged.len() - 1
                });
                merged[position].1 += u64::from(quantity.get());
            }
        }
        let lines: Vec<StockLine> = merged
            .into_iter()
            .filter_map(|(isbn, total)| match Quantity::new(total) {
                Ok(quantity) => Some(StockLine { isbn, quantity }),
                Err(error) => {
                    errors.push(FieldError::new(
                        "items",
                        format!("isbn {isbn}: {error} (lines for one ISBN are added up)"),
                    ));
                    None
                }
            })
            .collect();
        for field in self.payment.other_fields.keys() {
            errors.push(FieldError::new(
                format!("payment.{field}"),
                "only a payment token is accepted; card details are never accepted",
            ));
        }
        let token = collect(
            "payment.token",
            PaymentToken::parse(self.payment.token),
            &mut errors,
        );
        match token {
            Some(token) if errors.is_empty() => Ok(ValidOrderRequest { lines, token }),
            // A token that did not parse left its error in `errors`.
            _ => Err(ApiError::validation(errors)),
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "OrderLine")]
pub struct OrderLineBody {
    /// ISBN-13, bare 13 digits.
    #[schemars(regex(pattern = r"^97[89][0-9]{10}$"))]
    pub isbn: String,
    /// The title when the order was placed.
    pub title: String,
    /// Copies, 1 to 100.
    #[schemars(range(min = 1, max = 100))]
    pub quantity: u32,
    /// The price of one copy when the order was placed, in minor units of the order's
    /// `currency`.
    #[schemars(range(min = 0))]
    pub unit_price_cents: i64,
    /// `quantity × unit_price_cents`.
    #[schemars(range(min = 0))]
    pub line_total_cents: i64,
}

/// The payment of an order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Payment")]
pub struct PaymentBody {
    /// The processor's transaction id.
    pub transaction_id: Uuid,
    /// `captured`, or `refunded` once the order is cancelled.
    pub status: PaymentStatusBody,
}

/// The state of an order's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "apistos", rename = "PaymentStatus", transform = super::string_enum)]
pub enum PaymentStatusBody {
    /// The money was taken.
    Captured,
    /// The money was given back in full.
    Refunded,
}

impl From<PaymentStatus> for PaymentStatusBody {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Captured => Self::Captured,
            PaymentStatus::Refunded => Self::Refunded,
        }
    }
}

/// The state of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "apistos", rename = "OrderStatus", transform = super::string_enum)]
pub enum OrderStatusBody {
    /// Paid for and standing; its payment is captured.
    Confirmed,
    /// Called off; its payment is refunded.
    Cancelled,
}

impl From<OrderStatus> for OrderStatusBody {
    fn from(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Confirmed => Self::Confirmed,
            OrderStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// An order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Order")]
pub struct OrderBody {
    /// Order id.
    pub id: Uuid,
    /// `confirmed`, or `cancelled` once cancelled.
    pub status: OrderStatusBody,
    /// One line per distinct ISBN.
    pub items: Vec<OrderLineBody>,
    /// Sum of the line totals, in minor units of `currency`.
    #[schemars(range(min = 0))]
    pub total_cents: i64,
    /// ISO 4217 currency code.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// The payment.
    pub payment: PaymentBody,
    /// When the order was placed (RFC 3339, UTC).
    #[schemars(with = "DateTime<Utc>")]
    pub created_at: String,
}

impl From<&Order> for OrderBody {
    fn from(order: &Order) -> Self {
        let items = order
            .lines()
            .iter()
            .map(|line| OrderLineBody {
                isbn: line.isbn.to_string(),
                title: line.title.clone(),
                quantity: line.quantity.get(),
                unit_price_cents: line.unit_price.cents(),
                line_total_cents: line.line_total().map(|m| m.cents()).unwrap_or_default(),
            })
            .collect();
        Self {
            id: order.id().as_uuid(),
            status: OrderStatusBody::from(order.status()),
            items,
            total_cents: order.total().cents(),
            currency: order.total().currency().to_string(),
            payment: PaymentBody {
                transaction_id: order.payment().transaction_id.as_uuid(),
                status: PaymentStatusBody::from(order.payment().status),
            },
            created_at: timestamp(order.created_at()),
        }
    }
}

/// One page of orders.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "OrderPage", transform = super::next_cursor_is_always_present)]
pub struct OrderPageBody {
    /// The caller's orders, newest first.
    pub items: Vec<OrderBody>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A path holding an order id.
#[derive(Debug, Clone, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos")]
pub struct OrderPath {
    /// Order id.
    #[serde(deserialize_with = "super::deserialize_uuid")]
    pub id: Uuid,
}

impl OrderPath {
    /// The order id.
    pub fn order_id(&self) -> OrderId {
        OrderId::from_uuid(self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_request(items: serde_json::Value, payment: serde_json::Value) -> PlaceOrderRequest {
        serde_json::from_value(serde_json::json!({ "items": items, "payment": payment })).unwrap()
    }

    fn field_errors(error: ApiError) -> Vec<String> {
        error
            .problem()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn lines_for_one_isbn_in_different_spellings_are_merged() {
        let request = order_request(
            serde_json::json!([
                { "isbn": "9780134685991", "quantity": 2 },
                { "isbn": "0-13-468599-7", "quantity": 3 },
                { "isbn": "9781593278281", "quantity": 1 },
            ]),
            serde_json::json!({ "token": "tok_visa" }),
        );
        let valid = request.validate().unwrap();
        let lines: Vec<(String, u32)> = valid
            .lines
            .iter()
            .map(|l| (l.isbn.to_string(), l.quantity.get()))
            .collect();
        assert_eq!(
            lines,
            [
                ("9780134685991".to_owned(), 5),
                ("9781593278281".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn invalid_order_requests_report_every_bad_field() {
        for (items, payment, expected) in [
            (
                serde_json::json!([]),
                serde_json::json!({ "token": "tok_visa" }),
                vec!["items"],
            ),
            (
                serde_json::json!([{ "isbn": "9780134685992", "quantity": 0 }]),
                serde_json::json!({ "token": "" }),
                vec!["items[0].isbn", "items[0].quantity", "payment.token"],
            ),
            (
                serde_json::json!([{ "isbn": "9780134685991", "quantity": 60 }, { "isbn": "0134685997", "quantity": 41 }]),
                serde_json::json!({ "token": "tok_visa" }),
                vec!["items"],
            ),
            (
                serde_json::json!([{ "isbn": "9780134685991", "quantity": -1 }]),
                serde_json::json!({ "token": "tok_visa", "card_number": "4242424242424242" }),
                vec!["items[0].quantity", "payment.card_number"],
            ),
            (
                serde_json::json!([{ "isbn": "9780134685991", "quantity": 1 }]),
                serde_json::json!({ "token": "4242 4242 4242 4242" }),
                vec!["payment.token"],
            ),
        ] {
            let error = order_request(items.clone(), payment)
                .validate()
                .unwrap_err();
            assert_eq!(error.kind().status().as_u16(), 422);
            assert_eq!(field_errors(error), expected, "items {items}");
        }
    }

    #[test]
    fn numbers_in_json_bodies_must_be_json_integers() {
        let order = |quantity: &str| {
            serde_json::from_str::<PlaceOrderRequest>(&format!(
                r#"{{"items": [{{"isbn": "9780134685991", "quantity": {quantity}}}], "payment": {{"token": "tok_visa"}}}}"#
            ))
        };
        assert_eq!(order("2").unwrap().items[0].quantity, 2);
        for bad in ["2.0", "2e0", "\"2\"", "true", "null", "[2]", "0x2"] {
            assert!(order(bad).is_err(), "{bad}");
        }
    }
}
