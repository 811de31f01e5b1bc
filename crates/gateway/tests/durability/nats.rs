//! NATS JetStream: every event of the log reaches the stream once, in the log's order, also
//! when the server is killed (`kill -9`) while it publishes and started again.
//!
//! On PostgreSQL, events are inserted straight into the `events` table, as a store's
//! transaction records them (without a position): the server's sequencer numbers them and its
//! relay publishes them. On SQLite, orders placed through the API record them, and the
//! stream is compared with the feed. Each run uses a stream and subjects of its own.

use std::time::Duration;

use async_nats::jetstream;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::harness::{
    ADMIN_KEY, Api, Backend, PROCESS_LIMIT, RUST_BOOK, kill_hard, order_request, poll_until,
    start_server, stop_gracefully,
};

/// The variable naming the NATS server the NATS tests use.
const NATS_URL_VARIABLE: &str = "BOOKSTORE_TEST_NATS_URL";

/// The NATS server to test against: `BOOKSTORE_TEST_NATS_URL`, or the local one.
fn nats_url() -> String {
    std::env::var(NATS_URL_VARIABLE)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned())
}

/// A JetStream context, and a stream name and subject prefix of this run's own.
struct TestStream {
    context: jetstream::Context,
    stream_name: String,
    prefix: String,
}

impl TestStream {
    /// Connects to [`nats_url`]; a test that gets here without a server fails.
    async fn new() -> TestStream {
        let client = async_nats::connect(nats_url())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "a NATS test needs a server with JetStream: none answers at {} ({error})",
                    nats_url()
                )
            });
        let run = Uuid::new_v4().simple().to_string();
        TestStream {
            context: jetstream::new(client),
            stream_name: format!("BOOKSTORE_TEST_{run}"),
            prefix: format!("bookstore-test.{run}"),
        }
    }
}

/// Inserts `count` events without a position, as a store's transaction would.
async fn record_events(database_url: &str, count: usize) -> Vec<Uuid> {
    let mut connection = PgConnection::connect(database_url)
        .await
        .expect("the test database answers");
    let mut ids = Vec::with_capacity(count);
    for index in 0..count {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO events (id, type, resource_id, sequence, created_at, data)
             VALUES ($1, 'book.updated', $2, 1, now(), $3::json)",
        )
        .bind(id)
        .bind(format!("resource-{index}"))
        .bind(format!(r#"{{"index": {index}}}"#))
        .execute(&mut connection)
        .await
        .expect("an event is recorded");
        ids.push(id);
    }
    connection.close().await.ok();
    ids
}

/// The ids of the events in the log, in position order, once all are numbered.
async fn log_order(database_url: &str, expected: usize) -> Vec<Uuid> {
    poll_until("every event is numbered", PROCESS_LIMIT, || async {
        let mut connection = PgConnection::connect(database_url).await.ok()?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM events WHERE position IS NOT NULL ORDER BY position",
        )
        .fetch_all(&mut connection)
        .await
        .ok()?;
        (ids.len() == expected).then_some(ids)
    })
    .await
}

/// The `Nats-Msg-Id` of every message of `stream`, in stream order, once it holds `expected`.
async fn stream_ids(stream: &jetstream::stream::Stream, expected: u64) -> Vec<Uuid> {
    poll_until("the stream holds every event", PROCESS_LIMIT, || async {
        let messages = stream.get_info().await.ok()?.state.messages;
        (messages >= expected).then_some(())
    })
    .await;
    let info = stream.get_info().await.expect("the stream answers");
    let mut ids = Vec::new();
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        let message = stream
            .get_raw_message(sequence)
            .await
            .expect("every message of the stream can be read");
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .expect("every message carries Nats-Msg-Id")
            .as_str()
            .parse()
            .expect("Nats-Msg-Id is an event id");
        ids.push(id);
    }
    ids
}

#[ignore = "needs NATS with JetStream at 127.0.0.1:4222 or BOOKSTORE_TEST_NATS_URL, and PostgreSQL; cargo xtask test runs it when both answer"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_gets_every_event_once_in_order_across_a_kill_and_a_restart() {
    let TestStream {
        context,
        stream_name,
        prefix,
    } = TestStream::new().await;
    let database = Backend::Postgres.fresh_database().await;
    let nats_flags = [
        "--events-nats-url",
        &nats_url(),
        "--events-nats-stream",
        &stream_name,
        "--events-nats-subject-prefix",
        &prefix,
        "--instance-lease-seconds",
        "2",
    ];
    let args = database.server_args(&nats_flags);

    let server = start_server(args.clone()).await;
    let mut recorded = record_events(&database.url, 150).await;
    let stream = poll_until("the relay creates the stream", PROCESS_LIMIT, || async {
        context.get_stream(&stream_name).await.ok()
    })
    .await;
    assert_eq!(
        stream.get_info().await.unwrap().config.duplicate_window,
        Duration::from_secs(120)
    );
    poll_until("some events are published", PROCESS_LIMIT, || async {
        let messages = stream.get_info().await.ok()?.state.messages;
        (messages >= 20).then_some(())
    })
    .await;
    // Killed while it may be publishing: the events it published but had not recorded as
    // published are published again, and JetStream drops the repeats.
    kill_hard(server).await;
    recorded.extend(record_events(&database.url, 50).await);
    let server = start_server(args).await;
    recorded.extend(record_events(&database.url, 50).await);

    let order = log_order(&database.url, recorded.len()).await;
    let published = stream_ids(&stream, recorded.len() as u64).await;
    stop_gracefully(server).await;
    let mut unique = published.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        published.len(),
        "no event is in the stream twice"
    );
    assert_eq!(
        published, order,
        "the stream holds every event, in the log's order"
    );
    let subjects_ok = stream
        .get_raw_message(1)
        .await
        .map(|message| message.subject.to_string() == format!("{prefix}.book.updated"))
        .unwrap_or(false);
    assert!(subjects_ok, "events go to <prefix>.<type>");
    context.delete_stream(&stream_name).await.ok();
}

/// The ids of every event in the feed, oldest first, read page by page as the admin.
async fn feed_ids(api: &Api) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut path = "/api/events?order=oldest&limit=100".to_owned();
    for _ in 0..100 {
        let reply = api
            .send(reqwest::Method::GET, &path, Some(ADMIN_KEY), None, None)
            .await
            .expect("the feed answers");
        assert_eq!(reply.status, 200, "{}", reply.body);
        let page = reply.json();
        for event in page["items"].as_array().expect("items") {
            ids.push(event["id"].as_str().unwrap().parse().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/events?limit=100&cursor={cursor}"),
            None => return ids,
        }
    }
    panic!("the feed did not end within 100 pages");
}

#[ignore = "needs NATS with JetStream at 127.0.0.1:4222 or BOOKSTORE_TEST_NATS_URL, and PostgreSQL; cargo xtask test runs it when both answer"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_gets_every_event_of_api_calls_on_sqlite_once_in_feed_order_across_a_kill() {
    let TestStream {
        context,
        stream_name,
        prefix,
    } = TestStream::new().await;
    let database = Backend::Sqlite.fresh_database().await;
    let args = database.server_args(&[
        "--events-nats-url",
        &nats_url(),
        "--events-nats-stream",
        &stream_name,
        "--events-nats-subject-prefix",
        &prefix,
    ]);
    let place_orders = |api: Api, count: usize| async move {
        for _ in 0..count {
            let reply = api
                .place_order(&order_request(&[(RUST_BOOK, 1)]), None)
                .await
                .expect("the order is answered");
            assert_eq!(reply.status, 201, "{}", reply.body);
        }
    };
    let server = start_server(args.clone()).await;
    place_orders(Api::new(&server.base_url), 10).await;
    let stream = poll_until("the relay creates the stream", PROCESS_LIMIT, || async {
        context.get_stream(&stream_name).await.ok()
    })
    .await;
    poll_until("some events are published", PROCESS_LIMIT, || async {
        let messages = stream.get_info().await.ok()?.state.messages;
        (messages >= 5).then_some(())
    })
    .await;
    kill_hard(server).await;
    let server = start_server(args).await;
    let api = Api::new(&server.base_url);
    api.wait_until_ready().await;
    place_orders(Api::new(&server.base_url), 10).await;
    let feed = feed_ids(&api).await;
    assert!(
        feed.len() >= 40,
        "each order records several events: {}",
        feed.len()
    );
    let published = stream_ids(&stream, feed.len() as u64).await;
    stop_gracefully(server).await;
    assert_eq!(
        published, feed,
        "the stream holds every event once, in the feed's order"
    );
    context.delete_stream(&stream_name).await.ok();
}
