//! Rate limits shared through Redis (`--rate-limit-redis-url`): one budget per key for every
//! instance, and failing open when Redis is unreachable or hangs.
//!
//! The tests marked `#[ignore]` need a Redis server (`BOOKSTORE_TEST_REDIS_URL`, else
//! 127.0.0.1:6379); `cargo xtask test` runs them when one answers and says so when none does.
//! The others need none: they point the server at a port where no Redis answers.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::helpers::{Server, blocking_client, free_port};

/// The value of the sample line named `series` in `/metrics`.
fn metric(server: &Server, series: &str) -> f64 {
    let text = blocking_client()
        .get(&format!("{}/metrics", server.base_url))
        .send()
        .expect("scrape")
        .body;
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// GET /api/books as `api_key`; the status.
fn list_books(server: &Server, api_key: &str) -> u16 {
    blocking_client()
        .get(&format!("{}/api/books?limit=1", server.base_url))
        .header("X-API-Key", api_key)
        .send()
        .expect("the server answers")
        .status()
        .as_u16()
}

#[test]
fn without_a_redis_url_the_server_keeps_its_own_budget_per_key() {
    let server = Server::start(
        &["--rate-limit-per-second", "1", "--rate-limit-burst", "2"],
        &[],
    );
    let statuses: Vec<u16> = (0..3).map(|_| list_books(&server, "secret123")).collect();
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(
        metric(&server, "bookstore_rate_limit_local_fallbacks_total"),
        0.0,
        "no fallback: there is nothing to fall back from"
    );
    server.stop();
}

#[test]
fn with_redis_unreachable_requests_are_limited_locally_never_refused_and_the_fallback_is_counted() {
    let closed_port = free_port();
    let url = format!("redis://:s3cret-redis-password@127.0.0.1:{closed_port}/0");
    let server = Server::start(
        &[
            "--rate-limit-redis-url",
            &url,
            "--rate-limit-per-second",
            "1",
            "--rate-limit-burst",
            "5",
        ],
        &[],
    );
    let statuses: Vec<u16> = (0..8).map(|_| list_books(&server, "secret123")).collect();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 429, 429, 429],
        "served within the local burst, then limited locally: never a 5xx"
    );
    assert_eq!(
        metric(&server, "bookstore_rate_limit_local_fallbacks_total"),
        8.0
    );
    assert!(metric(&server, "bookstore_rate_limit_redis_errors_total") >= 1.0);

    let logs = server.stop();
    let warnings = logs
        .lines()
        .filter(|line| line.contains("Redis is unavailable"))
        .count();
    assert_eq!(warnings, 1, "one warning, not one per request:\n{logs}");
    assert!(
        !logs.contains("s3cret-redis-password"),
        "the Redis password never reaches the log:\n{logs}"
    );
    assert!(logs.contains(&format!("127.0.0.1:{closed_port}")), "{logs}");
}

#[test]
fn a_redis_that_accepts_connections_but_never_answers_delays_requests_by_no_more_than_the_timeout()
{
    // A "Redis" that accepts connections and reads forever without answering.
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let port = listener.local_addr().expect("address").port();
    let stop = Arc::new(AtomicBool::new(false));
    listener.set_nonblocking(true).expect("non-blocking");
    let stop_accepting = Arc::clone(&stop);
    let hung = thread::spawn(move || {
        let mut held = Vec::new();
        while !stop_accepting.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
            for stream in &mut held {
                let _ = stream.set_nonblocking(true);
                let mut sink = [0u8; 1024];
                let _ = stream.read(&mut sink);
            }
        }
    });

    let server = Server::start(
        &[
            "--rate-limit-redis-url",
            &format!("redis://127.0.0.1:{port}"),
            "--rate-limit-redis-timeout-ms",
            "200",
        ],
        &[],
    );
    let started = Instant::now();
    for request in 0..50 {
        let sent = Instant::now();
        assert_eq!(list_books(&server, "secret123"), 200, "request {request}");
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "request {request} took {:?}",
            sent.elapsed()
        );
    }
    // At most one request per second waits for the timeout; the others go straight to the
    // local limiter. Fifty waits would take ten seconds.
    let total = started.elapsed();
    assert!(total < Duration::from_secs(5), "50 requests took {total:?}");
    assert_eq!(
        metric(&server, "bookstore_rate_limit_local_fallbacks_total"),
        50.0
    );
    server.stop();
    stop.store(true, Ordering::Relaxed);
    hung.join().expect("the hung Redis stops");
}

/// The Redis to test against.
fn redis_url() -> String {
    std::env::var("BOOKSTORE_TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// Requests per second per key, and the burst, in the two-instance test.
const SHARED_RATE: u32 = 20;
const SHARED_BURST: u32 = 10;

/// How long clients send requests to both instances.
const SENDING: Duration = Duration::from_secs(2);

/// Clients per instance, each sending one request at a time.
const CLIENTS_PER_INSTANCE: usize = 3;

/// The most requests one client sends.
const MAX_REQUESTS_PER_CLIENT: usize = 5_000;

#[test]
#[ignore = "needs Redis at 127.0.0.1:6379 or BOOKSTORE_TEST_REDIS_URL; cargo xtask test runs it when one answers"]
fn two_instances_sharing_redis_let_one_key_through_at_the_configured_rate_and_burst_only() {
    // A key of this run alone, so that no other budget in the same Redis is shared.
    let api_key = format!("shared-limit-{}", uuid::Uuid::new_v4().simple());
    let keys = format!("{api_key}:customer,admin-{api_key}:admin");
    let url = redis_url();
    let args = [
        "--rate-limit-redis-url",
        url.as_str(),
        "--rate-limit-per-second",
        &SHARED_RATE.to_string(),
        "--rate-limit-burst",
        &SHARED_BURST.to_string(),
        // Generous: a slow answer must not send a request to the local limiter here.
        "--rate-limit-redis-timeout-ms",
        "5000",
    ]
    .map(str::to_owned);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let environment = [("BOOKSTORE_API_KEYS", keys.as_str())];
    let servers = [
        Arc::new(Server::start(&args, &environment)),
        Arc::new(Server::start(&args, &environment)),
    ];

    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS_PER_INSTANCE * 2)
        .map(|client| {
            let server = Arc::clone(&servers[client % 2]);
            let api_key = api_key.clone();
            thread::spawn(move || {
                let mut statuses = Vec::new();
                while started.elapsed() < SENDING && statuses.len() < MAX_REQUESTS_PER_CLIENT {
                    statuses.push(list_books(&server, &api_key));
                }
                statuses
            })
        })
        .collect();
    let per_client: Vec<Vec<u16>> = clients
        .into_iter()
        .map(|client| client.join().expect("a client does not panic"))
        .collect();
    let elapsed = started.elapsed();

    let all: Vec<u16> = per_client.iter().flatten().copied().collect();
    let admitted = all.iter().filter(|status| **status == 200).count();
    let refused = all.iter().filter(|status| **status == 429).count();
    assert_eq!(admitted + refused, all.len(), "only 200 and 429");
    println!(
        "{admitted} admitted and {refused} refused in {:.2} s by two instances",
        elapsed.as_secs_f64()
    );
    let most = f64::from(SHARED_BURST) + f64::from(SHARED_RATE) * elapsed.as_secs_f64() + 1.0;
    assert!(
        admitted as f64 <= most,
        "{admitted} requests admitted in {elapsed:?} by both instances together; the shared \
         budget allows at most {most:.0} ({SHARED_BURST} at once, {SHARED_RATE} per second)"
    );
    assert!(
        admitted >= SHARED_BURST as usize,
        "at least the burst is admitted: {admitted}"
    );
    for (index, instance) in [0, 1].into_iter().enumerate() {
        let refused_here = per_client
            .iter()
            .skip(instance)
            .step_by(2)
            .flatten()
            .filter(|status| **status == 429)
            .count();
        assert!(refused_here > 0, "instance {index} refused some requests");
    }
    for server in &servers {
        assert_eq!(
            metric(server, "bookstore_rate_limit_local_fallbacks_total"),
            0.0,
            "every request was checked in Redis"
        );
    }
}
