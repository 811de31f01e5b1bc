//! Operations: the liveness and readiness probes, the Prometheus metrics and per-key rate
//! limits.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::http::Method;
use bookstore_gateway::config::Cli;
use bookstore_gateway::server::Application;
use clap::Parser;

use crate::helpers::{
    AppConfig, CUSTOMER, EFFECTIVE_JAVA, OTHER_CUSTOMER, Stores, TestDatabase,
    UnavailableOrderStore, assert_leaks_nothing, order_request, spawn_app, spawn_app_with,
    spawn_app_with_stores,
};

#[actix_web::test]
async fn the_liveness_probe_answers_200_without_a_key() {
    let app = spawn_app().await;
    let response = app.request(Method::GET, "/health/live").send().await;
    response.success(200);
    assert!(response.header("x-request-id").is_some());
}

#[actix_web::test]
async fn the_readiness_probe_answers_200_when_the_stores_answer() {
    let app = spawn_app().await;
    app.request(Method::GET, "/health/ready")
        .send()
        .await
        .success(200);
}

#[actix_web::test]
async fn the_readiness_probe_answers_503_when_a_store_does_not() {
    let app = spawn_app_with(AppConfig {
        orders: Some(Arc::new(UnavailableOrderStore)),
        ..AppConfig::default()
    })
    .await;
    let response = app.request(Method::GET, "/health/ready").send().await;
    response.problem(503);
    assert_leaks_nothing("readiness", &response);
    app.request(Method::GET, "/health/live")
        .send()
        .await
        .success(200);
}

#[actix_web::test]
async fn metrics_are_prometheus_histograms_by_route_template_and_status_without_raw_ids() {
    let app = spawn_app().await;
    app.get(&format!("/api/books/{EFFECTIVE_JAVA}"), CUSTOMER)
        .await
        .success(200);
    app.get("/api/books/9780000000002", CUSTOMER)
        .await
        .problem(404);
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    let order_id = order["id"].as_str().unwrap();
    app.get(&format!("/api/orders/{order_id}"), CUSTOMER)
        .await
        .success(200);
    app.post_json(
        "/api/orders",
        CUSTOMER,
        &order_request(&[(EFFECTIVE_JAVA, 1)], "tok_chargeDeclined"),
    )
    .await
    .problem(402);

    let response = app.request(Method::GET, "/metrics").send().await;
    response.assert_status(200);
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text();

    assert!(
        text.contains("# TYPE") && text.contains(" histogram"),
        "no histogram in:\n{text}"
    );
    assert!(
        !text.contains(" summary\n"),
        "metrics must be histograms, not summaries:\n{text}"
    );
    let bucket_lines: Vec<&str> = text.lines().filter(|l| l.contains("_bucket{")).collect();
    assert!(
        bucket_lines.iter().any(|l| l.contains("/api/books/{isbn}")),
        "no route template label:\n{text}"
    );
    assert!(
        bucket_lines.iter().any(|l| l.contains("/api/orders/{id}")),
        "no route template label:\n{text}"
    );
    assert!(
        bucket_lines.iter().any(|l| l.contains("\"200\"")),
        "no numeric status label:\n{text}"
    );
    assert!(
        bucket_lines.iter().any(|l| l.contains("\"404\"")),
        "no numeric status label:\n{text}"
    );
    for raw in [EFFECTIVE_JAVA, "9780000000002", order_id, CUSTOMER] {
        assert!(!text.contains(raw), "{raw} appears in the metrics");
    }
    // Business counters.
    for counter in ["order", "declined", "stock"] {
        assert!(
            text.lines()
                .any(|l| !l.starts_with('#') && l.to_lowercase().contains(counter)),
            "no {counter} counter in:\n{text}"
        );
    }
}

#[actix_web::test]
async fn requests_over_a_keys_rate_limit_are_429_with_retry_after_and_other_keys_go_on() {
    let database = TestDatabase::create().await;
    let cli = Cli::try_parse_from([
        "bookstore",
        "--database-url",
        database.url(),
        "--api-keys",
        &format!("{CUSTOMER}:customer,{OTHER_CUSTOMER}:customer"),
        "--rate-limit-per-second",
        "1",
        "--rate-limit-burst",
        "3",
    ])
    .expect("rate limits are configured with flags");
    let app = spawn_app_with_stores(Stores::from_state(
        Application::build(cli)
            .await
            .expect("the configuration starts")
            .into_state(),
        database,
    ))
    .await;

    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..10 {
        let response = app.get("/api/books", CUSTOMER).await;
        statuses.push(response.status);
        if response.status == 429 {
            limited = Some(response);
        }
    }
    assert_eq!(statuses[..3], [200, 200, 200], "{statuses:?}");
    let limited =
        limited.unwrap_or_else(|| panic!("ten requests at once were never limited: {statuses:?}"));
    let body = limited.problem(429);
    assert_eq!(body["type"], "/problems/rate-limited");
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("seconds");
    assert!((1..=5).contains(&retry_after), "Retry-After {retry_after}");

    app.get("/api/books", OTHER_CUSTOMER).await.success(200);
    app.request(Method::GET, "/health/live")
        .send()
        .await
        .success(200);
}

#[actix_web::test]
async fn a_rate_of_zero_turns_rate_limiting_off() {
    let database = TestDatabase::create().await;
    let cli = Cli::try_parse_from([
        "bookstore",
        "--database-url",
        database.url(),
        "--api-keys",
        &format!("{CUSTOMER}:customer"),
        "--rate-limit-per-second",
        "0",
    ])
    .expect("rate limits are configured with flags");
    let app = spawn_app_with_stores(Stores::from_state(
        Application::build(cli)
            .await
            .expect("the configuration starts")
            .into_state(),
        database,
    ))
    .await;
    for _ in 0..50 {
        app.get("/api/books?limit=1", CUSTOMER).await.success(200);
    }
}

#[actix_web::test]
async fn requests_without_a_valid_key_are_rate_limited_per_client_address() {
    let database = TestDatabase::create().await;
    let cli = Cli::try_parse_from([
        "bookstore",
        "--database-url",
        database.url(),
        "--api-keys",
        &format!("{CUSTOMER}:customer"),
        "--rate-limit-per-second",
        "1",
        "--rate-limit-burst",
        "2",
    ])
    .expect("rate limits are configured with flags");
    let app = spawn_app_with_stores(Stores::from_state(
        Application::build(cli)
            .await
            .expect("the configuration starts")
            .into_state(),
        database,
    ))
    .await;
    let noisy: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let quiet: SocketAddr = "10.0.0.2:40000".parse().unwrap();

    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(
                app.request(Method::GET, "/api/books")
                    .key("wrong-key")
                    .peer(noisy)
                    .send()
                    .await
                    .status,
            );
        }
        statuses
    };
    assert_eq!(statuses[..2], [401, 401], "{statuses:?}");
    assert!(
        statuses.contains(&429),
        "an address without a valid key was never limited: {statuses:?}"
    );
    let limited = app
        .request(Method::GET, "/api/books")
        .peer(noisy)
        .send()
        .await;
    limited.problem(429);
    assert!(limited.header("retry-after").is_some());

    app.request(Method::GET, "/api/books")
        .peer(quiet)
        .send()
        .await
        .problem(401);
    app.request(Method::GET, "/api/books")
        .key(CUSTOMER)
        .peer(noisy)
        .send()
        .await
        .success(200);
}
