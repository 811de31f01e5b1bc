-- The bookstore schema for SQLite.
--
-- Conventions: ids are UUIDs stored as 16-byte BLOBs; timestamps are UTC text in one fixed
-- width (YYYY-MM-DDTHH:MM:SS.ffffffZ), so they compare correctly as text; money is integer
-- minor units with an ISO 4217 code; dates are YYYY-MM-DD.

-- The catalogue. The three *_key columns are written by the application (never by SQL): they
-- hold the forms the listing filters compare (bookstore_inventory::author_filter_key and
-- text_filter_key), because SQLite's lower() only folds ASCII.
CREATE TABLE books (
    isbn            TEXT    NOT NULL PRIMARY KEY,
    title           TEXT    NOT NULL,
    author          TEXT    NOT NULL,
    author_key      TEXT    NOT NULL,
    title_text_key  TEXT    NOT NULL,
    author_text_key TEXT    NOT NULL,
    price_cents     INTEGER NOT NULL CHECK (price_cents >= 0),
    currency        TEXT    NOT NULL,
    stock           INTEGER NOT NULL CHECK (stock BETWEEN 0 AND 4294967295)
) WITHOUT ROWID;

CREATE INDEX books_by_author_key ON books (author_key, isbn);

-- The reservation journal: stock taken for an order that is not yet recorded. `lines` holds
-- the merged lines as "isbn:quantity" separated by commas, in ISBN order.
CREATE TABLE reservations (
    id         BLOB NOT NULL PRIMARY KEY,
    lines      TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX reservations_by_created_at ON reservations (created_at);

-- Orders. `seq` is the insertion order, the cursor of the per-owner listing. An order's
-- lines are a record that never changes and is always read whole, so they are kept in the
-- order's row as a JSON array of {"isbn", "title", "quantity", "unit_price_cents",
-- "currency"}: recording an order is one INSERT and reading one is one row.
CREATE TABLE orders (
    seq            INTEGER PRIMARY KEY,
    id             BLOB    NOT NULL UNIQUE,
    owner          TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    lines          TEXT    NOT NULL CHECK (json_valid(lines)),
    total_cents    INTEGER NOT NULL CHECK (total_cents >= 0),
    currency       TEXT    NOT NULL,
    transaction_id BLOB    NOT NULL,
    payment_status TEXT    NOT NULL CHECK (payment_status IN ('captured', 'refunded')),
    created_at     TEXT    NOT NULL
);

CREATE INDEX orders_by_owner ON orders (owner, seq);

-- Deliveries: at most one per order.
CREATE TABLE deliveries (
    id              BLOB NOT NULL PRIMARY KEY,
    order_id        BLOB NOT NULL UNIQUE,
    status          TEXT NOT NULL
        CHECK (status IN ('scheduled', 'dispatched', 'delivered', 'cancelled')),
    recipient       TEXT NOT NULL,
    line1           TEXT NOT NULL,
    line2           TEXT,
    city            TEXT NOT NULL,
    postal_code     TEXT NOT NULL,
    country         TEXT NOT NULL,
    scheduled_date  TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

-- The simulated card processor's ledger: at most one capture per reference (order id).
CREATE TABLE payments (
    transaction_id BLOB    NOT NULL PRIMARY KEY,
    reference      BLOB    NOT NULL UNIQUE,
    amount_cents   INTEGER NOT NULL CHECK (amount_cents >= 0),
    currency       TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('captured', 'refunded')),
    created_at     TEXT    NOT NULL
);

-- Idempotency keys, scoped to an owner. A record is in flight (no response yet) or finished
-- (the response to replay); it may be replaced or purged once `expires_at` has passed.
CREATE TABLE idempotency_keys (
    owner         TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   BLOB NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('in_flight', 'finished')),
    expires_at    TEXT NOT NULL,
    status        INTEGER,
    content_type  TEXT,
    location      TEXT,
    body          BLOB,
    PRIMARY KEY (owner, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
