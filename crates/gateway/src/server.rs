//! Running the server: [`Application::build`] turns the settings into the application
//! (stores opened, state assembled), used by `main` and by the tests;
//! [`Application::run_until_stopped`] serves it, with the background work (lease renewal,
//! recovery, purges) and the graceful shutdown.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::http::KeepAlive;
use actix_web::{HttpServer, web};
use bookstore_storage::{Database, InstanceId, LeaseRenewal};
use secrecy::ExposeSecret;

use crate::app::{AppState, RequestLimits, build_app};
use crate::config::Cli;
use crate::events;
use crate::http::auth::ApiKeys;
use crate::http::rate_limit::RateLimits;
use crate::stores::{self, DatabaseOptions, OpenError, OpenedStores};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `BOOKSTORE_API_KEYS` could not be read.
    #[error("invalid API keys (--api-keys or BOOKSTORE_API_KEYS): {0}")]
    ApiKeys(#[from] crate::http::auth::ApiKeysError),
    /// The stores could not be opened (database unreachable, migrations failed, …).
    #[error("cannot open the database {url}: {source}")]
    Stores {
        /// The database URL, without its password.
        url: String,
        /// The cause.
        source: OpenError,
    },
    /// `--rate-limit-redis-url` is not a Redis URL.
    #[error(transparent)]
    RateLimitRedis(#[from] crate::http::rate_limit::RedisUrlError),
    /// The address could not be bound.
    #[error("could not listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The cause.
        source: io::Error,
    },
    /// The webhook client could not be built (its TLS configuration).
    #[error("cannot start webhook delivery: {0}")]
    Webhooks(String),
    /// `--events-nats-url` is not a NATS URL.
    #[error("cannot use the NATS server {url}: {source}")]
    Nats {
        /// The URL, without its password.
        url: String,
        /// The cause.
        source: async_nats::ConnectError,
    },
    /// The server stopped with an error.
    #[error("the server failed: {0}")]
    Serve(#[source] io::Error),
}

/// How long the event tasks get at shutdown to finish their step and give their claims up.
const EVENT_TASKS_GRACE: Duration = Duration::from_secs(10);

/// How often expired idempotency records are deleted.
const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// How often overdue deliveries are counted for the metric.
const OVERDUE_INTERVAL: Duration = Duration::from_secs(60);

/// How often histograms are compacted and idle rate-limit keys forgotten.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Settles the order attempts of stopped processes (whose leases have expired) and those
/// older than `grace`; returns whether it could. Failures are logged and retried next time.
async fn run_recovery(
    state: &AppState,
    database: Option<&Database>,
    grace: chrono::Duration,
) -> bool {
    if let Some(database) = database
        && let Err(error) = database.reap_expired_leases().await
    {
        tracing::warn!(error = %error, "could not look for expired instance leases; will retry");
        return false;
    }
    let cutoff = chrono::Utc::now() - grace;
    match crate::workflow::recover_interrupted_orders(state, cutoff).await {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(error = %error, "could not look for interrupted orders; will retry");
            false
        }
    }
}

/// Start-up recovery: done once a recovery run has settled the work of every instance that
/// was registered when this one started and has stopped since, and every other such
/// instance has shown it is alive by renewing its lease. On SQLite there are none (the file
/// serves one process, and opening it marked every earlier process stopped); on PostgreSQL
/// an instance killed just before this one started is settled when its lease expires, so a
/// restart is ready within one lease of the crash, and never while the killed process's
/// attempts still hold stock.
#[derive(Default)]
struct StartUpRecovery {
    /// The other instances and their lease expiries when this one started, less those known
    /// alive or settled since; `None` until a first snapshot has been read.
    waiting_for: Option<HashMap<InstanceId, chrono::DateTime<chrono::Utc>>>,
}

impl StartUpRecovery {
    /// Runs recovery once; returns whether start-up recovery is done.
    async fn run(
        &mut self,
        state: &AppState,
        database: Option<&Database>,
        grace: chrono::Duration,
    ) -> bool {
        // Read before recovering: an instance gone by now has its work settled by this run.
        let seen = match database {
            Some(database) => match database.other_instances().await {
                Ok(seen) => Some(seen),
                Err(error) => {
                    tracing::warn!(error = %error, "could not read the other instances' leases; will retry");
                    return false;
                }
            },
            None => None,
        };
        if !run_recovery(state, database, grace).await {
            return false;
        }
        let Some(seen) = seen else {
            return true;
        };
        let waiting_for = self.waiting_for.get_or_insert_with(|| seen.clone());
        waiting_for.retain(|instance, expires_at| {
            seen.get(instance)
                .is_some_and(|renewed_until| renewed_until <= expires_at)
        });
        if !waiting_for.is_empty() {
            tracing::info!(
                instances = waiting_for.len(),
                "waiting for earlier instances to renew their leases or let them expire before reporting ready"
            );
        }
        waiting_for.is_empty()
    }
}

/// Renews this process's lease every fifth of its length. A lease found taken over (this
/// process stalled past it, and another instance settled its work) ends the process: its
/// in-flight orders can no longer be recorded, and a fresh start gets a fresh lease.
async fn renew_lease_forever(database: Database, lease: Duration) {
    let mut interval = actix_web::rt::time::interval(lease / 5);
    interval.tick().await;
    loop {
        interval.tick().await;
        match database.renew_lease(lease).await {
            Ok(LeaseRenewal::Renewed) => {}
            Ok(LeaseRenewal::Lost) => {
                tracing::error!(
                    instance = %database.instance(),
                    "this instance's lease expired and another instance settled its work; stopping"
                );
                std::process::exit(1);
            }
            Err(error) => {
                tracing::warn!(error = %error, "could not renew this instance's lease; will retry");
            }
        }
    }
}

/// The database options the configuration asks for.
pub fn database_options(cli: &Cli) -> DatabaseOptions {
    DatabaseOptions {
        connect: bookstore_storage::ConnectOptions {
            max_connections: cli.database_max_connections,
            connect_timeout: Duration::from_secs(cli.database_connect_timeout_seconds),
        },
        instance_lease: Duration::from_secs(cli.instance_lease_seconds),
    }
}

pub use crate::config::redacted_url;

/// The application the settings describe: its stores opened and its state assembled,
/// ready to serve.
pub struct Application {
    settings: Cli,
    state: AppState,
    database: Option<Database>,
}

impl Application {
    /// Opens the stores the settings name and assembles the application state from the
    /// settings: the one place that does, for `main` and for the tests.
    pub async fn build(settings: Cli) -> Result<Self, StartError> {
        let api_keys = match &settings.api_keys {
            Some(list) => ApiKeys::parse(list.expose_secret())?,
            None => ApiKeys::demo(),
        };
        let database_url = settings.database_url.expose_secret();
        let OpenedStores { state, database } = stores::open(
            database_url,
            &database_options(&settings),
            api_keys,
            settings.seed(),
        )
        .await
        .map_err(|source| StartError::Stores {
            url: redacted_url(database_url),
            source,
        })?;
        let rate_limits =
            RateLimits::new(settings.rate_limit_per_second, settings.rate_limit_burst);
        let rate_limits = match (rate_limits, &settings.rate_limit_redis_url) {
            (Some(limits), Some(url)) => {
                let timeout = Duration::from_millis(settings.rate_limit_redis_timeout_ms);
                tracing::info!(redis = %url, "rate limits are shared through Redis");
                Some(limits.shared_through(url, timeout)?)
            }
            (limits, _) => limits,
        };
        let state = AppState {
            request_limits: RequestLimits {
                body_bytes: settings.body_limit_bytes,
                max_url_bytes: settings.max_url_bytes,
                max_header_bytes: settings.max_header_bytes,
            },
            rate_limits,
            delivery_policy: settings.delivery_policy(),
            webhook_settings: settings.webhook_settings(),
            ..state
        };
        Ok(Self {
            settings,
            state,
            database,
        })
    }

    /// The application state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The application state, for a test that serves it in process; the stores stay open
    /// as long as it lives.
    pub fn into_state(self) -> AppState {
        self.state
    }

    /// Serves the API until the process is stopped.
    pub async fn run_until_stopped(self) -> Result<(), StartError> {
        let Self {
            settings: cli,
            state,
            database,
        } = self;
        let state = web::Data::new(state);
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
                    Err(error) => {
                        tracing::warn!(error = %error, "could not purge idempotency records")
                    }
                }
            }
        });

        // The stores registered this instance with a lease. Settle what stopped processes left
        // half-done (on SQLite: everything a previous process left), and only then report
        // ready. Keep renewing the lease, and keep settling the work of instances whose lease
        // expires, every fifth of the lease.
        let lease = Duration::from_secs(cli.instance_lease_seconds);
        let lease_renewal = database
            .as_ref()
            .map(|database| actix_web::rt::spawn(renew_lease_forever(database.clone(), lease)));
        let recovery_state = state.clone();
        let recovery_database = database.clone();
        let grace = chrono::Duration::seconds(
            i64::try_from(cli.recovery_grace_seconds).unwrap_or(i64::MAX),
        );
        state.recovered.store(false, Ordering::Release);
        let mut start_up = StartUpRecovery::default();
        if start_up
            .run(&recovery_state, recovery_database.as_ref(), grace)
            .await
        {
            state.recovered.store(true, Ordering::Release);
        }
        actix_web::rt::spawn(async move {
            let mut interval = actix_web::rt::time::interval(lease / 5);
            interval.tick().await;
            loop {
                interval.tick().await;
                if recovery_state.recovered.load(Ordering::Acquire) {
                    run_recovery(&recovery_state, recovery_database.as_ref(), grace).await;
                } else if start_up
                    .run(&recovery_state, recovery_database.as_ref(), grace)
                    .await
                {
                    tracing::info!("start-up recovery finished: ready");
                    recovery_state.recovered.store(true, Ordering::Release);
                }
            }
        });

        // Count overdue deliveries for the metric, every minute.
        let overdue_state = state.clone();
        actix_web::rt::spawn(async move {
            let mut interval = actix_web::rt::time::interval(OVERDUE_INTERVAL);
            loop {
                interval.tick().await;
                match overdue_state
                    .deliveries
                    .count_overdue(chrono::Utc::now())
                    .await
                {
                    Ok(count) => crate::metrics::set_overdue_deliveries(count),
                    Err(error) => {
                        tracing::warn!(error = %error, "could not count overdue deliveries")
                    }
                }
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

        // Deliver the events to the webhook endpoints, until the server has stopped.
        let webhooks = crate::webhooks::spawn(
            Arc::clone(&state.events),
            Arc::clone(&state.webhooks),
            state.webhook_settings.clone(),
        )
        .map_err(|error| StartError::Webhooks(error.to_string()))?;
        // The event log's background work: numbering (PostgreSQL), retention, the events
        // counter and, when configured, the NATS publisher; stopped after the server.
        let holder = database
            .as_ref()
            .map_or_else(uuid::Uuid::now_v7, |database| database.instance().as_uuid());
        let retention = Duration::from_secs(cli.event_retention_days * 24 * 60 * 60);
        // A relay's claim lasts as long as the instance's lease: a killed instance's relays
        // move to another within about that.
        let relay = events::RelaySettings {
            lease,
            ..events::RelaySettings::default()
        };
        let mut event_tasks = events::BackgroundTasks::new();
        event_tasks.spawn(|stop| events::sequence_forever(state.events.clone(), stop));
        event_tasks.spawn(|stop| {
            events::purge_forever(
                state.events.clone(),
                state.webhooks.clone(),
                retention,
                stop,
            )
        });
        event_tasks.spawn(|stop| {
            events::relay_forever(
                Arc::new(events::EventCounter),
                state.events.clone(),
                state.relays.clone(),
                holder,
                relay,
                stop,
            )
        });
        if let Some(url) = &cli.events_nats_url {
            let target = events::nats::NatsTarget {
                stream: cli.events_nats_stream.clone(),
                subject_prefix: cli.events_nats_subject_prefix.clone(),
            };
            let publisher = events::nats::NatsPublisher::connect(url.expose_secret(), target)
                .await
                .map_err(|source| StartError::Nats {
                    url: redacted_url(url.expose_secret()),
                    source,
                })?;
            tracing::info!(nats = %redacted_url(url.expose_secret()), stream = %cli.events_nats_stream, "events are published to NATS JetStream");
            event_tasks.spawn(|stop| {
                events::relay_forever(
                    Arc::new(publisher),
                    state.events.clone(),
                    state.relays.clone(),
                    holder,
                    relay,
                    stop,
                )
            });
        }

        let address = (cli.host, cli.port);
        let app_state = state.clone();
        let keep_alive = match cli.keep_alive_seconds {
            0 => KeepAlive::Disabled,
            seconds => KeepAlive::Timeout(Duration::from_secs(seconds)),
        };
        let stop_signal = drain_on_signal(
            state.draining.clone(),
            Duration::from_secs(cli.shutdown_drain_seconds),
        );
        let mut server = HttpServer::new(move || build_app(app_state.clone()))
            .shutdown_signal(stop_signal)
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
            store = %redacted_url(cli.database_url.expose_secret()),
            "bookstore is listening"
        );
        // After SIGTERM/SIGINT and the drain, actix-web stops accepting and lets in-flight
        // requests finish within the shutdown timeout before `run` returns.
        let served = server.run().await.map_err(StartError::Serve);
        // Let the deliveries being sent finish and be recorded before the stores close.
        let (stop_webhooks, dispatcher) = webhooks;
        let _ = stop_webhooks.send(true);
        if let Err(error) = dispatcher.await {
            tracing::warn!(error = %error, "the webhook dispatcher stopped abnormally");
        }
        // Relays record their progress and give their claims up before the database closes.
        event_tasks.stop(EVENT_TASKS_GRACE).await;
        served?;
        // Stop renewing before giving the lease up: a renewal that found the row gone would
        // take this clean stop for a lost lease and exit with an error.
        if let Some(renewal) = lease_renewal {
            renewal.abort();
        }
        if let Some(database) = database {
            // Every request has finished: nothing of this instance is left to settle, and
            // another instance need not wait for the lease to run out.
            if let Err(error) = database.deregister_instance().await {
                tracing::warn!(error = %error, "could not give up this instance's lease; it will expire");
            }
            database.close().await;
        }
        tracing::info!("bookstore stopped: in-flight requests finished, stores closed");
        Ok(())
    }
}

/// Serves the API the settings describe until the process is stopped.
pub async fn serve(settings: Cli) -> Result<(), StartError> {
    Application::build(settings)
        .await?
        .run_until_stopped()
        .await
}

/// Resolves when the server should close its listener: at SIGTERM or SIGINT, once
/// `/health/ready` has answered 503 (through `draining`) for `drain` while requests are still
/// served, or at a second signal. Then the server finishes the requests in flight.
async fn drain_on_signal(draining: Arc<AtomicBool>, drain: Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut terminate, mut interrupt) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(error = %error, "cannot listen for SIGTERM and SIGINT");
            return std::future::pending().await;
        }
    };
    let received = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    draining.store(true, Ordering::Relaxed);
    if !drain.is_zero() {
        tracing::info!(
            signal = received,
            drain_seconds = drain.as_secs(),
            "stopping: /health/ready answers 503; still serving until the drain ends"
        );
        tokio::select! {
            () = tokio::time::sleep(drain) => {}
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    }
    tracing::info!(
        signal = received,
        "stopping: the listener closes; requests in flight may finish"
    );
}

/// `bookstore migrate`: applies the migrations to the configured database and exits.
pub async fn migrate(cli: &Cli) -> Result<(), StartError> {
    let database_url = cli.database_url.expose_secret();
    if database_url == stores::MEMORY_URL {
        return Ok(());
    }
    let database = stores::connect_and_migrate(database_url, &database_options(cli))
        .await
        .map_err(|source| StartError::Stores {
            url: redacted_url(database_url),
            source: source.into(),
        })?;
    database.close().await;
    Ok(())
}
