//! Deliveries: one per order, status changes, cancellation by order.

use std::sync::Arc;

use bookstore_delivery::{Delivery, DeliveryError, DeliveryId, DeliveryStatus, DeliveryStore};
use bookstore_types::OrderId;
use chrono::Utc;

use crate::harness::{Backend, address, delivery_for_order_in_status, join_all};

crate::conformance!(
    a_delivery_reads_back_by_id_and_by_order,
    an_order_has_at_most_one_delivery,
    of_sixteen_concurrent_deliveries_for_one_order_exactly_one_is_stored,
    transitions_are_stored_and_refusals_change_nothing,
    cancelling_for_an_order_depends_on_the_delivery_status,
);

async fn a_delivery_reads_back_by_id_and_by_order(backend: Backend) {
    let Some(stores) = backend.stores().await else {
        return;
    };
    let scheduled = Delivery::schedule(OrderId::generate(), address(), None, Utc::now()).unwrap();
    stores.deliveries.insert(scheduled.clone()).await.unwrap();
    assert_eq!(
        stores.deliveries.get(scheduled.id()).await.unwrap(),
        scheduled
    );
    assert_eq!(
        stores
            .deliveries
            .get_by_order(scheduled.order_id())
            .await
            .unwrap(),
        Some(scheduled.clone())
    );
    assert_eq!(scheduled.address().line2(), Some("Flat 2"));

    let unknown = DeliveryId::generate();
    let missing = stores.deliveries.get(unknown).await;
    assert!(
        matches!(missing, Err(DeliveryError::NotFound { delivery_id }) if delivery_id == unknown),
        "{missing:?}"
    );
    assert_eq!(
        stores
            .deliveries
            .get_by_order(OrderId::generate())
            .await
            .unwrap(),
        None
    );
    let transition = stores
        .deliveries
        .transition(unknown, Delivery::dispatched)
        .await;
    assert!(
        matches!(transition, Err(DeliveryError::NotFound { .. })),
        "{transition:?}"
    );
    stores.deliveries.check_ready().await.unwrap();
}

async fn an_order_has_at_most_one_delivery(backend: Backend) {
    let Some(stores) = backend.stores().await else {
        return;
    };
    let order_id = OrderId::generate();
    let first = delivery_for_order_in_status(order_id, DeliveryStatus::Scheduled);
    let second = delivery_for_order_in_status(order_id, DeliveryStatus::Scheduled);
    stores.deliveries.insert(first.clone()).await.unwrap();
    let error = stores.deliveries.insert(second.clone()).await.unwrap_err();
    let DeliveryError::AlreadyScheduled {
        order_id: reported_order,
        delivery_id: reported_delivery,
    } = error
    else {
        panic!("expected AlreadyScheduled, got {error:?}");
    };
    assert_eq!((reported_order, reported_delivery), (order_id, first.id()));
    assert!(stores.deliveries.get(second.id()).await.is_err());

    // The same delivery inserted twice.
    let again = stores.deliveries.insert(first.clone()).await;
    assert!(
        matches!(again, Err(DeliveryError::AlreadyScheduled { delivery_id, .. }) if delivery_id == first.id()),
        "{again:?}"
    );
    assert_eq!(stores.deliveries.get(first.id()).await.unwrap(), first);
}

async fn of_sixteen_concurrent_deliveries_for_one_order_exactly_one_is_stored(backend: Backend) {
    let Some(stores) = backend.stores().await else {
        return;
    };
    let order_id = OrderId::generate();
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks = (0..16)
        .map(|_| {
            let deliveries: Arc<dyn DeliveryStore> = Arc::clone(&stores.deliveries);
            let start = Arc::clone(&start);
            let delivery = delivery_for_order_in_status(order_id, DeliveryStatus::Scheduled);
            tokio::spawn(async move {
                start.wait().await;
                let id = delivery.id();
                deliveries.insert(delivery).await.map(|()| id)
            })
        })
        .collect();
    let results = join_all(tasks).await;
    let winners: Vec<DeliveryId> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for result in &results {
        match result {
            Ok(_) => {}
            Err(DeliveryError::AlreadyScheduled {
                order_id: o,
                delivery_id,
            }) => assert_eq!((*o, *delivery_id), (order_id, winners[0])),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    let stored = stores
        .deliveries
        .get_by_order(order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id(), winners[0]);
}

async fn transitions_are_stored_and_refusals_change_nothing(backend: Backend) {
    let Some(stores) = backend.stores().await else {
        return;
    };
    let delivery = delivery_for_order_in_status(OrderId::generate(), DeliveryStatus::Scheduled);
    let id = delivery.id();
    stores.deliveries.insert(delivery).await.unwrap();

    let dispatched = stores
        .deliveries
        .transition(id, Delivery::dispatched)
        .await
        .unwrap();
    assert_eq!(dispatched.status(), DeliveryStatus::Dispatched);
    assert_eq!(stores.deliveries.get(id).await.unwrap(), dispatched);

    let refused = stores.deliveries.transition(id, |d| d.cancelled()).await;
    assert!(
        matches!(refused, Err(DeliveryError::AlreadyDispatched { .. })),
        "{refused:?}"
    );
    assert_eq!(stores.deliveries.get(id).await.unwrap(), dispatched);

    let delivered = stores
        .deliveries
        .transition(id, Delivery::delivered)
        .await
        .unwrap();
    assert_eq!(delivered.status(), DeliveryStatus::Delivered);
    assert_eq!(stores.deliveries.get(id).await.unwrap(), delivered);
}

async fn cancelling_for_an_order_depends_on_the_delivery_status(backend: Backend) {
    let Some(stores) = backend.stores().await else {
        return;
    };
    use DeliveryStatus::{Cancelled, Delivered, Dispatched, Scheduled};
    assert_eq!(
        stores
            .deliveries
            .cancel_for_order(OrderId::generate())
            .await
            .unwrap(),
        None
    );
    for (before, cancelled, after) in [
        (Scheduled, true, Cancelled),
        (Cancelled, true, Cancelled),
        (Dispatched, false, Dispatched),
        (Delivered, false, Delivered),
    ] {
        let delivery = delivery_for_order_in_status(OrderId::generate(), before);
        stores.deliveries.insert(delivery.clone()).await.unwrap();
        let result = stores
            .deliveries
            .cancel_for_order(delivery.order_id())
            .await;
        if cancelled {
            let returned = result.unwrap().unwrap();
            assert_eq!(
                (returned.id(), returned.status()),
                (delivery.id(), Cancelled),
                "{before}"
            );
        } else {
            let error = result.unwrap_err();
            assert!(
                matches!(error, DeliveryError::AlreadyDispatched { delivery_id } if delivery_id == delivery.id()),
                "{before}: {error:?}"
            );
        }
        assert_eq!(
            stores.deliveries.get(delivery.id()).await.unwrap().status(),
            after,
            "{before}"
        );
    }
}
