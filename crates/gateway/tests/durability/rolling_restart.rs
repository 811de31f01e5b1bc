//! A rolling restart: two instances on one PostgreSQL database are restarted one at a time
//! with SIGTERM while clients keep placing orders through a balancer that follows
//! `/health/ready`. No order is lost: every client ends with a 201 for each order it
//! started, retrying with the same `Idempotency-Key` on the other instance when a connection
//! fails, and every 201 is in the database exactly once, charged once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bookstore_sales::PaymentStatus;

use crate::harness::{
    Api, Backend, PROCESS_LIMIT, RUST_BOOK, order_request, poll_until, start_server,
    stop_gracefully,
};

/// Clients placing orders at the same time.
const CLIENTS: usize = 4;

/// The most orders one client places.
const MAX_ORDERS_PER_CLIENT: usize = 1_000;

/// The pause between two orders of one client (which keeps the number of orders to check
/// afterwards, and the load on two shared cores, moderate).
const PACE: Duration = Duration::from_millis(25);

/// Orders placed between two steps of the restart, so that each step happens under load.
const ORDERS_PER_STEP: usize = 30;

/// How often the balancer asks each instance whether it is ready.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// The longest one order may take, retries included.
const ORDER_LIMIT: Duration = Duration::from_secs(60);

/// The instances as a load balancer sees them: each slot's address, and whether its last
/// readiness probe said 200.
struct Balancer {
    addresses: RwLock<[String; 2]>,
    ready: [AtomicBool; 2],
    next: AtomicUsize,
}

impl Balancer {
    fn new(first: &str, second: &str) -> Balancer {
        Balancer {
            addresses: RwLock::new([first.to_owned(), second.to_owned()]),
            ready: [AtomicBool::new(true), AtomicBool::new(true)],
            next: AtomicUsize::new(0),
        }
    }

    /// The slot for the next request: round robin over the ready slots (any slot when none
    /// is), skipping `avoid`, the slot whose connection just failed, if another is ready.
    fn pick(&self, avoid: Option<usize>) -> (usize, Api) {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let ready: Vec<usize> = (0..2)
            .filter(|slot| self.ready[*slot].load(Ordering::Relaxed))
            .collect();
        let candidates: Vec<usize> = match avoid {
            Some(failed) if ready.iter().any(|slot| *slot != failed) => {
                ready.into_iter().filter(|slot| *slot != failed).collect()
            }
            Some(failed) => vec![1 - failed],
            None if ready.is_empty() => vec![0, 1],
            None => ready,
        };
        let slot = candidates[turn % candidates.len()];
        (slot, Api::new(&self.address(slot)))
    }

    fn address(&self, slot: usize) -> String {
        self.addresses.read().expect("the addresses")[slot].clone()
    }

    fn replace(&self, slot: usize, address: &str) {
        self.addresses.write().expect("the addresses")[slot] = address.to_owned();
    }
}

/// Probes both slots every [`PROBE_INTERVAL`] until `stop`, as a load balancer would.
async fn probe_until(balancer: Arc<Balancer>, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("an HTTP client");
    while !stop.load(Ordering::Relaxed) {
        for slot in 0..2 {
            let url = format!("{}/health/ready", balancer.address(slot));
            let ready = client
                .get(&url)
                .send()
                .await
                .is_ok_and(|response| response.status() == 200);
            balancer.ready[slot].store(ready, Ordering::Relaxed);
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// What one client saw.
#[derive(Default)]
struct ClientReport {
    /// Idempotency key → the id of the order its 201 named.
    placed: BTreeMap<String, String>,
    /// Attempts that got no response (refused or cut connections), each retried.
    connection_failures: usize,
    /// Attempts answered 503 or 409 (key in flight), each retried.
    retried_answers: usize,
}

/// Places orders one after another until `stop`, each until it is answered 201.
async fn place_orders(
    client: usize,
    balancer: Arc<Balancer>,
    stop: Arc<AtomicBool>,
    placed_so_far: Arc<AtomicUsize>,
) -> ClientReport {
    let mut report = ClientReport::default();
    let request = order_request(&[(RUST_BOOK, 1)]);
    for order in 0..MAX_ORDERS_PER_CLIENT {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("rolling-{client}-{order}");
        let deadline = Instant::now() + ORDER_LIMIT;
        let mut avoid = None;
        let id = loop {
            assert!(
                Instant::now() < deadline,
                "order {key} was not placed within {ORDER_LIMIT:?}"
            );
            let (slot, api) = balancer.pick(avoid);
            match api.place_order(&request, Some(&key)).await {
                Ok(reply) if reply.status == 201 => break reply.id(),
                Ok(reply)
                    if reply.status == 503
                        || (reply.status == 409
                            && reply.body.contains("idempotency-key-in-flight")) =>
                {
                    report.retried_answers += 1;
                    avoid = Some(slot);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(reply) => panic!(
                    "order {key}: {} is not an answer a client can retry: {}",
                    reply.status, reply.body
                ),
                Err(_no_response) => {
                    report.connection_failures += 1;
                    avoid = Some(slot);
                }
            }
        };
        report.placed.insert(key, id);
        placed_so_far.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(PACE).await;
    }
    report
}

#[ignore = "needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_two_instances_one_at_a_time_while_clients_order_loses_no_order() {
    let database = Backend::Postgres.fresh_database().await;
    let args = database.server_args(&["--shutdown-drain-seconds", "1"]);
    let first = start_server(args.clone()).await;
    let second = start_server(args.clone()).await;
    let api = Api::new(&first.base_url);
    api.wait_until_ready().await;
    Api::new(&second.base_url).wait_until_ready().await;
    let stock_before: u32 = 1_000_000;
    api.set_stock(RUST_BOOK, stock_before).await;

    let balancer = Arc::new(Balancer::new(&first.base_url, &second.base_url));
    let stop = Arc::new(AtomicBool::new(false));
    let placed = Arc::new(AtomicUsize::new(0));
    let prober = tokio::spawn(probe_until(Arc::clone(&balancer), Arc::clone(&stop)));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            tokio::spawn(place_orders(
                client,
                Arc::clone(&balancer),
                Arc::clone(&stop),
                Arc::clone(&placed),
            ))
        })
        .collect();

    let wait_for_progress = |what: &'static str| {
        let placed = Arc::clone(&placed);
        let target = placed.load(Ordering::Relaxed) + ORDERS_PER_STEP;
        async move {
            poll_until(what, PROCESS_LIMIT, || {
                let placed = Arc::clone(&placed);
                async move { (placed.load(Ordering::Relaxed) >= target).then_some(()) }
            })
            .await;
        }
    };

    // Restart each instance in turn while the clients go on.
    let mut running = vec![first, second];
    for slot in 0..2 {
        wait_for_progress("orders are placed before the restart").await;
        let old = running.remove(0);
        stop_gracefully(old).await;
        let new = start_server(args.clone()).await;
        Api::new(&new.base_url).wait_until_ready().await;
        balancer.replace(slot, &new.base_url);
        running.push(new);
    }
    wait_for_progress("orders are placed after both restarts").await;
    stop.store(true, Ordering::Relaxed);

    let mut placed_orders = BTreeMap::new();
    let (mut connection_failures, mut retried_answers) = (0, 0);
    for client in clients {
        let report = tokio::time::timeout(ORDER_LIMIT, client)
            .await
            .expect("the clients stop")
            .expect("a client does not panic");
        connection_failures += report.connection_failures;
        retried_answers += report.retried_answers;
        placed_orders.extend(report.placed);
    }
    prober.await.expect("the balancer stops");
    println!(
        "{} orders placed across two restarts; {connection_failures} attempts without a \
         response and {retried_answers} answered 503/409, all retried",
        placed_orders.len()
    );

    // Every 201 is an order in the database, once, charged once, its stock taken once.
    let survivor = Api::new(&running[1].base_url);
    let ids: BTreeSet<&String> = placed_orders.values().collect();
    assert_eq!(ids.len(), placed_orders.len(), "one order per key");
    for (key, id) in &placed_orders {
        let reply = survivor.get(&format!("/api/orders/{id}")).await;
        assert_eq!(reply.status, 200, "order {id} of {key}: {}", reply.body);
        assert_eq!(reply.json()["status"], "confirmed", "order {id}");
    }
    let listed = survivor.all_orders().await;
    assert_eq!(listed.len(), placed_orders.len(), "no order placed twice");
    assert_eq!(
        survivor.stock_of(RUST_BOOK).await,
        u64::from(stock_before) - placed_orders.len() as u64,
        "one copy taken per order"
    );
    let inspection = database.inspect().await;
    assert_eq!(
        inspection
            .payment_count(PaymentStatus::Captured)
            .await
            .expect("the ledger answers"),
        placed_orders.len(),
        "one capture per order"
    );
    inspection.close().await;

    for server in running {
        stop_gracefully(server).await;
    }
}
