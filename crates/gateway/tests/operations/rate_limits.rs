//! Rate limits: per API key, and per client address for requests without a valid key.

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::web;
use bookstore_gateway::app::{AppState, build_app};
use bookstore_gateway::http::auth::ApiKeys;
use bookstore_gateway::http::rate_limit::RateLimits;

fn state_with_limits(per_second: u32, burst: u32) -> web::Data<AppState> {
    let mut state = AppState::in_memory(ApiKeys::demo());
    state.rate_limits = RateLimits::new(per_second, burst);
    web::Data::new(state)
}

#[actix_web::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_not_before() {
    let app = init_service(build_app(state_with_limits(1, 5))).await;
    for attempt in 1..=5 {
        let request = TestRequest::get()
            .uri("/api/books")
            .insert_header(("X-API-Key", "secret123"))
            .to_request();
        let response = call_service(&app, request).await;
        assert_eq!(
            response.status(),
            200,
            "request {attempt} is within the burst"
        );
    }
    let request = TestRequest::get()
        .uri("/api/books")
        .insert_header(("X-API-Key", "secret123"))
        .to_request();
    let response = call_service(&app, request).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a numeric Retry-After");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let body: serde_json::Value = serde_json::from_slice(&read_body(response).await).unwrap();
    assert_eq!(body["status"], 429);
    assert_eq!(body["type"], "/problems/rate-limited");

    // Another key has its own budget.
    let request = TestRequest::get()
        .uri("/api/books")
        .insert_header(("X-API-Key", "admin123"))
        .to_request();
    assert_eq!(call_service(&app, request).await.status(), 200);
}

#[actix_web::test]
async fn requests_without_a_valid_key_are_limited_per_client_address() {
    let app = init_service(build_app(state_with_limits(1, 3))).await;
    let from = |address: &str| {
        TestRequest::get()
            .uri("/api/books")
            .insert_header(("X-API-Key", "guess"))
            .peer_addr(address.parse().unwrap())
            .to_request()
    };
    for _ in 0..3 {
        assert_eq!(
            call_service(&app, from("10.1.1.1:4000")).await.status(),
            401
        );
    }
    assert_eq!(
        call_service(&app, from("10.1.1.1:4001")).await.status(),
        429,
        "same address, other port"
    );
    assert_eq!(
        call_service(&app, from("10.2.2.2:4000")).await.status(),
        401,
        "another address"
    );
}

#[actix_web::test]
async fn health_probes_and_metrics_are_never_rate_limited() {
    let app = init_service(build_app(state_with_limits(1, 1))).await;
    for _ in 0..5 {
        for path in ["/health/live", "/health/ready", "/metrics"] {
            let response = call_service(&app, TestRequest::get().uri(path).to_request()).await;
            assert_eq!(response.status(), 200, "{path}");
        }
    }
}

#[actix_web::test]
async fn a_rate_of_zero_turns_limiting_off() {
    let app = init_service(build_app(state_with_limits(0, 0))).await;
    for _ in 0..50 {
        let request = TestRequest::get()
            .uri("/api/books")
            .insert_header(("X-API-Key", "secret123"))
            .to_request();
        assert_eq!(call_service(&app, request).await.status(), 200);
    }
}
