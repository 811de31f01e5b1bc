//! Orders: what was bought, at what price, by whom, and the payment that paid for it.

use std::fmt;

use bookstore_types::{Isbn, Money, OrderId, Quantity};
use chrono::{DateTime, SubsecRound, Utc};

use crate::customer::CustomerId;
use crate::error::SalesError;
use crate::payment::{CapturedPayment, Payment, PaymentStatus};

/// One book on an order, priced when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// The book.
    pub isbn: Isbn,
    /// The book's title when the order was placed.
    pub title: String,
    /// How many copies.
    pub quantity: Quantity,
    /// The price of one copy when the order was placed.
    pub unit_price: Money,
}

impl OrderLine {
    /// `quantity × unit_price`, or [`SalesError::TotalTooLarge`] if it does not fit.
    pub fn line_total(&self) -> Result<Money, SalesError> {
        self.unit_price
            .checked_mul(self.quantity.get())
            .map_err(|_overflow| SalesError::TotalTooLarge)
    }
}

/// The sum of the line totals of `lines`.
///
/// Fails with [`SalesError::EmptyOrder`] if there are no lines, [`SalesError::MixedCurrencies`]
/// if the lines are not all priced in one currency, and [`SalesError::TotalTooLarge`] if a
/// line total or the sum overflows.
pub fn order_total(lines: &[OrderLine]) -> Result<Money, SalesError> {
    let first_line = lines.first().ok_or(SalesError::EmptyOrder)?;
    let currency = first_line.unit_price.currency();
    if lines
        .iter()
        .any(|line| line.unit_price.currency() != currency)
    {
        return Err(SalesError::MixedCurrencies);
    }
    lines.iter().try_fold(Money::zero(currency), |total, line| {
        total
            .checked_add(line.line_total()?)
            .map_err(|_overflow| SalesError::TotalTooLarge)
    })
}

/// Order lines priced together: at least one line, all in one currency, and their total.
///
/// [`PricedLines::new`] is where an order is priced, once: the workflow charges
/// [`PricedLines::total`] and [`Order::confirmed`] keeps the same total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLines {
    lines: Vec<OrderLine>,
    total: Money,
}

impl PricedLines {
    /// `lines` with their [`order_total`]; fails as [`order_total`] does.
    pub fn new(lines: Vec<OrderLine>) -> Result<Self, SalesError> {
        let total = order_total(&lines)?;
        Ok(Self { lines, total })
    }

    /// The lines, in the order they were given; never empty.
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }

    /// The sum of the line totals.
    pub fn total(&self) -> Money {
        self.total
    }
}

/// Whether an order still stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Paid for and standing; its payment is captured.
    Confirmed,
    /// Called off; its payment is refunded.
    Cancelled,
}

impl OrderStatus {
    /// `"confirmed"` or `"cancelled"`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A placed order.
///
/// Built by [`Order::confirmed`] from [`PricedLines`], an order has at least one line, all in
/// one currency, and a total equal to the sum of its line totals. A confirmed order's payment is captured; a
/// cancelled order's payment is refunded. Fields are private so these rules cannot be
/// broken after the fact; the only change an order can undergo is [`Order::cancelled`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    id: OrderId,
    owner: CustomerId,
    status: OrderStatus,
    lines: Vec<OrderLine>,
    total: Money,
    payment: Payment,
    created_at: DateTime<Utc>,
}

impl Order {
    /// A new confirmed order for `priced` lines, paid for by `payment`.
    ///
    /// A confirmed order always has a captured payment: the types say so, so nothing is
    /// checked here. `created_at` is kept to the microsecond, as databases keep timestamps,
    /// so that an order reads back from any store exactly as it was built.
    pub fn confirmed(
        id: OrderId,
        owner: CustomerId,
        priced: PricedLines,
        payment: CapturedPayment,
        created_at: DateTime<Utc>,
    ) -> Order {
        Order {
            id,
            owner,
            status: OrderStatus::Confirmed,
            lines: priced.lines,
            total: priced.total,
            payment: payment.into(),
            created_at: created_at.trunc_subsecs(6),
        }
    }

    /// An order exactly as it was stored, for stores reading rows back.
    ///
    /// This trusts its input: nothing is checked or recomputed. Only pass values that were
    /// read from an order built by [`Order::confirmed`] (and possibly [`Order::cancelled`]).
    pub fn restore(
        id: OrderId,
        owner: CustomerId,
        status: OrderStatus,
        lines: Vec<OrderLine>,
        total: Money,
        payment: Payment,
        created_at: DateTime<Utc>,
    ) -> Order {
        Order {
            id,
            owner,
            status,
            lines,
            total,
            payment,
            created_at,
        }
    }

    /// This order called off: status [`OrderStatus::Cancelled`], payment marked
    /// [`PaymentStatus::Refunded`].
    ///
    /// Only records the change; refunding the money is the caller's job. Fails with
    /// [`SalesError::AlreadyCancelled`] if the order was cancelled before.
    pub fn cancelled(self) -> Result<Order, SalesError> {
        match self.status {
            OrderStatus::Cancelled => Err(SalesError::AlreadyCancelled { order_id: self.id }),
            OrderStatus::Confirmed => Ok(Order {
                status: OrderStatus::Cancelled,
                payment: Payment {
                    status: PaymentStatus::Refunded,
                    ..self.payment
                },
                ..self
            }),
        }
    }

    /// The order's id.
    pub fn id(&self) -> OrderId {
        self.id
    }

    /// Who placed the order.
    pub fn owner(&self) -> &CustomerId {
        &self.owner
    }

    /// Whether the order still stands.
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    /// The books ordered, in the order they were given; never empty.
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }

    /// The sum of the line totals.
    pub fn total(&self) -> Money {
        self.total
    }

    /// The payment that paid for the order.
    pub fn payment(&self) -> &Payment {
        &self.payment
    }

    /// When the order was placed.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}

#[cfg(test)]
mod tests {
    use bookstore_types::Currency;
    use proptest::prelude::*;

    use super::*;
    use crate::payment::TransactionId;

    fn line(quantity: u64, unit_price_cents: i64, currency: Currency) -> OrderLine {
        OrderLine {
            isbn: Isbn::parse("9780134685991").unwrap(),
            title: "Effective Java".to_owned(),
            quantity: Quantity::new(quantity).unwrap(),
            unit_price: Money::from_cents(unit_price_cents, currency).unwrap(),
        }
    }

    fn usd_line(quantity: u64, unit_price_cents: i64) -> OrderLine {
        line(quantity, unit_price_cents, Currency::USD)
    }

    fn captured_payment() -> CapturedPayment {
        CapturedPayment::new(TransactionId::generate())
    }

    fn confirmed_order(lines: Vec<OrderLine>) -> Result<Order, SalesError> {
        let priced = PricedLines::new(lines)?;
        Ok(Order::confirmed(
            OrderId::generate(),
            CustomerId::new("alice"),
            priced,
            captured_payment(),
            Utc::now(),
        ))
    }

    #[test]
    fn a_confirmed_order_totals_its_lines() {
        let order = confirmed_order(vec![usd_line(2, 4_499), usd_line(1, 3_999)]).unwrap();
        assert_eq!(
            order.total(),
            Money::from_cents(12_997, Currency::USD).unwrap()
        );
        assert_eq!(order.status(), OrderStatus::Confirmed);
        assert_eq!(order.payment().status, PaymentStatus::Captured);
        assert_eq!(order.lines().len(), 2);
        assert_eq!(order.owner(), &CustomerId::new("alice"));
    }

    #[test]
    fn an_order_without_lines_is_an_empty_order() {
        assert!(matches!(
            confirmed_order(vec![]),
            Err(SalesError::EmptyOrder)
        ));
    }

    #[test]
    fn an_order_priced_in_two_currencies_is_refused() {
        let euro = Currency::parse("EUR").unwrap();
        let lines = vec![usd_line(1, 4_499), line(1, 3_999, euro)];
        assert!(matches!(
            confirmed_order(lines),
            Err(SalesError::MixedCurrencies)
        ));
    }

    #[test]
    fn an_order_whose_total_overflows_is_too_large() {
        for lines in [
            vec![usd_line(2, i64::MAX / 2 + 1)],
            vec![usd_line(1, i64::MAX), usd_line(1, 1)],
        ] {
            assert!(matches!(
                confirmed_order(lines),
                Err(SalesError::TotalTooLarge)
            ));
        }
    }

    #[test]
    fn a_confirmed_order_keeps_the_total_its_lines_were_priced_at() {
        let priced = PricedLines::new(vec![usd_line(2, 4_499), usd_line(1, 3_999)]).unwrap();
        assert_eq!(priced.total(), order_total(priced.lines()).unwrap());
        let payment = captured_payment();
        let order = Order::confirmed(
            OrderId::generate(),
            CustomerId::new("alice"),
            priced.clone(),
            payment,
            Utc::now(),
        );
        assert_eq!(order.total(), priced.total());
        assert_eq!(order.lines(), priced.lines());
        assert_eq!(order.payment().transaction_id, payment.transaction_id());
    }

    #[test]
    fn only_a_captured_payment_can_pay_for_an_order() {
        let transaction_id = TransactionId::generate();
        let captured = Payment {
            transaction_id,
            status: PaymentStatus::Captured,
        };
        assert_eq!(
            CapturedPayment::try_from(captured.clone()),
            Ok(CapturedPayment::new(transaction_id))
        );
        assert_eq!(
            Payment::from(CapturedPayment::new(transaction_id)),
            captured
        );
        let refunded = Payment {
            transaction_id,
            status: PaymentStatus::Refunded,
        };
        assert_eq!(CapturedPayment::try_from(refunded.clone()), Err(refunded));
    }

    #[test]
    fn a_line_total_is_quantity_times_unit_price() {
        assert_eq!(usd_line(3, 1_000).line_total().unwrap().cents(), 3_000);
        assert!(matches!(
            usd_line(100, i64::MAX / 10).line_total(),
            Err(SalesError::TotalTooLarge)
        ));
    }

    #[test]
    fn cancelling_a_confirmed_order_refunds_its_payment_and_keeps_everything_else() {
        let order = confirmed_order(vec![usd_line(1, 4_499)]).unwrap();
        let cancelled = order.clone().cancelled().unwrap();
        assert_eq!(cancelled.status(), OrderStatus::Cancelled);
        assert_eq!(cancelled.payment().status, PaymentStatus::Refunded);
        assert_eq!(
            cancelled.payment().transaction_id,
            order.payment().transaction_id
        );
        assert_eq!(
            (cancelled.id(), cancelled.total(), cancelled.created_at()),
            (order.id(), order.total(), order.created_at())
        );
        assert_eq!(cancelled.lines(), order.lines());
    }

    #[test]
    fn cancelling_an_order_twice_is_already_cancelled() {
        let order = confirmed_order(vec![usd_line(1, 4_499)]).unwrap();
        let order_id = order.id();
        let cancelled = order.cancelled().unwrap();
        assert!(matches!(
            cancelled.cancelled(),
            Err(SalesError::AlreadyCancelled { order_id: id }) if id == order_id
        ));
    }

    #[test]
    fn a_restored_order_equals_the_order_it_was_read_from() {
        let order = confirmed_order(vec![usd_line(2, 4_499)]).unwrap();
        let restored = Order::restore(
            order.id(),
            order.owner().clone(),
            order.status(),
            order.lines().to_vec(),
            order.total(),
            order.payment().clone(),
            order.created_at(),
        );
        assert_eq!(restored, order);
    }

    #[test]
    fn the_creation_time_is_kept_to_the_microsecond() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let order = Order::confirmed(
            OrderId::generate(),
            CustomerId::new("alice"),
            PricedLines::new(vec![usd_line(1, 100)]).unwrap(),
            captured_payment(),
            at,
        );
        assert_eq!(
            order.created_at().to_rfc3339(),
            "2026-01-02T03:04:05.123456+00:00"
        );
    }

    #[test]
    fn statuses_have_lower_case_names() {
        assert_eq!(OrderStatus::Confirmed.as_str(), "confirmed");
        assert_eq!(OrderStatus::Cancelled.to_string(), "cancelled");
    }

    fn line_strategy() -> impl Strategy<Value = (u64, i64)> {
        (
            1u64..=100,
            prop_oneof![0i64..100_000, 0i64..=i64::MAX, Just(i64::MAX)],
        )
    }

    proptest! {
        #[test]
        fn order_total_is_the_sum_of_quantity_times_price_or_too_large(
            lines in proptest::collection::vec(line_strategy(), 1..8),
        ) {
            let expected: i128 = lines
                .iter()
                .map(|&(quantity, cents)| i128::from(quantity) * i128::from(cents))
                .sum();
            let order_lines: Vec<OrderLine> = lines
                .iter()
                .map(|&(quantity, cents)| usd_line(quantity, cents))
                .collect();
            match order_total(&order_lines) {
                Ok(total) => prop_assert_eq!(i128::from(total.cents()), expected),
                Err(SalesError::TotalTooLarge) => prop_assert!(expected > i128::from(i64::MAX)),
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
    }
}
