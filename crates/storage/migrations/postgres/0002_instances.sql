-- Instances and their leases: which process made each unsettled journal record and
-- idempotency claim, so that the work of a stopped process is settled as soon as its lease
-- has expired, and never the work of a live one.

-- One row per running process. A process renews `expires_at` while it runs (using the
-- database's clock, so instances need not agree on the time) and deletes its row when it
-- stops cleanly; a row past `expires_at` belongs to a process that stopped renewing, and is
-- deleted by whichever instance notices first. Recording an order locks the row of the
-- process that records it (FOR KEY SHARE), so deleting a row waits for the orders being recorded
-- under it, and no order is recorded under a deleted row.
CREATE TABLE instances (
    id         UUID        NOT NULL PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- The process that journaled the reservation (NULL for records made before leases existed;
-- those are settled by age alone).
ALTER TABLE reservations ADD COLUMN instance_id UUID;

-- The return journal: the stock of a cancelled order, to be given back exactly once.
-- `lines` as in `reservations`.
CREATE TABLE stock_returns (
    id          UUID        NOT NULL PRIMARY KEY,
    lines       TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    instance_id UUID
);

CREATE INDEX stock_returns_by_created_at ON stock_returns (created_at);

-- The process whose request holds an in-flight claim.
ALTER TABLE idempotency_keys ADD COLUMN instance_id UUID;
