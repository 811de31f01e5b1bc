//! The Bookstore HTTP API: an actix-web application that composes the inventory, sales and
//! delivery domains.
//!
//! - [`app`] builds the application (used by `main`, the tests and the spec export);
//! - [`routes`] holds the thin handlers, [`workflow`] the steps that span domains;
//! - [`wire`] the JSON bodies, [`http`] errors, auth, extraction and middleware;
//! - [`idempotency`] makes POSTs safe to retry;
//! - [`events`] runs the event log's background work (numbering, retention, relays to the
//!   events counter and NATS JetStream);
//! - [`role`] says what an API key may do;
//! - [`webhooks`] delivers the events to the endpoints admins register;
//! - [`config`] and [`server`] run the `bookstore` binary; [`probe`] is its health check.

pub mod app;
pub mod config;
pub mod docs_ui;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod probe;
pub mod role;
pub mod routes;
pub mod server;
pub mod stores;
pub mod webhooks;
pub mod wire;
pub mod workflow;
