//! Relay cursors: one holder at a time, progress that never goes back and survives a
//! handover, leases that expire, and (SQL) relays of a stopped instance free at once.

use std::time::Duration;

use bookstore_storage::BackendKind;
use uuid::Uuid;

use crate::conformance;
use crate::harness::{Backend, Stores};

conformance!(
    one_holder_at_a_time_keeps_a_relay_and_its_position_survives_a_handover,
    a_relay_whose_lease_expired_can_be_taken_over;
    sql_only:
    a_relay_of_a_stopped_instance_is_free_at_once_and_a_live_ones_is_not,
);

const LEASE: Duration = Duration::from_secs(600);

/// Two holders. On PostgreSQL the ids of two live instances on the database; on SQLite
/// (one process per file) the live instance and an id without an instance row, which can
/// take a relay only when the live one does not hold it.
async fn two_holders(stores: &Stores) -> (Uuid, Uuid, Option<bookstore_storage::Database>) {
    match (&stores.database, &stores.location) {
        (Some(database), Some(location)) if database.kind() == BackendKind::Postgres => {
            let other = location.open().await;
            (
                database.instance().as_uuid(),
                other.instance().as_uuid(),
                Some(other),
            )
        }
        (Some(database), _) => (database.instance().as_uuid(), Uuid::now_v7(), None),
        _ => (Uuid::now_v7(), Uuid::now_v7(), None),
    }
}

async fn one_holder_at_a_time_keeps_a_relay_and_its_position_survives_a_handover(backend: Backend) {
    let stores = backend.stores().await;
    let relays = &stores.relays;
    let (first, second, _other) = two_holders(&stores).await;
    assert_eq!(relays.claim("nats", first, LEASE).await.unwrap(), Some(0));
    assert_eq!(relays.claim("nats", first, LEASE).await.unwrap(), Some(0));
    assert_eq!(relays.claim("nats", second, LEASE).await.unwrap(), None);
    assert!(relays.advance("nats", first, 7, LEASE).await.unwrap());
    assert!(!relays.advance("nats", second, 9, LEASE).await.unwrap());
    assert!(
        relays.advance("nats", first, 3, LEASE).await.unwrap(),
        "never back"
    );
    relays.release("nats", second).await.unwrap();
    assert_eq!(relays.claim("nats", second, LEASE).await.unwrap(), None);
    relays.release("nats", first).await.unwrap();
    assert_eq!(relays.claim("nats", second, LEASE).await.unwrap(), Some(7));
    assert!(!relays.advance("nats", first, 8, LEASE).await.unwrap());
    assert_eq!(
        relays.claim("metrics", first, LEASE).await.unwrap(),
        Some(0)
    );
}

async fn a_relay_whose_lease_expired_can_be_taken_over(backend: Backend) {
    let stores = backend.stores().await;
    let relays = &stores.relays;
    let (first, second, _other) = two_holders(&stores).await;
    assert_eq!(
        relays.claim("nats", first, Duration::ZERO).await.unwrap(),
        Some(0)
    );
    assert!(
        relays
            .advance("nats", first, 4, Duration::ZERO)
            .await
            .unwrap()
    );
    assert_eq!(relays.claim("nats", second, LEASE).await.unwrap(), Some(4));
    assert!(!relays.advance("nats", first, 5, LEASE).await.unwrap());
}

async fn a_relay_of_a_stopped_instance_is_free_at_once_and_a_live_ones_is_not(backend: Backend) {
    let stores = backend.stores().await;
    let location = stores.location.clone().expect("a SQL store");
    let first = stores.database.clone().expect("a SQL store");
    let first_id = first.instance().as_uuid();
    assert_eq!(
        stores.relays.claim("nats", first_id, LEASE).await.unwrap(),
        Some(0)
    );
    assert!(
        stores
            .relays
            .advance("nats", first_id, 11, LEASE)
            .await
            .unwrap()
    );
    let outbox = bookstore_storage::events::Outbox::id_only();
    let second = if backend == Backend::Postgres {
        let second = location.open().await;
        let relays = second.stores(&outbox).relays;
        let id = second.instance().as_uuid();
        assert_eq!(
            relays.claim("nats", id, LEASE).await.unwrap(),
            None,
            "the holder is live"
        );
        first.deregister_instance().await.unwrap();
        second
    } else {
        // One process per file: the next one to open it finds every earlier one stopped.
        first.close().await;
        location.open().await
    };
    let relays = second.stores(&outbox).relays;
    let id = second.instance().as_uuid();
    assert_eq!(relays.claim("nats", id, LEASE).await.unwrap(), Some(11));
    assert!(!relays.advance("nats", first_id, 12, LEASE).await.unwrap());
    second.close().await;
}
