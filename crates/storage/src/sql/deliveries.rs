//! The delivery store's SQL, one text for both backends (see [`crate::sql`]).

/// A clash on the id or on the order (one delivery per order) inserts nothing.
pub(crate) const INSERT_DELIVERY: &str = "
    INSERT INTO deliveries
        (id, order_id, status, recipient, line1, line2, city, postal_code, country,
         scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
         status_since, history)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
    ON CONFLICT DO NOTHING";

pub(crate) const DELIVERY_ID_FOR_ORDER: &str = "SELECT id FROM deliveries WHERE order_id = $1";

pub(crate) const ORDER_ID_FOR_DELIVERY: &str = "SELECT order_id FROM deliveries WHERE id = $1";

pub(crate) const GET_DELIVERY: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
        status_since, history, version
    FROM deliveries WHERE id = $1";

pub(crate) const GET_DELIVERY_BY_ORDER: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
        status_since, history, version
    FROM deliveries WHERE order_id = $1";

/// $1..$5 what changes (status, carrier, carrier tracking number, status since, history),
/// $6 the delivery, $7 the version it must still have.
pub(crate) const UPDATE_DELIVERY: &str = "
    UPDATE deliveries
    SET status = $1, carrier = $2, carrier_tracking_number = $3, status_since = $4,
        history = $5, version = version + 1
    WHERE id = $6 AND version = $7";

/// One more delivery on day $1 if it holds fewer than $2; no row changes otherwise.
pub(crate) const BOOK_DAY: &str = "
    INSERT INTO delivery_days (day, booked) VALUES ($1, 1)
    ON CONFLICT (day) DO UPDATE SET booked = delivery_days.booked + 1
    WHERE delivery_days.booked < $2";

/// A cancelled delivery frees its place on day $1.
pub(crate) const FREE_DAY: &str = "
    UPDATE delivery_days SET booked = booked - 1 WHERE day = $1 AND booked > 0";

/// $1 a status or NULL, $2 a date or NULL, $3 the cursor (the nil UUID for the first
/// page), $4 the number of rows. The casts give PostgreSQL the parameters' types; on
/// SQLite they only test for NULL.
pub(crate) const LIST_DELIVERIES: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
        status_since, history, version
    FROM deliveries
    WHERE (CAST($1 AS TEXT) IS NULL OR status = $1)
        AND (CAST($2 AS DATE) IS NULL OR scheduled_date = $2)
        AND id > $3
    ORDER BY id LIMIT $4";

/// Scheduled before day $1 and neither delivered nor cancelled.
pub(crate) const COUNT_OVERDUE: &str = "
    SELECT count(*) FROM deliveries
    WHERE scheduled_date < $1 AND status NOT IN ('delivered', 'cancelled')";
