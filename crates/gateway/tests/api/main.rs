//! The HTTP API tests of the bookstore gateway: every clause of `API.md`, checked against the
//! real application with fresh in-memory stores per test (see `helpers`).
//!
//! Most tests answer requests in process; `concurrency` and a few body-size tests run a real
//! server and real parallel clients.

mod auth;
mod books;
mod concurrency;
mod deliveries;
mod errors;
mod headers;
mod health;
mod helpers;
mod idempotency;
mod logs;
mod openapi;
mod orders;
