//! Logs: one structured line per request, and never a secret or an address.

use crate::helpers::{Server, blocking_client};

const CUSTOMER_KEY: &str = "cust-key-7f3a9e2b41";
const ADMIN_KEY: &str = "admin-key-c81d55e0aa";
const GUESSED_KEY: &str = "guessed-key-0b7c4d";
const RECIPIENT: &str = "Augusta Ada King";
const STREET: &str = "12 Marylebone Crescent";
const POSTAL_CODE: &str = "NW1 5LT";

#[test]
fn logs_are_json_lines_with_one_line_per_request_and_never_contain_keys_tokens_or_addresses() {
    let keys = format!("{CUSTOMER_KEY}:customer,{ADMIN_KEY}:admin");
    let server = Server::start(
        &[],
        &[
            ("BOOKSTORE_API_KEYS", &keys),
            ("BOOKSTORE_LOG_FORMAT", "json"),
            ("RUST_LOG", "trace"),
        ],
    );
    let client = blocking_client();
    let base = &server.base_url;

    let order = serde_json::json!({
        "items": [{ "isbn": "9780134685991", "quantity": 1 }],
        "payment": { "token": "tok_mastercard" }
    });
    let placed = client
        .post(&format!("{base}/api/orders"))
        .header("X-API-Key", CUSTOMER_KEY)
        .header("X-Request-Id", "trace-me-1")
        .json(&order)
        .send()
        .expect("order");
    assert_eq!(placed.status(), 201, "{}", placed.body);
    let order_id = serde_json::from_str::<serde_json::Value>(&placed.body).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let declined = serde_json::json!({
        "items": [{ "isbn": "9780134685991", "quantity": 1 }],
        "payment": { "token": "tok_chargeDeclined" }
    });
    let declined = client
        .post(&format!("{base}/api/orders"))
        .header("X-API-Key", CUSTOMER_KEY)
        .json(&declined)
        .send();
    assert_eq!(declined.expect("declined").status(), 402);
    let card = serde_json::json!({
        "items": [{ "isbn": "9780134685991", "quantity": 1 }],
        "payment": { "token": "tok_visa", "card_number": "4111111111111111" }
    });
    let card = client
        .post(&format!("{base}/api/orders"))
        .header("X-API-Key", CUSTOMER_KEY)
        .json(&card)
        .send();
    assert_eq!(card.expect("card").status(), 422);
    let delivery = serde_json::json!({
        "order_id": order_id,
        "address": { "recipient": RECIPIENT, "line1": STREET, "city": "London", "postal_code": POSTAL_CODE, "country": "GB" }
    });
    let scheduled = client
        .post(&format!("{base}/api/delivery"))
        .header("X-API-Key", CUSTOMER_KEY)
        .json(&delivery)
        .send();
    assert_eq!(scheduled.expect("delivery").status(), 201);
    let guessed = client
        .get(&format!("{base}/api/books"))
        .header("X-API-Key", GUESSED_KEY)
        .send();
    assert_eq!(guessed.expect("guess").status(), 401);
    let admin = client
        .get(&format!("{base}/api/orders/{order_id}"))
        .header("X-API-Key", ADMIN_KEY)
        .send();
    assert_eq!(admin.expect("admin read").status(), 200);

    let logs = server.stop();
    for secret in [
        CUSTOMER_KEY,
        ADMIN_KEY,
        GUESSED_KEY,
        "tok_mastercard",
        "tok_chargeDeclined",
        "tok_visa",
        "4111111111111111",
        RECIPIENT,
        STREET,
        POSTAL_CODE,
    ] {
        assert!(
            !logs.contains(secret),
            "the logs contain {secret:?}:\n{logs}"
        );
    }

    let request_lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|_| panic!("not JSON: {line}"))
        })
        .filter(|line| line["message"] == "request")
        .collect();
    let traced = request_lines
        .iter()
        .find(|line| line["request_id"] == "trace-me-1")
        .expect("the request line carries the client's request id");
    assert_eq!(traced["http.method"], "POST");
    assert_eq!(traced["http.route"], "/api/orders");
    assert_eq!(traced["http.status"], 201);
    assert!(traced["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert_eq!(
        request_lines
            .iter()
            .filter(|line| line["http.route"] == "/api/orders")
            .count(),
        3
    );
}
