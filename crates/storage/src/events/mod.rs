//! Events: the outbox every state change writes to, and the log read back from it.
//!
//! # The outbox guarantee
//!
//! Every store call that changes something a shop cares about records its [`Event`]s in the
//! **same** transaction as the change: on SQLite in the change's write job, on PostgreSQL in
//! the change's statement or transaction, in memory under the lock that makes the change.
//! So there is no event without its change and no change without its event, whatever
//! crashes when. Delivering events (webhooks, NATS) is a separate step that reads the log
//! (`crate::events::EventLog`) and never changes a resource.
//!
//! # Order
//!
//! Every event has a `position` in one total order, the order the feed, webhooks and NATS
//! see. On SQLite and in memory it is assigned when the event is recorded (one writer, so
//! recording order is commit order). On PostgreSQL concurrent transactions commit in any
//! order, so events are recorded without a position and a sequencer
//! ([`EventLog::sequence`]), one at a time across instances, numbers the committed ones;
//! an event is in the feed once it has a position, so a page read never has a gap that a
//! later commit fills.
//!
//! # What an event says
//!
//! `data` is the resource as the API returns it at that moment, rendered by the
//! application through an [`EventRenderer`] (the storage crate knows the domain values, not
//! their JSON). `sequence` counts the events of one resource (1, 2, …, kept in
//! `event_sequences`, never reused even after the events are purged), so a consumer can
//! drop an update older than one it has.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bookstore_delivery::{Delivery, DeliveryStatus};
use bookstore_inventory::Book;
use bookstore_sales::{Order, PaymentStatus, TransactionId};
use bookstore_types::{Money, OrderId, PageLimit};
use chrono::{DateTime, Utc};
use uuid::Uuid;

mod memory;
mod relays;
mod stock;
pub mod webhooks;

pub use memory::InMemoryEventLog;
pub use relays::{InMemoryRelayCursors, RelayCursors};
pub(crate) use stock::update_events;
pub use webhooks::{
    AttemptOutcome, AttemptPage, ClaimedDelivery, DeliveryAttempt, DeliveryState, EndpointChanges,
    InMemoryWebhookStore, NewDelivery, PendingAge, WebhookEndpoint, WebhookSecret, WebhookStore,
    WebhooksUnavailable,
};

/// The kinds of event, each named `resource.change` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `book.created`: a book was added to the catalogue.
    BookCreated,
    /// `book.updated`: a book's title, author, price or stock was changed by an update.
    BookUpdated,
    /// `book.out_of_stock`: an order took a book's last copy.
    BookOutOfStock,
    /// `book.back_in_stock`: a book with no copies has some again.
    BookBackInStock,
    /// `order.placed`: an order was confirmed (its stock taken and its payment captured).
    OrderPlaced,
    /// `order.cancelled`: an order was cancelled (its stock returned, its payment refunded).
    OrderCancelled,
    /// `payment.captured`: money was taken for an order.
    PaymentCaptured,
    /// `payment.refunded`: a captured payment was given back.
    PaymentRefunded,
    /// `delivery.scheduled`: a delivery was booked for an order.
    DeliveryScheduled,
    /// `delivery.dispatched`: a delivery left the warehouse.
    DeliveryDispatched,
    /// `delivery.in_transit`: the carrier is moving it.
    DeliveryInTransit,
    /// `delivery.out_for_delivery`: it is on the last leg.
    DeliveryOutForDelivery,
    /// `delivery.attempted_delivery`: the carrier tried and could not deliver.
    DeliveryAttemptedDelivery,
    /// `delivery.delivered`: it arrived.
    DeliveryDelivered,
    /// `delivery.failed`: the carrier gave up.
    DeliveryFailed,
    /// `delivery.returned_to_sender`: it came back.
    DeliveryReturnedToSender,
    /// `delivery.cancelled`: a scheduled delivery was cancelled.
    DeliveryCancelled,
}

impl EventType {
    /// Every event type, in the order the documentation lists them.
    pub const ALL: [EventType; 17] = [
        EventType::BookCreated,
        EventType::BookUpdated,
        EventType::BookOutOfStock,
        EventType::BookBackInStock,
        EventType::OrderPlaced,
        EventType::OrderCancelled,
        EventType::PaymentCaptured,
        EventType::PaymentRefunded,
        EventType::DeliveryScheduled,
        EventType::DeliveryDispatched,
        EventType::DeliveryInTransit,
        EventType::DeliveryOutForDelivery,
        EventType::DeliveryAttemptedDelivery,
        EventType::DeliveryDelivered,
        EventType::DeliveryFailed,
        EventType::DeliveryReturnedToSender,
        EventType::DeliveryCancelled,
    ];

    /// The name on the wire, e.g. `order.placed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::BookCreated => "book.created",
            EventType::BookUpdated => "book.updated",
            EventType::BookOutOfStock => "book.out_of_stock",
            EventType::BookBackInStock => "book.back_in_stock",
            EventType::OrderPlaced => "order.placed",
            EventType::OrderCancelled => "order.cancelled",
            EventType::PaymentCaptured => "payment.captured",
            EventType::PaymentRefunded => "payment.refunded",
            EventType::DeliveryScheduled => "delivery.scheduled",
            EventType::DeliveryDispatched => "delivery.dispatched",
            EventType::DeliveryInTransit => "delivery.in_transit",
            EventType::DeliveryOutForDelivery => "delivery.out_for_delivery",
            EventType::DeliveryAttemptedDelivery => "delivery.attempted_delivery",
            EventType::DeliveryDelivered => "delivery.delivered",
            EventType::DeliveryFailed => "delivery.failed",
            EventType::DeliveryReturnedToSender => "delivery.returned_to_sender",
            EventType::DeliveryCancelled => "delivery.cancelled",
        }
    }

    /// The type named `name`, if there is one.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The event a delivery's new status is announced by (`Scheduled` and `Cancelled`
    /// included).
    pub fn for_delivery_status(status: DeliveryStatus) -> EventType {
        match status {
            DeliveryStatus::Scheduled => EventType::DeliveryScheduled,
            DeliveryStatus::Dispatched => EventType::DeliveryDispatched,
            DeliveryStatus::InTransit => EventType::DeliveryInTransit,
            DeliveryStatus::OutForDelivery => EventType::DeliveryOutForDelivery,
            DeliveryStatus::AttemptedDelivery => EventType::DeliveryAttemptedDelivery,
            DeliveryStatus::Delivered => EventType::DeliveryDelivered,
            DeliveryStatus::Failed => EventType::DeliveryFailed,
            DeliveryStatus::ReturnedToSender => EventType::DeliveryReturnedToSender,
            DeliveryStatus::Cancelled => EventType::DeliveryCancelled,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A filter on event types: one type (`order.placed`), every type of a resource
/// (`order.*`), or every type (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventTypePattern {
    /// Exactly this type.
    Exactly(EventType),
    /// Every type whose name starts with this resource and a dot (`order` for `order.*`).
    Resource(String),
    /// Every type.
    Any,
}

/// Why a text is not an event type pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an event type, `RESOURCE.*` for one of book, order, payment or delivery, or `*`"
)]
pub struct BadEventTypePattern(pub String);

impl EventTypePattern {
    /// The resources events are about, the prefixes `RESOURCE.*` accepts.
    pub const RESOURCES: [&'static str; 4] = ["book", "order", "payment", "delivery"];

    /// Parses `order.placed`, `order.*` or `*`; anything else (an unknown type or resource,
    /// any other wildcard) is refused.
    pub fn parse(text: &str) -> Result<EventTypePattern, BadEventTypePattern> {
        if text == "*" {
            return Ok(EventTypePattern::Any);
        }
        if let Some(resource) = text.strip_suffix(".*") {
            if EventTypePattern::RESOURCES.contains(&resource) {
                return Ok(EventTypePattern::Resource(resource.to_owned()));
            }
            return Err(BadEventTypePattern(text.to_owned()));
        }
        EventType::parse(text)
            .map(EventTypePattern::Exactly)
            .ok_or_else(|| BadEventTypePattern(text.to_owned()))
    }

    /// Whether `kind` is one of the types this pattern names.
    pub fn matches(&self, kind: EventType) -> bool {
        match self {
            EventTypePattern::Exactly(exact) => *exact == kind,
            EventTypePattern::Resource(resource) => kind
                .as_str()
                .strip_prefix(resource.as_str())
                .is_some_and(|rest| rest.starts_with('.')),
            EventTypePattern::Any => true,
        }
    }

    /// Whether any of `patterns` matches `kind` (none: nothing matches).
    pub fn any_matches(patterns: &[EventTypePattern], kind: EventType) -> bool {
        patterns.iter().any(|pattern| pattern.matches(kind))
    }

    /// The pattern as written.
    pub fn as_string(&self) -> String {
        match self {
            EventTypePattern::Exactly(kind) => kind.as_str().to_owned(),
            EventTypePattern::Resource(resource) => format!("{resource}.*"),
            EventTypePattern::Any => "*".to_owned(),
        }
    }

    /// Every type this pattern names.
    pub fn types(&self) -> Vec<EventType> {
        EventType::ALL
            .into_iter()
            .filter(|kind| self.matches(*kind))
            .collect()
    }
}

impl fmt::Display for EventTypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

/// An event as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event's id: a UUID v7, so ids sort roughly by time.
    pub id: Uuid,
    /// Its place in the log's one order; `None` on PostgreSQL until the sequencer numbered
    /// it (see the module documentation).
    pub position: Option<u64>,
    /// What happened.
    pub event_type: EventType,
    /// The resource it happened to: an ISBN, an order, transaction or delivery id.
    pub resource_id: String,
    /// 1 for the resource's first event, then 2, 3, …
    pub sequence: u64,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// The resource as the API returned it at that moment: one JSON document.
    pub data: String,
}

/// An event about to be recorded: everything but its position and sequence, which the
/// store assigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// A fresh UUID v7.
    pub id: Uuid,
    /// What happened.
    pub event_type: EventType,
    /// The resource it happened to.
    pub resource_id: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The resource as JSON.
    pub data: String,
}

/// A payment, as its events describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentRecord {
    /// The processor's id for the payment.
    pub transaction_id: TransactionId,
    /// The order it pays for.
    pub order_id: OrderId,
    /// The amount taken.
    pub amount: Money,
    /// Captured or refunded.
    pub status: PaymentStatus,
}

/// Turns domain values into the JSON the API returns for them: the `data` of events.
///
/// The application provides it (its wire types are the API's JSON); the storage crate
/// calls it inside the transaction that records the event. It must be a pure function of
/// its argument: it runs on the SQLite writer thread and under in-memory locks.
pub trait EventRenderer: Send + Sync + 'static {
    /// A book, as `GET /api/books/{isbn}` returns it.
    fn book(&self, book: &Book) -> String;
    /// An order, as `GET /api/orders/{id}` returns it.
    fn order(&self, order: &Order) -> String;
    /// A payment.
    fn payment(&self, payment: &PaymentRecord) -> String;
    /// A delivery, as `GET /api/orders/{id}/delivery` returns it.
    fn delivery(&self, delivery: &Delivery) -> String;
}

/// A change a store is about to record, as the fact its event states.
#[derive(Debug, Clone, Copy)]
pub enum Fact<'a> {
    /// `book.created`.
    BookCreated(&'a Book),
    /// `book.updated`.
    BookUpdated(&'a Book),
    /// `book.out_of_stock`.
    BookOutOfStock(&'a Book),
    /// `book.back_in_stock`.
    BookBackInStock(&'a Book),
    /// `order.placed`.
    OrderPlaced(&'a Order),
    /// `order.cancelled`.
    OrderCancelled(&'a Order),
    /// `payment.captured`.
    PaymentCaptured(&'a PaymentRecord),
    /// `payment.refunded`.
    PaymentRefunded(&'a PaymentRecord),
    /// The delivery's event for its current status (`delivery.scheduled`,
    /// `delivery.dispatched`, …, `delivery.cancelled`).
    DeliveryChanged(&'a Delivery),
}

impl Fact<'_> {
    /// The type of the event stating this fact.
    pub fn event_type(&self) -> EventType {
        match self {
            Fact::BookCreated(_) => EventType::BookCreated,
            Fact::BookUpdated(_) => EventType::BookUpdated,
            Fact::BookOutOfStock(_) => EventType::BookOutOfStock,
            Fact::BookBackInStock(_) => EventType::BookBackInStock,
            Fact::OrderPlaced(_) => EventType::OrderPlaced,
            Fact::OrderCancelled(_) => EventType::OrderCancelled,
            Fact::PaymentCaptured(_) => EventType::PaymentCaptured,
            Fact::PaymentRefunded(_) => EventType::PaymentRefunded,
            Fact::DeliveryChanged(delivery) => EventType::for_delivery_status(delivery.status()),
        }
    }

    /// The id of the resource it is about.
    pub fn resource_id(&self) -> String {
        match self {
            Fact::BookCreated(book)
            | Fact::BookUpdated(book)
            | Fact::BookOutOfStock(book)
            | Fact::BookBackInStock(book) => book.isbn.to_string(),
            Fact::OrderPlaced(order) | Fact::OrderCancelled(order) => order.id().to_string(),
            Fact::PaymentCaptured(payment) | Fact::PaymentRefunded(payment) => {
                payment.transaction_id.to_string()
            }
            Fact::DeliveryChanged(delivery) => delivery.id().to_string(),
        }
    }
}

/// What the stores record events with: the renderer of their data. Cloning is cheap.
#[derive(Clone)]
pub struct Outbox {
    renderer: Arc<dyn EventRenderer>,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// An outbox rendering data with `renderer`.
    pub fn new(renderer: Arc<dyn EventRenderer>) -> Self {
        Self { renderer }
    }

    /// An outbox rendering data with [`IdOnlyRenderer`]: for tests and tools that need no
    /// API JSON.
    pub fn id_only() -> Self {
        Self::new(Arc::new(IdOnlyRenderer))
    }

    /// The event stating `fact`, recorded at `now`.
    pub fn event(&self, fact: Fact<'_>, now: DateTime<Utc>) -> NewEvent {
        let data = match fact {
            Fact::BookCreated(book)
            | Fact::BookUpdated(book)
            | Fact::BookOutOfStock(book)
            | Fact::BookBackInStock(book) => self.renderer.book(book),
            Fact::OrderPlaced(order) | Fact::OrderCancelled(order) => self.renderer.order(order),
            Fact::PaymentCaptured(payment) | Fact::PaymentRefunded(payment) => {
                self.renderer.payment(payment)
            }
            Fact::DeliveryChanged(delivery) => self.renderer.delivery(delivery),
        };
        NewEvent {
            id: Uuid::now_v7(),
            event_type: fact.event_type(),
            resource_id: fact.resource_id(),
            created_at: now,
            data,
        }
    }

    /// The event stating `fact`, recorded now.
    pub fn event_now(&self, fact: Fact<'_>) -> NewEvent {
        self.event(fact, Utc::now())
    }
}

/// Which events a page shows, and in which direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events of these types; empty: every type.
    pub types: Vec<EventTypePattern>,
    /// Only events about this resource.
    pub resource_id: Option<String>,
    /// Where the page starts and which way it goes.
    pub direction: EventDirection,
    /// At most this many events.
    pub limit: PageLimit,
}

/// Newest first (the default) or oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventDirection {
    /// Newest first, before this position (`None`: from the newest).
    NewestBefore(Option<u64>),
    /// Oldest first, after this position (0: from the oldest kept).
    OldestAfter(u64),
}

/// One page of events, and whether more remain in its direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    /// The events, in the query's direction; every one has a position.
    pub events: Vec<Event>,
    /// Whether more events match beyond the last one of this page.
    pub has_more: bool,
}

/// The event log could not be read or written: the database is unreachable or failing.
#[derive(Debug, thiserror::Error)]
#[error("the event log is unavailable: {0}")]
pub struct EventsUnavailable(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The events recorded so far: the feed, and what delivery reads.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// One page of the positioned events matching `query`.
    async fn list(&self, query: &EventQuery) -> Result<EventPage, EventsUnavailable>;

    /// The event with this id, positioned or not.
    async fn get(&self, id: Uuid) -> Result<Option<Event>, EventsUnavailable>;

    /// Up to `limit` positioned events after `position`, oldest first: what a relay reads
    /// next.
    async fn after(&self, position: u64, limit: usize) -> Result<Vec<Event>, EventsUnavailable>;

    /// Gives positions to the committed events that have none, in id order, and answers how
    /// many it numbered. Only PostgreSQL has any (see the module documentation); of
    /// instances calling it at once one numbers, the others answer 0 at once.
    async fn sequence(&self) -> Result<u64, EventsUnavailable>;

    /// The highest position given so far (0 for an empty log).
    async fn last_position(&self) -> Result<u64, EventsUnavailable>;

    /// Deletes the events recorded before `before`, but never the newest event (so that
    /// positions go on from it); answers how many. Their resources' sequences are kept, so
    /// numbering goes on.
    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, EventsUnavailable>;
}

/// A renderer of plain JSON documents naming the resource (`{"isbn": …}`, `{"id": …}`),
/// for the storage crate's own tests and for tools that need no API JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdOnlyRenderer;

impl EventRenderer for IdOnlyRenderer {
    fn book(&self, book: &Book) -> String {
        serde_json::json!({ "isbn": book.isbn.to_string(), "stock": book.stock }).to_string()
    }

    fn order(&self, order: &Order) -> String {
        serde_json::json!({ "id": order.id().to_string(), "status": order.status().as_str() })
            .to_string()
    }

    fn payment(&self, payment: &PaymentRecord) -> String {
        serde_json::json!({
            "transaction_id": payment.transaction_id.to_string(),
            "order_id": payment.order_id.to_string(),
            "status": payment.status.as_str(),
        })
        .to_string()
    }

    fn delivery(&self, delivery: &Delivery) -> String {
        serde_json::json!({ "id": delivery.id().to_string(), "status": delivery.status().as_str() })
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_back_from_its_name_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert!(names.insert(kind.as_str()));
        }
        assert_eq!(EventType::parse("order.shipped"), None);
    }

    #[test]
    fn a_resource_wildcard_matches_exactly_that_resources_types() {
        let orders = EventTypePattern::parse("order.*").unwrap();
        assert_eq!(
            orders.types(),
            vec![EventType::OrderPlaced, EventType::OrderCancelled]
        );
        let deliveries = EventTypePattern::parse("delivery.*").unwrap();
        assert_eq!(deliveries.types().len(), 9);
        assert_eq!(EventTypePattern::parse("*").unwrap().types().len(), 17);
        assert_eq!(
            EventTypePattern::parse("book.created").unwrap().types(),
            vec![EventType::BookCreated]
        );
    }

    #[test]
    fn unknown_types_resources_and_other_wildcards_are_refused() {
        for bad in [
            "", "order", "order.", "orders.*", "*.placed", "order.p*", "book.**", " *",
        ] {
            assert_eq!(
                EventTypePattern::parse(bad),
                Err(BadEventTypePattern(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_pattern_is_written_back_as_it_was_parsed() {
        for text in ["*", "book.*", "delivery.in_transit"] {
            assert_eq!(EventTypePattern::parse(text).unwrap().to_string(), text);
        }
    }
}
