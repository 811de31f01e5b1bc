-- Relays: the durable cursor of each process that follows the event log (the NATS
-- publisher, the events counter), the last position it has handed on, and which instance
-- holds it. One instance at a time holds a relay: it claims the row with a lease (on the
-- database's clock) and renews it while it works; a lease that expired, or whose holder's
-- instance row is gone (it stopped cleanly, or was reaped), may be taken by another.
CREATE TABLE event_relays (
    name             text PRIMARY KEY,
    position         bigint NOT NULL DEFAULT 0,
    holder           uuid,
    lease_expires_at timestamptz
);
