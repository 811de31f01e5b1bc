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
//! 127.0.0.1:5432, that local server (user `postgres`).
//!
//! Tests that need a service are `#[ignore]`d with a reason naming it (a test below checks
//! that no other reason is used), so a plain `cargo test` lists them as ignored. The main run
//! counts them as skipped; then, for each service that answers, one more run takes the
//! ignored tests that need it (`--run-ignored only`, or `-- --ignored`) and moves them from
//! skipped to passed or failed: those with `redis` in their names need Redis
//! (`BOOKSTORE_TEST_REDIS_URL`, else 127.0.0.1:6379), those with `nats` in their names NATS
//! with JetStream (`BOOKSTORE_TEST_NATS_URL`, else 127.0.0.1:4222) and PostgreSQL, all the
//! others PostgreSQL. Without
//! PostgreSQL, each test of the API suite's PostgreSQL pass counts as skipped too. So the
//! last line counts every test that did not run, and `passed + failed + skipped` is the same
//! with or without the services.

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
    let postgres = postgres_url();

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
    let mut postgres_api_skipped = None;
    reports.push(step("test", || {
        let outcome = run_tests(postgres.as_deref());
        counts = outcome.counts;
        postgres_api_skipped = outcome.postgres_api_skipped;
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
    if postgres.is_none() {
        println!("  PostgreSQL tests skipped: {POSTGRES_SKIPPED}");
        if let Some(api_tests) = postgres_api_skipped {
            println!(
                "  (counted below: the ignored PostgreSQL tests, and the API suite's {api_tests} tests not run against PostgreSQL)"
            );
        }
    }
    if redis_url().is_none() {
        println!("  Redis tests skipped: {REDIS_SKIPPED}");
    }
    if nats_url().is_none() {
        println!("  NATS tests skipped: {NATS_SKIPPED}");
    } else if postgres.is_none() {
        println!("  NATS tests skipped: they also need PostgreSQL");
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
    /// Without PostgreSQL: how many tests of the API suite were not run against it.
    postgres_api_skipped: Option<u64>,
}

impl TestOutcome {
    /// A run that was not needed: nothing ran, nothing failed.
    fn nothing_ran() -> Self {
        TestOutcome {
            succeeded: true,
            counts: Some(TestCounts::default()),
            postgres_api_skipped: None,
        }
    }
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

/// The variable naming the NATS server the NATS tests use.
const NATS_URL_VARIABLE: &str = "BOOKSTORE_TEST_NATS_URL";

/// Why the NATS tests are skipped when no server is available.
const NATS_SKIPPED: &str =
    "BOOKSTORE_TEST_NATS_URL is not set and no server answers on 127.0.0.1:4222";

/// The NATS server for the tests that need one: the configured one, else a local one that
/// answers.
fn nats_url() -> Option<String> {
    if let Some(url) = std::env::var(NATS_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
    {
        return Some(url);
    }
    let local = SocketAddr::from(([127, 0, 0, 1], 4222));
    TcpStream::connect_timeout(&local, Duration::from_millis(500))
        .is_ok()
        .then(|| "nats://127.0.0.1:4222".to_owned())
}

/// Runs the ignored tests that need NATS (those with `nats` in their names), if a NATS
/// server and a PostgreSQL server answer (they record events on PostgreSQL).
fn run_nats_tests(
    nextest: bool,
    environment: &[(&'static str, String)],
    postgres: Option<&str>,
) -> TestOutcome {
    let Some(url) = nats_url() else {
        println!("\n--- NATS tests skipped: {NATS_SKIPPED}");
        return TestOutcome::nothing_ran();
    };
    if postgres.is_none() {
        println!("\n--- NATS tests skipped: they also need PostgreSQL");
        return TestOutcome::nothing_ran();
    }
    println!("\n--- the tests that need NATS, against {}", redact(&url));
    let mut environment = environment.to_vec();
    environment.push((NATS_URL_VARIABLE, url));
    run_ignored_tests(nextest, &environment, "test(/nats/)", &["nats"])
}

/// Runs the ignored tests that need Redis (those with `redis` in their names), if a server
/// answers.
fn run_redis_tests(nextest: bool, environment: &[(&'static str, String)]) -> TestOutcome {
    let Some(url) = redis_url() else {
        println!("\n--- Redis tests skipped: {REDIS_SKIPPED}");
        return TestOutcome::nothing_ran();
    };
    println!("\n--- the tests that need Redis, against {}", redact(&url));
    let mut environment = environment.to_vec();
    environment.push((REDIS_URL_VARIABLE, url));
    run_ignored_tests(nextest, &environment, "test(/redis/)", &["redis"])
}

/// Runs the ignored tests that need PostgreSQL (every ignored test but the Redis and NATS
/// ones), if a server answers.
fn run_postgres_tests(
    nextest: bool,
    environment: &[(&'static str, String)],
    postgres: Option<&str>,
) -> TestOutcome {
    let Some(url) = postgres else {
        return TestOutcome::nothing_ran();
    };
    println!(
        "\n--- the tests that need PostgreSQL, against {}",
        redact(url)
    );
    run_ignored_tests(
        nextest,
        environment,
        "not test(/redis/) and not test(/nats/)",
        &["--skip", "redis", "--skip", "nats"],
    )
}

/// Runs the ignored tests a nextest filter expression (or libtest filter arguments) selects.
/// Its counts are what ran: the tests it did not select are not counted as skipped (the
/// main run counted every ignored test as skipped already).
fn run_ignored_tests(
    nextest: bool,
    environment: &[(&'static str, String)],
    nextest_filter: &str,
    libtest_filter: &[&str],
) -> TestOutcome {
    let outcome = if nextest {
        let args = [
            "nextest",
            "run",
            "--workspace",
            "--no-fail-fast",
            "--run-ignored",
            "only",
            "-E",
            nextest_filter,
        ];
        run_streamed(&args, environment, test_counts::from_nextest)
    } else {
        let mut args = vec!["test", "--workspace", "--no-fail-fast", "--", "--ignored"];
        args.extend(libtest_filter);
        run_streamed(&args, environment, test_counts::from_libtest)
    };
    TestOutcome {
        succeeded: outcome.succeeded,
        counts: outcome.counts.map(|counts| TestCounts {
            passed: counts.passed,
            failed: counts.failed,
            skipped: 0,
        }),
        postgres_api_skipped: None,
    }
}

/// The environment of the test commands: the PostgreSQL URL when one is available.
fn test_environment(postgres: Option<&str>) -> Vec<(&'static str, String)> {
    match postgres {
        Some(url) => {
            println!("PostgreSQL tests run against {}", redact(url));
            vec![(POSTGRES_URL_VARIABLE, url.to_owned())]
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
/// not run), otherwise with `cargo test`; then the ignored tests of each service that
/// answers, and the API suite against each durable store. Without PostgreSQL, the API
/// suite's PostgreSQL pass is counted as skipped, test by test.
fn run_tests(postgres: Option<&str>) -> TestOutcome {
    let environment = test_environment(postgres);
    let nextest = nextest_is_installed();
    let mut stores = vec!["sqlite"];
    if postgres.is_some() {
        stores.push("postgres");
    }
    let with_store = |store: &'static str| {
        let mut environment = environment.clone();
        environment.push(("BOOKSTORE_TEST_STORE", store.to_owned()));
        environment
    };
    let mut outcomes = Vec::new();
    if nextest {
        let all = ["nextest", "run", "--workspace", "--no-fail-fast"];
        outcomes.push(run_streamed(&all, &environment, test_counts::from_nextest));
        let doc = ["test", "--workspace", "--doc"];
        outcomes.push(run_streamed(&doc, &environment, test_counts::from_libtest));
    } else {
        println!("(cargo-nextest is not installed; using cargo test)");
        let all = ["test", "--workspace", "--no-fail-fast"];
        outcomes.push(run_streamed(&all, &environment, test_counts::from_libtest));
    }
    // The ignored tests each service's run takes were counted as skipped above.
    let ignored_runs = [
        run_postgres_tests(nextest, &environment, postgres),
        run_redis_tests(nextest, &environment),
        run_nats_tests(nextest, &environment, postgres),
    ];
    for store in stores {
        println!("\n--- the API suite against the {store} store");
        let outcome = if nextest {
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
            run_streamed(&api, &with_store(store), test_counts::from_nextest)
        } else {
            let api = ["test", "--workspace", "--test", "api", "--no-fail-fast"];
            run_streamed(&api, &with_store(store), test_counts::from_libtest)
        };
        outcomes.push(outcome);
    }
    let mut counts = outcomes
        .iter()
        .map(|outcome| outcome.counts)
        .sum::<Option<TestCounts>>();
    for ran in &ignored_runs {
        match (counts.as_mut(), ran.counts) {
            (Some(counts), Some(ran)) => {
                counts.skipped = counts.skipped.saturating_sub(ran.passed + ran.failed);
                *counts += ran;
            }
            _ => counts = None,
        }
    }
    let mut postgres_api_skipped = None;
    if postgres.is_none() {
        println!("\n--- the API suite against the postgres store: skipped, no server");
        match (counts.as_mut(), count_api_tests(&environment)) {
            (Some(total), Some(api_tests)) => {
                total.skipped += api_tests;
                postgres_api_skipped = Some(api_tests);
            }
            _ => counts = None,
        }
    }
    TestOutcome {
        succeeded: outcomes
            .iter()
            .chain(&ignored_runs)
            .all(|outcome| outcome.succeeded),
        counts,
        postgres_api_skipped,
    }
}

/// How many tests the API suite has (`--list`), to count its PostgreSQL pass as skipped.
fn count_api_tests(environment: &[(&'static str, String)]) -> Option<u64> {
    let args = ["test", "--workspace", "--test", "api", "--", "--list"];
    println!("$ cargo {}", args.join(" "));
    let output = match cargo(&args)
        .envs(environment.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
    {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            eprintln!("error: listing the API suite failed ({})", output.status);
            return None;
        }
        Err(error) => {
            eprintln!("error: cannot run cargo: {error}");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let count = test_counts::from_libtest_list(&lines);
    println!("{count} tests not run against PostgreSQL");
    Some(count)
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
        postgres_api_skipped: None,
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
        postgres_api_skipped: None,
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use crate::workspace_root;

    /// The reasons a test may be ignored for: `cargo xtask test` runs the ignored tests of
    /// each service that answers (the Redis and NATS ones by the service in their names, every other
    /// one as a PostgreSQL test), and counts the others as skipped.
    const SERVICE_IGNORES: [&str; 3] = [
        concat!(
            "#[",
            "ignore = \"needs PostgreSQL: set BOOKSTORE_TEST_POSTGRES_URL or run a server on 127.0.0.1:5432\"]"
        ),
        concat!(
            "#[",
            "ignore = \"needs Redis at 127.0.0.1:6379 or BOOKSTORE_TEST_REDIS_URL; cargo xtask test runs it when one answers\"]"
        ),
        concat!(
            "#[",
            "ignore = \"needs NATS with JetStream at 127.0.0.1:4222 or BOOKSTORE_TEST_NATS_URL, and PostgreSQL; cargo xtask test runs it when both answer\"]"
        ),
    ];

    fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(directory) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != "target") {
                    rust_files(&path, found);
                }
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn every_ignored_test_in_the_workspace_waits_for_postgresql_redis_or_nats() {
        let mut files = Vec::new();
        for directory in ["crates", "xtask", "bench"] {
            rust_files(&workspace_root().join(directory), &mut files);
        }
        assert!(files.len() > 50, "found only {} Rust files", files.len());
        let needle = concat!("#[", "ignore");
        let mut ignored = [0; SERVICE_IGNORES.len()];
        for file in &files {
            let text = fs::read_to_string(file).expect("a readable source file");
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            for (index, line) in lines.iter().enumerate() {
                if !line.starts_with(needle) {
                    continue;
                }
                let Some(service) = SERVICE_IGNORES.iter().position(|reason| line == reason) else {
                    panic!(
                        "{}: {line}\n#[ignore] is reserved for tests that need a service, with one of these reasons: {SERVICE_IGNORES:#?}",
                        file.display()
                    );
                };
                // A Redis or NATS test is found by the service in its name: look at the
                // next `fn`.
                if service >= 1 {
                    let service_name = ["", "redis", "nats"][service];
                    let name = lines[index..]
                        .iter()
                        .find(|line| line.contains("fn "))
                        .unwrap_or_else(|| panic!("{}: no test after {line}", file.display()));
                    assert!(
                        name.contains(service_name),
                        "{}: a test that needs {service_name} has `{service_name}` in its name: {name}",
                        file.display()
                    );
                }
                ignored[service] += 1;
            }
        }
        // The conformance and durability macros, the durability tests of their own, and the
        // shared rate-limit tests.
        assert!(ignored[0] >= 5, "found {} PostgreSQL tests", ignored[0]);
        assert!(ignored[1] >= 1, "found {} Redis tests", ignored[1]);
        assert!(ignored[2] >= 1, "found {} NATS tests", ignored[2]);
    }
}
