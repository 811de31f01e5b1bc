//! [`PgOrderStore`]: orders in PostgreSQL.

use async_trait::async_trait;
use bookstore_sales::{
    CustomerId, Order, OrderPage, OrderStore, Payment, SalesError, TransactionId,
};
use bookstore_types::{OrderId, PageLimit};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use super::events::{bind_event, record};
use crate::InstanceId;
use crate::codec;
use crate::events::{Fact, Outbox};
use crate::failure::{BoxError, finish, unavailable};

/// Inserts nothing when the id is taken, or when instance $10 has no row. The instance's
/// row is locked `FOR KEY SHARE` until the insert commits, so reaping that instance waits for it
/// (see `crate::instances`). The same statement records the order's `order.placed` event
/// ($11..$15, see [`bind_event`]) if it inserted the order, so its row count (of events)
/// says whether the order was inserted.
const INSERT_ORDER: &str = "
    WITH placed AS (
        INSERT INTO orders
            (id, owner, status, lines, total_cents, currency, transaction_id, payment_status,
             created_at)
        SELECT $1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9
        FROM (SELECT id FROM instances WHERE id = $10 FOR KEY SHARE) AS lease
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    ), sequence AS (
        INSERT INTO event_sequences (resource_id, last) SELECT $13, 1 FROM placed
        ON CONFLICT (resource_id) DO UPDATE SET last = event_sequences.last + 1
        RETURNING last
    )
    INSERT INTO events (id, type, resource_id, sequence, created_at, data)
    SELECT $11, $12, $13, sequence.last, $14, $15::json FROM sequence";

const GET_ORDER: &str = "
    SELECT id, owner, status, lines::text AS lines, total_cents, currency, transaction_id,
        payment_status, created_at
    FROM orders WHERE id = $1";

/// $1 the owner, $2 the number of orders.
const LIST_ORDERS: &str = "
    SELECT id, owner, status, lines::text AS lines, total_cents, currency, transaction_id,
        payment_status, created_at
    FROM orders WHERE owner = $1
    ORDER BY seq DESC LIMIT $2";

/// $3 the cursor: only orders inserted before it. A cursor that is not one of the owner's
/// orders compares with NULL, which selects nothing.
const LIST_ORDERS_BEFORE: &str = "
    SELECT id, owner, status, lines::text AS lines, total_cents, currency, transaction_id,
        payment_status, created_at
    FROM orders
    WHERE owner = $1 AND seq < (SELECT seq FROM orders WHERE id = $3 AND owner = $1)
    ORDER BY seq DESC LIMIT $2";

/// Only a confirmed order: of concurrent cancels, one updates the row.
const CANCEL_ORDER: &str = "
    UPDATE orders SET status = 'cancelled', payment_status = 'refunded'
    WHERE id = $1 AND status = 'confirmed'
    RETURNING id, owner, status, lines::text AS lines, total_cents, currency, transaction_id,
        payment_status, created_at";

const ORDER_STATUS: &str = "SELECT status FROM orders WHERE id = $1";

/// An [`OrderStore`] in PostgreSQL.
///
/// An order is one row; its lines, an immutable record always read whole, are a JSON
/// document in that row, so an order (or a page of them) is read with one query and no join.
/// Listing is newest first by an insertion sequence number, so a cursor never repeats or
/// skips an order. Cancelling is a conditional update (`WHERE status = 'confirmed'`): of
/// concurrent cancels exactly one wins. An order is recorded only under this instance's
/// live lease (see [`crate::instances`]). `order.placed` is recorded in the insert's
/// statement, `order.cancelled` in the winning cancel's transaction.
#[derive(Debug, Clone)]
pub(crate) struct PgOrderStore {
    pool: PgPool,
    instance: InstanceId,
    outbox: Outbox,
}

impl PgOrderStore {
    pub(crate) fn new(pool: PgPool, instance: InstanceId, outbox: Outbox) -> Self {
        Self {
            pool,
            instance,
            outbox,
        }
    }
}

#[async_trait]
impl OrderStore for PgOrderStore {
    async fn insert(&self, order: Order) -> Result<(), SalesError> {
        // One statement: the order, its lines and its event are written together or not
        // at all, and only while this instance holds its lease.
        let event = self.outbox.event(Fact::OrderPlaced(&order), Utc::now());
        let query = sqlx::query(INSERT_ORDER)
            .bind(order.id().as_uuid())
            .bind(order.owner().as_str())
            .bind(order.status().as_str())
            .bind(codec::encode_order_lines(order.lines()))
            .bind(order.total().cents())
            .bind(order.total().currency().as_str())
            .bind(order.payment().transaction_id.as_uuid())
            .bind(order.payment().status.as_str())
            .bind(order.created_at())
            .bind(self.instance.as_uuid());
        let inserted = bind_event(query, &event)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        if inserted.rows_affected() == 1 {
            return Ok(());
        }
        match sqlx::query_scalar::<_, String>(ORDER_STATUS)
            .bind(order.id().as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
        {
            Some(_) => Err(SalesError::AlreadyExists {
                order_id: order.id(),
            }),
            None => Err(unavailable(crate::instances::LeaseExpired {
                instance: self.instance,
            })),
        }
    }

    async fn get(&self, id: OrderId) -> Result<Order, SalesError> {
        let row = sqlx::query(GET_ORDER)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .ok_or(SalesError::NotFound { order_id: id })?;
        order_from_row(&row).map_err(unavailable)
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
        let statement = match before {
            None => sqlx::query(LIST_ORDERS)
                .bind(owner.as_str())
                .bind(limit as i64 + 1),
            Some(cursor) => sqlx::query(LIST_ORDERS_BEFORE)
                .bind(owner.as_str())
                .bind(limit as i64 + 1)
                .bind(cursor.as_uuid()),
        };
        let rows = statement.fetch_all(&self.pool).await.map_err(unavailable)?;
        let orders = rows
            .iter()
            .map(order_from_row)
            .collect::<Result<Vec<Order>, BoxError>>()
            .map_err(unavailable)?;
        Ok(codec::order_page(orders, limit))
    }

    async fn mark_cancelled(&self, id: OrderId) -> Result<Order, SalesError> {
        let mut transaction = self.pool.begin().await.map_err(unavailable)?;
        let cancelled = sqlx::query(CANCEL_ORDER)
            .bind(id.as_uuid())
            .fetch_optional(&mut *transaction)
            .await;
        let result = async {
            let Some(row) = cancelled.map_err(unavailable)? else {
                return Ok(None);
            };
            let order = order_from_row(&row).map_err(unavailable)?;
            let event = self.outbox.event(Fact::OrderCancelled(&order), Utc::now());
            record(&mut transaction, &[event])
                .await
                .map_err(unavailable::<SalesError>)?;
            Ok(Some(order))
        }
        .await;
        if let Some(order) = finish(transaction, result).await? {
            return Ok(order);
        }
        let status: Option<String> = sqlx::query_scalar(ORDER_STATUS)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Err(match status {
            None => SalesError::NotFound { order_id: id },
            Some(_) => SalesError::AlreadyCancelled { order_id: id },
        })
    }

    async fn check_ready(&self) -> Result<(), SalesError> {
        super::check_ready(&self.pool).await.map_err(unavailable)
    }
}

fn order_from_row(row: &PgRow) -> Result<Order, BoxError> {
    let id: Uuid = row.try_get("id")?;
    let owner: String = row.try_get("owner")?;
    let status: String = row.try_get("status")?;
    let lines: String = row.try_get("lines")?;
    let currency: String = row.try_get("currency")?;
    let payment_status: String = row.try_get("payment_status")?;
    let created_at: DateTime<Utc> = row.try_get("created_at")?;
    Ok(Order::restore(
        OrderId::from_uuid(id),
        CustomerId::new(owner),
        codec::order_status(&status)?,
        codec::decode_order_lines(&lines)?,
        codec::money(row.try_get("total_cents")?, &currency)?,
        Payment {
            transaction_id: TransactionId::from_uuid(row.try_get("transaction_id")?),
            status: codec::payment_status(&payment_status)?,
        },
        created_at,
    ))
}
