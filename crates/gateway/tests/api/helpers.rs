//! The test harness: `spawn_app()` builds the real application around a fresh database of
//! the store under test (in memory, SQLite or PostgreSQL: see `test_store`) and answers
//! requests in process; `RunningServer` serves the same application on a real port for the
//! tests that need real connections and real parallelism.
//!
//! Every app gets its own database, so tests never see each other's data. The store's
//! payment processor is wrapped so that tests can count capture attempts, captures and
//! refunds on every store and, when asked, hold captures until the test releases them.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::HttpServer;
use actix_web::dev::ServerHandle;
use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use actix_web::test::{self, TestRequest};
use actix_web::web::{self, Bytes};
use bookstore_delivery::{Delivery, DeliveryId};
use bookstore_gateway::app::{AppState, DeliveryPolicy, build_app};
use bookstore_gateway::config::Cli;
use bookstore_gateway::http::auth::ApiKeys;
use bookstore_gateway::server::Application;
use bookstore_inventory::{Author, Book, Title, demo_catalogue};
use bookstore_sales::{
    Capture, CustomerId, Order, OrderPage, OrderStore, PaymentError, PaymentGateway, PaymentToken,
    SalesError, TransactionId,
};
use bookstore_storage::events::{Event, EventLog};
use bookstore_types::{Currency, Isbn, Money, OrderId};
use clap::Parser;
use futures_util::future::{LocalBoxFuture, try_join_all};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

pub(crate) use crate::test_store::TestDatabase;
use crate::test_store::{TestStore, test_database_options};

/// A customer key of the default test configuration.
pub(crate) const CUSTOMER: &str = "customer-key-alice";
/// A second customer key, for "another key's order" cases.
pub(crate) const OTHER_CUSTOMER: &str = "customer-key-bob";
/// The admin key of the default test configuration.
pub(crate) const ADMIN: &str = "admin-key-carol";
/// The fulfilment key (a warehouse system) of the default test configuration.
pub(crate) const FULFILMENT: &str = "fulfilment-key-dave";

/// The key list the default test app is configured with.
pub(crate) fn test_keys() -> ApiKeys {
    ApiKeys::parse(&format!(
        "{CUSTOMER}:customer,{OTHER_CUSTOMER}:customer,{ADMIN}:admin,{FULFILMENT}:fulfilment"
    ))
    .expect("the test key list is valid")
}

/// Demo catalogue: Effective Java, 4499 cents, 12 in stock.
pub(crate) const EFFECTIVE_JAVA: &str = "9780134685991";
/// Effective Java as an ISBN-10.
pub(crate) const EFFECTIVE_JAVA_10: &str = "0134685997";
/// Demo catalogue: The Rust Programming Language, 3995 cents, 75 in stock.
pub(crate) const RUST_BOOK: &str = "9781593278281";
/// Demo catalogue: Programming Rust, 5999 cents, 3 in stock.
pub(crate) const PROGRAMMING_RUST: &str = "9781492052593";
/// Demo catalogue: Design Patterns, sold out.
pub(crate) const DESIGN_PATTERNS: &str = "9780201633610";

/// A valid ISBN-13 that starts with `prefix` (`"978"` or `"979"`) followed by `number` on
/// nine digits and the right check digit.
pub(crate) fn isbn_with(prefix: &str, number: u32) -> String {
    let first_twelve = format!("{prefix}{number:09}");
    Isbn::from_first_twelve_digits(&first_twelve)
        .unwrap_or_else(|error| panic!("{first_twelve}: {error}"))
        .to_string()
}

/// A valid ISBN-13 that is not in the demo catalogue.
pub(crate) fn unknown_isbn() -> String {
    isbn_with("979", 424_242_424)
}

/// A book priced in US cents.
pub(crate) fn book(isbn: &str, title: &str, author: &str, price_cents: i64, stock: u32) -> Book {
    Book {
        isbn: Isbn::parse(isbn).expect("test ISBNs are valid"),
        title: Title::parse(title).expect("test titles are valid"),
        author: Author::parse(author).expect("test authors are valid"),
        price: Money::from_cents(price_cents, Currency::USD).expect("test prices are valid"),
        stock,
    }
}

/// An order request body.
pub(crate) fn order_request(items: &[(&str, i64)], token: &str) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(isbn, quantity)| json!({ "isbn": isbn, "quantity": quantity }))
        .collect();
    json!({ "items": items, "payment": { "token": token } })
}

/// A valid delivery address.
pub(crate) fn address() -> Value {
    json!({
        "recipient": "Ada Lovelace",
        "line1": "1 Main St",
        "line2": null,
        "city": "London",
        "postal_code": "N1 9GU",
        "country": "GB"
    })
}

/// A delivery request body for `order_id` to [`address`], with no requested date.
pub(crate) fn delivery_request(order_id: &str) -> Value {
    json!({ "order_id": order_id, "address": address() })
}

// ---------------------------------------------------------------------------------------
// Configuration

/// How a test app is set up. `AppConfig::default()` is the configured test keys and the demo
/// catalogue, on the store under test (see [`TestStore`]).
pub(crate) struct AppConfig {
    /// The API keys.
    pub(crate) keys: ApiKeys,
    /// The books in the catalogue at start.
    pub(crate) books: Vec<Book>,
    /// The request body limit, when not the default.
    pub(crate) body_limit_bytes: Option<usize>,
    /// An order store to use instead of the one of the store under test.
    pub(crate) orders: Option<Arc<dyn OrderStore>>,
    /// Whether payment captures wait for [`Stores::release_payments`].
    pub(crate) hold_payments: bool,
    /// Closed days and the capacity per day of deliveries.
    pub(crate) delivery_policy: DeliveryPolicy,
    /// Rate limits as `(per_second, burst)`; none when `None`.
    pub(crate) rate_limit: Option<(u32, u32)>,
    /// An event log to use instead of the one of the store under test.
    pub(crate) events: Option<Arc<dyn EventLog>>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            keys: test_keys(),
            books: demo_catalogue(),
            body_limit_bytes: None,
            orders: None,
            hold_payments: false,
            delivery_policy: DeliveryPolicy::default(),
            rate_limit: None,
            events: None,
        }
    }
}

/// The settings of a test app on `database_url`: an empty catalogue, the test database's
/// connection options, rate limiting off unless `config` asks for it.
fn test_settings(database_url: &str, config: &AppConfig) -> Cli {
    let options = test_database_options();
    let (per_second, burst) = config.rate_limit.unwrap_or((0, 0));
    let mut arguments = vec![
        "bookstore".to_owned(),
        "--database-url".to_owned(),
        database_url.to_owned(),
        "--no-seed".to_owned(),
        "--database-max-connections".to_owned(),
        options.connect.max_connections.to_string(),
        "--database-connect-timeout-seconds".to_owned(),
        options.connect.connect_timeout.as_secs().to_string(),
        "--instance-lease-seconds".to_owned(),
        options.instance_lease.as_secs().to_string(),
        "--rate-limit-per-second".to_owned(),
        per_second.to_string(),
        "--rate-limit-burst".to_owned(),
        burst.to_string(),
    ];
    if let Some(limit) = config.body_limit_bytes {
        arguments.extend(["--body-limit-bytes".to_owned(), limit.to_string()]);
    }
    Cli::try_parse_from(arguments).expect("the test settings are valid flags")
}

/// The application state and handles on the stores behind it. The test database goes
/// away with the last clone.
#[derive(Clone)]
pub(crate) struct Stores {
    /// The state the application was built with.
    pub(crate) state: web::Data<AppState>,
    /// The payment processor, as the application sees it.
    pub(crate) payments: Arc<RecordingPaymentGateway>,
    /// Declared last: dropped after the state, so no store uses the database any more when
    /// it is removed.
    _database: Arc<TestDatabase>,
}

impl Stores {
    /// Builds the application for `config` on a fresh database of the store under test,
    /// through `Application::build` as the server does; the API keys, the delivery policy
    /// and a replacement order store are test doubles set on the state afterwards.
    pub(crate) async fn new(config: AppConfig) -> Self {
        let database = TestDatabase::create().await;
        let settings = test_settings(database.url(), &config);
        let mut state = Application::build(settings)
            .await
            .unwrap_or_else(|error| {
                panic!("the {} stores open: {error}", TestStore::current().name())
            })
            .into_state();
        // At once: on PostgreSQL, one insert after the other is a round trip each.
        let catalogue = &state.catalogue;
        try_join_all(config.books.into_iter().map(|book| catalogue.insert(book)))
            .await
            .expect("test books are distinct");
        state.api_keys = config.keys;
        state.delivery_policy = config.delivery_policy;
        if let Some(orders) = config.orders {
            state.orders = orders;
        }
        if let Some(events) = config.events {
            state.events = events;
        }
        Self::wrap(state, config.hold_payments, database)
    }

    /// Wraps a state built elsewhere (e.g. by `Application::build`) on `database`, swapping
    /// in a recording payment processor around the state's own.
    pub(crate) fn from_state(state: AppState, database: TestDatabase) -> Self {
        Self::wrap(state, false, database)
    }

    fn wrap(mut state: AppState, hold_payments: bool, database: TestDatabase) -> Self {
        let payments = Arc::new(RecordingPaymentGateway::new(
            Arc::clone(&state.payments),
            hold_payments,
        ));
        state.payments = payments.clone();
        Self {
            state: web::Data::new(state),
            payments,
            _database: Arc::new(database),
        }
    }

    /// The same stores behind an application configured with other API keys, as after a
    /// restart with a new key list.
    pub(crate) fn with_api_keys(&self, keys: ApiKeys) -> Self {
        let mut state = AppState::in_memory(keys);
        state.catalogue = Arc::clone(&self.state.catalogue);
        state.orders = Arc::clone(&self.state.orders);
        state.deliveries = Arc::clone(&self.state.deliveries);
        state.payments = Arc::clone(&self.state.payments);
        state.idempotency = Arc::clone(&self.state.idempotency);
        state.events = Arc::clone(&self.state.events);
        state.request_limits = self.state.request_limits;
        Self {
            state: web::Data::new(state),
            payments: Arc::clone(&self.payments),
            _database: Arc::clone(&self._database),
        }
    }

    /// The stock of a book, read from the catalogue store.
    pub(crate) async fn stock_of(&self, isbn: &str) -> u32 {
        let isbn = Isbn::parse(isbn).expect("a valid ISBN");
        self.state
            .catalogue
            .get(&isbn)
            .await
            .expect("the book exists")
            .stock
    }

    /// Whether the catalogue holds a book with this ISBN.
    pub(crate) async fn has_book(&self, isbn: &str) -> bool {
        let isbn = Isbn::parse(isbn).expect("a valid ISBN");
        self.state.catalogue.get(&isbn).await.is_ok()
    }

    /// Every event recorded so far, oldest first (on PostgreSQL, numbered first).
    pub(crate) async fn recorded_events(&self) -> Vec<Event> {
        let log = &self.state.events;
        while log.sequence().await.expect("the event log answers") > 0 {}
        let mut events: Vec<Event> = Vec::new();
        loop {
            let after = events.last().and_then(|event| event.position).unwrap_or(0);
            let page = log.after(after, 500).await.expect("the event log answers");
            if page.is_empty() {
                return events;
            }
            events.extend(page);
        }
    }

    /// Transactions captured and not refunded.
    pub(crate) fn captured_count(&self) -> usize {
        self.payments.ledger().captured_count()
    }

    /// Transactions refunded.
    pub(crate) fn refunded_count(&self) -> usize {
        self.payments.ledger().refunded.len()
    }

    /// How many times the processor was asked to capture, whatever the outcome.
    pub(crate) fn capture_attempts(&self) -> usize {
        self.payments.attempts.load(Ordering::SeqCst)
    }

    /// Marks a delivery dispatched, as the warehouse would (the API has no endpoint for it).
    pub(crate) async fn dispatch_delivery(&self, delivery_id: &str) {
        let id = DeliveryId::from_uuid(Uuid::parse_str(delivery_id).expect("a delivery id"));
        self.state
            .deliveries
            .transition(id, Delivery::dispatched)
            .await
            .expect("the delivery can be dispatched");
    }

    /// Waits until a held capture has started (see [`AppConfig::hold_payments`]).
    pub(crate) async fn payment_started(&self) {
        self.payments.gate().entered.notified().await;
    }

    /// Lets `count` held captures go on.
    pub(crate) fn release_payments(&self, count: usize) {
        self.payments.gate().release.add_permits(count);
    }
}

/// Held captures: a capture signals `entered`, then waits for a `release` permit.
pub(crate) struct PaymentGate {
    entered: Notify,
    release: Semaphore,
}

/// The transactions the application captured and refunded, as the processor answered.
#[derive(Default)]
struct PaymentLedger {
    captured: HashSet<TransactionId>,
    refunded: HashSet<TransactionId>,
}

impl PaymentLedger {
    fn captured_count(&self) -> usize {
        self.captured.difference(&self.refunded).count()
    }
}

/// The store's payment processor, counting capture attempts, recording what it captured and
/// refunded (whichever processor it is), and optionally holding captures.
pub(crate) struct RecordingPaymentGateway {
    processor: Arc<dyn PaymentGateway>,
    attempts: AtomicUsize,
    ledger: Mutex<PaymentLedger>,
    gate: Option<PaymentGate>,
}

impl RecordingPaymentGateway {
    fn new(processor: Arc<dyn PaymentGateway>, hold: bool) -> Self {
        let gate = hold.then(|| PaymentGate {
            entered: Notify::new(),
            release: Semaphore::new(0),
        });
        Self {
            processor,
            attempts: AtomicUsize::new(0),
            ledger: Mutex::new(PaymentLedger::default()),
            gate,
        }
    }

    fn gate(&self) -> &PaymentGate {
        self.gate
            .as_ref()
            .expect("the app was configured with hold_payments")
    }

    fn ledger(&self) -> MutexGuard<'_, PaymentLedger> {
        self.ledger
            .lock()
            .expect("the payment ledger is not poisoned")
    }
}

#[async_trait::async_trait]
impl PaymentGateway for RecordingPaymentGateway {
    async fn capture(
        &self,
        token: &PaymentToken,
        amount: Money,
        reference: OrderId,
    ) -> Result<TransactionId, PaymentError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.entered.notify_one();
            gate.release
                .acquire()
                .await
                .expect("the gate is never closed")
                .forget();
        }
        let captured = self.processor.capture(token, amount, reference).await;
        if let Ok(transaction_id) = captured {
            // A second capture for one reference answers the first transaction: a set.
            self.ledger().captured.insert(transaction_id);
        }
        captured
    }

    async fn capture_for(&self, reference: OrderId) -> Result<Option<Capture>, PaymentError> {
        self.processor.capture_for(reference).await
    }

    async fn refund(&self, transaction_id: TransactionId) -> Result<(), PaymentError> {
        self.processor.refund(transaction_id).await?;
        self.ledger().refunded.insert(transaction_id);
        Ok(())
    }
}

/// An order store whose database is down: every call fails as unavailable, with a cause
/// that must never reach a client.
pub(crate) struct UnavailableOrderStore;

/// The cause an [`UnavailableOrderStore`] gives; tests check that it never leaks.
pub(crate) const SECRET_STORE_FAILURE: &str =
    "connection refused by postgres://orders@10.1.2.3:5432";

fn store_down() -> SalesError {
    SalesError::Unavailable(Box::new(std::io::Error::other(SECRET_STORE_FAILURE)))
}

#[async_trait::async_trait]
impl OrderStore for UnavailableOrderStore {
    async fn insert(&self, _order: Order) -> Result<(), SalesError> {
        Err(store_down())
    }

    async fn get(&self, _id: OrderId) -> Result<Order, SalesError> {
        Err(store_down())
    }

    async fn list_by_owner(
        &self,
        _owner: &CustomerId,
        _before: Option<OrderId>,
        _limit: u32,
    ) -> Result<OrderPage, SalesError> {
        Err(store_down())
    }

    async fn mark_cancelled(&self, _id: OrderId) -> Result<Order, SalesError> {
        Err(store_down())
    }

    async fn check_ready(&self) -> Result<(), SalesError> {
        Err(store_down())
    }
}

// ---------------------------------------------------------------------------------------
// In-process app

type Dispatch = Rc<dyn Fn(TestRequest) -> LocalBoxFuture<'static, TestResponse>>;

/// The application, answering requests in process.
pub(crate) struct TestApp {
    dispatch: Dispatch,
    /// The state and stores behind the app.
    pub(crate) stores: Stores,
}

/// The default test app: configured keys ([`CUSTOMER`], [`OTHER_CUSTOMER`], [`ADMIN`]) and
/// the demo catalogue.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(AppConfig::default()).await
}

/// A test app with these keys and the demo catalogue.
pub(crate) async fn spawn_app_with_keys(keys: ApiKeys) -> TestApp {
    spawn_app_with(AppConfig {
        keys,
        ..AppConfig::default()
    })
    .await
}

/// A test app with exactly these books.
pub(crate) async fn spawn_app_with_books(books: Vec<Book>) -> TestApp {
    spawn_app_with(AppConfig {
        books,
        ..AppConfig::default()
    })
    .await
}

/// A test app with an empty catalogue.
pub(crate) async fn spawn_app_with_empty_catalogue() -> TestApp {
    spawn_app_with_books(Vec::new()).await
}

/// A test app set up as `config` says.
pub(crate) async fn spawn_app_with(config: AppConfig) -> TestApp {
    spawn_app_with_stores(Stores::new(config).await).await
}

/// A test app around existing stores.
pub(crate) async fn spawn_app_with_stores(stores: Stores) -> TestApp {
    let service = Rc::new(test::init_service(build_app(stores.state.clone())).await);
    let dispatch: Dispatch = Rc::new(move |request: TestRequest| {
        let service = Rc::clone(&service);
        Box::pin(async move {
            match test::try_call_service(&*service, request.to_request()).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let body = test::read_body(response).await;
                    TestResponse {
                        status,
                        headers,
                        body,
                    }
                }
                // What the HTTP server itself would send for an error that escaped the app.
                Err(error) => {
                    let response = error.error_response();
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let body = actix_web::body::to_bytes(response.into_body())
                        .await
                        .unwrap_or_default();
                    TestResponse {
                        status,
                        headers,
                        body,
                    }
                }
            }
        })
    });
    TestApp { dispatch, stores }
}

impl TestApp {
    /// Starts a request.
    pub(crate) fn request(&self, method: Method, path: &str) -> Call {
        Call {
            dispatch: Rc::clone(&self.dispatch),
            request: TestRequest::default().method(method).uri(path),
        }
    }

    /// `GET path` with `key`.
    pub(crate) async fn get(&self, path: &str, key: &str) -> TestResponse {
        self.request(Method::GET, path).key(key).send().await
    }

    /// `POST path` with `key` and a JSON body.
    pub(crate) async fn post_json(&self, path: &str, key: &str, body: &Value) -> TestResponse {
        self.request(Method::POST, path)
            .key(key)
            .json(body)
            .send()
            .await
    }

    /// `PATCH path` with `key` and a JSON body.
    pub(crate) async fn patch_json(&self, path: &str, key: &str, body: &Value) -> TestResponse {
        self.request(Method::PATCH, path)
            .key(key)
            .json(body)
            .send()
            .await
    }

    /// `POST /api/orders/{id}/cancel` with `key` and no body.
    pub(crate) async fn cancel(&self, order_id: &str, key: &str) -> TestResponse {
        self.request(Method::POST, &format!("/api/orders/{order_id}/cancel"))
            .key(key)
            .send()
            .await
    }

    /// Places an order of `items` paid with `tok_visa` and returns it (asserting 201).
    pub(crate) async fn place_order(&self, key: &str, items: &[(&str, i64)]) -> Value {
        let response = self
            .post_json("/api/orders", key, &order_request(items, "tok_visa"))
            .await;
        response.assert_status(201);
        response.json()
    }

    /// Schedules the delivery of `order_id` with no requested date and returns it
    /// (asserting 201).
    pub(crate) async fn schedule_delivery(&self, key: &str, order_id: &str) -> Value {
        let response = self
            .post_json("/api/delivery", key, &delivery_request(order_id))
            .await;
        response.assert_status(201);
        response.json()
    }

    /// Reads a book (asserting 200).
    pub(crate) async fn book(&self, isbn: &str) -> Value {
        let response = self.get(&format!("/api/books/{isbn}"), CUSTOMER).await;
        response.assert_status(200);
        response.json()
    }
}

/// A request being built.
pub(crate) struct Call {
    dispatch: Dispatch,
    request: TestRequest,
}

impl Call {
    /// Sends `X-API-Key: key`.
    pub(crate) fn key(self, key: &str) -> Self {
        self.header("X-API-Key", key)
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.insert_header((name, value));
        self
    }

    /// Comes from this client address.
    pub(crate) fn peer(mut self, address: SocketAddr) -> Self {
        self.request = self.request.peer_addr(address);
        self
    }

    /// A JSON body typed `application/json`.
    pub(crate) fn json(self, body: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(serde_json::to_vec(body).expect("JSON serializes"))
    }

    /// A raw body (with its `Content-Length`); no `Content-Type` is added.
    pub(crate) fn body(mut self, bytes: impl Into<Bytes>) -> Self {
        self.request = self.request.set_payload(bytes);
        self
    }

    /// Sends the request. The future owns everything it needs, so it can be spawned.
    pub(crate) fn send(self) -> LocalBoxFuture<'static, TestResponse> {
        (self.dispatch)(self.request)
    }
}

// ---------------------------------------------------------------------------------------
// Responses

/// A complete response: status, headers and body.
#[derive(Debug, Clone)]
pub(crate) struct TestResponse {
    /// The status code.
    pub(crate) status: u16,
    /// The headers.
    pub(crate) headers: HeaderMap,
    /// The body.
    pub(crate) body: Bytes,
}

impl TestResponse {
    /// The body as text (lossy), for messages.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("the body is not JSON ({error}): {:?}", self.text()))
    }

    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("a text header"))
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub(crate) fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status,
            expected,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts a JSON success: the status and `Content-Type: application/json`; returns the body.
    #[track_caller]
    pub(crate) fn success(&self, expected: u16) -> Value {
        self.assert_status(expected);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "Content-Type {content_type:?}"
        );
        self.json()
    }

    /// Asserts an RFC 9457 problem with `status`: `application/problem+json`, `type`,
    /// `title` and `detail` strings, `status` equal to the HTTP status and `request_id`
    /// equal to the `X-Request-Id` header (except on an idempotent replay, which repeats the
    /// first response's body byte for byte). Returns the body.
    #[track_caller]
    pub(crate) fn problem(&self, status: u16) -> Value {
        self.assert_status(status);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/problem+json"),
            "Content-Type {content_type:?} for a {status}; body: {}",
            self.text()
        );
        let body = self.json();
        for field in ["type", "title", "detail"] {
            let value = body[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field:?} in {body}"));
            assert!(!value.trim().is_empty(), "empty {field:?} in {body}");
        }
        assert_eq!(body["status"], json!(status), "the status in {body}");
        if self.header("idempotent-replayed").is_none() {
            let request_id = self.header("x-request-id").expect("an X-Request-Id header");
            assert_eq!(
                body["request_id"],
                json!(request_id),
                "request_id in {body}"
            );
        }
        body
    }

    /// Asserts a 422 problem and returns the fields its `errors` name.
    #[track_caller]
    pub(crate) fn field_errors(&self) -> Vec<String> {
        let body = self.problem(422);
        body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors array in {body}"))
            .iter()
            .map(|error| error["field"].as_str().expect("a field name").to_owned())
            .collect()
    }
}

/// What a problem body must never contain: signs of panics, debug output, SQL, stack
/// traces, paths of source files and Rust type or crate names.
pub(crate) const LEAK_MARKERS: &[&str] = &[
    "panicked",
    "Error {",
    "sqlx",
    "SELECT ",
    "stack backtrace",
    "RUST_BACKTRACE",
    ".rs:",
    "src/",
    "::",
    "bookstore_",
    "struct ",
    "enum ",
    "NewBookRequest",
    "BookPatchRequest",
    "PlaceOrderRequest",
    "OrderItemRequest",
    "PaymentRequest",
    "ScheduleDeliveryRequest",
    "AddressBody",
    "ApiError",
    "InventoryError",
    "SalesError",
    "DeliveryError",
    "PaymentError",
    SECRET_STORE_FAILURE,
];

/// Asserts that a response body leaks nothing internal.
#[track_caller]
pub(crate) fn assert_leaks_nothing(what: &str, response: &TestResponse) {
    let text = response.text();
    for marker in LEAK_MARKERS {
        assert!(
            !text.contains(marker),
            "{what}: the body contains {marker:?}: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// A real server

/// The application served on a real port by an actix `HttpServer` with two workers, on a
/// thread of its own. Stopped by [`RunningServer::stop`] (or when dropped).
pub(crate) struct RunningServer {
    /// The state and stores behind the server.
    pub(crate) stores: Stores,
    /// Where it listens.
    pub(crate) address: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Serves a fresh app set up as `config` says. The stores are opened on the server's
    /// own runtime, so the connections the server uses live as long as it does.
    pub(crate) fn start(config: AppConfig) -> Self {
        let (started, on_start) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let stores = Stores::new(config).await;
                let state = stores.state.clone();
                let server = HttpServer::new(move || build_app(state.clone()))
                    .workers(2)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .bind(("127.0.0.1", 0))
                    .expect("bind a free port on localhost");
                let address = server.addrs()[0];
                let server = server.run();
                started
                    .send((stores, address, server.handle()))
                    .expect("the test waits for the server");
                server.await.expect("the server runs");
            });
        });
        let (stores, address, handle) = on_start.recv().expect("the server starts");
        Self {
            stores,
            address,
            handle,
            thread: Some(thread),
        }
    }

    /// The URL of `path` on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A client that talks to this server directly (no proxy), failing instead of hanging.
    pub(crate) fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a reqwest client")
    }

    /// Sends raw bytes on a new connection and reads the response until the server closes
    /// it (send `Connection: close`). Write errors are ignored: the server may answer and
    /// stop reading before the whole request is sent.
    pub(crate) fn raw_exchange(&self, request_parts: &[&[u8]]) -> RawResponse {
        let mut stream = TcpStream::connect(self.address).expect("connect to the server");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("set a read timeout");
        for part in request_parts {
            if stream.write_all(part).is_err() {
                break;
            }
        }
        let mut received = Vec::new();
        let mut buffer = [0u8; 8192];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(error) if received.is_empty() => panic!("no response from the server: {error}"),
                Err(_) => break,
            }
            if RawResponse::parse(&received).is_some_and(|response| response.is_complete()) {
                break;
            }
        }
        RawResponse::parse(&received).unwrap_or_else(|| {
            panic!(
                "not an HTTP response: {:?}",
                String::from_utf8_lossy(&received)
            )
        })
    }

    /// Stops the server and waits for its thread.
    pub(crate) async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread ends cleanly");
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Sends the stop command at once; a test that panicked does not wait for it.
        drop(self.handle.stop(false));
    }
}

/// A response read from a raw connection.
#[derive(Debug)]
pub(crate) struct RawResponse {
    /// The status code.
    pub(crate) status: u16,
    /// Header lines, names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    /// The body (as received; not de-chunked).
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let end = bytes.windows(4).position(|window| window == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&bytes[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Some(Self {
            status,
            headers,
            body: bytes[end + 4..].to_vec(),
        })
    }

    fn is_complete(&self) -> bool {
        match self
            .header("content-length")
            .and_then(|length| length.parse::<usize>().ok())
        {
            Some(length) => self.body.len() >= length,
            None => false,
        }
    }

    /// A header value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A chunked request: `head` (request line and headers, without `Transfer-Encoding` and
/// the blank line) followed by `body` in chunks of `chunk_size` bytes.
pub(crate) fn chunked_request(head: &str, body: &[u8], chunk_size: usize) -> Vec<Vec<u8>> {
    let mut parts =
        vec![format!("{head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").into_bytes()];
    for chunk in body.chunks(chunk_size) {
        let mut part = format!("{:x}\r\n", chunk.len()).into_bytes();
        part.extend_from_slice(chunk);
        part.extend_from_slice(b"\r\n");
        parts.push(part);
    }
    parts.push(b"0\r\n\r\n".to_vec());
    parts
}
