//! `/api/delivery`: schedule and read deliveries.

use actix_web::{HttpRequest, web};
use apistos::api_operation;
use bookstore_delivery::DeliveryId;

use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::IdempotencyKey;
use crate::http::middleware::RequestId;
use crate::http::problem::{ApiError, ProblemKind};
use crate::http::reply::{Created, Reply};
use crate::idempotency::IdempotentRequest;
use crate::metrics::BusinessEvent;
use crate::wire::{DeliveryBody, DeliveryPath, ScheduleDeliveryRequest};
use crate::workflow;

/// Schedules the delivery of an order.
#[api_operation(
    tag = "deliveries",
    operation_id = "create_delivery",
    summary = "Schedule a delivery",
    description = "One delivery per order (a second is 409); a cancelled order cannot be delivered (409); an unknown order or another key's is 404. The scheduled date is the requested one if it is a business day (Mon–Fri, UTC) after today, otherwise the next such day; a date before today is 422. Send an `Idempotency-Key` to retry safely.",
    success_description = "The scheduled delivery",
    error_code = 400,
    error_code = 401,
    error_code = 404,
    error_code = 409,
    error_code = 413,
    error_code = 415,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
pub async fn create_delivery(
    caller: Caller,
    state: web::Data<AppState>,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    request: HttpRequest,
    body: web::Json<ScheduleDeliveryRequest>,
) -> Result<Created<DeliveryBody>, ApiError> {
    let body = body.into_inner();
    let (state, caller) = (state.get_ref(), &caller);
    IdempotentRequest::new(
        state.idempotency.as_ref(),
        &caller.customer,
        &idempotency_key,
        request_id.as_str(),
        &request,
        &body,
    )
    .run(|attempt| async move {
        let valid = body.validate()?;
        let delivery = workflow::schedule_delivery(state, caller, valid, attempt).await?;
        BusinessEvent::DeliveryScheduled.record();
        Ok(Created::new(&DeliveryBody::from(&delivery))?
            .with_location(format!("/api/delivery/{}", delivery.id())))
    })
    .await
}

/// Reads a delivery.
#[api_operation(
    tag = "deliveries",
    operation_id = "get_delivery",
    summary = "Get a delivery",
    description = "A customer reads deliveries of its own orders; an admin reads any.",
    success_description = "The delivery",
    error_code = 400,
    error_code = 401,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn get_delivery(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<DeliveryPath>,
) -> Result<Reply<DeliveryBody>, ApiError> {
    let delivery = state.deliveries.get(DeliveryId::from_uuid(path.id)).await?;
    // A delivery of an order the caller may not read is answered as an unknown delivery.
    workflow::readable_order(&state, &caller, delivery.order_id())
        .await
        .map_err(|error| {
            if error.kind() == ProblemKind::NotFound {
                ApiError::not_found("delivery")
            } else {
                error
            }
        })?;
    Reply::new(&DeliveryBody::from(&delivery))
}
