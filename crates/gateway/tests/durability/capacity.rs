//! Capacity per day across instances: two `bookstore` processes on one PostgreSQL database,
//! each with `--delivery-capacity-per-day 10`, schedule 64 deliveries for one day at once;
//! exactly 10 land on it, and none of the later days holds more than 10.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, Days, NaiveDate, Utc, Weekday};
use serde_json::json;
use tokio::sync::Barrier;

use crate::harness::{
    Api, Backend, PROCESS_LIMIT, RUST_BOOK, order_request, start_server, stop_gracefully,
};

/// Deliveries scheduled at once, half through each instance.
const SCHEDULINGS: usize = 64;

/// The next Monday at least a week ahead.
fn a_monday_ahead() -> NaiveDate {
    let mut day = Utc::now().date_naive() + Days::new(7);
    while day.weekday() != Weekday::Mon {
        day = day + Days::new(1);
    }
    day
}

#[ignore = "needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_instances_book_exactly_ten_deliveries_on_a_day_with_room_for_ten() {
    let database = Backend::Postgres.fresh_database().await;
    let args = database.server_args(&["--delivery-capacity-per-day", "10"]);
    let (first, second) = tokio::join!(start_server(args.clone()), start_server(args));
    let (a, b) = (Api::new(&first.base_url), Api::new(&second.base_url));
    a.wait_until_ready().await;
    b.wait_until_ready().await;
    a.set_stock(RUST_BOOK, 1_000).await;

    let mut orders = Vec::new();
    for _ in 0..SCHEDULINGS {
        let placed = a
            .place_order(&order_request(&[(RUST_BOOK, 1)]), None)
            .await
            .expect("the order is answered");
        assert_eq!(placed.status, 201, "{}", placed.body);
        orders.push(placed.id());
    }
    let monday = a_monday_ahead();
    let start_together = Arc::new(Barrier::new(SCHEDULINGS));
    let tasks: Vec<_> = orders
        .into_iter()
        .enumerate()
        .map(|(index, order_id)| {
            let api = if index % 2 == 0 { a.clone() } else { b.clone() };
            let start_together = Arc::clone(&start_together);
            tokio::spawn(async move {
                let request = json!({
                    "order_id": order_id,
                    "requested_date": monday.to_string(),
                    "address": {
                        "recipient": "Ada Lovelace", "line1": "1 Main St", "line2": null,
                        "city": "London", "postal_code": "N1 9GU", "country": "GB"
                    }
                });
                start_together.wait().await;
                api.post("/api/delivery", &request).await
            })
        })
        .collect();
    let replies = tokio::time::timeout(PROCESS_LIMIT, futures_util::future::join_all(tasks))
        .await
        .expect("every scheduling is answered in time");
    let mut per_day = BTreeMap::<String, usize>::new();
    for reply in replies {
        let reply = reply.expect("a task does not panic");
        assert_eq!(reply.status, 201, "{}", reply.body);
        let day = reply.json()["scheduled_date"]
            .as_str()
            .expect("a date")
            .to_owned();
        *per_day.entry(day).or_default() += 1;
    }
    assert_eq!(per_day.get(&monday.to_string()), Some(&10), "{per_day:?}");
    assert!(per_day.values().all(|count| *count <= 10), "{per_day:?}");
    assert_eq!(per_day.values().sum::<usize>(), SCHEDULINGS);

    stop_gracefully(first).await;
    stop_gracefully(second).await;
}
