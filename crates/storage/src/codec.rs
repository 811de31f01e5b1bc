//! Conversions between domain values and the plain column values both backends store:
//! text, 64-bit integers, UUIDs, dates. Reading checks every value again; a value that
//! does not parse is a [`CorruptRow`], reported as the store being unavailable.

use bookstore_delivery::{
    Address, AddressInput, Carrier, CarrierTrackingNumber, CarrierUpdate, Delivery, DeliveryId,
    DeliveryStatus, Location, Note, Tracking, TrackingEntry, TrackingNumber,
};
use bookstore_inventory::{Author, Book, StockLine, Title};
use bookstore_sales::{OrderLine, OrderStatus, PaymentStatus};
use bookstore_types::{Currency, Isbn, Money, OrderId, Quantity};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::failure::CorruptRow;

/// A count or position (an event's position or sequence, a cursor, a duration in
/// milliseconds) as both backends store it: a 64-bit signed integer, saturating at
/// `i64::MAX`, which none comes near.
pub(crate) fn to_db_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored count or position back; a negative one, which no store writes, reads as 0.
pub(crate) fn from_db_count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

/// A book's stored columns, as read from a row.
pub(crate) struct BookColumns<'row> {
    pub(crate) isbn: &'row str,
    pub(crate) title: String,
    pub(crate) author: String,
    pub(crate) price_cents: i64,
    pub(crate) currency: &'row str,
    pub(crate) stock: i64,
}

/// The book stored in `columns`.
pub(crate) fn book(columns: BookColumns<'_>) -> Result<Book, CorruptRow> {
    Ok(Book {
        isbn: isbn(columns.isbn)?,
        title: Title::parse(columns.title).map_err(|_| CorruptRow { what: "title" })?,
        author: Author::parse(columns.author).map_err(|_| CorruptRow { what: "author" })?,
        price: money(columns.price_cents, columns.currency)?,
        stock: stock(columns.stock)?,
    })
}

/// An ISBN stored as its 13 digits.
pub(crate) fn isbn(text: &str) -> Result<Isbn, CorruptRow> {
    Isbn::parse(text).map_err(|_| CorruptRow { what: "isbn" })
}

/// An amount stored as minor units and a currency code.
pub(crate) fn money(cents: i64, currency: &str) -> Result<Money, CorruptRow> {
    let currency = Currency::parse(currency).map_err(|_| CorruptRow { what: "currency" })?;
    Money::from_cents(cents, currency).map_err(|_| CorruptRow { what: "amount" })
}

/// A stock count stored as a 64-bit integer.
pub(crate) fn stock(count: i64) -> Result<u32, CorruptRow> {
    u32::try_from(count).map_err(|_| CorruptRow { what: "stock" })
}

/// A line quantity stored as a 64-bit integer.
pub(crate) fn quantity(count: i64) -> Result<Quantity, CorruptRow> {
    u64::try_from(count)
        .ok()
        .and_then(|count| Quantity::new(count).ok())
        .ok_or(CorruptRow { what: "quantity" })
}

/// The merged lines of a reservation as the journal stores them: `isbn:quantity`, comma
/// separated, in the order given (ISBN order, as merged).
pub(crate) fn encode_lines(lines: &[StockLine]) -> String {
    let mut text = String::with_capacity(lines.len() * 17);
    for (index, line) in lines.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(line.isbn.as_str());
        text.push(':');
        text.push_str(&line.quantity.get().to_string());
    }
    text
}

/// The lines [`encode_lines`] wrote.
pub(crate) fn decode_lines(text: &str) -> Result<Vec<StockLine>, CorruptRow> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|line| {
            let (isbn_text, quantity_text) = line.split_once(':').ok_or(CorruptRow {
                what: "reservation line",
            })?;
            let count: i64 = quantity_text.parse().map_err(|_| CorruptRow {
                what: "reservation quantity",
            })?;
            Ok(StockLine {
                isbn: isbn(isbn_text)?,
                quantity: quantity(count)?,
            })
        })
        .collect()
}

/// One order line as stored in the order's JSON `lines` column.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredLine<'a> {
    isbn: &'a str,
    title: std::borrow::Cow<'a, str>,
    quantity: u32,
    unit_price_cents: i64,
    currency: std::borrow::Cow<'a, str>,
}

/// An order's lines as the JSON array the `lines` column holds.
pub(crate) fn encode_order_lines(lines: &[OrderLine]) -> String {
    let stored: Vec<StoredLine<'_>> = lines
        .iter()
        .map(|line| StoredLine {
            isbn: line.isbn.as_str(),
            title: std::borrow::Cow::Borrowed(&line.title),
            quantity: line.quantity.get(),
            unit_price_cents: line.unit_price.cents(),
            currency: std::borrow::Cow::Owned(line.unit_price.currency().as_str().to_owned()),
        })
        .collect();
    // Serializing strings and integers cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The lines [`encode_order_lines`] wrote.
pub(crate) fn decode_order_lines(json: &str) -> Result<Vec<OrderLine>, CorruptRow> {
    let stored: Vec<StoredLine<'_>> = serde_json::from_str(json).map_err(|_| CorruptRow {
        what: "order lines",
    })?;
    stored
        .into_iter()
        .map(|line| {
            Ok(OrderLine {
                isbn: isbn(line.isbn)?,
                title: line.title.into_owned(),
                quantity: quantity(i64::from(line.quantity))?,
                unit_price: money(line.unit_price_cents, &line.currency)?,
            })
        })
        .collect()
}

/// An order status stored as its lower-case name.
pub(crate) fn order_status(text: &str) -> Result<OrderStatus, CorruptRow> {
    match text {
        "confirmed" => Ok(OrderStatus::Confirmed),
        "cancelled" => Ok(OrderStatus::Cancelled),
        _ => Err(CorruptRow {
            what: "order status",
        }),
    }
}

/// A payment status stored as its lower-case name.
pub(crate) fn payment_status(text: &str) -> Result<PaymentStatus, CorruptRow> {
    match text {
        "captured" => Ok(PaymentStatus::Captured),
        "refunded" => Ok(PaymentStatus::Refunded),
        _ => Err(CorruptRow {
            what: "payment status",
        }),
    }
}

/// A delivery status stored as its lower-case name.
pub(crate) fn delivery_status(text: &str) -> Result<DeliveryStatus, CorruptRow> {
    DeliveryStatus::parse(text).ok_or(CorruptRow {
        what: "delivery status",
    })
}

/// One tracking update as the `history` JSON array holds it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredEntry {
    status: String,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    applied: bool,
}

/// A delivery's history as the JSON array the `history` column holds.
pub(crate) fn encode_history(history: &[TrackingEntry]) -> String {
    let stored: Vec<StoredEntry> = history
        .iter()
        .map(|entry| StoredEntry {
            status: entry.update.status.as_str().to_owned(),
            occurred_at: entry.update.occurred_at,
            recorded_at: entry.recorded_at,
            carrier: entry.update.carrier.as_ref().map(|v| v.as_str().to_owned()),
            tracking_number: entry
                .update
                .tracking_number
                .as_ref()
                .map(|v| v.as_str().to_owned()),
            location: entry
                .update
                .location
                .as_ref()
                .map(|v| v.as_str().to_owned()),
            note: entry.update.note.as_ref().map(|v| v.as_str().to_owned()),
            applied: entry.applied,
        })
        .collect();
    // Serializing strings, booleans and timestamps cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The history [`encode_history`] wrote.
pub(crate) fn decode_history(json: &str) -> Result<Vec<TrackingEntry>, CorruptRow> {
    let corrupt = || CorruptRow {
        what: "delivery history",
    };
    let stored: Vec<StoredEntry> = serde_json::from_str(json).map_err(|_| corrupt())?;
    stored
        .into_iter()
        .map(|entry| {
            let mut update = CarrierUpdate::new(delivery_status(&entry.status)?, entry.occurred_at)
                .map_err(|_| corrupt())?;
            update.carrier = entry
                .carrier
                .map(|text| Carrier::parse(&text))
                .transpose()
                .map_err(|_| corrupt())?;
            update.tracking_number = entry
                .tracking_number
                .map(|text| CarrierTrackingNumber::parse(&text))
                .transpose()
                .map_err(|_| corrupt())?;
            update.location = entry
                .location
                .map(|text| Location::parse(&text))
                .transpose()
                .map_err(|_| corrupt())?;
            update.note = entry
                .note
                .map(|text| Note::parse(&text))
                .transpose()
                .map_err(|_| corrupt())?;
            Ok(TrackingEntry {
                update,
                recorded_at: entry.recorded_at,
                applied: entry.applied,
            })
        })
        .collect()
}

/// A delivery's stored columns, as read from a row.
pub(crate) struct DeliveryColumns {
    pub(crate) id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) status: String,
    pub(crate) recipient: String,
    pub(crate) line1: String,
    pub(crate) line2: Option<String>,
    pub(crate) city: String,
    pub(crate) postal_code: String,
    pub(crate) country: String,
    pub(crate) scheduled_date: NaiveDate,
    pub(crate) tracking_number: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) carrier: Option<String>,
    pub(crate) carrier_tracking_number: Option<String>,
    pub(crate) status_since: Option<DateTime<Utc>>,
    pub(crate) history: String,
}

/// The delivery stored in `columns`. The address was checked when the delivery was made;
/// it is checked again here, and a stored address that no longer passes is a corrupt row.
pub(crate) fn delivery(columns: DeliveryColumns) -> Result<Delivery, CorruptRow> {
    let address = Address::parse(AddressInput {
        recipient: columns.recipient,
        line1: columns.line1,
        line2: columns.line2,
        city: columns.city,
        postal_code: columns.postal_code,
        country: columns.country,
    })
    .map_err(|_| CorruptRow { what: "address" })?;
    Ok(Delivery::restore(
        DeliveryId::from_uuid(columns.id),
        OrderId::from_uuid(columns.order_id),
        delivery_status(&columns.status)?,
        address,
        columns.scheduled_date,
        TrackingNumber::parse(&columns.tracking_number).map_err(|_| CorruptRow {
            what: "tracking number",
        })?,
        columns.created_at,
        Tracking {
            carrier: columns
                .carrier
                .map(|text| Carrier::parse(&text))
                .transpose()
                .map_err(|_| CorruptRow { what: "carrier" })?,
            carrier_tracking_number: columns
                .carrier_tracking_number
                .map(|text| CarrierTrackingNumber::parse(&text))
                .transpose()
                .map_err(|_| CorruptRow {
                    what: "carrier tracking number",
                })?,
            status_since: columns.status_since,
            history: decode_history(&columns.history)?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(isbn_text: &str, count: u64) -> StockLine {
        StockLine {
            isbn: Isbn::parse(isbn_text).unwrap(),
            quantity: Quantity::new(count).unwrap(),
        }
    }

    #[test]
    fn journal_lines_round_trip_through_their_text_form() {
        let lines = vec![line("9780134685991", 2), line("9781593278281", 100)];
        let text = encode_lines(&lines);
        assert_eq!(text, "9780134685991:2,9781593278281:100");
        assert_eq!(decode_lines(&text).unwrap(), lines);
        assert_eq!(decode_lines(&encode_lines(&[])).unwrap(), vec![]);
    }

    #[test]
    fn unreadable_journal_lines_are_corrupt() {
        for text in [
            "9780134685991",
            "9780134685991:0",
            "9780134685992:1",
            "x:1",
            ":",
        ] {
            assert!(decode_lines(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn order_lines_round_trip_through_json_whatever_their_titles() {
        let lines = vec![
            OrderLine {
                isbn: Isbn::parse("9780134685991").unwrap(),
                title: "Quotes \" and \\ back-slashes, commas: and 日本語".to_owned(),
                quantity: Quantity::new(2).unwrap(),
                unit_price: Money::from_cents(4_499, Currency::USD).unwrap(),
            },
            OrderLine {
                isbn: Isbn::parse("9781593278281").unwrap(),
                title: "The Rust Programming Language".to_owned(),
                quantity: Quantity::new(100).unwrap(),
                unit_price: Money::from_cents(0, Currency::USD).unwrap(),
            },
        ];
        assert_eq!(
            decode_order_lines(&encode_order_lines(&lines)).unwrap(),
            lines
        );
        assert!(decode_order_lines("[{\"isbn\": \"1\"}]").is_err());
    }

    #[test]
    fn statuses_read_back_from_their_names() {
        for status in [OrderStatus::Confirmed, OrderStatus::Cancelled] {
            assert_eq!(order_status(status.as_str()).unwrap(), status);
        }
        for status in [PaymentStatus::Captured, PaymentStatus::Refunded] {
            assert_eq!(payment_status(status.as_str()).unwrap(), status);
        }
        for status in [
            DeliveryStatus::Scheduled,
            DeliveryStatus::Dispatched,
            DeliveryStatus::Delivered,
            DeliveryStatus::Cancelled,
        ] {
            assert_eq!(delivery_status(status.as_str()).unwrap(), status);
        }
        assert!(order_status("Confirmed").is_err());
    }
}

/// A finished idempotency record's response, from its nullable columns (all set once the
/// record is finished).
pub(crate) fn stored_response(
    status: Option<i64>,
    content_type: Option<String>,
    location: Option<String>,
    body: Option<Vec<u8>>,
) -> Result<crate::idempotency::StoredResponse, CorruptRow> {
    let corrupt = || CorruptRow {
        what: "idempotent response",
    };
    Ok(crate::idempotency::StoredResponse {
        status: status
            .and_then(|status| u16::try_from(status).ok())
            .ok_or_else(corrupt)?,
        content_type: content_type.ok_or_else(corrupt)?,
        location,
        body: body.ok_or_else(corrupt)?,
    })
}

/// A page of at most `limit` orders from `orders`, read with one more row than a page:
/// that row, if present, says that another page follows.
pub(crate) fn order_page(
    mut orders: Vec<bookstore_sales::Order>,
    limit: usize,
) -> bookstore_sales::OrderPage {
    let next_before = if orders.len() > limit {
        orders.truncate(limit);
        orders.last().map(bookstore_sales::Order::id)
    } else {
        None
    };
    bookstore_sales::OrderPage {
        orders,
        next_before,
    }
}

/// The tracking columns of a delivery (carrier, carrier tracking number, status since,
/// history), as the insert and the update bind them.
pub(crate) struct TrackingColumns<'a> {
    pub(crate) carrier: Option<&'a str>,
    pub(crate) carrier_tracking_number: Option<&'a str>,
    pub(crate) status_since: Option<DateTime<Utc>>,
    pub(crate) history: String,
}

impl<'a> TrackingColumns<'a> {
    /// The tracking columns of `delivery`.
    pub(crate) fn of(delivery: &'a Delivery) -> Self {
        let tracking = delivery.tracking();
        Self {
            carrier: tracking.carrier.as_ref().map(|carrier| carrier.as_str()),
            carrier_tracking_number: tracking
                .carrier_tracking_number
                .as_ref()
                .map(|number| number.as_str()),
            status_since: tracking.status_since,
            history: encode_history(&tracking.history),
        }
    }
}

/// Whether a delivery in `status` takes a place on its day.
pub(crate) fn takes_a_place(status: DeliveryStatus) -> bool {
    status != DeliveryStatus::Cancelled
}

/// The delivery clashed with another (its order's, or its own id): the booking of its day
/// is rolled back.
#[derive(Debug, thiserror::Error)]
#[error("the delivery clashed with one already stored")]
pub(crate) struct NotInserted;

/// The error for `delivery`, which clashed with a stored one: `existing` is the delivery of
/// its order if there is one, else `other_order` the order of the delivery holding its id.
pub(crate) fn already_scheduled(
    delivery: &Delivery,
    existing: Option<Uuid>,
    other_order: Option<Uuid>,
) -> bookstore_delivery::DeliveryError {
    let order_id = delivery.order_id();
    match existing {
        Some(existing) => bookstore_delivery::DeliveryError::AlreadyScheduled {
            order_id,
            delivery_id: DeliveryId::from_uuid(existing),
        },
        None => bookstore_delivery::DeliveryError::AlreadyScheduled {
            order_id: other_order.map_or(order_id, OrderId::from_uuid),
            delivery_id: delivery.id(),
        },
    }
}

/// A page of at most `limit` deliveries from `deliveries`, read with one more row than a
/// page: that row, if present, says that another page follows.
pub(crate) fn delivery_page(
    mut deliveries: Vec<Delivery>,
    limit: usize,
) -> bookstore_delivery::DeliveryPage {
    let more = deliveries.len() > limit;
    deliveries.truncate(limit);
    let next_after = if more {
        deliveries.last().map(Delivery::id)
    } else {
        None
    };
    bookstore_delivery::DeliveryPage {
        deliveries,
        next_after,
    }
}

/// A page of at most `limit` books from `books`, read with one more row than a page: that
/// row, if present, says that another page follows.
pub(crate) fn book_page(mut books: Vec<Book>, limit: usize) -> bookstore_inventory::BookPage {
    let next_after = if books.len() > limit {
        books.truncate(limit);
        books.last().map(|book| book.isbn)
    } else {
        None
    };
    bookstore_inventory::BookPage { books, next_after }
}

/// Event type patterns as stored: a JSON array of their texts.
pub(crate) fn event_types_text(patterns: &[crate::events::EventTypePattern]) -> String {
    let texts: Vec<String> = patterns.iter().map(|pattern| pattern.as_string()).collect();
    serde_json::to_string(&texts).unwrap_or_else(|_| "[]".to_owned())
}

/// The event type patterns stored by [`event_types_text`].
pub(crate) fn event_types(text: &str) -> Result<Vec<crate::events::EventTypePattern>, CorruptRow> {
    let corrupt = || CorruptRow {
        what: "webhook event types",
    };
    let texts: Vec<String> = serde_json::from_str(text).map_err(|_| corrupt())?;
    texts
        .iter()
        .map(|text| crate::events::EventTypePattern::parse(text).map_err(|_| corrupt()))
        .collect()
}

/// A claimed delivery's row, before its endpoint is read.
pub(crate) struct ClaimRow {
    pub(crate) id: Uuid,
    pub(crate) endpoint_id: Uuid,
    pub(crate) event_id: Uuid,
    pub(crate) event_type: String,
    pub(crate) body: String,
    pub(crate) attempts: i64,
    pub(crate) created_at: DateTime<Utc>,
}

impl ClaimRow {
    /// The claimed delivery, with its endpoint.
    pub(crate) fn with_endpoint(
        self,
        endpoint: crate::events::WebhookEndpoint,
    ) -> crate::events::ClaimedDelivery {
        crate::events::ClaimedDelivery {
            id: self.id,
            event_id: self.event_id,
            event_type: self.event_type,
            body: self.body,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            created_at: self.created_at,
            endpoint,
        }
    }
}

/// The state and next attempt time an outcome writes (a finished delivery keeps the
/// attempt's time).
pub(crate) fn outcome_columns(
    outcome: crate::events::AttemptOutcome,
    attempted_at: DateTime<Utc>,
) -> (crate::events::DeliveryState, DateTime<Utc>) {
    use crate::events::{AttemptOutcome, DeliveryState};
    match outcome {
        AttemptOutcome::Succeeded => (DeliveryState::Succeeded, attempted_at),
        AttemptOutcome::Failed => (DeliveryState::Failed, attempted_at),
        AttemptOutcome::RetryAt(at) => (DeliveryState::Pending, at),
    }
}
