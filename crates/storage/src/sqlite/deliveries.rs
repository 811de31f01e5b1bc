//! The delivery store's SQL for SQLite.

/// A clash on the id or on the order (one delivery per order) inserts nothing.
const INSERT_DELIVERY: &str = "
    INSERT INTO deliveries
        (id, order_id, status, recipient, line1, line2, city, postal_code, country,
         scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
         status_since, history)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
    ON CONFLICT DO NOTHING";

const DELIVERY_ID_FOR_ORDER: &str = "SELECT id FROM deliveries WHERE order_id = ?1";

const ORDER_ID_FOR_DELIVERY: &str = "SELECT order_id FROM deliveries WHERE id = ?1";

const GET_DELIVERY: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
        status_since, history, version
    FROM deliveries WHERE id = ?1";

const GET_DELIVERY_BY_ORDER: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
        status_since, history, version
    FROM deliveries WHERE order_id = ?1";

/// ?1 the delivery, ?2 the version it must still have; the rest is what changes.
const UPDATE_DELIVERY: &str = "
    UPDATE deliveries
    SET status = ?3, carrier = ?4, carrier_tracking_number = ?5, status_since = ?6,
        history = ?7, version = version + 1
    WHERE id = ?1 AND version = ?2";

/// One more delivery on day ?1 if it holds fewer than ?2; no row changes otherwise.
const BOOK_DAY: &str = "
    INSERT INTO delivery_days (day, booked) VALUES (?1, 1)
    ON CONFLICT (day) DO UPDATE SET booked = delivery_days.booked + 1
    WHERE delivery_days.booked < ?2";

/// A cancelled delivery frees its place on day ?1.
const FREE_DAY: &str = "
    UPDATE delivery_days SET booked = booked - 1 WHERE day = ?1 AND booked > 0";

/// ?1 a status or NULL, ?2 a date or NULL, ?3 the cursor (the nil UUID for the first
/// page), ?4 the number of rows.
const LIST_DELIVERIES: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
        status_since, history, version
    FROM deliveries
    WHERE (?1 IS NULL OR status = ?1)
        AND (?2 IS NULL OR scheduled_date = ?2)
        AND id > ?3
    ORDER BY id LIMIT ?4";

/// Scheduled before day ?1 and neither delivered nor cancelled.
const COUNT_OVERDUE: &str = "
    SELECT count(*) FROM deliveries
    WHERE scheduled_date < ?1 AND status NOT IN ('delivered', 'cancelled')";

crate::shared::delivery_queries!();
