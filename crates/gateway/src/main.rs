//! The `bookstore` binary: serves the API, prints its OpenAPI document, migrates the
//! database, or probes a running server's readiness.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use bookstore_gateway::config::{Cli, Command, LogFormat};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// An error and its causes on one line: "cannot open …: cannot connect …: Connection refused".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => match bookstore_gateway::openapi::document_text().await {
            Ok(text) => match std::io::stdout().write_all(text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("bookstore: could not write the OpenAPI document: {error}");
                    ExitCode::FAILURE
                }
            },
            Err(error) => {
                eprintln!("bookstore: could not produce the OpenAPI document: {error}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Probe) => {
            let address = bookstore_gateway::probe::probe_address(cli.host, cli.port);
            match bookstore_gateway::probe::check_ready(address) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("bookstore: not ready: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Migrate) => {
            init_tracing(cli.log_format);
            match bookstore_gateway::server::migrate(&cli).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("bookstore: {}", error_chain(&error));
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Serve) | None => {
            init_tracing(cli.log_format);
            match bookstore_gateway::server::serve(cli).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("bookstore: {}", error_chain(&error));
                    ExitCode::FAILURE
                }
            }
        }
    }
}
