-- Webhooks (see `crate::events::webhooks`): the endpoints, one delivery per endpoint and
-- event (or redelivery), and every attempt made. `cursor` is the event log position up to
-- which events were fanned out to the endpoint. Secrets are kept in clear: they sign.
CREATE TABLE webhook_endpoints (
    id                    BLOB NOT NULL PRIMARY KEY,
    url                   TEXT NOT NULL,
    description           TEXT NOT NULL,
    event_types           TEXT NOT NULL,
    enabled               INTEGER NOT NULL,
    disabled_reason       TEXT,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until TEXT,
    created_at            TEXT NOT NULL,
    cursor                INTEGER NOT NULL,
    failing_since         TEXT
) WITHOUT ROWID;

CREATE TABLE webhook_deliveries (
    id              BLOB NOT NULL PRIMARY KEY,
    endpoint_id     BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        BLOB NOT NULL,
    event_type      TEXT NOT NULL,
    body            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    state           TEXT NOT NULL,
    claimed_by      BLOB,
    claimed_until   TEXT,
    created_at      TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id);

CREATE TABLE webhook_attempts (
    id           BLOB NOT NULL PRIMARY KEY,
    delivery_id  BLOB NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id  BLOB NOT NULL,
    event_id     BLOB NOT NULL,
    event_type   TEXT NOT NULL,
    attempted_at TEXT NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint_id, id);
