//! Durable stores for the bookstore: SQLite (the default, one instance) and PostgreSQL (for
//! several instances sharing one database), with the same behaviour as the in-memory stores
//! of the domain crates.
//!
//! # Why a separate crate
//!
//! The domain crates (`bookstore-inventory`, `bookstore-sales`, `bookstore-delivery`) are API
//! boundaries for other teams. A team that imports one of them must be able to build it
//! without compiling any SQL driver (sqlx, libsqlite3, a TLS stack), so the SQL
//! implementations of their store traits live here, in a crate only the application (the
//! gateway) depends on.
//!
//! # Use
//!
//! [`connect`] opens a [`Database`] from a URL (`sqlite://PATH` or `postgres://...`),
//! [`migrate`] brings its schema up to date (the migrations are compiled in), and each store
//! wraps a clone of it:
//!
//! | store | implements |
//! |---|---|
//! | [`SqlCatalogue`] | [`bookstore_inventory::CatalogueStore`] |
//! | [`SqlOrderStore`] | [`bookstore_sales::OrderStore`] |
//! | [`SqlDeliveryStore`] | [`bookstore_delivery::DeliveryStore`] |
//! | [`SqlPaymentGateway`] | [`bookstore_sales::PaymentGateway`] (the simulated processor, its ledger in the database) |
//! | [`SqlIdempotencyStore`] | inherent methods mirroring the gateway's idempotency store |
//!
//! # Design
//!
//! - Runtime queries only (`sqlx::query`): nothing needs a database at compile time. Each
//!   backend keeps its own SQL and its own migration folder (`migrations/sqlite`,
//!   `migrations/postgres`); the Rust that runs the queries is written once (the `shared`
//!   module's macros, expanded in each backend module).
//! - Every store call is one statement or one transaction, and placing an order costs few:
//!   reserving is one transaction (journal row + conditional stock updates), capturing,
//!   recording the order and confirming the reservation are one statement each. Stock is
//!   taken with conditional updates (`stock >= n`), never read-then-write, inside the
//!   transaction that also writes the reservation journal.
//! - An order's lines are an immutable record always read whole, so they are kept as JSON in
//!   the order's row: one row per order, no join, no N+1.
//! - Filters compare keys that Rust computes ([`bookstore_inventory::author_filter_key`],
//!   [`bookstore_inventory::text_filter_key`]) and stores beside each book, so listing filters
//!   behave exactly as the in-memory store's, whatever the database's case folding.
//! - A connection or I/O failure becomes each domain's `Unavailable` error; constraint
//!   conflicts become the precise domain error (`AlreadyExists`, `AlreadyScheduled`, ...).
//!
//! What each backend does differently is described in [`Database`].

mod codec;
mod database;
mod error;
mod failure;
pub mod idempotency;
mod instances;
mod migrations;
mod postgres;
mod shared;
mod sql;
mod sqlite;

pub use database::{BackendKind, ConnectOptions, Database, Stores, connect, migrate};
pub use error::StorageError;
pub use instances::{InstanceId, LeaseRenewal};
