//! `cargo xtask openapi [--check]`: keeps the committed OpenAPI document, and the client
//! code generated from it, in step with the gateway.
//!
//! The gateway builds the spec in-process (`bookstore openapi` prints it); this module
//! pretty-prints it and writes it to, or compares it with, [`SPEC_PATH`]. Then the
//! `client-codegen` program turns that spec into the `bookstore-client` crate's generated
//! layer, written to or compared with [`CLIENT_PATH`]. The spec carries no "do not edit"
//! header because JSON has no comments (the docs say so instead); the Rust file does.

use std::fs;
use std::io::{self, Write};
use std::process::Stdio;

use crate::{cargo, workspace_root};

/// Where the spec is committed, relative to the workspace root.
const SPEC_PATH: &str = "docs/openapi.json";

/// Where the client's generated code is committed, relative to the workspace root.
const CLIENT_PATH: &str = "crates/client/src/generated.rs";

/// The command that fixes a missing or stale file.
const FIX: &str = "run `cargo xtask openapi` and commit the result";

/// What to do with the freshly generated spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Write it to [`SPEC_PATH`].
    Write,
    /// Compare it with [`SPEC_PATH`] and fail if they differ.
    Check,
}

/// Generates the spec and the client code, and writes or checks both, depending on `mode`.
pub(crate) fn run(mode: Mode) -> Result<(), String> {
    let spec = generate_spec()?;
    let client = generate_client(&spec)?;
    let problems: Vec<String> = [(SPEC_PATH, spec), (CLIENT_PATH, client)]
        .into_iter()
        .filter_map(|(path, generated)| update(mode, path, &generated).err())
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
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

/// Runs the gateway's `openapi` subcommand and returns its output, pretty-printed.
fn generate_spec() -> Result<String, String> {
    let args = [
        "run",
        "--quiet",
        "--package",
        "bookstore-gateway",
        "--bin",
        "bookstore",
        "--",
        "openapi",
    ];
    let output = cargo(&args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo {}` failed ({})",
            args.join(" "),
            output.status
        ));
    }
    let raw = String::from_utf8(output.stdout)
        .map_err(|_| "the gateway printed a spec that is not UTF-8".to_owned())?;
    pretty_print(&raw).map_err(|error| format!("the gateway printed invalid JSON: {error}"))
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

/// Re-indents a JSON document with two spaces, keeping keys in their original order, and
/// ends it with a newline.
fn pretty_print(raw: &str) -> Result<String, serde_json::Error> {
    let document: serde_json::Value = serde_json::from_str(raw)?;
    let mut pretty = serde_json::to_string_pretty(&document)?;
    pretty.push('\n');
    Ok(pretty)
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
    fn pretty_printing_keeps_keys_in_the_order_they_were_written() {
        let pretty =
            pretty_print(r#"{"openapi":"3.0.3","info":{"title":"b","version":"1"},"a":[]}"#)
                .unwrap();

        assert_eq!(
            pretty,
            "{\n  \"openapi\": \"3.0.3\",\n  \"info\": {\n    \"title\": \"b\",\n    \"version\": \"1\"\n  },\n  \"a\": []\n}\n"
        );
    }

    #[test]
    fn pretty_printing_rejects_output_that_is_not_json() {
        assert!(pretty_print("Compiling bookstore-gateway").is_err());
    }

    #[test]
    fn the_first_differing_line_is_counted_from_one() {
        assert_eq!(first_differing_line("a\nb\nc\n", "a\nx\nc\n"), 2);
        assert_eq!(first_differing_line("a\n", "a\nb\n"), 2);
    }
}
