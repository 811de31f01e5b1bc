//! The order store's SQL for PostgreSQL.

/// Inserts nothing when the id is taken, or when instance $10 has no row. The instance's
/// row is locked `FOR KEY SHARE` until the insert commits, so reaping that instance waits for it
/// (see `crate::instances`).
const INSERT_ORDER: &str = "
    INSERT INTO orders
        (id, owner, status, lines, total_cents, currency, transaction_id, payment_status,
         created_at)
    SELECT $1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9
    FROM (SELECT id FROM instances WHERE id = $10 FOR KEY SHARE) AS lease
    ON CONFLICT (id) DO NOTHING";

const GET_ORDER: &str = "
    SELECT id, owner, status, lines::text AS lines, total_cents, currency, transaction_id,
        payment_status, created_at
    FROM orders WHERE id = $1";

/// $1 the owner, $2 the number of orders.
const LIST_ORDERS: &str = "
    SELECT id, owner, status, lines::text AS lines, total_cents, currency, transaction_id,
        payment_status, created_at
    FROM orders WHERE owner = $1
    ORDER BY seq DESC LIMIT $2";

/// $3 the cursor: only orders inserted before it. A cursor that is not one of the owner's
/// orders compares with NULL, which selects nothing.
const LIST_ORDERS_BEFORE: &str = "
    SELECT id, owner, status, lines::text AS lines, total_cents, currency, transaction_id,
        payment_status, created_at
    FROM orders
    WHERE owner = $1 AND seq < (SELECT seq FROM orders WHERE id = $3 AND owner = $1)
    ORDER BY seq DESC LIMIT $2";

/// Only a confirmed order: of concurrent cancels, one updates the row.
const CANCEL_ORDER: &str = "
    UPDATE orders SET status = 'cancelled', payment_status = 'refunded'
    WHERE id = $1 AND status = 'confirmed'
    RETURNING id, owner, status, lines::text AS lines, total_cents, currency, transaction_id,
        payment_status, created_at";

const ORDER_STATUS: &str = "SELECT status FROM orders WHERE id = $1";

crate::shared::order_queries!();
