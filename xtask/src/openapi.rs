//! `cargo xtask openapi [--check]`: keeps the committed OpenAPI document, and the client
//! code generated from it, in step with the gateway.
//!
//! The committed spec, [`SPEC_PATH`], is an `expect-test` snapshot held by one gateway test,
//! [`SPEC_TEST`]: it builds the spec in process and compares it with the file, or rewrites the
//! file when `UPDATE_EXPECT=1` is set. This module runs that test, in the one mode or the
//! other, so the spec is written and checked in one place. Then the `client-codegen` program
//! turns the committed spec into the `bookstore-client` crate's generated layer, written to
//! or compared with [`CLIENT_PATH`]. The spec carries no "do not edit" header because JSON
//! has no comments (the docs say so instead); the Rust file does.

use std::fs;
use std::io::{self, Write};
use std::process::Stdio;

use crate::{cargo, workspace_root};

/// Where the spec is committed, relative to the workspace root.
const SPEC_PATH: &str = "docs/openapi.json";

/// The API test that holds [`SPEC_PATH`] as its snapshot, by its full name in the `api` test
/// binary of `bookstore-gateway`.
const SPEC_TEST: &str = "openapi::the_committed_openapi_document_is_the_generated_one";

/// Where the client's generated code is committed, relative to the workspace root.
const CLIENT_PATH: &str = "crates/client/src/generated.rs";

/// The command that fixes a missing or stale file.
const FIX: &str = "run `cargo xtask openapi` and commit the result";

/// What to do with the freshly generated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Write them to [`SPEC_PATH`] and [`CLIENT_PATH`].
    Write,
    /// Compare them with [`SPEC_PATH`] and [`CLIENT_PATH`] and fail if they differ.
    Check,
}

/// Writes or checks the spec (through [`SPEC_TEST`]), then the client code generated from the
/// committed spec, depending on `mode`.
pub(crate) fn run(mode: Mode) -> Result<(), String> {
    let mut problems = Vec::new();
    if let Err(problem) = run_spec_test(mode) {
        problems.push(problem);
    }
    let client = fs::read_to_string(workspace_root().join(SPEC_PATH))
        .map_err(|error| format!("cannot read {SPEC_PATH}: {error}; {FIX}"))
        .and_then(|spec| generate_client(&spec))
        .and_then(|client| update(mode, CLIENT_PATH, &client));
    if let Err(problem) = client {
        problems.push(problem);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Runs [`SPEC_TEST`] alone: with `UPDATE_EXPECT=1` it writes [`SPEC_PATH`], without it it
/// fails (printing the difference) when the committed spec is missing or stale.
fn run_spec_test(mode: Mode) -> Result<(), String> {
    let args = [
        "test",
        "--quiet",
        "--package",
        "bookstore-gateway",
        "--test",
        "api",
        "--",
        "--exact",
        SPEC_TEST,
    ];
    let mut command = cargo(&args);
    match mode {
        Mode::Write => command.env("UPDATE_EXPECT", "1"),
        Mode::Check => command.env_remove("UPDATE_EXPECT"),
    };
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    let report = String::from_utf8_lossy(&output.stdout);
    match (output.status.success(), mode) {
        // A filter that matches no test passes too: make sure the snapshot test ran.
        (true, _) if !ran_exactly_one_test(&report) => Err(format!(
            "`cargo {}` did not run the test {SPEC_TEST}:\n{report}",
            args.join(" ")
        )),
        (true, Mode::Write) => {
            println!("wrote {SPEC_PATH}");
            Ok(())
        }
        (true, Mode::Check) => {
            println!("{SPEC_PATH} is up to date");
            Ok(())
        }
        (false, Mode::Write) => Err(format!(
            "`cargo {}` failed ({}). {}",
            args.join(" "),
            output.status,
            summary_of_failure(&report)
        )),
        (false, Mode::Check) => Err(format!(
            "{SPEC_PATH} is missing or out of date; {FIX}. {}",
            summary_of_failure(&report)
        )),
    }
}

/// The most lines of a failed snapshot test's report that [`summary_of_failure`] keeps.
const SUMMARY_LINES: usize = 40;

/// What a failed run of [`SPEC_TEST`] says, short: expect-test prints the expected
/// document, the actual one and their difference in full, with each change coloured, so
/// only the coloured lines of the difference are kept; without a difference (the test did
/// not build, say), the end of the report.
fn summary_of_failure(report: &str) -> String {
    let lines: Vec<&str> = report.lines().collect();
    let diff_start = lines
        .iter()
        .position(|line| strip_colours(line).trim() == "Diff:");
    match diff_start {
        Some(start) => {
            let changed: Vec<&str> = lines[start + 1..]
                .iter()
                .copied()
                .filter(|line| line.contains('\u{1b}'))
                .take(SUMMARY_LINES)
                .collect();
            format!(
                "The lines that differ (red: committed, green: generated):\n{}",
                changed.join("\n")
            )
        }
        None => {
            let tail = &lines[lines.len().saturating_sub(SUMMARY_LINES)..];
            format!("The test says:\n{}", tail.join("\n"))
        }
    }
}

/// `line` without its ANSI colour sequences (`ESC [ ... m`).
fn strip_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for following in chars.by_ref() {
                if following == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Whether libtest's report says that one test ran and passed.
fn ran_exactly_one_test(report: &str) -> bool {
    report
        .lines()
        .any(|line| line.starts_with("test result: ok. 1 passed;"))
}

/// Writes `generated` to `path`, or compares it with what is there.
fn update(mode: Mode, path: &str, generated: &str) -> Result<(), String> {
    let full_path = workspace_root().join(path);
    let committed = match fs::read_to_string(&full_path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(format!("cannot read {path}: {error}")),
    };

    match (mode, committed) {
        (_, Some(committed)) if committed == generated => {
            println!("{path} is up to date");
            Ok(())
        }
        (Mode::Check, None) => Err(format!("{path} is missing; {FIX}")),
        (Mode::Check, Some(committed)) => Err(format!(
            "{path} is out of date (first difference at line {}); {FIX}",
            first_differing_line(&committed, generated)
        )),
        (Mode::Write, _) => {
            if let Some(dir) = full_path.parent() {
                fs::create_dir_all(dir)
                    .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
            }
            fs::write(&full_path, generated)
                .map_err(|error| format!("cannot write {path}: {error}"))?;
            println!("wrote {path}");
            Ok(())
        }
    }
}

/// Runs `client-codegen` on `spec` and returns the Rust code it prints.
fn generate_client(spec: &str) -> Result<String, String> {
    let args = ["run", "--quiet", "--package", "client-codegen"];
    let mut child = cargo(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    // The generator reads all of its input before it writes anything, so writing first and
    // reading afterwards cannot deadlock.
    let written = child
        .stdin
        .take()
        .ok_or_else(|| "the generator's standard input is not piped".to_owned())?
        .write_all(spec.as_bytes());
    let output = child
        .wait_with_output()
        .map_err(|error| format!("cannot wait for `cargo {}`: {error}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo {}` failed ({})",
            args.join(" "),
            output.status
        ));
    }
    written.map_err(|error| format!("cannot send the spec to the generator: {error}"))?;
    String::from_utf8(output.stdout)
        .map_err(|_| "the generator printed code that is not UTF-8".to_owned())
}

/// The 1-based number of the first line where `old` and `new` differ.
fn first_differing_line(old: &str, new: &str) -> usize {
    let mut old_lines = old.lines();
    let mut new_lines = new.lines();
    let mut number = 1;
    while let (Some(old_line), Some(new_line)) = (old_lines.next(), new_lines.next()) {
        if old_line != new_line {
            return number;
        }
        number += 1;
    }
    number
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_run_counts_only_when_exactly_one_test_passed() {
        let one = "\nrunning 1 test\n.\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 611 filtered out; finished in 0.21s\n";
        let none = "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 612 filtered out; finished in 0.00s\n";
        assert!(ran_exactly_one_test(one));
        assert!(!ran_exactly_one_test(none));
    }

    #[test]
    fn the_spec_test_named_here_exists_in_the_gateway_api_tests() {
        let (module, name) = SPEC_TEST.split_once("::").expect("module::test");
        let path = workspace_root().join(format!("crates/gateway/tests/api/{module}.rs"));
        let source = fs::read_to_string(&path).expect("the test module exists");
        assert!(
            source.contains(&format!("async fn {name}()")),
            "{} has no test {name}",
            path.display()
        );
    }

    #[test]
    fn a_failed_snapshot_is_summed_up_by_the_coloured_lines_of_its_difference() {
        let report = "Expect:\n----\n{\n  \"a\": 1\n}\n----\n\n\u{1b}[1mDiff\u{1b}[0m:\n----\n{\n  \"a\": \u{1b}[31m1\u{1b}[0m\u{1b}[32m2\u{1b}[0m\n}\n----\n";
        let summary = summary_of_failure(report);
        assert!(
            summary.ends_with("\n  \"a\": \u{1b}[31m1\u{1b}[0m\u{1b}[32m2\u{1b}[0m"),
            "{summary:?}"
        );
        assert!(!summary.contains("Expect"), "{summary:?}");
    }

    #[test]
    fn a_failure_without_a_difference_is_summed_up_by_the_end_of_the_report() {
        let summary = summary_of_failure("error[E0425]: cannot find value\nerror: aborting");
        assert!(
            summary.ends_with("cannot find value\nerror: aborting"),
            "{summary:?}"
        );
    }

    #[test]
    fn colours_are_stripped_from_a_line() {
        assert_eq!(strip_colours("\u{1b}[1mDiff\u{1b}[0m:"), "Diff:");
    }

    #[test]
    fn the_first_differing_line_is_counted_from_one() {
        assert_eq!(first_differing_line("a\nb\nc\n", "a\nx\nc\n"), 2);
        assert_eq!(first_differing_line("a\n", "a\nb\n"), 2);
    }
}
