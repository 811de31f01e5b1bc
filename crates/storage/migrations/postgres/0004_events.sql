-- Events: the outbox every state change writes to in its own transaction (see
-- `crate::events`). Concurrent transactions commit in any order, so an event is recorded
-- without a `position`; the sequencer numbers the committed ones, one instance at a time,
-- and the feed shows only numbered events. `data` is `json`, not `jsonb`, so the resource's
-- JSON text is kept byte for byte.
CREATE TABLE events (
    id          uuid PRIMARY KEY,
    position    bigint UNIQUE,
    type        text NOT NULL,
    resource_id text NOT NULL,
    sequence    bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    data        json NOT NULL
);

CREATE INDEX events_unsequenced ON events (id) WHERE position IS NULL;
CREATE INDEX events_by_resource ON events (resource_id, position);
CREATE INDEX events_by_type ON events (type, position);
CREATE INDEX events_by_age ON events (created_at);

-- The last sequence number of each resource's events, kept when the events are purged.
CREATE TABLE event_sequences (
    resource_id text PRIMARY KEY,
    last        bigint NOT NULL
);
