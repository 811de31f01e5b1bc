//! The SQL of the idempotency records, one text for both backends (see [`crate::sql`]).

/// A key claimed before (by any instance) inserts nothing. $1 owner, $2 key, $3
/// fingerprint, $4 in flight until, $5 the instance whose request holds the claim.
pub(crate) const INSERT_CLAIM: &str = "
    INSERT INTO idempotency_keys (owner, key, fingerprint, state, expires_at, instance_id)
    VALUES ($1, $2, $3, 'in_flight', $4, $5)
    ON CONFLICT (owner, key) DO NOTHING";

/// Resumes the in-flight claim of the same request ($5 the fingerprint) whose request died:
/// its instance has stopped (it has no row), or the claim is older than the in-flight
/// timeout ($6 now). $1 in flight until, $2 the resuming instance, $3 owner, $4 key.
pub(crate) const RESUME_CLAIM: &str = "
    UPDATE idempotency_keys
    SET expires_at = $1, instance_id = $2
    WHERE owner = $3 AND key = $4 AND fingerprint = $5 AND state = 'in_flight'
        AND (expires_at <= $6
            OR (instance_id IS NOT NULL
                AND NOT EXISTS (
                    SELECT 1 FROM instances WHERE instances.id = idempotency_keys.instance_id)))";

/// Takes over an expired record (a finished one past its retention, or an abandoned claim);
/// of concurrent takeovers, one updates the row. $1 fingerprint, $2 in flight until, $3 the
/// instance, $4 owner, $5 key, $6 now.
pub(crate) const TAKE_OVER_CLAIM: &str = "
    UPDATE idempotency_keys
    SET fingerprint = $1, state = 'in_flight', expires_at = $2, instance_id = $3,
        status = NULL, content_type = NULL, location = NULL, body = NULL
    WHERE owner = $4 AND key = $5 AND expires_at <= $6";

/// $1 owner, $2 key.
pub(crate) const READ_CLAIM: &str = "
    SELECT fingerprint, state, status, content_type, location, body
    FROM idempotency_keys WHERE owner = $1 AND key = $2";

/// $1 expiry, $2 status, $3 content type, $4 location, $5 body, $6 owner, $7 key.
pub(crate) const COMPLETE_CLAIM: &str = "
    UPDATE idempotency_keys
    SET state = 'finished', expires_at = $1,
        status = $2, content_type = $3, location = $4, body = $5
    WHERE owner = $6 AND key = $7";

/// $1 owner, $2 key.
pub(crate) const RELEASE_CLAIM: &str = "DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2";

/// $1 now.
pub(crate) const PURGE_EXPIRED: &str = "DELETE FROM idempotency_keys WHERE expires_at <= $1";
