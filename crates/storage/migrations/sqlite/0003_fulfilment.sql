-- Fulfilment: the whole delivery life cycle, the carrier's updates, and deliveries per day.
--
-- SQLite cannot change a CHECK constraint in place, so `deliveries` is rebuilt with the
-- new statuses and the tracking columns: `carrier` and `carrier_tracking_number` (set by
-- carrier updates), `status_since` (when the update that set the status happened),
-- `history` (every update, a JSON array in `occurred_at` order; always read whole, like an
-- order's lines) and `version` (bumped by every change, for optimistic updates).
CREATE TABLE deliveries_v3 (
    id                      BLOB NOT NULL PRIMARY KEY,
    order_id                BLOB NOT NULL UNIQUE,
    status                  TEXT NOT NULL
        CHECK (status IN ('scheduled', 'dispatched', 'in_transit', 'out_for_delivery',
                          'attempted_delivery', 'delivered', 'failed', 'returned_to_sender',
                          'cancelled')),
    recipient               TEXT NOT NULL,
    line1                   TEXT NOT NULL,
    line2                   TEXT,
    city                    TEXT NOT NULL,
    postal_code             TEXT NOT NULL,
    country                 TEXT NOT NULL,
    scheduled_date          TEXT NOT NULL,
    tracking_number         TEXT NOT NULL,
    created_at              TEXT NOT NULL,
    carrier                 TEXT,
    carrier_tracking_number TEXT,
    status_since            TEXT,
    history                 TEXT NOT NULL DEFAULT '[]',
    version                 INTEGER NOT NULL DEFAULT 0
);

INSERT INTO deliveries_v3
    (id, order_id, status, recipient, line1, line2, city, postal_code, country,
     scheduled_date, tracking_number, created_at)
SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
       scheduled_date, tracking_number, created_at
FROM deliveries;

DROP TABLE deliveries;

ALTER TABLE deliveries_v3 RENAME TO deliveries;

-- The pick list of a day, and a status's work queue.
CREATE INDEX deliveries_by_date ON deliveries (scheduled_date, id);
CREATE INDEX deliveries_by_status ON deliveries (status, id);

-- Deliveries per day that count towards its capacity (all but cancelled ones), kept in
-- the same transaction as the deliveries themselves.
CREATE TABLE delivery_days (
    day    TEXT    NOT NULL PRIMARY KEY,
    booked INTEGER NOT NULL CHECK (booked >= 0)
);

INSERT INTO delivery_days (day, booked)
SELECT scheduled_date, count(*) FROM deliveries
WHERE status <> 'cancelled'
GROUP BY scheduled_date;
