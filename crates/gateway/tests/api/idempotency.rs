//! `Idempotency-Key`: a retried POST replays the first response and does nothing twice; a
//! key reused for another request is 422, a key still in flight is 409; keys are scoped to
//! the API key.

use std::time::Duration;

use actix_web::http::Method;
use serde_json::{Value, json};

use crate::helpers::{
    AppConfig, CUSTOMER, EFFECTIVE_JAVA, OTHER_CUSTOMER, RUST_BOOK, TestApp, TestResponse,
    delivery_request, order_request, spawn_app, spawn_app_with,
};

async fn post_with_key(
    app: &TestApp,
    path: &str,
    key: &str,
    idempotency_key: &str,
    body: &Value,
) -> TestResponse {
    app.request(Method::POST, path)
        .key(key)
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await
}

async fn cancel_with_key(app: &TestApp, order_id: &str, idempotency_key: &str) -> TestResponse {
    app.request(Method::POST, &format!("/api/orders/{order_id}/cancel"))
        .key(CUSTOMER)
        .header("Idempotency-Key", idempotency_key)
        .send()
        .await
}

#[track_caller]
fn assert_replay_of(replay: &TestResponse, first: &TestResponse) {
    assert_eq!(replay.status, first.status, "the replayed status");
    assert_eq!(
        replay.body, first.body,
        "the replayed body is not byte-identical"
    );
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.header("location"), first.header("location"));
    assert_eq!(
        first.header("idempotent-replayed"),
        None,
        "the first response is not a replay"
    );
    assert!(replay.header("x-request-id").is_some());
}

async fn order_count(app: &TestApp, key: &str) -> usize {
    app.get("/api/orders?limit=100", key).await.success(200)["items"]
        .as_array()
        .unwrap()
        .len()
}

#[actix_web::test]
async fn the_same_key_and_body_replay_the_first_order_and_place_only_one() {
    let app = spawn_app().await;
    let body = order_request(&[(EFFECTIVE_JAVA, 2)], "tok_visa");
    let first = post_with_key(&app, "/api/orders", CUSTOMER, "order-attempt-1", &body).await;
    first.assert_status(201);
    let replay = post_with_key(&app, "/api/orders", CUSTOMER, "order-attempt-1", &body).await;
    assert_replay_of(&replay, &first);
    let again = post_with_key(&app, "/api/orders", CUSTOMER, "order-attempt-1", &body).await;
    assert_replay_of(&again, &first);

    assert_eq!(order_count(&app, CUSTOMER).await, 1);
    assert_eq!(app.stores.captured_count(), 1);
    assert_eq!(app.stores.capture_attempts(), 1);
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 10);
}

#[actix_web::test]
async fn the_same_key_with_a_different_body_is_422_and_places_nothing() {
    let app = spawn_app().await;
    let first = post_with_key(
        &app,
        "/api/orders",
        CUSTOMER,
        "k-1",
        &order_request(&[(EFFECTIVE_JAVA, 1)], "tok_visa"),
    )
    .await;
    first.assert_status(201);
    let other_body = order_request(&[(EFFECTIVE_JAVA, 2)], "tok_visa");
    let problem = post_with_key(&app, "/api/orders", CUSTOMER, "k-1", &other_body)
        .await
        .problem(422);
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");
    assert_eq!(order_count(&app, CUSTOMER).await, 1);
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 11);
}

#[actix_web::test]
async fn the_same_key_on_another_orders_cancel_is_422() {
    let app = spawn_app().await;
    let first = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let second = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    cancel_with_key(&app, first["id"].as_str().unwrap(), "cancel-key")
        .await
        .assert_status(200);
    let problem = cancel_with_key(&app, second["id"].as_str().unwrap(), "cancel-key")
        .await
        .problem(422);
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");
    let second_now = app
        .get(
            &format!("/api/orders/{}", second["id"].as_str().unwrap()),
            CUSTOMER,
        )
        .await
        .success(200);
    assert_eq!(second_now["status"], "confirmed");
    assert_eq!(app.stores.refunded_count(), 1);
}

#[actix_web::test]
async fn keys_are_scoped_to_the_api_key() {
    let app = spawn_app().await;
    let body = order_request(&[(EFFECTIVE_JAVA, 1)], "tok_visa");
    let alice = post_with_key(&app, "/api/orders", CUSTOMER, "shared-key", &body).await;
    let bob = post_with_key(&app, "/api/orders", OTHER_CUSTOMER, "shared-key", &body).await;
    let alice_order = alice.success(201);
    let bob_order = bob.success(201);
    assert_eq!(bob.header("idempotent-replayed"), None);
    assert_ne!(alice_order["id"], bob_order["id"]);
    assert_eq!(order_count(&app, CUSTOMER).await, 1);
    assert_eq!(order_count(&app, OTHER_CUSTOMER).await, 1);
    assert_eq!(app.stores.captured_count(), 2);
}

#[actix_web::test]
async fn keys_must_be_one_to_255_printable_ascii_characters() {
    let app = spawn_app().await;
    let body = order_request(&[(RUST_BOOK, 1)], "tok_visa");
    for (case, key) in [
        ("256 characters", "k".repeat(256)),
        ("empty", String::new()),
        ("not ASCII", "clé-1".to_owned()),
    ] {
        let response = post_with_key(&app, "/api/orders", CUSTOMER, &key, &body).await;
        assert!(
            [400, 422].contains(&response.status),
            "{case}: {}",
            response.status
        );
        response.problem(response.status);
    }
    assert_eq!(app.stores.captured_count(), 0);
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 75);

    let longest = "k".repeat(255);
    post_with_key(&app, "/api/orders", CUSTOMER, &longest, &body)
        .await
        .assert_status(201);
    let replay = post_with_key(&app, "/api/orders", CUSTOMER, &longest, &body).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    post_with_key(&app, "/api/orders", CUSTOMER, "a key with spaces ~!", &body)
        .await
        .assert_status(201);
}

#[actix_web::test]
async fn a_declined_payment_is_replayed_as_402_without_charging_again() {
    let app = spawn_app().await;
    let body = order_request(&[(EFFECTIVE_JAVA, 1)], "tok_chargeDeclined");
    let first = post_with_key(&app, "/api/orders", CUSTOMER, "declined-1", &body).await;
    first.problem(402);
    let replay = post_with_key(&app, "/api/orders", CUSTOMER, "declined-1", &body).await;
    replay.problem(402);
    assert_replay_of(&replay, &first);
    assert_eq!(app.stores.capture_attempts(), 1);
    assert_eq!(app.stores.captured_count(), 0);
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
}

#[actix_web::test]
async fn scheduling_a_delivery_with_a_key_twice_replays_the_first_delivery() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    let body = delivery_request(order_id);
    let first = post_with_key(&app, "/api/delivery", CUSTOMER, "delivery-1", &body).await;
    first.assert_status(201);
    let replay = post_with_key(&app, "/api/delivery", CUSTOMER, "delivery-1", &body).await;
    assert_replay_of(&replay, &first);
    assert_eq!(
        app.get(&format!("/api/orders/{order_id}/delivery"), CUSTOMER)
            .await
            .json(),
        first.json()
    );
}

#[actix_web::test]
async fn cancelling_with_a_key_twice_replays_the_first_cancel_and_refunds_once() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 3)]).await;
    let order_id = order["id"].as_str().unwrap();
    let first = cancel_with_key(&app, order_id, "cancel-1").await;
    assert_eq!(first.success(200)["status"], "cancelled");
    let replay = cancel_with_key(&app, order_id, "cancel-1").await;
    assert_replay_of(&replay, &first);
    assert_eq!(app.stores.refunded_count(), 1);
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 75);

    // `{}` is the same request as no body.
    let with_empty_object = app
        .request(Method::POST, &format!("/api/orders/{order_id}/cancel"))
        .key(CUSTOMER)
        .header("Idempotency-Key", "cancel-1")
        .json(&json!({}))
        .send()
        .await;
    assert_replay_of(&with_empty_object, &first);
}

#[actix_web::test]
async fn a_key_whose_first_request_is_still_in_flight_is_409() {
    let app = spawn_app_with(AppConfig {
        hold_payments: true,
        ..AppConfig::default()
    })
    .await;
    let body = order_request(&[(EFFECTIVE_JAVA, 1)], "tok_visa");
    let send = || {
        app.request(Method::POST, "/api/orders")
            .key(CUSTOMER)
            .header("Idempotency-Key", "slow-1")
            .json(&body)
            .send()
    };
    let (first, second) = tokio::join!(send(), async {
        app.stores.payment_started().await;
        let second = tokio::time::timeout(Duration::from_secs(10), send())
            .await
            .expect("the second request is answered without waiting for the first");
        app.stores.release_payments(1);
        second
    });
    let problem = second.problem(409);
    assert_eq!(problem["type"], "/problems/idempotency-key-in-flight");
    first.assert_status(201);
    let replay = send().await;
    assert_replay_of(&replay, &first);
    assert_eq!(app.stores.capture_attempts(), 1);
    assert_eq!(order_count(&app, CUSTOMER).await, 1);
}
