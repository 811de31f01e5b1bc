//! `cargo xtask test`: the whole check suite, as CI runs it.
//!
//! Runs every step even after one fails, so a single run shows everything that needs
//! fixing, then prints one line per step and, as the very last line,
//! `tests: P passed, F failed, S skipped`. Exits non-zero if any step failed.
//!
//! Every command inherits the environment. The tests step runs the whole workspace, then the
//! gateway's API suite again against each durable store (`BOOKSTORE_TEST_STORE=sqlite`, and
//! `postgres` when a PostgreSQL server is available). PostgreSQL is the one named by
//! `BOOKSTORE_TEST_POSTGRES_URL`, or, when that is unset and a server answers on
//! 127.0.0.1:5432, that local server (user `postgres`); otherwise the run says plainly that
//! the PostgreSQL tests were skipped. Tests that need Redis are `#[ignore]`d and have `redis`
//! in their names; they run last, when `BOOKSTORE_TEST_REDIS_URL` is set or a server answers
//! on 127.0.0.1:6379, and otherwise the run says they were skipped.

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::test_counts::{self, TestCounts};
use crate::{cargo, deps, openapi};

/// How one step of the suite went.
struct StepReport {
    name: &'static str,
    succeeded: bool,
    duration: Duration,
}

/// Runs the suite and prints the summary.
pub(crate) fn run() -> ExitCode {
    let mut reports = Vec::new();
    let mut counts = None;

    reports.push(step("fmt", || run_inherited(&["fmt", "--all", "--check"])));
    reports.push(step("clippy", || {
        run_inherited(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ])
    }));
    reports.push(step("deps", || succeeded(deps::check())));
    reports.push(step("openapi", || {
        succeeded(openapi::run(openapi::Mode::Check))
    }));
    reports.push(step("test", || {
        let outcome = run_tests();
        counts = outcome.counts;
        outcome.succeeded && outcome.counts.is_some()
    }));

    println!();
    for report in &reports {
        println!(
            "  {:<6}{:<10}{:>7.1}s",
            if report.succeeded { "ok" } else { "FAIL" },
            report.name,
            report.duration.as_secs_f64()
        );
    }
    if counts.is_none() {
        println!("  (could not read the test counts from the test output)");
    }
    if postgres_url().is_none() {
        println!("  PostgreSQL tests skipped: {POSTGRES_SKIPPED}");
    }
    if redis_url().is_none() {
        println!("  Redis tests skipped: {REDIS_SKIPPED}");
    }
    let TestCounts {
        passed,
        failed,
        skipped,
    } = counts.unwrap_or_default();
    println!("tests: {passed} passed, {failed} failed, {skipped} skipped");
    // Best effort: the summary has been written; a closed stdout leaves nothing to do.
    let _ = io::stdout().flush();

    if reports.iter().all(|report| report.succeeded) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one step under a header and times it.
fn step(name: &'static str, run: impl FnOnce() -> bool) -> StepReport {
    println!("\n==> {name}");
    let start = Instant::now();
    let succeeded = run();
    StepReport {
        name,
        succeeded,
        duration: start.elapsed(),
    }
}

/// Prints the error of an in-process step, if any.
fn succeeded(result: Result<(), String>) -> bool {
    match result {
        Ok(()) => true,
        Err(message) => {
            eprintln!("error: {message}");
            false
        }
    }
}

/// Runs `cargo <args>` with the terminal as its stdin, stdout and stderr.
fn run_inherited(args: &[&str]) -> bool {
    println!("$ cargo {}", args.join(" "));
    match cargo(args).status() {
        Ok(status) => status.success(),
        Err(error) => {
            eprintln!("error: cannot run cargo: {error}");
            false
        }
    }
}

/// What the test commands did.
struct TestOutcome {
    /// Every command exited successfully.
    succeeded: bool,
    /// The counts, if every command's output could be read.
    counts: Option<TestCounts>,
}

/// The variable naming the PostgreSQL server the tests may create databases on.
const POSTGRES_URL_VARIABLE: &str = "BOOKSTORE_TEST_POSTGRES_URL";

/// The local server used when the variable is unset.
const LOCAL_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Why PostgreSQL tests are skipped when no server is available.
const POSTGRES_SKIPPED: &str =
    "BOOKSTORE_TEST_POSTGRES_URL is not set and no server answers on 127.0.0.1:5432";

/// The PostgreSQL server for the tests: the configured one, else a local one that answers.
fn postgres_url() -> Option<String> {
    if let Some(url) = std::env::var(POSTGRES_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
    {
        return Some(url);
    }
    let local = SocketAddr::from(([127, 0, 0, 1], 5432));
    TcpStream::connect_timeout(&local, Duration::from_millis(500))
        .is_ok()
        .then(|| LOCAL_POSTGRES_URL.to_owned())
}

/// The variable naming the Redis server the Redis tests use.
const REDIS_URL_VARIABLE: &str = "BOOKSTORE_TEST_REDIS_URL";

/// Why the Redis tests are skipped when no server is available.
const REDIS_SKIPPED: &str =
    "BOOKSTORE_TEST_REDIS_URL is not set and no server answers on 127.0.0.1:6379";

/// The Redis server for the tests that need one: the configured one, else a local one that
/// answers.
fn redis_url() -> Option<String> {
    if let Some(url) = std::env::var(REDIS_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
    {
        return Some(url);
    }
    let local = SocketAddr::from(([127, 0, 0, 1], 6379));
    TcpStream::connect_timeout(&local, Duration::from_millis(500))
        .is_ok()
        .then(|| "redis://127.0.0.1:6379".to_owned())
}

/// Runs the tests that need Redis: they are `#[ignore]`d (so a plain `cargo test` skips them
/// and says so) and have `redis` in their names. Returns what they did, with the tests they
/// ran taken off the count of skipped ones (the first run counted them as ignored).
fn run_redis_tests(nextest: bool, environment: &[(&'static str, String)]) -> TestOutcome {
    let Some(url) = redis_url() else {
        println!("\n--- Redis tests skipped: {REDIS_SKIPPED}");
        return TestOutcome {
            succeeded: true,
            counts: Some(TestCounts::default()),
        };
    };
    println!("\n--- the tests that need Redis, against {}", redact(&url));
    let mut environment = environment.to_vec();
    environment.push((REDIS_URL_VARIABLE, url));
    let outcome = if nextest {
        let args = [
            "nextest",
            "run",
            "--workspace",
            "--no-fail-fast",
            "--run-ignored",
            "only",
            "-E",
            "test(/redis/)",
        ];
        run_streamed(&args, &environment, test_counts::from_nextest)
    } else {
        let args = [
            "test",
            "--workspace",
            "--no-fail-fast",
            "--",
            "--ignored",
            "redis",
        ];
        run_streamed(&args, &environment, test_counts::from_libtest)
    };
    TestOutcome {
        succeeded: outcome.succeeded,
        counts: outcome.counts.map(|counts| TestCounts {
            passed: counts.passed,
            failed: counts.failed,
            skipped: 0,
        }),
    }
}

/// The environment of the test commands: the PostgreSQL URL when one is available.
fn test_environment() -> Vec<(&'static str, String)> {
    match postgres_url() {
        Some(url) => {
            println!("PostgreSQL tests run against {}", redact(&url));
            vec![(POSTGRES_URL_VARIABLE, url)]
        }
        None => {
            println!("PostgreSQL tests skipped: {POSTGRES_SKIPPED}");
            Vec::new()
        }
    }
}

/// A URL without its password.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, rest)), Some((_, host))) => {
            let user = rest.split(['@', ':']).next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        _ => url.to_owned(),
    }
}

/// Runs the tests with nextest if it is installed (plus the doc tests, which nextest does
/// not run), otherwise with `cargo test`; then the API suite against each durable store.
fn run_tests() -> TestOutcome {
    let environment = test_environment();
    let mut stores = vec!["sqlite"];
    if environment
        .iter()
        .any(|(name, _)| *name == POSTGRES_URL_VARIABLE)
    {
        stores.push("postgres");
    }
    let with_store = |store: &'static str| {
        let mut environment = environment.clone();
        environment.push(("BOOKSTORE_TEST_STORE", store.to_owned()));
        environment
    };
    let mut outcomes = Vec::new();
    if nextest_is_installed() {
        let all = ["nextest", "run", "--workspace", "--no-fail-fast"];
        outcomes.push(run_streamed(&all, &environment, test_counts::from_nextest));
        let doc = ["test", "--workspace", "--doc"];
        outcomes.push(run_streamed(&doc, &environment, test_counts::from_libtest));
        for store in stores {
            println!("\n--- the API suite against the {store} store");
            // `--workspace` with a filter, not `--package`: selecting one package changes
            // feature unification and would rebuild much of the tree.
            let api = [
                "nextest",
                "run",
                "--workspace",
                "--no-fail-fast",
                "-E",
                "package(bookstore-gateway) and binary(api)",
            ];
            outcomes.push(run_streamed(
                &api,
                &with_store(store),
                test_counts::from_nextest,
            ));
        }
    } else {
        println!("(cargo-nextest is not installed; using cargo test)");
        let all = ["test", "--workspace", "--no-fail-fast"];
        outcomes.push(run_streamed(&all, &environment, test_counts::from_libtest));
        for store in stores {
            println!("\n--- the API suite against the {store} store");
            let api = ["test", "--workspace", "--test", "api", "--no-fail-fast"];
            outcomes.push(run_streamed(
                &api,
                &with_store(store),
                test_counts::from_libtest,
            ));
        }
    }
    let redis = run_redis_tests(nextest_is_installed(), &environment);
    let mut counts = outcomes
        .iter()
        .map(|outcome| outcome.counts)
        .sum::<Option<TestCounts>>();
    if let (Some(counts), Some(ran)) = (counts.as_mut(), redis.counts) {
        counts.skipped = counts.skipped.saturating_sub(ran.passed + ran.failed);
        *counts += ran;
    }
    TestOutcome {
        succeeded: redis.succeeded && outcomes.iter().all(|outcome| outcome.succeeded),
        counts: counts.filter(|_| redis.counts.is_some()),
    }
}

fn nextest_is_installed() -> bool {
    cargo(&["nextest", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs `cargo <args>`, copying its output to the terminal line by line as it arrives,
/// and reads the test counts out of it with `parse`.
fn run_streamed(
    args: &[&str],
    environment: &[(&'static str, String)],
    parse: fn(&[&str]) -> Option<TestCounts>,
) -> TestOutcome {
    println!("$ cargo {}", args.join(" "));
    let failed = TestOutcome {
        succeeded: false,
        counts: None,
    };

    let mut command = cargo(args);
    command.envs(environment.iter().map(|(name, value)| (name, value)));
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    keep_colours_on_a_terminal(&mut command);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            eprintln!("error: cannot run cargo: {error}");
            return failed;
        }
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");

    let (stdout_lines, stderr_lines) = thread::scope(|scope| {
        let from_stdout = scope.spawn(|| forward_lines(stdout, io::stdout()));
        let from_stderr = scope.spawn(|| forward_lines(stderr, io::stderr()));
        (
            from_stdout
                .join()
                .expect("the stdout forwarder does not panic"),
            from_stderr
                .join()
                .expect("the stderr forwarder does not panic"),
        )
    });
    let status = match child.wait() {
        Ok(status) => status,
        Err(error) => {
            eprintln!("error: cannot wait for cargo: {error}");
            return failed;
        }
    };

    let lines: Vec<&str> = stdout_lines
        .iter()
        .chain(&stderr_lines)
        .map(String::as_str)
        .collect();
    TestOutcome {
        succeeded: status.success(),
        counts: parse(&lines),
    }
}

/// Copies `input` to `output` line by line and returns the lines (lossily decoded).
fn forward_lines(input: impl Read, mut output: impl Write) -> Vec<String> {
    let mut reader = BufReader::new(input);
    let mut lines = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                // Showing the output is best effort; counting it is what matters.
                let _ = output.write_all(&line).and_then(|()| output.flush());
                let text = String::from_utf8_lossy(&line);
                lines.push(text.trim_end_matches(['\n', '\r']).to_owned());
            }
        }
    }
    lines
}

/// Piping the output makes cargo and nextest think they are not on a terminal; when we
/// are, ask them for colours anyway (unless the user chose otherwise).
fn keep_colours_on_a_terminal(command: &mut Command) {
    if io::stdout().is_terminal() && std::env::var_os("CARGO_TERM_COLOR").is_none() {
        command.env("CARGO_TERM_COLOR", "always");
    }
}
