//! Response headers: `X-Request-Id` on every response (echoed when sane, generated
//! otherwise, and repeated in problem bodies), and `Location` on every 201.

use actix_web::http::Method;
use serde_json::json;

use crate::helpers::{
    ADMIN, CUSTOMER, RUST_BOOK, TestApp, TestResponse, delivery_request, isbn_with, spawn_app,
};

fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// One request of each kind: successes, client errors of several sorts, an unknown route.
async fn a_request_of_each_kind(
    app: &TestApp,
    request_id: Option<&str>,
) -> Vec<(&'static str, TestResponse)> {
    let with_id = |method: Method, path: &str| {
        let call = app.request(method, path);
        match request_id {
            Some(id) => call.header("X-Request-Id", id),
            None => call,
        }
    };
    vec![
        ("list books", with_id(Method::GET, "/api/books").key(CUSTOMER).send().await),
        (
            "place order",
            with_id(Method::POST, "/api/orders")
                .key(CUSTOMER)
                .json(&json!({"items": [{"isbn": RUST_BOOK, "quantity": 1}], "payment": {"token": "tok_visa"}}))
                .send()
                .await,
        ),
        ("live", with_id(Method::GET, "/health/live").send().await),
        ("spec", with_id(Method::GET, "/openapi.json").send().await),
        ("no key", with_id(Method::GET, "/api/books").send().await),
        ("forbidden", with_id(Method::POST, "/api/books").key(CUSTOMER).json(&json!({})).send().await),
        ("bad limit", with_id(Method::GET, "/api/books?limit=0").key(CUSTOMER).send().await),
        ("unknown route", with_id(Method::GET, "/no/such/route").send().await),
        ("wrong method", with_id(Method::DELETE, "/api/books").key(CUSTOMER).send().await),
        ("not json", with_id(Method::POST, "/api/orders").key(CUSTOMER).body("x").send().await),
        (
            "invalid",
            with_id(Method::POST, "/api/orders")
                .key(CUSTOMER)
                .json(&json!({"items": [], "payment": {"token": "tok_visa"}}))
                .send()
                .await,
        ),
    ]
}

#[actix_web::test]
async fn every_response_carries_a_generated_request_id_and_problems_repeat_it() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for (what, response) in a_request_of_each_kind(&app, None).await {
        let id = response
            .header("x-request-id")
            .unwrap_or_else(|| panic!("{what}: no X-Request-Id"))
            .to_owned();
        assert!(is_sane_request_id(&id), "{what}: {id:?}");
        if response.status >= 400 {
            assert_eq!(
                response.problem(response.status)["request_id"],
                json!(id),
                "{what}"
            );
        }
        ids.push(id);
    }
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "generated ids repeat: {ids:?}");
}

#[actix_web::test]
async fn a_sane_client_request_id_is_echoed_on_successes_and_errors() {
    let app = spawn_app().await;
    // Printable ASCII, space included, is echoed.
    for sane in ["abc-123", "batch 7/job 12"] {
        for (what, response) in a_request_of_each_kind(&app, Some(sane)).await {
            assert_eq!(response.header("x-request-id"), Some(sane), "{what}");
            if response.status >= 400 {
                assert_eq!(
                    response.problem(response.status)["request_id"],
                    sane,
                    "{what}"
                );
            }
        }
    }
    let longest = "r".repeat(128);
    let response = app
        .request(Method::GET, "/api/books")
        .key(CUSTOMER)
        .header("X-Request-Id", &longest)
        .send()
        .await;
    assert_eq!(response.header("x-request-id"), Some(longest.as_str()));
}

#[actix_web::test]
async fn an_overlong_or_unprintable_client_request_id_is_replaced() {
    let app = spawn_app().await;
    for bad in [
        "r".repeat(129),
        "r".repeat(200),
        "tab\there".to_owned(),
        String::new(),
    ] {
        for (what, response) in a_request_of_each_kind(&app, Some(&bad)).await {
            let id = response
                .header("x-request-id")
                .unwrap_or_else(|| panic!("{what}: no X-Request-Id"));
            assert_ne!(id, bad, "{what}: echoed {bad:?}");
            assert!(is_sane_request_id(id), "{what}: {id:?}");
            if response.status >= 400 {
                assert_eq!(
                    response.problem(response.status)["request_id"],
                    json!(id),
                    "{what}"
                );
            }
        }
    }
}

async fn assert_location_reads_back(
    app: &TestApp,
    what: &str,
    created: &TestResponse,
    expected_prefix: &str,
) {
    let body = created.success(201);
    let location = created
        .header("location")
        .unwrap_or_else(|| panic!("{what}: no Location"));
    assert!(location.starts_with(expected_prefix), "{what}: {location}");
    assert_eq!(
        app.get(location, CUSTOMER).await.success(200),
        body,
        "{what}: {location}"
    );
}

#[actix_web::test]
async fn every_created_resource_has_a_location_that_reads_it_back() {
    let app = spawn_app().await;
    let isbn = isbn_with("979", 11);
    let book = app
        .post_json(
            "/api/books",
            ADMIN,
            &json!({"isbn": isbn, "title": "T", "author": "A", "price_cents": 1, "stock": 5}),
        )
        .await;
    assert_location_reads_back(&app, "book", &book, "/api/books/").await;
    let order = app
        .post_json(
            "/api/orders",
            CUSTOMER,
            &json!({"items": [{"isbn": isbn, "quantity": 1}], "payment": {"token": "tok_visa"}}),
        )
        .await;
    assert_location_reads_back(&app, "order", &order, "/api/orders/").await;
    let order_id = order.json()["id"].as_str().unwrap().to_owned();
    let delivery = app
        .post_json("/api/delivery", CUSTOMER, &delivery_request(&order_id))
        .await;
    assert_location_reads_back(&app, "delivery", &delivery, "/api/delivery/").await;
}
