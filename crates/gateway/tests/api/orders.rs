//! `/api/orders`: placing an order as one unit (stock, payment, record), reading and listing
//! one's own orders, and cancelling.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix_web::http::Method;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    ADMIN, AppConfig, CUSTOMER, DESIGN_PATTERNS, EFFECTIVE_JAVA, EFFECTIVE_JAVA_10, OTHER_CUSTOMER,
    PROGRAMMING_RUST, RUST_BOOK, SECRET_STORE_FAILURE, UnavailableOrderStore, assert_leaks_nothing,
    order_request, spawn_app, spawn_app_with, unknown_isbn,
};

fn assert_is_lowercase_uuid(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"));
    let uuid = Uuid::parse_str(text).unwrap_or_else(|_| panic!("{text} is not a UUID"));
    assert_eq!(
        text,
        uuid.hyphenated().to_string(),
        "ids are lowercase hyphenated"
    );
    assert!(
        [4, 7].contains(&uuid.get_version_num()),
        "{text} is neither a v4 nor a v7 UUID"
    );
}

fn assert_is_utc_rfc3339(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"));
    let parsed =
        DateTime::parse_from_rfc3339(text).unwrap_or_else(|_| panic!("{text} is not RFC 3339"));
    assert_eq!(parsed.offset().local_minus_utc(), 0, "{text} is not UTC");
    let age = Utc::now().signed_duration_since(parsed);
    assert!(age.num_seconds().abs() < 60, "{text} is not now");
}

#[actix_web::test]
async fn placing_an_order_returns_201_with_the_confirmed_order_and_its_location() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/orders",
            CUSTOMER,
            &order_request(&[(EFFECTIVE_JAVA, 2)], "tok_visa"),
        )
        .await;
    let order = response.success(201);

    let keys: BTreeSet<&str> = order
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "id",
            "status",
            "items",
            "total_cents",
            "currency",
            "payment",
            "created_at"
        ])
    );
    assert_is_lowercase_uuid(&order["id"]);
    assert_eq!(order["status"], "confirmed");
    assert_eq!(
        order["items"],
        json!([{"isbn": EFFECTIVE_JAVA, "title": "Effective Java", "quantity": 2,
                "unit_price_cents": 4499, "line_total_cents": 8998}])
    );
    assert_eq!(order["total_cents"], 8998);
    assert_eq!(order["currency"], "USD");
    let payment_keys: BTreeSet<&str> = order["payment"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(payment_keys, BTreeSet::from(["transaction_id", "status"]));
    assert_is_lowercase_uuid(&order["payment"]["transaction_id"]);
    assert_eq!(order["payment"]["status"], "captured");
    assert_is_utc_rfc3339(&order["created_at"]);

    let id = order["id"].as_str().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("/api/orders/{id}").as_str())
    );
    assert_eq!(
        app.get(&format!("/api/orders/{id}"), CUSTOMER)
            .await
            .success(200),
        order
    );
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 10);
    assert_eq!(app.stores.captured_count(), 1);
}

#[actix_web::test]
async fn an_order_of_several_books_totals_its_lines_and_takes_each_books_stock() {
    let app = spawn_app().await;
    let order = app
        .place_order(CUSTOMER, &[(RUST_BOOK, 3), (EFFECTIVE_JAVA, 1)])
        .await;
    let mut lines: Vec<(String, i64, i64)> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let quantity = l["quantity"].as_i64().unwrap();
            let unit = l["unit_price_cents"].as_i64().unwrap();
            assert_eq!(l["line_total_cents"].as_i64().unwrap(), quantity * unit);
            (l["isbn"].as_str().unwrap().to_owned(), quantity, unit)
        })
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            (EFFECTIVE_JAVA.to_owned(), 1, 4499),
            (RUST_BOOK.to_owned(), 3, 3995)
        ]
    );
    assert_eq!(order["total_cents"], 4499 + 3 * 3995);
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 72);
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 11);
}

#[actix_web::test]
async fn mastercard_tokens_are_approved_too() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/orders",
            CUSTOMER,
            &order_request(&[(RUST_BOOK, 1)], "tok_mastercard"),
        )
        .await;
    assert_eq!(response.success(201)["payment"]["status"], "captured");
}

#[actix_web::test]
async fn lines_naming_one_isbn_in_different_spellings_are_merged_into_one_line() {
    let app = spawn_app().await;
    let order = app
        .place_order(
            CUSTOMER,
            &[
                (EFFECTIVE_JAVA, 2),
                (EFFECTIVE_JAVA_10, 3),
                ("978-0-13-468599-1", 1),
            ],
        )
        .await;
    assert_eq!(
        order["items"],
        json!([{"isbn": EFFECTIVE_JAVA, "title": "Effective Java", "quantity": 6,
                "unit_price_cents": 4499, "line_total_cents": 26994}])
    );
    assert_eq!(order["total_cents"], 26994);
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 6);
}

#[actix_web::test]
async fn merged_lines_over_one_hundred_copies_are_422() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/orders",
            CUSTOMER,
            &order_request(&[(RUST_BOOK, 60), ("1593278284", 41)], "tok_visa"),
        )
        .await;
    response.field_errors();
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 75);
    assert_eq!(app.stores.capture_attempts(), 0);
}

#[actix_web::test]
async fn invalid_order_requests_are_422_and_take_nothing() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Value)> = vec![
        (
            "no lines",
            json!({"items": [], "payment": {"token": "tok_visa"}}),
        ),
        ("quantity 0", order_request(&[(RUST_BOOK, 0)], "tok_visa")),
        (
            "quantity 101",
            order_request(&[(RUST_BOOK, 101)], "tok_visa"),
        ),
        (
            "negative quantity",
            order_request(&[(RUST_BOOK, -1)], "tok_visa"),
        ),
        (
            "unknown book",
            order_request(&[(&unknown_isbn(), 1)], "tok_visa"),
        ),
        (
            "unknown book next to a known one",
            order_request(&[(RUST_BOOK, 1), (&unknown_isbn(), 1)], "tok_visa"),
        ),
        (
            "bad ISBN checksum",
            order_request(&[("9781593278282", 1)], "tok_visa"),
        ),
    ];
    for (case, body) in cases {
        let response = app.post_json("/api/orders", CUSTOMER, &body).await;
        assert_eq!(response.status, 422, "{case}: {}", response.text());
        response.field_errors();
    }
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 75);
    assert_eq!(app.stores.captured_count(), 0);
    assert_eq!(
        app.get("/api/orders", CUSTOMER).await.success(200)["items"],
        json!([])
    );
}

#[actix_web::test]
async fn ordering_more_than_is_in_stock_is_409_naming_the_book_and_takes_no_stock_from_any_line() {
    let app = spawn_app().await;
    let body = order_request(
        &[(RUST_BOOK, 5), (EFFECTIVE_JAVA, 1), (PROGRAMMING_RUST, 4)],
        "tok_visa",
    );
    let problem = app
        .post_json("/api/orders", CUSTOMER, &body)
        .await
        .problem(409);
    assert_eq!(problem["type"], "/problems/out-of-stock");
    assert_eq!(problem["isbn"], PROGRAMMING_RUST);
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 75);
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
    assert_eq!(app.stores.stock_of(PROGRAMMING_RUST).await, 3);
    assert_eq!(app.stores.capture_attempts(), 0);

    let sold_out = app
        .post_json(
            "/api/orders",
            CUSTOMER,
            &order_request(&[(DESIGN_PATTERNS, 1)], "tok_visa"),
        )
        .await;
    assert_eq!(sold_out.problem(409)["isbn"], DESIGN_PATTERNS);
}

#[actix_web::test]
async fn merged_lines_are_checked_against_stock_as_one_quantity() {
    let app = spawn_app().await;
    // Three copies in stock: two lines of two each are four.
    let body = order_request(
        &[(PROGRAMMING_RUST, 2), ("978-1-4920-5259-3", 2)],
        "tok_visa",
    );
    assert_eq!(
        app.post_json("/api/orders", CUSTOMER, &body)
            .await
            .problem(409)["isbn"],
        PROGRAMMING_RUST
    );
    assert_eq!(app.stores.stock_of(PROGRAMMING_RUST).await, 3);
}

#[actix_web::test]
async fn a_declined_payment_is_402_and_takes_no_stock_and_no_money() {
    let app = spawn_app().await;
    let body = order_request(&[(EFFECTIVE_JAVA, 2), (RUST_BOOK, 1)], "tok_chargeDeclined");
    let problem = app
        .post_json("/api/orders", CUSTOMER, &body)
        .await
        .problem(402);
    assert_eq!(problem["type"], "/problems/payment-declined");
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 75);
    assert_eq!(app.stores.captured_count(), 0);
    assert_eq!(
        app.get("/api/orders", CUSTOMER).await.success(200)["items"],
        json!([])
    );
}

#[actix_web::test]
async fn tokens_other_than_the_test_tokens_and_card_numbers_are_422_and_take_nothing() {
    let app = spawn_app().await;
    let card_next_to_token = json!({
        "items": [{"isbn": EFFECTIVE_JAVA, "quantity": 1}],
        "payment": {"token": "tok_visa", "card_number": "4242424242424242"}
    });
    let cases: Vec<(&str, Value)> = vec![
        (
            "unknown token",
            order_request(&[(EFFECTIVE_JAVA, 1)], "tok_amex"),
        ),
        ("empty token", order_request(&[(EFFECTIVE_JAVA, 1)], "")),
        ("blank token", order_request(&[(EFFECTIVE_JAVA, 1)], "   ")),
        (
            "card number",
            order_request(&[(EFFECTIVE_JAVA, 1)], "4242424242424242"),
        ),
        (
            "spaced card number",
            order_request(&[(EFFECTIVE_JAVA, 1)], "4242 4242 4242 4242"),
        ),
        (
            "token of another case",
            order_request(&[(EFFECTIVE_JAVA, 1)], "TOK_VISA"),
        ),
        (
            "token of another case",
            order_request(&[(EFFECTIVE_JAVA, 1)], "Tok_Visa"),
        ),
        ("card number next to a valid token", card_next_to_token),
    ];
    for (case, body) in cases {
        let response = app.post_json("/api/orders", CUSTOMER, &body).await;
        assert_eq!(response.status, 422, "{case}: {}", response.text());
        response.field_errors();
        // The request id is random hexadecimal, which can itself contain "4242".
        let mut problem = response.json();
        problem
            .as_object_mut()
            .expect("a problem is an object")
            .remove("request_id");
        assert!(
            !problem.to_string().contains("4242"),
            "{case}: the card number is echoed: {}",
            response.text()
        );
    }
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
    assert_eq!(app.stores.captured_count(), 0);
    assert_eq!(
        app.get("/api/orders", CUSTOMER).await.success(200)["items"],
        json!([])
    );
}

#[actix_web::test]
async fn order_fields_of_the_wrong_json_type_are_400() {
    let app = spawn_app().await;
    for body in [
        json!({"items": [{"isbn": EFFECTIVE_JAVA, "quantity": "2"}], "payment": {"token": "tok_visa"}}),
        json!({"items": [{"isbn": EFFECTIVE_JAVA, "quantity": 1.5}], "payment": {"token": "tok_visa"}}),
        json!({"items": {"isbn": EFFECTIVE_JAVA, "quantity": 1}, "payment": {"token": "tok_visa"}}),
        json!({"items": [{"isbn": EFFECTIVE_JAVA, "quantity": 1}], "payment": "tok_visa"}),
        json!([{"isbn": EFFECTIVE_JAVA, "quantity": 1}]),
    ] {
        app.post_json("/api/orders", CUSTOMER, &body)
            .await
            .problem(400);
    }
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
}

#[actix_web::test]
async fn an_order_keeps_the_price_and_title_it_was_placed_at() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    app.patch_json(
        &format!("/api/books/{EFFECTIVE_JAVA}"),
        ADMIN,
        &json!({"price_cents": 9999, "title": "Effective Java, 4th ed."}),
    )
    .await
    .assert_status(200);

    let id = order["id"].as_str().unwrap();
    let read = app
        .get(&format!("/api/orders/{id}"), CUSTOMER)
        .await
        .success(200);
    assert_eq!(read, order);
    assert_eq!(read["items"][0]["unit_price_cents"], 4499);
    assert_eq!(read["items"][0]["title"], "Effective Java");
    let listed = app.get("/api/orders", CUSTOMER).await.success(200);
    assert_eq!(listed["items"][0], order);
    let newer = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    assert_eq!(newer["items"][0]["unit_price_cents"], 9999);
    assert_eq!(newer["items"][0]["title"], "Effective Java, 4th ed.");
}

#[actix_web::test]
async fn another_keys_order_answers_exactly_as_an_unknown_order() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    let id = order["id"].as_str().unwrap();
    let theirs = app
        .get(&format!("/api/orders/{id}"), OTHER_CUSTOMER)
        .await
        .problem(404);
    let unknown = app
        .get(&format!("/api/orders/{}", Uuid::new_v4()), OTHER_CUSTOMER)
        .await
        .problem(404);
    for field in ["type", "title", "status", "detail"] {
        assert_eq!(theirs[field], unknown[field], "{field}");
    }
    assert!(
        !theirs.to_string().contains(id),
        "the 404 names the order: {theirs}"
    );
}

#[actix_web::test]
async fn an_admin_may_read_any_order() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/orders/{id}"), ADMIN)
            .await
            .success(200),
        order
    );
}

#[actix_web::test]
async fn a_malformed_order_id_in_the_path_is_400() {
    let app = spawn_app().await;
    for id in [
        "not-a-uuid",
        "123",
        "0000",
        "6ba7b810-9dad-11d1-80b4-00c04fd430cz",
        // Other spellings of a UUID than the hyphenated one (`%7B`, `%7D`: braces).
        "%7B6ba7b810-9dad-11d1-80b4-00c04fd430c8%7D",
        "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "6ba7b8109dad11d180b400c04fd430c8",
    ] {
        for path in [
            format!("/api/orders/{id}"),
            format!("/api/orders/{id}/delivery"),
        ] {
            app.get(&path, CUSTOMER).await.problem(400);
        }
        app.cancel(id, CUSTOMER).await.problem(400);
    }
}

#[actix_web::test]
async fn listing_orders_shows_only_the_callers_own_newest_first_paged_by_cursor() {
    let app = spawn_app().await;
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await);
        app.place_order(OTHER_CUSTOMER, &[(RUST_BOOK, 1)]).await;
    }
    let admins = app.place_order(ADMIN, &[(RUST_BOOK, 1)]).await;
    mine.reverse();

    let mut seen = Vec::new();
    let mut path = "/api/orders?limit=2".to_owned();
    for _ in 0..10 {
        let page = app.get(&path, CUSTOMER).await.success(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/orders?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, mine);

    let all = app.get("/api/orders", CUSTOMER).await.success(200);
    assert_eq!(all["items"].as_array().unwrap(), &mine);
    assert_eq!(all["next_cursor"], Value::Null);
    let admin_list = app.get("/api/orders", ADMIN).await.success(200);
    assert_eq!(admin_list["items"], json!([admins]));
}

#[actix_web::test]
async fn order_listing_limits_and_cursors_are_checked() {
    let app = spawn_app().await;
    app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "cursor=garbage",
        "cursor=zz",
    ] {
        app.get(&format!("/api/orders?{query}"), CUSTOMER)
            .await
            .problem(400);
    }
    // An issued order cursor in capitals: the same bytes, but not as the server wrote it.
    app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let first_page = app.get("/api/orders?limit=1", CUSTOMER).await.success(200);
    let order_cursor = first_page["next_cursor"].as_str().unwrap();
    app.get(&format!("/api/orders?cursor={order_cursor}"), CUSTOMER)
        .await
        .success(200);
    app.get(
        &format!("/api/orders?cursor={}", order_cursor.to_uppercase()),
        CUSTOMER,
    )
    .await
    .problem(400);
    let books_cursor =
        app.get("/api/books?limit=1", CUSTOMER).await.success(200)["next_cursor"].clone();
    let books_cursor = books_cursor.as_str().unwrap();
    app.get(&format!("/api/orders?cursor={books_cursor}"), CUSTOMER)
        .await
        .problem(400);
    assert_eq!(
        app.get("/api/orders?limit=100", CUSTOMER)
            .await
            .success(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[actix_web::test]
async fn cancelling_an_order_refunds_it_and_returns_the_stock() {
    let app = spawn_app().await;
    let order = app
        .place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 2), (RUST_BOOK, 1)])
        .await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 10);

    let cancelled = app.cancel(id, CUSTOMER).await.success(200);
    let mut expected = order.clone();
    expected["status"] = json!("cancelled");
    expected["payment"]["status"] = json!("refunded");
    assert_eq!(cancelled, expected);
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 75);
    assert_eq!(app.stores.refunded_count(), 1);
    assert_eq!(app.stores.captured_count(), 0);
    assert_eq!(
        app.get(&format!("/api/orders/{id}"), CUSTOMER)
            .await
            .success(200),
        cancelled
    );
}

#[actix_web::test]
async fn cancelling_an_order_twice_is_409_and_refunds_once() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 2)]).await;
    let id = order["id"].as_str().unwrap();
    app.cancel(id, CUSTOMER).await.assert_status(200);
    let problem = app.cancel(id, CUSTOMER).await.problem(409);
    assert_eq!(problem["type"], "/problems/order-not-cancellable");
    assert_eq!(app.stores.refunded_count(), 1);
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
}

#[actix_web::test]
async fn cancel_takes_no_body_or_an_empty_json_object() {
    let app = spawn_app().await;
    let first = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let second = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let third = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;

    let path = |order: &Value| format!("/api/orders/{}/cancel", order["id"].as_str().unwrap());
    app.request(Method::POST, &path(&first))
        .key(CUSTOMER)
        .send()
        .await
        .assert_status(200);
    app.request(Method::POST, &path(&second))
        .key(CUSTOMER)
        .json(&json!({}))
        .send()
        .await
        .assert_status(200);
    app.request(Method::POST, &path(&third))
        .key(CUSTOMER)
        .header("Content-Type", "application/json; charset=utf-8")
        .body("{}")
        .send()
        .await
        .assert_status(200);
    assert_eq!(app.stores.refunded_count(), 3);
}

#[actix_web::test]
async fn cancel_with_a_body_that_is_not_json_is_415_and_cancels_nothing() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let path = format!("/api/orders/{}/cancel", order["id"].as_str().unwrap());
    app.request(Method::POST, &path)
        .key(CUSTOMER)
        .header("Content-Type", "text/plain")
        .body("please cancel")
        .send()
        .await
        .problem(415);
    app.request(Method::POST, &path)
        .key(CUSTOMER)
        .body("{}")
        .send()
        .await
        .problem(415);
    assert_eq!(app.stores.refunded_count(), 0);
    assert_eq!(app.stores.stock_of(RUST_BOOK).await, 74);
}

#[actix_web::test]
async fn cancelling_another_keys_order_is_404_and_cancels_nothing() {
    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(RUST_BOOK, 1)]).await;
    let id = order["id"].as_str().unwrap();
    let theirs = app.cancel(id, OTHER_CUSTOMER).await.problem(404);
    let unknown = app
        .cancel(&Uuid::new_v4().to_string(), OTHER_CUSTOMER)
        .await
        .problem(404);
    for field in ["type", "title", "status", "detail"] {
        assert_eq!(theirs[field], unknown[field], "{field}");
    }
    // Admins may read any order but cancel only their own.
    app.cancel(id, ADMIN).await.problem(404);
    assert_eq!(
        app.get(&format!("/api/orders/{id}"), CUSTOMER)
            .await
            .success(200)["status"],
        "confirmed"
    );
    assert_eq!(app.stores.refunded_count(), 0);
}

#[actix_web::test]
async fn when_the_order_cannot_be_recorded_no_stock_stays_reserved_and_no_charge_stays_captured() {
    let app = spawn_app_with(AppConfig {
        orders: Some(Arc::new(UnavailableOrderStore)),
        ..AppConfig::default()
    })
    .await;
    let response = app
        .post_json(
            "/api/orders",
            CUSTOMER,
            &order_request(&[(EFFECTIVE_JAVA, 2)], "tok_visa"),
        )
        .await;
    assert!(
        [500, 503].contains(&response.status),
        "{}: {}",
        response.status,
        response.text()
    );
    response.problem(response.status);
    assert_leaks_nothing("503 from a failed store", &response);
    assert!(!response.text().contains(SECRET_STORE_FAILURE));
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
    assert_eq!(app.stores.captured_count(), 0);
}
