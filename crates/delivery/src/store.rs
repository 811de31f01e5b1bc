//! Where deliveries are kept: the [`DeliveryStore`] trait and an in-memory implementation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bookstore_types::OrderId;
use chrono::{DateTime, NaiveDate, Utc};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::delivery::{Delivery, DeliveryId, DeliveryStatus};
use crate::error::DeliveryError;
use crate::update::{CarrierUpdate, Recorded};

/// Which deliveries [`DeliveryStore::list`] returns: those matching every filter given,
/// after the cursor, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Only deliveries in this status.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries scheduled (promised) for this day.
    pub date: Option<NaiveDate>,
    /// Only deliveries whose id sorts after this one (the previous page's last).
    pub after: Option<DeliveryId>,
    /// The most deliveries to return, at least 1.
    pub limit: usize,
}

/// One page of deliveries, in id order (ids are time-ordered: the order of scheduling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPage {
    /// The deliveries.
    pub deliveries: Vec<Delivery>,
    /// The cursor of the next page, if there may be one.
    pub next_after: Option<DeliveryId>,
}

/// Storage for deliveries. Implementations keep at most one delivery per order.
#[async_trait::async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    /// Records a new delivery; [`DeliveryError::AlreadyScheduled`] if the order already has
    /// one. Atomic: of N concurrent inserts for one order exactly one wins.
    async fn insert(&self, delivery: Delivery) -> Result<(), DeliveryError>;

    /// Records a new delivery if its scheduled day holds fewer than `capacity` deliveries
    /// (cancelled ones do not count: cancelling frees the place), else
    /// [`DeliveryError::DayFull`]; otherwise as [`insert`](DeliveryStore::insert). Atomic:
    /// of N concurrent inserts for a day with room for k, exactly k win, on every instance
    /// sharing the store. [`insert`](DeliveryStore::insert) counts towards the day too.
    async fn insert_within_capacity(
        &self,
        delivery: Delivery,
        capacity: u32,
    ) -> Result<(), DeliveryError>;

    /// Records a carrier's update on the delivery `id` with [`Delivery::record`], atomically
    /// (of concurrent updates each sees the others' results), and returns the delivery and
    /// what the update did.
    async fn record_update(
        &self,
        id: DeliveryId,
        update: CarrierUpdate,
        recorded_at: DateTime<Utc>,
    ) -> Result<(Delivery, Recorded), DeliveryError>;

    /// One page of the deliveries matching `query`, in id order.
    async fn list(&self, query: &DeliveryQuery) -> Result<DeliveryPage, DeliveryError>;

    /// How many deliveries are overdue at `now`: scheduled for a day before `now`'s (UTC)
    /// date, and neither delivered nor cancelled.
    async fn count_overdue(&self, now: DateTime<Utc>) -> Result<u64, DeliveryError>;

    /// The delivery with this id, or [`DeliveryError::NotFound`].
    async fn get(&self, id: DeliveryId) -> Result<Delivery, DeliveryError>;

    /// The order's delivery, if it has one.
    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError>;

    /// Applies a status transition atomically (e.g. `|d| d.dispatched()`) and returns the
    /// new delivery; [`DeliveryError::NotFound`] if there is no such delivery, and the
    /// transition's own error if it refuses.
    async fn transition(
        &self,
        id: DeliveryId,
        change: fn(Delivery) -> Result<Delivery, DeliveryError>,
    ) -> Result<Delivery, DeliveryError>;

    /// Cancels the order's delivery if it is still scheduled: `Ok(None)` if the order has no
    /// delivery, `Ok(Some(cancelled))` if it was scheduled (or already cancelled), and
    /// [`DeliveryError::AlreadyDispatched`] if it was dispatched or delivered.
    async fn cancel_for_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError>;

    /// Whether the store can serve requests, for readiness probes.
    async fn check_ready(&self) -> Result<(), DeliveryError>;
}

/// A [`DeliveryStore`] in process memory, for tests and single-instance runs.
///
/// Lock order: a guard on `delivery_ids_by_order` may be held while taking one on
/// `deliveries`, never the other way round, so two operations cannot deadlock.
#[derive(Default)]
pub struct InMemoryDeliveryStore {
    deliveries: DashMap<DeliveryId, Delivery>,
    delivery_ids_by_order: DashMap<OrderId, DeliveryId>,
    /// Deliveries per day that count towards capacity (all but cancelled ones). Held for
    /// the whole of an insert or a cancellation, so the counts and the deliveries change
    /// together.
    booked: Mutex<HashMap<NaiveDate, u32>>,
    observer: Option<DeliveryObserver>,
}

/// Told of every new delivery and every change of a delivery's status, with the delivery
/// as the change left it, while its entry is still locked: no reader sees a change before
/// its observer was told. An update that only adds to the tracking history is not told. It
/// must not call back into the store.
pub type DeliveryObserver = Arc<dyn Fn(&Delivery) + Send + Sync>;

impl std::fmt::Debug for InMemoryDeliveryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryDeliveryStore")
            .field("deliveries", &self.deliveries.len())
            .finish_non_exhaustive()
    }
}

impl InMemoryDeliveryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// This store, telling `observer` of every later change of status.
    pub fn observed_by(mut self, observer: DeliveryObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Tells the observer of `changed` if its status differs from `before`'s.
    fn tell_if_moved(&self, before: DeliveryStatus, changed: &Delivery) {
        if before != changed.status()
            && let Some(observer) = &self.observer
        {
            observer(changed);
        }
    }
}

#[async_trait::async_trait]
impl DeliveryStore for InMemoryDeliveryStore {
    async fn insert(&self, delivery: Delivery) -> Result<(), DeliveryError> {
        self.insert_counted(delivery, None)
    }

    async fn insert_within_capacity(
        &self,
        delivery: Delivery,
        capacity: u32,
    ) -> Result<(), DeliveryError> {
        self.insert_counted(delivery, Some(capacity))
    }

    async fn record_update(
        &self,
        id: DeliveryId,
        update: CarrierUpdate,
        recorded_at: DateTime<Utc>,
    ) -> Result<(Delivery, Recorded), DeliveryError> {
        let mut stored = self
            .deliveries
            .get_mut(&id)
            .ok_or(DeliveryError::NotFound { delivery_id: id })?;
        let (changed, recorded) = stored.clone().record(update, recorded_at)?;
        self.tell_if_moved(stored.status(), &changed);
        *stored = changed.clone();
        Ok((changed, recorded))
    }

    async fn list(&self, query: &DeliveryQuery) -> Result<DeliveryPage, DeliveryError> {
        let mut matching: Vec<Delivery> = self
            .deliveries
            .iter()
            .filter(|entry| {
                let delivery = entry.value();
                query
                    .status
                    .is_none_or(|status| delivery.status() == status)
                    && query
                        .date
                        .is_none_or(|date| delivery.scheduled_date() == date)
                    && query.after.is_none_or(|after| delivery.id() > after)
            })
            .map(|entry| entry.value().clone())
            .collect();
        matching.sort_unstable_by_key(Delivery::id);
        let more = matching.len() > query.limit;
        matching.truncate(query.limit);
        let next_after = if more {
            matching.last().map(Delivery::id)
        } else {
            None
        };
        Ok(DeliveryPage {
            deliveries: matching,
            next_after,
        })
    }

    async fn count_overdue(&self, now: DateTime<Utc>) -> Result<u64, DeliveryError> {
        let today = now.date_naive();
        let overdue = self
            .deliveries
            .iter()
            .filter(|entry| {
                let delivery = entry.value();
                delivery.scheduled_date() < today
                    && !matches!(
                        delivery.status(),
                        DeliveryStatus::Delivered | DeliveryStatus::Cancelled
                    )
            })
            .count();
        Ok(u64::try_from(overdue).unwrap_or(u64::MAX))
    }

    async fn get(&self, id: DeliveryId) -> Result<Delivery, DeliveryError> {
        self.deliveries
            .get(&id)
            .map(|delivery| delivery.clone())
            .ok_or(DeliveryError::NotFound { delivery_id: id })
    }

    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError> {
        let Some(delivery_id) = self.delivery_id_for_order(order_id) else {
            return Ok(None);
        };
        self.get(delivery_id).await.map(Some)
    }

    async fn transition(
        &self,
        id: DeliveryId,
        change: fn(Delivery) -> Result<Delivery, DeliveryError>,
    ) -> Result<Delivery, DeliveryError> {
        let mut stored = self
            .deliveries
            .get_mut(&id)
            .ok_or(DeliveryError::NotFound { delivery_id: id })?;
        let changed = change(stored.clone())?;
        self.tell_if_moved(stored.status(), &changed);
        *stored = changed.clone();
        Ok(changed)
    }

    async fn cancel_for_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError> {
        let Some(delivery_id) = self.delivery_id_for_order(order_id) else {
            return Ok(None);
        };
        let mut stored = self
            .deliveries
            .get_mut(&delivery_id)
            .ok_or(DeliveryError::NotFound { delivery_id })?;
        if stored.status() == DeliveryStatus::Cancelled {
            return Ok(Some(stored.clone()));
        }
        let cancelled = stored.clone().cancelled()?;
        let mut booked = self.lock_booked();
        self.tell_if_moved(stored.status(), &cancelled);
        *stored = cancelled.clone();
        if let Some(count) = booked.get_mut(&cancelled.scheduled_date()) {
            *count = count.saturating_sub(1);
        }
        Ok(Some(cancelled))
    }

    async fn check_ready(&self) -> Result<(), DeliveryError> {
        Ok(())
    }
}

impl InMemoryDeliveryStore {
    fn lock_booked(&self) -> MutexGuard<'_, HashMap<NaiveDate, u32>> {
        // The map is changed only by single inserts and decrements: never half-changed.
        self.booked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Inserts `delivery`, within `capacity` deliveries on its day if given. The booking
    /// lock is held throughout, so of concurrent inserts for one day exactly `capacity` win.
    fn insert_counted(
        &self,
        delivery: Delivery,
        capacity: Option<u32>,
    ) -> Result<(), DeliveryError> {
        let mut booked = self.lock_booked();
        let date = delivery.scheduled_date();
        let counts = delivery.status() != DeliveryStatus::Cancelled;
        let on_the_day = booked.get(&date).copied().unwrap_or(0);
        if counts && capacity.is_some_and(|capacity| on_the_day >= capacity) {
            return Err(DeliveryError::DayFull { date });
        }
        self.insert_unbooked(delivery)?;
        if counts {
            booked.insert(date, on_the_day + 1);
        }
        Ok(())
    }

    /// Stores a delivery, one per order, without touching the day counts.
    fn insert_unbooked(&self, delivery: Delivery) -> Result<(), DeliveryError> {
        let order_id = delivery.order_id();
        // The order's entry stays locked until the delivery is stored, so concurrent
        // inserts for one order are serialised and only the first finds it vacant.
        let order_entry = match self.delivery_ids_by_order.entry(order_id) {
            Entry::Occupied(occupied) => {
                return Err(DeliveryError::AlreadyScheduled {
                    order_id,
                    delivery_id: *occupied.get(),
                });
            }
            Entry::Vacant(vacant) => vacant,
        };
        let delivery_id = delivery.id();
        match self.deliveries.entry(delivery_id) {
            // Ids are random UUIDs; a clash means a restored delivery was inserted twice.
            Entry::Occupied(occupied) => Err(DeliveryError::AlreadyScheduled {
                order_id: occupied.get().order_id(),
                delivery_id,
            }),
            Entry::Vacant(vacant) => {
                if let Some(observer) = &self.observer {
                    observer(&delivery);
                }
                vacant.insert(delivery);
                order_entry.insert(delivery_id);
                Ok(())
            }
        }
    }

    /// The id of the order's delivery; the guard on the index is released before returning.
    fn delivery_id_for_order(&self, order_id: OrderId) -> Option<DeliveryId> {
        self.delivery_ids_by_order
            .get(&order_id)
            .map(|delivery_id| *delivery_id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::delivery::tests::{delivery_for_order_in_status, delivery_in_status};

    #[tokio::test]
    async fn an_inserted_delivery_can_be_read_by_id_and_by_order() {
        let store = InMemoryDeliveryStore::new();
        let delivery = delivery_in_status(DeliveryStatus::Scheduled);
        store.insert(delivery.clone()).await.unwrap();
        assert_eq!(store.get(delivery.id()).await.unwrap(), delivery);
        assert_eq!(
            store.get_by_order(delivery.order_id()).await.unwrap(),
            Some(delivery)
        );
    }

    #[tokio::test]
    async fn unknown_ids_and_orders_are_not_found() {
        let store = InMemoryDeliveryStore::new();
        let id = DeliveryId::generate();
        let error = store.get(id).await.unwrap_err();
        assert!(
            matches!(error, DeliveryError::NotFound { delivery_id } if delivery_id == id),
            "{error:?}"
        );
        assert_eq!(store.get_by_order(OrderId::generate()).await.unwrap(), None);
        let error = store
            .transition(id, Delivery::dispatched)
            .await
            .unwrap_err();
        assert!(matches!(error, DeliveryError::NotFound { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn a_second_delivery_for_the_same_order_is_already_scheduled() {
        let store = InMemoryDeliveryStore::new();
        let order_id = OrderId::generate();
        let first = delivery_for_order_in_status(order_id, DeliveryStatus::Scheduled);
        let second = delivery_for_order_in_status(order_id, DeliveryStatus::Scheduled);
        store.insert(first.clone()).await.unwrap();
        let error = store.insert(second.clone()).await.unwrap_err();
        let DeliveryError::AlreadyScheduled {
            order_id: reported_order_id,
            delivery_id: reported_delivery_id,
        } = error
        else {
            panic!("expected AlreadyScheduled, got {error:?}");
        };
        assert_eq!(
            (reported_order_id, reported_delivery_id),
            (order_id, first.id())
        );
        assert_eq!(store.get_by_order(order_id).await.unwrap(), Some(first));
        assert!(store.get(second.id()).await.is_err());
    }

    #[tokio::test]
    async fn inserting_the_same_delivery_twice_keeps_the_first() {
        let store = InMemoryDeliveryStore::new();
        let delivery = delivery_in_status(DeliveryStatus::Scheduled);
        store.insert(delivery.clone()).await.unwrap();
        let error = store.insert(delivery.clone()).await.unwrap_err();
        assert!(
            matches!(error, DeliveryError::AlreadyScheduled { .. }),
            "{error:?}"
        );
        assert_eq!(store.get(delivery.id()).await.unwrap(), delivery);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_sixteen_concurrent_inserts_for_one_order_exactly_one_wins() {
        let store = Arc::new(InMemoryDeliveryStore::new());
        let order_id = OrderId::generate();
        let start = Arc::new(tokio::sync::Barrier::new(16));
        let attempts = (0..16).map(|_| {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            let delivery = delivery_for_order_in_status(order_id, DeliveryStatus::Scheduled);
            tokio::spawn(async move {
                start.wait().await;
                let id = delivery.id();
                store.insert(delivery).await.map(|()| id)
            })
        });
        let results: Vec<_> = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .map(|joined| joined.unwrap())
            .collect();
        let winners: Vec<DeliveryId> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let winner = winners[0];
        for result in &results {
            match result {
                Ok(id) => assert_eq!(*id, winner),
                Err(DeliveryError::AlreadyScheduled {
                    order_id: o,
                    delivery_id,
                }) => {
                    assert_eq!((*o, *delivery_id), (order_id, winner));
                }
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
        let stored = store.get_by_order(order_id).await.unwrap().unwrap();
        assert_eq!(stored.id(), winner);
        assert_eq!(store.deliveries.len(), 1);
    }

    #[tokio::test]
    async fn transitions_are_stored_and_refusals_leave_the_delivery_unchanged() {
        let store = InMemoryDeliveryStore::new();
        let delivery = delivery_in_status(DeliveryStatus::Scheduled);
        let id = delivery.id();
        store.insert(delivery).await.unwrap();

        let dispatched = store.transition(id, Delivery::dispatched).await.unwrap();
        assert_eq!(dispatched.status(), DeliveryStatus::Dispatched);
        assert_eq!(store.get(id).await.unwrap(), dispatched);

        let error = store.transition(id, |d| d.cancelled()).await.unwrap_err();
        assert!(
            matches!(error, DeliveryError::AlreadyDispatched { .. }),
            "{error:?}"
        );
        assert_eq!(store.get(id).await.unwrap(), dispatched);

        let delivered = store.transition(id, Delivery::delivered).await.unwrap();
        assert_eq!(delivered.status(), DeliveryStatus::Delivered);
        assert_eq!(store.get(id).await.unwrap(), delivered);
    }

    #[tokio::test]
    async fn cancelling_an_order_without_a_delivery_finds_nothing() {
        let store = InMemoryDeliveryStore::new();
        assert_eq!(
            store.cancel_for_order(OrderId::generate()).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn cancelling_for_an_order_depends_on_the_delivery_status() {
        use DeliveryStatus::{Cancelled, Delivered, Dispatched, Scheduled};
        // (status before, whether it is cancelled, status stored afterwards)
        let cases = [
            (Scheduled, true, Cancelled),
            (Cancelled, true, Cancelled),
            (Dispatched, false, Dispatched),
            (Delivered, false, Delivered),
        ];
        for (before, cancelled, after) in cases {
            let store = InMemoryDeliveryStore::new();
            let delivery = delivery_in_status(before);
            store.insert(delivery.clone()).await.unwrap();
            let result = store.cancel_for_order(delivery.order_id()).await;
            if cancelled {
                let returned = result.unwrap().unwrap();
                assert_eq!(returned.id(), delivery.id(), "{before}");
                assert_eq!(returned.status(), Cancelled, "{before}");
            } else {
                let error = result.unwrap_err();
                let DeliveryError::AlreadyDispatched { delivery_id, .. } = error else {
                    panic!("{before}: expected AlreadyDispatched, got {error:?}");
                };
                assert_eq!(delivery_id, delivery.id(), "{before}");
            }
            assert_eq!(
                store.get(delivery.id()).await.unwrap().status(),
                after,
                "{before}"
            );
        }
    }

    #[tokio::test]
    async fn the_in_memory_store_is_always_ready() {
        assert!(InMemoryDeliveryStore::new().check_ready().await.is_ok());
    }

    #[test]
    fn the_store_can_be_shared_as_a_trait_object() {
        fn assert_shareable(_: Arc<dyn DeliveryStore>) {}
        assert_shareable(Arc::new(InMemoryDeliveryStore::new()));
    }
}
