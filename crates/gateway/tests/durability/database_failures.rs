//! A database that cannot be reached at start-up stops the server with one line that says
//! why; a PostgreSQL database that drops its connections or disappears while the server
//! runs is answered 503, never with a crash, and the server recovers when it can.
//!
//! A SQLite file that goes away while the server runs is not tested: the process keeps the
//! file open, so removing it changes nothing the server can notice.

use std::time::Duration;

use crate::harness::{
    Api, Backend, PROCESS_LIMIT, RUST_BOOK, order_request, poll_until, start_server,
    stop_gracefully,
};
use crate::helpers::run_until_exit;

/// The connect timeout the start-up failures are given.
const CONNECT_TIMEOUT_SECONDS: u64 = 2;

/// One database URL the server cannot use, and what its error line must say.
struct Unusable {
    what: &'static str,
    url: String,
    says: &'static [&'static str],
    never_says: &'static [&'static str],
}

#[test]
fn an_unreachable_or_unusable_database_stops_start_up_with_one_line_naming_it() {
    let cases = [
        Unusable {
            what: "a PostgreSQL port nobody listens on",
            url: "postgres://postgres:hunter2@127.0.0.1:1/nothing".to_owned(),
            says: &[
                "cannot open the database postgres://postgres:***@127.0.0.1:1/nothing",
                "cannot connect",
            ],
            never_says: &["hunter2"],
        },
        Unusable {
            what: "a SQLite file in a directory that does not exist",
            url: format!(
                "sqlite://{}/bookstore.db",
                std::env::temp_dir()
                    .join(format!("missing-{}", uuid::Uuid::new_v4().simple()))
                    .display()
            ),
            says: &["cannot open the database sqlite://", "unable to open"],
            never_says: &[],
        },
        Unusable {
            what: "a scheme the server does not support",
            url: "mysql://root@127.0.0.1:3306/shop".to_owned(),
            says: &["unsupported database url"],
            never_says: &[],
        },
    ];
    // The connect timeout, plus room for a busy machine.
    let limit = Duration::from_secs(CONNECT_TIMEOUT_SECONDS + 10);
    for case in cases {
        let (status, stderr) = run_until_exit(
            &[
                "--database-url",
                &case.url,
                "--database-connect-timeout-seconds",
                &CONNECT_TIMEOUT_SECONDS.to_string(),
            ],
            &[],
            limit,
        )
        .unwrap_or_else(|| panic!("{}: bookstore still runs after {limit:?}", case.what));
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect();

        assert!(!status.success(), "{}: exits non-zero", case.what);
        assert_eq!(
            status.code(),
            Some(1),
            "{}: exits 1, not by a signal",
            case.what
        );
        assert_eq!(
            lines.len(),
            1,
            "{}: one line on stderr:\n{stderr}",
            case.what
        );
        let line = lines[0];
        assert!(line.starts_with("bookstore: "), "{}: {line}", case.what);
        for expected in case.says {
            assert!(
                line.contains(expected),
                "{}: {line:?} says {expected:?}",
                case.what
            );
        }
        for secret in case
            .never_says
            .iter()
            .chain(&["panicked", "backtrace", "RUST_BACKTRACE"])
        {
            assert!(
                !line.to_lowercase().contains(&secret.to_lowercase()),
                "{}: {line:?} never says {secret:?}",
                case.what
            );
        }
    }
}

#[ignore = "needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_postgres_connections_are_killed_reconnects_without_losing_an_order() {
    let database = Backend::Postgres.fresh_database().await;
    let server = start_server(database.server_args(&[])).await;
    let api = Api::new(&server.base_url);
    let before = api
        .place_order(&order_request(&[(RUST_BOOK, 1)]), None)
        .await
        .expect("the first order is answered");
    assert_eq!(before.status, 201, "{}", before.body);

    let terminated = database.terminate_connections().await;
    assert!(terminated > 0, "the server had connections open");

    // A request may meet a dead connection (503) before the pool replaces it; the next
    // ones must succeed.
    let after = poll_until(
        "an order is placed after the connections were killed",
        PROCESS_LIMIT,
        || async {
            let reply = api
                .place_order(&order_request(&[(RUST_BOOK, 1)]), None)
                .await
                .expect("the server answers");
            match reply.status {
                201 => Some(reply),
                503 => None,
                other => panic!("answered {other}: {}", reply.body),
            }
        },
    )
    .await;
    let first = api.get(&format!("/api/orders/{}", before.id())).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["status"], "confirmed");
    assert_eq!(api.all_orders().await.len(), 2, "{}", after.body);
    api.wait_until_ready().await;
    stop_gracefully(server).await;
}

#[ignore = "needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_postgres_database_is_dropped_answers_503_stays_live_and_stops_cleanly() {
    let database = Backend::Postgres.fresh_database().await;
    let mut server = start_server(database.server_args(&[])).await;
    let api = Api::new(&server.base_url);
    api.wait_until_ready().await;

    database.drop_now().await;

    poll_until("/health/ready answers 503", PROCESS_LIMIT, || async {
        let reply = api
            .send(reqwest::Method::GET, "/health/ready", None, None, None)
            .await
            .expect("the server answers");
        (reply.status == 503).then_some(())
    })
    .await;
    let database_name = database.url.rsplit('/').next().expect("a database name");
    for reply in [
        api.get("/api/books").await,
        api.place_order(&order_request(&[(RUST_BOOK, 1)]), None)
            .await
            .expect("the server answers"),
    ] {
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert_eq!(reply.json()["type"], "/problems/service-unavailable");
        for internal in ["does not exist", "sqlx", "postgres", database_name] {
            assert!(
                !reply.body.contains(internal),
                "leaks {internal:?}: {}",
                reply.body
            );
        }
    }
    let live = api
        .send(reqwest::Method::GET, "/health/live", None, None, None)
        .await
        .expect("the server answers");
    assert_eq!(live.status, 200, "the process is alive, only not ready");
    assert!(
        server.child.try_wait().expect("poll the process").is_none(),
        "the server keeps running"
    );
    stop_gracefully(server).await;
}
