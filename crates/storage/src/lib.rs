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
//! [`migrate`] brings its schema up to date (the migrations are compiled in), and
//! [`Database::stores`] gives its [`Stores`], each a trait object of a domain trait:
//!
//! | field of [`Stores`] | trait | SQLite | PostgreSQL |
//! |---|---|---|---|
//! | `catalogue` | [`bookstore_inventory::CatalogueStore`] | `SqliteCatalogue` | `PgCatalogue` |
//! | `orders` | [`bookstore_sales::OrderStore`] | `SqliteOrderStore` | `PgOrderStore` |
//! | `deliveries` | [`bookstore_delivery::DeliveryStore`] | `SqliteDeliveryStore` | `PgDeliveryStore` |
//! | `payments` | [`bookstore_sales::PaymentGateway`] (the simulated processor, its ledger in the database) | `SqlitePaymentGateway` | `PgPaymentGateway` |
//! | `idempotency` | [`idempotency::IdempotencyStore`] | `SqliteIdempotencyStore` | `PgIdempotencyStore` |
//! | `events` | [`events::EventLog`] | `SqliteEventLog` | `PgEventLog` |
//! | `webhooks` | [`events::WebhookStore`] | `SqliteWebhookStore` | `PgWebhookStore` |
//!
//! [`idempotency`] also holds the idempotency records' types and the in-memory store
//! ([`idempotency::InMemoryIdempotencyStore`]): idempotency has no domain crate, so this
//! crate is its one home.
//!
//! # Layout
//!
//! - `sqlite/`: rusqlite through the engine (`sqlite/engine.rs`): one writer thread that
//!   commits the write jobs queued together in one transaction (group commit), reads on
//!   reader connections on the caller's thread. Each store method is one write job or one
//!   read.
//! - `postgres/`: sqlx with a connection pool.
//! - `sql/`: the SQL both backends run as one text (deliveries, payments, idempotency);
//!   each backend's module keeps only the statements that differ (the catalogue, orders,
//!   instances).
//! - `codec.rs` (domain values to and from columns) and `failure.rs` (errors to each
//!   domain's `Unavailable`) touch no connection and serve both backends.
//!
//! # Design
//!
//! - Runtime SQL only: nothing needs a database at compile time. Each backend has its own
//!   migration folder (`migrations/sqlite`, `migrations/postgres`).
//! - Every store call is one statement, one transaction or (SQLite) one write job, and
//!   placing an order costs few: reserving is one transaction (journal row + conditional
//!   stock updates), capturing, recording the order and confirming the reservation are one
//!   statement each. Stock is taken with conditional updates (`stock >= n`), never
//!   read-then-write, together with the reservation's journal row.
//! - Every change records its events ([`events`]) in that same statement, transaction or
//!   write job, never after it: on PostgreSQL placing an order, capturing and adding a book
//!   stay one statement (the event in CTEs); changes whose event data is known only once
//!   made record it with one more statement in their transaction. The stock updates'
//!   `RETURNING` says whether a reservation or a give-back took a stock to or from 0, so no
//!   extra read decides `book.out_of_stock` / `book.back_in_stock`.
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
pub mod events;
mod failure;
pub mod idempotency;
mod instances;
pub mod memory;
mod migrations;
mod postgres;
mod sql;
mod sqlite;

pub use database::{BackendKind, ConnectOptions, Database, Stores, connect, migrate};
pub use error::StorageError;
pub use instances::{InstanceId, LeaseRenewal};
