//! The sales domain: taking payment for orders and keeping the record of them.
//!
//! - [`PaymentToken`], [`PaymentGateway`] and [`SimulatedPaymentGateway`]: capturing (at
//!   most once per order) and refunding payments; [`simulated_decision`] is the test-mode
//!   token rule, for other implementations of the simulated processor. A payment token is a
//!   secret: it cannot be printed, and raw card numbers are refused before they reach a
//!   processor.
//! - [`Order`], [`OrderLine`], [`PricedLines`] and [`order_total`]: an order is built from
//!   lines priced once, in one currency, with at least one line, and always carries the
//!   payment that paid for it (a [`CapturedPayment`] when confirmed, refunded once
//!   cancelled).
//! - [`OrderStore`] and [`InMemoryOrderStore`]: where orders are kept, listed per
//!   [`CustomerId`] newest first, and cancelled exactly once.
//!
//! Deliberately absent: stock, delivery and HTTP. The workflow that reserves stock, captures
//! payment and records the order lives in the gateway; this crate knows nothing of the
//! other domains.

mod customer;
mod error;
mod order;
mod order_store;
mod payment;
mod simulated_payment_gateway;

pub use customer::CustomerId;
pub use error::SalesError;
pub use order::{Order, OrderLine, OrderStatus, PricedLines, order_total};
pub use order_store::{InMemoryOrderStore, OrderChange, OrderObserver, OrderPage, OrderStore};
pub use payment::{
    Capture, CapturedPayment, Payment, PaymentError, PaymentGateway, PaymentStatus, PaymentToken,
    TransactionId,
};
pub use simulated_payment_gateway::{PaymentObserver, SimulatedPaymentGateway, simulated_decision};
