//! [`SqliteDeliveryStore`]: deliveries in SQLite.

use async_trait::async_trait;
use bookstore_delivery::{
    CarrierUpdate, Delivery, DeliveryError, DeliveryId, DeliveryPage, DeliveryQuery,
    DeliveryStatus, DeliveryStore, Recorded,
};
use bookstore_types::OrderId;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::events::record;
use super::{Handle, corrupt, date_at, optional_time_at, time_at, to_db_date, to_db_time, uuid_at};
use crate::codec::{self, DeliveryColumns, TrackingColumns};
use crate::events::{Fact, NewEvent, Outbox};
use crate::failure::unavailable;
use crate::sql::deliveries::{
    BOOK_DAY, COUNT_OVERDUE, DELIVERY_ID_FOR_ORDER, FREE_DAY, GET_DELIVERY, GET_DELIVERY_BY_ORDER,
    INSERT_DELIVERY, LIST_DELIVERIES, ORDER_ID_FOR_DELIVERY, UPDATE_DELIVERY,
};

/// A [`DeliveryStore`] in SQLite.
///
/// One delivery per order is a `UNIQUE` constraint on the order id. A delivery takes its
/// place on its day in the same write job (one conditional upsert of the day's count), so a
/// day never holds more deliveries than its capacity. A change (a carrier's update, a
/// cancellation) is read, computed and written in one write job, so nothing can come
/// between.
///
/// The same write job records the event of the delivery's status: on insert
/// (`delivery.scheduled`), and on a change only when the status changed (a carrier update
/// that only adds to the history records nothing, nor does cancelling a cancelled delivery).
#[derive(Debug, Clone)]
pub(crate) struct SqliteDeliveryStore {
    handle: Handle,
    outbox: Outbox,
}

impl SqliteDeliveryStore {
    pub(crate) fn new(handle: Handle, outbox: Outbox) -> Self {
        Self { handle, outbox }
    }

    async fn insert_with_capacity(
        &self,
        delivery: Delivery,
        capacity: Option<u32>,
    ) -> Result<(), DeliveryError> {
        // Rendered before the job, so that the writer thread only writes it.
        let event = self
            .outbox
            .event(Fact::DeliveryChanged(&delivery), Utc::now());
        self.handle
            .write(move |connection| insert_in(connection, &delivery, capacity, event))
            .await
    }

    /// Reads the delivery `select` finds by `id`, applies `change` and stores the result,
    /// in one write job, with the event of its new status if the status changed; `None` if
    /// there is no such delivery.
    async fn change<T, F>(
        &self,
        select: &'static str,
        id: Uuid,
        change: F,
    ) -> Result<Option<T>, DeliveryError>
    where
        F: FnOnce(Delivery) -> Result<(Delivery, bool, T), DeliveryError> + Send + 'static,
        T: Send + 'static,
    {
        let outbox = self.outbox.clone();
        self.handle
            .write(move |connection| {
                let Some((current, version)) = delivery_in(connection, select, id)? else {
                    return Ok(None);
                };
                let status_before = current.status();
                let (changed, store, answer) = change(current)?;
                if store {
                    store_changes_in(connection, &changed, version)?;
                    if changed.status() != status_before {
                        let event = outbox.event(Fact::DeliveryChanged(&changed), Utc::now());
                        record_in(connection, event)?;
                    }
                }
                Ok(Some(answer))
            })
            .await
    }
}

/// The delivery `select` finds by `id`, and the version of its row.
fn delivery_in(
    connection: &Connection,
    select: &'static str,
    id: Uuid,
) -> Result<Option<(Delivery, i64)>, DeliveryError> {
    connection
        .prepare_cached(select)
        .and_then(|mut statement| {
            statement
                .query_row([id.as_bytes()], delivery_from_row)
                .optional()
        })
        .map_err(unavailable)
}

/// Records `event` in the write job; a failure is the job's `Unavailable` error.
fn record_in(connection: &Connection, event: NewEvent) -> Result<(), DeliveryError> {
    record(connection, &[event]).map_err(unavailable)
}

/// Books the day (if the delivery takes a place), inserts the delivery and records `event`
/// (its status's); on a clash, the job fails (and its booking is rolled back) with the
/// delivery it clashed with.
fn insert_in(
    connection: &Connection,
    delivery: &Delivery,
    capacity: Option<u32>,
    event: NewEvent,
) -> Result<(), DeliveryError> {
    let date = delivery.scheduled_date();
    if codec::takes_a_place(delivery.status()) {
        let booked = connection
            .prepare_cached(BOOK_DAY)
            .and_then(|mut statement| {
                statement.execute(params![
                    to_db_date(date),
                    capacity.map_or(i64::MAX, i64::from)
                ])
            })
            .map_err(unavailable)?;
        if booked == 0 {
            return Err(DeliveryError::DayFull { date });
        }
    }
    let address = delivery.address();
    let tracking = TrackingColumns::of(delivery);
    let inserted = connection
        .prepare_cached(INSERT_DELIVERY)
        .and_then(|mut statement| {
            statement.execute(params![
                delivery.id().as_uuid().as_bytes(),
                delivery.order_id().as_uuid().as_bytes(),
                delivery.status().as_str(),
                address.recipient(),
                address.line1(),
                address.line2(),
                address.city(),
                address.postal_code(),
                address.country().as_str(),
                to_db_date(date),
                delivery.tracking_number().as_str(),
                to_db_time(delivery.created_at()),
                tracking.carrier,
                tracking.carrier_tracking_number,
                tracking.status_since.map(to_db_time),
                tracking.history,
            ])
        })
        .map_err(unavailable)?;
    if inserted == 1 {
        return record_in(connection, event);
    }
    // Either the order has a delivery, or (a delivery inserted twice) the id is taken.
    let id_of = |select: &str, id: Uuid| {
        connection
            .prepare_cached(select)
            .and_then(|mut statement| {
                statement
                    .query_row([id.as_bytes()], |row| uuid_at(row, 0))
                    .optional()
            })
            .map_err(unavailable::<DeliveryError>)
    };
    let existing = id_of(DELIVERY_ID_FOR_ORDER, delivery.order_id().as_uuid())?;
    let other_order = match existing {
        Some(_) => None,
        None => id_of(ORDER_ID_FOR_DELIVERY, delivery.id().as_uuid())?,
    };
    Err(codec::already_scheduled(delivery, existing, other_order))
}

/// Stores what `changed` changed (status and tracking) if the row is still at `version`,
/// and frees its day's place if it became cancelled.
fn store_changes_in(
    connection: &Connection,
    changed: &Delivery,
    version: i64,
) -> Result<(), DeliveryError> {
    let tracking = TrackingColumns::of(changed);
    let updated = connection
        .prepare_cached(UPDATE_DELIVERY)
        .and_then(|mut statement| {
            statement.execute(params![
                changed.status().as_str(),
                tracking.carrier,
                tracking.carrier_tracking_number,
                tracking.status_since.map(to_db_time),
                tracking.history,
                changed.id().as_uuid().as_bytes(),
                version,
            ])
        })
        .map_err(unavailable)?;
    if updated == 0 {
        // One writer, and the row was read in this job: it cannot have moved on.
        return Err(unavailable(codec::NotInserted));
    }
    if changed.status() == DeliveryStatus::Cancelled {
        connection
            .prepare_cached(FREE_DAY)
            .and_then(|mut statement| statement.execute([to_db_date(changed.scheduled_date())]))
            .map_err(unavailable)?;
    }
    Ok(())
}

/// A delivery and the version its row had when read.
fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<(Delivery, i64)> {
    let delivery = codec::delivery(DeliveryColumns {
        id: uuid_at(row, "id")?,
        order_id: uuid_at(row, "order_id")?,
        status: row.get("status")?,
        recipient: row.get("recipient")?,
        line1: row.get("line1")?,
        line2: row.get("line2")?,
        city: row.get("city")?,
        postal_code: row.get("postal_code")?,
        country: row.get("country")?,
        scheduled_date: date_at(row, "scheduled_date")?,
        tracking_number: row.get("tracking_number")?,
        created_at: time_at(row, "created_at")?,
        carrier: row.get("carrier")?,
        carrier_tracking_number: row.get("carrier_tracking_number")?,
        status_since: optional_time_at(row, "status_since")?,
        history: row.get("history")?,
    })
    .map_err(corrupt)?;
    Ok((delivery, row.get("version")?))
}

#[async_trait]
impl DeliveryStore for SqliteDeliveryStore {
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
        self.change(GET_DELIVERY, id.as_uuid(), move |current| {
            let (changed, recorded) = current.record(update, recorded_at)?;
            let store = recorded != Recorded::Duplicate;
            Ok((changed.clone(), store, (changed, recorded)))
        })
        .await?
        .ok_or(DeliveryError::NotFound { delivery_id: id })
    }

    async fn list(&self, query: &DeliveryQuery) -> Result<DeliveryPage, DeliveryError> {
        // One more row than asked tells whether there is a next page.
        let deliveries = self.handle.read(|connection| {
            connection
                .prepare_cached(LIST_DELIVERIES)?
                .query_map(
                    params![
                        query.status.map(DeliveryStatus::as_str),
                        query.date.map(to_db_date),
                        query
                            .after
                            .map_or(Uuid::nil(), |after| after.as_uuid())
                            .as_bytes(),
                        i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX),
                    ],
                    |row| delivery_from_row(row).map(|(delivery, _)| delivery),
                )?
                .collect::<rusqlite::Result<Vec<Delivery>>>()
        })?;
        Ok(codec::delivery_page(deliveries, query.limit))
    }

    async fn count_overdue(&self, now: DateTime<Utc>) -> Result<u64, DeliveryError> {
        let count: i64 = self.handle.read(|connection| {
            connection
                .prepare_cached(COUNT_OVERDUE)?
                .query_row([to_db_date(now.date_naive())], |row| row.get(0))
        })?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn get(&self, id: DeliveryId) -> Result<Delivery, DeliveryError> {
        self.handle
            .read(|connection| {
                connection
                    .prepare_cached(GET_DELIVERY)?
                    .query_row([id.as_uuid().as_bytes()], delivery_from_row)
                    .optional()
            })?
            .map(|(delivery, _)| delivery)
            .ok_or(DeliveryError::NotFound { delivery_id: id })
    }

    async fn get_by_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError> {
        Ok(self
            .handle
            .read(|connection| {
                connection
                    .prepare_cached(GET_DELIVERY_BY_ORDER)?
                    .query_row([order_id.as_uuid().as_bytes()], delivery_from_row)
                    .optional()
            })?
            .map(|(delivery, _)| delivery))
    }

    async fn transition(
        &self,
        id: DeliveryId,
        change: fn(Delivery) -> Result<Delivery, DeliveryError>,
    ) -> Result<Delivery, DeliveryError> {
        self.change(GET_DELIVERY, id.as_uuid(), move |current| {
            let changed = change(current)?;
            Ok((changed.clone(), true, changed))
        })
        .await?
        .ok_or(DeliveryError::NotFound { delivery_id: id })
    }

    async fn cancel_for_order(&self, order_id: OrderId) -> Result<Option<Delivery>, DeliveryError> {
        self.change(GET_DELIVERY_BY_ORDER, order_id.as_uuid(), |current| {
            if current.status() == DeliveryStatus::Cancelled {
                return Ok((current.clone(), false, current));
            }
            let cancelled = current.cancelled()?;
            Ok((cancelled.clone(), true, cancelled))
        })
        .await
    }

    async fn check_ready(&self) -> Result<(), DeliveryError> {
        super::check_ready(&self.handle).await.map_err(unavailable)
    }
}
