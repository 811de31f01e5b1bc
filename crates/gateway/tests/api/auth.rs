//! `X-API-Key`: 401 for a missing or unknown key (alike), 403 for a role that may not act,
//! demo keys only in demo mode, and the public endpoints that need no key.

use actix_web::http::Method;
use bookstore_gateway::config::Cli;
use bookstore_gateway::http::auth::ApiKeys;
use bookstore_gateway::server::Application;
use clap::Parser;
use serde_json::json;

use crate::helpers::{
    ADMIN, CUSTOMER, EFFECTIVE_JAVA, Stores, TestDatabase, isbn_with, order_request, spawn_app,
    spawn_app_with_keys, spawn_app_with_stores,
};

#[actix_web::test]
async fn a_missing_key_and_an_unknown_key_get_the_same_401() {
    let app = spawn_app().await;
    for path in [
        "/api/books",
        "/api/orders",
        &format!("/api/books/{EFFECTIVE_JAVA}"),
    ] {
        let missing = app.request(Method::GET, path).send().await.problem(401);
        let unknown = app.get(path, "not-a-key").await.problem(401);
        let wrong_case = app.get(path, &CUSTOMER.to_uppercase()).await.problem(401);
        let empty = app.get(path, "").await.problem(401);
        for other in [&unknown, &wrong_case, &empty] {
            for field in ["type", "title", "status", "detail"] {
                assert_eq!(missing[field], other[field], "{path}: {field}");
            }
        }
        assert_eq!(missing["type"], "/problems/unauthenticated");
    }
}

#[actix_web::test]
async fn every_api_operation_needs_a_key() {
    let app = spawn_app().await;
    let order_id = uuid::Uuid::new_v4();
    let requests = [
        (Method::GET, "/api/books".to_owned()),
        (Method::POST, "/api/books".to_owned()),
        (Method::GET, format!("/api/books/{EFFECTIVE_JAVA}")),
        (Method::PATCH, format!("/api/books/{EFFECTIVE_JAVA}")),
        (Method::GET, "/api/orders".to_owned()),
        (Method::POST, "/api/orders".to_owned()),
        (Method::GET, format!("/api/orders/{order_id}")),
        (Method::POST, format!("/api/orders/{order_id}/cancel")),
        (Method::GET, format!("/api/orders/{order_id}/delivery")),
        (Method::POST, "/api/delivery".to_owned()),
        (Method::GET, format!("/api/delivery/{order_id}")),
    ];
    for (method, path) in requests {
        let call = app.request(method.clone(), &path);
        let call = if method == Method::GET {
            call
        } else {
            call.json(&json!({}))
        };
        let response = call.send().await;
        assert_eq!(response.status, 401, "{method} {path}: {}", response.text());
        response.problem(401);
    }
}

#[actix_web::test]
async fn any_api_path_without_a_valid_key_is_401_whatever_the_route_or_method() {
    let app = spawn_app().await;
    let known = app
        .request(Method::GET, "/api/books")
        .send()
        .await
        .problem(401);
    let order_id = uuid::Uuid::new_v4();
    // (method, path, body, what a caller with a valid key gets instead)
    let requests: Vec<(Method, String, Option<&str>, u16)> = vec![
        (Method::GET, "/api/anything-unknown".to_owned(), None, 404),
        (Method::GET, "/api".to_owned(), None, 404),
        (Method::GET, "/api/".to_owned(), None, 404),
        (
            Method::GET,
            format!("/api/books/{EFFECTIVE_JAVA}/reviews"),
            None,
            404,
        ),
        (
            Method::POST,
            "/api/nothing/here".to_owned(),
            Some("{}"),
            404,
        ),
        (Method::GET, "/%61pi/anything-unknown".to_owned(), None, 404),
        (Method::DELETE, "/api/books".to_owned(), None, 405),
        (
            Method::PUT,
            format!("/api/books/{EFFECTIVE_JAVA}"),
            Some("{}"),
            405,
        ),
        (
            Method::GET,
            format!("/api/orders/{order_id}/cancel"),
            None,
            405,
        ),
        (Method::GET, "/api/orders/not-a-uuid".to_owned(), None, 400),
        (
            Method::POST,
            "/api/orders".to_owned(),
            Some("not json"),
            415,
        ),
    ];
    for (method, path, body, with_key) in requests {
        let call = |key: Option<&str>| {
            let call = app.request(method.clone(), &path);
            let call = match key {
                Some(key) => call.key(key),
                None => call,
            };
            match body {
                Some(body) => call.header("Content-Type", "text/plain").body(body),
                None => call,
            }
        };
        for key in [None, Some("not-a-key")] {
            let response = call(key).send().await;
            let problem = response.problem(401);
            for field in ["type", "title", "status", "detail"] {
                assert_eq!(
                    problem[field], known[field],
                    "{method} {path} {key:?}: {field}"
                );
            }
        }
        call(Some(CUSTOMER)).send().await.problem(with_key);
    }
}

#[actix_web::test]
async fn a_customer_key_calling_an_admin_operation_is_403() {
    let app = spawn_app().await;
    let body = json!({"isbn": isbn_with("979", 7), "title": "T", "author": "A", "price_cents": 1, "stock": 1});
    let forbidden = app
        .post_json("/api/books", CUSTOMER, &body)
        .await
        .problem(403);
    assert_eq!(forbidden["type"], "/problems/forbidden");
    app.post_json("/api/books", ADMIN, &body)
        .await
        .assert_status(201);
}

#[actix_web::test]
async fn in_demo_mode_secret123_is_a_customer_and_admin123_an_admin() {
    let app = spawn_app_with_keys(ApiKeys::demo()).await;
    let body = json!({"isbn": isbn_with("979", 8), "title": "T", "author": "A", "price_cents": 1, "stock": 1});
    app.get("/api/books", "secret123").await.success(200);
    app.place_order("secret123", &[(EFFECTIVE_JAVA, 1)]).await;
    app.post_json("/api/books", "secret123", &body)
        .await
        .problem(403);
    app.get("/api/books", "admin123").await.success(200);
    app.post_json("/api/books", "admin123", &body)
        .await
        .success(201);
    app.get("/api/books", CUSTOMER).await.problem(401);
}

#[actix_web::test]
async fn configured_keys_work_and_the_demo_keys_are_then_rejected() {
    let app = spawn_app_with_keys(ApiKeys::parse("k1:customer,k2:admin").unwrap()).await;
    let body = json!({"isbn": isbn_with("979", 9), "title": "T", "author": "A", "price_cents": 1, "stock": 1});
    app.get("/api/books", "k1").await.success(200);
    app.post_json("/api/books", "k1", &body).await.problem(403);
    app.post_json("/api/books", "k2", &body).await.success(201);
    for demo_key in ["secret123", "admin123"] {
        app.get("/api/books", demo_key).await.problem(401);
        app.post_json("/api/books", demo_key, &body)
            .await
            .problem(401);
    }
}

#[actix_web::test]
async fn a_server_started_without_key_configuration_runs_in_demo_mode_with_the_demo_catalogue() {
    let database = TestDatabase::create().await;
    let cli = Cli::try_parse_from(["bookstore", "--database-url", database.url()])
        .expect("no other arguments are needed");
    let state = Application::build(cli)
        .await
        .expect("the default configuration starts")
        .into_state();
    assert!(state.api_keys.is_demo());
    let app = spawn_app_with_stores(Stores::from_state(state, database)).await;
    let book = app
        .get(&format!("/api/books/{EFFECTIVE_JAVA}"), "secret123")
        .await
        .success(200);
    assert_eq!(book["title"], "Effective Java");
}

#[actix_web::test]
async fn a_server_started_with_configured_keys_rejects_the_demo_keys() {
    let database = TestDatabase::create().await;
    let cli = Cli::try_parse_from([
        "bookstore",
        "--database-url",
        database.url(),
        "--api-keys",
        "k1:customer,k2:admin",
    ])
    .expect("keys are a flag");
    let state = Application::build(cli)
        .await
        .expect("the configuration starts")
        .into_state();
    assert!(!state.api_keys.is_demo());
    let app = spawn_app_with_stores(Stores::from_state(state, database)).await;
    app.get("/api/books", "k1").await.success(200);
    app.get("/api/books", "secret123").await.problem(401);
}

#[actix_web::test]
async fn probes_the_spec_and_the_docs_need_no_key() {
    let app = spawn_app().await;
    for path in [
        "/health/live",
        "/health/ready",
        "/openapi.json",
        "/docs",
        "/docs/",
        "/metrics",
    ] {
        let response = app.request(Method::GET, path).send().await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
    }
    let docs = app.request(Method::GET, "/docs").send().await;
    assert!(
        docs.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        docs.headers
    );
}

/// Two keys of the account `shop` (an old and a new one, during a rotation), and a
/// customer key with an account of its own.
const SHOP_OLD_KEY: &str = "shop-key-2025";
const SHOP_NEW_KEY: &str = "shop-key-2026";
const STRANGER: &str = "stranger-key";

#[actix_web::test]
async fn two_keys_of_one_account_see_the_same_orders_and_deliveries() {
    let keys =
        format!("{SHOP_OLD_KEY}:customer:shop,{SHOP_NEW_KEY}:customer:shop,{STRANGER}:customer");
    let app = spawn_app_with_keys(ApiKeys::parse(&keys).unwrap()).await;
    let order = app.place_order(SHOP_OLD_KEY, &[(EFFECTIVE_JAVA, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    let delivery = app.schedule_delivery(SHOP_OLD_KEY, order_id).await;
    let delivery_id = delivery["id"].as_str().unwrap();

    // The other key of the account lists, reads and follows the order and its delivery.
    let listed = app.get("/api/orders", SHOP_NEW_KEY).await.success(200);
    assert_eq!(listed["items"], json!([order]));
    let read = app
        .get(&format!("/api/orders/{order_id}"), SHOP_NEW_KEY)
        .await
        .success(200);
    assert_eq!(read, order);
    for path in [
        format!("/api/delivery/{delivery_id}"),
        format!("/api/orders/{order_id}/delivery"),
    ] {
        assert_eq!(app.get(&path, SHOP_NEW_KEY).await.success(200), delivery);
    }
    // A key of another account sees none of it.
    let strangers = app.get("/api/orders", STRANGER).await.success(200);
    assert_eq!(strangers["items"], json!([]));
    app.get(&format!("/api/orders/{order_id}"), STRANGER)
        .await
        .problem(404);
    app.cancel(order_id, STRANGER).await.problem(404);

    // And cancels it.
    let cancelled = app.cancel(order_id, SHOP_NEW_KEY).await.success(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 12);
}

#[actix_web::test]
async fn idempotency_keys_belong_to_the_account_not_to_one_of_its_keys() {
    let keys = format!("{SHOP_OLD_KEY}:customer:shop,{SHOP_NEW_KEY}:customer:shop");
    let app = spawn_app_with_keys(ApiKeys::parse(&keys).unwrap()).await;
    let body = order_request(&[(EFFECTIVE_JAVA, 1)], "tok_visa");
    let first = app
        .request(Method::POST, "/api/orders")
        .key(SHOP_OLD_KEY)
        .header("Idempotency-Key", "order-7")
        .json(&body)
        .send()
        .await;
    first.assert_status(201);
    // A retry sent with the new key after a rotation replays the first answer.
    let retry = app
        .request(Method::POST, "/api/orders")
        .key(SHOP_NEW_KEY)
        .header("Idempotency-Key", "order-7")
        .json(&body)
        .send()
        .await;
    retry.assert_status(201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json(), first.json());
    assert_eq!(app.stores.stock_of(EFFECTIVE_JAVA).await, 11);
}

#[actix_web::test]
async fn a_rotated_key_still_sees_the_orders_its_account_placed_with_the_old_key() {
    let before = ApiKeys::parse(&format!("{SHOP_OLD_KEY}:customer:shop")).unwrap();
    let app = spawn_app_with_keys(before).await;
    let order = app.place_order(SHOP_OLD_KEY, &[(EFFECTIVE_JAVA, 1)]).await;
    let order_id = order["id"].as_str().unwrap();

    // Restart on the same stores with only the new key configured.
    let after = ApiKeys::parse(&format!("{SHOP_NEW_KEY}:customer:shop")).unwrap();
    let app = spawn_app_with_stores(app.stores.with_api_keys(after)).await;
    app.get("/api/orders", SHOP_OLD_KEY).await.problem(401);
    let listed = app.get("/api/orders", SHOP_NEW_KEY).await.success(200);
    assert_eq!(listed["items"], json!([order]));
    app.cancel(order_id, SHOP_NEW_KEY).await.success(200);
}

#[actix_web::test]
async fn a_key_configured_without_an_account_hands_its_orders_on_by_naming_its_derived_account() {
    // The account of a `KEY:ROLE` entry is `key_` and the first 24 hex digits of the key's
    // SHA-256 digest (`printf %s KEY | sha256sum | cut -c1-24`).
    let legacy_account = "key_fcf730b6d95236ecd3c9fc2d"; // of "secret123"
    let app = spawn_app_with_keys(ApiKeys::demo()).await;
    let order = app.place_order("secret123", &[(EFFECTIVE_JAVA, 1)]).await;

    let after = ApiKeys::parse(&format!(
        "secret123:customer,{SHOP_NEW_KEY}:customer:{legacy_account}"
    ))
    .unwrap();
    let app = spawn_app_with_stores(app.stores.with_api_keys(after)).await;
    let listed = app.get("/api/orders", SHOP_NEW_KEY).await.success(200);
    assert_eq!(listed["items"], json!([order]));
}
