//! What one run measured, as Markdown and as JSON.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::load::{MIX_READ_SHARE, Workload};
use super::{MIX_LOAD, Options, RUNS, Row, SCALE_LOAD, SMALL_CATALOGUE};

/// What the rows of the `--before` binary add to their store's name.
pub(super) const BEFORE_SUFFIX: &str = " (before)";

/// The RSS of a server sitting idle with the demo catalogue.
pub(super) struct IdleRss {
    pub(super) store: String,
    pub(super) profile: String,
    pub(super) kib: Option<u64>,
}

/// The `bookstore` binary of one cargo profile.
pub(super) struct ProfileBuild {
    profile: String,
    bytes: Option<u64>,
}

impl ProfileBuild {
    pub(super) fn of(profile: &str, binary: &Path) -> Self {
        ProfileBuild {
            profile: profile.to_owned(),
            bytes: fs::metadata(binary).ok().map(|meta| meta.len()),
        }
    }
}

/// Everything one run measured.
pub(super) struct Report {
    options: Options,
    pub(super) baseline_rps: f64,
    /// The main table.
    pub(super) rows: Vec<Row>,
    /// Reads at 1,000 books and at `--scale-books`.
    pub(super) scale_rows: Vec<Row>,
    /// The rate each store's 90/10 mix was driven at.
    pub(super) mix_rates: Vec<(String, f64)>,
    pub(super) idle: Vec<IdleRss>,
    pub(super) builds: Vec<ProfileBuild>,
    pub(super) notes: Vec<String>,
    pub(super) elapsed: Duration,
}

fn rate_cell(rate: Option<f64>) -> String {
    rate.map_or_else(|| "flat out".to_owned(), |rate| format!("{rate:.0}"))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "?".to_owned(),
        |kib| format!("{:.1}", kib as f64 / 1024.0),
    )
}

impl Report {
    pub(super) fn new(options: Options) -> Self {
        Report {
            options,
            baseline_rps: f64::NAN,
            rows: Vec::new(),
            scale_rows: Vec::new(),
            mix_rates: Vec::new(),
            idle: Vec::new(),
            builds: Vec::new(),
            notes: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// The options of the run.
    pub(super) fn options(&self) -> &Options {
        &self.options
    }

    fn ratio(&self, row: &Row) -> f64 {
        row.requests_per_second / self.baseline_rps
    }

    /// Requests/s of `row` divided by the same workload's on the memory store of the same
    /// binary (`memory (before)` for a `(before)` row); `None` for the memory rows
    /// themselves and when there is no such row.
    fn ratio_to_memory(&self, row: &Row) -> Option<f64> {
        let memory = if row.store.ends_with(BEFORE_SUFFIX) {
            format!("memory{BEFORE_SUFFIX}")
        } else {
            "memory".to_owned()
        };
        if row.store == memory || row.driven_at.is_some() {
            return None;
        }
        self.rows
            .iter()
            .find(|other| other.store == memory && other.workload == row.workload)
            .map(|other| row.requests_per_second / other.requests_per_second)
    }

    /// The scale row of `store`, `workload` and `books`.
    fn scale_row(&self, store: &str, workload: Workload, books: u64) -> Option<&Row> {
        self.scale_rows
            .iter()
            .find(|row| row.store == store && row.workload == workload.name() && row.books == books)
    }

    pub(super) fn markdown(&self) -> String {
        let Options {
            books,
            scale_books,
            duration_seconds,
            connections,
            ..
        } = self.options;
        let mut out = format!(
            "Books: {books}, duration: {duration_seconds} s per workload, connections: \
             {connections}; ratio = requests/s ÷ baseline GET requests/s.\n\n\
             Rows without a rate were driven as fast as the server answers; the mix rows were \
             held to the rate shown, with latency measured from when each request was due. \
             Each flat-out row is the better of {RUNS} runs (more requests/s); the baseline's \
             runs are at the start and at the end of the whole run.\n\n\
             | workload | store | driven at req/s | requests/s | p50 ms | p99 ms | errors | peak RSS MiB | ratio to baseline | ratio to memory |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {:.2} | {} |",
                row.workload,
                row.store,
                rate_cell(row.driven_at),
                row.requests_per_second,
                row.p50_ms,
                row.p99_ms,
                row.errors,
                mib(row.peak_rss_kib),
                self.ratio(row),
                self.ratio_to_memory(row)
                    .map_or_else(|| "–".to_owned(), |ratio| format!("{ratio:.2}")),
            );
        }
        for (store, rate) in &self.mix_rates {
            let parts: Vec<&Row> = self
                .rows
                .iter()
                .filter(|row| &row.store == store && row.workload.starts_with("90/10 mix"))
                .collect();
            let total: f64 = parts.iter().map(|row| row.requests_per_second).sum();
            let reads = parts.first().map_or(0.0, |row| row.requests_per_second);
            let _ = writeln!(
                out,
                "\n- 90/10 mix on {store}: driven at {rate:.0} requests/s ({:.0} % reads), \
                 {:.0} % of the rate its reads and writes alone predict; it served \
                 {total:.0} requests/s, {:.1} % of them reads.",
                MIX_READ_SHARE * 100.0,
                MIX_LOAD * 100.0,
                100.0 * reads / total,
            );
        }

        if scale_books > 0 && !self.scale_rows.is_empty() {
            let _ = write!(
                out,
                "\n### Catalogue size: {SMALL_CATALOGUE} books against {scale_books}\n\n\
                 Both catalogues driven at the same rate, {:.0} % of what the small one \
                 serves flat out (both list pages at the first page's rate); latency from \
                 when each request was due. Each server is warmed up before each run; the \
                 two catalogues are run alternately, {RUNS} times each, and each row keeps \
                 the run with the lower p99.\n\n\
                 | store | workload | driven at req/s | p50 ms ({SMALL_CATALOGUE}) | p99 ms ({SMALL_CATALOGUE}) \
                 | p50 ms ({scale_books}) | p99 ms ({scale_books}) | served req/s ({scale_books}) \
                 | p99 ratio |\n\
                 |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
                SCALE_LOAD * 100.0
            );
            let mut stores: Vec<&str> = self
                .scale_rows
                .iter()
                .map(|row| row.store.as_str())
                .collect();
            stores.dedup();
            for store in &stores {
                for workload in [
                    Workload::GetBook,
                    Workload::ListFirstPage,
                    Workload::ListDeepPage,
                ] {
                    let (Some(small), Some(large)) = (
                        self.scale_row(store, workload, SMALL_CATALOGUE),
                        self.scale_row(store, workload, scale_books),
                    ) else {
                        continue;
                    };
                    let _ = writeln!(
                        out,
                        "| {store} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} |",
                        workload.name(),
                        rate_cell(small.driven_at),
                        small.p50_ms,
                        small.p99_ms,
                        large.p50_ms,
                        large.p99_ms,
                        large.requests_per_second,
                        large.p99_ms / small.p99_ms,
                    );
                }
            }
            out.push('\n');
            for store in &stores {
                if let (Some(first), Some(deep)) = (
                    self.scale_row(store, Workload::ListFirstPage, scale_books),
                    self.scale_row(store, Workload::ListDeepPage, scale_books),
                ) {
                    let _ = writeln!(
                        out,
                        "- {store}, {scale_books} books: the deep page's latency is {:.2}× the \
                         first page's at p50 and {:.2}× at p99.",
                        deep.p50_ms / first.p50_ms,
                        deep.p99_ms / first.p99_ms,
                    );
                }
            }
        }

        out.push_str("\n### Build profiles and idle memory\n\n");
        for build in &self.builds {
            let _ = writeln!(
                out,
                "- `bookstore` built with `--profile {}`: {} MiB.",
                build.profile,
                mib(build.bytes.map(|bytes| bytes / 1024)),
            );
        }
        for idle in &self.idle {
            let _ = writeln!(
                out,
                "- Idle RSS with the demo catalogue, {} store, {} profile: {} MiB.",
                idle.store,
                idle.profile,
                mib(idle.kib),
            );
        }
        out.push('\n');
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        let _ = writeln!(
            out,
            "- The whole run took {:.0} s.",
            self.elapsed.as_secs_f64()
        );
        out
    }

    pub(super) fn json(&self) -> Value {
        let row = |row: &Row| {
            json!({
                "workload": row.workload,
                "store": row.store,
                "books": row.books,
                "requests_per_second": row.requests_per_second,
                "driven_at_requests_per_second": row.driven_at,
                "p50_ms": row.p50_ms,
                "p99_ms": row.p99_ms,
                "errors": row.errors,
                "peak_rss_kib": row.peak_rss_kib,
                "ratio_to_baseline": self.ratio(row),
                "ratio_to_memory": self.ratio_to_memory(row),
            })
        };
        json!({
            "books": self.options.books,
            "scale_books": self.options.scale_books,
            "duration_seconds": self.options.duration_seconds,
            "connections": self.options.connections,
            "baseline_requests_per_second": self.baseline_rps,
            "rows": self.rows.iter().map(row).collect::<Vec<_>>(),
            "scale_rows": self.scale_rows.iter().map(row).collect::<Vec<_>>(),
            "mix_rates": self.mix_rates.iter().map(|(store, rate)| json!({
                "store": store,
                "requests_per_second": rate,
            })).collect::<Vec<_>>(),
            "idle_rss_kib": self.idle.iter().map(|idle| json!({
                "store": idle.store,
                "profile": idle.profile,
                "kib": idle.kib,
            })).collect::<Vec<_>>(),
            "binary_bytes": self.builds.iter().map(|build| json!({
                "profile": build.profile,
                "bytes": build.bytes,
            })).collect::<Vec<_>>(),
            "notes": self.notes,
            "elapsed_seconds": self.elapsed.as_secs_f64(),
        })
    }
}
