//! Operational behaviour of the `bookstore` server: metrics, logs, rate limits (local and
//! shared through Redis), request limits, graceful shutdown and the operations guide.
//!
//! Tests that need a whole process (signals, captured logs, a fresh metrics registry) start
//! the real `bookstore` binary on a free port; the others run the app in-process.

mod flags;
mod helpers;
mod limits;
mod logs;
mod metrics;
mod operations_doc;
mod rate_limits;
mod shared_rate_limits;
mod shutdown;
