//! Orders: recording, reading back, listing newest first, cancelling exactly once.

use std::collections::HashSet;
use std::sync::Arc;

use bookstore_sales::{
    CustomerId, Order, OrderPage, OrderStatus, OrderStore, PaymentStatus, SalesError,
};
use bookstore_types::OrderId;

use crate::harness::{Backend, Stores, join_all, order_for};

crate::conformance!(
    an_order_reads_back_exactly_as_it_was_recorded,
    an_order_id_is_recorded_once,
    an_owner_lists_only_its_orders_newest_first,
    paging_by_cursor_neither_repeats_nor_skips_while_orders_are_added,
    cancelling_marks_the_order_cancelled_once,
    of_sixteen_concurrent_cancels_of_one_order_exactly_one_succeeds,
);

fn ids_of(page: &OrderPage) -> Vec<OrderId> {
    page.orders.iter().map(Order::id).collect()
}

/// Records `count` orders for `owner`; returns their ids, oldest first.
async fn record_orders(stores: &Stores, owner: &str, count: usize) -> Vec<OrderId> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let order = order_for(owner);
        ids.push(order.id());
        stores.orders.insert(order).await.unwrap();
    }
    ids
}

async fn an_order_reads_back_exactly_as_it_was_recorded(backend: Backend) {
    let stores = backend.stores().await;
    let order = order_for("alice");
    stores.orders.insert(order.clone()).await.unwrap();
    assert_eq!(stores.orders.get(order.id()).await.unwrap(), order);
    let unknown = OrderId::generate();
    let missing = stores.orders.get(unknown).await;
    assert!(
        matches!(missing, Err(SalesError::NotFound { order_id }) if order_id == unknown),
        "{missing:?}"
    );
    stores.orders.check_ready().await.unwrap();
}

async fn an_order_id_is_recorded_once(backend: Backend) {
    let stores = backend.stores().await;
    let order = order_for("alice");
    stores.orders.insert(order.clone()).await.unwrap();
    let again = stores.orders.insert(order_for("bob")).await;
    assert!(again.is_ok(), "{again:?}");
    let duplicate = stores.orders.insert(order.clone()).await;
    assert!(
        matches!(duplicate, Err(SalesError::AlreadyExists { order_id }) if order_id == order.id()),
        "{duplicate:?}"
    );
    let page = stores
        .orders
        .list_by_owner(&CustomerId::new("alice"), None, 100)
        .await
        .unwrap();
    assert_eq!(ids_of(&page), vec![order.id()]);
    assert_eq!(stores.orders.get(order.id()).await.unwrap(), order);
}

async fn an_owner_lists_only_its_orders_newest_first(backend: Backend) {
    let stores = backend.stores().await;
    let alice = CustomerId::new("alice");
    let mut alice_ids = Vec::new();
    for _ in 0..3 {
        alice_ids.extend(record_orders(&stores, "alice", 1).await);
        record_orders(&stores, "bob", 1).await;
    }
    let page = stores.orders.list_by_owner(&alice, None, 10).await.unwrap();
    alice_ids.reverse();
    assert_eq!(ids_of(&page), alice_ids);
    assert_eq!(page.next_before, None);
    assert!(page.orders.iter().all(|order| order.owner() == &alice));
    for order in &page.orders {
        assert_eq!(order, &stores.orders.get(order.id()).await.unwrap());
    }

    let nobody = stores
        .orders
        .list_by_owner(&CustomerId::new("nobody"), None, 10)
        .await
        .unwrap();
    assert!(nobody.orders.is_empty() && nobody.next_before.is_none());

    // A cursor that is not one of the owner's orders yields an empty page.
    let bobs = stores
        .orders
        .list_by_owner(&CustomerId::new("bob"), None, 1)
        .await
        .unwrap();
    let foreign = stores
        .orders
        .list_by_owner(&alice, Some(bobs.orders[0].id()), 10)
        .await
        .unwrap();
    assert!(foreign.orders.is_empty() && foreign.next_before.is_none());
    let unknown = stores
        .orders
        .list_by_owner(&alice, Some(OrderId::generate()), 10)
        .await
        .unwrap();
    assert!(unknown.orders.is_empty());

    // Limits outside 1..=100 are clamped.
    let clamped = stores.orders.list_by_owner(&alice, None, 0).await.unwrap();
    assert_eq!(clamped.orders.len(), 1);
    assert_eq!(clamped.next_before, Some(alice_ids[0]));
}

async fn paging_by_cursor_neither_repeats_nor_skips_while_orders_are_added(backend: Backend) {
    let stores = backend.stores().await;
    let alice = CustomerId::new("alice");
    let mut existing = record_orders(&stores, "alice", 11).await;
    existing.reverse();
    let mut seen = Vec::new();
    let mut before = None;
    let mut added = Vec::new();
    loop {
        let page = stores
            .orders
            .list_by_owner(&alice, before, 3)
            .await
            .unwrap();
        seen.extend(ids_of(&page));
        // A newer order appears while paging: it belongs before the cursor, never on a
        // later page.
        added.extend(record_orders(&stores, "alice", 1).await);
        match page.next_before {
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, existing);
    let unique: HashSet<OrderId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len());
    assert!(added.iter().all(|id| !unique.contains(id)));
}

async fn cancelling_marks_the_order_cancelled_once(backend: Backend) {
    let stores = backend.stores().await;
    let order = order_for("alice");
    stores.orders.insert(order.clone()).await.unwrap();
    let cancelled = stores.orders.mark_cancelled(order.id()).await.unwrap();
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    assert_eq!(cancelled.payment().status, PaymentStatus::Refunded);
    assert_eq!(cancelled, order.clone().cancelled().unwrap());
    assert_eq!(stores.orders.get(order.id()).await.unwrap(), cancelled);

    let again = stores.orders.mark_cancelled(order.id()).await;
    assert!(
        matches!(again, Err(SalesError::AlreadyCancelled { order_id }) if order_id == order.id()),
        "{again:?}"
    );
    let unknown = OrderId::generate();
    let missing = stores.orders.mark_cancelled(unknown).await;
    assert!(
        matches!(missing, Err(SalesError::NotFound { order_id }) if order_id == unknown),
        "{missing:?}"
    );
}

async fn of_sixteen_concurrent_cancels_of_one_order_exactly_one_succeeds(backend: Backend) {
    let stores = backend.stores().await;
    let order = order_for("alice");
    let order_id = order.id();
    stores.orders.insert(order).await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks = (0..16)
        .map(|_| {
            let orders: Arc<dyn OrderStore> = Arc::clone(&stores.orders);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                orders.mark_cancelled(order_id).await
            })
        })
        .collect();
    let mut successes = 0;
    for result in join_all(tasks).await {
        match result {
            Ok(cancelled) => {
                assert_eq!(cancelled.status(), OrderStatus::Cancelled);
                successes += 1;
            }
            Err(SalesError::AlreadyCancelled { order_id: id }) => assert_eq!(id, order_id),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(successes, 1);
}
