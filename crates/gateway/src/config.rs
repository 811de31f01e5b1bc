//! Command-line and environment configuration of the `bookstore` binary.
//!
//! Every flag can also be set through the environment variable named in `--help`.

use std::net::IpAddr;

use clap::{Parser, Subcommand, ValueEnum};

use crate::http::extract::DEFAULT_BODY_LIMIT_BYTES;

/// The Bookstore API server.
#[derive(Debug, Clone, Parser)]
#[command(name = "bookstore", version, about, long_about = None)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on.
    #[arg(long, env = "BOOKSTORE_HOST", default_value = "127.0.0.1", global = true)]
    pub host: IpAddr,

    /// Port to listen on.
    #[arg(long, env = "BOOKSTORE_PORT", default_value_t = 5001, global = true)]
    pub port: u16,

    /// Where data is kept. Only `memory` (lost on restart) is available in this version.
    #[arg(long, env = "DATABASE_URL", default_value = "memory", global = true)]
    pub database_url: String,

    /// Start with an empty catalogue instead of the demo books.
    #[arg(long, env = "BOOKSTORE_NO_SEED", global = true)]
    pub no_seed: bool,

    /// API keys and roles, e.g. `key1:customer,key2:admin`. When unset, the demo keys
    /// `secret123` (customer) and `admin123` (admin) are active and a warning is logged.
    #[arg(long, env = "BOOKSTORE_API_KEYS", hide_env_values = true, global = true)]
    pub api_keys: Option<String>,

    /// Log format.
    #[arg(long, env = "BOOKSTORE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Largest request body accepted, in bytes (larger bodies get 413).
    #[arg(long, env = "BOOKSTORE_BODY_LIMIT_BYTES", default_value_t = DEFAULT_BODY_LIMIT_BYTES, global = true)]
    pub body_limit_bytes: usize,

    /// Worker threads serving requests (default: one per CPU core).
    #[arg(long, env = "BOOKSTORE_WORKERS", global = true)]
    pub workers: Option<usize>,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print the OpenAPI document to standard output and exit.
    Openapi,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_serve_on_localhost_port_5001_from_memory() {
        let cli = Cli::try_parse_from(["bookstore"]).unwrap();
        assert_eq!(cli.host.to_string(), "127.0.0.1");
        assert_eq!(cli.port, 5001);
        assert_eq!(cli.database_url, "memory");
        assert!(!cli.no_seed);
        assert!(cli.command.is_none());
    }
}
