//! Idempotency records in SQLite.

/// A key claimed before (by any instance) inserts nothing.
/// ?5 the instance whose request holds the claim.
const INSERT_CLAIM: &str = "
    INSERT INTO idempotency_keys (owner, key, fingerprint, state, expires_at, instance_id)
    VALUES (?1, ?2, ?3, 'in_flight', ?4, ?5)
    ON CONFLICT (owner, key) DO NOTHING";

/// Resumes the in-flight claim of the same request (?3 the fingerprint) whose request died:
/// its instance has stopped (it has no row), or the claim is older than the in-flight
/// timeout (?5 now). ?6 the resuming instance.
const RESUME_CLAIM: &str = "
    UPDATE idempotency_keys
    SET expires_at = ?4, instance_id = ?6
    WHERE owner = ?1 AND key = ?2 AND fingerprint = ?3 AND state = 'in_flight'
        AND (expires_at <= ?5
            OR (instance_id IS NOT NULL
                AND NOT EXISTS (
                    SELECT 1 FROM instances WHERE instances.id = idempotency_keys.instance_id)))";

/// Takes over an expired record (a finished one past its retention, or an abandoned claim);
/// of concurrent takeovers, one updates the row.
const TAKE_OVER_CLAIM: &str = "
    UPDATE idempotency_keys
    SET fingerprint = ?3, state = 'in_flight', expires_at = ?4, instance_id = ?6,
        status = NULL, content_type = NULL, location = NULL, body = NULL
    WHERE owner = ?1 AND key = ?2 AND expires_at <= ?5";

const READ_CLAIM: &str = "
    SELECT fingerprint, state, status, content_type, location, body
    FROM idempotency_keys WHERE owner = ?1 AND key = ?2";

const COMPLETE_CLAIM: &str = "
    UPDATE idempotency_keys
    SET state = 'finished', expires_at = ?3,
        status = ?4, content_type = ?5, location = ?6, body = ?7
    WHERE owner = ?1 AND key = ?2";

const RELEASE_CLAIM: &str = "DELETE FROM idempotency_keys WHERE owner = ?1 AND key = ?2";

const PURGE_EXPIRED: &str = "DELETE FROM idempotency_keys WHERE expires_at <= ?1";

crate::shared::idempotency_queries!();
