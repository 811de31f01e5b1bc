//! The order store's SQL for SQLite.

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

/// ?1 the owner, ?2 the number of orders.
const LIST_ORDERS: &str = "
    SELECT id, owner, status, lines, total_cents, currency, transaction_id, payment_status,
        created_at
    FROM orders WHERE owner = ?1
    ORDER BY seq DESC LIMIT ?2";

/// ?3 the cursor: only orders inserted before it. A cursor that is not one of the owner's
/// orders compares with NULL, which selects nothing.
const LIST_ORDERS_BEFORE: &str = "
    SELECT id, owner, status, lines, total_cents, currency, transaction_id, payment_status,
        created_at
    FROM orders
    WHERE owner = ?1 AND seq < (SELECT seq FROM orders WHERE id = ?3 AND owner = ?1)
    ORDER BY seq DESC LIMIT ?2";

/// Only a confirmed order: of concurrent cancels, one updates the row.
const CANCEL_ORDER: &str = "
    UPDATE orders SET status = 'cancelled', payment_status = 'refunded'
    WHERE id = ?1 AND status = 'confirmed'
    RETURNING id, owner, status, lines, total_cents, currency, transaction_id,
        payment_status, created_at";

const ORDER_STATUS: &str = "SELECT status FROM orders WHERE id = ?1";

crate::shared::order_queries!();

use bookstore_sales::OrderStore;

/// An [`OrderStore`] in SQLite: one row per order, its lines a JSON document in that row.
#[derive(Clone)]
pub(crate) struct SqliteOrderStore {
    handle: Handle,
    instance: crate::InstanceId,
}

impl SqliteOrderStore {
    pub(crate) fn new(handle: Handle, instance: crate::InstanceId) -> Self {
        Self { handle, instance }
    }
}

#[async_trait::async_trait]
impl OrderStore for SqliteOrderStore {
    async fn insert(&self, order: Order) -> Result<(), SalesError> {
        insert(&self.handle, self.instance, order).await
    }

    async fn get(&self, id: OrderId) -> Result<Order, SalesError> {
        get(&self.handle, id).await
    }

    async fn list_by_owner(
        &self,
        owner: &CustomerId,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<OrderPage, SalesError> {
        list_by_owner(&self.handle, owner, before, limit).await
    }

    async fn mark_cancelled(&self, id: OrderId) -> Result<Order, SalesError> {
        mark_cancelled(&self.handle, id).await
    }

    async fn check_ready(&self) -> Result<(), SalesError> {
        super::check_ready(&self.handle).await.map_err(unavailable)
    }
}
