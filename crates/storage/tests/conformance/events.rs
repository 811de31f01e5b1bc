//! The outbox: each change records its events (type, resource, sequence, data) exactly once,
//! with the change and never without it, and the log reads back as one gapless feed.
//!
//! Data is checked as [`bookstore_storage::events::IdOnlyRenderer`] renders it (the harness
//! opens the stores with `Outbox::id_only()`).

use std::collections::BTreeSet;
use std::sync::Arc;

use bookstore_delivery::{CarrierUpdate, Delivery, DeliveryError, DeliveryStatus};
use bookstore_inventory::{BookPatch, InventoryError};
use bookstore_sales::{PaymentError, PaymentToken, SalesError, TransactionId};
use bookstore_storage::events::{Event, EventDirection, EventQuery, EventType, EventTypePattern};
use bookstore_types::{OrderId, PageLimit};
use chrono::Utc;
use serde_json::{Value, json};

use crate::harness::{
    Backend, Stores, book, delivery_for_order_in_status, fresh_reservation, isbn, join_all, line,
    order_for, stock_catalogue, usd,
};

crate::conformance!(
    creating_and_updating_a_book_records_its_events_with_the_stock_crossing_zero,
    reserving_the_last_copies_records_out_of_stock_and_every_way_back_records_back_in_stock,
    of_sixteen_concurrent_reservations_of_the_last_copies_one_records_out_of_stock,
    placing_and_cancelling_an_order_records_each_event_once,
    capturing_and_refunding_a_payment_records_each_event_once,
    a_delivery_records_its_scheduling_and_each_change_of_status_only,
    events_are_positioned_without_gaps_in_id_order_once_sequenced,
    the_feed_pages_both_ways_without_repeats_or_gaps_and_filters_by_type_and_resource,
    the_feed_read_oldest_first_while_events_are_added_misses_and_repeats_nothing,
    purging_deletes_the_old_events_but_never_the_newest_and_positions_go_on;
    sql_only: an_order_refused_for_want_of_a_lease_records_nothing,
);

/// Numbers what the PostgreSQL sequencer has not numbered yet (nothing elsewhere), until
/// it has nothing left.
async fn sequence_all(stores: &Stores) {
    for _ in 0..100 {
        if stores.events.sequence().await.unwrap() == 0 {
            return;
        }
    }
    panic!("the sequencer keeps finding events to number");
}

fn query(direction: EventDirection, limit: u64) -> EventQuery {
    EventQuery {
        types: Vec::new(),
        resource_id: None,
        direction,
        limit: PageLimit::clamped(limit),
    }
}

/// Every event of the log matching `base` (its direction is replaced), oldest first, read
/// in pages of `page` after sequencing.
async fn read_oldest_first(stores: &Stores, base: EventQuery, page: u64) -> Vec<Event> {
    sequence_all(stores).await;
    let mut events: Vec<Event> = Vec::new();
    let mut after = 0;
    for _ in 0..10_000 {
        let found = stores
            .events
            .list(&EventQuery {
                direction: EventDirection::OldestAfter(after),
                limit: PageLimit::clamped(page),
                ..base.clone()
            })
            .await
            .unwrap();
        assert!(found.events.len() as u64 <= page);
        if let Some(last) = found.events.last() {
            after = last.position.expect("a listed event has a position");
        }
        events.extend(found.events);
        if !found.has_more {
            return events;
        }
    }
    panic!("the feed does not end");
}

/// Every event of the log, oldest first.
async fn all_events(stores: &Stores) -> Vec<Event> {
    read_oldest_first(stores, query(EventDirection::OldestAfter(0), 100), 100).await
}

/// The events of one resource, oldest first.
async fn events_of(stores: &Stores, resource_id: &str) -> Vec<Event> {
    let base = EventQuery {
        resource_id: Some(resource_id.to_owned()),
        ..query(EventDirection::OldestAfter(0), 100)
    };
    read_oldest_first(stores, base, 100).await
}

/// Type, sequence and data (as JSON) of each event.
fn described(events: &[Event]) -> Vec<(EventType, u64, Value)> {
    events
        .iter()
        .map(|event| {
            let data: Value = serde_json::from_str(&event.data).expect("data is JSON");
            (event.event_type, event.sequence, data)
        })
        .collect()
}

fn book_data(number: u32, stock: u32) -> Value {
    json!({ "isbn": isbn(number).to_string(), "stock": stock })
}

async fn creating_and_updating_a_book_records_its_events_with_the_stock_crossing_zero(
    backend: Backend,
) {
    use EventType::{BookBackInStock, BookCreated, BookOutOfStock, BookUpdated};
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "Dune", "Frank Herbert", 999, 2)]).await;
    let resource = isbn(1).to_string();
    let patch = |stock: Option<u32>| BookPatch {
        title: stock
            .is_none()
            .then(|| bookstore_inventory::Title::parse("Dune Messiah").unwrap()),
        author: None,
        price: None,
        stock,
    };
    for stock in [None, Some(0), Some(0), Some(5), Some(7)] {
        stores
            .catalogue
            .update(&isbn(1), patch(stock))
            .await
            .unwrap();
    }
    // Failing calls record nothing.
    let again = stores
        .catalogue
        .insert(book(1, "Dune", "Frank Herbert", 999, 2))
        .await;
    assert!(matches!(again, Err(InventoryError::AlreadyExists { .. })));
    let unknown = stores.catalogue.update(&isbn(2), patch(Some(0))).await;
    assert!(matches!(unknown, Err(InventoryError::NotFound { .. })));

    let events = all_events(&stores).await;
    assert!(events.iter().all(|event| event.resource_id == resource));
    assert_eq!(
        described(&events),
        vec![
            (BookCreated, 1, book_data(1, 2)),
            (BookUpdated, 2, book_data(1, 2)),
            (BookUpdated, 3, book_data(1, 0)),
            (BookOutOfStock, 4, book_data(1, 0)),
            // 0 to 0 crosses nothing.
            (BookUpdated, 5, book_data(1, 0)),
            (BookUpdated, 6, book_data(1, 5)),
            (BookBackInStock, 7, book_data(1, 5)),
            (BookUpdated, 8, book_data(1, 7)),
        ]
    );
}

async fn reserving_the_last_copies_records_out_of_stock_and_every_way_back_records_back_in_stock(
    backend: Backend,
) {
    use EventType::{BookBackInStock, BookOutOfStock};
    let stores = backend.stores().await;
    stock_catalogue(
        &stores,
        [
            book(1, "Dune", "Frank Herbert", 999, 3),
            book(2, "Emma", "Jane Austen", 599, 5),
        ],
    )
    .await;
    let created = all_events(&stores).await.len();
    let reserved_a = |quantity| vec![line(1, quantity), line(2, 1)];

    // The reservation takes book 1's last copies (book 2 keeps some).
    let first = fresh_reservation();
    stores
        .catalogue
        .reserve_all(first, &reserved_a(3))
        .await
        .unwrap();
    // Out of stock, a clash of ids: nothing recorded.
    let refused = stores
        .catalogue
        .reserve_all(fresh_reservation(), &[line(1, 1)])
        .await;
    assert!(matches!(refused, Err(InventoryError::OutOfStock { .. })));
    let clash = stores.catalogue.reserve_all(first, &[line(2, 1)]).await;
    assert!(matches!(
        clash,
        Err(InventoryError::ReservationExists { .. })
    ));
    // Cancelling gives the copies back.
    stores.catalogue.cancel_reservation(first).await.unwrap();
    stores.catalogue.cancel_reservation(first).await.unwrap();

    // Releasing the lines of a confirmed reservation gives them back.
    let second = fresh_reservation();
    stores
        .catalogue
        .reserve_all(second, &[line(1, 3)])
        .await
        .unwrap();
    stores.catalogue.confirm_reservation(second).await.unwrap();
    stores.catalogue.release_all(&[line(1, 1)]).await.unwrap();
    // A release of a book with copies left announces nothing.
    stores.catalogue.release_all(&[line(2, 1)]).await.unwrap();

    // A completed return gives them back.
    let third = fresh_reservation();
    stores
        .catalogue
        .reserve_all(third, &[line(1, 1)])
        .await
        .unwrap();
    stores.catalogue.confirm_reservation(third).await.unwrap();
    let giving_back = fresh_reservation();
    stores
        .catalogue
        .begin_return(giving_back, &[line(1, 2)])
        .await
        .unwrap();
    stores.catalogue.complete_return(giving_back).await.unwrap();
    stores.catalogue.complete_return(giving_back).await.unwrap();

    let events = all_events(&stores).await;
    let changes = &events[created..];
    assert!(
        changes
            .iter()
            .all(|event| event.resource_id == isbn(1).to_string()),
        "book 2 never ran out: {changes:?}"
    );
    assert_eq!(
        described(changes),
        vec![
            (BookOutOfStock, 2, book_data(1, 0)),
            (BookBackInStock, 3, book_data(1, 3)),
            (BookOutOfStock, 4, book_data(1, 0)),
            (BookBackInStock, 5, book_data(1, 1)),
            (BookOutOfStock, 6, book_data(1, 0)),
            (BookBackInStock, 7, book_data(1, 2)),
        ]
    );
    assert_eq!(stores.catalogue.get(&isbn(1)).await.unwrap().stock, 2);
}

async fn of_sixteen_concurrent_reservations_of_the_last_copies_one_records_out_of_stock(
    backend: Backend,
) {
    use EventType::{BookBackInStock, BookCreated, BookOutOfStock};
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "Dune", "Frank Herbert", 999, 4)]).await;
    let tasks = (0..16)
        .map(|_| {
            let catalogue = Arc::clone(&stores.catalogue);
            tokio::spawn(async move {
                let reservation = fresh_reservation();
                catalogue
                    .reserve_all(reservation, &[line(1, 1)])
                    .await
                    .map(|_| reservation)
            })
        })
        .collect();
    let won: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(won.len(), 4);
    let events = events_of(&stores, &isbn(1).to_string()).await;
    assert_eq!(
        described(&events),
        vec![
            (BookCreated, 1, book_data(1, 4)),
            (BookOutOfStock, 2, book_data(1, 0)),
        ]
    );

    stores.catalogue.cancel_reservation(won[0]).await.unwrap();
    stores.catalogue.cancel_reservation(won[1]).await.unwrap();
    let events = events_of(&stores, &isbn(1).to_string()).await;
    assert_eq!(
        described(&events[2..]),
        vec![(BookBackInStock, 3, book_data(1, 1))],
        "only the copy that ended the shortage is announced"
    );
    // The SQLite book cache saw every change.
    assert_eq!(stores.catalogue.get(&isbn(1)).await.unwrap().stock, 2);
}

async fn placing_and_cancelling_an_order_records_each_event_once(backend: Backend) {
    use EventType::{OrderCancelled, OrderPlaced};
    let stores = backend.stores().await;
    let order = order_for("ada");
    let id = order.id();
    stores.orders.insert(order.clone()).await.unwrap();
    assert!(matches!(
        stores.orders.insert(order).await,
        Err(SalesError::AlreadyExists { .. })
    ));
    // Of concurrent cancels one wins, and only it records.
    let tasks = (0..8)
        .map(|_| {
            let orders = Arc::clone(&stores.orders);
            tokio::spawn(async move { orders.mark_cancelled(id).await })
        })
        .collect();
    let cancelled = join_all(tasks)
        .await
        .into_iter()
        .filter(Result::is_ok)
        .count();
    assert_eq!(cancelled, 1);
    assert!(matches!(
        stores.orders.mark_cancelled(OrderId::generate()).await,
        Err(SalesError::NotFound { .. })
    ));

    let events = all_events(&stores).await;
    assert!(
        events
            .iter()
            .all(|event| event.resource_id == id.to_string())
    );
    assert_eq!(
        described(&events),
        vec![
            (
                OrderPlaced,
                1,
                json!({ "id": id.to_string(), "status": "confirmed" })
            ),
            (
                OrderCancelled,
                2,
                json!({ "id": id.to_string(), "status": "cancelled" })
            ),
        ]
    );
}

async fn capturing_and_refunding_a_payment_records_each_event_once(backend: Backend) {
    use EventType::{PaymentCaptured, PaymentRefunded};
    let stores = backend.stores().await;
    let token = |text: &str| PaymentToken::parse(text).unwrap();
    let reference = OrderId::generate();
    let transaction_id = stores
        .payments
        .capture(&token("tok_visa"), usd(4_499), reference)
        .await
        .unwrap();
    // A repeated capture answers the first one and records nothing; a decline neither.
    let again = stores
        .payments
        .capture(&token("tok_visa"), usd(4_499), reference)
        .await;
    assert_eq!(again, Ok(transaction_id));
    let declined = stores
        .payments
        .capture(&token("tok_chargeDeclined"), usd(100), OrderId::generate())
        .await;
    assert_eq!(declined, Err(PaymentError::Declined));

    stores.payments.refund(transaction_id).await.unwrap();
    assert_eq!(
        stores.payments.refund(transaction_id).await,
        Err(PaymentError::AlreadyRefunded { transaction_id })
    );
    let unknown = TransactionId::generate();
    assert_eq!(
        stores.payments.refund(unknown).await,
        Err(PaymentError::UnknownTransaction {
            transaction_id: unknown
        })
    );

    let events = all_events(&stores).await;
    assert!(
        events
            .iter()
            .all(|event| event.resource_id == transaction_id.to_string())
    );
    let data = |status: &str| {
        json!({
            "transaction_id": transaction_id.to_string(),
            "order_id": reference.to_string(),
            "status": status,
        })
    };
    assert_eq!(
        described(&events),
        vec![
            (PaymentCaptured, 1, data("captured")),
            (PaymentRefunded, 2, data("refunded")),
        ]
    );
}

async fn a_delivery_records_its_scheduling_and_each_change_of_status_only(backend: Backend) {
    use EventType::{
        DeliveryCancelled, DeliveryDelivered, DeliveryDispatched, DeliveryInTransit,
        DeliveryScheduled,
    };
    let stores = backend.stores().await;
    let shipped = delivery_for_order_in_status(OrderId::generate(), DeliveryStatus::Scheduled);
    let kept = delivery_for_order_in_status(OrderId::generate(), DeliveryStatus::Scheduled);
    stores.deliveries.insert(shipped.clone()).await.unwrap();
    stores
        .deliveries
        .insert_within_capacity(kept.clone(), 10)
        .await
        .unwrap();
    // A second delivery for an order, and a full day: nothing recorded.
    let clash = delivery_for_order_in_status(shipped.order_id(), DeliveryStatus::Scheduled);
    assert!(stores.deliveries.insert(clash).await.is_err());
    let full = delivery_for_order_in_status(OrderId::generate(), DeliveryStatus::Scheduled);
    assert!(matches!(
        stores.deliveries.insert_within_capacity(full, 2).await,
        Err(DeliveryError::DayFull { .. })
    ));

    let update = |status| CarrierUpdate::new(status, Utc::now()).unwrap();
    let id = shipped.id();
    stores
        .deliveries
        .record_update(id, update(DeliveryStatus::Dispatched), Utc::now())
        .await
        .unwrap();
    let in_transit = update(DeliveryStatus::InTransit);
    stores
        .deliveries
        .record_update(id, in_transit.clone(), Utc::now())
        .await
        .unwrap();
    // Another scan on the way (history only), the same update again: nothing recorded.
    stores
        .deliveries
        .record_update(id, update(DeliveryStatus::InTransit), Utc::now())
        .await
        .unwrap();
    stores
        .deliveries
        .record_update(id, in_transit, Utc::now())
        .await
        .unwrap();
    stores
        .deliveries
        .transition(id, Delivery::delivered)
        .await
        .unwrap();
    // Refused changes record nothing.
    assert!(
        stores
            .deliveries
            .transition(id, Delivery::dispatched)
            .await
            .is_err()
    );
    assert!(
        stores
            .deliveries
            .cancel_for_order(shipped.order_id())
            .await
            .is_err()
    );
    // Cancelling records once; cancelling the cancelled delivery again records nothing.
    for _ in 0..2 {
        let cancelled = stores
            .deliveries
            .cancel_for_order(kept.order_id())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cancelled.status(), DeliveryStatus::Cancelled);
    }
    assert_eq!(
        stores
            .deliveries
            .cancel_for_order(OrderId::generate())
            .await
            .unwrap(),
        None
    );

    let data = |delivery: &Delivery, status: &str| json!({ "id": delivery.id().to_string(), "status": status });
    assert_eq!(
        described(&events_of(&stores, &shipped.id().to_string()).await),
        vec![
            (DeliveryScheduled, 1, data(&shipped, "scheduled")),
            (DeliveryDispatched, 2, data(&shipped, "dispatched")),
            (DeliveryInTransit, 3, data(&shipped, "in_transit")),
            (DeliveryDelivered, 4, data(&shipped, "delivered")),
        ]
    );
    assert_eq!(
        described(&events_of(&stores, &kept.id().to_string()).await),
        vec![
            (DeliveryScheduled, 1, data(&kept, "scheduled")),
            (DeliveryCancelled, 2, data(&kept, "cancelled")),
        ]
    );
    assert_eq!(all_events(&stores).await.len(), 6, "nothing else recorded");
}

async fn events_are_positioned_without_gaps_in_id_order_once_sequenced(backend: Backend) {
    let stores = backend.stores().await;
    let tasks = (1..=16)
        .map(|number| {
            let catalogue = Arc::clone(&stores.catalogue);
            tokio::spawn(async move {
                catalogue
                    .insert(book(number, "Dune", "Frank Herbert", 999, 1))
                    .await
            })
        })
        .collect();
    for inserted in join_all(tasks).await {
        inserted.unwrap();
    }
    let unsequenced = stores
        .events
        .list(&query(EventDirection::OldestAfter(0), 100))
        .await
        .unwrap();
    if backend == Backend::Postgres {
        // Recorded, not yet in the feed: no position until the sequencer runs.
        assert!(unsequenced.events.is_empty());
        assert_eq!(stores.events.last_position().await.unwrap(), 0);
        assert_eq!(stores.events.after(0, 100).await.unwrap(), Vec::new());
        assert_eq!(stores.events.sequence().await.unwrap(), 16);
    } else {
        assert_eq!(unsequenced.events.len(), 16, "positioned when recorded");
    }
    assert_eq!(stores.events.sequence().await.unwrap(), 0);

    let events = all_events(&stores).await;
    let positions: Vec<u64> = events.iter().filter_map(|event| event.position).collect();
    assert_eq!(positions, (1..=16).collect::<Vec<u64>>());
    assert_eq!(stores.events.last_position().await.unwrap(), 16);
    if backend == Backend::Postgres {
        let ids: Vec<_> = events.iter().map(|event| event.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "the sequencer numbers in id order");
    }
    for event in &events {
        let got = stores.events.get(event.id).await.unwrap();
        assert_eq!(got.as_ref(), Some(event));
    }
    assert_eq!(stores.events.after(10, 100).await.unwrap(), events[10..]);
}

async fn the_feed_pages_both_ways_without_repeats_or_gaps_and_filters_by_type_and_resource(
    backend: Backend,
) {
    let stores = backend.stores().await;
    stock_catalogue(
        &stores,
        (1..=5).map(|number| book(number, "Dune", "Frank Herbert", 999, 2)),
    )
    .await;
    for number in [2, 4] {
        stores
            .catalogue
            .update(
                &isbn(number),
                BookPatch {
                    title: None,
                    author: None,
                    price: Some(usd(1_299)),
                    stock: None,
                },
            )
            .await
            .unwrap();
    }
    let mut orders = Vec::new();
    for owner in ["ada", "grace", "alan"] {
        let order = order_for(owner);
        orders.push(order.id());
        stores.orders.insert(order).await.unwrap();
    }
    stores.orders.mark_cancelled(orders[1]).await.unwrap();

    let everything = all_events(&stores).await;
    assert_eq!(everything.len(), 11);
    let positions: Vec<u64> = everything
        .iter()
        .filter_map(|event| event.position)
        .collect();
    assert_eq!(positions, (1..=11).collect::<Vec<u64>>());

    // Oldest first in small pages is the same list.
    for page in [1, 3, 4, 11, 12] {
        let paged =
            read_oldest_first(&stores, query(EventDirection::OldestAfter(0), page), page).await;
        assert_eq!(paged, everything, "pages of {page}");
    }
    // Newest first, in pages of 3, is the same list reversed.
    let mut newest_first = Vec::new();
    let mut before = None;
    for _ in 0..100 {
        let found = stores
            .events
            .list(&query(EventDirection::NewestBefore(before), 3))
            .await
            .unwrap();
        before = found.events.last().and_then(|event| event.position);
        newest_first.extend(found.events);
        if !found.has_more {
            break;
        }
    }
    newest_first.reverse();
    assert_eq!(newest_first, everything);

    // Filters, each in pages of 2.
    let filtered = |types: &[&str], resource_id: Option<String>| EventQuery {
        types: types
            .iter()
            .map(|text| EventTypePattern::parse(text).unwrap())
            .collect(),
        resource_id,
        ..query(EventDirection::OldestAfter(0), 2)
    };
    let expected = |keep: &dyn Fn(&Event) -> bool| -> Vec<Event> {
        everything
            .iter()
            .filter(|event| keep(event))
            .cloned()
            .collect()
    };
    let orders_only = read_oldest_first(&stores, filtered(&["order.*"], None), 2).await;
    assert_eq!(orders_only.len(), 4);
    assert_eq!(
        orders_only,
        expected(&|event| event.event_type.as_str().starts_with("order."))
    );
    let placed_or_updated = read_oldest_first(
        &stores,
        filtered(&["order.placed", "book.updated"], None),
        2,
    )
    .await;
    assert_eq!(placed_or_updated.len(), 5);
    assert_eq!(
        placed_or_updated,
        expected(&|event| matches!(
            event.event_type,
            EventType::OrderPlaced | EventType::BookUpdated
        ))
    );
    let book_two =
        read_oldest_first(&stores, filtered(&["book.*"], Some(isbn(2).to_string())), 2).await;
    assert_eq!(
        book_two
            .iter()
            .map(|event| (event.event_type, event.sequence))
            .collect::<Vec<_>>(),
        vec![(EventType::BookCreated, 1), (EventType::BookUpdated, 2)]
    );
    let nothing = read_oldest_first(
        &stores,
        filtered(&["payment.*"], Some(isbn(2).to_string())),
        2,
    )
    .await;
    assert!(nothing.is_empty());
}

async fn the_feed_read_oldest_first_while_events_are_added_misses_and_repeats_nothing(
    backend: Backend,
) {
    const BOOKS: u32 = 40;
    let stores = backend.stores().await;
    let catalogue = Arc::clone(&stores.catalogue);
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let catalogue = Arc::clone(&catalogue);
            tokio::spawn(async move {
                for number in (1..=BOOKS).filter(|number| number % 4 == writer) {
                    catalogue
                        .insert(book(number, "Dune", "Frank Herbert", 999, 1))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut seen: Vec<u64> = Vec::new();
    let mut resources = BTreeSet::new();
    let mut after = 0;
    // Bounded: each round either reads something or waits for a writer to make progress.
    for _ in 0..100_000 {
        let writing = writers.iter().any(|writer| !writer.is_finished());
        stores.events.sequence().await.unwrap();
        let page = stores
            .events
            .list(&query(EventDirection::OldestAfter(after), 3))
            .await
            .unwrap();
        for event in &page.events {
            seen.push(event.position.unwrap());
            resources.insert(event.resource_id.clone());
        }
        if let Some(last) = page.events.last() {
            after = last.position.unwrap();
        }
        if !writing && !page.has_more && resources.len() == BOOKS as usize {
            break;
        }
        if page.events.is_empty() {
            tokio::task::yield_now().await;
        }
    }
    join_all(writers).await;
    assert_eq!(seen, (1..=u64::from(BOOKS)).collect::<Vec<u64>>());
    assert_eq!(resources.len(), BOOKS as usize);
}

async fn an_order_refused_for_want_of_a_lease_records_nothing(backend: Backend) {
    let stores = backend.stores().await;
    let recorded = order_for("ada");
    stores.orders.insert(recorded.clone()).await.unwrap();
    let database = stores.database.clone().expect("a SQL backend");
    database.deregister_instance().await.unwrap();

    let refused = stores.orders.insert(order_for("ada")).await;
    assert!(
        matches!(refused, Err(SalesError::Unavailable(_))),
        "{refused:?}"
    );
    let events = all_events(&stores).await;
    assert_eq!(
        events
            .iter()
            .map(|event| (event.event_type, event.resource_id.clone()))
            .collect::<Vec<_>>(),
        vec![(EventType::OrderPlaced, recorded.id().to_string())]
    );
}

async fn purging_deletes_the_old_events_but_never_the_newest_and_positions_go_on(backend: Backend) {
    let stores = backend.stores().await;
    let before_any = Utc::now() - chrono::Duration::seconds(1);
    stock_catalogue(
        &stores,
        (1..=5).map(|number| book(number, "Dune", "Frank Herbert", 999, 2)),
    )
    .await;
    sequence_all(&stores).await;
    assert_eq!(stores.events.purge(before_any).await.unwrap(), 0);
    assert_eq!(stores.events.last_position().await.unwrap(), 5);

    let after_all = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(stores.events.purge(after_all).await.unwrap(), 4);
    let left = read_oldest_first(&stores, query(EventDirection::OldestAfter(0), 100), 100).await;
    assert_eq!(
        left.iter().map(|event| event.position).collect::<Vec<_>>(),
        [Some(5)],
        "the newest event is kept"
    );
    assert_eq!(stores.events.last_position().await.unwrap(), 5);

    stock_catalogue(&stores, [book(6, "Dune", "Frank Herbert", 999, 2)]).await;
    sequence_all(&stores).await;
    let left = read_oldest_first(&stores, query(EventDirection::OldestAfter(0), 100), 100).await;
    assert_eq!(
        left.iter().map(|event| event.position).collect::<Vec<_>>(),
        [Some(5), Some(6)],
        "a position is never given twice"
    );
    // A resource's sequence goes on after its events were purged.
    let patch = BookPatch {
        stock: Some(3),
        ..BookPatch::default()
    };
    stores.catalogue.update(&isbn(1), patch).await.unwrap();
    let events = read_oldest_first(&stores, query(EventDirection::OldestAfter(0), 100), 100).await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].resource_id, isbn(1).to_string());
    assert_eq!(events[2].sequence, 2, "book 1's creation was its event 1");
}
