//! `/api/delivery` and `/api/deliveries`: schedule and read deliveries, record carrier
//! updates, and list the deliveries of a day.

use actix_web::web;
use apistos::api_operation;
use bookstore_delivery::DeliveryId;
use bookstore_sales::SalesError;

use crate::app::AppState;
use crate::http::auth::{Caller, FulfilmentCaller};
use crate::http::idempotent::Idempotent;
use crate::http::problem::ApiError;
use crate::http::reply::{Created, Reply};
use crate::metrics::BusinessEvent;
use crate::wire::deliveries::{DeliveryBody, DeliveryPath, ScheduleDeliveryRequest};
use crate::wire::tracking::{CarrierUpdateRequest, DeliveryPageBody, ListDeliveriesQuery};
use crate::workflow::{self, WorkflowError};

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
    request: Idempotent<web::Json<ScheduleDeliveryRequest>>,
) -> Result<Created<DeliveryBody>, ApiError> {
    request
        .run(|body, attempt| async move {
            let valid = body.into_inner().validate()?;
            let delivery =
                workflow::schedule_delivery(&state, &caller.customer, valid, attempt).await?;
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
    match workflow::readable_order(&state, &caller.customer, caller.role, delivery.order_id()).await
    {
        Ok(_) => {}
        Err(WorkflowError::OrderNotFound | WorkflowError::Sales(SalesError::NotFound { .. })) => {
            return Err(ApiError::not_found("delivery"));
        }
        Err(error) => return Err(error.into()),
    }
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
pub async fn record_delivery_event(
    _caller: FulfilmentCaller,
    state: web::Data<AppState>,
    request: Idempotent<web::Json<CarrierUpdateRequest>>,
    path: web::Path<DeliveryPath>,
) -> Result<Reply<DeliveryBody>, ApiError> {
    request
        .run(|body, _| async move {
            let now = chrono::Utc::now();
            let update = body.into_inner().validate(now)?;
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
