//! `cargo xtask test`: the whole check suite, as CI runs it.
//!
//! Runs every step even after one fails, so a single run shows everything that needs
//! fixing, then prints one line per step and, as the very last line,
//! `tests: P passed, F failed, S skipped`. Exits non-zero if any step failed.
//!
//! Every command inherits the environment (the tests read e.g.
//! `BOOKSTORE_TEST_POSTGRES_URL`).

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
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

/// Runs the tests with nextest if it is installed (plus the doc tests, which nextest does
/// not run), otherwise with `cargo test`.
fn run_tests() -> TestOutcome {
    if nextest_is_installed() {
        let nextest = run_streamed(
            &["nextest", "run", "--workspace", "--no-fail-fast"],
            test_counts::from_nextest,
        );
        let doc = run_streamed(&["test", "--workspace", "--doc"], test_counts::from_libtest);
        TestOutcome {
            succeeded: nextest.succeeded && doc.succeeded,
            counts: nextest.counts.zip(doc.counts).map(|(mut total, doc)| {
                total += doc;
                total
            }),
        }
    } else {
        println!("(cargo-nextest is not installed; using cargo test)");
        run_streamed(
            &["test", "--workspace", "--no-fail-fast"],
            test_counts::from_libtest,
        )
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
fn run_streamed(args: &[&str], parse: fn(&[&str]) -> Option<TestCounts>) -> TestOutcome {
    println!("$ cargo {}", args.join(" "));
    let failed = TestOutcome {
        succeeded: false,
        counts: None,
    };

    let mut command = cargo(args);
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
