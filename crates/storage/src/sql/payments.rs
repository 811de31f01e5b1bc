//! The simulated processor's ledger, one text for both backends (see [`crate::sql`]).

/// $1 the reference.
pub(crate) const CAPTURE_FOR: &str = "
    SELECT transaction_id, amount_cents, currency, status FROM payments WHERE reference = $1";

/// A reference captured before (concurrently) inserts nothing.
pub(crate) const INSERT_CAPTURE: &str = "
    INSERT INTO payments (transaction_id, reference, amount_cents, currency, status, created_at)
    VALUES ($1, $2, $3, $4, 'captured', $5)
    ON CONFLICT (reference) DO NOTHING";

/// Only a captured transaction: of concurrent refunds, one updates a row, and answers what
/// its event says.
pub(crate) const REFUND: &str = "
    UPDATE payments SET status = 'refunded' WHERE transaction_id = $1 AND status = 'captured'
    RETURNING reference, amount_cents, currency";

/// $1 the transaction.
pub(crate) const TRANSACTION: &str = "
    SELECT amount_cents, currency, status FROM payments WHERE transaction_id = $1";

/// $1 the status.
pub(crate) const COUNT_WITH_STATUS: &str = "SELECT count(*) FROM payments WHERE status = $1";
