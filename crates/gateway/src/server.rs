//! Running the server: stores chosen from configuration, the demo catalogue, and the
//! HTTP server itself.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::KeepAlive;
use actix_web::{HttpServer, web};
use bookstore_inventory::{InMemoryCatalogue, demo_catalogue};

use crate::app::{AppState, RequestLimits, build_app};
use crate::config::Cli;
use crate::http::auth::ApiKeys;
use crate::http::rate_limit::RateLimits;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `BOOKSTORE_API_KEYS` could not be read.
    #[error("invalid API keys (--api-keys or BOOKSTORE_API_KEYS): {0}")]
    ApiKeys(#[from] crate::http::auth::ApiKeysError),
    /// A database URL this version cannot use.
    #[error(
        "unsupported --database-url {0:?}: this version keeps data in memory only (use `memory`)"
    )]
    UnsupportedDatabase(String),
    /// The demo catalogue could not be loaded.
    #[error("could not load the demo catalogue: {0}")]
    Seed(#[from] bookstore_inventory::InventoryError),
    /// The address could not be bound.
    #[error("could not listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The cause.
        source: io::Error,
    },
    /// The server stopped with an error.
    #[error("the server failed: {0}")]
    Serve(#[source] io::Error),
}

/// How often expired idempotency records are deleted.
const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// How often histograms are compacted and idle rate-limit keys forgotten.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(10);

/// How often interrupted orders are looked for.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// Settles order attempts older than `grace`; failures are logged and retried next time.
async fn run_recovery(state: &AppState, grace: chrono::Duration) {
    let cutoff = chrono::Utc::now() - grace;
    if let Err(error) = crate::workflow::recover_interrupted_orders(state, cutoff).await {
        tracing::warn!(error = %error, "could not look for interrupted orders; will retry");
    }
}

/// Builds the application state from the configuration.
pub fn state_from(cli: &Cli) -> Result<AppState, StartError> {
    let api_keys = match cli.api_keys.as_deref() {
        Some(list) => ApiKeys::parse(list)?,
        None => ApiKeys::demo(),
    };
    if cli.database_url != "memory" {
        return Err(StartError::UnsupportedDatabase(cli.database_url.clone()));
    }
    let mut state = AppState::in_memory(api_keys);
    if !cli.no_seed {
        state.catalogue = Arc::new(InMemoryCatalogue::with_books(demo_catalogue())?);
    }
    state.request_limits = RequestLimits {
        body_bytes: cli.body_limit_bytes,
        max_url_bytes: cli.max_url_bytes,
        max_header_bytes: cli.max_header_bytes,
    };
    state.rate_limits = RateLimits::new(cli.rate_limit_per_second, cli.rate_limit_burst);
    Ok(state)
}

/// Serves the API until the process is stopped.
pub async fn serve(cli: Cli) -> Result<(), StartError> {
    let state = web::Data::new(state_from(&cli)?);
    if state.api_keys.is_demo() {
        tracing::warn!(
            "DEMO MODE: the public demo API keys are active. Anyone can call this server as customer or admin. \
             Set BOOKSTORE_API_KEYS (e.g. \"KEY:customer,KEY:admin\") before exposing it."
        );
    }
    let purge_state = state.clone();
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(IDEMPOTENCY_PURGE_INTERVAL);
        loop {
            interval.tick().await;
            match purge_state
                .idempotency
                .purge_expired(chrono::Utc::now())
                .await
            {
                Ok(purged) => tracing::debug!(purged, "purged expired idempotency records"),
                Err(error) => tracing::warn!(error = %error, "could not purge idempotency records"),
            }
        }
    });

    // Settle orders a previous process left half-done, then keep doing so every minute.
    let recovery_state = state.clone();
    let grace =
        chrono::Duration::seconds(i64::try_from(cli.recovery_grace_seconds).unwrap_or(i64::MAX));
    run_recovery(&recovery_state, grace).await;
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(RECOVERY_INTERVAL);
        interval.tick().await;
        loop {
            interval.tick().await;
            run_recovery(&recovery_state, grace).await;
        }
    });

    let upkeep_state = state.clone();
    let metrics_handle = crate::metrics::install();
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(UPKEEP_INTERVAL);
        loop {
            interval.tick().await;
            metrics_handle.run_upkeep();
            if let Some(rate_limits) = &upkeep_state.rate_limits {
                rate_limits.forget_idle_keys();
            }
        }
    });

    let address = (cli.host, cli.port);
    let app_state = state.clone();
    let keep_alive = match cli.keep_alive_seconds {
        0 => KeepAlive::Disabled,
        seconds => KeepAlive::Timeout(Duration::from_secs(seconds)),
    };
    let mut server = HttpServer::new(move || build_app(app_state.clone()))
        .client_request_timeout(Duration::from_millis(cli.client_request_timeout_ms))
        .keep_alive(keep_alive)
        .max_connections(cli.max_connections)
        .shutdown_timeout(cli.shutdown_timeout_seconds);
    if let Some(workers) = cli.workers {
        server = server.workers(workers);
    }
    let server = server.bind(address).map_err(|source| StartError::Bind {
        address: format!("{}:{}", cli.host, cli.port),
        source,
    })?;
    tracing::info!(
        address = %format!("http://{}:{}", cli.host, cli.port),
        docs = %format!("http://{}:{}/docs", cli.host, cli.port),
        store = %cli.database_url,
        "bookstore is listening"
    );
    // actix-web stops accepting on SIGTERM/SIGINT and lets in-flight requests finish
    // within the shutdown timeout before `run` returns.
    server.run().await.map_err(StartError::Serve)?;
    tracing::info!("bookstore stopped: in-flight requests finished");
    Ok(())
}
