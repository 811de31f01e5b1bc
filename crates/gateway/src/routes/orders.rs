//! `/api/orders`: place, read, list and cancel orders.

use actix_web::web;
use apistos::api_operation;

use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::OptionalEmptyObject;
use crate::http::idempotent::Idempotent;
use crate::http::problem::ApiError;
use crate::http::reply::{Created, Reply};
use crate::metrics::BusinessEvent;
use crate::wire::deliveries::DeliveryBody;
use crate::wire::orders::{
    ListOrdersQuery, OrderBody, OrderPageBody, OrderPath, PlaceOrderRequest,
};
use crate::wire::{cursor, page_limit};
use crate::workflow;

/// Places an order.
#[api_operation(
    tag = "orders",
    operation_id = "create_order",
    summary = "Place an order",
    description = "Validates every line, reserves stock for all lines or none, charges the payment token and records the order, as one unit: whatever fails, no stock stays reserved and no charge stays captured. Lines naming the same ISBN are merged. Prices are those of the catalogue now and never change afterwards. Test tokens: `tok_visa`, `tok_mastercard` (approved), `tok_chargeDeclined` (402). Send an `Idempotency-Key` to retry safely.",
    success_description = "The confirmed order",
    error_code = 400,
    error_code = 401,
    error_code = 402,
    error_code = 409,
    error_code = 413,
    error_code = 415,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
pub async fn create_order(
    caller: Caller,
    state: web::Data<AppState>,
    request: Idempotent<web::Json<PlaceOrderRequest>>,
) -> Result<Created<OrderBody>, ApiError> {
    request
        .run_order(|body, identity| async move {
            let valid = body.into_inner().validate()?;
            let order = workflow::place_order(&state, &caller.customer, identity, valid)
                .await
                .inspect_err(BusinessEvent::record_failure)?;
            BusinessEvent::OrderPlaced.record();
            Ok(Created::new(&OrderBody::from(&order))?
                .with_location(format!("/api/orders/{}", order.id())))
        })
        .await
}

/// Reads an order.
#[api_operation(
    tag = "orders",
    operation_id = "get_order",
    summary = "Get an order",
    description = "A customer reads its own orders; an admin reads any. Another account's order is answered as not found.",
    success_description = "The order",
    error_code = 400,
    error_code = 401,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn get_order(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<OrderPath>,
) -> Result<Reply<OrderBody>, ApiError> {
    let order =
        workflow::readable_order(&state, &caller.customer, caller.role, path.order_id()).await?;
    Reply::new(&OrderBody::from(&order))
}

/// Lists the caller's orders.
#[api_operation(
    tag = "orders",
    operation_id = "list_orders",
    summary = "List my orders",
    description = "The caller's own orders (admins included), newest first, `limit` per page; follow `next_cursor`.",
    success_description = "A page of orders",
    error_code = 400,
    error_code = 401,
    error_code = 429,
    error_code = 503
)]
pub async fn list_orders(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<ListOrdersQuery>,
) -> Result<Reply<OrderPageBody>, ApiError> {
    let limit = page_limit(query.limit)?;
    let before = query
        .cursor
        .as_deref()
        .map(cursor::order_position)
        .transpose()?;
    let page = state
        .orders
        .list_by_owner(&caller.customer, before, limit)
        .await?;
    Reply::new(&OrderPageBody {
        items: page.orders.iter().map(OrderBody::from).collect(),
        next_cursor: page.next_before.as_ref().map(cursor::for_order),
    })
}

/// Cancels an order.
#[api_operation(
    tag = "orders",
    operation_id = "cancel_order",
    summary = "Cancel an order",
    description = "Refunds the payment, returns the stock and cancels a delivery that is scheduled but not dispatched. 409 if the order is already cancelled or its delivery was dispatched. No body is needed (`{}` is accepted). Send an `Idempotency-Key` to retry safely.",
    success_description = "The cancelled order",
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
pub async fn cancel_order(
    caller: Caller,
    state: web::Data<AppState>,
    request: Idempotent<OptionalEmptyObject>,
    path: web::Path<OrderPath>,
) -> Result<Reply<OrderBody>, ApiError> {
    request
        .run(|_, attempt| async move {
            let order =
                workflow::cancel_order(&state, &caller.customer, path.order_id(), attempt).await?;
            BusinessEvent::OrderCancelled.record();
            Reply::new(&OrderBody::from(&order))
        })
        .await
}

/// Reads the delivery of an order.
#[api_operation(
    tag = "deliveries",
    operation_id = "get_order_delivery",
    summary = "Get the delivery of an order",
    description = "404 if the order has no delivery, or is not the caller's (admins may read any).",
    success_description = "The delivery",
    error_code = 400,
    error_code = 401,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn get_order_delivery(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<OrderPath>,
) -> Result<Reply<DeliveryBody>, ApiError> {
    let order =
        workflow::readable_order(&state, &caller.customer, caller.role, path.order_id()).await?;
    let delivery = state
        .deliveries
        .get_by_order(order.id())
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    Reply::new(&DeliveryBody::from(&delivery))
}
