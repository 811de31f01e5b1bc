//! Graceful shutdown: SIGTERM stops accepting, lets in-flight requests finish, exits 0; with
//! `--shutdown-drain-seconds`, readiness answers 503 for that long first while requests are
//! still served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::{Server, blocking_client};

/// Polls `/metrics` until `http_requests_in_flight` (counting the scrape itself) reaches
/// `count`.
fn wait_until_in_flight(server: &Server, count: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let wanted = format!("http_requests_in_flight {count}");
    while std::time::Instant::now() < deadline {
        let metrics = blocking_client()
            .get(&format!("{}/metrics", server.base_url))
            .send()
            .expect("scrape");
        if metrics.body.lines().any(|line| line == wanted) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the slow request never started");
}

/// What the server logs when SIGTERM has closed its listener and it waits for the requests
/// in flight (`server.rs`).
const STOPPING: &str = "stopping: the listener closes; requests in flight may finish";
/// What the server logs last, once every request has finished.
const STOPPED: &str = "bookstore stopped";

#[test]
fn sigterm_during_a_slow_request_lets_it_complete_and_exits_zero_only_after() {
    let mut server = Server::start(&[], &[]);
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let body =
        r#"{"items":[{"isbn":"9780134685991","quantity":2}],"payment":{"token":"tok_visa"}}"#;
    let (first_half, second_half) = body.split_at(body.len() / 2);

    let mut stream = TcpStream::connect(&address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");

    // A client that sends its order slowly: the head and half the body now, the rest only
    // once the server is shutting down. Until then the request cannot finish.
    write!(
        stream,
        "POST /api/orders HTTP/1.1\r\nHost: {address}\r\nX-API-Key: secret123\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first_half}",
        body.len()
    )
    .expect("send the first half");
    stream.flush().expect("flush");

    // The server is handling the order (waiting for the rest of the body) when the signal
    // arrives, and it has begun to stop: it says so, and it accepts no new connection.
    wait_until_in_flight(&server, 2);
    server.terminate();
    server.wait_for_log(STOPPING, Duration::from_secs(10));
    wait_until_refused(&address);

    // It waits for the order: a server that did not drain would exit, or drop the
    // connection, while the body is held back.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        server.is_running(),
        "the server exited with a request in flight; log:\n{}",
        server.stderr_text()
    );
    assert!(
        !server.stderr_text().contains(STOPPED),
        "the server stopped with a request in flight"
    );

    if let Err(error) = stream.write_all(second_half.as_bytes()) {
        panic!(
            "could not send the rest of the body ({error}); server log:\n{}",
            server.stderr_text()
        );
    }
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let (head, order) = response.split_once("\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "the in-flight order got no whole response ({response:?}); log:\n{}",
            server.stderr_text()
        )
    });
    assert!(
        head.starts_with("HTTP/1.1 201"),
        "the in-flight order completes: {response}"
    );
    let order: serde_json::Value =
        serde_json::from_str(order).unwrap_or_else(|error| panic!("{error}: {response}"));
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["total_cents"], 2 * 4499, "{order}");
    assert_eq!(order["payment"]["status"], "captured", "{order}");
    assert!(
        head.lines()
            .any(|line| line.to_ascii_lowercase().starts_with(&format!(
                "location: /api/orders/{}",
                order["id"].as_str().unwrap_or("?")
            ))),
        "{head}"
    );

    // Only then does the process exit, cleanly.
    assert!(
        server.wait_for_exit(Duration::from_secs(30)),
        "the process exits 0"
    );
    let logs = server.stderr_text();
    let stopping = logs.find(STOPPING).expect("logged the stop");
    let stopped = logs.find(STOPPED).unwrap_or_else(|| panic!("{logs}"));
    assert!(stopping < stopped, "{logs}");
}

/// Polls until a new connection to `address` is refused (at most 10 s).
fn wait_until_refused(address: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if TcpStream::connect(address).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the server still accepts connections 10 s after SIGTERM");
}

#[test]
fn after_sigterm_new_connections_are_refused() {
    let mut server = Server::start(&[], &[]);
    let address = server.base_url.trim_start_matches("http://").to_owned();
    server.terminate();
    assert!(server.wait_for_exit(Duration::from_secs(30)));
    assert!(
        TcpStream::connect(&address).is_err(),
        "nothing listens once the server has stopped"
    );
}

/// The status of `GET /health/ready`, or `None` when nothing answers.
fn readiness(server: &Server) -> Option<u16> {
    blocking_client()
        .get(&format!("{}/health/ready", server.base_url))
        .send()
        .ok()
        .map(|response| response.status().as_u16())
}

/// Polls readiness until it is `status`, for at most `limit`.
fn wait_for_readiness(server: &Server, status: u16, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if readiness(server) == Some(status) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "/health/ready never answered {status} within {limit:?}; log:\n{}",
        server.stderr_text()
    );
}

/// Whether `bookstore probe` (the container health check) says the server is ready.
fn probe_says_ready(server: &Server) -> bool {
    let port = server.base_url.rsplit(':').next().expect("a port");
    std::process::Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .args(["probe", "--port", port])
        .env_remove("BOOKSTORE_HOST")
        .output()
        .expect("run bookstore probe")
        .status
        .success()
}

#[test]
fn during_the_drain_after_sigterm_readiness_answers_503_while_requests_are_still_served() {
    let drain = Duration::from_secs(3);
    let mut server = Server::start(
        &["--shutdown-drain-seconds", &drain.as_secs().to_string()],
        &[],
    );
    assert_eq!(readiness(&server), Some(200));
    assert!(probe_says_ready(&server), "the health check passes");
    server.terminate();
    let signalled = std::time::Instant::now();
    wait_for_readiness(&server, 503, Duration::from_secs(2));
    assert!(!probe_says_ready(&server), "the health check fails");

    let books = blocking_client()
        .get(&format!("{}/api/books", server.base_url))
        .header("X-API-Key", "secret123")
        .send()
        .expect("the listener is still open during the drain");
    assert_eq!(books.status(), 200, "requests are still served");
    let ready = blocking_client()
        .get(&format!("{}/health/ready", server.base_url))
        .send()
        .expect("still listening");
    assert!(
        ready.body.contains("shutting down"),
        "the probe says why: {}",
        ready.body
    );

    assert!(server.wait_for_exit(Duration::from_secs(30)), "exits 0");
    assert!(
        signalled.elapsed() >= drain,
        "the listener stayed open for the drain, but the process exited after {:?}",
        signalled.elapsed()
    );
    let logs = server.stderr_text();
    assert!(logs.contains("/health/ready answers 503"), "{logs}");
}

#[test]
fn a_second_sigterm_cuts_the_drain_short() {
    let mut server = Server::start(&["--shutdown-drain-seconds", "300"], &[]);
    server.terminate();
    wait_for_readiness(&server, 503, Duration::from_secs(5));
    server.terminate();
    assert!(
        server.wait_for_exit(Duration::from_secs(30)),
        "exits 0 long before the 300 s drain"
    );
}
