//! The webhook tests' harness: the real application served on a free port of 127.0.0.1
//! with its dispatcher (as `run_until_stopped` runs them) on a fresh database of each
//! backend, a receiver on another port that answers as a test scripts it and records what
//! it got (`tests/support/webhook_receiver.rs`), events written straight into the log, and
//! polling with a deadline.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::HttpServer;
use actix_web::dev::ServerHandle;
use actix_web::web;
use bookstore_gateway::app::{AppState, build_app};
use bookstore_gateway::config::Cli;
use bookstore_gateway::http::auth::ApiKeys;
use bookstore_storage::events::{EventType, InMemoryEventLog, NewEvent, Outbox};
use bookstore_storage::{Database, Stores};
use clap::Parser;
use serde_json::Value;
use uuid::Uuid;

use crate::postgres_support::{
    create_database, drop_database_blocking, needs_a_server, server_url, with_database,
};
pub(crate) use crate::webhook_receiver::{Answer, Receiver, verifies};

/// The admin key of the test app.
pub(crate) const ADMIN: &str = "admin-key-carol";
/// A customer key of the test app.
pub(crate) const CUSTOMER: &str = "customer-key-alice";

/// How long anything a test waits for may take.
pub(crate) use crate::webhook_receiver::LIMIT;

/// Which store the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// Declares one test per backend for each check named (`memory::`, `sqlite::`,
/// `postgres::`); the PostgreSQL ones are ignored with the reason every test needing a
/// server carries.
macro_rules! per_backend {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check($crate::harness::Backend::Memory).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check($crate::harness::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[ignore = "needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432"]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check($crate::harness::Backend::Postgres).await;
                }
            )*
        }
    };
}
pub(crate) use per_backend;

/// Where the test writes events.
#[derive(Clone)]
enum Recorder {
    /// The test's log, or none when the stores keep theirs.
    Memory(Option<Arc<InMemoryEventLog>>),
    Sql(Database),
}

/// Removes a test database when the app is dropped.
enum Cleanup {
    None,
    SqliteFile(std::path::PathBuf),
    Postgres { server: String, name: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::None => {}
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm", ".lock"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::Postgres { server, name } => {
                let (server, name) = (server.clone(), name.clone());
                let dropped =
                    std::thread::spawn(move || drop_database_blocking(&server, &name)).join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop the test database: {dropped:?}");
                }
            }
        }
    }
}

/// The application served with its dispatcher.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
    recorder: Recorder,
    handle: ServerHandle,
    stop_dispatcher: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    client: reqwest::Client,
    _cleanup: Cleanup,
}

/// The flags every test app gets: private addresses allowed (the receivers are on
/// 127.0.0.1), the schedule scaled by 0.001 (5 s is 5 ms), a fast tick, a short timeout.
pub(crate) const TEST_FLAGS: &[&str] = &[
    "--webhook-allow-private-addresses",
    "--webhook-retry-schedule-scale",
    "0.001",
    "--webhook-tick-ms",
    "20",
    "--webhook-timeout-ms",
    "1000",
];

impl TestApp {
    /// Serves a fresh app on `backend` with `flags` (see [`TEST_FLAGS`]). On memory the
    /// test's own log replaces the one the stores record into, so that
    /// [`record_event`](Self::record_event) works there too.
    pub(crate) async fn start(backend: Backend, flags: &[&str]) -> TestApp {
        Self::start_with(backend, flags, true).await
    }

    /// [`start`](Self::start), the in-memory stores keeping their own log: only the events
    /// the API's calls record are in it ([`record_event`](Self::record_event) panics).
    pub(crate) async fn start_with_the_stores_log(backend: Backend, flags: &[&str]) -> TestApp {
        Self::start_with(backend, flags, false).await
    }

    async fn start_with(backend: Backend, flags: &[&str], own_memory_log: bool) -> TestApp {
        let mut arguments = vec!["bookstore", "--no-seed"];
        arguments.extend_from_slice(flags);
        let settings = Cli::try_parse_from(arguments).expect("the test flags are valid");
        let keys = ApiKeys::parse(&format!("{CUSTOMER}:customer,{ADMIN}:admin")).unwrap();
        let (state, recorder, cleanup) = match backend {
            Backend::Memory if own_memory_log => {
                let log = Arc::new(InMemoryEventLog::new());
                let mut state = AppState::in_memory(keys);
                state.events = log.clone();
                (state, Recorder::Memory(Some(log)), Cleanup::None)
            }
            Backend::Memory => (
                AppState::in_memory(keys),
                Recorder::Memory(None),
                Cleanup::None,
            ),
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!(
                    "bookstore-webhooks-{}.sqlite",
                    Uuid::new_v4().simple()
                ));
                let cleanup = Cleanup::SqliteFile(path.clone());
                let database = open(&format!("sqlite://{}", path.display())).await;
                let stores = database.stores(&api_outbox());
                (
                    AppState::with_stores(stores, keys),
                    Recorder::Sql(database),
                    cleanup,
                )
            }
            Backend::Postgres => {
                let server = server_url();
                let name = format!("bookstore_webhooks_{}", Uuid::new_v4().simple());
                create_database(&server, &name)
                    .await
                    .unwrap_or_else(|error| panic!("{}", needs_a_server(&error)));
                let cleanup = Cleanup::Postgres {
                    server: server.clone(),
                    name: name.clone(),
                };
                let database = open(&with_database(&server, &name)).await;
                let stores: Stores = database.stores(&api_outbox());
                (
                    AppState::with_stores(stores, keys),
                    Recorder::Sql(database),
                    cleanup,
                )
            }
        };
        let state = AppState {
            webhook_settings: settings.webhook_settings(),
            ..state
        };
        let (started, on_start) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let state = web::Data::new(state);
                let (stop, dispatcher) = bookstore_gateway::webhooks::spawn(
                    Arc::clone(&state.events),
                    Arc::clone(&state.webhooks),
                    state.webhook_settings.clone(),
                )
                .expect("the webhook client builds");
                let app_state = state.clone();
                let server = HttpServer::new(move || build_app(app_state.clone()))
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .bind(("127.0.0.1", 0))
                    .expect("bind a free port on localhost");
                let address = server.addrs()[0];
                let server = server.run();
                started
                    .send((address, server.handle(), stop))
                    .expect("the test waits for the server");
                server.await.expect("the server runs");
                let _ = dispatcher.await;
            });
        });
        let (address, handle, stop_dispatcher) = on_start.recv().expect("the server starts");
        TestApp {
            base_url: format!("http://{address}"),
            recorder,
            handle,
            stop_dispatcher,
            thread: Some(thread),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _cleanup: cleanup,
        }
    }

    /// Records one event of `event_type` about `resource_id` with `data`, straight into
    /// the log; answers its id.
    pub(crate) async fn record_event(
        &self,
        event_type: EventType,
        resource_id: &str,
        data: Value,
    ) -> Uuid {
        let event = NewEvent {
            id: Uuid::now_v7(),
            event_type,
            resource_id: resource_id.to_owned(),
            created_at: chrono::Utc::now(),
            data: data.to_string(),
        };
        let id = event.id;
        match &self.recorder {
            Recorder::Memory(Some(log)) => {
                log.record([event]);
            }
            Recorder::Memory(None) => panic!("this app's in-memory stores keep their own log"),
            Recorder::Sql(database) => database.record_events(vec![event]).await.unwrap(),
        }
        id
    }

    /// Sends `method path` with the admin key and `body`; answers the status and JSON.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_as(ADMIN, method, path, body).await
    }

    /// [`call`](Self::call) with another key.
    pub(crate) async fn call_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .header("X-API-Key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the app answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Registers an endpoint at `url` for `types`; answers its id and secret.
    pub(crate) async fn create_endpoint(&self, url: &str, types: &[&str]) -> (String, String) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/webhook-endpoints",
                Some(serde_json::json!({ "url": url, "event_types": types })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["endpoint"]["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The endpoint's delivery log, newest first (every page).
    pub(crate) async fn attempts(&self, endpoint: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut path = format!("/api/webhook-endpoints/{endpoint}/deliveries?limit=100");
        loop {
            let (status, page) = self.call(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "{page}");
            all.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    path = format!(
                        "/api/webhook-endpoints/{endpoint}/deliveries?limit=100&cursor={cursor}"
                    );
                }
                None => return all,
            }
        }
    }

    /// Polls the delivery log until `done` holds for it.
    pub(crate) async fn attempts_until(
        &self,
        endpoint: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let attempts = self.attempts(endpoint).await;
            if done(&attempts) {
                return attempts;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {attempts:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.stop_dispatcher.send(true);
        let handle = self.handle.clone();
        // Stopping needs a runtime; the server's own thread then ends.
        let stopper = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(false));
        });
        let _ = stopper.join();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The outbox the server uses: events carry the resources as the API returns them.
fn api_outbox() -> Outbox {
    Outbox::new(Arc::new(bookstore_gateway::wire::event_data::WireRenderer))
}

async fn open(url: &str) -> Database {
    let database = bookstore_storage::connect(
        url,
        &bookstore_storage::ConnectOptions {
            max_connections: 4,
            connect_timeout: Duration::from_secs(30),
        },
    )
    .await
    .expect("the test database opens");
    bookstore_storage::migrate(&database)
        .await
        .expect("the migrations apply");
    database
}
