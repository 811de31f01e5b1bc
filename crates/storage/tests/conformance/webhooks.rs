//! Webhook endpoints and deliveries: every check runs on memory, SQLite and PostgreSQL.
//! The checks "on two instances" use two stores on one database, through independent pools
//! on PostgreSQL, as two gateway instances would.

use std::collections::HashSet;
use std::sync::Arc;

use bookstore_storage::events::{
    AttemptOutcome, DeliveryAttempt, EndpointChanges, EventTypePattern, NewDelivery,
    WebhookEndpoint, WebhookSecret, WebhookStore,
};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use uuid::Uuid;

use crate::harness::{Backend, Stores, join_all};

crate::conformance!(
    an_endpoint_reads_back_as_created_and_changes_as_patched,
    a_rotated_secret_keeps_the_previous_one_until_its_expiry,
    of_two_fan_outs_from_one_cursor_exactly_one_creates_deliveries,
    two_claimers_on_two_instances_never_get_the_same_delivery,
    an_expired_claim_is_taken_over_and_a_running_one_is_not,
    a_retried_delivery_is_due_again_only_at_its_next_attempt,
    the_delivery_log_pages_newest_first_and_tracks_the_failure_streak,
    deleting_an_endpoint_removes_its_deliveries,
    a_late_failed_attempt_never_reopens_a_delivered_delivery,
    claims_follow_the_due_order_across_endpoints_and_skip_disabled_ones,
    purging_removes_old_finished_deliveries_and_their_attempts_and_keeps_pending_ones,
);

/// Times as the stores keep them (microseconds).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn endpoint() -> WebhookEndpoint {
    WebhookEndpoint {
        id: Uuid::now_v7(),
        url: "https://hooks.example.com/bookstore".to_owned(),
        description: "the warehouse".to_owned(),
        event_types: vec![
            EventTypePattern::parse("order.*").unwrap(),
            EventTypePattern::parse("book.created").unwrap(),
        ],
        enabled: true,
        disabled_reason: None,
        secret: WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
        previous_secret: None,
        created_at: now(),
        cursor: 7,
        failing_since: None,
    }
}

fn delivery(endpoint: &WebhookEndpoint, at: DateTime<Utc>) -> NewDelivery {
    NewDelivery::new(
        endpoint.id,
        Uuid::now_v7(),
        "order.placed",
        at,
        r#"{"id":"o-1"}"#,
        at,
    )
}

async fn with_endpoint(backend: Backend) -> (Stores, WebhookEndpoint) {
    let stores = backend.stores().await;
    let endpoint = endpoint();
    stores.webhooks.create_endpoint(&endpoint).await.unwrap();
    (stores, endpoint)
}

/// [`with_endpoint`], and one delivery to it enqueued now (the time is returned).
async fn with_one_delivery(backend: Backend) -> (Stores, WebhookEndpoint, DateTime<Utc>) {
    let (stores, created) = with_endpoint(backend).await;
    let at = now();
    stores
        .webhooks
        .enqueue(&[delivery(&created, at)])
        .await
        .unwrap();
    (stores, created, at)
}

/// A second store on the same database (another pool on PostgreSQL).
async fn second_instance(backend: Backend, stores: &Stores) -> Arc<dyn WebhookStore> {
    match backend {
        Backend::Postgres => {
            stores
                .location
                .as_ref()
                .unwrap()
                .open()
                .await
                .stores(&bookstore_storage::events::Outbox::id_only())
                .webhooks
        }
        Backend::InMemory | Backend::Sqlite => Arc::clone(&stores.webhooks),
    }
}

async fn an_endpoint_reads_back_as_created_and_changes_as_patched(backend: Backend) {
    let (stores, created) = with_endpoint(backend).await;
    let read = stores.webhooks.endpoint(created.id).await.unwrap().unwrap();
    assert_eq!(read, created);
    stores
        .webhooks
        .disable_endpoint(created.id, "answered 410 Gone")
        .await
        .unwrap();
    let disabled = stores.webhooks.endpoint(created.id).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        disabled.disabled_reason.as_deref(),
        Some("answered 410 Gone")
    );
    let patched = stores
        .webhooks
        .update_endpoint(
            created.id,
            &EndpointChanges {
                url: Some("https://other.example.com/".to_owned()),
                description: None,
                event_types: Some(vec![EventTypePattern::Any]),
                enabled: Some(true),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(patched.url, "https://other.example.com/");
    assert_eq!(patched.description, "the warehouse");
    assert_eq!(patched.event_types, vec![EventTypePattern::Any]);
    assert!(patched.enabled);
    assert_eq!(patched.disabled_reason, None);
    assert_eq!(patched.cursor, 7);
    let (page, more) = stores
        .webhooks
        .list_endpoints(Uuid::nil(), 10)
        .await
        .unwrap();
    assert_eq!((page.len(), more), (1, false));
    assert!(
        stores
            .webhooks
            .update_endpoint(Uuid::now_v7(), &EndpointChanges::default())
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_rotated_secret_keeps_the_previous_one_until_its_expiry(backend: Backend) {
    let (stores, created) = with_endpoint(backend).await;
    let until = now() + Duration::hours(24);
    let new_secret = WebhookSecret::new("whsec_bmV3bmV3bmV3bmV3bmV3bmV3bmV3bmV3".to_owned());
    let rotated = stores
        .webhooks
        .rotate_secret(created.id, &new_secret, until)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.secret, new_secret);
    assert_eq!(
        rotated.previous_secret,
        Some((created.secret.clone(), until))
    );
    assert_eq!(rotated.signing_secrets(now()).len(), 2);
}

async fn of_two_fan_outs_from_one_cursor_exactly_one_creates_deliveries(backend: Backend) {
    let (stores, created) = with_endpoint(backend).await;
    let other = second_instance(backend, &stores).await;
    let at = now();
    let tasks = [Arc::clone(&stores.webhooks), other]
        .into_iter()
        .map(|store| {
            let deliveries = vec![delivery(&created, at), delivery(&created, at)];
            tokio::spawn(async move { store.fan_out(created.id, 7, 9, &deliveries).await.unwrap() })
        })
        .collect();
    let done = join_all(tasks).await;
    assert_eq!(done.iter().filter(|done| **done).count(), 1, "{done:?}");
    let read = stores.webhooks.endpoint(created.id).await.unwrap().unwrap();
    assert_eq!(read.cursor, 9);
    let ages = stores.webhooks.pending_ages().await.unwrap();
    assert_eq!(ages[&created.id].pending, 2);
    // From a cursor that moved on: nothing.
    assert!(
        !stores
            .webhooks
            .fan_out(created.id, 7, 10, &[delivery(&created, at)])
            .await
            .unwrap()
    );
    assert!(
        stores
            .webhooks
            .endpoints_behind(9)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(stores.webhooks.endpoints_behind(10).await.unwrap().len(), 1);
}

async fn two_claimers_on_two_instances_never_get_the_same_delivery(backend: Backend) {
    let (stores, created) = with_endpoint(backend).await;
    let other = second_instance(backend, &stores).await;
    let at = now();
    let deliveries: Vec<NewDelivery> = (0..40).map(|_| delivery(&created, at)).collect();
    stores.webhooks.enqueue(&deliveries).await.unwrap();
    let claim_time = now() + Duration::seconds(1);
    let tasks = [Arc::clone(&stores.webhooks), other]
        .into_iter()
        .flat_map(|store| [Arc::clone(&store), store])
        .map(|store| {
            let claimer = Uuid::now_v7();
            tokio::spawn(async move {
                let mut claimed = Vec::new();
                for _ in 0..10 {
                    claimed.extend(
                        store
                            .claim_due(claimer, claim_time, claim_time + Duration::seconds(60), 3)
                            .await
                            .unwrap()
                            .into_iter()
                            .map(|delivery| delivery.id),
                    );
                }
                claimed
            })
        })
        .collect();
    let claimed: Vec<Uuid> = join_all(tasks).await.into_iter().flatten().collect();
    let distinct: HashSet<Uuid> = claimed.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        claimed.len(),
        "a delivery was claimed twice"
    );
    assert_eq!(distinct.len(), 40);
}

async fn an_expired_claim_is_taken_over_and_a_running_one_is_not(backend: Backend) {
    let (stores, created, at) = with_one_delivery(backend).await;
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let lease = Duration::seconds(30);
    let claimed = stores
        .webhooks
        .claim_due(first, at, at + lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].endpoint, created);
    assert_eq!(claimed[0].attempts, 0);
    let during = at + Duration::seconds(10);
    assert!(
        stores
            .webhooks
            .claim_due(second, during, during + lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let after = at + lease + Duration::seconds(1);
    let taken = stores
        .webhooks
        .claim_due(second, after, after + lease, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, claimed[0].id);
}

fn attempt_for(
    claimed: &bookstore_storage::events::ClaimedDelivery,
    at: DateTime<Utc>,
    status: Option<u16>,
) -> DeliveryAttempt {
    DeliveryAttempt {
        id: Uuid::now_v7(),
        delivery_id: claimed.id,
        endpoint_id: claimed.endpoint.id,
        event_id: claimed.event_id,
        event_type: claimed.event_type.clone(),
        attempted_at: at,
        status_code: status,
        error: status.is_none().then(|| "connection refused".to_owned()),
        duration_ms: 12,
    }
}

async fn a_retried_delivery_is_due_again_only_at_its_next_attempt(backend: Backend) {
    let (stores, _, at) = with_one_delivery(backend).await;
    let claimer = Uuid::now_v7();
    let lease = Duration::seconds(30);
    let claimed = stores
        .webhooks
        .claim_due(claimer, at, at + lease, 1)
        .await
        .unwrap()
        .remove(0);
    let retry_at = at + Duration::seconds(5);
    stores
        .webhooks
        .record_attempt(
            &attempt_for(&claimed, at, Some(500)),
            AttemptOutcome::RetryAt(retry_at),
        )
        .await
        .unwrap();
    let before = retry_at - Duration::milliseconds(1);
    assert!(
        stores
            .webhooks
            .claim_due(claimer, before, before + lease, 1)
            .await
            .unwrap()
            .is_empty(),
        "the claim is released but the delivery is not due yet"
    );
    let again = stores
        .webhooks
        .claim_due(claimer, retry_at, retry_at + lease, 1)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].body, claimed.body);
    stores
        .webhooks
        .record_attempt(
            &attempt_for(&again[0], retry_at, Some(200)),
            AttemptOutcome::Succeeded,
        )
        .await
        .unwrap();
    let later = retry_at + Duration::hours(1);
    assert!(
        stores
            .webhooks
            .claim_due(claimer, later, later + lease, 1)
            .await
            .unwrap()
            .is_empty(),
        "a delivered delivery is never claimed again"
    );
    assert!(stores.webhooks.pending_ages().await.unwrap().is_empty());
}

async fn the_delivery_log_pages_newest_first_and_tracks_the_failure_streak(backend: Backend) {
    let (stores, created, at) = with_one_delivery(backend).await;
    let claimed = stores
        .webhooks
        .claim_due(Uuid::now_v7(), at, at + Duration::seconds(30), 1)
        .await
        .unwrap()
        .remove(0);
    let mut ids = Vec::new();
    let mut streaks = Vec::new();
    for (offset, status) in [(0, None), (1, Some(503)), (2, Some(204))] {
        let attempt = attempt_for(&claimed, at + Duration::seconds(offset), status);
        ids.push(attempt.id);
        let outcome = match status {
            Some(204) => AttemptOutcome::Succeeded,
            _ => AttemptOutcome::RetryAt(at + Duration::seconds(offset + 1)),
        };
        streaks.push(
            stores
                .webhooks
                .record_attempt(&attempt, outcome)
                .await
                .unwrap(),
        );
    }
    assert_eq!(streaks, vec![Some(at), Some(at), None]);
    let first = stores.webhooks.attempts(created.id, None, 2).await.unwrap();
    assert!(first.has_more);
    let seen: Vec<Uuid> = first.attempts.iter().map(|attempt| attempt.id).collect();
    assert_eq!(seen, vec![ids[2], ids[1]]);
    assert_eq!(first.attempts[0].status_code, Some(204));
    let rest = stores
        .webhooks
        .attempts(created.id, Some(ids[1]), 2)
        .await
        .unwrap();
    assert!(!rest.has_more);
    assert_eq!(rest.attempts.len(), 1);
    assert_eq!(rest.attempts[0].id, ids[0]);
    assert_eq!(rest.attempts[0].status_code, None);
    assert_eq!(
        rest.attempts[0].error.as_deref(),
        Some("connection refused")
    );
    assert_eq!(rest.attempts[0].duration_ms, 12);
}

async fn deleting_an_endpoint_removes_its_deliveries(backend: Backend) {
    let (stores, created, at) = with_one_delivery(backend).await;
    assert!(stores.webhooks.delete_endpoint(created.id).await.unwrap());
    assert!(!stores.webhooks.delete_endpoint(created.id).await.unwrap());
    assert!(
        stores
            .webhooks
            .endpoint(created.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(stores.webhooks.pending_ages().await.unwrap().is_empty());
    assert!(
        stores
            .webhooks
            .claim_due(Uuid::now_v7(), at, at + Duration::seconds(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_late_failed_attempt_never_reopens_a_delivered_delivery(backend: Backend) {
    let (stores, created, at) = with_one_delivery(backend).await;
    let lease = Duration::seconds(30);
    // The first claimer's lease runs out while it is still sending; another takes over
    // and delivers; then the first one's failure arrives.
    let slow = stores
        .webhooks
        .claim_due(Uuid::now_v7(), at, at + lease, 1)
        .await
        .unwrap()
        .remove(0);
    let after = at + lease + Duration::seconds(1);
    let fast = stores
        .webhooks
        .claim_due(Uuid::now_v7(), after, after + lease, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(fast.id, slow.id);
    stores
        .webhooks
        .record_attempt(
            &attempt_for(&fast, after, Some(204)),
            AttemptOutcome::Succeeded,
        )
        .await
        .unwrap();
    let retry_at = after + Duration::seconds(5);
    stores
        .webhooks
        .record_attempt(
            &attempt_for(&slow, after, None),
            AttemptOutcome::RetryAt(retry_at),
        )
        .await
        .unwrap();
    let later = retry_at + Duration::hours(1);
    assert!(
        stores
            .webhooks
            .claim_due(Uuid::now_v7(), later, later + lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a delivered event was queued to be sent again"
    );
    assert!(stores.webhooks.pending_ages().await.unwrap().is_empty());
    let log = stores
        .webhooks
        .attempts(created.id, None, 10)
        .await
        .unwrap();
    assert_eq!(log.attempts.len(), 2, "both attempts are in the log");
}

async fn claims_follow_the_due_order_across_endpoints_and_skip_disabled_ones(backend: Backend) {
    let (stores, first) = with_endpoint(backend).await;
    let second = endpoint();
    let third = endpoint();
    for endpoint in [&second, &third] {
        stores.webhooks.create_endpoint(endpoint).await.unwrap();
    }
    let at = now();
    // Interleaved in time between the first two endpoints; the third is disabled.
    let mut expected = Vec::new();
    for step in 0..6 {
        let owner = if step % 2 == 0 { &first } else { &second };
        let new = delivery(owner, at + Duration::seconds(step));
        expected.push(new.id);
        stores.webhooks.enqueue(&[new]).await.unwrap();
        stores
            .webhooks
            .enqueue(&[delivery(&third, at + Duration::seconds(step))])
            .await
            .unwrap();
    }
    stores
        .webhooks
        .disable_endpoint(third.id, "answered 410 Gone")
        .await
        .unwrap();
    let now = at + Duration::seconds(10);
    let lease = Duration::seconds(30);
    let claimer = Uuid::now_v7();
    // The earliest due first (in any order within a claim).
    let one: HashSet<Uuid> = stores
        .webhooks
        .claim_due(claimer, now, now + lease, 4)
        .await
        .unwrap()
        .iter()
        .map(|claimed| claimed.id)
        .collect();
    assert_eq!(one, expected[..4].iter().copied().collect());
    let two: HashSet<Uuid> = stores
        .webhooks
        .claim_due(claimer, now, now + lease, 4)
        .await
        .unwrap()
        .iter()
        .map(|claimed| claimed.id)
        .collect();
    assert_eq!(
        two,
        expected[4..].iter().copied().collect(),
        "the claimed ones are skipped"
    );
}

async fn purging_removes_old_finished_deliveries_and_their_attempts_and_keeps_pending_ones(
    backend: Backend,
) {
    let (stores, created) = with_endpoint(backend).await;
    let old = now() - Duration::days(40);
    let recent = now() - Duration::days(1);
    let lease = Duration::seconds(30);
    // Three old deliveries: one delivered, one failed for good, one still being retried;
    // one recent delivered one.
    let outcomes = [
        (old, AttemptOutcome::Succeeded),
        (old + Duration::seconds(1), AttemptOutcome::Failed),
        (
            old + Duration::seconds(2),
            AttemptOutcome::RetryAt(now() + Duration::hours(1)),
        ),
        (recent, AttemptOutcome::Succeeded),
    ];
    for (at, outcome) in outcomes {
        stores
            .webhooks
            .enqueue(&[delivery(&created, at)])
            .await
            .unwrap();
        let claimed = stores
            .webhooks
            .claim_due(Uuid::now_v7(), at, at + lease, 1)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(claimed.created_at, at);
        stores
            .webhooks
            .record_attempt(&attempt_for(&claimed, at, Some(200)), outcome)
            .await
            .unwrap();
    }
    let cut = now() - Duration::days(30);
    assert_eq!(stores.webhooks.purge_finished(cut).await.unwrap(), 2);
    assert_eq!(stores.webhooks.purge_finished(cut).await.unwrap(), 0);
    let log = stores
        .webhooks
        .attempts(created.id, None, 10)
        .await
        .unwrap();
    let kept: Vec<DateTime<Utc>> = log
        .attempts
        .iter()
        .map(|attempt| attempt.attempted_at)
        .collect();
    assert_eq!(
        kept,
        vec![recent, old + Duration::seconds(2)],
        "the pending delivery's attempt and the recent one's stay"
    );
    let ages = stores.webhooks.pending_ages().await.unwrap();
    assert_eq!(ages[&created.id].pending, 1);
    let due = now() + Duration::hours(2);
    let retried = stores
        .webhooks
        .claim_due(Uuid::now_v7(), due, due + lease, 10)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1, "the pending delivery is still retried");
}
