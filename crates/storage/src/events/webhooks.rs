//! Webhook endpoints and their deliveries: what the dispatcher reads and writes
//! ([`WebhookStore`]), and its in-memory implementation ([`InMemoryWebhookStore`]).
//!
//! # The model
//!
//! - An **endpoint** is a URL, the event type patterns it wants, a signing secret (and,
//!   for 24 h after a rotation, the previous one), and a **fan-out cursor**: the log
//!   position up to which events were considered for it. A new endpoint starts at the
//!   log's last position, so it gets only events recorded after its creation.
//! - **Fan-out** turns the events after an endpoint's cursor that match its patterns into
//!   **deliveries** and moves the cursor, in one transaction that holds the endpoint's row
//!   and checks the cursor did not move ([`WebhookStore::fan_out`]): two instances never
//!   create the same event's delivery twice.
//! - A delivery is one event for one endpoint: its body (fixed at fan-out, so every retry
//!   sends the same bytes), its attempt count, its next attempt time and its state. It is
//!   **claimed** with a lease before it is sent ([`WebhookStore::claim_due`]); a claim whose
//!   lease ran out (its instance died) is claimable again.
//! - Every attempt is kept (time, status code or transport error, duration): the delivery
//!   log of the API.
//!
//! Secrets are kept in the database in clear (they sign, so they must be read back); they
//! are [`WebhookSecret`]s in memory, whose `Debug` shows nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Event, EventTypePattern};

/// A signing secret, `whsec_` and the base64 of its key bytes. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// The secret written `whsec_…`, as stored.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The secret's text, to sign with or to show once to the admin who created it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// A webhook endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// A UUID v7.
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// What the admin wrote about it.
    pub description: String,
    /// The event types it receives (none: nothing).
    pub event_types: Vec<EventTypePattern>,
    /// Whether deliveries are made to it.
    pub enabled: bool,
    /// Why it was disabled by the dispatcher (`410 Gone`, failing for days); `None` when
    /// enabled or disabled by an admin.
    pub disabled_reason: Option<String>,
    /// The secret it is signed with.
    pub secret: WebhookSecret,
    /// The secret before the last rotation and when it stops signing.
    pub previous_secret: Option<(WebhookSecret, DateTime<Utc>)>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The log position up to which events were considered for it.
    pub cursor: u64,
    /// Since when every attempt to it has failed (`None` after a success).
    pub failing_since: Option<DateTime<Utc>>,
}

impl WebhookEndpoint {
    /// The secrets that sign at `now`: the current one, and the previous one until it
    /// expires.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&WebhookSecret> {
        let mut secrets = vec![&self.secret];
        if let Some((previous, until)) = &self.previous_secret
            && *until > now
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// What an admin may change on an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChanges {
    /// A new URL.
    pub url: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// New event type patterns.
    pub event_types: Option<Vec<EventTypePattern>>,
    /// Enable (which clears the disabled reason and the failure streak) or disable.
    pub enabled: Option<bool>,
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt was answered 2xx.
    Succeeded,
    /// Every attempt of the schedule failed, or its endpoint answered 410.
    Failed,
}

impl DeliveryState {
    /// The name stored and shown: `pending`, `succeeded`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Succeeded,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

/// A delivery to create: one event (or the test event) for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// A fresh UUID v7.
    pub id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The event's id: the `webhook-id` header, the same on every attempt.
    pub event_id: Uuid,
    /// The event's type (`webhook.test` for the test event).
    pub event_type: String,
    /// The exact body sent, `{"type":…,"timestamp":…,"data":…}`.
    pub body: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl NewDelivery {
    /// The delivery of `event` to `endpoint_id`, created at `now`.
    pub fn of_event(endpoint_id: Uuid, event: &Event, now: DateTime<Utc>) -> Self {
        Self::new(
            endpoint_id,
            event.id,
            event.event_type.as_str(),
            event.created_at,
            &event.data,
            now,
        )
    }

    /// A delivery of the event `event_id` of type `event_type` with `data` (one JSON
    /// document), recorded at `at`.
    pub fn new(
        endpoint_id: Uuid,
        event_id: Uuid,
        event_type: &str,
        at: DateTime<Utc>,
        data: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            endpoint_id,
            event_id,
            event_type: event_type.to_owned(),
            body: body(event_type, at, data),
            created_at: now,
        }
    }
}

/// The Standard Webhooks body: `{"type":…,"timestamp":…,"data":…}`, `data` as it is.
pub fn body(event_type: &str, at: DateTime<Utc>, data: &str) -> String {
    let text = |value: &str| serde_json::Value::from(value).to_string();
    format!(
        "{{\"type\":{},\"timestamp\":{},\"data\":{}}}",
        text(event_type),
        text(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        data
    )
}

/// A delivery claimed for sending, with what sending needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub id: Uuid,
    /// The event id (`webhook-id`).
    pub event_id: Uuid,
    /// The event type.
    pub event_type: String,
    /// The body to send.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its endpoint as it is now.
    pub endpoint: WebhookEndpoint,
}

/// One attempt as kept in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// A UUID v7 (the log's order).
    pub id: Uuid,
    /// The delivery it was made for.
    pub delivery_id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The event id.
    pub event_id: Uuid,
    /// The event type.
    pub event_type: String,
    /// When the request started.
    pub attempted_at: DateTime<Utc>,
    /// The status the endpoint answered, if it answered.
    pub status_code: Option<u16>,
    /// What went wrong on the way when it did not answer (refused, timed out, …).
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// What an attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Delivered.
    Succeeded,
    /// Failed; try again at this time.
    RetryAt(DateTime<Utc>),
    /// Failed for good.
    Failed,
}

/// One page of the delivery log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptPage {
    /// The attempts.
    pub attempts: Vec<DeliveryAttempt>,
    /// Whether older ones remain.
    pub has_more: bool,
}

/// Deliveries by state, for one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingAge {
    /// How many deliveries are pending.
    pub pending: u64,
    /// When the oldest pending one was created.
    pub oldest: Option<DateTime<Utc>>,
}

/// The webhook store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the webhook store is unavailable: {0}")]
pub struct WebhooksUnavailable(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Webhook endpoints, their deliveries and the attempts made.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores a new endpoint.
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), WebhooksUnavailable>;

    /// The endpoint with this id.
    async fn endpoint(&self, id: Uuid) -> Result<Option<WebhookEndpoint>, WebhooksUnavailable>;

    /// Up to `limit` endpoints with ids after `after` (the nil UUID: from the first), in
    /// id order, and whether more follow.
    async fn list_endpoints(
        &self,
        after: Uuid,
        limit: usize,
    ) -> Result<(Vec<WebhookEndpoint>, bool), WebhooksUnavailable>;

    /// Applies `changes`; answers the endpoint as changed, `None` if there is none.
    /// Enabling clears the disabled reason and the failure streak.
    async fn update_endpoint(
        &self,
        id: Uuid,
        changes: &EndpointChanges,
    ) -> Result<Option<WebhookEndpoint>, WebhooksUnavailable>;

    /// Deletes the endpoint with its deliveries and attempts; whether there was one.
    async fn delete_endpoint(&self, id: Uuid) -> Result<bool, WebhooksUnavailable>;

    /// Makes `secret` the endpoint's secret, and the current one the previous, signing
    /// until `previous_until`.
    async fn rotate_secret(
        &self,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpoint>, WebhooksUnavailable>;

    /// Disables the endpoint, saying why.
    async fn disable_endpoint(&self, id: Uuid, reason: &str) -> Result<(), WebhooksUnavailable>;

    /// The enabled endpoints whose cursor is below `last_position`.
    async fn endpoints_behind(
        &self,
        last_position: u64,
    ) -> Result<Vec<WebhookEndpoint>, WebhooksUnavailable>;

    /// In one transaction: if the endpoint is enabled, not held by another fan-out, and its
    /// cursor is still `from`, creates `deliveries` and moves the cursor to `to`. Answers
    /// whether it did (`false`: another instance did or is doing it).
    async fn fan_out(
        &self,
        endpoint_id: Uuid,
        from: u64,
        to: u64,
        deliveries: &[NewDelivery],
    ) -> Result<bool, WebhooksUnavailable>;

    /// Creates deliveries outside fan-out (redelivery, the test event), due at once.
    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<(), WebhooksUnavailable>;

    /// Claims up to `limit` pending deliveries due at `now` (of enabled endpoints) whose
    /// claim is free or has run out, for `claimer` until `until`; oldest due first. Two
    /// claimers never get the same delivery while a claim runs.
    async fn claim_due(
        &self,
        claimer: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, WebhooksUnavailable>;

    /// Records an attempt, releases the claim and moves the delivery on as `outcome` says
    /// (a delivery no longer pending stays as it is); updates the endpoint's failure streak
    /// (cleared on success, started on a failure). Answers the endpoint's `failing_since`
    /// after the change.
    async fn record_attempt(
        &self,
        attempt: &DeliveryAttempt,
        outcome: AttemptOutcome,
    ) -> Result<Option<DateTime<Utc>>, WebhooksUnavailable> {
        let batch = [(attempt.clone(), outcome)];
        Ok(self.record_attempts(&batch).await?.pop().flatten())
    }

    /// [`WebhookStore::record_attempt`] for each of `attempts`, in order, in one
    /// transaction (one write): the dispatcher records the attempts that finished together
    /// at once. Answers each one's `failing_since` after its change.
    async fn record_attempts(
        &self,
        attempts: &[(DeliveryAttempt, AttemptOutcome)],
    ) -> Result<Vec<Option<DateTime<Utc>>>, WebhooksUnavailable>;

    /// Up to `limit` attempts of the endpoint older than attempt `before` (`None`: from
    /// the newest), newest first.
    async fn attempts(
        &self,
        endpoint_id: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<AttemptPage, WebhooksUnavailable>;

    /// Per endpoint with pending deliveries: how many, and the oldest's creation time.
    async fn pending_ages(&self) -> Result<HashMap<Uuid, PendingAge>, WebhooksUnavailable>;

    /// Deletes the finished (delivered or failed) deliveries created before `before`, with
    /// their attempts, in batches; answers how many deliveries. Pending deliveries stay,
    /// however old: a retry is never dropped.
    async fn purge_finished(&self, before: DateTime<Utc>) -> Result<u64, WebhooksUnavailable>;
}

/// Finished deliveries deleted per statement by [`WebhookStore::purge_finished`], so that
/// no purge holds the database for long.
pub const PURGE_BATCH: u64 = 5_000;

/// The webhook store of a process that keeps everything in memory.
///
/// Indexed so that the dispatcher's calls cost what they touch, not what the store has
/// accumulated: deliveries by id, each endpoint's pending deliveries by next attempt time,
/// attempts by endpoint.
#[derive(Debug, Default)]
pub struct InMemoryWebhookStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    endpoints: Vec<WebhookEndpoint>,
    deliveries: HashMap<Uuid, MemoryDelivery>,
    /// Per endpoint, `(next attempt time, delivery id)` of each of its pending deliveries
    /// (claimed or not), in the order they fall due.
    pending: HashMap<Uuid, BTreeSet<(DateTime<Utc>, Uuid)>>,
    /// Every attempt, by `(endpoint id, attempt id)`: attempt ids are UUID v7, so an
    /// endpoint's attempts are a range in time order.
    attempts: BTreeMap<(Uuid, Uuid), DeliveryAttempt>,
}

#[derive(Debug, Clone)]
struct MemoryDelivery {
    new: NewDelivery,
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
    state: DeliveryState,
    claim: Option<(Uuid, DateTime<Utc>)>,
}

impl InMemoryWebhookStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MemoryState {
    fn endpoint_mut(&mut self, id: Uuid) -> Option<&mut WebhookEndpoint> {
        self.endpoints.iter_mut().find(|endpoint| endpoint.id == id)
    }

    /// One attempt of [`WebhookStore::record_attempts`].
    fn record(
        &mut self,
        attempt: &DeliveryAttempt,
        outcome: AttemptOutcome,
    ) -> Option<DateTime<Utc>> {
        if let Some(delivery) = self.deliveries.get_mut(&attempt.delivery_id)
            && delivery.state == DeliveryState::Pending
        {
            let pending = self.pending.entry(delivery.new.endpoint_id).or_default();
            pending.remove(&(delivery.next_attempt_at, delivery.new.id));
            delivery.attempts += 1;
            delivery.claim = None;
            match outcome {
                AttemptOutcome::Succeeded => delivery.state = DeliveryState::Succeeded,
                AttemptOutcome::Failed => delivery.state = DeliveryState::Failed,
                AttemptOutcome::RetryAt(at) => {
                    delivery.next_attempt_at = at;
                    pending.insert((at, delivery.new.id));
                }
            }
        }
        self.attempts
            .insert((attempt.endpoint_id, attempt.id), attempt.clone());
        let endpoint = self.endpoint_mut(attempt.endpoint_id)?;
        endpoint.failing_since = match outcome {
            AttemptOutcome::Succeeded => None,
            _ => Some(endpoint.failing_since.unwrap_or(attempt.attempted_at)),
        };
        endpoint.failing_since
    }

    fn insert(&mut self, deliveries: &[NewDelivery]) {
        for delivery in deliveries {
            self.pending
                .entry(delivery.endpoint_id)
                .or_default()
                .insert((delivery.created_at, delivery.id));
            self.deliveries.insert(
                delivery.id,
                MemoryDelivery {
                    new: delivery.clone(),
                    attempts: 0,
                    next_attempt_at: delivery.created_at,
                    state: DeliveryState::Pending,
                    claim: None,
                },
            );
        }
    }
}

#[async_trait]
impl WebhookStore for InMemoryWebhookStore {
    async fn create_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), WebhooksUnavailable> {
        self.lock().endpoints.push(endpoint.clone());
        Ok(())
    }

    async fn endpoint(&self, id: Uuid) -> Result<Option<WebhookEndpoint>, WebhooksUnavailable> {
        Ok(self
            .lock()
            .endpoint_mut(id)
            .map(|endpoint| endpoint.clone()))
    }

    async fn list_endpoints(
        &self,
        after: Uuid,
        limit: usize,
    ) -> Result<(Vec<WebhookEndpoint>, bool), WebhooksUnavailable> {
        let state = self.lock();
        let mut endpoints: Vec<WebhookEndpoint> = state
            .endpoints
            .iter()
            .filter(|endpoint| endpoint.id > after)
            .cloned()
            .collect();
        endpoints.sort_by_key(|endpoint| endpoint.id);
        let has_more = endpoints.len() > limit;
        endpoints.truncate(limit);
        Ok((endpoints, has_more))
    }

    async fn update_endpoint(
        &self,
        id: Uuid,
        changes: &EndpointChanges,
    ) -> Result<Option<WebhookEndpoint>, WebhooksUnavailable> {
        let mut state = self.lock();
        let Some(endpoint) = state.endpoint_mut(id) else {
            return Ok(None);
        };
        if let Some(url) = &changes.url {
            endpoint.url.clone_from(url);
        }
        if let Some(description) = &changes.description {
            endpoint.description.clone_from(description);
        }
        if let Some(event_types) = &changes.event_types {
            endpoint.event_types.clone_from(event_types);
        }
        if let Some(enabled) = changes.enabled {
            endpoint.enabled = enabled;
            if enabled {
                endpoint.disabled_reason = None;
                endpoint.failing_since = None;
            }
        }
        Ok(Some(endpoint.clone()))
    }

    async fn delete_endpoint(&self, id: Uuid) -> Result<bool, WebhooksUnavailable> {
        let mut state = self.lock();
        let before = state.endpoints.len();
        state.endpoints.retain(|endpoint| endpoint.id != id);
        state
            .deliveries
            .retain(|_, delivery| delivery.new.endpoint_id != id);
        state.pending.remove(&id);
        state
            .attempts
            .retain(|(endpoint_id, _), _| *endpoint_id != id);
        Ok(state.endpoints.len() < before)
    }

    async fn rotate_secret(
        &self,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpoint>, WebhooksUnavailable> {
        let mut state = self.lock();
        let Some(endpoint) = state.endpoint_mut(id) else {
            return Ok(None);
        };
        let previous = std::mem::replace(&mut endpoint.secret, secret.clone());
        endpoint.previous_secret = Some((previous, previous_until));
        Ok(Some(endpoint.clone()))
    }

    async fn disable_endpoint(&self, id: Uuid, reason: &str) -> Result<(), WebhooksUnavailable> {
        if let Some(endpoint) = self.lock().endpoint_mut(id) {
            endpoint.enabled = false;
            endpoint.disabled_reason = Some(reason.to_owned());
        }
        Ok(())
    }

    async fn endpoints_behind(
        &self,
        last_position: u64,
    ) -> Result<Vec<WebhookEndpoint>, WebhooksUnavailable> {
        Ok(self
            .lock()
            .endpoints
            .iter()
            .filter(|endpoint| endpoint.enabled && endpoint.cursor < last_position)
            .cloned()
            .collect())
    }

    async fn fan_out(
        &self,
        endpoint_id: Uuid,
        from: u64,
        to: u64,
        deliveries: &[NewDelivery],
    ) -> Result<bool, WebhooksUnavailable> {
        let mut state = self.lock();
        match state.endpoint_mut(endpoint_id) {
            Some(endpoint) if endpoint.enabled && endpoint.cursor == from => endpoint.cursor = to,
            _ => return Ok(false),
        }
        state.insert(deliveries);
        Ok(true)
    }

    async fn enqueue(&self, deliveries: &[NewDelivery]) -> Result<(), WebhooksUnavailable> {
        self.lock().insert(deliveries);
        Ok(())
    }

    async fn claim_due(
        &self,
        claimer: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, WebhooksUnavailable> {
        let mut state = self.lock();
        let state = &mut *state;
        // The first `limit` claimable deliveries of each enabled endpoint, then the first
        // `limit` of those in due order: the same as the first `limit` of all.
        let mut due: Vec<(DateTime<Utc>, Uuid, usize)> = Vec::new();
        for (index, endpoint) in state.endpoints.iter().enumerate() {
            if !endpoint.enabled {
                continue;
            }
            let Some(pending) = state.pending.get(&endpoint.id) else {
                continue;
            };
            due.extend(
                pending
                    .iter()
                    .take_while(|(at, _)| *at <= now)
                    .filter(|(_, id)| {
                        state.deliveries.get(id).is_some_and(|delivery| {
                            delivery.claim.is_none_or(|(_, until)| until < now)
                        })
                    })
                    .take(limit)
                    .map(|&(at, id)| (at, id, index)),
            );
        }
        due.sort_unstable();
        due.truncate(limit);
        Ok(due
            .into_iter()
            .filter_map(|(_, id, index)| {
                let delivery = state.deliveries.get_mut(&id)?;
                delivery.claim = Some((claimer, until));
                Some(ClaimedDelivery {
                    id: delivery.new.id,
                    event_id: delivery.new.event_id,
                    event_type: delivery.new.event_type.clone(),
                    body: delivery.new.body.clone(),
                    attempts: delivery.attempts,
                    created_at: delivery.new.created_at,
                    endpoint: state.endpoints[index].clone(),
                })
            })
            .collect())
    }

    async fn record_attempts(
        &self,
        attempts: &[(DeliveryAttempt, AttemptOutcome)],
    ) -> Result<Vec<Option<DateTime<Utc>>>, WebhooksUnavailable> {
        let mut state = self.lock();
        Ok(attempts
            .iter()
            .map(|(attempt, outcome)| state.record(attempt, *outcome))
            .collect())
    }

    async fn attempts(
        &self,
        endpoint_id: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<AttemptPage, WebhooksUnavailable> {
        let state = self.lock();
        let end = before.unwrap_or(Uuid::max());
        let mut attempts: Vec<DeliveryAttempt> = state
            .attempts
            .range((endpoint_id, Uuid::nil())..(endpoint_id, end))
            .rev()
            .take(limit + 1)
            .map(|(_, attempt)| attempt.clone())
            .collect();
        let has_more = attempts.len() > limit;
        attempts.truncate(limit);
        Ok(AttemptPage { attempts, has_more })
    }

    async fn pending_ages(&self) -> Result<HashMap<Uuid, PendingAge>, WebhooksUnavailable> {
        let state = self.lock();
        let mut ages: HashMap<Uuid, PendingAge> = HashMap::new();
        for (endpoint_id, pending) in &state.pending {
            if pending.is_empty() {
                continue;
            }
            let oldest = pending
                .iter()
                .filter_map(|(_, id)| state.deliveries.get(id))
                .map(|delivery| delivery.new.created_at)
                .min();
            ages.insert(
                *endpoint_id,
                PendingAge {
                    pending: u64::try_from(pending.len()).unwrap_or(u64::MAX),
                    oldest,
                },
            );
        }
        Ok(ages)
    }

    async fn purge_finished(&self, before: DateTime<Utc>) -> Result<u64, WebhooksUnavailable> {
        let mut state = self.lock();
        let gone: HashSet<Uuid> = state
            .deliveries
            .values()
            .filter(|delivery| {
                delivery.state != DeliveryState::Pending && delivery.new.created_at < before
            })
            .map(|delivery| delivery.new.id)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        state.deliveries.retain(|id, _| !gone.contains(id));
        state
            .attempts
            .retain(|_, attempt| !gone.contains(&attempt.delivery_id));
        Ok(u64::try_from(gone.len()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_holds_the_type_the_timestamp_and_the_data_as_it_is() {
        let at: DateTime<Utc> = "2026-12-03T10:00:00.123Z".parse().unwrap();
        let text = body("order.placed", at, r#"{"id": "a",  "n":1}"#);
        assert_eq!(
            text,
            r#"{"type":"order.placed","timestamp":"2026-12-03T10:00:00.123Z","data":{"id": "a",  "n":1}}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["data"]["n"], 1);
    }

    #[test]
    fn a_secret_is_never_shown_by_debug() {
        let secret = WebhookSecret::new("whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".to_owned());
        assert!(!format!("{secret:?}").contains("whsec_"));
    }

    #[test]
    fn the_previous_secret_signs_until_it_expires() {
        let now = Utc::now();
        let endpoint = WebhookEndpoint {
            id: Uuid::now_v7(),
            url: "https://example.com/hook".to_owned(),
            description: String::new(),
            event_types: vec![EventTypePattern::Any],
            enabled: true,
            disabled_reason: None,
            secret: WebhookSecret::new("whsec_new".to_owned()),
            previous_secret: Some((
                WebhookSecret::new("whsec_old".to_owned()),
                now + chrono::Duration::hours(24),
            )),
            created_at: now,
            cursor: 0,
            failing_since: None,
        };
        assert_eq!(endpoint.signing_secrets(now).len(), 2);
        assert_eq!(
            endpoint.signing_secrets(now + chrono::Duration::hours(25)),
            vec![&endpoint.secret]
        );
    }
}
