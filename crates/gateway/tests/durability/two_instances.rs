//! Two `bookstore` processes on one PostgreSQL database: they never sell a copy twice, and
//! an idempotent retry that reaches the other instance is replayed, not placed again; and
//! both deliver webhooks to one receiver, every event once.

use std::sync::Arc;

use bookstore_inventory::demo_catalogue;
use bookstore_sales::PaymentStatus;
use bookstore_types::OrderId;
use tokio::sync::Barrier;

use crate::harness::{
    Api, Backend, PROCESS_LIMIT, RUST_BOOK, order_request, poll_until, start_server,
    stop_gracefully,
};
use crate::receiver::{Receiver, WEBHOOK_FLAGS, subscribe};

/// Rust in Action: not in the demo catalogue.
const SCARCE_BOOK: &str = "9781617294556";

/// Copies of the scarce book.
const SCARCE_STOCK: u32 = 10;

/// Buyers of one copy each, half on each instance.
const BUYERS: usize = 64;

#[ignore = "needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_database_sell_each_copy_once_and_share_idempotency_keys() {
    let database = Backend::Postgres.fresh_database().await;
    // Started together: both migrate and seed the empty database at the same moment.
    let (first, second) = tokio::join!(
        start_server(database.server_args(&[])),
        start_server(database.server_args(&[]))
    );
    let (a, b) = (Api::new(&first.base_url), Api::new(&second.base_url));
    a.wait_until_ready().await;
    b.wait_until_ready().await;
    let books = a.all_books().await;
    assert_eq!(books.len(), demo_catalogue().len(), "seeded once");
    assert_eq!(
        b.all_books().await,
        books,
        "both instances see one catalogue"
    );

    a.add_book(SCARCE_BOOK, "Rust in Action", SCARCE_STOCK)
        .await;
    assert_eq!(b.stock_of(SCARCE_BOOK).await, u64::from(SCARCE_STOCK));
    let start_together = Arc::new(Barrier::new(BUYERS));
    let buyers: Vec<_> = (0..BUYERS)
        .map(|buyer| {
            let api = if buyer % 2 == 0 { a.clone() } else { b.clone() };
            let start_together = Arc::clone(&start_together);
            tokio::spawn(async move {
                start_together.wait().await;
                api.place_order(&order_request(&[(SCARCE_BOOK, 1)]), None)
                    .await
                    .expect("every buyer is answered")
            })
        })
        .collect();
    let replies: Vec<_> =
        tokio::time::timeout(PROCESS_LIMIT, futures_util::future::join_all(buyers))
            .await
            .expect("every buyer is answered in time")
            .into_iter()
            .map(|joined| joined.expect("a buyer does not panic"))
            .collect();
    let sold: Vec<String> = replies
        .iter()
        .filter(|reply| reply.status == 201)
        .map(|reply| reply.id())
        .collect();
    let out_of_stock = replies.iter().filter(|reply| reply.status == 409).count();
    let others: Vec<_> = replies
        .iter()
        .filter(|reply| reply.status != 201 && reply.status != 409)
        .collect();
    assert!(others.is_empty(), "only 201 and 409: {others:?}");
    assert_eq!(sold.len(), SCARCE_STOCK as usize, "each copy sold once");
    assert_eq!(out_of_stock, BUYERS - SCARCE_STOCK as usize);
    assert_eq!(a.stock_of(SCARCE_BOOK).await, 0);
    assert_eq!(b.stock_of(SCARCE_BOOK).await, 0);

    let inspection = database.inspect().await;
    let payments = inspection
        .stores(&bookstore_storage::events::Outbox::id_only())
        .payments;
    for id in &sold {
        let order_id: OrderId = id.parse().expect("a valid order id");
        let capture = payments
            .capture_for(order_id)
            .await
            .expect("the ledger answers")
            .unwrap_or_else(|| panic!("order {id} has no capture"));
        assert_eq!(capture.status, PaymentStatus::Captured, "order {id}");
    }
    assert_eq!(
        inspection
            .payment_count(PaymentStatus::Captured)
            .await
            .expect("the ledger answers"),
        SCARCE_STOCK as usize,
        "one capture per copy sold, none for the buyers turned away"
    );

    let request = order_request(&[(RUST_BOOK, 1)]);
    let key = format!("two-instances-{}", uuid::Uuid::new_v4());
    let on_a = a
        .place_order(&request, Some(&key))
        .await
        .expect("instance A answers");
    assert_eq!(on_a.status, 201, "{}", on_a.body);
    assert_eq!(on_a.replayed, None);
    let on_b = b
        .place_order(&request, Some(&key))
        .await
        .expect("instance B answers");
    assert_eq!(on_b.status, 201, "{}", on_b.body);
    assert_eq!(on_b.replayed.as_deref(), Some("true"));
    assert_eq!(on_b.body, on_a.body, "B replays A's response byte for byte");
    let orders = b.all_orders().await;
    let of_the_rust_book = orders
        .iter()
        .filter(|order| order["items"][0]["isbn"] == RUST_BOOK)
        .count();
    assert_eq!(of_the_rust_book, 1, "the retry on B placed no second order");
    assert_eq!(orders.len(), SCARCE_STOCK as usize + 1);
    assert_eq!(
        inspection
            .payment_count(PaymentStatus::Captured)
            .await
            .expect("the ledger answers"),
        SCARCE_STOCK as usize + 1,
        "the retry charged nothing"
    );
    inspection.close().await;

    stop_gracefully(first).await;
    stop_gracefully(second).await;
}

/// Orders placed through the two instances in the webhook test, half on each.
const WEBHOOK_ORDERS: usize = 40;

/// The webhook deliveries an instance's `/metrics` counts as succeeded.
async fn succeeded_deliveries(api: &Api) -> u64 {
    let metrics = api.get("/metrics").await.body;
    metrics
        .lines()
        .filter(|line| {
            line.starts_with(bookstore_gateway::webhooks::DELIVERIES_TOTAL)
                && line.contains("outcome=\"succeeded\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[ignore = "needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_every_event_to_one_receiver_and_never_one_event_twice() {
    let database = Backend::Postgres.fresh_database().await;
    let receiver = Receiver::start(vec![]);
    let (first, second) = tokio::join!(
        start_server(database.server_args(WEBHOOK_FLAGS)),
        start_server(database.server_args(WEBHOOK_FLAGS))
    );
    let (a, b) = (Api::new(&first.base_url), Api::new(&second.base_url));
    a.wait_until_ready().await;
    b.wait_until_ready().await;
    // One endpoint in the shared database: both instances' dispatchers see it.
    subscribe(&receiver, &a, &["order.placed"]).await;

    let buyers: Vec<_> = (0..WEBHOOK_ORDERS)
        .map(|buyer| {
            let api = if buyer % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let reply = api
                    .place_order(&order_request(&[(RUST_BOOK, 1)]), None)
                    .await
                    .expect("every buyer is answered");
                assert_eq!(reply.status, 201, "{}", reply.body);
                reply.id()
            })
        })
        .collect();
    let placed: std::collections::BTreeSet<String> =
        tokio::time::timeout(PROCESS_LIMIT, futures_util::future::join_all(buyers))
            .await
            .expect("every buyer is answered in time")
            .into_iter()
            .map(|joined| joined.expect("a buyer does not panic"))
            .collect();

    poll_until(
        "every order's order.placed reaches the receiver",
        PROCESS_LIMIT,
        || async {
            let delivered: std::collections::BTreeSet<String> = receiver
                .received()
                .iter()
                .map(|delivery| {
                    delivery.json()["data"]["id"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned()
                })
                .collect();
            (delivered == placed).then_some(())
        },
    )
    .await;
    // Both dispatchers keep claiming for a few ticks more: a second delivery of any event
    // would show up here.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let deliveries = receiver.received();
    let mut by_event: std::collections::BTreeMap<&str, usize> = Default::default();
    for delivery in &deliveries {
        *by_event.entry(delivery.header("webhook-id")).or_default() += 1;
    }
    let twice: Vec<_> = by_event.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        twice.is_empty(),
        "an event was delivered more than once: {twice:?}"
    );
    assert_eq!(deliveries.len(), WEBHOOK_ORDERS);
    let (by_a, by_b) = (
        succeeded_deliveries(&a).await,
        succeeded_deliveries(&b).await,
    );
    assert_eq!(
        by_a + by_b,
        WEBHOOK_ORDERS as u64,
        "the instances' metrics count every delivery once"
    );
    eprintln!("instance A delivered {by_a}, instance B {by_b}");
    stop_gracefully(first).await;
    stop_gracefully(second).await;
}
