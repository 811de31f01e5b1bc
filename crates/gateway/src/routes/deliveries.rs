//! `/api/delivery` and `/api/deliveries`: schedule and read deliveries, record carrier
//! updates, and list the deliveries of a day.

use actix_web::{HttpRequest, web};
use apistos::api_operation;
use bookstore_delivery::DeliveryId;

use crate::app::AppState;
use crate::http::auth::{Caller, FulfilmentCaller};
use crate::http::extract::IdempotencyKey;
use crate::http::middleware::RequestId;
use crate::http::problem::{ApiError, ProblemKind};
use crate::http::reply::{Created, Reply};
use crate::idempotency::IdempotentRequest;
use crate::metrics::BusinessEvent;
use crate::wire::tracking::{CarrierUpdateRequest, DeliveryPageBody, ListDeliveriesQuery};
use crate::wire::{DeliveryBody, DeliveryPath, ScheduleDeliveryRequest};
use crate::workflow;

/// Schedules the delivery of an order.
#[api_operation(
    tag = "deliveries",
    operation_id = "create_delivery",
    summary = "Schedule a delivery",
    description = "One delivery per order (a second is 409); a cancelled order cannot be delivered (409); an unknown order or another account's is 404. The scheduled date is the requested one if it is a business day (Mon–Fri, UTC, not a closed day of the shop) after today and has room (`--delivery-capacity-per-day`), otherwise the next such day; a date before today is 422, and no day with room within a year is 409. Send an `Idempotency-Key` to retry safely.",
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
    description = "A customer reads deliveries of its own orders; admin and fulfilment keys read any. The body carries the status, the promised date, whether it is late, and the carrier's updates in `occurred_at` order.",
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
    if caller.reads_every_delivery() {
        return Reply::new(&DeliveryBody::from(&delivery));
    }
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

/// Records a carrier's update on a delivery.
#[api_operation(
    tag = "deliveries",
    operation_id = "create_delivery_event",
    summary = "Record a carrier update",
    description = "For fulfilment and admin keys (a customer key is 403). The status moves forward along the life cycle scheduled → dispatched → in_transit → out_for_delivery → delivered (with attempted_delivery, failed and returned_to_sender); a move the life cycle does not allow is 409 naming the current status. An update older than the one that set the current status is kept in the history but never moves the status back; the same update sent twice is recorded once. A dispatch usually names the carrier and its tracking number. Send an `Idempotency-Key` to retry safely.",
    success_description = "The delivery, with the update in its history",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 404,
    error_code = 409,
    error_code = 413,
    error_code = 415,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
#[allow(
    clippy::too_many_arguments,
    reason = "one extractor per part of the request"
)]
pub async fn record_delivery_event(
    caller: FulfilmentCaller,
    state: web::Data<AppState>,
    idempotency_key: IdempotencyKey,
    request_id: RequestId,
    request: HttpRequest,
    path: web::Path<DeliveryPath>,
    body: web::Json<CarrierUpdateRequest>,
) -> Result<Reply<DeliveryBody>, ApiError> {
    let body = body.into_inner();
    let (state, caller) = (state.get_ref(), &caller.0);
    IdempotentRequest::new(
        state.idempotency.as_ref(),
        &caller.customer,
        &idempotency_key,
        request_id.as_str(),
        &request,
        &body,
    )
    .run(|_| async move {
        let now = chrono::Utc::now();
        let update = body.validate(now)?;
        let (delivery, _) = state
            .deliveries
            .record_update(DeliveryId::from_uuid(path.id), update, now)
            .await?;
        BusinessEvent::DeliveryUpdated.record();
        Reply::new(&DeliveryBody::from(&delivery))
    })
    .await
}

/// Lists deliveries: a day's pick list, or the work in one status.
#[api_operation(
    tag = "deliveries",
    operation_id = "list_deliveries",
    summary = "List deliveries",
    description = "For fulfilment and admin keys (a customer key is 403). Filters by `status` and by `date` (the promised day, `YYYY-MM-DD`); pages in the order deliveries were scheduled, with `next_cursor`.",
    success_description = "One page of deliveries",
    error_code = 400,
    error_code = 401,
    error_code = 403,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
pub async fn list_deliveries(
    _caller: FulfilmentCaller,
    state: web::Data<AppState>,
    query: web::Query<ListDeliveriesQuery>,
) -> Result<Reply<DeliveryPageBody>, ApiError> {
    let page = state.deliveries.list(&query.to_query()?).await?;
    Reply::new(&DeliveryPageBody::from(&page))
}
