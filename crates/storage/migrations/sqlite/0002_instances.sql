-- Instances and their leases: which process made each unsettled journal record and
-- idempotency claim, so that the work of a stopped process is settled as soon as it is known
-- to have stopped, and never the work of a live one.
--
-- A SQLite file serves one process at a time (the process holds a lock on `PATH.lock`), so
-- at start-up every other row here belongs to a process that has stopped, and is deleted.

CREATE TABLE instances (
    id         BLOB NOT NULL PRIMARY KEY,
    started_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- The process that journaled the reservation (NULL for records made before leases existed;
-- those are settled by age alone).
ALTER TABLE reservations ADD COLUMN instance_id BLOB;

-- The return journal: the stock of a cancelled order, to be given back exactly once.
-- `lines` as in `reservations`.
CREATE TABLE stock_returns (
    id          BLOB NOT NULL PRIMARY KEY,
    lines       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    instance_id BLOB
);

CREATE INDEX stock_returns_by_created_at ON stock_returns (created_at);

-- The process whose request holds an in-flight claim.
ALTER TABLE idempotency_keys ADD COLUMN instance_id BLOB;
