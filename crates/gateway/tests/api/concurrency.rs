//! Real parallel clients against a real server with two workers: stock is never oversold,
//! and one idempotency key creates exactly one order however many requests race.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::helpers::{AppConfig, CUSTOMER, RunningServer, book, isbn_with, order_request};

/// Sends `count` copies of one request at once (released together by a barrier) and
/// returns every `(status, body)`.
async fn race(
    server: &RunningServer,
    count: usize,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Vec<(u16, Value)> {
    let client = server.client();
    let barrier = Arc::new(Barrier::new(count));
    let request = Arc::new(request);
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (client, barrier, request) = (client.clone(), barrier.clone(), request.clone());
            tokio::spawn(async move {
                let builder = request(&client);
                barrier.wait().await;
                let response = builder.send().await.expect("the server answers");
                let status = response.status().as_u16();
                let body: Value = response.json().await.expect("a JSON body");
                (status, body)
            })
        })
        .collect();
    let mut results = Vec::with_capacity(count);
    for task in tasks {
        results.push(task.await.expect("the client task finishes"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_64_concurrent_buyers_of_10_copies_exactly_10_get_one() {
    let isbn = isbn_with("979", 64);
    let server = RunningServer::start(AppConfig {
        books: vec![book(&isbn, "Scarce", "Someone", 1500, 10)],
        ..AppConfig::default()
    });
    let url = server.url("/api/orders");
    let body = order_request(&[(&isbn, 1)], "tok_visa");
    let results = race(&server, 64, move |client| {
        client.post(&url).header("X-API-Key", CUSTOMER).json(&body)
    })
    .await;

    let created = results.iter().filter(|(status, _)| *status == 201).count();
    let conflicts: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == 409)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(
        created,
        10,
        "{:?}",
        results.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    assert_eq!(conflicts.len(), 54);
    for conflict in conflicts {
        assert_eq!(conflict["type"], "/problems/out-of-stock");
        assert_eq!(conflict["isbn"], json!(isbn));
    }
    assert_eq!(server.stores.stock_of(&isbn).await, 0);
    assert_eq!(server.stores.captured_count(), 10);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_requests_with_one_idempotency_key_create_exactly_one_order() {
    let server = RunningServer::start(AppConfig::default());
    let url = server.url("/api/orders");
    let body = order_request(&[("9781593278281", 1)], "tok_visa");
    let results = race(&server, 16, move |client| {
        client
            .post(&url)
            .header("X-API-Key", CUSTOMER)
            .header("Idempotency-Key", "race-1")
            .json(&body)
    })
    .await;

    let created: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body)
        .collect();
    assert!(!created.is_empty(), "no request created the order");
    assert!(
        created.iter().all(|body| *body == created[0]),
        "the 201 bodies differ"
    );
    for (status, body) in &results {
        match status {
            201 => {}
            409 => assert_eq!(
                body["type"], "/problems/idempotency-key-in-flight",
                "{body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }

    let listed: Value = server
        .client()
        .get(server.url("/api/orders"))
        .header("X-API-Key", CUSTOMER)
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a JSON body");
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0], *created[0]);
    assert_eq!(server.stores.captured_count(), 1);
    assert_eq!(server.stores.stock_of("9781593278281").await, 74);
    server.stop().await;
}
