//! [`SqlDeliveryStore`]: deliveries in SQL.

use bookstore_delivery::{
    CarrierUpdate, Delivery, DeliveryError, DeliveryId, DeliveryPage, DeliveryQuery, DeliveryStore,
    Recorded,
};
use bookstore_types::OrderId;
use chrono::{DateTime, Utc};

use crate::Database;
use crate::database::dispatch;
use crate::failure::unavailable;

/// A [`DeliveryStore`] in a SQL database.
///
/// One delivery per order is a `UNIQUE` constraint on the order id, so of concurrent inserts
/// for one order exactly one is stored, whichever instance makes it. A delivery takes its
/// place on its day in the same transaction (one conditional upsert of the day's count), so
/// a day never holds more deliveries than its capacity. Changes (a carrier's update, a
/// cancellation) are optimistic: the row is written only if it is still at the version the
/// change was computed from, and the change is retried on the newer delivery otherwise.
#[derive(Debug, Clone)]
pub struct SqlDeliveryStore {
    database: Database,
}

impl SqlDeliveryStore {
    /// The deliveries kept in `database` (migrated with [`migrate`](crate::migrate)).
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

#[async_trait::async_trait]
impl DeliveryStore for SqlDeliveryStore {
    async fn insert(&self, delivery: Delivery) -> Result<(), DeliveryError> {
        dispatch!(self.database, deliveries::insert(delivery, None))
    }

    async fn insert_within_capacity(
        &self,
        delivery: Delivery,
        capacity: u32,
    ) -> Result<(), DeliveryError> {
        dispatch!(self.database, deliveries::insert(delivery, Some(capacity)))
    }

    async fn record_update(
        &self,
        id: DeliveryId,
        update: CarrierUpdate,
        recorded_at: DateTime<Utc>,
    ) -> Result<(Delivery, Recorded), DeliveryError> {
        dispatch!(
            self.database,
            deliveries::record_update(id, &update, recorded_at)
        )
    }

    async fn list(&self, query: &DeliveryQuery) -> Result<DeliveryPage, DeliveryError> {
        dispatch!(self.database, deliveries::list(query))
    }

    async fn count_overdue(&self, now: DateTime<Utc>) -> Result<u64, DeliveryError> {
        dispatch!(self.database, deliveries::count_overdue(now))
    }

    async fn get(&self, id: DeliveryId) -> Result<Delivery, DeliveryError> {
        dispatch!(self.database, deliveries::get(id))
    }

    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError> {
        dispatch!(self.database, deliveries::get_by_order(order_id))
    }

    async fn transition(
        &self,
        id: DeliveryId,
        change: fn(Delivery) -> Result<Delivery, DeliveryError>,
    ) -> Result<Delivery, DeliveryError> {
        dispatch!(self.database, deliveries::transition(id, change))
    }

    async fn cancel_for_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError> {
        dispatch!(self.database, deliveries::cancel_for_order(order_id))
    }

    async fn check_ready(&self) -> Result<(), DeliveryError> {
        self.database
            .check_ready()
            .await
            .map_err(unavailable::<DeliveryError>)
    }
}
