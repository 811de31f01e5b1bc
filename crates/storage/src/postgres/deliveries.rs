//! [`PgDeliveryStore`]: deliveries in PostgreSQL.

use async_trait::async_trait;
use bookstore_delivery::{
    CarrierUpdate, Delivery, DeliveryError, DeliveryId, DeliveryPage, DeliveryQuery,
    DeliveryStatus, DeliveryStore, Recorded,
};
use bookstore_types::OrderId;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row as _};
use uuid::Uuid;

use super::events::record;
use crate::codec::{self, DeliveryColumns, NotInserted, TrackingColumns};
use crate::events::{Fact, NewEvent, Outbox};
use crate::failure::{BoxError, finish, unavailable};
use crate::sql::deliveries::{
    BOOK_DAY, COUNT_OVERDUE, DELIVERY_ID_FOR_ORDER, FREE_DAY, GET_DELIVERY, GET_DELIVERY_BY_ORDER,
    INSERT_DELIVERY, LIST_DELIVERIES, ORDER_ID_FOR_DELIVERY, UPDATE_DELIVERY,
};

/// A [`DeliveryStore`] in PostgreSQL.
///
/// One delivery per order is a `UNIQUE` constraint on the order id, so of concurrent inserts
/// for one order exactly one is stored, whichever instance makes it. A delivery takes its
/// place on its day in the same transaction (one conditional upsert of the day's count), so
/// a day never holds more deliveries than its capacity. Changes (a carrier's update, a
/// cancellation) are optimistic: the row is written only if it is still at the version the
/// change was computed from, and the change is retried on the newer delivery otherwise.
///
/// The transaction of a change records the event of the delivery's status: on insert
/// (`delivery.scheduled`), and on a change only when the status changed (a carrier update
/// that only adds to the history records nothing, nor does cancelling a cancelled delivery).
#[derive(Debug, Clone)]
pub(crate) struct PgDeliveryStore {
    pool: PgPool,
    outbox: Outbox,
}

impl PgDeliveryStore {
    pub(crate) fn new(pool: PgPool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    /// The event of `changed`'s status if it differs from `status_before`.
    fn status_event(&self, status_before: DeliveryStatus, changed: &Delivery) -> Option<NewEvent> {
        (changed.status() != status_before).then(|| {
            self.outbox
                .event(Fact::DeliveryChanged(changed), Utc::now())
        })
    }

    async fn insert_with_capacity(
        &self,
        delivery: Delivery,
        capacity: Option<u32>,
    ) -> Result<(), DeliveryError> {
        let event = self
            .outbox
            .event(Fact::DeliveryChanged(&delivery), Utc::now());
        let outcome = {
            let mut transaction = self.pool.begin().await.map_err(unavailable)?;
            let result = insert_in(&mut transaction, &delivery, capacity, &event).await;
            finish(transaction, result).await
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(DeliveryError::Unavailable(cause)) if cause.is::<NotInserted>() => {}
            Err(error) => return Err(error),
        }
        // Either the order has a delivery, or (a delivery inserted twice) the id is taken.
        let order_id = delivery.order_id();
        let existing: Option<Uuid> = sqlx::query_scalar(DELIVERY_ID_FOR_ORDER)
            .bind(order_id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        let other_order: Option<Uuid> = match existing {
            Some(_) => None,
            None => sqlx::query_scalar(ORDER_ID_FOR_DELIVERY)
                .bind(delivery.id().as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?,
        };
        Err(codec::already_scheduled(&delivery, existing, other_order))
    }

    async fn get_versioned(&self, id: DeliveryId) -> Result<(Delivery, i64), DeliveryError> {
        let row = sqlx::query(GET_DELIVERY)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .ok_or(DeliveryError::NotFound { delivery_id: id })?;
        delivery_from_row(&row).map_err(unavailable)
    }

    async fn get_by_order_versioned(
        &self,
        order_id: OrderId,
    ) -> Result<Option<(Delivery, i64)>, DeliveryError> {
        let row = sqlx::query(GET_DELIVERY_BY_ORDER)
            .bind(order_id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| delivery_from_row(&row).map_err(unavailable))
            .transpose()
    }

    /// Stores what `changed` changed (status and tracking) if the row is still at
    /// `version`, frees its day's place if it became cancelled and records `event` if
    /// given; false (and nothing recorded) if someone changed the row first.
    async fn store_changes(
        &self,
        changed: &Delivery,
        version: i64,
        event: Option<&NewEvent>,
    ) -> Result<bool, DeliveryError> {
        let mut transaction = self.pool.begin().await.map_err(unavailable)?;
        let result = store_changes_in(&mut transaction, changed, version, event).await;
        finish(transaction, result).await
    }
}

/// Books the day (if the delivery takes a place), inserts the delivery and records `event`;
/// a clash is the error [`NotInserted`], so that the caller rolls the booking back.
async fn insert_in(
    connection: &mut PgConnection,
    delivery: &Delivery,
    capacity: Option<u32>,
    event: &NewEvent,
) -> Result<(), DeliveryError> {
    let date = delivery.scheduled_date();
    if codec::takes_a_place(delivery.status()) {
        let booked = sqlx::query(BOOK_DAY)
            .bind(date)
            .bind(capacity.map_or(i64::MAX, i64::from))
            .execute(&mut *connection)
            .await
            .map_err(unavailable)?;
        if booked.rows_affected() == 0 {
            return Err(DeliveryError::DayFull { date });
        }
    }
    let address = delivery.address();
    let tracking = TrackingColumns::of(delivery);
    let inserted = sqlx::query(INSERT_DELIVERY)
        .bind(delivery.id().as_uuid())
        .bind(delivery.order_id().as_uuid())
        .bind(delivery.status().as_str())
        .bind(address.recipient())
        .bind(address.line1())
        .bind(address.line2())
        .bind(address.city())
        .bind(address.postal_code())
        .bind(address.country().as_str())
        .bind(date)
        .bind(delivery.tracking_number().as_str())
        .bind(delivery.created_at())
        .bind(tracking.carrier)
        .bind(tracking.carrier_tracking_number)
        .bind(tracking.status_since)
        .bind(tracking.history)
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    if inserted.rows_affected() == 1 {
        record(connection, std::slice::from_ref(event))
            .await
            .map_err(unavailable)
    } else {
        Err(DeliveryError::Unavailable(Box::new(NotInserted)))
    }
}

async fn store_changes_in(
    connection: &mut PgConnection,
    changed: &Delivery,
    version: i64,
    event: Option<&NewEvent>,
) -> Result<bool, DeliveryError> {
    let tracking = TrackingColumns::of(changed);
    let updated = sqlx::query(UPDATE_DELIVERY)
        .bind(changed.status().as_str())
        .bind(tracking.carrier)
        .bind(tracking.carrier_tracking_number)
        .bind(tracking.status_since)
        .bind(tracking.history)
        .bind(changed.id().as_uuid())
        .bind(version)
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    if changed.status() == DeliveryStatus::Cancelled {
        sqlx::query(FREE_DAY)
            .bind(changed.scheduled_date())
            .execute(&mut *connection)
            .await
            .map_err(unavailable)?;
    }
    if let Some(event) = event {
        record(connection, std::slice::from_ref(event))
            .await
            .map_err(unavailable)?;
    }
    Ok(true)
}

/// A delivery and the version its row had when read.
fn delivery_from_row(row: &PgRow) -> Result<(Delivery, i64), BoxError> {
    let delivery = codec::delivery(DeliveryColumns {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        status: row.try_get("status")?,
        recipient: row.try_get("recipient")?,
        line1: row.try_get("line1")?,
        line2: row.try_get("line2")?,
        city: row.try_get("city")?,
        postal_code: row.try_get("postal_code")?,
        country: row.try_get("country")?,
        scheduled_date: row.try_get("scheduled_date")?,
        tracking_number: row.try_get("tracking_number")?,
        created_at: row.try_get("created_at")?,
        carrier: row.try_get("carrier")?,
        carrier_tracking_number: row.try_get("carrier_tracking_number")?,
        status_since: row.try_get("status_since")?,
        history: row.try_get("history")?,
    })?;
    Ok((delivery, row.try_get("version")?))
}

#[async_trait]
impl DeliveryStore for PgDeliveryStore {
    async fn insert(&self, delivery: Delivery) -> Result<(), DeliveryError> {
        self.insert_with_capacity(delivery, None).await
    }

    async fn insert_within_capacity(
        &self,
        delivery: Delivery,
        capacity: u32,
    ) -> Result<(), DeliveryError> {
        self.insert_with_capacity(delivery, Some(capacity)).await
    }

    async fn record_update(
        &self,
        id: DeliveryId,
        update: CarrierUpdate,
        recorded_at: DateTime<Utc>,
    ) -> Result<(Delivery, Recorded), DeliveryError> {
        loop {
            let (current, version) = self.get_versioned(id).await?;
            let status_before = current.status();
            let (changed, recorded) = current.record(update.clone(), recorded_at)?;
            if recorded == Recorded::Duplicate {
                return Ok((changed, recorded));
            }
            let event = self.status_event(status_before, &changed);
            if self
                .store_changes(&changed, version, event.as_ref())
                .await?
            {
                return Ok((changed, recorded));
            }
        }
    }

    async fn list(&self, query: &DeliveryQuery) -> Result<DeliveryPage, DeliveryError> {
        // One more row than asked tells whether there is a next page.
        let rows = sqlx::query(LIST_DELIVERIES)
            .bind(query.status.map(DeliveryStatus::as_str))
            .bind(query.date)
            .bind(query.after.map_or(Uuid::nil(), |after| after.as_uuid()))
            .bind(i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let deliveries = rows
            .iter()
            .map(|row| delivery_from_row(row).map(|(delivery, _)| delivery))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        Ok(codec::delivery_page(deliveries, query.limit))
    }

    async fn count_overdue(&self, now: DateTime<Utc>) -> Result<u64, DeliveryError> {
        let count: i64 = sqlx::query_scalar(COUNT_OVERDUE)
            .bind(now.date_naive())
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn get(&self, id: DeliveryId) -> Result<Delivery, DeliveryError> {
        self.get_versioned(id).await.map(|(delivery, _)| delivery)
    }

    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError> {
        self.get_by_order_versioned(order_id)
            .await
            .map(|found| found.map(|(delivery, _)| delivery))
    }

    async fn transition(
        &self,
        id: DeliveryId,
        change: fn(Delivery) -> Result<Delivery, DeliveryError>,
    ) -> Result<Delivery, DeliveryError> {
        // Optimistic: read, change in Rust, write only if the row is still at the version
        // read; otherwise another writer won, and the change is tried on its result.
        loop {
            let (current, version) = self.get_versioned(id).await?;
            let status_before = current.status();
            let changed = change(current)?;
            let event = self.status_event(status_before, &changed);
            if self
                .store_changes(&changed, version, event.as_ref())
                .await?
            {
                return Ok(changed);
            }
        }
    }

    async fn cancel_for_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError> {
        loop {
            let Some((current, version)) = self.get_by_order_versioned(order_id).await? else {
                return Ok(None);
            };
            if current.status() == DeliveryStatus::Cancelled {
                return Ok(Some(current));
            }
            let status_before = current.status();
            let cancelled = current.cancelled()?;
            let event = self.status_event(status_before, &cancelled);
            if self
                .store_changes(&cancelled, version, event.as_ref())
                .await?
            {
                return Ok(Some(cancelled));
            }
        }
    }

    async fn check_ready(&self) -> Result<(), DeliveryError> {
        super::check_ready(&self.pool).await.map_err(unavailable)
    }
}
