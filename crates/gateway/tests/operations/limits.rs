//! Request size limits: URL (414), headers (431) and body (413).

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::web;
use bookstore_gateway::app::{AppState, RequestLimits, build_app};
use bookstore_gateway::http::auth::ApiKeys;

fn state_with(limits: RequestLimits) -> web::Data<AppState> {
    let mut state = AppState::in_memory(ApiKeys::demo());
    state.request_limits = limits;
    web::Data::new(state)
}

async fn problem_type<B: actix_web::body::MessageBody>(
    response: actix_web::dev::ServiceResponse<B>,
) -> String {
    let body: serde_json::Value = serde_json::from_slice(&read_body(response).await).unwrap();
    body["type"].as_str().unwrap_or_default().to_owned()
}

#[actix_web::test]
async fn a_url_over_the_limit_is_414_and_one_at_the_limit_is_served() {
    let limits = RequestLimits {
        max_url_bytes: 100,
        ..RequestLimits::default()
    };
    let app = init_service(build_app(state_with(limits))).await;
    let at_limit = format!("/api/books?q={}", "a".repeat(100 - "/api/books?q=".len()));
    let request = TestRequest::get()
        .uri(&at_limit)
        .insert_header(("X-API-Key", "secret123"))
        .to_request();
    assert_eq!(call_service(&app, request).await.status(), 200);
    let over = format!("{at_limit}a");
    let request = TestRequest::get()
        .uri(&over)
        .insert_header(("X-API-Key", "secret123"))
        .to_request();
    let response = call_service(&app, request).await;
    assert_eq!(response.status(), 414);
    assert_eq!(problem_type(response).await, "/problems/uri-too-long");
}

#[actix_web::test]
async fn headers_over_the_limit_are_431() {
    let limits = RequestLimits {
        max_header_bytes: 1024,
        ..RequestLimits::default()
    };
    let app = init_service(build_app(state_with(limits))).await;
    let request = TestRequest::get()
        .uri("/api/books")
        .insert_header(("X-API-Key", "secret123"))
        .insert_header(("X-Padding", "p".repeat(1100)))
        .to_request();
    let response = call_service(&app, request).await;
    assert_eq!(response.status(), 431);
    assert_eq!(problem_type(response).await, "/problems/headers-too-large");
}

#[actix_web::test]
async fn the_body_limit_is_configurable() {
    let limits = RequestLimits {
        body_bytes: 200,
        ..RequestLimits::default()
    };
    let app = init_service(build_app(state_with(limits))).await;
    let padding = "x".repeat(300);
    let body = serde_json::json!({ "items": [], "payment": { "token": padding } });
    let request = TestRequest::post()
        .uri("/api/orders")
        .insert_header(("X-API-Key", "secret123"))
        .set_json(&body)
        .to_request();
    let response = call_service(&app, request).await;
    assert_eq!(response.status(), 413);
    assert_eq!(problem_type(response).await, "/problems/payload-too-large");
}
