//! The OpenAPI document, produced in-process without a server or real stores.
//!
//! `cargo xtask openapi` writes it to `docs/openapi.json` (through `bookstore openapi`);
//! a test fails when the committed file is stale.

use actix_web::test::{TestRequest, call_and_read_body, init_service};
use actix_web::web;

use crate::app::{AppState, OPENAPI_PATH, build_app};
use crate::http::auth::ApiKeys;

/// The OpenAPI document the server serves at `/openapi.json`, as JSON.
pub async fn document() -> Result<serde_json::Value, serde_json::Error> {
    let state = web::Data::new(AppState::in_memory(ApiKeys::demo()));
    let app = init_service(build_app(state)).await;
    let body = call_and_read_body(&app, TestRequest::get().uri(OPENAPI_PATH).to_request()).await;
    serde_json::from_slice(&body)
}

/// The document as committed: pretty-printed with a trailing newline.
pub async fn document_text() -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(&document().await?)?;
    text.push('\n');
    Ok(text)
}
