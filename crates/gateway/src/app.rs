//! The application: its state (stores and configuration) and the one function that
//! builds the actix-web `App`, used by `main`, by the tests and by the spec export.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, web};
use apistos::app::OpenApiWrapper;
use apistos::info::{Info, License};
use apistos::server::Server;
use apistos::spec::Spec;
use apistos::tag::Tag;
use apistos::web::{delete, get, patch, post, resource, scope};
use bookstore_delivery::{DeliveryCalendar, DeliveryStore};
use bookstore_inventory::{CatalogueStore, InMemoryCatalogue};
use bookstore_sales::{OrderStore, PaymentGateway};

use crate::docs_ui;
use crate::http::auth::ApiKeys;
use crate::http::extract::{DEFAULT_BODY_LIMIT_BYTES, json_config, path_config, query_config};
use crate::http::middleware::request_context;
use crate::http::problem::ApiError;
use crate::http::rate_limit::RateLimits;
use crate::idempotency::IdempotencyStore;
use crate::routes::{books, deliveries, events, health, orders, webhooks};
use crate::{metrics, openapi};
use bookstore_storage::Stores;
use bookstore_storage::events::{EventLog, Outbox, RelayCursors, WebhookStore};

use crate::webhooks::WebhookSettings;
use crate::wire::event_data::WireRenderer;

/// The path of the generated OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The path of the Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";

/// Everything a request handler may use.
pub struct AppState {
    /// Books and stock.
    pub catalogue: Arc<dyn CatalogueStore>,
    /// Orders.
    pub orders: Arc<dyn OrderStore>,
    /// Deliveries.
    pub deliveries: Arc<dyn DeliveryStore>,
    /// The card processor.
    pub payments: Arc<dyn PaymentGateway>,
    /// Idempotency records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// The events the stores record with their changes.
    pub events: Arc<dyn EventLog>,
    /// Webhook endpoints, their deliveries and attempts.
    pub webhooks: Arc<dyn WebhookStore>,
    /// How webhooks are delivered (the address rules the API checks too).
    pub webhook_settings: WebhookSettings,
    /// How far each relay of the event log (NATS, the events counter) has got.
    pub relays: Arc<dyn RelayCursors>,
    /// The API keys and their roles.
    pub api_keys: ApiKeys,
    /// Size limits on requests.
    pub request_limits: RequestLimits,
    /// Rate limits per account or client address; `None` when limiting is off.
    pub rate_limits: Option<RateLimits>,
    /// Whether start-up recovery has settled what a previous process left behind;
    /// `/health/ready` answers 503 until it has.
    pub recovered: Arc<AtomicBool>,
    /// Which days deliveries go out, and how many a day takes.
    pub delivery_policy: DeliveryPolicy,
    /// Set when the server has been told to stop: `/health/ready` answers 503 while requests
    /// are still served, so that load balancers stop sending new ones first.
    pub draining: Arc<AtomicBool>,
}

/// Which days deliveries go out, and how many a day takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Weekdays except the closed days.
    pub calendar: DeliveryCalendar,
    /// The most deliveries one day takes; `None` for no limit.
    pub capacity_per_day: Option<u32>,
}

/// Size limits on requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// The largest request body accepted (413 above).
    pub body_bytes: usize,
    /// The longest URL (path and query) accepted (414 above).
    pub max_url_bytes: usize,
    /// The largest total size of request header names and values accepted (431 above).
    pub max_header_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            body_bytes: DEFAULT_BODY_LIMIT_BYTES,
            max_url_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
        }
    }
}

impl AppState {
    /// State with empty in-memory stores, the simulated card processor and `api_keys`.
    pub fn in_memory(api_keys: ApiKeys) -> Self {
        Self::with_stores(
            bookstore_storage::memory::stores(
                Outbox::new(Arc::new(WireRenderer)),
                InMemoryCatalogue::new(),
            ),
            api_keys,
        )
    }

    /// State around `stores` and `api_keys`, with the default limits and policies.
    pub fn with_stores(stores: Stores, api_keys: ApiKeys) -> Self {
        let Stores {
            catalogue,
            orders,
            deliveries,
            payments,
            idempotency,
            events,
            webhooks,
            relays,
        } = stores;
        Self {
            catalogue,
            orders,
            deliveries,
            payments,
            idempotency,
            events,
            webhooks,
            webhook_settings: WebhookSettings::default(),
            relays,
            api_keys,
            request_limits: RequestLimits::default(),
            rate_limits: None,
            recovered: Arc::new(AtomicBool::new(true)),
            delivery_policy: DeliveryPolicy::default(),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }
}

fn spec() -> Spec {
    let tag = |name: &str, description: &str| Tag {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        ..Default::default()
    };
    Spec {
        info: Info {
            title: "Bookstore API".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: Some(
                "Sells books over HTTP: a catalogue with stock, orders that reserve stock and take payment as one unit, \
                 and delivery scheduling. Every `/api` request carries an `X-API-Key`. Every error is \
                 `application/problem+json` (RFC 9457). Money is integer minor units (`*_cents`)."
                    .to_owned(),
            ),
            license: Some(License {
                name: env!("CARGO_PKG_LICENSE").to_owned(),
                identifier: None,
                url: None,
                extensions: Default::default(),
            }),
            ..Default::default()
        },
        tags: vec![
            tag("books", "The catalogue"),
            tag("orders", "Orders and payment"),
            tag("deliveries", "Delivery scheduling"),
            tag("webhooks", "Webhook endpoints and their deliveries (admin)"),
            tag("events", "The event feed: what happened, for admin keys"),
            tag("health", "Probes for load balancers (no API key)"),
            tag("metrics", "Prometheus metrics (no API key)"),
        ],
        servers: vec![Server { url: "/".to_owned(), ..Default::default() }],
        ..Default::default()
    }
}

async fn no_such_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        crate::http::problem::ProblemKind::NotFound,
        "no resource at this path",
    ))
}

/// Builds the application around `state`.
pub fn build_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let body_limit = state.request_limits.body_bytes;
    App::new()
        .document(spec())
        .app_data(state)
        .app_data(web::Data::new(metrics::install()))
        .app_data(json_config(body_limit))
        .app_data(web::PayloadConfig::new(body_limit))
        .app_data(path_config())
        .app_data(query_config())
        .wrap(from_fn(openapi::finish_served_document))
        .wrap(from_fn(request_context))
        .service(
            scope("/api")
                .service(
                    resource("/books")
                        .route(get().to(books::list_books))
                        .route(post().to(books::create_book)),
                )
                .service(
                    resource("/books/{isbn}")
                        .route(get().to(books::get_book))
                        .route(patch().to(books::update_book)),
                )
                .service(
                    resource("/orders")
                        .route(get().to(orders::list_orders))
                        .route(post().to(orders::create_order)),
                )
                .service(resource("/orders/{id}").route(get().to(orders::get_order)))
                .service(resource("/orders/{id}/cancel").route(post().to(orders::cancel_order)))
                .service(
                    resource("/orders/{id}/delivery").route(get().to(orders::get_order_delivery)),
                )
                .service(resource("/delivery").route(post().to(deliveries::create_delivery)))
                .service(resource("/delivery/{id}").route(get().to(deliveries::get_delivery)))
                .service(
                    resource("/delivery/{id}/events")
                        .route(post().to(deliveries::record_delivery_event)),
                )
                .service(resource("/deliveries").route(get().to(deliveries::list_deliveries)))
                .service(
                    resource("/webhook-endpoints")
                        .route(get().to(webhooks::list_webhook_endpoints))
                        .route(post().to(webhooks::create_webhook_endpoint)),
                )
                .service(
                    resource("/webhook-endpoints/{id}")
                        .route(get().to(webhooks::get_webhook_endpoint))
                        .route(patch().to(webhooks::update_webhook_endpoint))
                        .route(delete().to(webhooks::delete_webhook_endpoint)),
                )
                .service(
                    resource("/webhook-endpoints/{id}/rotate-secret")
                        .route(post().to(webhooks::rotate_webhook_secret)),
                )
                .service(
                    resource("/webhook-endpoints/{id}/deliveries")
                        .route(get().to(webhooks::list_webhook_deliveries)),
                )
                .service(
                    resource("/webhook-endpoints/{id}/test")
                        .route(post().to(webhooks::test_webhook_endpoint)),
                )
                .service(
                    resource("/events/{id}/redeliver").route(post().to(webhooks::redeliver_event)),
                )
                .service(resource("/events").route(get().to(events::list_events)))
                .service(resource("/events/{id}").route(get().to(events::get_event))),
        )
        .service(
            scope("/health")
                .service(resource("/live").route(get().to(health::live)))
                .service(resource("/ready").route(get().to(health::ready))),
        )
        .service(resource(METRICS_PATH).route(get().to(metrics::render)))
        .build(OPENAPI_PATH)
        .configure(docs_ui::configure)
        .default_service(web::to(no_such_route))
}
