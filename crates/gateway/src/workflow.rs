//! The workflows that span domains: placing and cancelling an order, scheduling a delivery,
//! and recovering orders that a crash interrupted.
//!
//! Each function reads top to bottom as the steps it takes. When a step fails, the steps
//! already done are undone in reverse order before the error is returned, so a failed
//! order leaves no stock reserved and no payment captured:
//!
//! | step | on a later failure |
//! |---|---|
//! | pick the order id; reserve stock for all lines (or none), journaled under that id | cancel the reservation |
//! | capture the payment, with the order id as its reference | refund it |
//! | record the confirmed order | — |
//! | confirm the reservation (forget its journal record) | — (recovery confirms it) |
//!
//! A confirmed order therefore always has a captured payment and its stock taken.
//!
//! # Crash safety
//!
//! A process can die between any two steps, and then nothing undoes the steps already done.
//! The reservation journal makes that visible: the reservation id *is* the order id, and the
//! payment's reference is the order id too, so a journal record names everything that was
//! started for one order. A cancellation journals the stock it gives back the same way (the
//! return journal, under the order's id). [`recover_interrupted_orders`] resolves the records
//! of processes that have stopped (a SQL store records which process wrote each one, see
//! `bookstore_storage::InstanceId`), and every record older than a cutoff whoever wrote it:
//!
//! - a reservation whose order was recorded → confirmed (the crash hit between steps 3 and
//!   4);
//! - a reservation without an order → the request was abandoned: a captured payment for that
//!   reference is refunded, then the reservation is cancelled (its stock given back);
//! - a return whose order is cancelled → the payment is refunded if it is still captured, and
//!   the stock given back; a return whose order is not cancelled → forgotten (the
//!   cancellation never happened).
//!
//! **Invariant:** a journaled record whose process has stopped, or that is older than the
//! grace period, belongs to an attempt that will never continue. The first holds because a
//! stopped process's lease has expired and an order is only recorded under a live lease; the
//! second only if the grace period is longer than the longest request, so recovery must be
//! called with a cutoff of at least [`RECOVERY_GRACE_PERIOD`] in the past. Every step of
//! recovery is idempotent (confirm and cancel of an unknown reservation are no-ops, a return
//! gives its stock back once, a capture is looked up by reference, a second refund is
//! tolerated), so running it again, or on several instances at once, is safe.

use std::time::Duration;

use bookstore_delivery::{Address, Delivery, DeliveryError};
use bookstore_inventory::{InventoryError, ReservationId, ReservedLine, StockLine};
use bookstore_sales::{
    CapturedPayment, CustomerId, Order, OrderLine, OrderStatus, PaymentError, PaymentStatus,
    PaymentToken, PricedLines, SalesError, TransactionId,
};
use bookstore_types::OrderId;
use chrono::{DateTime, NaiveDate, Utc};

use crate::app::AppState;
use crate::idempotency::{Attempt, Fingerprint, digest_of_parts};
use crate::role::Role;

/// Why a workflow failed. The domain errors pass through as they are; the variants of its
/// own are the rules that span domains. `http/domain_errors.rs` maps each to a problem.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The catalogue refused or failed (unknown book, not enough stock, unavailable, …).
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The order store refused or failed.
    #[error(transparent)]
    Sales(#[from] SalesError),
    /// The payment was declined, or the processor failed.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// Scheduling refused or failed (a delivery exists, no day has room, …).
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// The order belongs to another customer: answered exactly as an unknown one.
    #[error("no such order")]
    OrderNotFound,
    /// The order was cancelled before, by another request.
    #[error("the order is already cancelled")]
    OrderAlreadyCancelled,
    /// The order is cancelled, so nothing can be delivered.
    #[error("the order is cancelled and cannot be delivered")]
    OrderCancelled,
    /// The order id derived from an idempotency key names another customer's order: two
    /// digests collided, which is a bug rather than anything a client did.
    #[error("an order id derived from an idempotency key belongs to another owner")]
    DerivedOrderIdTaken,
}

/// A validated order request: merged stock lines and a payment token.
#[derive(Debug)]
pub struct ValidOrderRequest {
    /// One line per distinct ISBN, quantities summed, in the order first named.
    pub lines: Vec<StockLine>,
    /// The payment token.
    pub token: PaymentToken,
}

/// A validated delivery request.
#[derive(Debug)]
pub struct ValidDeliveryRequest {
    /// The order to deliver.
    pub order_id: OrderId,
    /// Where.
    pub address: Address,
    /// The wished-for date.
    pub requested_date: Option<NaiveDate>,
}

/// How old a journaled reservation must be before recovery treats it as abandoned. Much
/// longer than any request may take (requests time out long before).
pub const RECOVERY_GRACE_PERIOD: Duration = Duration::from_secs(5 * 60);

/// Which id an order attempt gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderIdentity {
    /// A new id: the request cannot be a retry of an earlier attempt.
    Fresh,
    /// The id derived from the request's idempotency key
    /// ([`order_id_for_idempotency_key`]): an earlier attempt with this key may have been
    /// cut off by a crash after taking stock, charging, or even recording the order.
    Retryable(OrderId),
}

/// The order id of a request with an idempotency key: the same for the same caller, key and
/// request, so a retry that takes over a key whose first attempt died (its response never
/// stored) finds what that attempt did instead of ordering and charging again.
pub fn order_id_for_idempotency_key(
    owner: &CustomerId,
    key: &str,
    fingerprint: Fingerprint,
) -> OrderId {
    let digest = digest_of_parts(&[
        owner.as_str().as_bytes(),
        key.as_bytes(),
        &fingerprint.as_bytes(),
    ]);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    OrderId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// Places an order: reserve all stock → charge → record → confirm the reservation; on any
/// failure undo what was done.
pub async fn place_order(
    state: &AppState,
    owner: &CustomerId,
    identity: OrderIdentity,
    request: ValidOrderRequest,
) -> Result<Order, WorkflowError> {
    // 0. Pick the id. A retry finds what its cut-off first attempt left behind.
    let order_id = match identity {
        OrderIdentity::Fresh => OrderId::generate(),
        OrderIdentity::Retryable(order_id) => {
            match earlier_attempt(state, owner, order_id).await? {
                EarlierAttempt::Recorded(order) => return Ok(order),
                EarlierAttempt::None => order_id,
                EarlierAttempt::Settled => OrderId::generate(),
            }
        }
    };

    // 1. Reserve stock for every line, or for none, journaled under the order's id.
    let reservation = reservation_of(order_id);
    let reserved = match state
        .catalogue
        .reserve_all(reservation, &request.lines)
        .await
    {
        // The cut-off attempt still holds stock under this id: give it back, take it afresh.
        Err(InventoryError::ReservationExists { .. }) => {
            state.catalogue.cancel_reservation(reservation).await?;
            state
                .catalogue
                .reserve_all(reservation, &request.lines)
                .await?
        }
        reserved => reserved?,
    };

    // 2. Price the order at the prices the stock was reserved at.
    let lines: Vec<OrderLine> = reserved.into_iter().map(order_line).collect();
    let priced = match PricedLines::new(lines) {
        Ok(priced) => priced,
        Err(error) => {
            cancel_reservation(state, reservation).await;
            return Err(error.into());
        }
    };

    // 3. Charge the payment, at most once for this order.
    let transaction_id = match state
        .payments
        .capture(&request.token, priced.total(), order_id)
        .await
    {
        Ok(transaction_id) => transaction_id,
        Err(error) => {
            cancel_reservation(state, reservation).await;
            return Err(error.into());
        }
    };

    // 4. Record the confirmed order.
    let payment = CapturedPayment::new(transaction_id);
    let order = Order::confirmed(order_id, owner.clone(), priced, payment, Utc::now());
    let recorded = state.orders.insert(order.clone()).await.map(|()| order);
    let order = match recorded {
        Ok(order) => order,
        Err(error) => {
            refund_payment(state, transaction_id).await;
            cancel_reservation(state, reservation).await;
            return Err(error.into());
        }
    };

    // 5. The order stands: the stock stays taken. If this fails, recovery confirms it later.
    if let Err(error) = state.catalogue.confirm_reservation(reservation).await {
        tracing::warn!(error = %error, reservation = %reservation, "could not confirm a reservation; recovery will");
    }
    Ok(order)
}

/// What [`recover_interrupted_orders`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Reservations whose order had been recorded: confirmed.
    pub confirmed: usize,
    /// Reservations without an order: cancelled, their stock given back.
    pub released: usize,
    /// Captures for orders that were never recorded, or cancelled without their refund:
    /// refunded.
    pub refunded: usize,
    /// Returns of cancelled orders: their stock given back.
    pub returned: usize,
    /// Returns of orders that were not cancelled: forgotten.
    pub abandoned: usize,
    /// Records that could not be resolved this time (logged; tried again next run).
    pub failed: usize,
}

/// Resolves the journal records of stopped processes, and every record made before
/// `older_than`: a reservation is confirmed if its order was recorded, otherwise its
/// capture (if any) is refunded and it is cancelled; a return is completed if its order was
/// cancelled (refunding a capture the cancellation left), otherwise forgotten.
///
/// `older_than` must lie at least [`RECOVERY_GRACE_PERIOD`] in the past (see the module
/// documentation). Fails only if the journal cannot be read; a record that cannot be
/// resolved is logged, counted in [`RecoveryReport::failed`] and left for the next run.
pub async fn recover_interrupted_orders(
    state: &AppState,
    older_than: DateTime<Utc>,
) -> Result<RecoveryReport, WorkflowError> {
    let mut journal = state.catalogue.stopped_processes_journal().await?;
    journal
        .reservations
        .extend(state.catalogue.reservations_older_than(older_than).await?);
    journal
        .returns
        .extend(state.catalogue.returns_older_than(older_than).await?);
    let mut report = RecoveryReport::default();
    for reservation in distinct(journal.reservations) {
        if let Err(error) = recover_reservation(state, reservation, &mut report).await {
            report.failed += 1;
            tracing::error!(error = %error, reservation = %reservation, "could not recover an interrupted order");
        }
    }
    for id in distinct(journal.returns) {
        if let Err(error) = recover_return(state, id, &mut report).await {
            report.failed += 1;
            tracing::error!(error = %error, order_id = %id, "could not recover an interrupted cancellation");
        }
    }
    if report != RecoveryReport::default() {
        tracing::info!(
            confirmed = report.confirmed,
            released = report.released,
            refunded = report.refunded,
            returned = report.returned,
            abandoned = report.abandoned,
            failed = report.failed,
            "recovered interrupted orders"
        );
    }
    Ok(report)
}

/// `ids` without repeats, in their first order.
fn distinct(ids: Vec<ReservationId>) -> Vec<ReservationId> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

/// Resolves one journaled reservation; see [`recover_interrupted_orders`].
async fn recover_reservation(
    state: &AppState,
    reservation: ReservationId,
    report: &mut RecoveryReport,
) -> Result<(), WorkflowError> {
    let order_id = OrderId::from_uuid(reservation.as_uuid());
    match state.orders.get(order_id).await {
        Ok(_) => {
            state.catalogue.confirm_reservation(reservation).await?;
            report.confirmed += 1;
            return Ok(());
        }
        Err(SalesError::NotFound { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    refund_capture_of(state, order_id, report).await?;
    state.catalogue.cancel_reservation(reservation).await?;
    report.released += 1;
    Ok(())
}

/// Resolves one journaled return; see [`recover_interrupted_orders`].
async fn recover_return(
    state: &AppState,
    id: ReservationId,
    report: &mut RecoveryReport,
) -> Result<(), WorkflowError> {
    let order_id = OrderId::from_uuid(id.as_uuid());
    let cancelled = match state.orders.get(order_id).await {
        Ok(order) => order.status() == OrderStatus::Cancelled,
        Err(SalesError::NotFound { .. }) => false,
        Err(error) => return Err(error.into()),
    };
    if cancelled {
        refund_capture_of(state, order_id, report).await?;
        state.catalogue.complete_return(id).await?;
        report.returned += 1;
    } else {
        state.catalogue.abandon_return(id).await?;
        report.abandoned += 1;
    }
    Ok(())
}

/// Refunds the capture made for `order_id`, if it is still captured.
async fn refund_capture_of(
    state: &AppState,
    order_id: OrderId,
    report: &mut RecoveryReport,
) -> Result<(), WorkflowError> {
    if let Some(capture) = state.payments.capture_for(order_id).await?
        && capture.status == PaymentStatus::Captured
    {
        match state.payments.refund(capture.transaction_id).await {
            Ok(()) => report.refunded += 1,
            // Another instance's recovery, or the cancellation itself, got there first.
            Err(PaymentError::AlreadyRefunded { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// What an earlier attempt with the same order id left behind.
enum EarlierAttempt {
    /// Nothing, or only a reservation (which the new attempt replaces).
    None,
    /// The order was recorded: it is the answer.
    Recorded(Order),
    /// Recovery already refunded its payment: the id is spent, the new attempt needs its own.
    Settled,
}

/// What the attempt that first used `order_id` (derived from the same idempotency key and
/// request) left behind; a recorded order of another owner is a collision of digests.
async fn earlier_attempt(
    state: &AppState,
    owner: &CustomerId,
    order_id: OrderId,
) -> Result<EarlierAttempt, WorkflowError> {
    match state.orders.get(order_id).await {
        Ok(order) if order.owner() == owner => {
            let reservation = reservation_of(order_id);
            if let Err(error) = state.catalogue.confirm_reservation(reservation).await {
                tracing::warn!(error = %error, reservation = %reservation, "could not confirm a reservation; recovery will");
            }
            return Ok(EarlierAttempt::Recorded(order));
        }
        Ok(_) => return Err(WorkflowError::DerivedOrderIdTaken),
        Err(SalesError::NotFound { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    match state.payments.capture_for(order_id).await? {
        Some(capture) if capture.status == PaymentStatus::Refunded => Ok(EarlierAttempt::Settled),
        _ => Ok(EarlierAttempt::None),
    }
}

/// The reservation journaled for an order, and the return journaled when it is cancelled
/// (in the other journal): the order's UUID.
fn reservation_of(order_id: OrderId) -> ReservationId {
    ReservationId::from_uuid(order_id.as_uuid())
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
/// dispatched) → journal the return of its stock → mark the order cancelled (exactly one
/// concurrent cancel wins) → refund → give the stock back (once).
///
/// An [`Attempt::Resumed`] request (its first attempt with the same key died) that finds the
/// order cancelled finishes the refund and the return and answers the cancelled order, as
/// the first attempt would have; any other request gets 409 for a cancelled order.
pub async fn cancel_order(
    state: &AppState,
    customer: &CustomerId,
    order_id: OrderId,
    attempt: Attempt,
) -> Result<Order, WorkflowError> {
    let order = state.orders.get(order_id).await?;
    if order.owner() != customer {
        return Err(WorkflowError::OrderNotFound);
    }
    if order.status() == OrderStatus::Cancelled {
        if attempt == Attempt::Resumed {
            finish_cancellation(state, &order).await;
            return Ok(order);
        }
        return Err(WorkflowError::OrderAlreadyCancelled);
    }
    state.deliveries.cancel_for_order(order_id).await?;
    // If anything below fails or the process dies, recovery finishes the return (the order
    // was cancelled) or forgets it (it was not).
    state
        .catalogue
        .begin_return(reservation_of(order_id), &stock_lines(&order))
        .await?;
    let cancelled = state.orders.mark_cancelled(order_id).await?;
    // A delivery scheduled between the check above and the cancellation must not survive
    // it. Scheduling re-reads the order after inserting its delivery, so of two racing
    // requests at least one sees the other.
    if let Err(error) = state.deliveries.cancel_for_order(order_id).await {
        tracing::error!(error = %error, order_id = %order_id, "could not cancel the delivery of a cancelled order");
    }
    finish_cancellation(state, &cancelled).await;
    Ok(cancelled)
}

/// The refund and the stock return of a cancelled order; both are idempotent. A failure
/// cannot be answered to anyone, so it is logged; recovery finishes from the return journal.
async fn finish_cancellation(state: &AppState, cancelled: &Order) {
    refund_payment(state, cancelled.payment().transaction_id).await;
    let id = reservation_of(cancelled.id());
    if let Err(error) = state.catalogue.complete_return(id).await {
        tracing::error!(error = %error, order_id = %cancelled.id(), "could not return the stock of a cancelled order; recovery will");
    }
}

fn stock_lines(order: &Order) -> Vec<StockLine> {
    order
        .lines()
        .iter()
        .map(|line| StockLine {
            isbn: line.isbn,
            quantity: line.quantity,
        })
        .collect()
}

/// Reads an order `customer`, acting in `role`, may see: its own, or any for an admin.
/// Another customer's order is answered exactly as an unknown one.
pub async fn readable_order(
    state: &AppState,
    customer: &CustomerId,
    role: Role,
    order_id: OrderId,
) -> Result<Order, WorkflowError> {
    let order = state.orders.get(order_id).await?;
    if role == Role::Admin || order.owner() == customer {
        Ok(order)
    } else {
        Err(WorkflowError::OrderNotFound)
    }
}

/// Schedules the delivery of one of the caller's confirmed orders; one per order.
///
/// An [`Attempt::Resumed`] request (its first attempt with the same key died) that finds a
/// delivery to the same address already scheduled for the order answers it, as the first
/// attempt would have, instead of 409.
pub async fn schedule_delivery(
    state: &AppState,
    customer: &CustomerId,
    request: ValidDeliveryRequest,
    attempt: Attempt,
) -> Result<Delivery, WorkflowError> {
    let ValidDeliveryRequest {
        order_id,
        address,
        requested_date,
    } = request;
    let now = Utc::now();
    let policy = &state.delivery_policy;
    let first_day = policy
        .calendar
        .schedule_date(requested_date, now.date_naive())?;
    let order = state.orders.get(order_id).await?;
    if order.owner() != customer {
        return Err(WorkflowError::OrderNotFound);
    }
    if order.status() == OrderStatus::Cancelled {
        return Err(WorkflowError::OrderCancelled);
    }
    let delivery = match book_first_day_with_room(state, order_id, &address, first_day, now).await {
        Ok(delivery) => delivery,
        Err(error @ DeliveryError::AlreadyScheduled { .. }) if attempt == Attempt::Resumed => {
            match state.deliveries.get_by_order(order_id).await? {
                Some(earlier) if earlier.address() == &address => earlier,
                _ => return Err(error.into()),
            }
        }
        Err(error) => return Err(error.into()),
    };
    // The order may have been cancelled between the check above and the insert; a
    // cancelled order never keeps a scheduled delivery.
    if state.orders.get(order_id).await?.status() == OrderStatus::Cancelled {
        state.deliveries.cancel_for_order(order_id).await?;
        return Err(WorkflowError::OrderCancelled);
    }
    Ok(delivery)
}

/// How many business days after the first possible one scheduling looks for room.
const DAYS_LOOKED_AHEAD: usize = 366;

/// Books the delivery on `first_day`, or, when it is full, on the next business day with
/// room (each booking is atomic in the store, so a day never holds more deliveries than its
/// capacity, however many instances schedule at once).
async fn book_first_day_with_room(
    state: &AppState,
    order_id: OrderId,
    address: &bookstore_delivery::Address,
    first_day: chrono::NaiveDate,
    now: DateTime<Utc>,
) -> Result<Delivery, DeliveryError> {
    let policy = &state.delivery_policy;
    let mut day = first_day;
    let mut last_tried = first_day;
    for _ in 0..DAYS_LOOKED_AHEAD {
        last_tried = day;
        let delivery = Delivery::schedule_on(order_id, address.clone(), day, now);
        let booked = match policy.capacity_per_day {
            None => state.deliveries.insert(delivery.clone()).await,
            Some(capacity) => {
                state
                    .deliveries
                    .insert_within_capacity(delivery.clone(), capacity)
                    .await
            }
        };
        match booked {
            Ok(()) => return Ok(delivery),
            Err(DeliveryError::DayFull { .. }) => day = policy.calendar.next_business_day(day)?,
            Err(error) => return Err(error),
        }
    }
    Err(DeliveryError::NoDayWithRoom {
        from: first_day,
        until: last_tried,
    })
}

/// Gives back the stock of a reservation. A failure here cannot be answered to anyone, so it
/// is logged; the journal record stays, and recovery gives the stock back later.
async fn cancel_reservation(state: &AppState, reservation: ReservationId) {
    if let Err(error) = state.catalogue.cancel_reservation(reservation).await {
        tracing::error!(error = %error, reservation = %reservation, "could not cancel a reservation; recovery will");
    }
}

/// Refunds a captured payment; one refunded already is left as it is. A failure here cannot
/// be answered to anyone, so it is logged.
async fn refund_payment(state: &AppState, transaction_id: TransactionId) {
    match state.payments.refund(transaction_id).await {
        Ok(()) | Err(PaymentError::AlreadyRefunded { .. }) => {}
        Err(error) => {
            tracing::error!(error = %error, transaction_id = %transaction_id, "could not refund a payment");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Recovery after a crash, simulated in process: the store methods are called directly
    //! to leave the state a crash between two steps of `place_order` would leave, then
    //! recovery runs.

    use std::sync::Arc;

    use bookstore_inventory::{InMemoryCatalogue, demo_catalogue};
    use bookstore_sales::{PaymentGateway, PaymentToken, SimulatedPaymentGateway};
    use bookstore_types::{Isbn, Quantity};

    use super::*;
    use crate::http::auth::ApiKeys;

    /// Effective Java: 12 copies at 44.99 in the demo catalogue.
    const ISBN: &str = "9780134685991";
    const INITIAL_STOCK: u32 = 12;

    struct Harness {
        state: AppState,
        payments: Arc<SimulatedPaymentGateway>,
    }

    fn harness() -> Harness {
        let payments = Arc::new(SimulatedPaymentGateway::new());
        let mut state = AppState::in_memory(ApiKeys::demo());
        state.catalogue = Arc::new(InMemoryCatalogue::with_books(demo_catalogue()).unwrap());
        state.payments = Arc::clone(&payments) as _;
        Harness { state, payments }
    }

    fn two_copies() -> Vec<StockLine> {
        vec![StockLine {
            isbn: Isbn::parse(ISBN).unwrap(),
            quantity: Quantity::new(2).unwrap(),
        }]
    }

    fn token(text: &str) -> PaymentToken {
        PaymentToken::parse(text).unwrap()
    }

    fn alice() -> CustomerId {
        CustomerId::new("alice")
    }

    /// A cutoff that makes every journaled reservation old enough.
    fn after_everything() -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(1)
    }

    impl Harness {
        async fn stock(&self) -> u32 {
            let isbn = Isbn::parse(ISBN).unwrap();
            self.state.catalogue.get(&isbn).await.unwrap().stock
        }

        async fn journaled(&self) -> Vec<ReservationId> {
            self.state
                .catalogue
                .reservations_older_than(after_everything())
                .await
                .unwrap()
        }

        /// Step 1 of `place_order`, then a crash.
        async fn reserve(&self, order_id: OrderId) -> Vec<ReservedLine> {
            self.state
                .catalogue
                .reserve_all(reservation_of(order_id), &two_copies())
                .await
                .unwrap()
        }

        /// Steps 1 and 3 of `place_order`, then a crash.
        async fn reserve_and_capture(
            &self,
            order_id: OrderId,
        ) -> (Vec<ReservedLine>, TransactionId) {
            let reserved = self.reserve(order_id).await;
            let lines: Vec<OrderLine> = reserved.clone().into_iter().map(order_line).collect();
            let total = PricedLines::new(lines).unwrap().total();
            let transaction_id = self
                .state
                .payments
                .capture(&token("tok_visa"), total, order_id)
                .await
                .unwrap();
            (reserved, transaction_id)
        }

        /// Steps 1, 3 and 4 of `place_order`, then a crash before the confirmation.
        async fn reserve_capture_and_insert(&self, order_id: OrderId) -> Order {
            let (reserved, transaction_id) = self.reserve_and_capture(order_id).await;
            let payment = CapturedPayment::new(transaction_id);
            let priced = PricedLines::new(reserved.into_iter().map(order_line).collect()).unwrap();
            let order = Order::confirmed(order_id, alice(), priced, payment, Utc::now());
            self.state.orders.insert(order.clone()).await.unwrap();
            order
        }

        async fn recover(&self) -> RecoveryReport {
            recover_interrupted_orders(&self.state, after_everything())
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn a_placed_order_leaves_no_journal_record_and_recovery_finds_nothing() {
        let harness = harness();
        let request = ValidOrderRequest {
            lines: two_copies(),
            token: token("tok_visa"),
        };
        let order = place_order(&harness.state, &alice(), OrderIdentity::Fresh, request)
            .await
            .unwrap();
        assert_eq!(harness.journaled().await, vec![]);
        assert_eq!(harness.recover().await, RecoveryReport::default());
        assert_eq!(harness.stock().await, INITIAL_STOCK - 2);
        let capture = harness
            .payments
            .capture_for(order.id())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(capture.transaction_id, order.payment().transaction_id);
        assert_eq!(capture.status, PaymentStatus::Captured);
    }

    #[tokio::test]
    async fn a_declined_order_gives_its_stock_back_and_leaves_no_journal_record() {
        let harness = harness();
        let request = ValidOrderRequest {
            lines: two_copies(),
            token: token("tok_chargeDeclined"),
        };
        let error = place_order(&harness.state, &alice(), OrderIdentity::Fresh, request)
            .await
            .unwrap_err();
        assert!(
            matches!(error, WorkflowError::Payment(PaymentError::Declined)),
            "{error:?}"
        );
        assert_eq!(harness.journaled().await, vec![]);
        assert_eq!(harness.stock().await, INITIAL_STOCK);
        assert_eq!(harness.payments.captured_count(), 0);
    }

    #[tokio::test]
    async fn a_crash_after_reserving_is_recovered_by_giving_the_stock_back() {
        let harness = harness();
        let order_id = OrderId::generate();
        harness.reserve(order_id).await;
        assert_eq!(harness.stock().await, INITIAL_STOCK - 2);

        let report = harness.recover().await;
        assert_eq!(
            report,
            RecoveryReport {
                released: 1,
                ..RecoveryReport::default()
            }
        );
        assert_eq!(harness.stock().await, INITIAL_STOCK);
        assert_eq!(harness.journaled().await, vec![]);
        assert_eq!(harness.payments.captured_count(), 0);
        assert!(matches!(
            harness.state.orders.get(order_id).await,
            Err(SalesError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_crash_after_capturing_is_recovered_by_refunding_and_giving_the_stock_back() {
        let harness = harness();
        let order_id = OrderId::generate();
        let (_, transaction_id) = harness.reserve_and_capture(order_id).await;
        assert_eq!(harness.payments.captured_count(), 1);

        let report = harness.recover().await;
        assert_eq!(
            report,
            RecoveryReport {
                released: 1,
                refunded: 1,
                ..RecoveryReport::default()
            }
        );
        assert_eq!(harness.stock().await, INITIAL_STOCK);
        assert_eq!(harness.journaled().await, vec![]);
        assert_eq!(harness.payments.captured_count(), 0);
        assert_eq!(
            harness
                .payments
                .transaction(transaction_id)
                .map(|(_, status)| status),
            Some(PaymentStatus::Refunded)
        );
        assert!(matches!(
            harness.state.orders.get(order_id).await,
            Err(SalesError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_crash_after_recording_the_order_is_recovered_by_confirming_the_reservation() {
        let harness = harness();
        let order_id = OrderId::generate();
        let order = harness.reserve_capture_and_insert(order_id).await;

        let report = harness.recover().await;
        assert_eq!(
            report,
            RecoveryReport {
                confirmed: 1,
                ..RecoveryReport::default()
            }
        );
        assert_eq!(harness.stock().await, INITIAL_STOCK - 2);
        assert_eq!(harness.journaled().await, vec![]);
        assert_eq!(harness.payments.captured_count(), 1);
        assert_eq!(harness.state.orders.get(order_id).await.unwrap(), order);
    }

    #[tokio::test]
    async fn recovery_resolves_many_interrupted_orders_at_once_and_a_second_run_finds_nothing() {
        let harness = harness();
        harness.reserve(OrderId::generate()).await;
        harness.reserve_and_capture(OrderId::generate()).await;
        harness
            .reserve_capture_and_insert(OrderId::generate())
            .await;

        let report = harness.recover().await;
        assert_eq!(
            report,
            RecoveryReport {
                confirmed: 1,
                released: 2,
                refunded: 1,
                ..RecoveryReport::default()
            }
        );
        assert_eq!(harness.stock().await, INITIAL_STOCK - 2);
        assert_eq!(harness.payments.captured_count(), 1);
        assert_eq!(harness.recover().await, RecoveryReport::default());
    }

    #[tokio::test]
    async fn reservations_younger_than_the_cutoff_are_left_alone() {
        let harness = harness();
        let order_id = OrderId::generate();
        harness.reserve_and_capture(order_id).await;

        let cutoff = Utc::now() - chrono::Duration::from_std(RECOVERY_GRACE_PERIOD).unwrap();
        let report = recover_interrupted_orders(&harness.state, cutoff)
            .await
            .unwrap();
        assert_eq!(report, RecoveryReport::default());
        assert_eq!(harness.stock().await, INITIAL_STOCK - 2);
        assert_eq!(harness.payments.captured_count(), 1);
        assert_eq!(harness.journaled().await, vec![reservation_of(order_id)]);
    }

    impl Harness {
        /// A placed order: stock taken, payment captured, order recorded.
        async fn placed(&self) -> Order {
            let request = ValidOrderRequest {
                lines: two_copies(),
                token: token("tok_visa"),
            };
            place_order(&self.state, &alice(), OrderIdentity::Fresh, request)
                .await
                .unwrap()
        }

        /// The first steps of `cancel_order` (return journaled, order marked cancelled),
        /// then a crash before the refund and the return.
        async fn cancel_then_crash(&self, order: &Order) {
            self.state
                .catalogue
                .begin_return(reservation_of(order.id()), &stock_lines(order))
                .await
                .unwrap();
            self.state.orders.mark_cancelled(order.id()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_cancel_cut_off_after_marking_the_order_is_finished_by_recovery() {
        let harness = harness();
        let order = harness.placed().await;
        harness.cancel_then_crash(&order).await;
        assert_eq!(harness.stock().await, INITIAL_STOCK - 2);
        assert_eq!(harness.payments.captured_count(), 1);

        let report = harness.recover().await;
        assert_eq!(
            report,
            RecoveryReport {
                refunded: 1,
                returned: 1,
                ..RecoveryReport::default()
            }
        );
        assert_eq!(harness.stock().await, INITIAL_STOCK);
        assert_eq!(harness.payments.captured_count(), 0);
        assert_eq!(harness.recover().await, RecoveryReport::default());
        assert_eq!(
            harness.stock().await,
            INITIAL_STOCK,
            "the stock came back once"
        );
    }

    #[tokio::test]
    async fn a_cancel_cut_off_before_marking_the_order_is_forgotten_by_recovery() {
        let harness = harness();
        let order = harness.placed().await;
        harness
            .state
            .catalogue
            .begin_return(reservation_of(order.id()), &stock_lines(&order))
            .await
            .unwrap();

        let report = harness.recover().await;
        assert_eq!(
            report,
            RecoveryReport {
                abandoned: 1,
                ..RecoveryReport::default()
            }
        );
        assert_eq!(harness.stock().await, INITIAL_STOCK - 2);
        assert_eq!(harness.payments.captured_count(), 1);
        let order = harness.state.orders.get(order.id()).await.unwrap();
        assert_eq!(order.status(), OrderStatus::Confirmed);
    }

    #[tokio::test]
    async fn a_resumed_cancel_finishes_what_the_cut_off_one_began_and_answers_the_order() {
        let harness = harness();
        let order = harness.placed().await;
        harness.cancel_then_crash(&order).await;

        let cancelled = cancel_order(&harness.state, &alice(), order.id(), Attempt::Resumed)
            .await
            .unwrap();
        assert_eq!(cancelled.status(), OrderStatus::Cancelled);
        assert_eq!(harness.stock().await, INITIAL_STOCK);
        assert_eq!(harness.payments.captured_count(), 0);
        // Resuming again (a second retry) gives nothing back twice.
        cancel_order(&harness.state, &alice(), order.id(), Attempt::Resumed)
            .await
            .unwrap();
        assert_eq!(harness.stock().await, INITIAL_STOCK);
        assert_eq!(harness.recover().await, RecoveryReport::default());
    }

    #[tokio::test]
    async fn a_first_cancel_of_a_cancelled_order_is_refused_as_not_cancellable() {
        let harness = harness();
        let order = harness.placed().await;
        cancel_order(&harness.state, &alice(), order.id(), Attempt::First)
            .await
            .unwrap();
        let error = cancel_order(&harness.state, &alice(), order.id(), Attempt::First)
            .await
            .unwrap_err();
        assert!(
            matches!(error, WorkflowError::OrderAlreadyCancelled),
            "{error:?}"
        );
        assert_eq!(harness.stock().await, INITIAL_STOCK);
    }

    #[tokio::test]
    async fn a_resumed_scheduling_answers_the_delivery_its_cut_off_attempt_made() {
        let harness = harness();
        let order = harness.placed().await;
        let request = || ValidDeliveryRequest {
            order_id: order.id(),
            address: test_address("1 Main Street"),
            requested_date: None,
        };
        let first = schedule_delivery(&harness.state, &alice(), request(), Attempt::First)
            .await
            .unwrap();
        let resumed = schedule_delivery(&harness.state, &alice(), request(), Attempt::Resumed)
            .await
            .unwrap();
        assert_eq!(resumed, first);

        let again = schedule_delivery(&harness.state, &alice(), request(), Attempt::First)
            .await
            .unwrap_err();
        assert!(
            matches!(
                again,
                WorkflowError::Delivery(DeliveryError::AlreadyScheduled { .. })
            ),
            "{again:?}"
        );
        let elsewhere = ValidDeliveryRequest {
            address: test_address("2 Other Road"),
            ..request()
        };
        let other = schedule_delivery(&harness.state, &alice(), elsewhere, Attempt::Resumed)
            .await
            .unwrap_err();
        assert!(
            matches!(
                other,
                WorkflowError::Delivery(DeliveryError::AlreadyScheduled { .. })
            ),
            "{other:?}"
        );
    }

    fn test_address(line1: &str) -> bookstore_delivery::Address {
        bookstore_delivery::Address::parse(bookstore_delivery::AddressInput {
            recipient: "Ada Lovelace".to_owned(),
            line1: line1.to_owned(),
            line2: None,
            city: "London".to_owned(),
            postal_code: "N1 9GU".to_owned(),
            country: "GB".to_owned(),
        })
        .unwrap()
    }
}
