//! The delivery store's SQL for SQLite.

/// A clash on the id or on the order (one delivery per order) inserts nothing.
const INSERT_DELIVERY: &str = "
    INSERT INTO deliveries
        (id, order_id, status, recipient, line1, line2, city, postal_code, country,
         scheduled_date, tracking_number, created_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT DO NOTHING";

const DELIVERY_ID_FOR_ORDER: &str = "SELECT id FROM deliveries WHERE order_id = ?1";

const ORDER_ID_FOR_DELIVERY: &str = "SELECT order_id FROM deliveries WHERE id = ?1";

const GET_DELIVERY: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at
    FROM deliveries WHERE id = ?1";

const GET_DELIVERY_BY_ORDER: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at
    FROM deliveries WHERE order_id = ?1";

/// ?1 the delivery, ?2 the status it must still have, ?3 the new status.
const SET_DELIVERY_STATUS: &str = "
    UPDATE deliveries SET status = ?3 WHERE id = ?1 AND status = ?2";

crate::shared::delivery_queries!();
