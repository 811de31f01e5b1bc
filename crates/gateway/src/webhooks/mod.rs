//! Webhook delivery: the dispatcher that turns the event log into signed POSTs to the
//! endpoints admins registered, with retries (Standard Webhooks 1.0).
//!
//! Every tick (`--webhook-tick-ms`, 200 ms by default) the dispatcher of each instance:
//!
//! 1. numbers committed events (`EventLog::sequence`: PostgreSQL only; one instance at a
//!    time numbers);
//! 2. **fans out**: for each enabled endpoint behind the log, reads the events after its
//!    cursor, creates a delivery for each one its patterns match and moves the cursor,
//!    in one transaction that fails harmlessly if another instance did it first
//!    (`WebhookStore::fan_out`);
//! 3. **claims** due deliveries, as many as it has free sending slots
//!    (`--webhook-concurrency`), each for the delivery timeout plus 30 s, and sends each in
//!    a task of its own ([`send`]);
//! 4. records each attempt, and what follows from it ([`schedule`]): delivered, retried
//!    later, failed, or the endpoint disabled (`410 Gone`, or failing for 5 days). The
//!    attempts that finished while the last write ran are recorded together in one write
//!    (`WebhookStore::record_attempts`), so a busy dispatcher adds few jobs to SQLite's
//!    single writer; a sending slot is free again once its attempt is recorded.
//!
//! A round that left work behind is followed by the next at once (a whole fan-out batch)
//! or as soon as a send frees a slot (as many due deliveries as free slots), not a tick
//! later, so a backlog drains at the speed of sending; otherwise the fan-out runs once a
//! tick, and an idle dispatcher looks once a tick.
//!
//! All of it runs on the `webhook-sender` thread, below the API's priority (see [`send`]).
//!
//! A delivery is in the database from fan-out to its last attempt, so a restart or a
//! killed instance loses none: an instance's claims run out and another takes them over.
//! Delivery is at least once: an instance killed after sending and before recording
//! sends it again.

pub mod address;
pub mod schedule;
pub mod send;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bookstore_storage::events::{
    AttemptOutcome, ClaimedDelivery, DeliveryAttempt, EventLog, NewDelivery, WebhookSecret,
    WebhookStore,
};
use chrono::Utc;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use uuid::Uuid;

use self::schedule::{MAX_ATTEMPTS, RetryPolicy, unit_random};
use self::send::{Sender, Sent};

/// Events read per endpoint per fan-out.
const FAN_OUT_BATCH: usize = 500;

/// How much longer than the delivery timeout a claim lasts.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// How often the per-endpoint gauge of the oldest pending delivery is refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

/// The default of `--webhook-nice`.
pub const DEFAULT_NICE: u8 = 10;

/// How the dispatcher behaves (from the `--webhook-*` flags).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSettings {
    /// How long an endpoint has to answer.
    pub timeout: Duration,
    /// How often the dispatcher looks for work.
    pub tick: Duration,
    /// The most deliveries sent at once by this instance.
    pub concurrency: usize,
    /// The retry rules.
    pub retry: RetryPolicy,
    /// Whether `http://` and inside addresses are allowed (development and tests).
    pub allow_private_addresses: bool,
    /// How many nice levels below the process the dispatcher's thread runs ([`send`]).
    pub nice: u8,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            tick: Duration::from_millis(200),
            concurrency: 16,
            retry: RetryPolicy::default(),
            allow_private_addresses: false,
            nice: DEFAULT_NICE,
        }
    }
}

/// A fresh signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_secret() -> Result<WebhookSecret, getrandom::Error> {
    let mut key = [0_u8; 32];
    getrandom::fill(&mut key)?;
    Ok(WebhookSecret::new(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )))
}

/// The type of the test event, which is sent to one endpoint and is not in the feed.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// The test delivery for `endpoint_id`.
pub fn test_delivery(endpoint_id: Uuid) -> NewDelivery {
    let now = Utc::now();
    let data = serde_json::json!({
        "endpoint_id": endpoint_id,
        "message": "a test event sent from the bookstore API",
    })
    .to_string();
    NewDelivery::new(
        endpoint_id,
        Uuid::now_v7(),
        TEST_EVENT_TYPE,
        now,
        &data,
        now,
    )
}

/// The webhook delivery counter, by endpoint and outcome (`succeeded`, `retrying`,
/// `failed`).
pub const DELIVERIES_TOTAL: &str = "bookstore_webhook_deliveries_total";
/// The age of the oldest pending delivery, by endpoint.
pub const OLDEST_PENDING_SECONDS: &str = "bookstore_webhook_oldest_pending_seconds";

/// The dispatcher of one instance.
pub struct Dispatcher {
    events: Arc<dyn EventLog>,
    webhooks: Arc<dyn WebhookStore>,
    settings: WebhookSettings,
    sender: Sender,
    slots: Arc<Semaphore>,
    /// Woken when a send's attempt is recorded, so that a freed slot is used at once rather
    /// than at the next tick.
    slot_freed: Arc<Notify>,
    /// Where finished sends go to be recorded, together ([`record_forever`]).
    finished: mpsc::UnboundedSender<Finished>,
    instance: Uuid,
}

/// A send that finished, waiting for its attempt to be recorded; holds its sending slot.
struct Finished {
    delivery: ClaimedDelivery,
    sent: Sent,
    _slot: OwnedSemaphorePermit,
}

/// Attempts recorded in one write at most.
const RECORD_BATCH: usize = 256;

impl Dispatcher {
    /// A dispatcher on these stores.
    pub fn new(
        events: Arc<dyn EventLog>,
        webhooks: Arc<dyn WebhookStore>,
        settings: WebhookSettings,
    ) -> Result<Self, send::SenderError> {
        let sender = Sender::new(
            settings.timeout,
            settings.allow_private_addresses,
            settings.nice,
        )?;
        let slot_freed = Arc::new(Notify::new());
        let (finished, to_record) = mpsc::unbounded_channel();
        sender.runtime().spawn(record_forever(
            Arc::clone(&webhooks),
            settings.retry,
            to_record,
            Arc::clone(&slot_freed),
            sender.clone(),
        ));
        Ok(Self {
            events,
            webhooks,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            slot_freed,
            finished,
            settings,
            sender,
            instance: Uuid::now_v7(),
        })
    }

    /// Runs until `stop` turns true, then waits for the deliveries being sent (at most the
    /// delivery timeout) so that their attempts are recorded.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut gauges_at = Instant::now();
        let mut reported = std::collections::HashSet::new();
        // What the last round left behind: a whole fan-out batch (fan out again at once), or
        // as many due deliveries claimed as there were free slots (claim again as soon as a
        // send frees a slot, not a tick later), so a backlog drains at the speed of sending.
        // Otherwise the fan-out (numbering the log, reading the endpoints) runs once a tick,
        // not for every slot freed.
        let mut fan_out_behind = false;
        let mut claims_behind = false;
        let mut next_fan_out = Instant::now();
        loop {
            let claim_at_once = claims_behind && self.slots.available_permits() > 0;
            if !fan_out_behind && !claim_at_once {
                tokio::select! {
                    _ = tokio::time::sleep_until(next_fan_out.max(Instant::now()).into()) => {}
                    _ = self.slot_freed.notified(), if claims_behind => {}
                    _ = stop.changed() => break,
                }
            }
            if *stop.borrow() {
                break;
            }
            if fan_out_behind || Instant::now() >= next_fan_out {
                next_fan_out = Instant::now() + self.settings.tick;
                fan_out_behind = match self.fan_out().await {
                    Ok(full) => full,
                    Err(error) => {
                        tracing::warn!(error = %error, "webhooks: could not fan events out; will retry");
                        false
                    }
                };
            }
            claims_behind = match self.claim_and_send().await {
                Ok(full) => full,
                Err(error) => {
                    tracing::warn!(error = %error, "webhooks: could not claim deliveries; will retry");
                    false
                }
            };
            if gauges_at.elapsed() >= GAUGE_INTERVAL {
                gauges_at = Instant::now();
                self.report_ages(&mut reported).await;
            }
        }
        let all = u32::try_from(self.settings.concurrency.max(1)).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(
            self.settings.timeout + Duration::from_secs(1),
            self.slots.acquire_many(all),
        )
        .await;
        if drained.is_err() {
            tracing::warn!(
                "webhooks: stopped with deliveries still being sent; their claims will run out and be retried"
            );
        }
    }

    /// Fans out the events after each endpoint's cursor (see the module documentation);
    /// answers whether an endpoint had a whole batch (and may have more).
    pub async fn fan_out(&self) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        self.events.sequence().await?;
        let last = self.events.last_position().await?;
        let mut full = false;
        for endpoint in self.webhooks.endpoints_behind(last).await? {
            let events = self.events.after(endpoint.cursor, FAN_OUT_BATCH).await?;
            full |= events.len() == FAN_OUT_BATCH;
            let Some(to) = events.last().and_then(|event| event.position) else {
                continue;
            };
            let now = Utc::now();
            let deliveries: Vec<NewDelivery> = events
                .iter()
                .filter(|event| {
                    bookstore_storage::events::EventTypePattern::any_matches(
                        &endpoint.event_types,
                        event.event_type,
                    )
                })
                .map(|event| NewDelivery::of_event(endpoint.id, event, now))
                .collect();
            self.webhooks
                .fan_out(endpoint.id, endpoint.cursor, to, &deliveries)
                .await?;
        }
        Ok(full)
    }

    /// Claims as many due deliveries as there are free slots and starts sending them;
    /// answers whether it claimed that many (more may be due).
    async fn claim_and_send(&self) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let free = self.slots.available_permits();
        if free == 0 {
            return Ok(true);
        }
        let now = Utc::now();
        let until = now
            + chrono::Duration::from_std(self.settings.timeout + CLAIM_MARGIN)
                .unwrap_or(chrono::Duration::MAX);
        let claimed = self
            .webhooks
            .claim_due(self.instance, now, until, free)
            .await?;
        let full = claimed.len() >= free;
        for delivery in claimed {
            let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() else {
                break;
            };
            let sender = self.sender.clone();
            let finished = self.finished.clone();
            tokio::spawn(async move {
                let sent = sender.send(&delivery).await;
                // The recorder lives as long as the dispatcher, which waits for every slot.
                let _ = finished.send(Finished {
                    delivery,
                    sent,
                    _slot: permit,
                });
            });
        }
        Ok(full)
    }

    async fn report_ages(&self, reported: &mut std::collections::HashSet<Uuid>) {
        match self.webhooks.pending_ages().await {
            Ok(ages) => {
                let now = Utc::now();
                for (endpoint, age) in &ages {
                    let seconds = age.oldest.map_or(0.0, |oldest| {
                        (now - oldest).num_milliseconds() as f64 / 1000.0
                    });
                    metrics::gauge!(OLDEST_PENDING_SECONDS, "endpoint" => endpoint.to_string())
                        .set(seconds.max(0.0));
                }
                for gone in reported
                    .iter()
                    .filter(|endpoint| !ages.contains_key(endpoint))
                {
                    metrics::gauge!(OLDEST_PENDING_SECONDS, "endpoint" => gone.to_string())
                        .set(0.0);
                }
                *reported = ages.keys().copied().collect();
            }
            Err(error) => {
                tracing::warn!(error = %error, "webhooks: could not read the pending deliveries")
            }
        }
    }
}

/// Records the attempts of finished sends, all those waiting in one write (at most
/// [`RECORD_BATCH`]), then what follows from each; frees their sending slots. Runs until
/// the dispatcher and every send are gone.
async fn record_forever(
    webhooks: Arc<dyn WebhookStore>,
    retry: RetryPolicy,
    mut finished: mpsc::UnboundedReceiver<Finished>,
    slot_freed: Arc<Notify>,
    // Keeps the sending thread, which runs this task, until the last attempt is recorded.
    _sending_thread: Sender,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let attempts: Vec<(DeliveryAttempt, AttemptOutcome)> = batch
            .iter()
            .map(|done| judge(retry, &done.delivery, &done.sent))
            .collect();
        match webhooks.record_attempts(&attempts).await {
            Ok(failing_since) => {
                for ((done, (_, outcome)), since) in batch.iter().zip(&attempts).zip(failing_since)
                {
                    count_and_log(&done.delivery, &done.sent, *outcome);
                    disable_if_due(webhooks.as_ref(), retry, &done.delivery, &done.sent, since)
                        .await;
                }
            }
            Err(error) => {
                for (done, (_, outcome)) in batch.iter().zip(&attempts) {
                    count_and_log(&done.delivery, &done.sent, *outcome);
                }
                tracing::warn!(error = %error, attempts = batch.len(), "webhooks: could not record attempts; their claims will run out and they will be sent again");
            }
        }
        // Dropping them frees their slots.
        batch.clear();
        slot_freed.notify_one();
    }
}

/// The attempt a send made, and what follows from it: delivered, retried at a time, or
/// failed for good (the schedule is over, or `410 Gone`).
fn judge(
    retry: RetryPolicy,
    delivery: &ClaimedDelivery,
    sent: &Sent,
) -> (DeliveryAttempt, AttemptOutcome) {
    let attempt_number = delivery.attempts + 1;
    let outcome = if sent.succeeded() {
        AttemptOutcome::Succeeded
    } else if sent.status == Some(410) {
        AttemptOutcome::Failed
    } else {
        match retry.next_attempt(attempt_number, sent.at, unit_random(), sent.retry_after) {
            Some(at) => AttemptOutcome::RetryAt(at),
            None => AttemptOutcome::Failed,
        }
    };
    let attempt = DeliveryAttempt {
        id: Uuid::now_v7(),
        delivery_id: delivery.id,
        endpoint_id: delivery.endpoint.id,
        event_id: delivery.event_id,
        event_type: delivery.event_type.clone(),
        attempted_at: sent.at,
        status_code: sent.status,
        error: sent.error.clone(),
        duration_ms: u64::try_from(sent.duration.as_millis()).unwrap_or(u64::MAX),
    };
    (attempt, outcome)
}

/// Counts an attempt by outcome; logs a failed one (never a secret, never the URL).
fn count_and_log(delivery: &ClaimedDelivery, sent: &Sent, outcome: AttemptOutcome) {
    let label = match outcome {
        AttemptOutcome::Succeeded => "succeeded",
        AttemptOutcome::RetryAt(_) => "retrying",
        AttemptOutcome::Failed => "failed",
    };
    metrics::counter!(DELIVERIES_TOTAL, "endpoint" => delivery.endpoint.id.to_string(), "outcome" => label)
        .increment(1);
    if outcome != AttemptOutcome::Succeeded {
        tracing::warn!(
            webhook.endpoint_id = %delivery.endpoint.id,
            webhook.delivery_id = %delivery.id,
            webhook.event_id = %delivery.event_id,
            webhook.event_type = %delivery.event_type,
            webhook.attempt = delivery.attempts + 1,
            webhook.max_attempts = MAX_ATTEMPTS,
            http.status_code = sent.status,
            error = sent.error.as_deref().unwrap_or(""),
            duration_ms = u64::try_from(sent.duration.as_millis()).unwrap_or(u64::MAX),
            next_attempt_at = match outcome { AttemptOutcome::RetryAt(at) => at.to_rfc3339(), _ => String::new() },
            "webhook delivery attempt failed"
        );
    }
}

/// Disables the endpoint when the attempt says so: it answered `410 Gone`, or every
/// attempt since `failing_since` failed for longer than the schedule allows.
async fn disable_if_due(
    webhooks: &dyn WebhookStore,
    retry: RetryPolicy,
    delivery: &ClaimedDelivery,
    sent: &Sent,
    failing_since: Option<chrono::DateTime<Utc>>,
) {
    let reason = if sent.status == Some(410) {
        Some(format!(
            "the endpoint answered 410 Gone at {}",
            sent.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
    } else {
        failing_since
            .filter(|since| retry.gives_up(*since, sent.at))
            .map(|since| {
                format!(
                    "every delivery attempt since {} failed",
                    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            })
    };
    if let Some(reason) = reason {
        tracing::warn!(webhook.endpoint_id = %delivery.endpoint.id, reason = %reason, "webhook endpoint disabled");
        if let Err(error) = webhooks
            .disable_endpoint(delivery.endpoint.id, &reason)
            .await
        {
            tracing::warn!(error = %error, "webhooks: could not disable an endpoint");
        }
    }
}

/// Starts the dispatcher on its sending thread (see [`send`]); answers the sender that
/// stops it and its task.
pub fn spawn(
    events: Arc<dyn EventLog>,
    webhooks: Arc<dyn WebhookStore>,
    settings: WebhookSettings,
) -> Result<(watch::Sender<bool>, tokio::task::JoinHandle<()>), send::SenderError> {
    let dispatcher = Dispatcher::new(events, webhooks, settings)?;
    let (stop, stopped) = watch::channel(false);
    let runtime = dispatcher.sender.runtime().clone();
    Ok((stop, runtime.spawn(dispatcher.run(stopped))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_whsec_and_32_random_bytes_in_base64() {
        let one = generate_secret().unwrap();
        let two = generate_secret().unwrap();
        assert_ne!(one, two);
        let key = one.expose().strip_prefix("whsec_").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert_eq!(bytes.len(), 32);
        assert!(standardwebhooks::Webhook::new(one.expose()).is_ok());
    }
}
