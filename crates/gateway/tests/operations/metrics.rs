//! `GET /metrics`: Prometheus text with bounded labels.

use crate::helpers::{Server, blocking_client};

fn scrape(server: &Server) -> String {
    let response = blocking_client()
        .get(&format!("{}/metrics", server.base_url))
        .send()
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    response.body
}

/// The value of the sample line that starts with `series` (name and labels), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

fn series_count(text: &str) -> usize {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .count()
}

#[test]
fn requests_are_counted_by_route_template_and_status_with_latency_histograms() {
    let server = Server::start(&["--no-seed"], &[]);
    let client = blocking_client();
    let admin = [("X-API-Key", "admin123")];
    let book = serde_json::json!({
        "isbn": "9780134685991", "title": "Effective Java", "author": "Joshua Bloch",
        "price_cents": 4499, "stock": 3
    });
    let created = client
        .post(&format!("{}/api/books", server.base_url))
        .header(admin[0].0, admin[0].1)
        .json(&book)
        .send()
        .expect("create book");
    assert_eq!(created.status(), 201);
    for _ in 0..3 {
        let got = client
            .get(&format!("{}/api/books/9780134685991", server.base_url))
            .header("X-API-Key", "secret123")
            .send()
            .expect("get book");
        assert_eq!(got.status(), 200);
    }
    let order = serde_json::json!({ "items": [{ "isbn": "9780134685991", "quantity": 5 }], "payment": { "token": "tok_visa" } });
    let conflict = client
        .post(&format!("{}/api/orders", server.base_url))
        .header("X-API-Key", "secret123")
        .json(&order)
        .send()
        .expect("order");
    assert_eq!(conflict.status(), 409);
    let declined = serde_json::json!({ "items": [{ "isbn": "9780134685991", "quantity": 1 }], "payment": { "token": "tok_chargeDeclined" } });
    let declined = client
        .post(&format!("{}/api/orders", server.base_url))
        .header("X-API-Key", "secret123")
        .json(&declined)
        .send()
        .expect("order");
    assert_eq!(declined.status(), 402);
    let placed = serde_json::json!({ "items": [{ "isbn": "9780134685991", "quantity": 1 }], "payment": { "token": "tok_visa" } });
    for _ in 0..2 {
        let placed = client
            .post(&format!("{}/api/orders", server.base_url))
            .header("X-API-Key", "secret123")
            .header("Idempotency-Key", "order-1")
            .json(&placed)
            .send()
            .expect("order");
        assert_eq!(placed.status(), 201);
    }

    let text = scrape(&server);
    let get_book = r#"http_requests_total{method="GET",route="/api/books/{isbn}",status="200"}"#;
    assert_eq!(sample(&text, get_book), Some(3.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"http_request_duration_seconds_count{method="GET",route="/api/books/{isbn}",status="200"}"#
        ),
        Some(3.0)
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_bucket{method="GET",route="/api/books/{isbn}",status="200",le="0.005"}"#),
        "latency is a histogram with real buckets: {text}"
    );
    assert!(
        !text.contains("9780134685991"),
        "no raw ISBN in any label: {text}"
    );
    assert_eq!(
        sample(&text, "bookstore_orders_placed_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "bookstore_stock_conflicts_total"), Some(1.0));
    assert_eq!(
        sample(&text, "bookstore_payments_declined_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "bookstore_idempotent_replays_total"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "bookstore_orders_cancelled_total"), Some(0.0));
    assert_eq!(
        sample(&text, "bookstore_deliveries_scheduled_total"),
        Some(0.0)
    );
    // The scrape itself is in flight while it renders.
    assert_eq!(sample(&text, "http_requests_in_flight"), Some(1.0));
    server.stop();
}

#[test]
fn ten_thousand_random_paths_add_no_series() {
    let server = Server::start(&["--rate-limit-per-second", "0"], &[]);
    let client = blocking_client();
    for n in 0..10_000u32 {
        let path = format!(
            "{}/no/such/{n}/{}",
            server.base_url,
            n.wrapping_mul(2_654_435_761)
        );
        let response = client.get(&path).send().expect("request");
        assert_eq!(response.status(), 404);
    }
    let text = scrape(&server);
    let series = series_count(&text);
    // The fixed series (one per event type among them) and a few for these requests.
    assert!(
        series < 70,
        "{series} series after 10,000 random paths:\n{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(10_000.0)
    );
    server.stop();
}

#[test]
fn each_event_of_the_log_is_counted_once_by_type() {
    let server = Server::start(&["--no-seed"], &[]);
    let client = blocking_client();
    let book = serde_json::json!({
        "isbn": "9780134685991", "title": "Effective Java", "author": "Joshua Bloch",
        "price_cents": 4499, "stock": 3
    });
    let created = client
        .post(&format!("{}/api/books", server.base_url))
        .header("X-API-Key", "admin123")
        .json(&book)
        .send()
        .expect("create book");
    assert_eq!(created.status(), 201);
    let order = serde_json::json!({ "items": [{ "isbn": "9780134685991", "quantity": 1 }], "payment": { "token": "tok_visa" } });
    let placed = client
        .post(&format!("{}/api/orders", server.base_url))
        .header("X-API-Key", "secret123")
        .json(&order)
        .send()
        .expect("place order");
    assert_eq!(placed.status(), 201);
    let counted = |text: &str, kind: &str| {
        sample(
            text,
            &format!(r#"bookstore_events_recorded_total{{type="{kind}"}}"#),
        )
    };
    // The counting relay polls the log: wait for it, with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = scrape(&server);
        if counted(&text, "order.placed") == Some(1.0) {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "order.placed was not counted:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(counted(&text, "book.created"), Some(1.0), "{text}");
    assert_eq!(counted(&text, "payment.captured"), Some(1.0), "{text}");
    // Every type is present from the start.
    assert_eq!(
        counted(&text, "delivery.returned_to_sender"),
        Some(0.0),
        "{text}"
    );
    // No NATS configured: no NATS series.
    assert!(!text.contains("bookstore_events_nats"), "{text}");
    server.stop();
}
