//! Instance leases with real processes: a SQLite file serves one process (a second is
//! refused, a killed one never blocks the next start), and when one of two instances on
//! PostgreSQL is killed under load, the survivor settles its half-done orders within the
//! lease bound while its own customers notice nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bookstore_sales::PaymentStatus;

use crate::harness::{
    Api, Backend, EFFECTIVE_JAVA, PROCESS_LIMIT, RUST_BOOK, kill_hard, order_request, poll_until,
    start_server, stop_gracefully,
};
use crate::helpers::run_until_exit;

/// The lease the PostgreSQL instances run with, in seconds: short, so the test is.
const LEASE_SECONDS: u64 = 2;

/// Stock of each book before the load.
const STOCK_BEFORE: u32 = 100_000;

/// Buyers on each instance.
const BUYERS_PER_INSTANCE: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_sqlite_file_is_refused_and_a_killed_ones_lock_never_blocks() {
    let database = Backend::Sqlite.fresh_database().await;
    let first = start_server(database.server_args(&[])).await;
    Api::new(&first.base_url).wait_until_ready().await;

    let url = database.url.clone();
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        run_until_exit(&["--database-url", &url], &[], PROCESS_LIMIT)
    })
    .await
    .unwrap()
    .expect("the second server stops by itself");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(status.code(), Some(1), "exits 1: {stderr}");
    assert_eq!(lines.len(), 1, "one line on stderr:\n{stderr}");
    let path = database.url.trim_start_matches("sqlite://");
    assert!(
        lines[0].contains("in use by another process") && lines[0].contains(path),
        "the line names the file: {}",
        lines[0]
    );

    // The first server still serves, and its lock dies with it.
    let api = Api::new(&first.base_url);
    let placed = api
        .place_order(&order_request(&[(RUST_BOOK, 1)]), None)
        .await
        .expect("the first server answers");
    assert_eq!(placed.status, 201, "{}", placed.body);
    kill_hard(first).await;
    let restarted = start_server(database.server_args(&[])).await;
    let api = Api::new(&restarted.base_url);
    api.wait_until_ready().await;
    let reply = api.get(&format!("/api/orders/{}", placed.id())).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    stop_gracefully(restarted).await;
}

#[ignore = "needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_one_of_two_postgres_instances_is_killed_the_survivor_settles_its_orders_within_the_lease()
 {
    let database = Backend::Postgres.fresh_database().await;
    let lease = LEASE_SECONDS.to_string();
    let args = database.server_args(&["--instance-lease-seconds", &lease]);
    let (doomed, survivor) = tokio::join!(start_server(args.clone()), start_server(args));
    let (a, b) = (Api::new(&doomed.base_url), Api::new(&survivor.base_url));
    a.wait_until_ready().await;
    b.wait_until_ready().await;
    for isbn in [RUST_BOOK, EFFECTIVE_JAVA] {
        a.set_stock(isbn, STOCK_BEFORE).await;
    }

    // Buyers on both instances until told to stop; the survivor's buyers record every
    // answer they get.
    let stop = Arc::new(AtomicBool::new(false));
    let buyers: Vec<_> = (0..2 * BUYERS_PER_INSTANCE)
        .map(|buyer| {
            let on_survivor = buyer % 2 == 1;
            let api = if on_survivor { b.clone() } else { a.clone() };
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let deadline = Instant::now() + 3 * PROCESS_LIMIT;
                let mut statuses = BTreeMap::<u16, usize>::new();
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let request = order_request(&[(RUST_BOOK, 1), (EFFECTIVE_JAVA, 2)]);
                    match api.place_order(&request, None).await {
                        Ok(reply) => *statuses.entry(reply.status).or_default() += 1,
                        // The doomed instance's buyers lose their server.
                        Err(_) if !on_survivor => break,
                        Err(error) => panic!("the survivor did not answer: {error}"),
                    }
                }
                (on_survivor, statuses)
            })
        })
        .collect();

    // Let both instances take orders, then kill one in the middle of its work.
    poll_until(
        "both instances have placed orders",
        PROCESS_LIMIT,
        || async {
            (a.all_orders().await.len() >= 20 && b.all_orders().await.len() >= 20).then_some(())
        },
    )
    .await;
    kill_hard(doomed).await;
    let killed_at = Instant::now();
    let cutoff = chrono::Utc::now();

    // The survivor settles every reservation made before the kill (the doomed instance's
    // half-done orders; its own finish in milliseconds) while its buyers keep buying.
    let inspection = database.inspect().await;
    let catalogue = inspection
        .stores(&bookstore_storage::events::Outbox::id_only())
        .catalogue;
    poll_until(
        "the survivor settles the killed instance's reservations",
        PROCESS_LIMIT,
        || async {
            let left = catalogue.reservations_older_than(cutoff).await.ok()?;
            left.is_empty().then_some(())
        },
    )
    .await;
    let settled_after = killed_at.elapsed();
    // The bound: the lease runs out at most one lease after the last renewal, and the
    // survivor looks every fifth of a lease; a second fifth and a second of slack absorb
    // a busy machine.
    let bound = Duration::from_millis(LEASE_SECONDS * 1000 * 7 / 5) + Duration::from_secs(1);
    assert!(
        settled_after <= bound,
        "settled {settled_after:?} after the kill, more than {bound:?}"
    );

    stop.store(true, Ordering::SeqCst);
    let mut survivor_statuses = BTreeMap::<u16, usize>::new();
    for buyer in buyers {
        let (on_survivor, statuses) = buyer.await.expect("a buyer does not panic");
        if on_survivor {
            for (status, count) in statuses {
                *survivor_statuses.entry(status).or_default() += count;
            }
        }
    }
    assert_eq!(
        survivor_statuses.keys().copied().collect::<Vec<_>>(),
        vec![201],
        "the survivor's buyers got only 201s: {survivor_statuses:?}"
    );

    // Everything balances: stock + confirmed copies is the stock before, and every capture
    // belongs to a confirmed order.
    let orders = b.all_orders().await;
    let mut sold = BTreeMap::<String, u64>::new();
    for order in &orders {
        for item in order["items"].as_array().expect("items") {
            *sold
                .entry(item["isbn"].as_str().expect("an isbn").to_owned())
                .or_default() += item["quantity"].as_u64().expect("a quantity");
        }
    }
    for isbn in [RUST_BOOK, EFFECTIVE_JAVA] {
        let stock_now = b.stock_of(isbn).await;
        let sold = sold.get(isbn).copied().unwrap_or(0);
        assert_eq!(stock_now + sold, u64::from(STOCK_BEFORE), "{isbn}");
    }
    assert_eq!(
        inspection
            .payment_count(PaymentStatus::Captured)
            .await
            .expect("the ledger answers"),
        orders.len(),
        "no capture is left without its order"
    );
    eprintln!(
        "{} orders; the killed instance's work was settled {settled_after:?} after the kill; survivor: {survivor_statuses:?}",
        orders.len()
    );
    inspection.close().await;
    stop_gracefully(survivor).await;
}
