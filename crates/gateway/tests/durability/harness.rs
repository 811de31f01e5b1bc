//! What the durability tests share: a fresh database per test on each backend, the
//! `bookstore` process started, stopped and killed from async code, a small HTTP client
//! for the API, and polling with a deadline.

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bookstore_storage::{ConnectOptions, Database, connect};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use crate::helpers::Server;
use crate::postgres_support::{
    create_database, drop_database_blocking, needs_a_server, server_url, with_database,
};

/// The demo customer key (the tests run the server without configured keys).
pub(crate) const CUSTOMER_KEY: &str = "secret123";

/// The demo admin key.
pub(crate) const ADMIN_KEY: &str = "admin123";

/// Effective Java, in the demo catalogue.
pub(crate) const EFFECTIVE_JAVA: &str = "9780134685991";

/// The Rust Programming Language, in the demo catalogue.
pub(crate) const RUST_BOOK: &str = "9781593278281";

/// How long the server may take to start, stop, or become ready again.
pub(crate) const PROCESS_LIMIT: Duration = Duration::from_secs(30);

/// Declares, for each check named, one test per SQL backend in the module where it is
/// invoked: `sqlite::<check>` and `postgres::<check>`. A check is an `async fn(Backend)`;
/// attributes written before its name go on both tests. The PostgreSQL tests are ignored
/// with the reason every test that needs a PostgreSQL server carries (see `main.rs`).
macro_rules! per_backend {
    ($($(#[$attribute:meta])* $check:ident),* $(,)?) => {
        /// The checks of this module against a SQLite file.
        mod sqlite {
            $(
                $(#[$attribute])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check($crate::harness::Backend::Sqlite).await;
                }
            )*
        }

        /// The checks of this module against a PostgreSQL database.
        mod postgres {
            $(
                $(#[$attribute])*
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

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A SQLite file in the temporary directory.
    Sqlite,
    /// A database created for the test on the server `BOOKSTORE_TEST_POSTGRES_URL` names.
    Postgres,
}

/// A database made for one test, removed when this is dropped (even after a failure).
pub(crate) struct TestDatabase {
    /// The URL to give `--database-url` and [`connect`].
    pub(crate) url: String,
    location: Location,
}

enum Location {
    SqliteFile(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Backend {
    /// A fresh, empty database on this backend. On PostgreSQL, a new database on the server
    /// [`server_url`] names; a test that gets here without a server fails (the PostgreSQL
    /// tests are `#[ignore]`d, so they run only when asked to).
    pub(crate) async fn fresh_database(self) -> TestDatabase {
        match self {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!(
                    "bookstore-durability-{}.sqlite",
                    Uuid::new_v4().simple()
                ));
                TestDatabase {
                    url: format!("sqlite://{}", path.display()),
                    location: Location::SqliteFile(path),
                }
            }
            Backend::Postgres => {
                let admin_url = server_url();
                let name = format!("bookstore_durability_{}", Uuid::new_v4().simple());
                if let Err(error) = create_database(&admin_url, &name).await {
                    panic!("{}", needs_a_server(&error));
                }
                TestDatabase {
                    url: with_database(&admin_url, &name),
                    location: Location::Postgres { admin_url, name },
                }
            }
        }
    }
}

impl TestDatabase {
    /// The flags that start `bookstore` on this database, followed by `extra`. Rate limits
    /// are off (the tests send bursts) and pools are small (many processes share two cores
    /// and one PostgreSQL server).
    pub(crate) fn server_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--database-url",
            &self.url,
            "--database-max-connections",
            "4",
            "--rate-limit-per-second",
            "0",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    }

    /// A connection pool of the test's own on the database, to inspect what the server
    /// stored (the server has migrated it).
    pub(crate) async fn inspect(&self) -> Database {
        connect(
            &self.url,
            &ConnectOptions {
                max_connections: 2,
                connect_timeout: PROCESS_LIMIT,
            },
        )
        .await
        .expect("the test database opens for inspection")
    }

    /// PostgreSQL only: ends every connection to the database (as a database restart or a
    /// failover would), and returns how many there were.
    pub(crate) async fn terminate_connections(&self) -> i64 {
        let Location::Postgres { admin_url, name } = &self.location else {
            panic!("only a PostgreSQL database has connections to terminate");
        };
        let mut admin = PgConnection::connect(admin_url)
            .await
            .expect("the PostgreSQL server answers");
        let terminated: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()) AS terminated",
        )
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .expect("connections can be terminated");
        admin.close().await.ok();
        terminated
    }

    /// PostgreSQL only: drops the database now, ending the connections still open to it.
    pub(crate) async fn drop_now(&self) {
        let Location::Postgres { admin_url, name } = &self.location else {
            panic!("only a PostgreSQL database can be dropped");
        };
        let mut admin = PgConnection::connect(admin_url)
            .await
            .expect("the PostgreSQL server answers");
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {name} WITH (FORCE)"
            )))
            .await
            .expect("the test database can be dropped");
        admin.close().await.ok();
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.location {
            Location::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm", ".lock"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Location::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop cannot await and may run inside a runtime: use a thread with a
                // runtime of its own.
                let dropped =
                    std::thread::spawn(move || drop_database_blocking(&admin_url, &name)).join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop a test database: {dropped:?}");
                }
            }
        }
    }
}

/// Runs blocking `work` off the async workers, passing its panic on as is.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// Starts `bookstore` with `args` and waits until it is live.
pub(crate) async fn start_server(args: Vec<String>) -> Server {
    blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start(&args, &[])
    })
    .await
}

/// Sends SIGTERM, checks that the process exits 0, and returns its standard error.
pub(crate) async fn stop_gracefully(mut server: Server) -> String {
    blocking(move || {
        server.terminate();
        let clean = server.wait_for_exit(PROCESS_LIMIT);
        let logs = server.stderr_text();
        assert!(clean, "SIGTERM makes bookstore exit 0; its log:\n{logs}");
        logs
    })
    .await
}

/// Sends SIGKILL (`kill -9`: no shutdown code runs) and waits for the process to be gone.
pub(crate) async fn kill_hard(mut server: Server) {
    blocking(move || {
        let status = Command::new("kill")
            .args(["-KILL", &server.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL failed");
        server.child.wait().expect("wait for the killed process");
    })
    .await;
}

/// Calls `attempt` every 20 ms until it returns `Some`, for at most `limit`; panics naming
/// `what` when time runs out.
pub(crate) async fn poll_until<T, F, Fut>(what: &str, limit: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The body of an order for `lines` (ISBN, copies), paid with `tok_visa`.
pub(crate) fn order_request(lines: &[(&str, u32)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(isbn, quantity)| json!({"isbn": isbn, "quantity": quantity}))
        .collect();
    json!({"items": items, "payment": {"token": "tok_visa"}})
}

/// A response read in full.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The `Idempotent-Replayed` header, if present.
    pub(crate) replayed: Option<String>,
    /// The body as sent.
    pub(crate) body: String,
}

impl Reply {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }

    /// The `id` field of the body.
    pub(crate) fn id(&self) -> String {
        self.json()["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_owned()
    }
}

/// A client of one running server.
#[derive(Clone)]
pub(crate) struct Api {
    base_url: String,
    client: reqwest::Client,
}

impl Api {
    /// A client of the server at `base_url`.
    pub(crate) fn new(base_url: &str) -> Api {
        Api {
            base_url: base_url.to_owned(),
            client: reqwest::Client::builder()
                .timeout(PROCESS_LIMIT)
                .build()
                .expect("an HTTP client"),
        }
    }

    /// Sends one request; an error means no complete response arrived.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        api_key: Option<&str>,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(api_key) = api_key {
            request = request.header("X-API-Key", api_key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await?;
        Ok(Reply {
            status,
            replayed,
            body,
        })
    }

    /// GET `path` as the customer; the server must answer.
    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, Some(CUSTOMER_KEY), None, None)
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"))
    }

    /// POST `body` to `path` as the customer; the server must answer.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            path,
            Some(CUSTOMER_KEY),
            Some(body),
            None,
        )
        .await
        .unwrap_or_else(|error| panic!("POST {path}: {error}"))
    }

    /// Places an order as the customer.
    pub(crate) async fn place_order(
        &self,
        request: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Reply, reqwest::Error> {
        self.send(
            reqwest::Method::POST,
            "/api/orders",
            Some(CUSTOMER_KEY),
            Some(request),
            idempotency_key,
        )
        .await
    }

    /// Adds a book as the admin.
    pub(crate) async fn add_book(&self, isbn: &str, title: &str, stock: u32) {
        let book = json!({
            "isbn": isbn, "title": title, "author": "Test Author",
            "price_cents": 2_500, "stock": stock,
        });
        let reply = self
            .send(
                reqwest::Method::POST,
                "/api/books",
                Some(ADMIN_KEY),
                Some(&book),
                None,
            )
            .await
            .expect("POST /api/books");
        assert_eq!(reply.status, 201, "adding {isbn}: {}", reply.body);
    }

    /// Sets a book's stock as the admin.
    pub(crate) async fn set_stock(&self, isbn: &str, stock: u32) {
        let reply = self
            .send(
                reqwest::Method::PATCH,
                &format!("/api/books/{isbn}"),
                Some(ADMIN_KEY),
                Some(&json!({"stock": stock})),
                None,
            )
            .await
            .expect("PATCH /api/books/{isbn}");
        assert_eq!(
            reply.status, 200,
            "setting the stock of {isbn}: {}",
            reply.body
        );
    }

    /// A book's stock.
    pub(crate) async fn stock_of(&self, isbn: &str) -> u64 {
        let reply = self.get(&format!("/api/books/{isbn}")).await;
        assert_eq!(reply.status, 200, "reading {isbn}: {}", reply.body);
        reply.json()["stock"]
            .as_u64()
            .unwrap_or_else(|| panic!("no stock in {}", reply.body))
    }

    /// Every item of a cursor-paged listing at `path` (100 per page, at most 100 pages).
    async fn all_pages(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let page_path = match &cursor {
                Some(cursor) => format!("{path}?limit=100&cursor={cursor}"),
                None => format!("{path}?limit=100"),
            };
            let reply = self.get(&page_path).await;
            assert_eq!(reply.status, 200, "GET {page_path}: {}", reply.body);
            let page = reply.json();
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
        panic!("{path} has more than 100 pages");
    }

    /// Every book in the catalogue, in ISBN order.
    pub(crate) async fn all_books(&self) -> Vec<Value> {
        self.all_pages("/api/books").await
    }

    /// Every order of the demo customer, newest first.
    pub(crate) async fn all_orders(&self) -> Vec<Value> {
        self.all_pages("/api/orders").await
    }

    /// Polls `/health/ready` until it answers 200.
    pub(crate) async fn wait_until_ready(&self) {
        poll_until("the server becomes ready", PROCESS_LIMIT, || async {
            let reply = self
                .send(reqwest::Method::GET, "/health/ready", None, None, None)
                .await
                .ok()?;
            (reply.status == 200).then_some(())
        })
        .await;
    }
}
