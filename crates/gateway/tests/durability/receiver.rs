//! Webhooks in the durability tests: the flags that let a server deliver to a receiver on
//! 127.0.0.1 (`tests/support/webhook_receiver.rs`), and the admin call that subscribes one.

use serde_json::json;

use crate::harness::{ADMIN_KEY, Api};
pub(crate) use crate::webhook_receiver::Receiver;

/// The flags that let a server deliver to the receiver (on 127.0.0.1, over http) promptly.
/// A 2 s timeout makes a claim last 32 s (the timeout + 30 s): what a killed instance was
/// sending is sent again by the restarted one after that.
pub(crate) const WEBHOOK_FLAGS: &[&str] = &[
    "--webhook-allow-private-addresses",
    "--webhook-tick-ms",
    "50",
    "--webhook-timeout-ms",
    "2000",
];

/// How long deliveries may take to arrive after a restart: a killed instance's claims run
/// out after 32 s (see [`WEBHOOK_FLAGS`]), and the resends take a moment more.
pub(crate) const AFTER_A_KILL: std::time::Duration = std::time::Duration::from_secs(60);

/// Subscribes `receiver` to `types` on the server `api` talks to.
pub(crate) async fn subscribe(receiver: &Receiver, api: &Api, types: &[&str]) {
    let reply = api
        .send(
            reqwest::Method::POST,
            "/api/webhook-endpoints",
            Some(ADMIN_KEY),
            Some(&json!({ "url": receiver.url, "event_types": types })),
            None,
        )
        .await
        .expect("POST /api/webhook-endpoints");
    assert_eq!(reply.status, 201, "subscribing: {}", reply.body);
}
