//! Graceful shutdown: SIGTERM stops accepting, lets in-flight requests finish, exits 0.

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

#[test]
fn sigterm_during_a_slow_request_lets_it_complete_and_exits_zero() {
    let mut server = Server::start(&[], &[]);
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let body =
        r#"{"items":[{"isbn":"9780134685991","quantity":1}],"payment":{"token":"tok_visa"}}"#;
    let (first_half, second_half) = body.split_at(body.len() / 2);

    let mut stream = TcpStream::connect(&address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");

    // Then a client that sends its order slowly: the head and half the body now, the rest
    // after the server has been told to stop.
    write!(
        stream,
        "POST /api/orders HTTP/1.1\r\nHost: {address}\r\nX-API-Key: secret123\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first_half}",
        body.len()
    )
    .expect("send the first half");
    stream.flush().expect("flush");

    // Wait until the server is handling the order (it waits for the rest of the body), so
    // that the signal arrives while the request is in flight.
    wait_until_in_flight(&server, 2);
    server.terminate();
    // The signal is delivered asynchronously; this pause makes it likely that the server is
    // already draining when the rest of the body arrives (the test also passes if it is
    // not, so it cannot turn flaky).
    std::thread::sleep(Duration::from_millis(300));
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
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the in-flight order completes: {response}"
    );
    assert!(
        server.wait_for_exit(Duration::from_secs(30)),
        "the process exits 0"
    );
    let logs = server.stderr_text();
    assert!(logs.contains("bookstore stopped"), "{logs}");
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
