//! One error format everywhere: `application/problem+json` for every error, including the
//! framework's own 404, 405 and 413; body size and content type rules; and no leak of
//! internals in any error body.

use actix_web::http::Method;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, AppConfig, CUSTOMER, DESIGN_PATTERNS, EFFECTIVE_JAVA, LEAK_MARKERS, RUST_BOOK,
    RunningServer, chunked_request, order_request, spawn_app, spawn_app_with, unknown_isbn,
};

const LIMIT: usize = 64 * 1024;

/// An order body of exactly `size` bytes: a valid order padded with whitespace.
fn padded_order_body(size: usize) -> Vec<u8> {
    let mut body = serde_json::to_vec(&order_request(&[(RUST_BOOK, 1)], "tok_visa")).unwrap();
    assert!(body.len() < size);
    let closing = body.pop().unwrap();
    body.resize(size - 1, b' ');
    body.push(closing);
    body
}

#[actix_web::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    for path in [
        "/nope",
        "/api/nope",
        "/api/books/9780134685991/reviews",
        "/api",
    ] {
        let body = app.get(path, CUSTOMER).await.problem(404);
        assert_eq!(body["type"], "/problems/not-found", "{path}");
    }
    app.request(Method::GET, "/no-key-either")
        .send()
        .await
        .problem(404);
}

#[actix_web::test]
async fn a_method_a_resource_does_not_support_is_a_405_problem() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::DELETE, "/api/books".to_owned()),
        (Method::PUT, format!("/api/books/{EFFECTIVE_JAVA}")),
        (
            Method::DELETE,
            format!("/api/orders/{}", uuid::Uuid::new_v4()),
        ),
        (
            Method::GET,
            format!("/api/orders/{}/cancel", uuid::Uuid::new_v4()),
        ),
        (Method::PATCH, "/api/delivery".to_owned()),
        (Method::POST, "/health/live".to_owned()),
    ] {
        let response = app.request(method.clone(), &path).key(ADMIN).send().await;
        let body = response.problem(405);
        assert_eq!(
            body["type"], "/problems/method-not-allowed",
            "{method} {path}"
        );
    }
}

#[actix_web::test]
async fn a_body_over_64_kib_is_413_on_every_operation_that_takes_one() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let too_big = padded_order_body(LIMIT + 1);
    for (method, path) in [
        (Method::POST, "/api/orders".to_owned()),
        (Method::POST, "/api/books".to_owned()),
        (Method::PATCH, format!("/api/books/{EFFECTIVE_JAVA}")),
        (Method::POST, "/api/delivery".to_owned()),
        (
            Method::POST,
            format!("/api/orders/{}/cancel", order["id"].as_str().unwrap()),
        ),
    ] {
        let response = app
            .request(method.clone(), &path)
            .key(ADMIN)
            .header("Content-Type", "application/json")
            .body(too_big.clone())
            .send()
            .await;
        let body = response.problem(413);
        assert_eq!(
            body["type"], "/problems/payload-too-large",
            "{method} {path}"
        );
    }
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 74);
}

#[actix_web::test]
async fn a_body_just_under_the_limit_is_accepted() {
    let app = spawn_app().await;
    let body = padded_order_body(60 * 1024);
    let response = app
        .request(Method::POST, "/api/orders")
        .key(CUSTOMER)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await;
    response.success(201);
}

#[actix_web::test]
async fn the_body_limit_follows_the_configuration() {
    let app = spawn_app_with(AppConfig {
        body_limit_bytes: Some(1024),
        ..AppConfig::default()
    })
    .await;
    let send = |size: usize| {
        app.request(Method::POST, "/api/orders")
            .key(CUSTOMER)
            .header("Content-Type", "application/json")
            .body(padded_order_body(size))
            .send()
    };
    send(2048).await.problem(413);
    send(1000).await.success(201);
}

#[test]
fn a_chunked_body_over_the_limit_is_413_and_one_under_it_is_accepted() {
    let server = RunningServer::start(AppConfig::default());
    let head = format!(
        "POST /api/orders HTTP/1.1\r\nHost: {}\r\nX-API-Key: {CUSTOMER}\r\nContent-Type: application/json\r\n",
        server.address
    );

    let too_big = chunked_request(&head, &padded_order_body(LIMIT + 8 * 1024), 4096);
    let parts: Vec<&[u8]> = too_big.iter().map(Vec::as_slice).collect();
    let response = server.raw_exchange(&parts);
    assert_eq!(
        response.status,
        413,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(
        response
            .header("content-type")
            .unwrap_or_default()
            .starts_with("application/problem+json")
    );
    assert!(response.header("x-request-id").is_some());
    assert_eq!(response.json()["type"], "/problems/payload-too-large");

    let fits = chunked_request(&head, &padded_order_body(60 * 1024), 4096);
    let parts: Vec<&[u8]> = fits.iter().map(Vec::as_slice).collect();
    let response = server.raw_exchange(&parts);
    assert_eq!(
        response.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );

    let stores = server.stores.clone();
    actix_web::rt::System::new().block_on(async move {
        assert_eq!(stores.stock_of(RUST_BOOK).await, 74);
        assert_eq!(stores.captured_count(), 1);
        server.stop().await;
    });
}

#[actix_web::test]
async fn a_body_not_typed_as_json_is_415() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&order_request(&[(RUST_BOOK, 1)], "tok_visa")).unwrap();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/xml"),
        None,
    ] {
        for (method, path) in [
            (Method::POST, "/api/orders".to_owned()),
            (Method::POST, "/api/books".to_owned()),
            (Method::PATCH, format!("/api/books/{EFFECTIVE_JAVA}")),
            (Method::POST, "/api/delivery".to_owned()),
        ] {
            let mut call = app
                .request(method.clone(), &path)
                .key(ADMIN)
                .body(body.clone());
            if let Some(content_type) = content_type {
                call = call.header("Content-Type", content_type);
            }
            let problem = call.send().await.problem(415);
            assert_eq!(
                problem["type"], "/problems/unsupported-media-type",
                "{method} {path} {content_type:?}"
            );
        }
    }
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 75);
}

#[actix_web::test]
async fn json_with_a_charset_parameter_is_accepted() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&order_request(&[(RUST_BOOK, 1)], "tok_visa")).unwrap();
    for content_type in [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
    ] {
        let response = app
            .request(Method::POST, "/api/orders")
            .key(CUSTOMER)
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await;
        assert_eq!(response.status, 201, "{content_type}: {}", response.text());
    }
}

#[actix_web::test]
async fn an_empty_body_typed_as_json_and_malformed_json_are_400() {
    let app = spawn_app().await;
    for body in [
        "",
        "{",
        "{\"items\": [}",
        "not json",
        "{\"items\": [], \"payment\": {\"token\": \"tok_visa\"},}",
        "\u{feff}",
    ] {
        for (method, path) in [
            (Method::POST, "/api/orders".to_owned()),
            (Method::POST, "/api/books".to_owned()),
            (Method::PATCH, format!("/api/books/{EFFECTIVE_JAVA}")),
            (Method::POST, "/api/delivery".to_owned()),
        ] {
            let response = app
                .request(method.clone(), &path)
                .key(ADMIN)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await;
            let problem = response.problem(400);
            assert_eq!(
                problem["type"], "/problems/malformed-request",
                "{method} {path} {body:?}"
            );
        }
    }
}

/// A sample of error responses of every kind, to check that none leaks internals.
#[actix_web::test]
async fn no_error_body_leaks_a_stack_trace_sql_or_an_internal_type_name() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    let typed = |method: Method, path: &str, key: &str, body: &str| {
        app.request(method, path)
            .key(key)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
    };
    let samples = vec![
        ("limit", app.get("/api/books?limit=abc", CUSTOMER).await),
        ("cursor", app.get("/api/books?cursor=zz", CUSTOMER).await),
        ("isbn in path", app.get("/api/books/12345", CUSTOMER).await),
        ("uuid in path", app.get("/api/orders/not-a-uuid", CUSTOMER).await),
        ("uuid in path", app.get("/api/delivery/not-a-uuid", CUSTOMER).await),
        ("array for an object", typed(Method::POST, "/api/books", ADMIN, "[]").await),
        ("array for an object", typed(Method::POST, "/api/orders", CUSTOMER, "[]").await),
        ("array for an object", typed(Method::POST, "/api/delivery", CUSTOMER, "[]").await),
        ("array for an object", typed(Method::PATCH, &format!("/api/books/{EFFECTIVE_JAVA}"), ADMIN, "[]").await),
        ("string for an object", typed(Method::POST, "/api/orders", CUSTOMER, "\"x\"").await),
        ("string for a nested object", typed(Method::POST, "/api/orders", CUSTOMER, r#"{"items":[{"isbn":"9781593278281","quantity":1}],"payment":"tok_visa"}"#).await),
        ("string for a nested object", typed(Method::POST, "/api/delivery", CUSTOMER, r#"{"order_id":"x","address":"1 Main St"}"#).await),
        ("string for an integer", typed(Method::POST, "/api/books", ADMIN, r#"{"isbn":"9790000000001","title":"t","author":"a","price_cents":"1","stock":1}"#).await),
        ("float for an integer", typed(Method::POST, "/api/orders", CUSTOMER, r#"{"items":[{"isbn":"9781593278281","quantity":1.5}],"payment":{"token":"tok_visa"}}"#).await),
        ("missing field", typed(Method::POST, "/api/orders", CUSTOMER, r#"{"items":[]}"#).await),
        ("unknown field", typed(Method::PATCH, &format!("/api/books/{EFFECTIVE_JAVA}"), ADMIN, r#"{"colour":"red"}"#).await),
        ("malformed json", typed(Method::POST, "/api/orders", CUSTOMER, "{").await),
        ("empty json", typed(Method::POST, "/api/orders", CUSTOMER, "").await),
        ("cancel body not an object", typed(Method::POST, &format!("/api/orders/{order_id}/cancel"), CUSTOMER, "[1]").await),
        ("no key", app.request(Method::GET, "/api/books").send().await),
        ("customer on admin route", typed(Method::POST, "/api/books", CUSTOMER, "{}").await),
        ("payment declined", app.post_json("/api/orders", CUSTOMER, &order_request(&[(RUST_BOOK, 1)], "tok_chargeDeclined")).await),
        ("unknown order", app.get(&format!("/api/orders/{}", uuid::Uuid::new_v4()), CUSTOMER).await),
        ("unknown book", app.get(&format!("/api/books/{}", unknown_isbn()), CUSTOMER).await),
        ("unknown route", app.get("/api/unknown", CUSTOMER).await),
        ("wrong method", app.request(Method::DELETE, "/api/books").key(CUSTOMER).send().await),
        ("out of stock", app.post_json("/api/orders", CUSTOMER, &order_request(&[(DESIGN_PATTERNS, 1)], "tok_visa")).await),
        ("book exists", app.post_json("/api/books", ADMIN, &json!({"isbn": EFFECTIVE_JAVA, "title": "t", "author": "a", "price_cents": 1, "stock": 1})).await),
        ("too large", typed(Method::POST, "/api/orders", CUSTOMER, &" ".repeat(LIMIT + 1)).await),
        ("not json", app.request(Method::POST, "/api/orders").key(CUSTOMER).header("Content-Type", "text/plain").body("x").send().await),
        ("invalid order", app.post_json("/api/orders", CUSTOMER, &order_request(&[(RUST_BOOK, 0)], "4242424242424242")).await),
        ("invalid book", app.post_json("/api/books", ADMIN, &json!({"isbn": "9780134685992", "title": " ", "author": "", "price_cents": -1, "stock": -1})).await),
        ("invalid delivery", app.post_json("/api/delivery", CUSTOMER, &json!({"order_id": "x", "requested_date": "2001-01-01", "address": {"recipient": "", "line1": "", "city": "", "postal_code": "", "country": "ZZ"}})).await),
        ("bad idempotency key", app.request(Method::POST, "/api/orders").key(CUSTOMER).header("Idempotency-Key", &"k".repeat(300)).json(&order_request(&[(RUST_BOOK, 1)], "tok_visa")).send().await),
    ];
    let mut leaks = Vec::new();
    for (what, response) in &samples {
        assert!(response.status >= 400, "{what}: {}", response.status);
        response.problem(response.status);
        let text = response.text();
        for marker in LEAK_MARKERS {
            if text.contains(marker) {
                leaks.push(format!(
                    "{what} ({}): contains {marker:?}: {text}",
                    response.status
                ));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} error bodies leak internals:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    let statuses: std::collections::BTreeSet<u16> = samples.iter().map(|(_, r)| r.status).collect();
    for status in [400, 401, 402, 403, 404, 405, 409, 413, 415, 422] {
        assert!(statuses.contains(&status), "the sample has no {status}");
    }
}

#[actix_web::test]
async fn validation_problems_list_every_invalid_field() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/books",
            ADMIN,
            &json!({"isbn": "9780134685992", "title": " ", "author": "", "price_cents": -1, "stock": -1}),
        )
        .await;
    let fields = response.field_errors();
    for field in ["isbn", "title", "author", "price_cents", "stock"] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} missing from {fields:?}"
        );
    }
    let body: Value = response.json();
    for error in body["errors"].as_array().unwrap() {
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
}
