//! Sending one delivery: the signed POST, and what its answer means.

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

/// The HTTP client of the dispatcher and its rules.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
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
    /// connecting after at most 10 s), and connects only to addresses the rules allow.
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, reqwest::Error> {
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
        })
    }

    /// POSTs `delivery` to its endpoint, signed with every secret that signs now.
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
