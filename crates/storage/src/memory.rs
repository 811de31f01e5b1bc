//! The stores of a process that keeps everything in memory ([`stores`]): the domains'
//! in-memory stores, observed so that each change records its events in an
//! [`InMemoryEventLog`] while the change is still locked.
//!
//! That is the outbox guarantee in memory: the event is appended under the lock that makes
//! the change, so no reader sees the change without its event or the event before the
//! change (a reader of the changed record waits for that lock). Everything is lost when the
//! process ends, events included.

use std::sync::Arc;

use bookstore_delivery::InMemoryDeliveryStore;
use bookstore_inventory::{BookChange, InMemoryCatalogue};
use bookstore_sales::{
    InMemoryOrderStore, OrderChange, PaymentGateway, PaymentStatus, SimulatedPaymentGateway,
};

use crate::Stores;
use crate::events::{
    Fact, InMemoryEventLog, InMemoryRelayCursors, InMemoryWebhookStore, Outbox, PaymentRecord,
};
use crate::idempotency::InMemoryIdempotencyStore;

/// In-memory stores around `catalogue` (its books already there are not announced), each
/// recording its events through `outbox` in one shared [`InMemoryEventLog`].
pub fn stores(outbox: Outbox, catalogue: InMemoryCatalogue) -> Stores {
    stores_and_processor(outbox, catalogue).0
}

/// [`stores`], and the simulated processor behind `payments` as itself, for tests that
/// read its ledger.
pub fn stores_and_processor(
    outbox: Outbox,
    catalogue: InMemoryCatalogue,
) -> (Stores, Arc<SimulatedPaymentGateway>) {
    let log = Arc::new(InMemoryEventLog::new());
    let processor = Arc::new(SimulatedPaymentGateway::new().observed_by({
        let (log, outbox) = (Arc::clone(&log), outbox.clone());
        Arc::new(move |order_id, capture| {
            let payment = PaymentRecord {
                transaction_id: capture.transaction_id,
                order_id,
                amount: capture.amount,
                status: capture.status,
            };
            let fact = match capture.status {
                PaymentStatus::Captured => Fact::PaymentCaptured(&payment),
                PaymentStatus::Refunded => Fact::PaymentRefunded(&payment),
            };
            log.record([outbox.event_now(fact)]);
        })
    }));
    let stores = Stores {
        catalogue: Arc::new(catalogue.observed_by({
            let (log, outbox) = (Arc::clone(&log), outbox.clone());
            Arc::new(move |change, book| {
                let fact = match change {
                    BookChange::Created => Fact::BookCreated(book),
                    BookChange::Updated => Fact::BookUpdated(book),
                    BookChange::OutOfStock => Fact::BookOutOfStock(book),
                    BookChange::BackInStock => Fact::BookBackInStock(book),
                };
                log.record([outbox.event_now(fact)]);
            })
        })),
        orders: Arc::new(InMemoryOrderStore::new().observed_by({
            let (log, outbox) = (Arc::clone(&log), outbox.clone());
            Arc::new(move |change, order| {
                let fact = match change {
                    OrderChange::Placed => Fact::OrderPlaced(order),
                    OrderChange::Cancelled => Fact::OrderCancelled(order),
                };
                log.record([outbox.event_now(fact)]);
            })
        })),
        deliveries: Arc::new(InMemoryDeliveryStore::new().observed_by({
            let (log, outbox) = (Arc::clone(&log), outbox.clone());
            Arc::new(move |delivery| {
                log.record([outbox.event_now(Fact::DeliveryChanged(delivery))]);
            })
        })),
        payments: Arc::clone(&processor) as Arc<dyn PaymentGateway>,
        idempotency: Arc::new(InMemoryIdempotencyStore::new()),
        events: log,
        webhooks: Arc::new(InMemoryWebhookStore::new()),
        relays: Arc::new(InMemoryRelayCursors::new()),
    };
    (stores, processor)
}
