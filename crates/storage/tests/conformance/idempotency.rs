//! Idempotency records, shared by instances: every check uses two independent pools on
//! one database, as two gateway instances would.

use std::sync::Arc;

use bookstore_storage::{IdempotencyClaim, IdempotentResponse, SqlIdempotencyStore};
use chrono::{Duration, Utc};

use crate::harness::{Backend, join_all};

crate::conformance!(; sql_only:
    a_key_is_started_then_in_flight_then_replayed_on_another_instance,
    a_key_reused_for_another_request_is_a_mismatch,
    keys_are_scoped_to_their_owner,
    expired_records_are_taken_over_and_purged,
    a_released_claim_can_be_started_again,
    of_sixteen_concurrent_claims_on_two_instances_exactly_one_starts,
);

fn fingerprint(byte: u8) -> [u8; 32] {
    [byte; 32]
}

fn response(body: &str) -> IdempotentResponse {
    IdempotentResponse {
        status: 201,
        content_type: "application/json".to_owned(),
        location: Some("/api/orders/1".to_owned()),
        body: body.as_bytes().to_vec(),
    }
}

/// Two stores on one database, through independent pools (on PostgreSQL).
async fn two_instances(
    backend: Backend,
) -> (
    crate::harness::Stores,
    SqlIdempotencyStore,
    SqlIdempotencyStore,
) {
    let stores = backend.stores().await;
    let first = stores.idempotency();
    // A SQLite file serves one process (a second open is refused): its "second instance" is
    // a second store on the same connections.
    let second_database = match backend {
        Backend::Sqlite => stores.database.clone().unwrap(),
        _ => stores.location.as_ref().unwrap().open().await,
    };
    let second = SqlIdempotencyStore::new(second_database);
    (stores, first, second)
}

async fn a_key_is_started_then_in_flight_then_replayed_on_another_instance(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let now = Utc::now();
    let print = fingerprint(1);
    assert_eq!(
        one.claim("alice", "k", print, now).await.unwrap(),
        IdempotencyClaim::Started
    );
    assert_eq!(
        two.claim("alice", "k", print, now).await.unwrap(),
        IdempotencyClaim::InFlight
    );
    one.complete("alice", "k", &response("first"), now)
        .await
        .unwrap();
    assert_eq!(
        two.claim("alice", "k", print, now).await.unwrap(),
        IdempotencyClaim::Replay(response("first"))
    );
    let without_location = IdempotentResponse {
        location: None,
        body: Vec::new(),
        ..response("")
    };
    assert_eq!(
        two.claim("alice", "k2", print, now).await.unwrap(),
        IdempotencyClaim::Started
    );
    two.complete("alice", "k2", &without_location, now)
        .await
        .unwrap();
    assert_eq!(
        one.claim("alice", "k2", print, now).await.unwrap(),
        IdempotencyClaim::Replay(without_location)
    );
}

async fn a_key_reused_for_another_request_is_a_mismatch(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let now = Utc::now();
    one.claim("alice", "k", fingerprint(1), now).await.unwrap();
    assert_eq!(
        two.claim("alice", "k", fingerprint(2), now).await.unwrap(),
        IdempotencyClaim::Mismatch
    );
    one.complete("alice", "k", &response("x"), now)
        .await
        .unwrap();
    assert_eq!(
        two.claim("alice", "k", fingerprint(2), now).await.unwrap(),
        IdempotencyClaim::Mismatch
    );
}

async fn keys_are_scoped_to_their_owner(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let now = Utc::now();
    assert_eq!(
        one.claim("a", "k", fingerprint(1), now).await.unwrap(),
        IdempotencyClaim::Started
    );
    assert_eq!(
        two.claim("b", "k", fingerprint(1), now).await.unwrap(),
        IdempotencyClaim::Started
    );
}

async fn expired_records_are_taken_over_and_purged(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let start = Utc::now();
    let print = fingerprint(1);
    one.claim("alice", "stale", print, start).await.unwrap();
    let almost = start + Duration::seconds(59);
    assert_eq!(
        two.claim("alice", "stale", print, almost).await.unwrap(),
        IdempotencyClaim::InFlight
    );
    let later = start + Duration::seconds(60);
    // An abandoned claim is taken over, even by another request.
    assert_eq!(
        two.claim("alice", "stale", fingerprint(2), later)
            .await
            .unwrap(),
        IdempotencyClaim::Started
    );
    assert_eq!(
        one.claim("alice", "stale", print, later).await.unwrap(),
        IdempotencyClaim::Mismatch
    );

    one.claim("alice", "done", print, start).await.unwrap();
    one.complete("alice", "done", &response("x"), start)
        .await
        .unwrap();
    let almost_a_day = start + Duration::hours(23);
    assert_eq!(
        two.claim("alice", "done", print, almost_a_day)
            .await
            .unwrap(),
        IdempotencyClaim::Replay(response("x"))
    );
    let a_day_later = start + Duration::hours(24);
    // The finished key and the claim taken over at `later` (abandoned since) are purged.
    assert_eq!(two.purge_expired(a_day_later).await.unwrap(), 2);
    assert_eq!(one.purge_expired(a_day_later).await.unwrap(), 0);
    assert_eq!(
        one.claim("alice", "done", print, a_day_later)
            .await
            .unwrap(),
        IdempotencyClaim::Started
    );
}

async fn a_released_claim_can_be_started_again(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let now = Utc::now();
    one.claim("alice", "k", fingerprint(1), now).await.unwrap();
    two.release("alice", "k").await.unwrap();
    assert_eq!(
        two.claim("alice", "k", fingerprint(1), now).await.unwrap(),
        IdempotencyClaim::Started
    );
    // Completing a released key records nothing.
    one.release("alice", "k").await.unwrap();
    one.complete("alice", "k", &response("x"), now)
        .await
        .unwrap();
    assert_eq!(
        two.claim("alice", "k", fingerprint(1), now).await.unwrap(),
        IdempotencyClaim::Started
    );
}

async fn of_sixteen_concurrent_claims_on_two_instances_exactly_one_starts(backend: Backend) {
    let (_stores, one, two) = two_instances(backend).await;
    let now = Utc::now();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks = (0..16)
        .map(|index| {
            let store = if index % 2 == 0 {
                one.clone()
            } else {
                two.clone()
            };
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                store
                    .claim("alice", "k", fingerprint(7), now)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let claims = join_all(tasks).await;
    let started = claims
        .iter()
        .filter(|claim| **claim == IdempotencyClaim::Started)
        .count();
    assert_eq!(started, 1, "{claims:?}");
    assert!(claims.iter().all(|claim| matches!(
        claim,
        IdempotencyClaim::Started | IdempotencyClaim::InFlight
    )));
}
