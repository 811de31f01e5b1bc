//! `/health/live` and `/health/ready`, for load balancers and orchestrators (no API key).

use std::sync::atomic::Ordering;

use actix_web::web;
use apistos::{ApiComponent, JsonSchema, api_operation};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::http::problem::{ApiError, ProblemKind};
use crate::http::reply::Reply;

/// A health report.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ApiComponent)]
#[schemars(crate = "apistos", rename = "Health")]
pub struct HealthBody {
    /// `live` from the liveness probe, `ready` from the readiness probe.
    pub status: HealthStatus,
}

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "apistos", transform = crate::wire::string_enum)]
pub enum HealthStatus {
    /// The process is running.
    Live,
    /// Every store answers.
    Ready,
}

/// Answers 200 while the process runs.
#[api_operation(
    tag = "health",
    operation_id = "get_liveness",
    summary = "Liveness",
    description = "200 while the process runs. No API key.",
    success_description = "The process is running"
)]
pub async fn live() -> Reply<HealthBody> {
    // Serializing a one-field struct cannot fail; the fallback only satisfies the types.
    Reply::new(&HealthBody {
        status: HealthStatus::Live,
    })
    .unwrap_or_else(|_| Reply::fixed(br#"{"status":"live"}"#))
}

/// Answers 200 when start-up recovery has run and every store answers; 503 otherwise, and
/// once the server is stopping.
#[api_operation(
    tag = "health",
    operation_id = "get_readiness",
    summary = "Readiness",
    description = "200 once start-up recovery has settled what a stopped process left behind and while every store answers; \
                   503 otherwise, and from the moment the server has been told to stop (SIGTERM or SIGINT) while it \
                   still serves requests. No API key.",
    success_description = "Ready to serve requests",
    error_code = 503
)]
pub async fn ready(state: web::Data<AppState>) -> Result<Reply<HealthBody>, ApiError> {
    if state.draining.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            ProblemKind::Unavailable,
            "the server is shutting down; send new requests to another instance",
        ));
    }
    if !state.recovered.load(Ordering::Acquire) {
        return Err(ApiError::new(
            ProblemKind::Unavailable,
            "start-up recovery has not finished yet",
        ));
    }
    state.catalogue.check_ready().await?;
    state.orders.check_ready().await?;
    state.deliveries.check_ready().await?;
    Reply::new(&HealthBody {
        status: HealthStatus::Ready,
    })
}
