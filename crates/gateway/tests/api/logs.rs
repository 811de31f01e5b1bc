//! Request logs: one structured line per request with method, route template, status,
//! latency and request id; never an API key, a payment token or an address.

use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use actix_web::http::Method;
use serde_json::{Value, json};

use crate::helpers::{CUSTOMER, EFFECTIVE_JAVA, delivery_request, order_request, spawn_app};

/// Log output collected in memory.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("the log buffer is not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("the log buffer is not poisoned"))
            .into_owned()
    }

    fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// Makes a do-nothing subscriber the global default, once per process, before a test installs
/// its capturing subscriber for its own thread.
///
/// `tracing` caches per call site, for the whole process, whether anyone listens. A call site
/// first reached by a test thread with no subscriber (while at most one subscriber exists) is
/// cached as "never", and the capturing test then sees nothing from it. The longer a test
/// takes to set up its app (a fresh SQL database), the more likely another test gets there
/// first. With a global default that listens to everything, no call site is cached as
/// "never"; the events of other threads go to it and are dropped.
fn listen_on_every_thread() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
}

/// The field of a log line whose name contains `part` (`http.route`, `route` …).
fn field<'a>(fields: &'a serde_json::Map<String, Value>, part: &str) -> Option<&'a Value> {
    fields
        .iter()
        .find(|(name, _)| name.contains(part))
        .map(|(_, value)| value)
}

#[actix_web::test]
async fn each_request_is_logged_once_with_method_route_template_status_latency_and_request_id() {
    listen_on_every_thread();
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = spawn_app().await;
    app.request(Method::GET, &format!("/api/books/{EFFECTIVE_JAVA}"))
        .key(CUSTOMER)
        .header("X-Request-Id", "log-test-1")
        .send()
        .await
        .success(200);

    let lines: Vec<Value> = logs
        .json_lines()
        .into_iter()
        .filter(|line| line.to_string().contains("log-test-1"))
        .collect();
    assert_eq!(lines.len(), 1, "one line per request: {lines:?}");
    let fields = lines[0]["fields"]
        .as_object()
        .unwrap_or_else(|| lines[0].as_object().unwrap());
    assert_eq!(field(fields, "method"), Some(&json!("GET")), "{fields:?}");
    assert_eq!(
        field(fields, "route"),
        Some(&json!("/api/books/{isbn}")),
        "{fields:?}"
    );
    assert_eq!(field(fields, "status"), Some(&json!(200)), "{fields:?}");
    assert!(
        field(fields, "duration")
            .or_else(|| field(fields, "latency"))
            .is_some(),
        "no latency: {fields:?}"
    );
    assert!(
        !lines[0].to_string().contains(EFFECTIVE_JAVA),
        "the raw path is logged: {}",
        lines[0]
    );
}

#[actix_web::test]
async fn logs_never_contain_api_keys_payment_tokens_or_addresses() {
    listen_on_every_thread();
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = spawn_app().await;
    let order = app.place_order(CUSTOMER, &[(EFFECTIVE_JAVA, 1)]).await;
    app.schedule_delivery(CUSTOMER, order["id"].as_str().unwrap())
        .await;
    app.post_json(
        "/api/orders",
        CUSTOMER,
        &order_request(&[(EFFECTIVE_JAVA, 1)], "tok_chargeDeclined"),
    )
    .await;
    app.post_json(
        "/api/orders",
        CUSTOMER,
        &order_request(&[(EFFECTIVE_JAVA, 1)], "4242424242424242"),
    )
    .await;
    app.post_json(
        "/api/orders",
        CUSTOMER,
        &order_request(&[(EFFECTIVE_JAVA, 1)], "tok_secret_test_token"),
    )
    .await;
    let mut bad_address = delivery_request(order["id"].as_str().unwrap());
    bad_address["address"]["country"] = json!("ZZ");
    app.post_json("/api/delivery", CUSTOMER, &bad_address).await;
    app.get("/api/books", "a-wrong-key-7777").await;

    let text = logs.text();
    assert!(!text.is_empty(), "nothing was logged");
    for secret in [
        CUSTOMER,
        "a-wrong-key-7777",
        "tok_visa",
        "tok_chargeDeclined",
        "tok_secret_test_token",
        "4242424242424242",
        "Ada Lovelace",
        "1 Main St",
        "N1 9GU",
    ] {
        assert!(
            !text.contains(secret),
            "the logs contain {secret:?}:\n{text}"
        );
    }
}
