//! The webhook store's SQL, one text for both backends (see [`crate::sql`]). What differs
//! (PostgreSQL's `FOR UPDATE SKIP LOCKED` when fanning out and claiming) stays in each
//! backend's module.

pub(crate) const INSERT_ENDPOINT: &str = "
    INSERT INTO webhook_endpoints
        (id, url, description, event_types, enabled, disabled_reason, secret, previous_secret,
         previous_secret_until, created_at, cursor, failing_since)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

pub(crate) const GET_ENDPOINT: &str = "
    SELECT id, url, description, event_types, enabled, disabled_reason, secret, previous_secret,
        previous_secret_until, created_at, cursor, failing_since
    FROM webhook_endpoints WHERE id = $1";

/// $1 the id after which the page starts (the nil UUID first), $2 the number of rows.
pub(crate) const LIST_ENDPOINTS: &str = "
    SELECT id, url, description, event_types, enabled, disabled_reason, secret, previous_secret,
        previous_secret_until, created_at, cursor, failing_since
    FROM webhook_endpoints WHERE id > $1 ORDER BY id LIMIT $2";

/// $1..$4 the new URL, description, event types and enabled flag, each NULL to keep it; $5
/// the endpoint. Enabling clears the disabled reason and the failure streak.
pub(crate) const UPDATE_ENDPOINT: &str = "
    UPDATE webhook_endpoints SET
        url = COALESCE(CAST($1 AS TEXT), url),
        description = COALESCE(CAST($2 AS TEXT), description),
        event_types = COALESCE(CAST($3 AS TEXT), event_types),
        enabled = COALESCE(CAST($4 AS BOOLEAN), enabled),
        disabled_reason = CASE WHEN CAST($4 AS BOOLEAN) THEN NULL ELSE disabled_reason END,
        failing_since = CASE WHEN CAST($4 AS BOOLEAN) THEN NULL ELSE failing_since END
    WHERE id = $5";

/// Deliveries and their attempts go with it (`ON DELETE CASCADE`).
pub(crate) const DELETE_ENDPOINT: &str = "DELETE FROM webhook_endpoints WHERE id = $1";

/// $1 when the previous secret stops signing, $2 the new secret, $3 the endpoint.
pub(crate) const ROTATE_SECRET: &str = "
    UPDATE webhook_endpoints
    SET previous_secret = secret, previous_secret_until = $1, secret = $2
    WHERE id = $3";

/// $1 the reason, $2 the endpoint.
pub(crate) const DISABLE_ENDPOINT: &str = "
    UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $1 WHERE id = $2";

/// $1 the log's last position.
pub(crate) const ENDPOINTS_BEHIND: &str = "
    SELECT id, url, description, event_types, enabled, disabled_reason, secret, previous_secret,
        previous_secret_until, created_at, cursor, failing_since
    FROM webhook_endpoints WHERE enabled AND cursor < $1";

/// Moves the cursor from $3 to $1 for endpoint $2 if it is enabled and still at $3: of two
/// fan-outs of the same events, one moves it.
pub(crate) const ADVANCE_CURSOR: &str = "
    UPDATE webhook_endpoints SET cursor = $1 WHERE id = $2 AND cursor = $3 AND enabled";

/// A delivery due at its creation ($6).
pub(crate) const INSERT_DELIVERY: &str = "
    INSERT INTO webhook_deliveries
        (id, endpoint_id, event_id, event_type, body, attempts, next_attempt_at, state, created_at)
    VALUES ($1, $2, $3, $4, $5, 0, $6, 'pending', $6)";

pub(crate) const INSERT_ATTEMPT: &str = "
    INSERT INTO webhook_attempts
        (id, delivery_id, endpoint_id, event_id, event_type, attempted_at, status_code, error,
         duration_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// $1 the new state, $2 the next attempt time, $3 the delivery. Releases the claim. A
/// delivery already finished (another instance's attempt after its claim ran out) stays
/// as it is: a late failure never sends a delivered event again.
pub(crate) const FINISH_ATTEMPT: &str = "
    UPDATE webhook_deliveries
    SET attempts = attempts + 1, state = $1, next_attempt_at = $2,
        claimed_by = NULL, claimed_until = NULL
    WHERE id = $3 AND state = 'pending'";

/// $1 the creation time before which finished deliveries go, $2 the most deleted at once.
/// Their attempts go with them (`ON DELETE CASCADE`); pending deliveries stay.
pub(crate) const PURGE_FINISHED: &str = "
    DELETE FROM webhook_deliveries WHERE id IN (
        SELECT id FROM webhook_deliveries
        WHERE state <> 'pending' AND created_at < $1
        LIMIT $2)";

/// $1 the endpoint. Writes only an endpoint that was failing: a success of a healthy
/// endpoint (nearly every attempt) leaves its row alone, so instances do not queue on it.
pub(crate) const CLEAR_FAILING: &str =
    "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL";

/// $1 the failed attempt's time, $2 the endpoint.
pub(crate) const START_FAILING: &str =
    "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2";

/// $1 the endpoint.
pub(crate) const FAILING_SINCE: &str = "SELECT failing_since FROM webhook_endpoints WHERE id = $1";

/// $1 the endpoint, $2 the attempt before which the page starts (the largest UUID first),
/// $3 the number of rows; newest first.
pub(crate) const LIST_ATTEMPTS: &str = "
    SELECT id, delivery_id, endpoint_id, event_id, event_type, attempted_at, status_code, error,
        duration_ms
    FROM webhook_attempts WHERE endpoint_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3";

pub(crate) const PENDING_AGES: &str = "
    SELECT endpoint_id, count(*) AS pending, min(created_at) AS oldest
    FROM webhook_deliveries WHERE state = 'pending' GROUP BY endpoint_id";

/// The claim, with the backend's row locking clause put in place of `{lock}`. $1 the
/// claimer, $2 the claim's end, $3 now, $4 the number of rows.
pub(crate) fn claim_due(lock: &str) -> String {
    format!(
        "UPDATE webhook_deliveries SET claimed_by = $1, claimed_until = $2
         WHERE id IN (
            SELECT d.id FROM webhook_deliveries d
            JOIN webhook_endpoints e ON e.id = d.endpoint_id
            WHERE d.state = 'pending' AND d.next_attempt_at <= $3
              AND (d.claimed_until IS NULL OR d.claimed_until < $3) AND e.enabled
            ORDER BY d.next_attempt_at, d.id LIMIT $4 {lock})
         RETURNING id, endpoint_id, event_id, event_type, body, attempts, created_at"
    )
}
