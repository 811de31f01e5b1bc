//! `kill -9` in the middle of a burst of orders, then a restart with the default settings.
//! The moment the restarted server reports ready (its start-up recovery has settled the
//! killed process's work, known stopped by its lease, not by age): every order the server
//! confirmed is there and stock adds up. Once it stops: every confirmed order is paid and
//! nothing half-done remains. And a client that retries a cut-off order with its
//! `Idempotency-Key` gets it placed exactly once, answered 201 at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bookstore_sales::PaymentStatus;
use bookstore_types::OrderId;
use serde_json::Value;
use tokio::sync::Notify;

use crate::harness::{
    Api, Backend, EFFECTIVE_JAVA, PROCESS_LIMIT, RUST_BOOK, TestDatabase, kill_hard, order_request,
    per_backend, start_server, stop_gracefully,
};
use crate::helpers::Server;
use crate::receiver::{AFTER_A_KILL, Receiver, WEBHOOK_FLAGS, subscribe};

per_backend!(
    every_order_confirmed_before_a_kill_9_survives_and_nothing_half_done_remains,
    an_order_cut_off_by_a_kill_9_and_retried_with_its_idempotency_key_is_placed_once,
    every_order_answered_201_before_a_kill_9_reaches_a_subscribed_receiver_and_no_other_does,
);

/// Parallel buyers.
const CLIENTS: u64 = 32;

/// The most orders one buyer sends.
const ORDERS_PER_CLIENT: usize = 100;

/// The process is killed once this many orders have been answered 201.
const KILL_AFTER_PLACED: usize = 50;

/// The stock of both books before the burst: more than the burst can sell.
const STOCK_BEFORE: u32 = 1_000;

/// One order attempt of the burst.
#[derive(Debug)]
struct Attempt {
    /// What was asked for.
    request: Value,
    /// The `Idempotency-Key` sent, if any.
    key: Option<String>,
    /// What came back.
    outcome: Outcome,
}

/// What one order attempt got.
#[derive(Debug)]
enum Outcome {
    /// 201, with the order's id.
    Placed(String),
    /// Another answer: its status and body.
    Refused(u16, String),
    /// No complete answer: the server died first.
    Unanswered,
}

/// A small deterministic generator (xorshift64), so that no crate is needed for "random".
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Places orders of 1 to 3 copies of the Rust book, half of them with a second line of 1
/// to 3 copies of Effective Java, until a request goes unanswered (the server died), the
/// budget is spent, or time runs out. With `keyed`, each attempt has an idempotency key.
async fn buy_until_the_server_dies(
    api: Api,
    client: u64,
    keyed: bool,
    placed: Arc<AtomicUsize>,
    kill_now: Arc<Notify>,
) -> Vec<Attempt> {
    let deadline = Instant::now() + PROCESS_LIMIT;
    let mut random = (client + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut attempts = Vec::new();
    for attempt in 0..ORDERS_PER_CLIENT {
        if Instant::now() > deadline {
            break;
        }
        let rust_copies = 1 + (next_random(&mut random) % 3) as u32;
        let request = if next_random(&mut random).is_multiple_of(2) {
            order_request(&[(RUST_BOOK, rust_copies)])
        } else {
            let java_copies = 1 + (next_random(&mut random) % 3) as u32;
            order_request(&[(RUST_BOOK, rust_copies), (EFFECTIVE_JAVA, java_copies)])
        };
        let key = keyed.then(|| format!("crash-{client}-{attempt}"));
        let outcome = match api.place_order(&request, key.as_deref()).await {
            Ok(reply) if reply.status == 201 => {
                if placed.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER_PLACED {
                    kill_now.notify_one();
                }
                Outcome::Placed(reply.id())
            }
            Ok(reply) => Outcome::Refused(reply.status, reply.body),
            Err(_) => Outcome::Unanswered,
        };
        let died = matches!(outcome, Outcome::Unanswered);
        attempts.push(Attempt {
            request,
            key,
            outcome,
        });
        if died {
            break;
        }
    }
    attempts
}

/// Starts a server on `database` with lots of both books, sends the burst of
/// [`CLIENTS`] buyers, and `kill -9`s the server once [`KILL_AFTER_PLACED`] orders are
/// placed. Returns every attempt, once every buyer has stopped. With a `receiver`, the
/// server delivers webhooks and the receiver is subscribed to `order.*` before the burst.
async fn burst_cut_off_by_a_kill_9(
    database: &TestDatabase,
    keyed: bool,
    receiver: Option<&Receiver>,
) -> Vec<Attempt> {
    let flags = if receiver.is_some() {
        WEBHOOK_FLAGS
    } else {
        &[]
    };
    let server = start_server(database.server_args(flags)).await;
    let api = Api::new(&server.base_url);
    if let Some(receiver) = receiver {
        subscribe(receiver, &api, &["order.*"]).await;
    }
    for isbn in [RUST_BOOK, EFFECTIVE_JAVA] {
        api.set_stock(isbn, STOCK_BEFORE).await;
    }
    let placed = Arc::new(AtomicUsize::new(0));
    let kill_now = Arc::new(Notify::new());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            tokio::spawn(buy_until_the_server_dies(
                api.clone(),
                client,
                keyed,
                Arc::clone(&placed),
                Arc::clone(&kill_now),
            ))
        })
        .collect();
    tokio::time::timeout(PROCESS_LIMIT, kill_now.notified())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{KILL_AFTER_PLACED} orders were not placed within {PROCESS_LIMIT:?} (placed: {})",
                placed.load(Ordering::SeqCst)
            )
        });
    kill_hard(server).await;
    let attempts: Vec<Attempt> =
        tokio::time::timeout(PROCESS_LIMIT, futures_util::future::join_all(clients))
            .await
            .expect("every buyer stops once the server is gone")
            .into_iter()
            .flat_map(|joined| joined.expect("a buyer does not panic"))
            .collect();
    for attempt in &attempts {
        match &attempt.outcome {
            // A pool waits no longer than the connect timeout, which a busy machine may
            // exceed; such an order must leave nothing behind, which is checked after.
            Outcome::Placed(_) | Outcome::Refused(503, _) | Outcome::Unanswered => {}
            // Stock cannot run out in this burst: nothing else is a fair answer.
            Outcome::Refused(status, body) => {
                panic!("an order before the kill was answered {status}: {body}")
            }
        }
    }
    attempts
}

/// The ids of the attempts answered 201.
fn answered_201(attempts: &[Attempt]) -> BTreeSet<String> {
    attempts
        .iter()
        .filter_map(|attempt| match &attempt.outcome {
            Outcome::Placed(id) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// Starts the server again on `database` with its default settings (the recovery grace
/// period is five minutes, so only the lease of the killed process tells recovery that its
/// work is abandoned) and waits until it reports ready.
async fn restart_and_wait_until_ready(database: &TestDatabase) -> (Server, Api) {
    restart_with_and_wait_until_ready(database, &[]).await
}

/// [`restart_and_wait_until_ready`] with `extra` flags.
async fn restart_with_and_wait_until_ready(
    database: &TestDatabase,
    extra: &[&str],
) -> (Server, Api) {
    let server = start_server(database.server_args(extra)).await;
    let api = Api::new(&server.base_url);
    api.wait_until_ready().await;
    (server, api)
}

/// After the server has stopped (a SQLite file serves one process): nothing half-done is
/// journaled, and every capture belongs to one of `orders`, each paid its total.
async fn assert_nothing_half_done_remains(database: &TestDatabase, orders: &[Value]) {
    let inspection = database.inspect().await;
    let catalogue = inspection
        .stores(&bookstore_storage::events::Outbox::id_only())
        .catalogue;
    let everything = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        catalogue.reservations_older_than(everything).await.unwrap(),
        vec![],
        "recovery left no reservation behind"
    );
    assert_eq!(
        catalogue.returns_older_than(everything).await.unwrap(),
        vec![],
        "recovery left no return behind"
    );
    let payments = inspection
        .stores(&bookstore_storage::events::Outbox::id_only())
        .payments;
    for order in orders {
        let id = order["id"].as_str().expect("an id");
        let order_id: OrderId = id.parse().expect("a valid order id");
        let capture = payments
            .capture_for(order_id)
            .await
            .expect("the ledger answers")
            .unwrap_or_else(|| panic!("confirmed order {id} has no capture"));
        assert_eq!(
            capture.status,
            PaymentStatus::Captured,
            "confirmed order {id}"
        );
        assert_eq!(
            Some(capture.amount.cents()),
            order["total_cents"].as_i64(),
            "order {id} was charged its total"
        );
    }
    assert_eq!(
        inspection
            .payment_count(PaymentStatus::Captured)
            .await
            .expect("the ledger answers"),
        orders.len(),
        "every capture without an order was refunded (refunded: {:?})",
        inspection.payment_count(PaymentStatus::Refunded).await
    );
    assert_every_change_has_its_event_and_no_other(&inspection, orders).await;
    inspection.close().await;
}

/// The outbox guarantee across the kill: every order in the database has exactly one
/// `order.placed` and no event names an order that is not there; every capture has one
/// `payment.captured`, every refund (recovery's, of captures whose order was never recorded)
/// one `payment.refunded`; each resource's events are numbered 1, 2, … without a gap.
async fn assert_every_change_has_its_event_and_no_other(
    inspection: &bookstore_storage::Database,
    orders: &[Value],
) {
    let events = inspection
        .stores(&bookstore_storage::events::Outbox::id_only())
        .events;
    // On PostgreSQL the killed process's last events may not be numbered yet.
    while events.sequence().await.expect("the log answers") > 0 {}
    let mut all = Vec::new();
    loop {
        let after = all
            .last()
            .and_then(|event: &bookstore_storage::events::Event| event.position)
            .unwrap_or(0);
        let page = events.after(after, 1_000).await.expect("the log answers");
        if page.is_empty() {
            break;
        }
        all.extend(page);
    }
    let of_type = |kind: bookstore_storage::events::EventType| -> Vec<String> {
        all.iter()
            .filter(|event| event.event_type == kind)
            .map(|event| event.resource_id.clone())
            .collect()
    };
    let mut placed = of_type(bookstore_storage::events::EventType::OrderPlaced);
    placed.sort();
    let mut recorded: Vec<String> = orders
        .iter()
        .map(|order| order["id"].as_str().expect("an id").to_owned())
        .collect();
    recorded.sort();
    assert_eq!(
        placed, recorded,
        "one order.placed per recorded order, and none for an order that is not there"
    );
    let count = |status| async move {
        inspection
            .payment_count(status)
            .await
            .expect("the ledger answers")
    };
    let captured = count(PaymentStatus::Captured).await;
    let refunded = count(PaymentStatus::Refunded).await;
    let captured_events = of_type(bookstore_storage::events::EventType::PaymentCaptured);
    let refunded_events = of_type(bookstore_storage::events::EventType::PaymentRefunded);
    assert_eq!(
        captured_events.iter().collect::<BTreeSet<_>>().len(),
        captured + refunded,
        "one payment.captured per capture ever made"
    );
    assert_eq!(captured_events.len(), captured + refunded);
    assert_eq!(
        refunded_events.len(),
        refunded,
        "one payment.refunded per refund"
    );
    let mut sequences: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for event in &all {
        sequences
            .entry(event.resource_id.as_str())
            .or_default()
            .push(event.sequence);
    }
    for (resource, numbers) in sequences {
        let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
        assert_eq!(numbers, expected, "the events of {resource}");
    }
}

/// Copies per ISBN in `orders`.
fn units_by_isbn(orders: &[Value]) -> BTreeMap<String, u64> {
    let mut units = BTreeMap::new();
    for order in orders {
        for item in order["items"].as_array().expect("an order has items") {
            let isbn = item["isbn"]
                .as_str()
                .expect("a line has an isbn")
                .to_owned();
            *units.entry(isbn).or_insert(0) += item["quantity"].as_u64().expect("a quantity");
        }
    }
    units
}

/// Checks through the API that the books balance: every order is confirmed, and stock plus
/// copies in confirmed orders is the stock before the burst. Returns every order, newest
/// first.
async fn assert_the_books_balance(api: &Api) -> Vec<Value> {
    let orders = api.all_orders().await;
    for order in &orders {
        assert_eq!(order["status"], "confirmed", "nobody cancelled: {order}");
    }
    let sold = units_by_isbn(&orders);
    for isbn in [RUST_BOOK, EFFECTIVE_JAVA] {
        let stock_now = api.stock_of(isbn).await;
        let sold = sold.get(isbn).copied().unwrap_or(0);
        assert_eq!(
            stock_now + sold,
            u64::from(STOCK_BEFORE),
            "{isbn}: {stock_now} in stock + {sold} in confirmed orders"
        );
    }
    orders
}

async fn every_order_confirmed_before_a_kill_9_survives_and_nothing_half_done_remains(
    backend: Backend,
) {
    let database = backend.fresh_database().await;
    let attempts = burst_cut_off_by_a_kill_9(&database, false, None).await;
    let answered = answered_201(&attempts);

    let (server, api) = restart_and_wait_until_ready(&database).await;
    // The moment the restarted server is ready, every order in the database, answered or
    // not (a kill can land between recording an order and answering it), must balance:
    // no copy is held by an attempt the kill cut off.
    let orders = assert_the_books_balance(&api).await;
    let recorded: BTreeSet<&str> = orders
        .iter()
        .map(|order| order["id"].as_str().expect("an id"))
        .collect();
    for id in &answered {
        assert!(
            recorded.contains(id.as_str()),
            "order {id} was answered 201 but is gone"
        );
        let reply = api.get(&format!("/api/orders/{id}")).await;
        assert_eq!(reply.status, 200, "order {id}: {}", reply.body);
        assert_eq!(reply.json()["status"], "confirmed", "order {id}");
    }
    eprintln!(
        "{} attempts, {} answered 201, {} orders recorded; at restart: {:?}",
        attempts.len(),
        answered.len(),
        orders.len(),
        server
            .stderr_text()
            .lines()
            .find(|line| line.contains("recovered interrupted orders"))
    );
    stop_gracefully(server).await;
    assert_nothing_half_done_remains(&database, &orders).await;
}

async fn an_order_cut_off_by_a_kill_9_and_retried_with_its_idempotency_key_is_placed_once(
    backend: Backend,
) {
    let database = backend.fresh_database().await;
    let attempts = burst_cut_off_by_a_kill_9(&database, true, None).await;
    let answered = answered_201(&attempts);
    let cut_off: Vec<&Attempt> = attempts
        .iter()
        .filter(|attempt| !matches!(attempt.outcome, Outcome::Placed(_)))
        .collect();
    let (server, api) = restart_and_wait_until_ready(&database).await;

    // A client retries each cut-off order with its key and body. A request the kill
    // interrupted left its key "in flight"; its process is gone, so the retry resumes it at
    // once and is answered as the first attempt would have been.
    for attempt in &cut_off {
        let reply = api
            .place_order(&attempt.request, attempt.key.as_deref())
            .await
            .expect("the retry is answered");
        assert_eq!(
            reply.status, 201,
            "a retry after the restart: {}",
            reply.body
        );
    }

    let orders = assert_the_books_balance(&api).await;
    eprintln!(
        "{} attempts: {} answered 201, {} cut off; {} orders in the end",
        attempts.len(),
        answered.len(),
        cut_off.len(),
        orders.len(),
    );
    assert_eq!(
        orders.len(),
        answered.len() + cut_off.len(),
        "each order attempt, retried with its key until answered, is placed exactly once"
    );
    stop_gracefully(server).await;
    assert_nothing_half_done_remains(&database, &orders).await;
}

async fn every_order_answered_201_before_a_kill_9_reaches_a_subscribed_receiver_and_no_other_does(
    backend: Backend,
) {
    let database = backend.fresh_database().await;
    let receiver = Receiver::start(vec![]);
    let attempts = burst_cut_off_by_a_kill_9(&database, false, Some(&receiver)).await;
    let answered = answered_201(&attempts);
    let (server, api) = restart_with_and_wait_until_ready(&database, WEBHOOK_FLAGS).await;
    let recorded: BTreeSet<String> = assert_the_books_balance(&api)
        .await
        .iter()
        .map(|order| order["id"].as_str().expect("an id").to_owned())
        .collect();
    // The restarted server delivers what the killed one had not: every order recorded
    // (answered 201 or cut off after recording) reaches the receiver at least once; what
    // the killed process had claimed, once its claims have run out.
    let delivered = crate::harness::poll_until(
        "every recorded order's order.placed is delivered",
        AFTER_A_KILL,
        || async {
            let placed: BTreeSet<String> = receiver
                .received()
                .iter()
                .filter(|delivery| delivery.json()["type"] == "order.placed")
                .map(|delivery| {
                    delivery.json()["data"]["id"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned()
                })
                .collect();
            recorded.is_subset(&placed).then_some(placed)
        },
    )
    .await;
    assert!(
        answered.is_subset(&recorded),
        "every order answered 201 is recorded"
    );
    assert_eq!(
        delivered, recorded,
        "no order.placed was delivered for an order that is not recorded"
    );
    let deliveries = receiver.received();
    let repeats = deliveries.len()
        - deliveries
            .iter()
            .map(|delivery| delivery.header("webhook-id"))
            .collect::<BTreeSet<_>>()
            .len();
    eprintln!(
        "{} answered 201, {} recorded, {} deliveries ({repeats} repeated across the kill)",
        answered.len(),
        recorded.len(),
        deliveries.len(),
    );
    stop_gracefully(server).await;
}
