//! The background work on the event log: numbering events ([`sequence_forever`]),
//! purging old ones ([`purge_forever`]), and following the log with relays
//! ([`relay_forever`]): the events counter ([`EventCounter`]) and the NATS JetStream
//! publisher ([`nats::NatsPublisher`]).
//!
//! Each task runs until [`BackgroundTasks::stop`] is called at shutdown: it finishes the
//! step it is in (a relay finishes the event it is handing on and records its progress),
//! gives up its relay claims, and returns.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bookstore_storage::events::{Event, EventLog, RelayCursors, WebhookStore};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub mod nats;

/// How often the sequencer numbers committed events (PostgreSQL; a no-op elsewhere).
pub const SEQUENCE_INTERVAL: Duration = Duration::from_millis(100);

/// How often events older than the retention are purged.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// The shutdown signal every background task watches.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits for `duration`; answers `false` when shutdown began meanwhile (at once if it
    /// had already).
    pub async fn sleep(&mut self, duration: Duration) -> bool {
        if self.is_stopping() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => !self.is_stopping(),
            // A closed channel (the sender dropped) also means stop.
            _ = self.0.changed() => false,
        }
    }
}

/// The event tasks of one server, stopped together at shutdown.
pub struct BackgroundTasks {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Default for BackgroundTasks {
    fn default() -> Self {
        Self::new()
    }
}

impl BackgroundTasks {
    /// No task yet.
    pub fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// Spawns the task `start` makes with the shutdown signal.
    pub fn spawn<F>(&mut self, start: impl FnOnce(Stop) -> F)
    where
        F: Future<Output = ()> + 'static,
    {
        let task = start(Stop(self.stop.subscribe()));
        self.tasks.push(actix_web::rt::spawn(task));
    }

    /// Signals every task to stop and waits up to `grace` for them; the ones still running
    /// then are aborted.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

/// Numbers the committed events every [`SEQUENCE_INTERVAL`], and again at once while a
/// round numbered a full batch. Failures are logged and retried.
pub async fn sequence_forever(events: Arc<dyn EventLog>, mut stop: Stop) {
    loop {
        match events.sequence().await {
            Ok(numbered) if numbered > 0 => {
                tracing::trace!(numbered, "numbered events");
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "could not number events; will retry"),
        }
        if !stop.sleep(SEQUENCE_INTERVAL).await {
            return;
        }
    }
}

/// Deletes the events older than `retention`, and the finished webhook deliveries (with
/// their attempts) created before then, now and every [`PURGE_INTERVAL`]. Pending
/// deliveries are kept whatever their age.
pub async fn purge_forever(
    events: Arc<dyn EventLog>,
    webhooks: Arc<dyn WebhookStore>,
    retention: Duration,
    mut stop: Stop,
) {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    loop {
        let before = Utc::now() - retention;
        match events.purge(before).await {
            Ok(purged) => tracing::debug!(purged, "purged events past their retention"),
            Err(error) => tracing::warn!(error = %error, "could not purge old events; will retry"),
        }
        match webhooks.purge_finished(before).await {
            Ok(purged) => {
                tracing::debug!(
                    purged,
                    "purged finished webhook deliveries past the retention"
                )
            }
            Err(error) => {
                tracing::warn!(error = %error, "could not purge old webhook deliveries; will retry")
            }
        }
        if !stop.sleep(PURGE_INTERVAL).await {
            return;
        }
    }
}

/// Why a relay could not hand an event on.
pub type RelayError = Box<dyn Error + Send + Sync>;

/// Where a relay hands the events of the log on, one at a time, in position order.
#[async_trait]
pub trait RelayTarget: Send + Sync + 'static {
    /// The relay's name: its cursor in [`RelayCursors`].
    fn name(&self) -> &str;

    /// Hands `event` on; done when this answers `Ok` (e.g. the server acknowledged it).
    async fn hand_on(&self, event: &Event) -> Result<(), RelayError>;

    /// Told, while this instance holds the relay, when the oldest event not yet handed on
    /// was recorded (`None`: none is waiting).
    fn backlog(&self, _oldest: Option<DateTime<Utc>>) {}
}

/// How a relay follows the log.
#[derive(Debug, Clone, Copy)]
pub struct RelaySettings {
    /// How long a claim lasts without renewal; renewed every third of it.
    pub lease: Duration,
    /// How long to wait when the log has nothing new.
    pub poll: Duration,
    /// How long to wait after a failure (of the target or the database).
    pub retry: Duration,
    /// Events read at once.
    pub batch: usize,
}

impl Default for RelaySettings {
    /// A 30 s lease (the server uses its instance lease), polling every 200 ms, retrying
    /// after 1 s, 500 events a batch.
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            retry: Duration::from_secs(1),
            batch: 500,
        }
    }
}

/// Follows the event log with `target` whenever this instance (`holder`) holds the relay:
/// claims it, hands each event after its cursor on in position order, records the last
/// one handed on after each batch (and after a failure, up to the last success), renews
/// the claim, and gives it up at shutdown. Instances that do not hold it try again every
/// third of the lease.
pub async fn relay_forever(
    target: Arc<dyn RelayTarget>,
    events: Arc<dyn EventLog>,
    relays: Arc<dyn RelayCursors>,
    holder: Uuid,
    settings: RelaySettings,
    mut stop: Stop,
) {
    let name = target.name().to_owned();
    loop {
        let wait = match relays.claim(&name, holder, settings.lease).await {
            Ok(Some(position)) => {
                tracing::info!(relay = %name, position, "this instance follows the event log");
                follow(
                    target.as_ref(),
                    events.as_ref(),
                    relays.as_ref(),
                    holder,
                    settings,
                    position,
                    &mut stop,
                )
                .await;
                if stop.is_stopping() {
                    if let Err(error) = relays.release(&name, holder).await {
                        tracing::warn!(relay = %name, error = %error, "could not give the relay up; its lease will expire");
                    }
                    return;
                }
                settings.retry
            }
            Ok(None) => settings.lease / 3,
            Err(error) => {
                tracing::warn!(relay = %name, error = %error, "could not claim the relay; will retry");
                settings.retry
            }
        };
        if !stop.sleep(wait).await {
            return;
        }
    }
}

/// Hands events on from `position` while this instance holds the relay; returns when it
/// lost the claim or shutdown began.
async fn follow(
    target: &dyn RelayTarget,
    events: &dyn EventLog,
    relays: &dyn RelayCursors,
    holder: Uuid,
    settings: RelaySettings,
    mut position: u64,
    stop: &mut Stop,
) {
    let name = target.name();
    let mut renewed_at = Instant::now();
    while !stop.is_stopping() {
        let batch = match events.after(position, settings.batch).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(relay = %name, error = %error, "could not read the event log; will retry");
                if !stop.sleep(settings.retry).await {
                    return;
                }
                continue;
            }
        };
        target.backlog(batch.first().map(|event| event.created_at));
        let mut handed_on = position;
        let mut failed = false;
        for event in &batch {
            if stop.is_stopping() {
                break;
            }
            match target.hand_on(event).await {
                Ok(()) => handed_on = event.position.unwrap_or(handed_on),
                Err(error) => {
                    tracing::warn!(relay = %name, event.id = %event.id, error = %error, "could not hand an event on; will retry");
                    failed = true;
                    break;
                }
            }
        }
        let renew_due = renewed_at.elapsed() >= settings.lease / 3;
        if handed_on > position || renew_due {
            match relays
                .advance(name, holder, handed_on, settings.lease)
                .await
            {
                Ok(true) => {
                    position = handed_on;
                    renewed_at = Instant::now();
                }
                Ok(false) => {
                    tracing::warn!(relay = %name, "another instance took the relay over; this one stops following");
                    return;
                }
                Err(error) => {
                    // Handed on but not recorded: handed on again after the retry.
                    tracing::warn!(relay = %name, error = %error, "could not record the relay's progress; will retry");
                    failed = true;
                }
            }
        }
        if failed {
            if !stop.sleep(settings.retry).await {
                return;
            }
        } else if batch.len() < settings.batch && !stop.sleep(settings.poll).await {
            return;
        }
    }
}

/// The relay that counts the events of the log by type (`crate::metrics::EVENTS_RECORDED`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventCounter;

/// The name of the counter's relay cursor.
pub const EVENT_COUNTER_RELAY: &str = "metrics";

#[async_trait]
impl RelayTarget for EventCounter {
    fn name(&self) -> &str {
        EVENT_COUNTER_RELAY
    }

    async fn hand_on(&self, event: &Event) -> Result<(), RelayError> {
        crate::metrics::record_event(event.event_type);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bookstore_storage::events::{EventType, InMemoryEventLog, InMemoryRelayCursors, NewEvent};

    use super::*;

    /// A target that keeps what it was handed and fails the first attempt of every fifth
    /// event.
    #[derive(Default)]
    struct Recorder {
        handed: Mutex<Vec<(Uuid, u64)>>,
        failed_once: Mutex<std::collections::HashSet<u64>>,
    }

    struct Tagged(Arc<Recorder>, Uuid);

    #[async_trait]
    impl RelayTarget for Tagged {
        fn name(&self) -> &str {
            "test"
        }

        async fn hand_on(&self, event: &Event) -> Result<(), RelayError> {
            let position = event.position.expect("relays read positioned events");
            if position.is_multiple_of(5) && self.0.failed_once.lock().unwrap().insert(position) {
                return Err("the first attempt fails".into());
            }
            self.0.handed.lock().unwrap().push((self.1, position));
            Ok(())
        }
    }

    fn record(log: &InMemoryEventLog, count: usize) {
        log.record((0..count).map(|index| NewEvent {
            id: Uuid::now_v7(),
            event_type: EventType::BookCreated,
            resource_id: format!("r{index}"),
            created_at: Utc::now(),
            data: "{}".to_owned(),
        }));
    }

    fn quick() -> RelaySettings {
        RelaySettings {
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(5),
            retry: Duration::from_millis(5),
            batch: 7,
        }
    }

    async fn wait_for(recorder: &Recorder, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while recorder.handed.lock().unwrap().len() < count {
            assert!(
                Instant::now() < deadline,
                "the relay did not hand on {count} events"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[actix_web::test]
    async fn a_relay_hands_every_event_on_in_order_despite_failures_and_one_instance_at_a_time() {
        let log = Arc::new(InMemoryEventLog::new());
        let cursors = Arc::new(InMemoryRelayCursors::new());
        let recorder = Arc::new(Recorder::default());
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        record(&log, 30);
        let mut tasks = BackgroundTasks::new();
        for holder in [first, second] {
            let target = Arc::new(Tagged(recorder.clone(), holder));
            let (log, cursors) = (log.clone(), cursors.clone());
            tasks.spawn(move |stop| relay_forever(target, log, cursors, holder, quick(), stop));
        }
        wait_for(&recorder, 30).await;
        record(&log, 12);
        wait_for(&recorder, 42).await;
        tasks.stop(Duration::from_secs(5)).await;
        let handed = recorder.handed.lock().unwrap().clone();
        let positions: Vec<u64> = handed.iter().map(|(_, position)| *position).collect();
        assert_eq!(positions, (1..=42).collect::<Vec<u64>>());
        let holders: std::collections::HashSet<Uuid> =
            handed.iter().map(|(holder, _)| *holder).collect();
        assert_eq!(holders.len(), 1, "one instance held the relay");
        // Stopping gave the claim up, with the progress recorded: the other one resumes.
        let holder = *holders.iter().next().unwrap();
        let other = if holder == first { second } else { first };
        assert_eq!(
            cursors.claim("test", other, quick().lease).await.unwrap(),
            Some(42)
        );
    }
}
