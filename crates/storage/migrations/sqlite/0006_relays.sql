-- Relays: the durable cursor of each process that follows the event log (the NATS
-- publisher, the events counter), the last position it has handed on, and which instance
-- holds it. A SQLite file serves one process, but the rules are those of PostgreSQL: a
-- relay is held under a lease, and may be taken when the lease expired or its holder's
-- instance row is gone (registering an instance deletes every other one's).
CREATE TABLE event_relays (
    name             TEXT NOT NULL PRIMARY KEY,
    position         INTEGER NOT NULL DEFAULT 0,
    holder           BLOB,
    lease_expires_at TEXT
) WITHOUT ROWID;
