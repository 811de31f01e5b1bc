//! Prometheus metrics: HTTP traffic by route template and status, requests in flight, and
//! business counters.
//!
//! The `metrics` facade records; `metrics-exporter-prometheus` renders the text format at
//! `GET /metrics`. Labels are bounded: `route` is the route *template* (`/api/books/{isbn}`)
//! or `unmatched`, `method` is one of the standard methods or `OTHER`, `status` is the
//! numeric code — never a raw path, ISBN or id.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use actix_web::body::BoxBody;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, Responder, web};
use apistos::paths::{MediaType, Response, Responses};
use apistos::reference_or::ReferenceOr;
use apistos::{ApiComponent, ApistosSchema, OpenApiVersion, VersionSpecificSchema, api_operation};
use bookstore_inventory::InventoryError;
use bookstore_sales::PaymentError;
use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::openapi::headers;
use crate::workflow::WorkflowError;

/// Requests answered, by method, route and status.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// Request latency in seconds, by method, route and status.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
/// Requests being served right now.
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "http_requests_in_flight";

/// Calls to Redis for a shared rate limit that failed or timed out.
pub const RATE_LIMIT_REDIS_ERRORS_TOTAL: &str = "bookstore_rate_limit_redis_errors_total";
/// Requests checked against the instance's own rate limiter because Redis was unavailable.
pub const RATE_LIMIT_LOCAL_FALLBACKS_TOTAL: &str = "bookstore_rate_limit_local_fallbacks_total";

/// Latency buckets in seconds, from half a millisecond to ten seconds.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A business event worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusinessEvent {
    /// An order was confirmed.
    OrderPlaced,
    /// An order was cancelled.
    OrderCancelled,
    /// A payment was declined.
    PaymentDeclined,
    /// An order asked for more copies than were in stock.
    StockConflict,
    /// A response was replayed for an idempotency key.
    IdempotentReplay,
    /// A delivery was scheduled.
    DeliveryScheduled,
    /// A carrier update was recorded on a delivery (moving its status or not).
    DeliveryUpdated,
}

impl BusinessEvent {
    const ALL: [BusinessEvent; 7] = [
        Self::OrderPlaced,
        Self::OrderCancelled,
        Self::PaymentDeclined,
        Self::StockConflict,
        Self::IdempotentReplay,
        Self::DeliveryScheduled,
        Self::DeliveryUpdated,
    ];

    fn metric_name(self) -> &'static str {
        match self {
            Self::OrderPlaced => "bookstore_orders_placed_total",
            Self::OrderCancelled => "bookstore_orders_cancelled_total",
            Self::PaymentDeclined => "bookstore_payments_declined_total",
            Self::StockConflict => "bookstore_stock_conflicts_total",
            Self::IdempotentReplay => "bookstore_idempotent_replays_total",
            Self::DeliveryScheduled => "bookstore_deliveries_scheduled_total",
            Self::DeliveryUpdated => "bookstore_delivery_updates_total",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::OrderPlaced => "Orders confirmed (stock taken, payment captured)",
            Self::OrderCancelled => "Orders cancelled (payment refunded, stock returned)",
            Self::PaymentDeclined => "Orders refused because the payment was declined",
            Self::StockConflict => "Orders refused because a book had too few copies in stock",
            Self::IdempotentReplay => "Responses replayed for a reused Idempotency-Key",
            Self::DeliveryScheduled => "Deliveries scheduled",
            Self::DeliveryUpdated => "Carrier updates recorded on deliveries",
        }
    }

    /// Counts one occurrence.
    pub fn record(self) {
        counter!(self.metric_name()).increment(1);
    }

    /// Counts the business event an error stands for, if any (declined payment, stock
    /// conflict).
    pub fn record_failure(error: &WorkflowError) {
        match error {
            WorkflowError::Payment(PaymentError::Declined) => Self::PaymentDeclined.record(),
            WorkflowError::Inventory(InventoryError::OutOfStock { .. }) => {
                Self::StockConflict.record();
            }
            _ => {}
        }
    }
}

/// Events of the log, by `type`, counted once each by the instance holding the counter's
/// relay (see `crate::events::EventCounter` and docs/EVENTS.md).
pub const EVENTS_RECORDED_TOTAL: &str = "bookstore_events_recorded_total";
/// Events published to NATS JetStream, by `outcome`.
pub const NATS_PUBLISHES_TOTAL: &str = "bookstore_events_nats_publishes_total";
/// The age in seconds of the oldest event not yet published to NATS (0 when none waits).
pub const NATS_BACKLOG_AGE_SECONDS: &str = "bookstore_events_nats_oldest_unpublished_age_seconds";

/// Counts one event of the log.
pub fn record_event(kind: bookstore_storage::events::EventType) {
    counter!(EVENTS_RECORDED_TOTAL, "type" => kind.as_str()).increment(1);
}

/// How a publish to NATS JetStream went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsOutcome {
    /// JetStream stored the event.
    Published,
    /// JetStream had it already (within its duplicate window) and dropped the repeat.
    Duplicate,
    /// No acknowledgement: the server is down, the stream missing, or the wait timed out.
    Failed,
}

impl NatsOutcome {
    const ALL: [NatsOutcome; 3] = [Self::Published, Self::Duplicate, Self::Failed];

    fn label(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Duplicate => "duplicate",
            Self::Failed => "failed",
        }
    }
}

/// Makes the NATS series present from the start (publishing is configured): zero publishes
/// of each outcome, no backlog.
pub fn announce_nats() {
    for outcome in NatsOutcome::ALL {
        counter!(NATS_PUBLISHES_TOTAL, "outcome" => outcome.label()).increment(0);
    }
    gauge!(NATS_BACKLOG_AGE_SECONDS).set(0.0);
}

/// Counts one attempt to publish an event to NATS.
pub fn record_nats_publish(outcome: NatsOutcome) {
    counter!(NATS_PUBLISHES_TOTAL, "outcome" => outcome.label()).increment(1);
}

/// Sets the age of the oldest event not yet published to NATS, recorded at `oldest`
/// (`None`: every event is published).
pub fn set_nats_backlog_age(oldest: Option<chrono::DateTime<chrono::Utc>>) {
    let age = oldest.map_or(0.0, |at| {
        (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
    });
    gauge!(NATS_BACKLOG_AGE_SECONDS).set(age);
}

/// The gauge of overdue deliveries.
const DELIVERIES_OVERDUE: &str = "bookstore_deliveries_overdue";

/// Sets the number of deliveries past their promised day and not yet delivered (nor
/// cancelled), as last counted.
pub fn set_overdue_deliveries(count: u64) {
    gauge!(DELIVERIES_OVERDUE).set(count as f64);
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
///
/// The recorder is global because the `metrics` facade is: every app built in this process
/// (several in tests) reports into it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_REQUEST_DURATION_SECONDS.to_owned()),
                    LATENCY_BUCKETS_SECONDS,
                )
                .map(PrometheusBuilder::build_recorder);
            let recorder = match recorder {
                Ok(recorder) => recorder,
                // Only an empty bucket list is refused, and ours is not empty.
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "HTTP request latency, by method, route template and status"
    );
    describe_gauge!(HTTP_REQUESTS_IN_FLIGHT, "HTTP requests being served");
    describe_gauge!(
        DELIVERIES_OVERDUE,
        "Deliveries past their promised day and neither delivered nor cancelled"
    );
    gauge!(HTTP_REQUESTS_IN_FLIGHT).set(0.0);
    describe_counter!(
        RATE_LIMIT_REDIS_ERRORS_TOTAL,
        "Calls to Redis for a shared rate limit that failed or timed out"
    );
    describe_counter!(
        RATE_LIMIT_LOCAL_FALLBACKS_TOTAL,
        "Requests rate limited by this instance alone because Redis was unavailable"
    );
    for name in [
        RATE_LIMIT_REDIS_ERRORS_TOTAL,
        RATE_LIMIT_LOCAL_FALLBACKS_TOTAL,
    ] {
        counter!(name).increment(0);
    }
    describe_counter!(
        crate::webhooks::DELIVERIES_TOTAL,
        "Webhook delivery attempts, by endpoint and outcome (succeeded, retrying, failed)"
    );
    describe_gauge!(
        crate::webhooks::OLDEST_PENDING_SECONDS,
        metrics::Unit::Seconds,
        "Age of the oldest webhook delivery not yet delivered, by endpoint (0 when none)"
    );
    describe_counter!(
        EVENTS_RECORDED_TOTAL,
        "Events of the event log by type, each counted once by the instance that holds the counting relay"
    );
    for kind in bookstore_storage::events::EventType::ALL {
        counter!(EVENTS_RECORDED_TOTAL, "type" => kind.as_str()).increment(0);
    }
    describe_counter!(
        NATS_PUBLISHES_TOTAL,
        "Events published to NATS JetStream by outcome (published, duplicate, failed)"
    );
    describe_gauge!(
        NATS_BACKLOG_AGE_SECONDS,
        metrics::Unit::Seconds,
        "Age of the oldest event not yet published to NATS JetStream, on the instance publishing (0 when none waits)"
    );
    for event in BusinessEvent::ALL {
        describe_counter!(event.metric_name(), event.description());
        // Present from the start, so that rates and alerts work before the first event.
        counter!(event.metric_name()).increment(0);
    }
}

/// The bounded `method` label.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The in-flight gauge, looked up once the recorder is installed.
static IN_FLIGHT: OnceLock<Gauge> = OnceLock::new();

/// The gauge of requests in flight. Before [`install`] it is looked up each time (and
/// records nothing); after, it is looked up once: a global recorder never changes.
fn in_flight_gauge() -> Gauge {
    if HANDLE.get().is_none() {
        return gauge!(HTTP_REQUESTS_IN_FLIGHT);
    }
    IN_FLIGHT
        .get_or_init(|| gauge!(HTTP_REQUESTS_IN_FLIGHT))
        .clone()
}

/// Marks a request as in flight until dropped (also when the request is abandoned).
pub struct InFlight(Gauge);

impl InFlight {
    /// Counts a request in.
    pub fn start() -> Self {
        let gauge = in_flight_gauge();
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// The counter and histogram of one label set.
struct RequestHandles {
    total: Counter,
    duration: Histogram,
}

impl RequestHandles {
    fn new(method: &'static str, route: &str, status: u16) -> Self {
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        RequestHandles {
            total: counter!(HTTP_REQUESTS_TOTAL, &labels),
            duration: histogram!(HTTP_REQUEST_DURATION_SECONDS, &labels),
        }
    }
}

/// The handles of one route, by method label and status.
type RouteHandles = HashMap<(&'static str, u16), RequestHandles>;

thread_local! {
    /// Each worker thread's handles by route, then method and status: looking a label set
    /// up in the registry hashes it and allocates its labels, on every request.
    /// The label sets are bounded (see the module documentation), and so is this.
    static REQUEST_HANDLES: RefCell<HashMap<String, RouteHandles>> = RefCell::new(HashMap::new());
}

/// Records one answered request.
pub fn record_request(method: &Method, route: &str, status: StatusCode, seconds: f64) {
    let method = method_label(method);
    let status = status.as_u16();
    if HANDLE.get().is_none() {
        // No recorder yet: handles would record nothing, so none are kept.
        let handles = RequestHandles::new(method, route, status);
        handles.total.increment(1);
        handles.duration.record(seconds);
        return;
    }
    REQUEST_HANDLES.with_borrow_mut(|routes| {
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), HashMap::new());
        }
        let by_status = routes.get_mut(route).expect("inserted above");
        let handles = by_status
            .entry((method, status))
            .or_insert_with(|| RequestHandles::new(method, route, status));
        handles.total.increment(1);
        handles.duration.record(seconds);
    });
}

/// The media type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: the Prometheus text format.
#[api_operation(
    tag = "metrics",
    operation_id = "get_metrics",
    summary = "Metrics",
    description = "Prometheus text format: request counts and latency histograms by route template and status, requests in flight, and business counters. No API key.",
    success_description = "The metrics"
)]
pub async fn render(handle: web::Data<PrometheusHandle>) -> PrometheusText {
    PrometheusText(handle.render())
}

/// The body of `GET /metrics`: metrics in the Prometheus text format.
pub struct PrometheusText(String);

impl Responder for PrometheusText {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse<Self::Body> {
        HttpResponse::Ok()
            .content_type(PROMETHEUS_TEXT)
            .body(self.0)
    }
}

impl ApiComponent for PrometheusText {
    fn child_schemas(_: OpenApiVersion) -> Vec<(String, ReferenceOr<ApistosSchema>)> {
        Vec::new()
    }

    fn schema(_: OpenApiVersion) -> Option<(String, ReferenceOr<ApistosSchema>)> {
        None
    }

    fn responses(
        oas_version: OpenApiVersion,
        _content_type: Option<String>,
        description: Option<String>,
    ) -> Option<Responses> {
        let schema = apistos::schemars::Schema::try_from(serde_json::json!({ "type": "string" }))
            .unwrap_or_default();
        let media = MediaType {
            schema: Some(VersionSpecificSchema::OAS3_0(ReferenceOr::Object(
                ApistosSchema::new(schema, oas_version),
            ))),
            ..Default::default()
        };
        let response = Response {
            description: description.unwrap_or_default(),
            headers: BTreeMap::from([headers::request_id()]),
            content: BTreeMap::from([("text/plain".to_owned(), media)]),
            ..Default::default()
        };
        Some(Responses {
            responses: BTreeMap::from([("200".to_owned(), ReferenceOr::Object(response))]),
            ..Default::default()
        })
    }
}
