//! Instances, leases and the return journal: what lets recovery settle the work of a
//! stopped process at once, and never the work of a live one.

use std::time::{Duration, Instant};

use bookstore_sales::{CustomerId, SalesError};
use bookstore_storage::idempotency::{Claim, Fingerprint};
use bookstore_storage::{LeaseRenewal, StorageError, connect};
use chrono::Utc;

use crate::conformance;
use crate::harness::{
    Backend, Stores, book, fresh_reservation, join_all, line, order_for, stock_catalogue, stock_of,
};

conformance!(
    a_return_gives_its_stock_back_once_when_completed,
    an_abandoned_return_gives_nothing_back,
    a_return_begun_twice_keeps_its_first_lines,
    concurrent_completions_of_one_return_give_the_stock_back_once,
    returns_older_than_a_cutoff_are_listed_oldest_first;
    sql_only:
    the_journal_of_a_live_instance_is_not_a_stopped_processes_journal,
    the_journal_of_a_deregistered_instance_is_a_stopped_processes_journal,
    an_expired_lease_is_reaped_and_cannot_be_renewed,
    no_order_is_recorded_under_an_instance_without_a_lease,
    the_in_flight_claim_of_a_stopped_instance_is_resumed_by_the_same_request,
    a_second_open_of_a_sqlite_file_is_refused_until_the_first_closes,
);

async fn a_return_gives_its_stock_back_once_when_completed(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "One", "Author", 100, 5)]).await;
    let id = fresh_reservation();
    stores
        .catalogue
        .begin_return(id, &[line(1, 2)])
        .await
        .unwrap();
    assert_eq!(
        stock_of(&stores, 1).await,
        5,
        "beginning a return gives nothing"
    );

    stores.catalogue.complete_return(id).await.unwrap();
    assert_eq!(stock_of(&stores, 1).await, 7);
    stores.catalogue.complete_return(id).await.unwrap();
    stores.catalogue.abandon_return(id).await.unwrap();
    assert_eq!(stock_of(&stores, 1).await, 7, "a completed return is gone");
    assert_eq!(all_returns(&stores).await, vec![]);
}

async fn an_abandoned_return_gives_nothing_back(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "One", "Author", 100, 5)]).await;
    let id = fresh_reservation();
    stores
        .catalogue
        .begin_return(id, &[line(1, 2)])
        .await
        .unwrap();
    stores.catalogue.abandon_return(id).await.unwrap();
    stores.catalogue.complete_return(id).await.unwrap();
    assert_eq!(stock_of(&stores, 1).await, 5);
    assert_eq!(all_returns(&stores).await, vec![]);
}

async fn a_return_begun_twice_keeps_its_first_lines(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "One", "Author", 100, 5)]).await;
    let id = fresh_reservation();
    stores
        .catalogue
        .begin_return(id, &[line(1, 1), line(1, 2)])
        .await
        .unwrap();
    stores
        .catalogue
        .begin_return(id, &[line(1, 9)])
        .await
        .unwrap();
    stores.catalogue.complete_return(id).await.unwrap();
    assert_eq!(stock_of(&stores, 1).await, 8);
}

async fn concurrent_completions_of_one_return_give_the_stock_back_once(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "One", "Author", 100, 5)]).await;
    let id = fresh_reservation();
    stores
        .catalogue
        .begin_return(id, &[line(1, 3)])
        .await
        .unwrap();
    let tasks = (0..16)
        .map(|_| {
            let catalogue = stores.catalogue.clone();
            tokio::spawn(async move { catalogue.complete_return(id).await })
        })
        .collect();
    for result in join_all(tasks).await {
        result.unwrap();
    }
    assert_eq!(stock_of(&stores, 1).await, 8);
}

async fn returns_older_than_a_cutoff_are_listed_oldest_first(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "One", "Author", 100, 5)]).await;
    let (first, second) = (fresh_reservation(), fresh_reservation());
    stores
        .catalogue
        .begin_return(first, &[line(1, 1)])
        .await
        .unwrap();
    let between = Utc::now();
    wait_for_the_clock_to_pass(between).await;
    stores
        .catalogue
        .begin_return(second, &[line(1, 1)])
        .await
        .unwrap();
    assert_eq!(
        stores.catalogue.returns_older_than(between).await.unwrap(),
        vec![first]
    );
    assert_eq!(all_returns(&stores).await, vec![first, second]);
}

async fn the_journal_of_a_live_instance_is_not_a_stopped_processes_journal(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "One", "Author", 100, 5)]).await;
    stores
        .catalogue
        .reserve_all(fresh_reservation(), &[line(1, 1)])
        .await
        .unwrap();
    stores
        .catalogue
        .begin_return(fresh_reservation(), &[line(1, 1)])
        .await
        .unwrap();
    let journal = stores.catalogue.stopped_processes_journal().await.unwrap();
    assert_eq!(journal, bookstore_inventory::Journal::default());
}

async fn the_journal_of_a_deregistered_instance_is_a_stopped_processes_journal(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "One", "Author", 100, 5)]).await;
    let (reservation, returned) = (fresh_reservation(), fresh_reservation());
    stores
        .catalogue
        .reserve_all(reservation, &[line(1, 1)])
        .await
        .unwrap();
    stores
        .catalogue
        .begin_return(returned, &[line(1, 1)])
        .await
        .unwrap();
    database(&stores).deregister_instance().await.unwrap();

    let journal = stores.catalogue.stopped_processes_journal().await.unwrap();
    assert_eq!(journal.reservations, vec![reservation]);
    assert_eq!(journal.returns, vec![returned]);
}

async fn an_expired_lease_is_reaped_and_cannot_be_renewed(backend: Backend) {
    let stores = backend.stores().await;
    stock_catalogue(&stores, [book(1, "One", "Author", 100, 5)]).await;
    let reservation = fresh_reservation();
    stores
        .catalogue
        .reserve_all(reservation, &[line(1, 1)])
        .await
        .unwrap();
    let database = database(&stores);
    assert_eq!(
        database.renew_lease(Duration::from_secs(60)).await.unwrap(),
        LeaseRenewal::Renewed
    );
    assert_eq!(
        database.reap_expired_leases().await.unwrap(),
        0,
        "a live lease stays"
    );

    database
        .register_instance(Duration::from_millis(1))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while database.reap_expired_leases().await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        stores
            .catalogue
            .stopped_processes_journal()
            .await
            .unwrap()
            .reservations,
        vec![reservation]
    );
    assert_eq!(
        database.renew_lease(Duration::from_secs(60)).await.unwrap(),
        LeaseRenewal::Lost
    );
}

async fn no_order_is_recorded_under_an_instance_without_a_lease(backend: Backend) {
    let stores = backend.stores().await;
    let recorded = order_for("alice");
    stores.orders.insert(recorded.clone()).await.unwrap();

    database(&stores).deregister_instance().await.unwrap();
    let refused = order_for("alice");
    let error = stores.orders.insert(refused.clone()).await.unwrap_err();
    assert!(matches!(error, SalesError::Unavailable(_)), "{error:?}");
    assert!(matches!(
        stores.orders.get(refused.id()).await,
        Err(SalesError::NotFound { .. })
    ));
    // An order that exists is still reported as such.
    assert!(matches!(
        stores.orders.insert(recorded).await,
        Err(SalesError::AlreadyExists { .. })
    ));
}

async fn the_in_flight_claim_of_a_stopped_instance_is_resumed_by_the_same_request(
    backend: Backend,
) {
    let stores = backend.stores().await;
    let first = stores.idempotency.clone();
    let now = Utc::now();
    let alice = CustomerId::new("alice");
    let (one, two) = (
        Fingerprint::from_bytes([1; 32]),
        Fingerprint::from_bytes([2; 32]),
    );
    assert_eq!(
        first.claim(&alice, "k", one, now).await.unwrap(),
        Claim::Started
    );
    assert_eq!(
        first.claim(&alice, "k", one, now).await.unwrap(),
        Claim::InFlight,
        "the claim of a live instance is in flight"
    );
    database(&stores).deregister_instance().await.unwrap();
    assert_eq!(
        first.claim(&alice, "k", two, now).await.unwrap(),
        Claim::Mismatch,
        "another request never resumes it"
    );
    let second = database(&stores)
        .stores(&bookstore_storage::events::Outbox::id_only())
        .idempotency;
    assert_eq!(
        second.claim(&alice, "k", one, now).await.unwrap(),
        Claim::Resumed
    );
}

async fn a_second_open_of_a_sqlite_file_is_refused_until_the_first_closes(backend: Backend) {
    if backend != Backend::Sqlite {
        return;
    }
    let stores = backend.stores().await;
    let url = stores.location.as_ref().unwrap().url();
    let options = bookstore_storage::ConnectOptions::default();
    let refused = connect(&url, &options).await;
    let Err(StorageError::InUse { path, lock }) = &refused else {
        panic!("expected InUse, got {refused:?}");
    };
    assert!(url.ends_with(&*path.to_string_lossy()), "{path:?}");
    assert!(lock.to_string_lossy().ends_with(".lock"), "{lock:?}");
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("in use by another process"), "{message}");

    database(&stores).close().await;
    let reopened = connect(&url, &options).await.expect("the file opens again");
    assert!(matches!(
        connect(&url, &options).await,
        Err(StorageError::InUse { .. })
    ));
    reopened.close().await;
}

fn database(stores: &Stores) -> &bookstore_storage::Database {
    stores.database.as_ref().unwrap()
}

/// Every journaled return, whatever its age.
async fn all_returns(stores: &Stores) -> Vec<bookstore_inventory::ReservationId> {
    stores
        .catalogue
        .returns_older_than(Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap()
}

/// Waits until the clock reads later than `time`, so that records made from now on are
/// strictly younger.
async fn wait_for_the_clock_to_pass(time: chrono::DateTime<Utc>) {
    while Utc::now() <= time {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
