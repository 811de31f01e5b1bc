//! HTTP plumbing shared by all routes: errors as problems, authentication, extraction,
//! typed replies and the middleware around every request.

pub mod auth;
pub mod domain_errors;
pub mod extract;
pub mod idempotent;
pub mod middleware;
pub mod problem;
pub mod rate_limit;
pub mod reply;
