//! [`SqlOrderStore`]: orders and their lines in SQL.

use bookstore_sales::{CustomerId, Order, OrderPage, OrderStore, SalesError};
use bookstore_types::OrderId;

use crate::Database;
use crate::database::dispatch;
use crate::failure::unavailable;

/// An [`OrderStore`] in a SQL database.
///
/// An order is one row plus one row per line, written in one transaction and read back with
/// one query (a join), whether one order or a page of them. Listing is newest first by an
/// insertion sequence number, so a cursor never repeats or skips an order. Cancelling is a
/// conditional update (`WHERE status = 'confirmed'`): of concurrent cancels exactly one wins.
#[derive(Debug, Clone)]
pub struct SqlOrderStore {
    database: Database,
}

impl SqlOrderStore {
    /// The orders kept in `database` (migrated with [`migrate`](crate::migrate)).
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

#[async_trait::async_trait]
impl OrderStore for SqlOrderStore {
    async fn insert(&self, order: Order) -> Result<(), SalesError> {
        dispatch!(
            self.database,
            orders::insert(self.database.instance(), order)
        )
    }

    async fn get(&self, id: OrderId) -> Result<Order, SalesError> {
        dispatch!(self.database, orders::get(id))
    }

    async fn list_by_owner(
        &self,
        owner: &CustomerId,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<OrderPage, SalesError> {
        dispatch!(self.database, orders::list_by_owner(owner, before, limit))
    }

    async fn mark_cancelled(&self, id: OrderId) -> Result<Order, SalesError> {
        dispatch!(self.database, orders::mark_cancelled(id))
    }

    async fn check_ready(&self) -> Result<(), SalesError> {
        self.database
            .check_ready()
            .await
            .map_err(unavailable::<SalesError>)
    }
}
