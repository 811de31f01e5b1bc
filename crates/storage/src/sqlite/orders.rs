//! [`SqliteOrderStore`]: orders in SQLite.

use async_trait::async_trait;
use bookstore_sales::{
    CustomerId, Order, OrderPage, OrderStore, Payment, SalesError, TransactionId,
};
use bookstore_types::{OrderId, PageLimit};
use chrono::Utc;
use rusqlite::{OptionalExtension, Row, params};

use super::events::record;
use super::{Handle, corrupt, time_at, to_db_time, uuid_at};
use crate::InstanceId;
use crate::codec;
use crate::events::{Fact, Outbox};
use crate::failure::unavailable;

/// Inserts nothing when the id is taken, or when instance ?10 has no row (see
/// `crate::instances`).
const INSERT_ORDER: &str = "
    INSERT INTO orders
        (id, owner, status, lines, total_cents, currency, transaction_id, payment_status,
         created_at)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
    WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?10)
    ON CONFLICT (id) DO NOTHING";

const GET_ORDER: &str = "
    SELECT id, owner, status, lines, total_cents, currency, transaction_id, payment_status,
        created_at
    FROM orders WHERE id = ?1";

/// ?1 the owner. At most one row more than the largest page, of which the caller reads
/// what it needs: SQLite compiles a statement with a bound `LIMIT` again on every run
/// that binds it.
pub(super) const LIST_ORDERS: &str = "
    SELECT id, owner, status, lines, total_cents, currency, transaction_id, payment_status,
        created_at
    FROM orders WHERE owner = ?1
    ORDER BY seq DESC LIMIT 101";

/// ?2 the cursor: only orders inserted before it. A cursor that is not one of the owner's
/// orders compares with NULL, which selects nothing.
pub(super) const LIST_ORDERS_BEFORE: &str = "
    SELECT id, owner, status, lines, total_cents, currency, transaction_id, payment_status,
        created_at
    FROM orders
    WHERE owner = ?1 AND seq < (SELECT seq FROM orders WHERE id = ?2 AND owner = ?1)
    ORDER BY seq DESC LIMIT 101";

/// Only a confirmed order: of concurrent cancels, one updates the row.
const CANCEL_ORDER: &str = "
    UPDATE orders SET status = 'cancelled', payment_status = 'refunded'
    WHERE id = ?1 AND status = 'confirmed'
    RETURNING id, owner, status, lines, total_cents, currency, transaction_id,
        payment_status, created_at";

const ORDER_STATUS: &str = "SELECT status FROM orders WHERE id = ?1";

/// An [`OrderStore`] in SQLite.
///
/// An order is one row; its lines, an immutable record always read whole, are a JSON
/// document in that row, so an order (or a page of them) is read with one query and no join.
/// Listing is newest first by an insertion sequence number, so a cursor never repeats or
/// skips an order. Cancelling is a conditional update (`WHERE status = 'confirmed'`). An
/// order is recorded only while this instance has its row (see [`crate::instances`]).
///
/// `order.placed` is recorded in the write job that inserts the order (not when the id was
/// taken), `order.cancelled` in the one whose update cancelled it.
#[derive(Debug, Clone)]
pub(crate) struct SqliteOrderStore {
    handle: Handle,
    instance: InstanceId,
    outbox: Outbox,
}

impl SqliteOrderStore {
    pub(crate) fn new(handle: Handle, instance: InstanceId, outbox: Outbox) -> Self {
        Self {
            handle,
            instance,
            outbox,
        }
    }
}

fn order_from_row(row: &Row<'_>) -> rusqlite::Result<Order> {
    let status: String = row.get("status")?;
    let lines: String = row.get("lines")?;
    let currency: String = row.get("currency")?;
    let payment_status: String = row.get("payment_status")?;
    let total_cents: i64 = row.get("total_cents")?;
    let decode = || -> Result<_, crate::failure::CorruptRow> {
        Ok((
            codec::order_status(&status)?,
            codec::decode_order_lines(&lines)?,
            codec::money(total_cents, &currency)?,
            codec::payment_status(&payment_status)?,
        ))
    };
    let (status, lines, total, payment_status) = decode().map_err(corrupt)?;
    Ok(Order::restore(
        OrderId::from_uuid(uuid_at(row, "id")?),
        CustomerId::new(row.get::<_, String>("owner")?),
        status,
        lines,
        total,
        Payment {
            transaction_id: TransactionId::from_uuid(uuid_at(row, "transaction_id")?),
            status: payment_status,
        },
        time_at(row, "created_at")?,
    ))
}

#[async_trait]
impl OrderStore for SqliteOrderStore {
    async fn insert(&self, order: Order) -> Result<(), SalesError> {
        let instance = self.instance;
        // Rendered before the job, so that the writer thread only writes it.
        let event = self.outbox.event(Fact::OrderPlaced(&order), Utc::now());
        self.handle
            .write(move |connection| {
                // One statement: the order and its lines are written together or not at
                // all, and only while this instance has its row.
                let inserted = connection
                    .prepare_cached(INSERT_ORDER)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            order.id().as_uuid().as_bytes(),
                            order.owner().as_str(),
                            order.status().as_str(),
                            codec::encode_order_lines(order.lines()),
                            order.total().cents(),
                            order.total().currency().as_str(),
                            order.payment().transaction_id.as_uuid().as_bytes(),
                            order.payment().status.as_str(),
                            to_db_time(order.created_at()),
                            instance.as_uuid().as_bytes(),
                        ])
                    })
                    .map_err(unavailable)?;
                if inserted == 1 {
                    return record(connection, &[event]).map_err(unavailable);
                }
                let exists = connection
                    .prepare_cached(ORDER_STATUS)
                    .and_then(|mut statement| {
                        statement
                            .query_row([order.id().as_uuid().as_bytes()], |_| Ok(()))
                            .optional()
                    })
                    .map_err(unavailable)?;
                match exists {
                    Some(()) => Err(SalesError::AlreadyExists {
                        order_id: order.id(),
                    }),
                    None => Err(unavailable(crate::instances::LeaseExpired { instance })),
                }
            })
            .await
    }

    async fn get(&self, id: OrderId) -> Result<Order, SalesError> {
        self.handle
            .read(|connection| {
                connection
                    .prepare_cached(GET_ORDER)?
                    .query_row([id.as_uuid().as_bytes()], order_from_row)
                    .optional()
            })?
            .ok_or(SalesError::NotFound { order_id: id })
    }

    async fn list_by_owner(
        &self,
        owner: &CustomerId,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<OrderPage, SalesError> {
        // Clamped as the in-memory store does; one more than a page tells whether more
        // orders remain.
        let limit = PageLimit::clamped(u64::from(limit)).get() as usize;
        let rows = limit + 1;
        let orders = self.handle.read(|connection| match before {
            None => connection
                .prepare_cached(LIST_ORDERS)?
                .query_map(params![owner.as_str()], order_from_row)?
                .take(rows)
                .collect::<rusqlite::Result<Vec<Order>>>(),
            Some(cursor) => connection
                .prepare_cached(LIST_ORDERS_BEFORE)?
                .query_map(
                    params![owner.as_str(), cursor.as_uuid().as_bytes()],
                    order_from_row,
                )?
                .take(rows)
                .collect(),
        })?;
        Ok(codec::order_page(orders, limit))
    }

    async fn mark_cancelled(&self, id: OrderId) -> Result<Order, SalesError> {
        let outbox = self.outbox.clone();
        self.handle
            .write(move |connection| {
                let cancelled = connection
                    .prepare_cached(CANCEL_ORDER)
                    .and_then(|mut statement| {
                        statement
                            .query_row([id.as_uuid().as_bytes()], order_from_row)
                            .optional()
                    })
                    .map_err(unavailable)?;
                if let Some(order) = cancelled {
                    let event = outbox.event(Fact::OrderCancelled(&order), Utc::now());
                    record(connection, &[event]).map_err(unavailable)?;
                    return Ok(order);
                }
                let exists = connection
                    .prepare_cached(ORDER_STATUS)
                    .and_then(|mut statement| {
                        statement
                            .query_row([id.as_uuid().as_bytes()], |_| Ok(()))
                            .optional()
                    })
                    .map_err(unavailable)?;
                Err(match exists {
                    None => SalesError::NotFound { order_id: id },
                    Some(()) => SalesError::AlreadyCancelled { order_id: id },
                })
            })
            .await
    }

    async fn check_ready(&self) -> Result<(), SalesError> {
        super::check_ready(&self.handle).await.map_err(unavailable)
    }
}
