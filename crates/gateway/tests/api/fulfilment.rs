//! Fulfilment: carrier updates move a delivery through its life cycle, with a history the
//! customer reads; late and repeated updates never move it back; cancelling stops at
//! dispatch; roles; the day's pick list; capacity per day and closed days.

use std::collections::BTreeMap;

use bookstore_delivery::{Delivery, DeliveryCalendar};
use bookstore_gateway::app::DeliveryPolicy;
use bookstore_types::OrderId;
use chrono::{Datelike, Days, NaiveDate, Utc, Weekday};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    ADMIN, AppConfig, CUSTOMER, EFFECTIVE_JAVA, FULFILMENT, OTHER_CUSTOMER, RunningServer, TestApp,
    delivery_request, spawn_app, spawn_app_with,
};

/// A scheduled delivery of a fresh order of `CUSTOMER`'s; its id.
async fn scheduled_delivery(app: &TestApp) -> String {
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    let delivery = app
        .schedule_delivery(CUSTOMER, order["id"].as_str().unwrap())
        .await;
    delivery["id"].as_str().unwrap().to_owned()
}

/// An update body: `status` at `occurred_at`, plus `extra` fields.
fn update(status: &str, occurred_at: &str, extra: Value) -> Value {
    let mut body = json!({ "status": status, "occurred_at": occurred_at });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

/// Posts an update with `key`; returns the response.
async fn post_update(
    app: &TestApp,
    key: &str,
    id: &str,
    body: &Value,
) -> crate::helpers::TestResponse {
    app.post_json(&format!("/api/delivery/{id}/events"), key, body)
        .await
}

/// The moment `minutes` minutes before now, in RFC 3339.
fn ago(minutes: i64) -> String {
    (Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339()
}

fn statuses_of(history: &Value) -> Vec<(String, bool)> {
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["status"].as_str().unwrap().to_owned(),
                entry["applied"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn a_delivery_moves_from_scheduled_to_delivered_with_a_history_the_customer_reads() {
    let app = spawn_app().await;
    let id = scheduled_delivery(&app).await;
    let dispatched = post_update(
        &app,
        FULFILMENT,
        &id,
        &update(
            "dispatched",
            &ago(300),
            json!({ "carrier": "DHL", "tracking_number": "JJD0099000111", "location": "Warehouse 1" }),
        ),
    )
    .await
    .success(200);
    assert_eq!(dispatched["status"], "dispatched");
    assert_eq!(dispatched["carrier"], "DHL");
    assert_eq!(dispatched["carrier_tracking_number"], "JJD0099000111");
    for (status, minutes) in [
        ("in_transit", 200),
        ("out_for_delivery", 100),
        ("delivered", 10),
    ] {
        post_update(
            &app,
            FULFILMENT,
            &id,
            &update(status, &ago(minutes), json!({})),
        )
        .await
        .success(200);
    }

    let read = app
        .get(&format!("/api/delivery/{id}"), CUSTOMER)
        .await
        .success(200);
    assert_eq!(read["status"], "delivered");
    assert_eq!(read["promised_date"], read["scheduled_date"]);
    assert_eq!(read["late"], false);
    assert_eq!(
        statuses_of(&read["history"]),
        ["dispatched", "in_transit", "out_for_delivery", "delivered"]
            .map(|status| (status.to_owned(), true))
            .to_vec()
    );
    assert_eq!(read["history"][0]["location"], "Warehouse 1");
    let order_id = read["order_id"].as_str().unwrap();
    let through_order = app
        .get(&format!("/api/orders/{order_id}/delivery"), CUSTOMER)
        .await
        .success(200);
    assert_eq!(through_order["history"], read["history"]);
}

#[actix_web::test]
async fn a_late_update_joins_the_history_but_never_turns_a_delivered_parcel_back() {
    let app = spawn_app().await;
    let id = scheduled_delivery(&app).await;
    for (status, minutes) in [("dispatched", 300), ("delivered", 30)] {
        post_update(
            &app,
            FULFILMENT,
            &id,
            &update(status, &ago(minutes), json!({})),
        )
        .await
        .success(200);
    }
    // The carrier's "in transit" scan from the morning arrives after the delivery.
    let late = post_update(
        &app,
        FULFILMENT,
        &id,
        &update("in_transit", &ago(200), json!({})),
    )
    .await
    .success(200);
    assert_eq!(late["status"], "delivered");
    assert_eq!(
        statuses_of(&late["history"]),
        vec![
            ("dispatched".to_owned(), true),
            ("in_transit".to_owned(), false),
            ("delivered".to_owned(), true)
        ]
    );
}

#[actix_web::test]
async fn a_move_the_life_cycle_does_not_allow_is_409_naming_the_status_and_records_nothing() {
    let app = spawn_app().await;
    let id = scheduled_delivery(&app).await;
    let problem = post_update(
        &app,
        FULFILMENT,
        &id,
        &update("delivered", &ago(5), json!({})),
    )
    .await
    .problem(409);
    assert_eq!(problem["type"], "/problems/delivery-status-conflict");
    assert!(
        problem["detail"].as_str().unwrap().contains("scheduled"),
        "{problem}"
    );
    let read = app
        .get(&format!("/api/delivery/{id}"), ADMIN)
        .await
        .success(200);
    assert_eq!(read["status"], "scheduled");
    assert_eq!(read["history"], json!([]));
}

#[actix_web::test]
async fn the_same_update_sent_twice_is_recorded_once_and_a_keyed_retry_is_replayed() {
    let app = spawn_app().await;
    let id = scheduled_delivery(&app).await;
    let body = update("dispatched", &ago(60), json!({ "carrier": "UPS" }));
    let first = post_update(&app, FULFILMENT, &id, &body).await.success(200);
    let second = post_update(&app, FULFILMENT, &id, &body).await.success(200);
    assert_eq!(first["history"], second["history"]);
    assert_eq!(second["history"].as_array().unwrap().len(), 1);

    let scan = update("in_transit", &ago(30), json!({ "location": "Hub" }));
    let path = format!("/api/delivery/{id}/events");
    let keyed = |app: &TestApp| {
        app.request(actix_web::http::Method::POST, &path)
            .key(FULFILMENT)
            .header("Idempotency-Key", "scan-1")
            .json(&scan)
            .send()
    };
    let original = keyed(&app).await;
    original.assert_status(200);
    let replayed = keyed(&app).await;
    replayed.assert_status(200);
    assert_eq!(replayed.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(replayed.text(), original.text());
}

#[actix_web::test]
async fn a_delivery_can_be_cancelled_before_dispatch_but_not_after() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    let delivery = app.schedule_delivery(CUSTOMER, order_id).await;
    let id = delivery["id"].as_str().unwrap();
    post_update(
        &app,
        FULFILMENT,
        id,
        &update("dispatched", &ago(5), json!({})),
    )
    .await
    .success(200);
    let problem = app.cancel(order_id, CUSTOMER).await.problem(409);
    assert_eq!(problem["type"], "/problems/order-not-cancellable");
    assert!(
        problem["detail"].as_str().unwrap().contains("dispatched"),
        "{problem}"
    );
    let order = app
        .get(&format!("/api/orders/{order_id}"), CUSTOMER)
        .await
        .success(200);
    assert_eq!(order["status"], "confirmed");

    // Before dispatch, cancelling the order cancels its delivery.
    let other = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    let other_id = other["id"].as_str().unwrap();
    let scheduled = app.schedule_delivery(CUSTOMER, other_id).await;
    app.cancel(other_id, CUSTOMER).await.success(200);
    let read = app
        .get(
            &format!("/api/delivery/{}", scheduled["id"].as_str().unwrap()),
            CUSTOMER,
        )
        .await
        .success(200);
    assert_eq!(read["status"], "cancelled");
}

#[actix_web::test]
async fn only_fulfilment_and_admin_keys_post_updates_and_list_and_customers_read_only_their_own() {
    let app = spawn_app().await;
    let id = scheduled_delivery(&app).await;
    let body = update("dispatched", &ago(5), json!({}));
    let forbidden = post_update(&app, CUSTOMER, &id, &body).await.problem(403);
    assert_eq!(forbidden["type"], "/problems/forbidden");
    app.get("/api/deliveries", CUSTOMER).await.problem(403);
    post_update(&app, ADMIN, &id, &body).await.success(200);
    app.get(&format!("/api/delivery/{id}"), FULFILMENT)
        .await
        .success(200);
    app.get(&format!("/api/delivery/{id}"), OTHER_CUSTOMER)
        .await
        .problem(404);
    let unknown = Uuid::now_v7();
    post_update(&app, FULFILMENT, &unknown.to_string(), &body)
        .await
        .problem(404);
}

#[actix_web::test]
async fn a_bad_update_is_422_naming_every_field_and_changes_nothing() {
    let app = spawn_app().await;
    let id = scheduled_delivery(&app).await;
    let response = post_update(
        &app,
        FULFILMENT,
        &id,
        &json!({
            "status": "shipped",
            "occurred_at": "2026-12-03",
            "carrier": "",
            "note": "x".repeat(1001),
        }),
    )
    .await;
    response.problem(422);
    assert_eq!(
        response.field_errors(),
        vec!["status", "occurred_at", "carrier", "note"]
    );
    let future = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let response = post_update(
        &app,
        FULFILMENT,
        &id,
        &update("dispatched", &future, json!({})),
    )
    .await;
    response.problem(422);
    assert_eq!(response.field_errors(), vec!["occurred_at"]);
    let read = app
        .get(&format!("/api/delivery/{id}"), ADMIN)
        .await
        .success(200);
    assert_eq!(read["status"], "scheduled");
    assert_eq!(read["history"], json!([]));
}

#[actix_web::test]
async fn the_pick_list_of_a_day_pages_by_date_and_status() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(scheduled_delivery(&app).await);
    }
    post_update(
        &app,
        FULFILMENT,
        &ids[0],
        &update("dispatched", &ago(5), json!({})),
    )
    .await
    .success(200);
    let day = app
        .get(&format!("/api/delivery/{}", ids[0]), ADMIN)
        .await
        .success(200)["scheduled_date"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut seen = Vec::new();
    let mut path = format!("/api/deliveries?date={day}&limit=2");
    for _ in 0..5 {
        let page = app.get(&path, FULFILMENT).await.success(200);
        for delivery in page["deliveries"].as_array().unwrap() {
            seen.push(delivery["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/deliveries?date={day}&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "every delivery of the day once, in scheduling order"
    );
    let dispatched = app
        .get("/api/deliveries?status=dispatched", ADMIN)
        .await
        .success(200);
    assert_eq!(dispatched["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(dispatched["deliveries"][0]["id"], ids[0].as_str());
    assert_eq!(dispatched["next_cursor"], Value::Null);

    let first_page = app
        .get(&format!("/api/deliveries?date={day}&limit=1"), ADMIN)
        .await
        .success(200);
    let issued_cursor = first_page["next_cursor"].as_str().unwrap();
    for (bad, status) in [
        ("date=2026-1-1", 422),
        ("status=shipped", 400),
        ("limit=0", 400),
        ("cursor=zz", 400),
        // One spelling per value: no sign or leading zero, the cursor as it was issued.
        ("limit=%2B2", 400),
        ("limit=02", 400),
        (&format!("cursor={}", issued_cursor.to_uppercase()), 400),
    ] {
        app.get(&format!("/api/deliveries?{bad}"), ADMIN)
            .await
            .problem(status);
    }
}

#[actix_web::test]
async fn a_delivery_past_its_promised_day_and_undelivered_reads_as_late() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    let order_id: OrderId = order["id"].as_str().unwrap().parse().unwrap();
    let yesterday = Utc::now().date_naive() - Days::new(1);
    let parsed_address = bookstore_delivery::Address::parse(bookstore_delivery::AddressInput {
        recipient: "Ada Lovelace".to_owned(),
        line1: "1 Main St".to_owned(),
        line2: None,
        city: "London".to_owned(),
        postal_code: "N1 9GU".to_owned(),
        country: "GB".to_owned(),
    })
    .unwrap();
    let overdue = Delivery::schedule_on(
        order_id,
        parsed_address,
        yesterday,
        Utc::now() - chrono::Duration::days(3),
    );
    app.stores
        .state
        .deliveries
        .insert(overdue.clone())
        .await
        .unwrap();
    let read = app
        .get(&format!("/api/delivery/{}", overdue.id()), CUSTOMER)
        .await
        .success(200);
    assert_eq!(read["late"], true);
    assert_eq!(read["promised_date"], yesterday.to_string());
}

/// The next Monday after today, at least a week ahead (so every day of that week is ahead).
fn a_monday_ahead() -> NaiveDate {
    let mut day = Utc::now().date_naive() + Days::new(7);
    while day.weekday() != Weekday::Mon {
        day = day + Days::new(1);
    }
    day
}

#[actix_web::test]
async fn a_closed_day_is_skipped_like_a_weekend() {
    let monday = a_monday_ahead();
    let tuesday = monday + Days::new(1);
    let app = spawn_app_with(AppConfig {
        delivery_policy: DeliveryPolicy {
            calendar: DeliveryCalendar::with_closed_days([monday]),
            capacity_per_day: None,
        },
        ..AppConfig::default()
    })
    .await;
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    let mut request = delivery_request(order["id"].as_str().unwrap());
    request["requested_date"] = json!(monday.to_string());
    let delivery = app
        .post_json("/api/delivery", CUSTOMER, &request)
        .await
        .success(201);
    assert_eq!(delivery["scheduled_date"], tuesday.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_schedulings_for_a_day_with_room_for_ten_book_exactly_ten_on_it() {
    let monday = a_monday_ahead();
    let server = RunningServer::start(AppConfig {
        books: vec![crate::helpers::book(
            &crate::helpers::isbn_with("979", 77),
            "Plenty",
            "Someone",
            100,
            1000,
        )],
        delivery_policy: DeliveryPolicy {
            calendar: DeliveryCalendar::default(),
            capacity_per_day: Some(10),
        },
        ..AppConfig::default()
    });
    let client = server.client();
    let isbn = crate::helpers::isbn_with("979", 77);
    let mut orders = Vec::new();
    for _ in 0..64 {
        let order: Value = client
            .post(server.url("/api/orders"))
            .header("X-API-Key", CUSTOMER)
            .json(&crate::helpers::order_request(&[(&isbn, 1)], "tok_visa"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        orders.push(order["id"].as_str().unwrap().to_owned());
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = orders
        .into_iter()
        .map(|order_id| {
            let (client, barrier, url) =
                (client.clone(), barrier.clone(), server.url("/api/delivery"));
            tokio::spawn(async move {
                let mut request = delivery_request(&order_id);
                request["requested_date"] = json!(monday.to_string());
                barrier.wait().await;
                let response = client
                    .post(url)
                    .header("X-API-Key", CUSTOMER)
                    .json(&request)
                    .send()
                    .await
                    .unwrap();
                (
                    response.status().as_u16(),
                    response.json::<Value>().await.unwrap(),
                )
            })
        })
        .collect();
    let mut per_day = BTreeMap::<String, usize>::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 201, "{body}");
        *per_day
            .entry(body["scheduled_date"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_day.get(&monday.to_string()), Some(&10), "{per_day:?}");
    assert!(per_day.values().all(|count| *count <= 10), "{per_day:?}");
    assert_eq!(per_day.values().sum::<usize>(), 64);
    for day in per_day.keys() {
        let day: NaiveDate = day.parse().unwrap();
        assert!(DeliveryCalendar::default().is_business_day(day), "{day}");
        assert!(day >= monday);
    }
    server.stop().await;
}
