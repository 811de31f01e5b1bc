//! The delivery store's SQL for SQLite.

/// A clash on the id or on the order (one delivery per order) inserts nothing.
const INSERT_DELIVERY: &str = "
    INSERT INTO deliveries
        (id, order_id, status, recipient, line1, line2, city, postal_code, country,
         scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
         status_since, history)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
    ON CONFLICT DO NOTHING";

const DELIVERY_ID_FOR_ORDER: &str = "SELECT id FROM deliveries WHERE order_id = ?1";

const ORDER_ID_FOR_DELIVERY: &str = "SELECT order_id FROM deliveries WHERE id = ?1";

const GET_DELIVERY: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
        status_since, history, version
    FROM deliveries WHERE id = ?1";

const GET_DELIVERY_BY_ORDER: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
        status_since, history, version
    FROM deliveries WHERE order_id = ?1";

/// ?1 the delivery, ?2 the version it must still have; the rest is what changes.
const UPDATE_DELIVERY: &str = "
    UPDATE deliveries
    SET status = ?3, carrier = ?4, carrier_tracking_number = ?5, status_since = ?6,
        history = ?7, version = version + 1
    WHERE id = ?1 AND version = ?2";

/// One more delivery on day ?1 if it holds fewer than ?2; no row changes otherwise.
const BOOK_DAY: &str = "
    INSERT INTO delivery_days (day, booked) VALUES (?1, 1)
    ON CONFLICT (day) DO UPDATE SET booked = delivery_days.booked + 1
    WHERE delivery_days.booked < ?2";

/// A cancelled delivery frees its place on day ?1.
const FREE_DAY: &str = "
    UPDATE delivery_days SET booked = booked - 1 WHERE day = ?1 AND booked > 0";

/// ?1 a status or NULL, ?2 a date or NULL, ?3 the cursor (the nil UUID for the first
/// page), ?4 the number of rows.
const LIST_DELIVERIES: &str = "
    SELECT id, order_id, status, recipient, line1, line2, city, postal_code, country,
        scheduled_date, tracking_number, created_at, carrier, carrier_tracking_number,
        status_since, history, version
    FROM deliveries
    WHERE (?1 IS NULL OR status = ?1)
        AND (?2 IS NULL OR scheduled_date = ?2)
        AND id > ?3
    ORDER BY id LIMIT ?4";

/// Scheduled before day ?1 and neither delivered nor cancelled.
const COUNT_OVERDUE: &str = "
    SELECT count(*) FROM deliveries
    WHERE scheduled_date < ?1 AND status NOT IN ('delivered', 'cancelled')";

crate::shared::delivery_queries!();

use bookstore_delivery::DeliveryStore;

/// A [`DeliveryStore`] in SQLite.
#[derive(Clone)]
pub(crate) struct SqliteDeliveryStore {
    handle: Handle,
}

impl SqliteDeliveryStore {
    pub(crate) fn new(handle: Handle) -> Self {
        Self { handle }
    }
}

#[async_trait::async_trait]
impl DeliveryStore for SqliteDeliveryStore {
    async fn insert(&self, delivery: Delivery) -> Result<(), DeliveryError> {
        insert(&self.handle, delivery, None).await
    }

    async fn insert_within_capacity(
        &self,
        delivery: Delivery,
        capacity: u32,
    ) -> Result<(), DeliveryError> {
        insert(&self.handle, delivery, Some(capacity)).await
    }

    async fn record_update(
        &self,
        id: DeliveryId,
        update: CarrierUpdate,
        recorded_at: DateTime<Utc>,
    ) -> Result<(Delivery, Recorded), DeliveryError> {
        record_update(&self.handle, id, &update, recorded_at).await
    }

    async fn list(&self, query: &DeliveryQuery) -> Result<DeliveryPage, DeliveryError> {
        list(&self.handle, query).await
    }

    async fn count_overdue(&self, now: DateTime<Utc>) -> Result<u64, DeliveryError> {
        count_overdue(&self.handle, now).await
    }

    async fn get(&self, id: DeliveryId) -> Result<Delivery, DeliveryError> {
        get(&self.handle, id).await
    }

    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError> {
        get_by_order(&self.handle, order_id).await
    }

    async fn transition(
        &self,
        id: DeliveryId,
        change: fn(Delivery) -> Result<Delivery, DeliveryError>,
    ) -> Result<Delivery, DeliveryError> {
        transition(&self.handle, id, change).await
    }

    async fn cancel_for_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError> {
        cancel_for_order(&self.handle, order_id).await
    }

    async fn check_ready(&self) -> Result<(), DeliveryError> {
        super::check_ready(&self.handle).await.map_err(unavailable)
    }
}
