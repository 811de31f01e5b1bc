//! The event feed: `GET /api/events` pages in both directions without repeats or gaps while
//! events are being recorded, filters by type and resource, `after` catches up, `GET
//! /api/events/{id}`; admin keys only; retention purges old events from it.
//!
//! Events are recorded straight into an in-memory log the app is given, so these tests
//! choose every event's type, resource and time.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bookstore_gateway::events::{BackgroundTasks, purge_forever};
use bookstore_storage::events::{EventLog, EventType, InMemoryEventLog, NewEvent};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{ADMIN, AppConfig, CUSTOMER, FULFILMENT, TestApp, spawn_app_with};

/// An app whose feed is `log`.
async fn app_with_log(log: &Arc<InMemoryEventLog>) -> TestApp {
    spawn_app_with(AppConfig {
        events: Some(log.clone()),
        ..AppConfig::default()
    })
    .await
}

/// Records one event of `kind` about `resource` at `at`; answers its id.
fn record_at(log: &InMemoryEventLog, kind: EventType, resource: &str, at: DateTime<Utc>) -> Uuid {
    let id = Uuid::now_v7();
    log.record([NewEvent {
        id,
        event_type: kind,
        resource_id: resource.to_owned(),
        created_at: at,
        data: json!({ "id": resource, "kind": kind.as_str(), "note": "as stored" }).to_string(),
    }]);
    id
}

/// Records `count` events, cycling through every type, about resources `r0`, `r1`, `r2`.
fn record_many(log: &InMemoryEventLog, count: usize) -> Vec<Uuid> {
    (0..count)
        .map(|index| {
            let kind = EventType::ALL[index % EventType::ALL.len()];
            record_at(log, kind, &format!("r{}", index % 3), Utc::now())
        })
        .collect()
}

fn ids_of(page: &Value) -> Vec<Uuid> {
    page["items"]
        .as_array()
        .expect("items is an array")
        .iter()
        .map(|event| event["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Reads every page from `first` on, recording `added_per_page` events after each of the
/// first `pages_with_additions` pages; answers the ids in the order read.
async fn read_all_pages(
    app: &TestApp,
    log: &InMemoryEventLog,
    first: &str,
    added_per_page: usize,
    pages_with_additions: usize,
) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut path = first.to_owned();
    for page_number in 0..100 {
        let page = app.get(&path, ADMIN).await.success(200);
        seen.extend(ids_of(&page));
        if page_number < pages_with_additions {
            record_many(log, added_per_page);
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/events?limit=7&cursor={cursor}"),
            None => return seen,
        }
    }
    panic!("the feed did not end within 100 pages");
}

#[actix_web::test]
async fn newest_first_paging_visits_every_earlier_event_once_while_events_are_added() {
    let log = Arc::new(InMemoryEventLog::new());
    let app = app_with_log(&log).await;
    let before = record_many(&log, 40);
    let seen = read_all_pages(&app, &log, "/api/events?limit=7", 3, 4).await;
    let mut expected = before.clone();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, each once, none added later");
}

#[actix_web::test]
async fn oldest_first_paging_visits_every_event_once_in_order_including_those_added_meanwhile() {
    let log = Arc::new(InMemoryEventLog::new());
    let app = app_with_log(&log).await;
    record_many(&log, 20);
    let seen = read_all_pages(&app, &log, "/api/events?order=oldest&limit=7", 5, 3).await;
    let all: Vec<Uuid> = log
        .after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.id)
        .collect();
    assert_eq!(all.len(), 35);
    assert_eq!(seen, all);
}

#[actix_web::test]
async fn after_an_event_id_reads_the_later_events_oldest_first() {
    let log = Arc::new(InMemoryEventLog::new());
    let app = app_with_log(&log).await;
    let ids = record_many(&log, 12);
    let page = app
        .get(&format!("/api/events?after={}&limit=5", ids[4]), ADMIN)
        .await
        .success(200);
    assert_eq!(ids_of(&page), ids[5..10]);
    let cursor = page["next_cursor"].as_str().expect("more events follow");
    let rest = app
        .get(&format!("/api/events?cursor={cursor}&limit=5"), ADMIN)
        .await
        .success(200);
    assert_eq!(ids_of(&rest), ids[10..]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let caught_up = app
        .get(&format!("/api/events?after={}", ids[11]), ADMIN)
        .await
        .success(200);
    assert_eq!(caught_up, json!({ "items": [], "next_cursor": null }));
}

#[actix_web::test]
async fn an_event_shows_its_stored_json_as_is_and_can_be_read_by_id() {
    let log = Arc::new(InMemoryEventLog::new());
    let app = app_with_log(&log).await;
    let at = "2030-01-02T03:04:05.678Z".parse::<DateTime<Utc>>().unwrap();
    record_at(&log, EventType::OrderPlaced, "order-1", at);
    let id = record_at(&log, EventType::OrderCancelled, "order-1", at);
    let event = app
        .get(&format!("/api/events/{id}"), ADMIN)
        .await
        .success(200);
    assert_eq!(
        event,
        json!({
            "id": id.to_string(),
            "type": "order.cancelled",
            "created_at": "2030-01-02T03:04:05.678Z",
            "sequence": 2,
            "resource_id": "order-1",
            "data": { "id": "order-1", "kind": "order.cancelled", "note": "as stored" },
        })
    );
    let page = app.get("/api/events?limit=1", ADMIN).await.success(200);
    assert_eq!(page["items"][0], event);
}

#[actix_web::test]
async fn the_type_filter_takes_exact_types_and_wildcards_separated_by_commas() {
    let log = Arc::new(InMemoryEventLog::new());
    let app = app_with_log(&log).await;
    record_many(&log, EventType::ALL.len() * 2);
    let types_of = |page: &Value| -> HashSet<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["type"].as_str().unwrap().to_owned())
            .collect()
    };
    let orders = app
        .get("/api/events?type=order.*&limit=100", ADMIN)
        .await
        .success(200);
    assert_eq!(orders["items"].as_array().unwrap().len(), 4);
    assert_eq!(
        types_of(&orders),
        HashSet::from(["order.placed".to_owned(), "order.cancelled".to_owned()])
    );
    let mixed = app
        .get("/api/events?type=book.created,delivery.*&limit=100", ADMIN)
        .await
        .success(200);
    assert_eq!(mixed["items"].as_array().unwrap().len(), 20);
    assert!(
        types_of(&mixed)
            .iter()
            .all(|kind| kind == "book.created" || kind.starts_with("delivery."))
    );
    let everything = app
        .get("/api/events?type=*&limit=100", ADMIN)
        .await
        .success(200);
    assert_eq!(everything["items"].as_array().unwrap().len(), 34);
}

#[actix_web::test]
async fn the_resource_filter_pages_through_one_resources_events() {
    let log = Arc::new(InMemoryEventLog::new());
    let app = app_with_log(&log).await;
    let ids = record_many(&log, 30);
    let expected: Vec<Uuid> = ids.iter().copied().skip(1).step_by(3).rev().collect();
    let mut seen = Vec::new();
    let mut path = "/api/events?resource_id=r1&limit=4".to_owned();
    for _ in 0..10 {
        let page = app.get(&path, ADMIN).await.success(200);
        seen.extend(ids_of(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/events?resource_id=r1&limit=4&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    let none = app
        .get("/api/events?resource_id=nothing", ADMIN)
        .await
        .success(200);
    assert_eq!(none["items"], json!([]));
}

#[actix_web::test]
async fn bad_filters_and_unknown_after_ids_are_422s_naming_the_parameter() {
    let log = Arc::new(InMemoryEventLog::new());
    let app = app_with_log(&log).await;
    let ids = record_many(&log, 3);
    let unknown = Uuid::now_v7();
    for (query, field) in [
        ("type=order.shipped".to_owned(), "type"),
        ("type=order.*,orders.*".to_owned(), "type"),
        ("type=".to_owned(), "type"),
        ("after=42".to_owned(), "after"),
        (format!("after={unknown}"), "after"),
        (format!("after={}&order=newest", ids[0]), "order"),
        ("resource_id=".to_owned(), "resource_id"),
    ] {
        let problem = app
            .get(&format!("/api/events?{query}"), ADMIN)
            .await
            .problem(422);
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    for query in ["cursor=zz", "limit=0", "limit=101"] {
        app.get(&format!("/api/events?{query}"), ADMIN)
            .await
            .problem(400);
    }
}

#[actix_web::test]
async fn an_unknown_event_is_404() {
    let log = Arc::new(InMemoryEventLog::new());
    let app = app_with_log(&log).await;
    record_many(&log, 2);
    let problem = app
        .get(&format!("/api/events/{}", Uuid::now_v7()), ADMIN)
        .await
        .problem(404);
    assert_eq!(problem["detail"], "no such event");
}

#[actix_web::test]
async fn only_admin_keys_read_the_feed() {
    let log = Arc::new(InMemoryEventLog::new());
    let app = app_with_log(&log).await;
    let id = record_many(&log, 1)[0];
    for path in ["/api/events".to_owned(), format!("/api/events/{id}")] {
        app.get(&path, CUSTOMER).await.problem(403);
        app.get(&path, FULFILMENT).await.problem(403);
        app.request(actix_web::http::Method::GET, &path)
            .send()
            .await
            .problem(401);
        app.get(&path, ADMIN).await.success(200);
    }
}

#[actix_web::test]
async fn retention_purges_events_older_than_the_retention_from_the_feed() {
    let log = Arc::new(InMemoryEventLog::new());
    let app = app_with_log(&log).await;
    let old = record_at(
        &log,
        EventType::BookCreated,
        "r0",
        Utc::now() - chrono::Duration::days(31),
    );
    let recent = record_at(
        &log,
        EventType::BookUpdated,
        "r0",
        Utc::now() - chrono::Duration::days(29),
    );
    app.get(&format!("/api/events/{old}"), ADMIN)
        .await
        .success(200);
    let mut tasks = BackgroundTasks::new();
    let feed: Arc<dyn EventLog> = log.clone();
    let webhooks: Arc<dyn bookstore_storage::events::WebhookStore> =
        Arc::new(bookstore_storage::events::InMemoryWebhookStore::new());
    tasks.spawn(|stop| purge_forever(feed, webhooks, Duration::from_secs(30 * 24 * 60 * 60), stop));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.get(&format!("/api/events/{old}"), ADMIN).await.status != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the old event was not purged"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    tasks.stop(Duration::from_secs(5)).await;
    let page = app.get("/api/events", ADMIN).await.success(200);
    assert_eq!(ids_of(&page), [recent]);
}

#[actix_web::test]
async fn an_order_placed_through_the_api_is_in_the_feed_with_the_order_as_answered() {
    let app = crate::helpers::spawn_app().await;
    let order = app
        .place_order(CUSTOMER, &[(crate::helpers::RUST_BOOK, 1)])
        .await;
    let id = order["id"].as_str().unwrap();
    // The test app runs no background task: number the events as the sequencer would
    // (PostgreSQL; nothing to do elsewhere).
    while app.stores.state.events.sequence().await.unwrap() > 0 {}
    let page = app
        .get(&format!("/api/events?type=order.*&resource_id={id}"), ADMIN)
        .await
        .success(200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["type"], "order.placed");
    assert_eq!(items[0]["sequence"], 1);
    assert_eq!(items[0]["data"], order);
    let event_id = items[0]["id"].as_str().unwrap();
    let one = app
        .get(&format!("/api/events/{event_id}"), ADMIN)
        .await
        .success(200);
    assert_eq!(one, items[0]);
}
