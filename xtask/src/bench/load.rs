//! Driving load with `oha`: one [`Workload`] at a time, or the 90/10 read/write mix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::server::{CUSTOMER_KEY, Catalogue, Running};
use super::{Row, workspace_target};
use crate::cargo;

/// One kind of traffic driven at a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Workload {
    /// `GET /api/books/{isbn}` with a random seeded ISBN.
    GetBook,
    /// `GET /api/books?limit=20`.
    ListFirstPage,
    /// `GET /api/books?limit=20&cursor=…` 90 % of the way through the catalogue.
    ListDeepPage,
    /// `POST /api/orders`: one copy of one book, paid with `tok_visa`.
    PlaceOrder,
}

impl Workload {
    pub(super) const ALL: [Workload; 4] = [
        Workload::GetBook,
        Workload::ListFirstPage,
        Workload::ListDeepPage,
        Workload::PlaceOrder,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Workload::GetBook => "GET /api/books/{isbn}",
            Workload::ListFirstPage => "GET /api/books?limit=20",
            Workload::ListDeepPage => "GET /api/books?limit=20&cursor=(90%)",
            Workload::PlaceOrder => "POST /api/orders",
        }
    }

    fn expected_status(self) -> &'static str {
        match self {
            Workload::PlaceOrder => "201",
            _ => "200",
        }
    }
}

/// How hard to drive a server.
#[derive(Debug, Clone, Copy)]
pub(super) struct Load {
    pub(super) duration_seconds: u64,
    pub(super) connections: u64,
}

/// The share of requests that are reads in the mix.
pub(super) const MIX_READ_SHARE: f64 = 0.9;

/// `oha` on `PATH`, else in `target/tools/bin`, installed there on first use.
pub(super) fn oha_binary() -> Result<PathBuf, String> {
    let works = |program: &Path| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if works(Path::new("oha")) {
        return Ok(PathBuf::from("oha"));
    }
    let root = workspace_target().join("tools");
    let installed = root.join("bin").join("oha");
    if !works(&installed) {
        println!(
            "bench: oha is not on PATH; installing it into target/tools with \
             `cargo install oha --locked` (this takes several minutes the first time)"
        );
        let root_arg = root.display().to_string();
        let status = cargo(&["install", "oha", "--locked", "--root", &root_arg])
            .status()
            .map_err(|e| format!("running cargo install oha: {e}"))?;
        if !status.success() || !works(&installed) {
            return Err(format!("cargo install oha failed ({status})"));
        }
    }
    Ok(installed)
}

/// The oha command for `workload` against `server`, without its load settings.
fn oha_command(
    oha: &Path,
    server: &Running,
    catalogue: Catalogue,
    workload: Workload,
    urls_file: &Path,
) -> Command {
    let base = server.base_url();
    let mut command = Command::new(oha);
    command
        .args(["--no-tui", "--output-format", "json"])
        .args(["-H", &format!("X-API-Key: {CUSTOMER_KEY}")]);
    match workload {
        Workload::GetBook => {
            command.arg("--urls-from-file").arg(urls_file);
        }
        Workload::ListFirstPage => {
            command.arg(format!("{base}/api/books?limit=20"));
        }
        Workload::ListDeepPage => {
            command.arg(format!(
                "{base}/api/books?limit=20&cursor={}",
                catalogue.deep_cursor()
            ));
        }
        Workload::PlaceOrder => {
            let body = format!(
                r#"{{"items":[{{"isbn":"{}","quantity":1}}],"payment":{{"token":"tok_visa"}}}}"#,
                catalogue.order_isbn()
            );
            command
                .args(["-m", "POST", "-T", "application/json", "-d", &body])
                .arg(format!("{base}/api/orders"));
        }
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    command
}

/// Runs one workload for the whole duration with every connection: as fast as the server
/// answers (`rate` `None`), or at `rate` requests per second.
pub(super) fn drive(
    oha: &Path,
    load: Load,
    server: &Running,
    catalogue: Catalogue,
    workload: Workload,
    urls_file: &Path,
    rate: Option<f64>,
) -> Result<Row, String> {
    match rate {
        None => println!("bench: {} against {}", workload.name(), server.name),
        Some(rate) => println!(
            "bench: {} against {} at {rate:.0} requests/s",
            workload.name(),
            server.name
        ),
    }
    let mut command = oha_command(oha, server, catalogue, workload, urls_file);
    command
        .args(["-z", &format!("{}s", load.duration_seconds)])
        .args(["-c", &load.connections.to_string()]);
    if let Some(rate) = rate {
        hold_to_rate(&mut command, rate);
    }
    let output = command.output().map_err(|e| format!("running oha: {e}"))?;
    let row = summary_row(workload, workload.name(), &output)?;
    Ok(Row {
        driven_at: rate,
        ..row
    })
}

/// Makes oha send `rate` requests per second and measure each request's latency from when
/// it was due, not when it was sent: a stalled server must not hide its stall by delaying
/// the requests behind it (coordinated omission).
fn hold_to_rate(command: &mut Command, rate: f64) {
    command
        .args(["-q", &format!("{rate:.1}")])
        .arg("--latency-correction");
}

/// The 90/10 mix: two oha runs at once, one reading (`GET /api/books/{isbn}`) and one
/// ordering, each held to its share of `rate` requests per second (`oha -q`) and of the
/// connections. Returns the read row and the write row.
///
/// `rate` should be below what the server can sustain (see [`mix_rate`]): past it, the
/// requests queue and the latencies measure the queue.
pub(super) fn drive_mix(
    oha: &Path,
    load: Load,
    server: &Running,
    catalogue: Catalogue,
    urls_file: &Path,
    rate: f64,
) -> Result<(Row, Row), String> {
    println!(
        "bench: 90/10 mix at {rate:.0} requests/s against {}",
        server.name
    );
    let read_connections = ((load.connections as f64 * MIX_READ_SHARE).round() as u64)
        .clamp(1, load.connections.saturating_sub(1).max(1));
    let write_connections = load.connections.saturating_sub(read_connections).max(1);
    let parts = [
        (Workload::GetBook, MIX_READ_SHARE, read_connections),
        (
            Workload::PlaceOrder,
            1.0 - MIX_READ_SHARE,
            write_connections,
        ),
    ];
    let mut children = Vec::new();
    for (workload, share, connections) in parts {
        let mut command = oha_command(oha, server, catalogue, workload, urls_file);
        command
            .args(["-z", &format!("{}s", load.duration_seconds)])
            .args(["-c", &connections.to_string()]);
        hold_to_rate(&mut command, rate * share);
        let child = command.spawn().map_err(|e| format!("running oha: {e}"))?;
        children.push((workload, share, child));
    }
    let mut rows = Vec::new();
    for (workload, share, child) in children {
        let output = child
            .wait_with_output()
            .map_err(|e| format!("waiting for oha: {e}"))?;
        let name = format!("90/10 mix: {}", workload.name());
        let row = summary_row(workload, &name, &output)?;
        rows.push(Row {
            driven_at: Some(rate * share),
            ..row
        });
    }
    let write = rows.pop().expect("two parts");
    let read = rows.pop().expect("two parts");
    Ok((read, write))
}

/// The rate at which a 90/10 mix saturates a server whose reads alone reach `read_rps` and
/// whose writes alone reach `write_rps`: each request costs the server `1 / rps` of a
/// second of its capacity, so the mix costs `0.9 / read_rps + 0.1 / write_rps` per request.
pub(super) fn mix_rate(read_rps: f64, write_rps: f64) -> f64 {
    1.0 / (MIX_READ_SHARE / read_rps + (1.0 - MIX_READ_SHARE) / write_rps)
}

/// Reads oha's JSON summary into a row.
fn summary_row(workload: Workload, name: &str, output: &Output) -> Result<Row, String> {
    if !output.status.success() {
        return Err(format!(
            "oha failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let summary: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("reading oha's JSON output: {e}"))?;
    let number = |pointer: &str| summary.pointer(pointer).and_then(Value::as_f64);
    let count = |pointer: &str, skip: &dyn Fn(&str) -> bool| {
        summary
            .pointer(pointer)
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter(|(key, _)| !skip(key))
                    .filter_map(|(_, n)| n.as_u64())
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let expected = workload.expected_status();
    let errors = count("/statusCodeDistribution", &|status| status == expected)
        // Requests cut off by the end of the run are not the server's errors.
        + count("/errorDistribution", &|error| error == "aborted due to deadline");
    Ok(Row {
        workload: name.to_owned(),
        store: String::new(),
        books: 0,
        requests_per_second: number("/metrics/requests_per_sec").unwrap_or(0.0),
        driven_at: None,
        p50_ms: number("/metrics/latency_ms/p50").unwrap_or(f64::NAN),
        p99_ms: number("/metrics/latency_ms/p99").unwrap_or(f64::NAN),
        errors,
        peak_rss_kib: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_rate_weighs_each_request_by_its_cost() {
        // Equal costs: the mix runs at that rate.
        assert!((mix_rate(1000.0, 1000.0) - 1000.0).abs() < 1e-6);
        // Writes ten times dearer: 0.9/1000 + 0.1/100 = 1.9 ms per request.
        assert!((mix_rate(1000.0, 100.0) - 1000.0 / 1.9).abs() < 1e-6);
    }
}
