//! Webhooks end to end: the real application and its dispatcher on each backend (memory,
//! SQLite, and PostgreSQL when a server answers: those tests are `#[ignore]`d with the
//! reason and run by `cargo xtask test`), real receivers on 127.0.0.1, events written
//! straight into the log. Signatures are checked with the `standardwebhooks` crate's own
//! verifier. The retry schedule is scaled by 0.001 (`--webhook-retry-schedule-scale`), so
//! no test waits minutes.

#[path = "../support/postgres.rs"]
#[allow(dead_code, reason = "shared with the other test binaries")]
mod postgres_support;

mod harness;
#[path = "../support/webhook_receiver.rs"]
mod webhook_receiver;

use std::time::Duration;

use bookstore_storage::events::EventType;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{
    Answer, Backend, CUSTOMER, Receiver, TEST_FLAGS, TestApp, per_backend, verifies,
};

per_backend!(
    a_test_event_is_delivered_signed_and_passes_the_standard_webhooks_verifier,
    only_events_recorded_after_creation_and_matching_the_types_are_delivered,
    a_failing_receiver_is_retried_on_the_scaled_schedule_until_it_accepts,
    a_410_fails_the_delivery_and_disables_the_endpoint_with_a_reason,
    a_429_with_retry_after_delays_the_next_attempt_as_asked,
    a_receiver_slower_than_the_timeout_is_a_failed_attempt_then_retried,
    an_event_is_redelivered_to_one_endpoint_or_to_every_matching_one,
    during_a_rotation_both_secrets_sign_and_each_verifies,
    endpoints_are_read_listed_changed_and_deleted_by_admins_only,
);

async fn a_test_event_is_delivered_signed_and_passes_the_standard_webhooks_verifier(
    backend: Backend,
) {
    let app = TestApp::start(backend, TEST_FLAGS).await;
    let receiver = Receiver::start(vec![]);
    let (endpoint, secret) = app.create_endpoint(&receiver.url, &["order.*"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (status, queued) = app
        .call(
            Method::POST,
            &format!("/api/webhook-endpoints/{endpoint}/test"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    let received = receiver.wait_for(1).await;
    let request = &received[0];
    assert!(verifies(&secret, request), "the signature verifies");
    assert!(
        !verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", request),
        "another secret does not verify it"
    );
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(
        request.header("webhook-id"),
        queued["deliveries"][0]["event_id"].as_str().unwrap()
    );
    let signature = request.header("webhook-signature");
    assert!(
        signature.starts_with("v1,") && !signature.contains(' '),
        "{signature}"
    );
    let body = request.json();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["data"]["endpoint_id"], endpoint.as_str());
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    let attempts = app
        .attempts_until(&endpoint, "the attempt to be logged", |attempts| {
            attempts.len() == 1
        })
        .await;
    assert_eq!(attempts[0]["status_code"], 200);
    assert_eq!(attempts[0]["error"], Value::Null);
    assert_eq!(attempts[0]["event_type"], "webhook.test");
    // The test event is not in the feed: it is nowhere in the log.
    let (status, _) = app
        .call(
            Method::POST,
            &format!(
                "/api/events/{}/redeliver",
                queued["deliveries"][0]["event_id"].as_str().unwrap()
            ),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
}

async fn only_events_recorded_after_creation_and_matching_the_types_are_delivered(
    backend: Backend,
) {
    let app = TestApp::start(backend, TEST_FLAGS).await;
    let receiver = Receiver::start(vec![]);
    app.record_event(EventType::OrderPlaced, "before", json!({"id": "before"}))
        .await;
    let (endpoint, secret) = app
        .create_endpoint(&receiver.url, &["order.*", "book.out_of_stock"])
        .await;
    let placed = app
        .record_event(
            EventType::OrderPlaced,
            "o-1",
            json!({"id": "o-1", "total_cents": 4499}),
        )
        .await;
    app.record_event(
        EventType::BookCreated,
        "9780134685991",
        json!({"isbn": "9780134685991"}),
    )
    .await;
    let sold_out = app
        .record_event(
            EventType::BookOutOfStock,
            "9780134685991",
            json!({"stock": 0}),
        )
        .await;
    let received = receiver.wait_for(2).await;
    // Everything fanned out is delivered within a few ticks; a third would be a bug.
    app.attempts_until(&endpoint, "two attempts", |attempts| attempts.len() == 2)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let received_now = receiver.received();
    assert_eq!(received_now.len(), 2, "{received_now:?}");
    let mut ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    let mut expected = vec![placed.to_string(), sold_out.to_string()];
    expected.sort();
    assert_eq!(ids, expected);
    for request in &received {
        assert!(verifies(&secret, request));
        let body = request.json();
        if request.header("webhook-id") == placed.to_string() {
            assert_eq!(body["type"], "order.placed");
            assert_eq!(body["data"], json!({"id": "o-1", "total_cents": 4499}));
        } else {
            assert_eq!(body["type"], "book.out_of_stock");
        }
    }
}

async fn a_failing_receiver_is_retried_on_the_scaled_schedule_until_it_accepts(backend: Backend) {
    let app = TestApp::start(backend, TEST_FLAGS).await;
    let receiver = Receiver::start(vec![Answer::Status(500), Answer::Status(503)]);
    let (endpoint, secret) = app.create_endpoint(&receiver.url, &["*"]).await;
    let event = app
        .record_event(
            EventType::PaymentCaptured,
            "t-1",
            json!({"amount_cents": 100}),
        )
        .await;
    let received = receiver.wait_for(3).await;
    let attempts = app
        .attempts_until(&endpoint, "three attempts", |attempts| attempts.len() == 3)
        .await;
    let statuses: Vec<&Value> = attempts.iter().map(|a| &a["status_code"]).collect();
    assert_eq!(statuses, vec![&json!(200), &json!(503), &json!(500)]);
    for request in &received {
        assert_eq!(request.header("webhook-id"), event.to_string());
        assert_eq!(
            request.body, received[0].body,
            "every retry sends the same body"
        );
        assert!(verifies(&secret, request));
    }
    // 5 s and 5 min scaled by 0.001, less the 10 % jitter.
    let first_wait = received[1].at - received[0].at;
    let second_wait = received[2].at - received[1].at;
    assert!(first_wait >= Duration::from_micros(4_500), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(270), "{second_wait:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "a delivered event is not sent again"
    );
}

async fn a_410_fails_the_delivery_and_disables_the_endpoint_with_a_reason(backend: Backend) {
    let app = TestApp::start(backend, TEST_FLAGS).await;
    let receiver = Receiver::start(vec![Answer::Status(410)]);
    let (endpoint, _) = app.create_endpoint(&receiver.url, &["order.placed"]).await;
    app.record_event(EventType::OrderPlaced, "o-1", json!({}))
        .await;
    receiver.wait_for(1).await;
    let deadline = std::time::Instant::now() + harness::LIMIT;
    let disabled = loop {
        let (_, body) = app
            .call(
                Method::GET,
                &format!("/api/webhook-endpoints/{endpoint}"),
                None,
            )
            .await;
        if body["enabled"] == false {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410 Gone"),
        "{disabled}"
    );
    // Disabled: nothing more is sent, not even a new event's.
    app.record_event(EventType::OrderPlaced, "o-2", json!({}))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
    // Enabling clears the reason, and the event recorded meanwhile is delivered.
    let (status, enabled) = app
        .call(
            Method::PATCH,
            &format!("/api/webhook-endpoints/{endpoint}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["disabled_reason"], Value::Null);
    let received = receiver.wait_for(2).await;
    assert_eq!(received[1].json()["type"], "order.placed");
}

async fn a_429_with_retry_after_delays_the_next_attempt_as_asked(backend: Backend) {
    let app = TestApp::start(backend, TEST_FLAGS).await;
    // 1000 s, scaled by 0.001: one second, where the schedule alone waits 5 ms.
    let receiver = Receiver::start(vec![Answer::RetryAfter(429, 1_000)]);
    let (endpoint, _) = app.create_endpoint(&receiver.url, &["*"]).await;
    app.record_event(EventType::BookCreated, "b", json!({}))
        .await;
    let received = receiver.wait_for(2).await;
    let wait = received[1].at - received[0].at;
    assert!(wait >= Duration::from_millis(950), "{wait:?}");
    assert!(wait < Duration::from_secs(5), "{wait:?}");
    let attempts = app
        .attempts_until(&endpoint, "two attempts", |attempts| attempts.len() == 2)
        .await;
    assert_eq!(attempts[1]["status_code"], 429);
    assert_eq!(attempts[0]["status_code"], 200);
}

async fn a_receiver_slower_than_the_timeout_is_a_failed_attempt_then_retried(backend: Backend) {
    let mut flags: Vec<&str> = TEST_FLAGS
        .iter()
        .copied()
        .take_while(|flag| *flag != "--webhook-timeout-ms")
        .collect();
    flags.extend(["--webhook-timeout-ms", "300"]);
    let app = TestApp::start(backend, &flags).await;
    let receiver = Receiver::start(vec![Answer::Stall(Duration::from_secs(3))]);
    let (endpoint, _) = app.create_endpoint(&receiver.url, &["*"]).await;
    app.record_event(EventType::OrderCancelled, "o", json!({}))
        .await;
    let attempts = app
        .attempts_until(&endpoint, "a timeout then a success", |attempts| {
            attempts.len() == 2
        })
        .await;
    assert_eq!(attempts[1]["status_code"], Value::Null);
    let error = attempts[1]["error"].as_str().unwrap();
    assert!(error.contains("timed out"), "{error}");
    let duration = attempts[1]["duration_ms"].as_u64().unwrap();
    assert!((300..3_000).contains(&duration), "{duration}");
    assert_eq!(attempts[0]["status_code"], 200);
}

async fn an_event_is_redelivered_to_one_endpoint_or_to_every_matching_one(backend: Backend) {
    let app = TestApp::start(backend, TEST_FLAGS).await;
    let (first, second, other) = (
        Receiver::start(vec![]),
        Receiver::start(vec![]),
        Receiver::start(vec![]),
    );
    let (one, _) = app.create_endpoint(&first.url, &["delivery.*"]).await;
    app.create_endpoint(&second.url, &["delivery.scheduled"])
        .await;
    app.create_endpoint(&other.url, &["book.*"]).await;
    let event = app
        .record_event(EventType::DeliveryScheduled, "d-1", json!({"id": "d-1"}))
        .await;
    first.wait_for(1).await;
    second.wait_for(1).await;
    let (status, queued) = app
        .call(
            Method::POST,
            &format!("/api/events/{event}/redeliver"),
            Some(json!({"endpoint_id": one})),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["deliveries"].as_array().unwrap().len(), 1);
    let again = first.wait_for(2).await;
    assert_eq!(again[1].header("webhook-id"), event.to_string());
    assert_eq!(again[1].body, again[0].body);
    let (status, queued) = app
        .call(
            Method::POST,
            &format!("/api/events/{event}/redeliver"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        queued["deliveries"].as_array().unwrap().len(),
        2,
        "{queued}"
    );
    first.wait_for(3).await;
    second.wait_for(2).await;
    assert!(other.received().is_empty());
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/events/{}/redeliver", uuid::Uuid::now_v7()),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, problem) = app
        .call(
            Method::POST,
            &format!("/api/events/{event}/redeliver"),
            Some(json!({"endpoint_id": "nope"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "endpoint_id");
}

async fn during_a_rotation_both_secrets_sign_and_each_verifies(backend: Backend) {
    let app = TestApp::start(backend, TEST_FLAGS).await;
    let receiver = Receiver::start(vec![]);
    let (endpoint, old_secret) = app.create_endpoint(&receiver.url, &["*"]).await;
    let (status, rotated) = app
        .call(
            Method::POST,
            &format!("/api/webhook-endpoints/{endpoint}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, old_secret);
    let (_, read) = app
        .call(
            Method::GET,
            &format!("/api/webhook-endpoints/{endpoint}"),
            None,
        )
        .await;
    assert_eq!(
        read["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );
    assert!(
        !read.to_string().contains("whsec_"),
        "no secret is read back: {read}"
    );
    app.record_event(EventType::OrderPlaced, "o", json!({}))
        .await;
    let received = receiver.wait_for(1).await;
    assert_eq!(
        received[0].header("webhook-signature").split(' ').count(),
        2
    );
    assert!(verifies(new_secret, &received[0]));
    assert!(verifies(&old_secret, &received[0]));
}

async fn endpoints_are_read_listed_changed_and_deleted_by_admins_only(backend: Backend) {
    let app = TestApp::start(backend, TEST_FLAGS).await;
    let (first, _) = app
        .create_endpoint("https://hooks.example.com/a", &["*"])
        .await;
    let (second, _) = app
        .create_endpoint("https://hooks.example.com/b", &["order.*"])
        .await;
    let (status, page) = app
        .call(Method::GET, "/api/webhook-endpoints?limit=1", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"][0]["id"], first.as_str());
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .call(
            Method::GET,
            &format!("/api/webhook-endpoints?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(rest["items"][0]["id"], second.as_str());
    assert_eq!(rest["next_cursor"], Value::Null);
    let (status, changed) = app
        .call(
            Method::PATCH,
            &format!("/api/webhook-endpoints/{second}"),
            Some(json!({"description": "the warehouse", "event_types": ["book.*", "payment.refunded"]})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["description"], "the warehouse");
    assert_eq!(
        changed["event_types"],
        json!(["book.*", "payment.refunded"])
    );
    assert_eq!(changed["url"], "https://hooks.example.com/b");
    for (body, field) in [
        (json!({"event_types": ["order.shipped"]}), "event_types"),
        (json!({"url": "ftp://example.com"}), "url"),
        (json!({"event_types": []}), "event_types"),
    ] {
        let (status, problem) = app
            .call(
                Method::PATCH,
                &format!("/api/webhook-endpoints/{second}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, _) = app
        .call_as(CUSTOMER, Method::GET, "/api/webhook-endpoints", None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/webhook-endpoints/{second}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/webhook-endpoints/{second}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/webhook-endpoints/{second}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// Without `--webhook-allow-private-addresses`: `http://` and inside addresses are refused
/// at creation, and a host that resolves inside is refused at delivery.
mod safe_by_default {
    use super::*;

    const NO_PRIVATE: &[&str] = &[
        "--webhook-tick-ms",
        "20",
        "--webhook-retry-schedule-scale",
        "0.001",
    ];

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn private_addresses_and_plain_http_are_refused_naming_the_url() {
        let app = TestApp::start(Backend::Memory, NO_PRIVATE).await;
        for (url, says) in [
            ("http://hooks.example.com/x", "https://"),
            ("https://127.0.0.1/x", "loopback"),
            ("https://10.0.0.7/x", "private"),
            ("https://169.254.169.254/latest/meta-data", "metadata"),
            ("https://[fd00:ec2::254]/", "metadata"),
            ("https://[::1]:8443/", "loopback"),
        ] {
            let (status, problem) = app
                .call(
                    Method::POST,
                    "/api/webhook-endpoints",
                    Some(json!({"url": url, "event_types": ["*"]})),
                )
                .await;
            assert_eq!(status, 422, "{url}: {problem}");
            assert_eq!(problem["errors"][0]["field"], "url");
            assert!(
                problem["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains(says),
                "{url}: {problem}"
            );
        }
        let (status, problem) = app
            .call(
                Method::POST,
                "/api/webhook-endpoints",
                Some(json!({"url": "https://hooks.example.com", "event_types": ["order.shipped"]})),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(problem["errors"][0]["field"], "event_types");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_host_that_resolves_to_loopback_is_refused_at_delivery_time() {
        let app = TestApp::start(Backend::Memory, NO_PRIVATE).await;
        let receiver = Receiver::start(vec![]);
        let port = receiver
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches("/hooks");
        // Accepted at creation (a name cannot be judged without resolving it), refused
        // when the dispatcher resolves it.
        let (endpoint, _) = app
            .create_endpoint(&format!("https://localhost:{port}/hooks"), &["*"])
            .await;
        app.call(
            Method::POST,
            &format!("/api/webhook-endpoints/{endpoint}/test"),
            None,
        )
        .await;
        let attempts = app
            .attempts_until(&endpoint, "a refused attempt", |attempts| {
                !attempts.is_empty()
            })
            .await;
        let error = attempts[0]["error"].as_str().unwrap();
        assert!(error.contains("loopback"), "{error}");
        assert_eq!(attempts[0]["status_code"], Value::Null);
        assert!(receiver.received().is_empty());
    }
}

/// An event the stores record with their change reaches the endpoint with the resource as
/// the API answered it.
mod produced_by_the_api {
    use super::*;

    per_backend!(a_book_added_through_the_api_is_delivered_as_the_api_answered_it);

    async fn a_book_added_through_the_api_is_delivered_as_the_api_answered_it(backend: Backend) {
        let app = TestApp::start_with_the_stores_log(backend, TEST_FLAGS).await;
        let receiver = Receiver::start(vec![]);
        let (_, secret) = app.create_endpoint(&receiver.url, &["book.created"]).await;
        let (status, book) = app
            .call(
                Method::POST,
                "/api/books",
                Some(json!({
                    "isbn": "9780134685991",
                    "title": "Effective Java",
                    "author": "Joshua Bloch",
                    "price_cents": 4499,
                    "stock": 3
                })),
            )
            .await;
        assert_eq!(status, 201, "{book}");
        let received = receiver.wait_for(1).await;
        assert!(verifies(&secret, &received[0]));
        let body = received[0].json();
        assert_eq!(body["type"], "book.created");
        assert_eq!(body["data"], book);
    }
}
