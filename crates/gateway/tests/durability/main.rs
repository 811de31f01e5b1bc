//! Durability of the `bookstore` server on a real database: what survives a graceful
//! restart and a `kill -9` (also of the events published to NATS JetStream), two instances sharing one PostgreSQL database (and restarted one
//! at a time under load), and a database that cannot be reached or goes away while the
//! server runs.
//!
//! Every test starts the real `bookstore` binary (through the operations tests' `Server`
//! helper) on a database of its own, and inspects that database afterwards through the
//! HTTP API and, where the API cannot tell, through `bookstore-storage` directly.
//!
//! A test that makes sense on both SQL backends is written once, as an
//! `async fn(Backend)`, and `harness::per_backend!` declares one test per backend
//! (`<module>::sqlite::<check>` and `<module>::postgres::<check>`). Every test that needs
//! PostgreSQL is `#[ignore]`d with the reason (`per_backend!` adds it to the `postgres`
//! ones; a test of its own carries it), so `cargo test` reports it as ignored rather than
//! passed. `cargo xtask test` runs them when a server answers; by hand,
//! `cargo test --test durability -- --include-ignored` runs them on the server
//! `BOOKSTORE_TEST_POSTGRES_URL` names, else on `127.0.0.1:5432`, and they fail if none
//! answers. Each creates a database with a random name and drops it afterwards.

#[path = "../operations/helpers.rs"]
#[allow(
    dead_code,
    reason = "shared with the operations tests; this binary uses only part of it"
)]
mod helpers;

mod harness;
#[path = "../support/postgres.rs"]
mod postgres_support;

mod capacity;
mod crash;
mod database_failures;
mod leases;
mod nats;
mod receiver;
mod restart;
mod rolling_restart;
mod two_instances;
#[path = "../support/webhook_receiver.rs"]
#[allow(
    dead_code,
    reason = "shared with the webhook tests; this binary uses only part of it"
)]
mod webhook_receiver;
