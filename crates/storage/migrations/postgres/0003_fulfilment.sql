-- Fulfilment: the whole delivery life cycle, the carrier's updates, and deliveries per day.
--
-- `carrier` and `carrier_tracking_number` are set by carrier updates, `status_since` is
-- when the update that set the status happened, `history` every update (a JSON array in
-- `occurred_at` order; always read whole, like an order's lines) and `version` is bumped by
-- every change, for optimistic updates.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('scheduled', 'dispatched', 'in_transit', 'out_for_delivery',
                      'attempted_delivery', 'delivered', 'failed', 'returned_to_sender',
                      'cancelled'));
ALTER TABLE deliveries
    ADD COLUMN carrier                 TEXT,
    ADD COLUMN carrier_tracking_number TEXT,
    ADD COLUMN status_since            TIMESTAMPTZ,
    ADD COLUMN history                 TEXT   NOT NULL DEFAULT '[]',
    ADD COLUMN version                 BIGINT NOT NULL DEFAULT 0;

-- The pick list of a day, and a status's work queue.
CREATE INDEX deliveries_by_date ON deliveries (scheduled_date, id);
CREATE INDEX deliveries_by_status ON deliveries (status, id);

-- Deliveries per day that count towards its capacity (all but cancelled ones), kept in
-- the same transaction as the deliveries themselves; a booking is one conditional upsert
-- of the day's row, so concurrent bookings on any instance queue on that row.
CREATE TABLE delivery_days (
    day    DATE   NOT NULL PRIMARY KEY,
    booked BIGINT NOT NULL CHECK (booked >= 0)
);

INSERT INTO delivery_days (day, booked)
SELECT scheduled_date, count(*) FROM deliveries
WHERE status <> 'cancelled'
GROUP BY scheduled_date;
