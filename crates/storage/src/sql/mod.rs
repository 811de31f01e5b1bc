//! The SQL that both backends run as the same text: the idempotency records, the deliveries,
//! the payment ledger and the webhooks. What differs (the catalogue's reservation, the orders' lease
//! check, the instances' clocks) stays in each backend's module.
//!
//! Parameters are written `$1`, `$2`, ... and each statement meets them in increasing order
//! (the first use of `$k` comes after the first use of `$k-1`), so that SQLite, which numbers
//! `$NAME` parameters in order of first appearance, gives `$k` the index `k`, as PostgreSQL
//! does. A test checks every statement listed in [`ALL`] on SQLite. Timestamps are bound as
//! each backend stores them (`TIMESTAMPTZ`, or fixed-width UTC text on SQLite).

pub(crate) mod deliveries;
pub(crate) mod idempotency;
pub(crate) mod payments;
pub(crate) mod webhooks;

/// Every shared statement, for the test of its parameter numbering.
#[cfg(test)]
pub(crate) const ALL: &[&str] = &[
    idempotency::INSERT_CLAIM,
    idempotency::RESUME_CLAIM,
    idempotency::TAKE_OVER_CLAIM,
    idempotency::READ_CLAIM,
    idempotency::COMPLETE_CLAIM,
    idempotency::RELEASE_CLAIM,
    idempotency::PURGE_EXPIRED,
    payments::CAPTURE_FOR,
    payments::INSERT_CAPTURE,
    payments::REFUND,
    payments::TRANSACTION,
    payments::COUNT_WITH_STATUS,
    deliveries::INSERT_DELIVERY,
    deliveries::DELIVERY_ID_FOR_ORDER,
    deliveries::ORDER_ID_FOR_DELIVERY,
    deliveries::GET_DELIVERY,
    deliveries::GET_DELIVERY_BY_ORDER,
    deliveries::UPDATE_DELIVERY,
    deliveries::BOOK_DAY,
    deliveries::FREE_DAY,
    deliveries::LIST_DELIVERIES,
    deliveries::COUNT_OVERDUE,
    webhooks::INSERT_ENDPOINT,
    webhooks::GET_ENDPOINT,
    webhooks::LIST_ENDPOINTS,
    webhooks::UPDATE_ENDPOINT,
    webhooks::DELETE_ENDPOINT,
    webhooks::ROTATE_SECRET,
    webhooks::DISABLE_ENDPOINT,
    webhooks::ENDPOINTS_BEHIND,
    webhooks::ADVANCE_CURSOR,
    webhooks::INSERT_DELIVERY,
    webhooks::INSERT_ATTEMPT,
    webhooks::FINISH_ATTEMPT,
    webhooks::PURGE_FINISHED,
    webhooks::CLEAR_FAILING,
    webhooks::START_FAILING,
    webhooks::FAILING_SINCE,
    webhooks::LIST_ATTEMPTS,
];

#[cfg(test)]
mod tests {
    /// The numbers of the `$k` parameters of `sql`, in order of first appearance.
    fn parameters_in_order_of_first_appearance(sql: &str) -> Vec<usize> {
        let mut seen = Vec::new();
        let mut rest = sql;
        while let Some(dollar) = rest.find('$') {
            rest = &rest[dollar + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(number) = digits.parse::<usize>()
                && !seen.contains(&number)
            {
                seen.push(number);
            }
        }
        seen
    }

    #[test]
    fn every_shared_statement_numbers_its_parameters_in_order_of_first_appearance() {
        for sql in super::ALL {
            let numbers = parameters_in_order_of_first_appearance(sql);
            let expected: Vec<usize> = (1..=numbers.len()).collect();
            assert_eq!(numbers, expected, "{sql}");
        }
    }
}
