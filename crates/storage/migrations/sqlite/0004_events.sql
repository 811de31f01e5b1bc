-- Events: the outbox every state change writes to in its own transaction (see
-- `crate::events`). `position` is the one order of the log: SQLite has one writer, so the
-- order of recording is the order of commit and the position (the rowid: the highest plus
-- one) is given at once; the purge never deletes the newest event, so no position is given
-- twice, without AUTOINCREMENT's extra write per insert. The purge goes by position, so no
-- index on the time is kept. `data` is the resource's JSON text, kept byte for byte.
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,
    id          BLOB NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    data        TEXT NOT NULL
);

CREATE INDEX events_by_resource ON events (resource_id, position);
CREATE INDEX events_by_type ON events (type, position);

-- The last sequence number of each resource's events, kept when the events are purged.
CREATE TABLE event_sequences (
    resource_id TEXT NOT NULL PRIMARY KEY,
    last        INTEGER NOT NULL
) WITHOUT ROWID;
