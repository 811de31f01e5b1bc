//! Where orders are kept: the [`OrderStore`] contract and an in-memory implementation.

use std::sync::Arc;

use bookstore_types::{OrderId, PageLimit};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::customer::CustomerId;
use crate::error::SalesError;
use crate::order::Order;

/// One page of a customer's orders, newest first.
#[derive(Debug, Clone)]
pub struct OrderPage {
    /// At most `limit` orders, newest first.
    pub orders: Vec<Order>,
    /// The cursor for the next page (the id of the last order on this one), or `None` if
    /// no older orders remain.
    pub next_before: Option<OrderId>,
}

/// Keeps orders. Implementations must be safe to share between threads.
#[async_trait::async_trait]
pub trait OrderStore: Send + Sync + 'static {
    /// Stores a new order. Fails with [`SalesError::AlreadyExists`] if its id is taken.
    async fn insert(&self, order: Order) -> Result<(), SalesError>;

    /// The order with this id, or [`SalesError::NotFound`].
    async fn get(&self, id: OrderId) -> Result<Order, SalesError>;

    /// The owner's orders, newest (most recently inserted) first.
    ///
    /// `before` is the cursor: the last order id of the previous page; only orders placed
    /// before it are returned, so orders added while paging never repeat or shift a page.
    /// A cursor that is not one of the owner's orders yields an empty page. `limit` is
    /// brought into the [`PageLimit`] range ([`PageLimit::clamped`]). `next_before` is `Some(last id)` only if more
    /// orders remain.
    async fn list_by_owner(
        &self,
        owner: &CustomerId,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<OrderPage, SalesError>;

    /// Atomically turns a confirmed order into a cancelled one (payment marked refunded) and
    /// returns the updated order.
    ///
    /// Fails with [`SalesError::AlreadyCancelled`] if it was cancelled before: of several
    /// concurrent cancels of one order exactly one succeeds. Fails with
    /// [`SalesError::NotFound`] if there is no such order.
    async fn mark_cancelled(&self, id: OrderId) -> Result<Order, SalesError>;

    /// Whether the store can answer requests; [`SalesError::Unavailable`] if not.
    async fn check_ready(&self) -> Result<(), SalesError>;
}

/// An [`OrderStore`] in process memory, for tests and demos. Orders are lost on restart.
///
/// Orders are kept by id; each owner's order ids are kept in insertion order, so listing is
/// newest first and a cursor is a position in that list. No method holds two map guards at
/// once.
#[derive(Default)]
pub struct InMemoryOrderStore {
    orders: DashMap<OrderId, Order>,
    order_ids_by_owner: DashMap<CustomerId, Vec<OrderId>>,
    observer: Option<OrderObserver>,
}

/// What a change did to an order, as told to an [`OrderObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderChange {
    /// The order was recorded ([`OrderStore::insert`]).
    Placed,
    /// The order was cancelled ([`OrderStore::mark_cancelled`]).
    Cancelled,
}

/// Told of every change to an order, with the order as the change left it, while the
/// order's entry is still locked: no reader sees a change before its observer was told.
/// It must not call back into the store.
pub type OrderObserver = Arc<dyn Fn(OrderChange, &Order) + Send + Sync>;

impl std::fmt::Debug for InMemoryOrderStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryOrderStore")
            .field("orders", &self.orders.len())
            .finish_non_exhaustive()
    }
}

impl InMemoryOrderStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// This store, telling `observer` of every later change.
    pub fn observed_by(mut self, observer: OrderObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    fn tell(&self, change: OrderChange, order: &Order) {
        if let Some(observer) = &self.observer {
            observer(change, order);
        }
    }

    /// Up to `limit` of the owner's order ids older than `before` (all if `None`), newest
    /// first, and whether older ones remain.
    fn page_of_order_ids(
        &self,
        owner: &CustomerId,
        before: Option<OrderId>,
        limit: usize,
    ) -> (Vec<OrderId>, bool) {
        let Some(owner_order_ids) = self.order_ids_by_owner.get(owner) else {
            return (Vec::new(), false);
        };
        let older = match before {
            None => &owner_order_ids[..],
            Some(cursor) => match owner_order_ids.iter().rposition(|&id| id == cursor) {
                Some(position) => &owner_order_ids[..position],
                None => &[],
            },
        };
        let page = older.iter().rev().take(limit).copied().collect();
        (page, older.len() > limit)
    }
}

#[async_trait::async_trait]
impl OrderStore for InMemoryOrderStore {
    async fn insert(&self, order: Order) -> Result<(), SalesError> {
        let order_id = order.id();
        let owner = order.owner().clone();
        match self.orders.entry(order_id) {
            Entry::Occupied(_) => return Err(SalesError::AlreadyExists { order_id }),
            Entry::Vacant(vacant) => {
                self.tell(OrderChange::Placed, &order);
                vacant.insert(order);
            }
        }
        // Indexed only once stored, so every listed id can be read back.
        self.order_ids_by_owner
            .entry(owner)
            .or_default()
            .push(order_id);
        Ok(())
    }

    async fn get(&self, id: OrderId) -> Result<Order, SalesError> {
        self.orders
            .get(&id)
            .map(|order| order.clone())
            .ok_or(SalesError::NotFound { order_id: id })
    }

    async fn list_by_owner(
        &self,
        owner: &CustomerId,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<OrderPage, SalesError> {
        let limit = PageLimit::clamped(u64::from(limit)).get() as usize;
        let (order_ids, more_remain) = self.page_of_order_ids(owner, before, limit);
        let orders: Vec<Order> = order_ids
            .iter()
            .filter_map(|id| self.orders.get(id).map(|order| order.clone()))
            .collect();
        let next_before = if more_remain {
            order_ids.last().copied()
        } else {
            None
        };
        Ok(OrderPage {
            orders,
            next_before,
        })
    }

    async fn mark_cancelled(&self, id: OrderId) -> Result<Order, SalesError> {
        // The entry stays write-locked from the check to the update.
        let mut stored = self
            .orders
            .get_mut(&id)
            .ok_or(SalesError::NotFound { order_id: id })?;
        let cancelled = stored.clone().cancelled()?;
        self.tell(OrderChange::Cancelled, &cancelled);
        *stored = cancelled.clone();
        Ok(cancelled)
    }

    async fn check_ready(&self) -> Result<(), SalesError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use bookstore_types::{Currency, Isbn, Money, Quantity};
    use chrono::Utc;

    use super::*;
    use crate::order::{OrderLine, OrderStatus, PricedLines};
    use crate::payment::{CapturedPayment, PaymentStatus, TransactionId};

    fn order_for(owner: &str) -> Order {
        Order::confirmed(
            OrderId::generate(),
            CustomerId::new(owner),
            PricedLines::new(vec![OrderLine {
                isbn: Isbn::parse("9780134685991").unwrap(),
                title: "Effective Java".to_owned(),
                quantity: Quantity::new(1).unwrap(),
                unit_price: Money::from_cents(4_499, Currency::USD).unwrap(),
            }])
            .unwrap(),
            CapturedPayment::new(TransactionId::generate()),
            Utc::now(),
        )
    }

    /// Inserts `count` orders for `owner`, returning their ids oldest first.
    async fn insert_orders(store: &InMemoryOrderStore, owner: &str, count: usize) -> Vec<OrderId> {
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let order = order_for(owner);
            ids.push(order.id());
            store.insert(order).await.unwrap();
        }
        ids
    }

    fn ids_of(page: &OrderPage) -> Vec<OrderId> {
        page.orders.iter().map(Order::id).collect()
    }

    #[tokio::test]
    async fn an_inserted_order_can_be_read_back() {
        let store = InMemoryOrderStore::new();
        let order = order_for("alice");
        store.insert(order.clone()).await.unwrap();
        assert_eq!(store.get(order.id()).await.unwrap(), order);
        store.check_ready().await.unwrap();
    }

    #[tokio::test]
    async fn inserting_an_order_id_twice_is_already_exists_and_keeps_the_first() {
        let store = InMemoryOrderStore::new();
        let order = order_for("alice");
        store.insert(order.clone()).await.unwrap();
        let result = store.insert(order.clone()).await;
        assert!(matches!(
            result,
            Err(SalesError::AlreadyExists { order_id }) if order_id == order.id()
        ));
        let page = store
            .list_by_owner(&CustomerId::new("alice"), None, 100)
            .await
            .unwrap();
        assert_eq!(ids_of(&page), vec![order.id()]);
    }

    #[tokio::test]
    async fn getting_an_unknown_order_is_not_found() {
        let store = InMemoryOrderStore::new();
        let id = OrderId::generate();
        assert!(matches!(
            store.get(id).await,
            Err(SalesError::NotFound { order_id }) if order_id == id
        ));
    }

    #[tokio::test]
    async fn listing_shows_only_the_owners_orders_newest_first() {
        let store = InMemoryOrderStore::new();
        let alice = CustomerId::new("alice");
        let mut alice_ids = Vec::new();
        for _ in 0..3 {
            alice_ids.extend(insert_orders(&store, "alice", 1).await);
            insert_orders(&store, "bob", 1).await;
        }
        let page = store.list_by_owner(&alice, None, 10).await.unwrap();
        alice_ids.reverse();
        assert_eq!(ids_of(&page), alice_ids);
        assert!(page.orders.iter().all(|order| order.owner() == &alice));
        assert_eq!(page.next_before, None);
    }

    #[tokio::test]
    async fn listing_a_customer_without_orders_is_an_empty_last_page() {
        let store = InMemoryOrderStore::new();
        insert_orders(&store, "bob", 2).await;
        let page = store
            .list_by_owner(&CustomerId::new("alice"), None, 10)
            .await
            .unwrap();
        assert!(page.orders.is_empty());
        assert_eq!(page.next_before, None);
    }

    #[tokio::test]
    async fn paging_through_twenty_five_orders_ten_at_a_time_visits_each_once() {
        let store = InMemoryOrderStore::new();
        let alice = CustomerId::new("alice");
        let mut expected = insert_orders(&store, "alice", 25).await;
        expected.reverse();

        let mut visited = Vec::new();
        let mut page_sizes = Vec::new();
        let mut before = None;
        loop {
            let page = store.list_by_owner(&alice, before, 10).await.unwrap();
            page_sizes.push(page.orders.len());
            visited.extend(ids_of(&page));
            match page.next_before {
                Some(cursor) => before = Some(cursor),
                None => break,
            }
        }
        assert_eq!(page_sizes, vec![10, 10, 5]);
        assert_eq!(visited, expected);
    }

    #[tokio::test]
    async fn a_full_last_page_says_no_more_remain() {
        let store = InMemoryOrderStore::new();
        let alice = CustomerId::new("alice");
        insert_orders(&store, "alice", 20).await;
        let first = store.list_by_owner(&alice, None, 10).await.unwrap();
        let second = store
            .list_by_owner(&alice, first.next_before, 10)
            .await
            .unwrap();
        assert_eq!(second.orders.len(), 10);
        assert_eq!(second.next_before, None);
    }

    #[tokio::test]
    async fn orders_added_while_paging_neither_repeat_nor_hide_older_orders() {
        let store = InMemoryOrderStore::new();
        let alice = CustomerId::new("alice");
        let mut expected = insert_orders(&store, "alice", 25).await;
        expected.reverse();

        let mut visited = Vec::new();
        let mut before = None;
        loop {
            let page = store.list_by_owner(&alice, before, 10).await.unwrap();
            visited.extend(ids_of(&page));
            // New orders arrive between page requests.
            insert_orders(&store, "alice", 3).await;
            match page.next_before {
                Some(cursor) => before = Some(cursor),
                None => break,
            }
        }
        let distinct: HashSet<OrderId> = visited.iter().copied().collect();
        assert_eq!(distinct.len(), visited.len(), "an order was listed twice");
        assert_eq!(visited, expected);
    }

    #[tokio::test]
    async fn a_cursor_that_is_not_one_of_the_owners_orders_yields_an_empty_page() {
        let store = InMemoryOrderStore::new();
        let alice = CustomerId::new("alice");
        insert_orders(&store, "alice", 3).await;
        let bob_order_id = insert_orders(&store, "bob", 1).await[0];
        for cursor in [OrderId::generate(), bob_order_id] {
            let page = store.list_by_owner(&alice, Some(cursor), 10).await.unwrap();
            assert!(page.orders.is_empty());
            assert_eq!(page.next_before, None);
        }
    }

    #[tokio::test]
    async fn marking_an_order_cancelled_stores_and_returns_the_cancelled_order() {
        let store = InMemoryOrderStore::new();
        let order = order_for("alice");
        store.insert(order.clone()).await.unwrap();
        let cancelled = store.mark_cancelled(order.id()).await.unwrap();
        assert_eq!(cancelled.status(), OrderStatus::Cancelled);
        assert_eq!(cancelled.payment().status, PaymentStatus::Refunded);
        assert_eq!(store.get(order.id()).await.unwrap(), cancelled);
    }

    #[tokio::test]
    async fn cancelling_an_unknown_order_is_not_found() {
        let store = InMemoryOrderStore::new();
        let id = OrderId::generate();
        assert!(matches!(
            store.mark_cancelled(id).await,
            Err(SalesError::NotFound { order_id }) if order_id == id
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_sixteen_concurrent_cancels_of_one_order_exactly_one_succeeds() {
        let store = Arc::new(InMemoryOrderStore::new());
        let order = order_for("alice");
        let order_id = order.id();
        store.insert(order).await.unwrap();

        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let cancels: Vec<_> = (0..16)
            .map(|_| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.mark_cancelled(order_id).await
                })
            })
            .collect();

        let mut successes = 0;
        for result in futures_util::future::join_all(cancels).await {
            match result.unwrap() {
                Ok(cancelled) => {
                    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
                    successes += 1;
                }
                Err(SalesError::AlreadyCancelled { order_id: id }) => assert_eq!(id, order_id),
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(successes, 1);
        assert_eq!(
            store.get(order_id).await.unwrap().status(),
            OrderStatus::Cancelled
        );
    }
}
