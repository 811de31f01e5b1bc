//! The workflows that span domains: placing and cancelling an order, scheduling a delivery.
//!
//! Each function reads top to bottom as the steps it takes. When a step fails, the steps
//! already done are undone in reverse order before the error is returned, so a failed
//! order leaves no stock reserved and no payment captured:
//!
//! | step | on a later failure |
//! |---|---|
//! | reserve stock for all lines (or none) | release it |
//! | capture the payment | refund it |
//! | record the confirmed order | — |
//!
//! A confirmed order therefore always has a captured payment and its stock taken.

use bookstore_delivery::Delivery;
use bookstore_inventory::{ReservedLine, StockLine};
use bookstore_sales::{CustomerId, Order, OrderLine, OrderStatus, Payment, PaymentStatus, TransactionId, order_total};
use bookstore_types::OrderId;
use chrono::Utc;

use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, ProblemKind};
use crate::wire::{ValidDeliveryRequest, ValidOrderRequest};

/// Places an order: reserve all stock → charge → record; on any failure undo what was done.
pub async fn place_order(state: &AppState, owner: &CustomerId, request: ValidOrderRequest) -> Result<Order, ApiError> {
    // 1. Reserve stock for every line, or for none.
    let reserved = state.catalogue.reserve_all(&request.lines).await?;
    let stock_lines: Vec<StockLine> =
        reserved.iter().map(|line| StockLine { isbn: line.isbn, quantity: line.quantity }).collect();

    // 2. Price the order at the prices the stock was reserved at.
    let lines: Vec<OrderLine> = reserved.into_iter().map(order_line).collect();
    let total = match order_total(&lines) {
        Ok(total) => total,
        Err(error) => {
            release_stock(state, &stock_lines).await;
            return Err(error.into());
        }
    };

    // 3. Charge the payment.
    let transaction_id = match state.payments.capture(&request.token, total).await {
        Ok(transaction_id) => transaction_id,
        Err(error) => {
            release_stock(state, &stock_lines).await;
            return Err(error.into());
        }
    };

    // 4. Record the confirmed order.
    let payment = Payment { transaction_id, status: PaymentStatus::Captured };
    let recorded = match Order::confirmed(OrderId::generate(), owner.clone(), lines, payment, Utc::now()) {
        Ok(order) => state.orders.insert(order.clone()).await.map(|()| order),
        Err(error) => Err(error),
    };
    match recorded {
        Ok(order) => Ok(order),
        Err(error) => {
            refund_payment(state, transaction_id).await;
            release_stock(state, &stock_lines).await;
            Err(error.into())
        }
    }
}

fn order_line(line: ReservedLine) -> OrderLine {
    OrderLine {
        isbn: line.isbn,
        title: line.title.as_str().to_owned(),
        quantity: line.quantity,
        unit_price: line.unit_price,
    }
}

/// Cancels one of the caller's orders: cancel its delivery if still scheduled (409 once
/// dispatched) → mark the order cancelled (exactly one concurrent cancel wins) → refund →
/// return the stock.
pub async fn cancel_order(state: &AppState, caller: &Caller, order_id: OrderId) -> Result<Order, ApiError> {
    let order = state.orders.get(order_id).await?;
    if order.owner() != &caller.customer {
        return Err(ApiError::not_found("order"));
    }
    if order.status() == OrderStatus::Cancelled {
        return Err(ApiError::new(ProblemKind::OrderNotCancellable, "the order is already cancelled"));
    }
    state.deliveries.cancel_for_order(order_id).await?;
    let cancelled = state.orders.mark_cancelled(order_id).await?;
    refund_payment(state, cancelled.payment().transaction_id).await;
    let stock_lines: Vec<StockLine> =
        cancelled.lines().iter().map(|line| StockLine { isbn: line.isbn, quantity: line.quantity }).collect();
    release_stock(state, &stock_lines).await;
    Ok(cancelled)
}

/// Reads an order the caller may see: its own, or any for an admin. Another key's order is
/// answered exactly as an unknown one.
pub async fn readable_order(state: &AppState, caller: &Caller, order_id: OrderId) -> Result<Order, ApiError> {
    let order = state.orders.get(order_id).await?;
    if caller.may_read(order.owner()) { Ok(order) } else { Err(ApiError::not_found("order")) }
}

/// Schedules the delivery of one of the caller's confirmed orders; one per order.
pub async fn schedule_delivery(
    state: &AppState,
    caller: &Caller,
    request: ValidDeliveryRequest,
) -> Result<Delivery, ApiError> {
    let ValidDeliveryRequest { order_id, address, requested_date } = request;
    let delivery = Delivery::schedule(order_id, address, requested_date, Utc::now())?;
    let order = state.orders.get(order_id).await?;
    if order.owner() != &caller.customer {
        return Err(ApiError::not_found("order"));
    }
    if order.status() == OrderStatus::Cancelled {
        return Err(order_cancelled());
    }
    state.deliveries.insert(delivery.clone()).await?;
    // The order may have been cancelled between the check above and the insert; a
    // cancelled order never keeps a scheduled delivery.
    if state.orders.get(order_id).await?.status() == OrderStatus::Cancelled {
        state.deliveries.cancel_for_order(order_id).await?;
        return Err(order_cancelled());
    }
    Ok(delivery)
}

fn order_cancelled() -> ApiError {
    ApiError::new(ProblemKind::OrderCancelled, "the order is cancelled and cannot be delivered")
}

/// Gives back reserved stock. A failure here cannot be answered to anyone, so it is logged.
async fn release_stock(state: &AppState, lines: &[StockLine]) {
    if let Err(error) = state.catalogue.release_all(lines).await {
        tracing::error!(error = %error, lines = lines.len(), "could not return reserved stock");
    }
}

/// Refunds a captured payment. A failure here cannot be answered to anyone, so it is logged.
async fn refund_payment(state: &AppState, transaction_id: TransactionId) {
    if let Err(error) = state.payments.refund(transaction_id).await {
        tracing::error!(error = %error, transaction_id = %transaction_id, "could not refund a payment");
    }
}
