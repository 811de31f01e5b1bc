-- The bookstore schema for PostgreSQL.
--
-- Conventions: ids are UUIDs; timestamps are TIMESTAMPTZ; money is integer minor units with
-- an ISO 4217 code; every integer is BIGINT (the application reads them as i64).

-- The catalogue. The three *_key columns are written by the application (never by SQL): they
-- hold the forms the listing filters compare (bookstore_inventory::author_filter_key and
-- text_filter_key), so that filtering is exactly the same as in the in-memory store,
-- whatever the database's collation and case-folding rules.
-- ISBNs compare byte-wise (collation "C"): the paging cursor needs one fixed order, the
-- same as the application's.
CREATE TABLE books (
    isbn            TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    title           TEXT   NOT NULL,
    author          TEXT   NOT NULL,
    author_key      TEXT   NOT NULL,
    title_text_key  TEXT   NOT NULL,
    author_text_key TEXT   NOT NULL,
    price_cents     BIGINT NOT NULL CHECK (price_cents >= 0),
    currency        TEXT   NOT NULL,
    stock           BIGINT NOT NULL CHECK (stock BETWEEN 0 AND 4294967295)
);

CREATE INDEX books_by_author_key ON books (author_key, isbn);

-- The reservation journal: stock taken for an order that is not yet recorded. `lines` holds
-- the merged lines as "isbn:quantity" separated by commas, in ISBN order.
CREATE TABLE reservations (
    id         UUID        NOT NULL PRIMARY KEY,
    lines      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX reservations_by_created_at ON reservations (created_at);

-- Orders. `seq` is the insertion order, the cursor of the per-owner listing. An order's
-- lines are a record that never changes and is always read whole, so they are kept in the
-- order's row as a JSON array of {"isbn", "title", "quantity", "unit_price_cents",
-- "currency"}: recording an order is one INSERT and reading one is one row.
CREATE TABLE orders (
    seq            BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             UUID        NOT NULL UNIQUE,
    owner          TEXT        NOT NULL,
    status         TEXT        NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    lines          JSONB       NOT NULL,
    total_cents    BIGINT      NOT NULL CHECK (total_cents >= 0),
    currency       TEXT        NOT NULL,
    transaction_id UUID        NOT NULL,
    payment_status TEXT        NOT NULL CHECK (payment_status IN ('captured', 'refunded')),
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX orders_by_owner ON orders (owner, seq);

-- Deliveries: at most one per order.
CREATE TABLE deliveries (
    id              UUID        NOT NULL PRIMARY KEY,
    order_id        UUID        NOT NULL UNIQUE,
    status          TEXT        NOT NULL
        CHECK (status IN ('scheduled', 'dispatched', 'delivered', 'cancelled')),
    recipient       TEXT        NOT NULL,
    line1           TEXT        NOT NULL,
    line2           TEXT,
    city            TEXT        NOT NULL,
    postal_code     TEXT        NOT NULL,
    country         TEXT        NOT NULL,
    scheduled_date  DATE        NOT NULL,
    tracking_number TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);

-- The simulated card processor's ledger: at most one capture per reference (order id).
CREATE TABLE payments (
    transaction_id UUID        NOT NULL PRIMARY KEY,
    reference      UUID        NOT NULL UNIQUE,
    amount_cents   BIGINT      NOT NULL CHECK (amount_cents >= 0),
    currency       TEXT        NOT NULL,
    status         TEXT        NOT NULL CHECK (status IN ('captured', 'refunded')),
    created_at     TIMESTAMPTZ NOT NULL
);

-- Idempotency keys, scoped to an owner. A record is in flight (no response yet) or finished
-- (the response to replay); it may be replaced or purged once `expires_at` has passed.
CREATE TABLE idempotency_keys (
    owner        TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    fingerprint  BYTEA       NOT NULL,
    state        TEXT        NOT NULL CHECK (state IN ('in_flight', 'finished')),
    expires_at   TIMESTAMPTZ NOT NULL,
    status       BIGINT,
    content_type TEXT,
    location     TEXT,
    body         BYTEA,
    PRIMARY KEY (owner, key)
);

CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
