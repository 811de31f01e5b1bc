//! The OpenAPI document, produced in-process without a server or real stores.
//!
//! apistos builds the document from the handlers' `#[api_operation]`s and the wire types'
//! schemas; [`post_process`] then adds, in one place, the few things apistos cannot
//! express. [`finish_served_document`] applies it to the document the server serves at
//! `/openapi.json`, so the served document and [`document`] are the same.
//!
//! `cargo xtask openapi` writes the document to `docs/openapi.json` (through
//! `bookstore openapi`); a test fails when the committed file is stale.

pub mod headers;
mod post_process;

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::test::{TestRequest, call_and_read_body, init_service};
use actix_web::{HttpResponse, web};

pub use self::post_process::post_process;
use crate::app::{AppState, OPENAPI_PATH, build_app};
use crate::http::auth::ApiKeys;
use crate::http::problem::ApiError;

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

/// Middleware that passes every request on, and replaces the document apistos serves at
/// `GET /openapi.json` with its post-processed form. Install with
/// `actix_web::middleware::from_fn(finish_served_document)`.
pub async fn finish_served_document(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let is_document = request.method() == Method::GET && request.path() == OPENAPI_PATH;
    let response = next.call(request).await?;
    if !is_document || !response.status().is_success() {
        return Ok(response.map_into_boxed_body());
    }
    let (request, response) = response.into_parts();
    let raw = to_bytes(response.into_body())
        .await
        .map_err(|_| ApiError::internal("the OpenAPI document could not be read"))?;
    let mut document: serde_json::Value =
        serde_json::from_slice(&raw).map_err(ApiError::internal)?;
    post_process(&mut document);
    let finished = HttpResponse::Ok().json(document);
    Ok(ServiceResponse::new(request, finished))
}
