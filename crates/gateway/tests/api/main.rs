//! The HTTP API tests of the bookstore gateway: the contract of `docs/openapi.json` and
//! every problem of `docs/API-ERRORS.md`, checked against the real application with a fresh
//! database per test (see `helpers`).
//!
//! One suite for every store: `BOOKSTORE_TEST_STORE` picks it, `memory` (the default),
//! `sqlite` or `postgres` (with `BOOKSTORE_TEST_POSTGRES_URL`); see `test_store`.
//!
//! Most tests answer requests in process; `concurrency` and a few body-size tests run a real
//! server and real parallel clients.

mod auth;
mod books;
mod client;
mod concurrency;
mod deliveries;
mod errors;
mod event_types;
mod events;
mod fulfilment;
mod headers;
mod health;
mod helpers;
mod idempotency;
mod logs;
mod openapi;
mod openapi_model;
mod orders;
#[path = "../support/postgres.rs"]
mod postgres_support;
mod test_store;
