//! Deliveries: one per order, status changes, cancellation by order.

use std::sync::Arc;

use bookstore_delivery::{
    Carrier, CarrierTrackingNumber, CarrierUpdate, Delivery, DeliveryError, DeliveryId,
    DeliveryQuery, DeliveryStatus, DeliveryStore, Location, Note, Recorded,
};
use bookstore_types::OrderId;
use chrono::{SubsecRound, Utc};

use crate::harness::{Backend, address, delivery_for_order_in_status, join_all};

crate::conformance!(
    a_delivery_reads_back_by_id_and_by_order,
    an_order_has_at_most_one_delivery,
    of_sixteen_concurrent_deliveries_for_one_order_exactly_one_is_stored,
    transitions_are_stored_and_refusals_change_nothing,
    cancelling_for_an_order_depends_on_the_delivery_status,
    of_sixty_four_concurrent_bookings_of_a_day_with_room_for_ten_exactly_ten_win,
    a_cancelled_delivery_frees_its_place_on_the_day,
    carrier_updates_are_stored_with_their_history_and_never_move_the_status_back,
    concurrent_carrier_updates_are_all_recorded,
    deliveries_list_by_status_and_date_in_pages_without_repeats_or_gaps,
    overdue_deliveries_are_counted_until_delivered_or_cancelled,
);

async fn a_delivery_reads_back_by_id_and_by_order(backend: Backend) {
    let stores = backend.stores().await;
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
    let stores = backend.stores().await;
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
    let stores = backend.stores().await;
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
    let stores = backend.stores().await;
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
    let stores = backend.stores().await;
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
                matches!(error, DeliveryError::AlreadyDispatched { delivery_id, .. } if delivery_id == delivery.id()),
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

/// A fresh delivery for `day`, scheduled now.
fn scheduled_on(day: &str) -> Delivery {
    Delivery::schedule_on(
        OrderId::generate(),
        address(),
        day.parse().unwrap(),
        Utc::now(),
    )
}

fn update_at(status: DeliveryStatus, time: &str) -> CarrierUpdate {
    CarrierUpdate::new(status, time.parse().unwrap()).unwrap()
}

async fn of_sixty_four_concurrent_bookings_of_a_day_with_room_for_ten_exactly_ten_win(
    backend: Backend,
) {
    let stores = backend.stores().await;
    let tasks = (0..64)
        .map(|_| {
            let deliveries = Arc::clone(&stores.deliveries);
            tokio::spawn(async move {
                deliveries
                    .insert_within_capacity(scheduled_on("2030-06-12"), 10)
                    .await
            })
        })
        .collect();
    let results = join_all(tasks).await;
    let booked = results.iter().filter(|result| result.is_ok()).count();
    let full = results
        .iter()
        .filter(|result| matches!(result, Err(DeliveryError::DayFull { date }) if date.to_string() == "2030-06-12"))
        .count();
    assert_eq!((booked, full), (10, 54), "{results:?}");
    let day = stores
        .deliveries
        .list(&DeliveryQuery {
            status: None,
            date: Some("2030-06-12".parse().unwrap()),
            after: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(day.deliveries.len(), 10);
    // Another day is not affected.
    stores
        .deliveries
        .insert_within_capacity(scheduled_on("2030-06-13"), 10)
        .await
        .unwrap();
}

async fn a_cancelled_delivery_frees_its_place_on_the_day(backend: Backend) {
    let stores = backend.stores().await;
    let first = scheduled_on("2030-06-12");
    stores
        .deliveries
        .insert_within_capacity(first.clone(), 1)
        .await
        .unwrap();
    assert!(matches!(
        stores
            .deliveries
            .insert_within_capacity(scheduled_on("2030-06-12"), 1)
            .await,
        Err(DeliveryError::DayFull { .. })
    ));
    // A delivery of the same order again is refused as such, and takes no place.
    assert!(matches!(
        stores
            .deliveries
            .insert_within_capacity(
                Delivery::schedule_on(
                    first.order_id(),
                    address(),
                    "2030-06-13".parse().unwrap(),
                    Utc::now()
                ),
                1
            )
            .await,
        Err(DeliveryError::AlreadyScheduled { .. })
    ));
    stores
        .deliveries
        .insert_within_capacity(scheduled_on("2030-06-13"), 1)
        .await
        .expect("the clash took no place on the 13th");
    stores
        .deliveries
        .cancel_for_order(first.order_id())
        .await
        .unwrap();
    stores
        .deliveries
        .insert_within_capacity(scheduled_on("2030-06-12"), 1)
        .await
        .expect("the cancelled delivery's place is free");
}

async fn carrier_updates_are_stored_with_their_history_and_never_move_the_status_back(
    backend: Backend,
) {
    let stores = backend.stores().await;
    let delivery = scheduled_on("2030-06-12");
    stores.deliveries.insert(delivery.clone()).await.unwrap();
    let dispatch = CarrierUpdate {
        carrier: Some(Carrier::parse("DHL").unwrap()),
        tracking_number: Some(CarrierTrackingNumber::parse("JJD00990001").unwrap()),
        location: Some(Location::parse("Leipzig hub").unwrap()),
        note: Some(Note::parse("two parcels").unwrap()),
        ..update_at(DeliveryStatus::Dispatched, "2030-06-12T08:00:00.123456Z")
    };
    let recorded_at = Utc::now().trunc_subsecs(6);
    let (dispatched, recorded) = stores
        .deliveries
        .record_update(delivery.id(), dispatch.clone(), recorded_at)
        .await
        .unwrap();
    assert_eq!(recorded, Recorded::Applied);
    assert_eq!(dispatched.status(), DeliveryStatus::Dispatched);
    let (delivered, _) = stores
        .deliveries
        .record_update(
            delivery.id(),
            update_at(DeliveryStatus::Delivered, "2030-06-12T15:00:00Z"),
            recorded_at,
        )
        .await
        .unwrap();
    let (after_late, recorded) = stores
        .deliveries
        .record_update(
            delivery.id(),
            update_at(DeliveryStatus::InTransit, "2030-06-12T10:00:00Z"),
            recorded_at,
        )
        .await
        .unwrap();
    assert_eq!(recorded, Recorded::Kept);
    assert_eq!(after_late.status(), DeliveryStatus::Delivered);
    let (_, recorded) = stores
        .deliveries
        .record_update(delivery.id(), dispatch, recorded_at)
        .await
        .unwrap();
    assert_eq!(recorded, Recorded::Duplicate);

    let stored = stores.deliveries.get(delivery.id()).await.unwrap();
    assert_eq!(
        stored, after_late,
        "the store keeps exactly what the domain computed"
    );
    assert_eq!(stored.tracking().history.len(), 3);
    assert_ne!(stored, delivered);
    // A refused update changes nothing.
    let refused = stores
        .deliveries
        .record_update(
            delivery.id(),
            update_at(DeliveryStatus::OutForDelivery, "2030-06-13T08:00:00Z"),
            recorded_at,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            DeliveryError::InvalidTransition {
                from: DeliveryStatus::Delivered,
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(stores.deliveries.get(delivery.id()).await.unwrap(), stored);
    assert!(matches!(
        stores
            .deliveries
            .cancel_for_order(delivery.order_id())
            .await,
        Err(DeliveryError::AlreadyDispatched {
            status: DeliveryStatus::Delivered,
            ..
        })
    ));
}

async fn concurrent_carrier_updates_are_all_recorded(backend: Backend) {
    let stores = backend.stores().await;
    let delivery = scheduled_on("2030-06-12");
    stores.deliveries.insert(delivery.clone()).await.unwrap();
    stores
        .deliveries
        .record_update(
            delivery.id(),
            update_at(DeliveryStatus::Dispatched, "2030-06-12T08:00:00Z"),
            Utc::now(),
        )
        .await
        .unwrap();
    let tasks = (0..16)
        .map(|scan| {
            let deliveries = Arc::clone(&stores.deliveries);
            let id = delivery.id();
            tokio::spawn(async move {
                let update = CarrierUpdate {
                    location: Some(Location::parse(&format!("hub {scan}")).unwrap()),
                    ..update_at(DeliveryStatus::InTransit, "2030-06-12T09:00:00Z")
                };
                deliveries.record_update(id, update, Utc::now()).await
            })
        })
        .collect();
    for result in join_all(tasks).await {
        result.unwrap();
    }
    let stored = stores.deliveries.get(delivery.id()).await.unwrap();
    assert_eq!(stored.status(), DeliveryStatus::InTransit);
    assert_eq!(stored.tracking().history.len(), 17, "no update was lost");
}

async fn deliveries_list_by_status_and_date_in_pages_without_repeats_or_gaps(backend: Backend) {
    let stores = backend.stores().await;
    let mut on_the_12th = Vec::new();
    for index in 0..7 {
        let delivery = scheduled_on(if index % 2 == 0 {
            "2030-06-12"
        } else {
            "2030-06-13"
        });
        stores.deliveries.insert(delivery.clone()).await.unwrap();
        if index % 2 == 0 {
            on_the_12th.push(delivery.id());
        }
    }
    stores
        .deliveries
        .record_update(
            on_the_12th[0],
            update_at(DeliveryStatus::Dispatched, "2030-06-12T08:00:00Z"),
            Utc::now(),
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let page = stores
            .deliveries
            .list(&DeliveryQuery {
                status: None,
                date: Some("2030-06-12".parse().unwrap()),
                after,
                limit: 3,
            })
            .await
            .unwrap();
        seen.extend(page.deliveries.iter().map(Delivery::id));
        after = page.next_after;
        if after.is_none() {
            break;
        }
    }
    assert_eq!(
        seen, on_the_12th,
        "every delivery of the day once, in id order"
    );
    let dispatched = stores
        .deliveries
        .list(&DeliveryQuery {
            status: Some(DeliveryStatus::Dispatched),
            date: None,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        dispatched
            .deliveries
            .iter()
            .map(Delivery::id)
            .collect::<Vec<_>>(),
        vec![on_the_12th[0]]
    );
    assert_eq!(dispatched.next_after, None);
}

async fn overdue_deliveries_are_counted_until_delivered_or_cancelled(backend: Backend) {
    let stores = backend.stores().await;
    let (open, delivered, cancelled) = (
        scheduled_on("2030-06-12"),
        scheduled_on("2030-06-12"),
        scheduled_on("2030-06-12"),
    );
    for delivery in [&open, &delivered, &cancelled] {
        stores.deliveries.insert(delivery.clone()).await.unwrap();
    }
    for status in [DeliveryStatus::Dispatched, DeliveryStatus::Delivered] {
        stores
            .deliveries
            .record_update(
                delivered.id(),
                update_at(status, "2030-06-12T09:00:00Z"),
                Utc::now(),
            )
            .await
            .unwrap();
    }
    stores
        .deliveries
        .cancel_for_order(cancelled.order_id())
        .await
        .unwrap();
    let on_the_day = "2030-06-12T20:00:00Z".parse().unwrap();
    let next_day = "2030-06-13T00:00:01Z".parse().unwrap();
    assert_eq!(
        stores.deliveries.count_overdue(on_the_day).await.unwrap(),
        0
    );
    assert_eq!(stores.deliveries.count_overdue(next_day).await.unwrap(), 1);
}
