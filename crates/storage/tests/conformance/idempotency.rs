//! Idempotency records: every check runs on the in-memory store, SQLite and PostgreSQL.
//! The checks named "on another instance" use two stores on one database, through
//! independent pools on PostgreSQL, as two gateway instances would.

use std::sync::Arc;

use bookstore_sales::CustomerId;
use bookstore_storage::idempotency::{Claim, Fingerprint, IdempotencyStore, StoredResponse};
use chrono::{Duration, Utc};

use crate::harness::{Backend, Stores, join_all};

crate::conformance!(
    a_key_is_started_then_in_flight_then_replayed,
    a_key_is_started_then_in_flight_then_replayed_on_another_instance,
    a_key_reused_for_another_request_is_a_mismatch,
    a_key_reused_for_another_method_path_or_body_is_a_mismatch,
    keys_are_scoped_to_their_owner,
    another_request_takes_a_stale_claim_over_as_a_fresh_start,
    finished_keys_expire_after_the_retention_and_stale_claims_can_be_taken_over,
    expired_records_are_taken_over_and_purged,
    a_released_claim_can_be_started_again,
    of_sixteen_concurrent_claims_on_two_instances_exactly_one_starts,
);

fn fingerprint(byte: u8) -> Fingerprint {
    Fingerprint::from_bytes([byte; 32])
}

/// The fingerprint of a request, as the gateway makes it from its method, path and body.
fn request(method: &str, path: &str, body: &[u8]) -> Fingerprint {
    Fingerprint::of_parts(&[method.as_bytes(), path.as_bytes(), body])
}

fn owner(name: &str) -> CustomerId {
    CustomerId::new(name)
}

fn response(body: &str) -> StoredResponse {
    StoredResponse {
        status: 201,
        content_type: "application/json".to_owned(),
        location: Some("/api/orders/1".to_owned()),
        body: body.as_bytes().to_vec(),
    }
}

fn response_without_location(body: &str) -> StoredResponse {
    StoredResponse {
        location: None,
        ..response(body)
    }
}

/// Two stores on one database, through independent pools on PostgreSQL. A SQLite file
/// serves one process (a second open is refused) and memory is one process: their "second
/// instance" is the same store.
async fn two_instances(
    backend: Backend,
) -> (Stores, Arc<dyn IdempotencyStore>, Arc<dyn IdempotencyStore>) {
    let stores = backend.stores().await;
    let first = Arc::clone(&stores.idempotency);
    let second = match backend {
        Backend::Postgres => {
            stores
                .location
                .as_ref()
                .unwrap()
                .open()
                .await
                .stores(&bookstore_storage::events::Outbox::id_only())
                .idempotency
        }
        Backend::InMemory | Backend::Sqlite => Arc::clone(&stores.idempotency),
    };
    (stores, first, second)
}

async fn a_key_is_started_then_in_flight_then_replayed(backend: Backend) {
    let stores = backend.stores().await;
    let store = &stores.idempotency;
    let alice = owner("alice");
    let print = request("POST", "/api/orders", b"{}");
    let now = Utc::now();
    assert_eq!(
        store.claim(&alice, "k", print, now).await.unwrap(),
        Claim::Started
    );
    assert_eq!(
        store.claim(&alice, "k", print, now).await.unwrap(),
        Claim::InFlight
    );
    store
        .complete(&alice, "k", response_without_location("first"), now)
        .await
        .unwrap();
    assert_eq!(
        store.claim(&alice, "k", print, now).await.unwrap(),
        Claim::Replay(response_without_location("first"))
    );
}

async fn a_key_is_started_then_in_flight_then_replayed_on_another_instance(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let alice = owner("alice");
    let now = Utc::now();
    let print = fingerprint(1);
    assert_eq!(
        one.claim(&alice, "k", print, now).await.unwrap(),
        Claim::Started
    );
    assert_eq!(
        two.claim(&alice, "k", print, now).await.unwrap(),
        Claim::InFlight
    );
    one.complete(&alice, "k", response("first"), now)
        .await
        .unwrap();
    assert_eq!(
        two.claim(&alice, "k", print, now).await.unwrap(),
        Claim::Replay(response("first"))
    );
    let without_location = StoredResponse {
        location: None,
        body: Vec::new(),
        ..response("")
    };
    assert_eq!(
        two.claim(&alice, "k2", print, now).await.unwrap(),
        Claim::Started
    );
    two.complete(&alice, "k2", without_location.clone(), now)
        .await
        .unwrap();
    assert_eq!(
        one.claim(&alice, "k2", print, now).await.unwrap(),
        Claim::Replay(without_location)
    );
}

async fn a_key_reused_for_another_request_is_a_mismatch(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let alice = owner("alice");
    let now = Utc::now();
    one.claim(&alice, "k", fingerprint(1), now).await.unwrap();
    assert_eq!(
        two.claim(&alice, "k", fingerprint(2), now).await.unwrap(),
        Claim::Mismatch
    );
    one.complete(&alice, "k", response("x"), now).await.unwrap();
    assert_eq!(
        two.claim(&alice, "k", fingerprint(2), now).await.unwrap(),
        Claim::Mismatch
    );
}

async fn a_key_reused_for_another_method_path_or_body_is_a_mismatch(backend: Backend) {
    let stores = backend.stores().await;
    let store = &stores.idempotency;
    let alice = owner("alice");
    let now = Utc::now();
    store
        .claim(&alice, "k", request("POST", "/a", b"1"), now)
        .await
        .unwrap();
    for other in [request("POST", "/a", b"2"), request("POST", "/b", b"1")] {
        assert_eq!(
            store.claim(&alice, "k", other, now).await.unwrap(),
            Claim::Mismatch
        );
    }
}

async fn keys_are_scoped_to_their_owner(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let now = Utc::now();
    assert_eq!(
        one.claim(&owner("a"), "k", fingerprint(1), now)
            .await
            .unwrap(),
        Claim::Started
    );
    assert_eq!(
        two.claim(&owner("b"), "k", fingerprint(1), now)
            .await
            .unwrap(),
        Claim::Started
    );
}

async fn another_request_takes_a_stale_claim_over_as_a_fresh_start(backend: Backend) {
    let stores = backend.stores().await;
    let store = &stores.idempotency;
    let alice = owner("alice");
    let start = Utc::now();
    let first = request("POST", "/a", b"1");
    store.claim(&alice, "k", first, start).await.unwrap();
    let later = start + Duration::seconds(61);
    assert_eq!(
        store
            .claim(&alice, "k", request("POST", "/b", b"2"), later)
            .await
            .unwrap(),
        Claim::Started
    );
}

async fn finished_keys_expire_after_the_retention_and_stale_claims_can_be_taken_over(
    backend: Backend,
) {
    let stores = backend.stores().await;
    let store = &stores.idempotency;
    let alice = owner("alice");
    let print = request("POST", "/a", b"1");
    let start = Utc::now();
    store.claim(&alice, "stale", print, start).await.unwrap();
    let later = start + Duration::seconds(61);
    // The same request takes its own stale claim over as a resumed attempt.
    assert_eq!(
        store.claim(&alice, "stale", print, later).await.unwrap(),
        Claim::Resumed
    );

    store.claim(&alice, "done", print, start).await.unwrap();
    store
        .complete(&alice, "done", response_without_location("x"), start)
        .await
        .unwrap();
    let almost = start + Duration::hours(23);
    assert_eq!(
        store.claim(&alice, "done", print, almost).await.unwrap(),
        Claim::Replay(response_without_location("x"))
    );
    let day_later = start + Duration::hours(24);
    // Both the finished key and the abandoned "stale" claim are gone.
    assert_eq!(store.purge_expired(day_later).await.unwrap(), 2);
    assert_eq!(
        store.claim(&alice, "done", print, day_later).await.unwrap(),
        Claim::Started
    );
}

async fn expired_records_are_taken_over_and_purged(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let alice = owner("alice");
    let start = Utc::now();
    let print = fingerprint(1);
    one.claim(&alice, "stale", print, start).await.unwrap();
    let almost = start + Duration::seconds(59);
    assert_eq!(
        two.claim(&alice, "stale", print, almost).await.unwrap(),
        Claim::InFlight
    );
    let later = start + Duration::seconds(60);
    // An abandoned claim is taken over, even by another request.
    assert_eq!(
        two.claim(&alice, "stale", fingerprint(2), later)
            .await
            .unwrap(),
        Claim::Started
    );
    assert_eq!(
        one.claim(&alice, "stale", print, later).await.unwrap(),
        Claim::Mismatch
    );

    one.claim(&alice, "done", print, start).await.unwrap();
    one.complete(&alice, "done", response("x"), start)
        .await
        .unwrap();
    let almost_a_day = start + Duration::hours(23);
    assert_eq!(
        two.claim(&alice, "done", print, almost_a_day)
            .await
            .unwrap(),
        Claim::Replay(response("x"))
    );
    let a_day_later = start + Duration::hours(24);
    // The finished key and the claim taken over at `later` (abandoned since) are purged.
    assert_eq!(two.purge_expired(a_day_later).await.unwrap(), 2);
    assert_eq!(one.purge_expired(a_day_later).await.unwrap(), 0);
    assert_eq!(
        one.claim(&alice, "done", print, a_day_later).await.unwrap(),
        Claim::Started
    );
}

async fn a_released_claim_can_be_started_again(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let alice = owner("alice");
    let now = Utc::now();
    one.claim(&alice, "k", fingerprint(1), now).await.unwrap();
    two.release(&alice, "k").await.unwrap();
    assert_eq!(
        two.claim(&alice, "k", fingerprint(1), now).await.unwrap(),
        Claim::Started
    );
    // Completing a released key records nothing.
    one.release(&alice, "k").await.unwrap();
    one.complete(&alice, "k", response("x"), now).await.unwrap();
    assert_eq!(
        two.claim(&alice, "k", fingerprint(1), now).await.unwrap(),
        Claim::Started
    );
}

async fn of_sixteen_concurrent_claims_on_two_instances_exactly_one_starts(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let now = Utc::now();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks = (0..16)
        .map(|index| {
            let store = if index % 2 == 0 {
                Arc::clone(&one)
            } else {
                Arc::clone(&two)
            };
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                store
                    .claim(&owner("alice"), "k", fingerprint(7), now)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let claims = join_all(tasks).await;
    let started = claims
        .iter()
        .filter(|claim| **claim == Claim::Started)
        .count();
    assert_eq!(started, 1, "{claims:?}");
    assert!(
        claims
            .iter()
            .all(|claim| matches!(claim, Claim::Started | Claim::InFlight))
    );
}
