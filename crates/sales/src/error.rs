//! Everything that can go wrong in the sales domain, apart from payments.

use bookstore_types::OrderId;

/// Why an order could not be priced, stored, found or cancelled.
///
/// Payment failures have their own type, [`PaymentError`](crate::PaymentError).
#[derive(Debug, thiserror::Error)]
pub enum SalesError {
    /// An order must have at least one line.
    #[error("an order needs at least one line")]
    EmptyOrder,
    /// All lines of an order must be priced in one currency.
    #[error("all lines of an order must be priced in one currency")]
    MixedCurrencies,
    /// A line total or the order total does not fit in 64 bits of minor units.
    #[error("the order total is too large")]
    TotalTooLarge,
    /// No order has this id.
    #[error("order {order_id} was not found")]
    NotFound {
        /// The id that was looked up.
        order_id: OrderId,
    },
    /// An order with this id is already stored.
    #[error("order {order_id} already exists")]
    AlreadyExists {
        /// The id that was already taken.
        order_id: OrderId,
    },
    /// The order was cancelled before; it cannot be cancelled again.
    #[error("order {order_id} is already cancelled")]
    AlreadyCancelled {
        /// The order that was already cancelled.
        order_id: OrderId,
    },
    /// The order store cannot answer right now (for example its database is down).
    #[error("the order store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lower_case_without_a_final_period() {
        let order_id = OrderId::generate();
        let io_error = std::io::Error::other("connection refused");
        for error in [
            SalesError::EmptyOrder,
            SalesError::MixedCurrencies,
            SalesError::TotalTooLarge,
            SalesError::NotFound { order_id },
            SalesError::AlreadyExists { order_id },
            SalesError::AlreadyCancelled { order_id },
            SalesError::Unavailable(Box::new(io_error)),
        ] {
            let message = error.to_string();
            assert!(!message.ends_with('.'), "{message:?}");
            assert!(
                message.starts_with(|c: char| c.is_lowercase()),
                "{message:?}"
            );
        }
    }

    #[test]
    fn an_unavailable_store_keeps_its_cause_as_the_source() {
        let error = SalesError::Unavailable(Box::new(std::io::Error::other("connection refused")));
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection refused"));
    }
}
