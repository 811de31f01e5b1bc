//! [`NatsPublisher`]: the relay that publishes every event of the log to a NATS JetStream
//! stream, in position order, at least once.
//!
//! Each event goes to `<prefix>.<type>` (`bookstore.events.order.placed`) with the header
//! `Nats-Msg-Id` set to the event id, and its body is the event as the feed shows it. The
//! relay waits for JetStream's acknowledgement of each event before publishing the next, so
//! the stream holds them in the log's order. The stream is created when absent, capturing
//! `<prefix>.>`, with a duplicate window of [`DUPLICATE_WINDOW`]: an event published again
//! within it (after a crash, the tail whose progress was not recorded) is dropped by
//! JetStream, so consumers see each event once. An event published again later than that
//! (a relay stalled for longer) is stored twice; consumers that must never see a repeat
//! drop events by id.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use bookstore_storage::events::Event;
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

use super::{RelayError, RelayTarget};
use crate::metrics::{self, NatsOutcome};
use crate::wire::events::EventBody;

/// How long JetStream remembers the ids it stored, to drop a repeat.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long to wait for JetStream to acknowledge one event.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where events are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsTarget {
    /// The stream's name (created when absent).
    pub stream: String,
    /// The subjects' prefix: an event goes to `<prefix>.<type>`.
    pub subject_prefix: String,
}

/// Publishes events to JetStream (see the module documentation).
pub struct NatsPublisher {
    jetstream: jetstream::Context,
    target: NatsTarget,
    relay_name: String,
    stream_ready: OnceCell<()>,
}

impl NatsPublisher {
    /// A publisher through `client` to `target`. Nothing is sent until the first event.
    pub fn new(client: async_nats::Client, target: NatsTarget) -> Self {
        metrics::announce_nats();
        let mut jetstream = jetstream::new(client);
        jetstream.set_timeout(ACK_TIMEOUT);
        Self {
            jetstream,
            relay_name: format!("nats:{}", target.stream),
            target,
            stream_ready: OnceCell::new(),
        }
    }

    /// Connects to the NATS server at `url`. The client keeps trying in the background when
    /// the server is down (the relay logs each event it could not publish), so the API
    /// starts whether NATS is up or not.
    pub async fn connect(url: &str, target: NatsTarget) -> Result<Self, async_nats::ConnectError> {
        let client = async_nats::ConnectOptions::new()
            .name("bookstore")
            .retry_on_initial_connect()
            .connect(url)
            .await?;
        Ok(Self::new(client, target))
    }

    /// Creates the stream when absent (once it exists, its configuration is left as it is).
    async fn ensure_stream(&self) -> Result<(), RelayError> {
        self.stream_ready
            .get_or_try_init(|| async {
                self.jetstream
                    .get_or_create_stream(stream::Config {
                        name: self.target.stream.clone(),
                        subjects: vec![format!("{}.>", self.target.subject_prefix)],
                        duplicate_window: DUPLICATE_WINDOW,
                        ..Default::default()
                    })
                    .await
                    .map(drop)
                    .map_err(RelayError::from)
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl RelayTarget for NatsPublisher {
    fn name(&self) -> &str {
        &self.relay_name
    }

    async fn hand_on(&self, event: &Event) -> Result<(), RelayError> {
        let published = async {
            self.ensure_stream().await?;
            let body = serde_json::to_vec(
                &EventBody::from_event(event).map_err(|error| format!("{error:?}"))?,
            )?;
            let mut headers = HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                event.id.to_string().as_str(),
            );
            let subject = format!("{}.{}", self.target.subject_prefix, event.event_type);
            let ack = self
                .jetstream
                .publish_with_headers(subject, headers, body.into())
                .await?
                .await?;
            Ok::<_, RelayError>(ack.duplicate)
        }
        .await;
        match published {
            Ok(false) => metrics::record_nats_publish(NatsOutcome::Published),
            Ok(true) => metrics::record_nats_publish(NatsOutcome::Duplicate),
            Err(_) => metrics::record_nats_publish(NatsOutcome::Failed),
        }
        published.map(drop)
    }

    fn backlog(&self, oldest: Option<DateTime<Utc>>) {
        metrics::set_nats_backlog_age(oldest);
    }
}
