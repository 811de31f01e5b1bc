//! Sending one delivery: the signed POST, and what its answer means; and the thread the
//! dispatcher runs on.
//!
//! The whole dispatcher (fan-out, claims, the sends, recording the attempts) runs on a
//! thread of its own (`webhook-sender`, a single-threaded runtime) whose scheduling priority
//! is lowered by `--webhook-nice` (10 by default) below the process's: its work yields the
//! CPU to the API's threads when both want it, and uses it all when the API is idle. Under a
//! load that saturates the machine, orders keep their speed and deliveries fall behind, to
//! catch up when the load eases (docs/EVENTS.md). SQLite writes, the dispatcher's included,
//! run on the engine's writer thread at the API's priority, behind the requests' writes; what
//! the lower-priority thread itself holds is one in-memory store lock or one PostgreSQL
//! connection for the length of one call, which a request can wait for while the thread
//! waits for the CPU. The bench's paced run measures the orders' latency with it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bookstore_storage::events::ClaimedDelivery;
use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use super::address::{CheckedResolver, check_url};
use super::schedule::parse_retry_after;

/// The most bytes of a response body read (the rest is dropped unread).
pub const RESPONSE_BODY_LIMIT: usize = 4 * 1024;

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// When the request started.
    pub at: DateTime<Utc>,
    /// The status answered, if an answer came.
    pub status: Option<u16>,
    /// What went wrong when no answer came (or the URL was refused).
    pub error: Option<String>,
    /// The wait a `Retry-After` header asked for.
    pub retry_after: Option<Duration>,
    /// How long it took.
    pub duration: Duration,
}

impl Sent {
    /// Whether the endpoint accepted it (2xx).
    pub fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// The HTTP client of the dispatcher, its rules, and the thread its sends run on.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    thread: Arc<SendingThread>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

/// Why the sender could not start.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// The HTTP client could not be built.
    #[error("could not build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The sending thread or its runtime could not start.
    #[error("could not start the webhook sending thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The `webhook-sender` thread: a single-threaded runtime at a lower priority, running
/// until the last [`Sender`] is dropped.
struct SendingThread {
    runtime: tokio::runtime::Handle,
    /// Dropped with the last sender, which ends the thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl SendingThread {
    fn start(nice: u8) -> Result<Self, std::io::Error> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started, handle) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("webhook-sender".to_owned())
            .spawn(move || {
                lower_priority(nice);
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started.send(Err(error));
                        return;
                    }
                };
                let _ = started.send(Ok(runtime.handle().clone()));
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
            })?;
        let runtime = handle.recv().map_err(|_| {
            std::io::Error::other("the webhook sending thread ended before it started")
        })??;
        Ok(Self {
            runtime,
            _stop: stop,
        })
    }
}

/// Adds `nice` to the calling thread's nice value (at most 19). A failure only costs the
/// priority, so it is logged and the thread goes on.
fn lower_priority(nice: u8) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        let result = rustix::process::getpriority_process(Some(thread)).and_then(|current| {
            rustix::process::setpriority_process(Some(thread), (current + i32::from(nice)).min(19))
        });
        if let Err(error) = result {
            tracing::warn!(error = %error, "webhooks: could not lower the sending thread's priority; it runs at the API's");
        }
    }
    #[cfg(not(target_os = "linux"))]
    tracing::info!(
        nice,
        "webhooks: the sending thread's priority is lowered on Linux only; here it runs at the API's"
    );
}

/// The signature header for `body` sent as message `id` at `timestamp`: `v1,<base64>`
/// for each secret, separated by spaces.
pub fn signature(
    secrets: &[&str],
    id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String, standardwebhooks::WebhookError> {
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in secrets {
        signatures.push(standardwebhooks::Webhook::new(secret)?.sign(
            id,
            timestamp,
            body.as_bytes(),
        )?);
    }
    Ok(signatures.join(" "))
}

impl Sender {
    /// A client that follows no redirect, gives up on a request after `timeout` (and on
    /// connecting after at most 10 s), and connects only to addresses the rules allow; its
    /// sends run on a thread `nice` levels below the process's priority.
    pub fn new(timeout: Duration, allow_private: bool, nice: u8) -> Result<Self, SenderError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .dns_resolver(std::sync::Arc::new(CheckedResolver { allow_private }))
            .user_agent(concat!("bookstore-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            allow_private,
            thread: Arc::new(SendingThread::start(nice)?),
        })
    }

    /// The runtime of the sending thread, on which the dispatcher runs.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.thread.runtime
    }

    /// POSTs `delivery` to its endpoint, signed with every secret that signs now, on the
    /// runtime that polls it (the dispatcher's: the sending thread).
    pub async fn send(&self, delivery: &ClaimedDelivery) -> Sent {
        let at = Utc::now();
        let started = Instant::now();
        let failed = |error: String| Sent {
            at,
            status: None,
            error: Some(error),
            retry_after: None,
            duration: started.elapsed(),
        };
        let url = match check_url(&delivery.endpoint.url, self.allow_private) {
            Ok(url) => url,
            Err(error) => return failed(format!("the URL {error}")),
        };
        let id = delivery.event_id.to_string();
        let timestamp = at.timestamp();
        let secrets: Vec<&str> = delivery
            .endpoint
            .signing_secrets(at)
            .into_iter()
            .map(|secret| secret.expose())
            .collect();
        let signed = match signature(&secrets, &id, timestamp, &delivery.body) {
            Ok(signed) => signed,
            Err(error) => return failed(format!("could not sign: {error}")),
        };
        let request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signed)
            .body(delivery.body.clone());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return failed(describe(&error)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        // Read a little of the body (so that a small answer completes), never more.
        let mut read = 0;
        while read < RESPONSE_BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        Sent {
            at,
            status: Some(status),
            error: None,
            retry_after,
            duration: started.elapsed(),
        }
    }
}

/// A transport error with its causes, e.g. `error sending request: … : 10.0.0.1 is a
/// private address, which webhooks may not reach`; never the URL's query (it may hold a
/// token).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_webhooks_one_and_lists_every_live_secret() {
        // The example of the Standard Webhooks library's own tests.
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let body = r#"{"email":"test@example.com","username":"test_user"}"#;
        let one = signature(
            &[secret],
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            body,
        )
        .unwrap();
        assert_eq!(one, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
        let two = signature(
            &[secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            body,
        )
        .unwrap();
        let parts: Vec<&str> = two.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], one);
        assert!(parts[1].starts_with("v1,"));
    }
}
