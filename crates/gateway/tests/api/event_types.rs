//! Every event type is recorded by the API call that causes it, once, with the resource as
//! that call answered it as its `data`; calls that fail record nothing.

use bookstore_storage::events::{Event, EventType};
use chrono::Utc;
use serde_json::{Value, json};

use crate::helpers::{ADMIN, CUSTOMER, FULFILMENT, TestApp, delivery_request, spawn_app};

/// A book no demo catalogue has.
const NEW_BOOK: &str = "9780000000002";

/// The events recorded since `seen` of them were, and the new count.
async fn events_since(app: &TestApp, seen: &mut usize) -> Vec<Event> {
    let all = app.stores.recorded_events().await;
    let new = all[*seen..].to_vec();
    *seen = all.len();
    new
}

/// The types of `events`, in order.
fn types_of(events: &[Event]) -> Vec<EventType> {
    events.iter().map(|event| event.event_type).collect()
}

/// The one event of `kind` among `events`.
fn the_one(events: &[Event], kind: EventType) -> &Event {
    let matching: Vec<&Event> = events
        .iter()
        .filter(|event| event.event_type == kind)
        .collect();
    assert_eq!(matching.len(), 1, "one {kind} in {:?}", types_of(events));
    matching[0]
}

fn data(event: &Event) -> Value {
    serde_json::from_str(&event.data).expect("an event's data is JSON")
}

#[actix_web::test]
async fn each_call_records_its_events_with_the_resource_as_the_call_answered_it() {
    let app = spawn_app().await;
    let mut seen = app.stores.recorded_events().await.len();

    // A new book.
    let book = json!({"isbn": NEW_BOOK, "title": "Events", "author": "A. Writer",
                      "price_cents": 1200, "stock": 0});
    let created = app.post_json("/api/books", ADMIN, &book).await.success(201);
    let events = events_since(&app, &mut seen).await;
    assert_eq!(types_of(&events), [EventType::BookCreated]);
    assert_eq!(data(&events[0]), created);
    assert_eq!(
        (events[0].resource_id.as_str(), events[0].sequence),
        (NEW_BOOK, 1)
    );

    // Stock from 0 to 2: updated, and back in stock.
    let patched = app
        .patch_json(
            &format!("/api/books/{NEW_BOOK}"),
            ADMIN,
            &json!({"stock": 2}),
        )
        .await
        .success(200);
    let events = events_since(&app, &mut seen).await;
    assert_eq!(
        types_of(&events),
        [EventType::BookUpdated, EventType::BookBackInStock]
    );
    for event in &events {
        assert_eq!(data(event), patched);
    }
    assert_eq!(
        events
            .iter()
            .map(|event| event.sequence)
            .collect::<Vec<_>>(),
        [2, 3]
    );

    // An order of both copies: placed, captured, and the book is out of stock.
    let order = app.place_order(CUSTOMER, &[(NEW_BOOK, 2)]).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let events = events_since(&app, &mut seen).await;
    let placed = the_one(&events, EventType::OrderPlaced);
    assert_eq!(data(placed), order);
    assert_eq!(
        (placed.resource_id.as_str(), placed.sequence),
        (order_id.as_str(), 1)
    );
    let captured = the_one(&events, EventType::PaymentCaptured);
    let transaction_id = order["payment"]["transaction_id"].as_str().unwrap();
    assert_eq!(
        data(captured),
        json!({"transaction_id": transaction_id, "order_id": order_id,
               "amount_cents": 2400, "currency": "USD", "status": "captured"})
    );
    assert_eq!(captured.resource_id, transaction_id);
    let out = the_one(&events, EventType::BookOutOfStock);
    assert_eq!(data(out)["stock"], 0);
    assert_eq!(data(out)["isbn"], NEW_BOOK);
    assert_eq!(events.len(), 3, "{:?}", types_of(&events));

    // The delivery.
    let delivery = app.schedule_delivery(CUSTOMER, &order_id).await;
    let events = events_since(&app, &mut seen).await;
    assert_eq!(types_of(&events), [EventType::DeliveryScheduled]);
    assert_eq!(data(&events[0]), delivery);

    // Cancelling: the delivery, the order, the refund, and the stock back.
    let cancelled = app.cancel(&order_id, CUSTOMER).await.success(200);
    let events = events_since(&app, &mut seen).await;
    assert_eq!(
        data(the_one(&events, EventType::DeliveryCancelled))["status"],
        "cancelled"
    );
    let order_cancelled = the_one(&events, EventType::OrderCancelled);
    assert_eq!(data(order_cancelled), cancelled);
    assert_eq!(order_cancelled.sequence, 2);
    assert_eq!(
        data(the_one(&events, EventType::PaymentRefunded))["status"],
        "refunded"
    );
    assert_eq!(
        data(the_one(&events, EventType::BookBackInStock))["stock"],
        2
    );
    assert_eq!(events.len(), 4, "{:?}", types_of(&events));
}

#[actix_web::test]
async fn a_carrier_update_records_the_event_of_the_status_it_moved_to_and_a_repeat_records_none() {
    let app = spawn_app().await;
    let order = app
        .place_order(CUSTOMER, &[(crate::helpers::EFFECTIVE_JAVA, 1)])
        .await;
    let delivery = app
        .post_json(
            "/api/delivery",
            CUSTOMER,
            &delivery_request(order["id"].as_str().unwrap()),
        )
        .await
        .success(201);
    let id = delivery["id"].as_str().unwrap();
    let mut seen = app.stores.recorded_events().await.len();
    let path = format!("/api/delivery/{id}/events");
    let at = Utc::now().to_rfc3339();
    let mut sequence = 1;
    for status in ["dispatched", "in_transit", "out_for_delivery", "delivered"] {
        let update = json!({"status": status, "occurred_at": at});
        let answered = app.post_json(&path, FULFILMENT, &update).await.success(200);
        let events = events_since(&app, &mut seen).await;
        assert_eq!(events.len(), 1, "{status}: {:?}", types_of(&events));
        assert_eq!(events[0].event_type.as_str(), format!("delivery.{status}"));
        assert_eq!(data(&events[0]), answered);
        sequence += 1;
        assert_eq!(events[0].sequence, sequence);
    }
    // The same update again is recorded in the history once and moves nothing.
    let repeat = json!({"status": "delivered", "occurred_at": at});
    app.post_json(&path, FULFILMENT, &repeat).await.success(200);
    assert_eq!(events_since(&app, &mut seen).await, vec![]);
}

#[actix_web::test]
async fn calls_that_fail_record_no_event() {
    let app = spawn_app().await;
    let mut seen = app.stores.recorded_events().await.len();
    // Out of stock, an unknown book, a declined payment, a duplicate book.
    let too_many = app
        .post_json(
            "/api/orders",
            CUSTOMER,
            &crate::helpers::order_request(&[(crate::helpers::EFFECTIVE_JAVA, 100)], "tok_visa"),
        )
        .await;
    assert_eq!(too_many.status, 409, "{}", too_many.text());
    let declined = app
        .post_json(
            "/api/orders",
            CUSTOMER,
            &crate::helpers::order_request(
                &[(crate::helpers::EFFECTIVE_JAVA, 1)],
                "tok_chargeDeclined",
            ),
        )
        .await;
    assert_eq!(declined.status, 402, "{}", declined.text());
    let book = json!({"isbn": crate::helpers::EFFECTIVE_JAVA, "title": "Again",
                      "author": "Someone", "price_cents": 100, "stock": 1});
    let duplicate = app.post_json("/api/books", ADMIN, &book).await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text());
    let events = events_since(&app, &mut seen).await;
    // A declined payment's stock was reserved and given back: no book changed for good, and
    // the reservation took no book's last copy.
    assert_eq!(types_of(&events), vec![], "{events:?}");
}
