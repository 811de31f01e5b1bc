//! [`SqlDeliveryStore`]: deliveries in SQL.

use bookstore_delivery::{Delivery, DeliveryError, DeliveryId, DeliveryStore};
use bookstore_types::OrderId;

use crate::Database;
use crate::database::dispatch;
use crate::failure::unavailable;

/// A [`DeliveryStore`] in a SQL database.
///
/// One delivery per order is a `UNIQUE` constraint on the order id, so of concurrent inserts
/// for one order exactly one is stored, whichever instance makes it. Status changes are
/// optimistic: the new status is written only if the stored one is still the status the
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
        dispatch!(self.database, deliveries::insert(delivery))
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
