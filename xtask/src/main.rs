//! Repository automation for the bookstore workspace, in the cargo-xtask style.
//!
//! One binary, run through the `cargo xtask` alias in `.cargo/config.toml`, with one
//! subcommand per task (see [`USAGE`]). It has no dependencies besides `serde_json`, so
//! it builds in seconds; everything else is done by calling cargo through `$CARGO`
//! (the client generator, too, is a program of its own: `xtask/client-codegen`).

mod bench;
mod container;
mod deps;
mod openapi;
mod suite;
mod test_counts;

use std::env;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode};

/// What `cargo xtask help` prints.
const USAGE: &str = "\
Usage: cargo xtask <command>

Commands:
  test               run the whole check suite (fmt, clippy, deps, openapi --check, tests)
                     and print a summary; this is what CI runs
  deps               fail if a domain crate depends on the web stack or on another domain
  openapi            regenerate docs/openapi.json from the gateway, and the client's
                     generated code (crates/client/src/generated.rs) from it
  openapi --check    fail if either file is missing or out of date
  bench [--books N] [--scale-books N] [--duration 10s] [--connections N]
                     load-test a release `bookstore` (memory, SQLite, PostgreSQL if
                     BOOKSTORE_TEST_POSTGRES_URL is set) and a bare actix-web baseline
                     with oha; writes target/bench/report.md and report.json
                     (`cargo xtask bench --help` says more)
  container [--pull] [--engine podman|docker] [--tag NAME]
                     build the container image (base images made locally with
                     debootstrap unless --pull) and smoke-test it; not part of `test`
                     (`cargo xtask container --help` says more)
  help               print this text
";

/// The exit code for a command line we do not understand.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    match args.as_slice() {
        ["test"] => suite::run(),
        ["deps"] => exit_code(deps::check()),
        ["openapi"] => exit_code(openapi::run(openapi::Mode::Write)),
        ["openapi", "--check"] => exit_code(openapi::run(openapi::Mode::Check)),
        ["bench", "--help" | "-h"] => {
            print!("{}", bench::USAGE);
            ExitCode::SUCCESS
        }
        ["bench", options @ ..] => match bench::Options::parse(options) {
            Ok(options) => exit_code(bench::run(options)),
            Err(message) => {
                eprintln!("error: {message}\n");
                eprint!("{}", bench::USAGE);
                ExitCode::from(USAGE_ERROR)
            }
        },
        ["container", "--help" | "-h"] => {
            print!("{}", container::USAGE);
            ExitCode::SUCCESS
        }
        ["container", options @ ..] => match container::Options::parse(options) {
            Ok(options) => exit_code(container::run(options)),
            Err(message) => {
                eprintln!("error: {message}\n");
                eprint!("{}", container::USAGE);
                ExitCode::from(USAGE_ERROR)
            }
        },
        ["help" | "-h" | "--help"] => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        [] => {
            eprint!("{USAGE}");
            ExitCode::from(USAGE_ERROR)
        }
        unknown => {
            eprintln!("error: unknown command `{}`\n", unknown.join(" "));
            eprint!("{USAGE}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}

/// Prints the error of a failed command, if any, and turns the result into an exit code.
fn exit_code(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the xtask crate lives one directory below the workspace root")
}

/// A `cargo` command run from the workspace root.
///
/// Uses `$CARGO`, which cargo sets when it runs `cargo xtask`, so the same toolchain
/// builds everything; falls back to `cargo` on `PATH`. The environment is inherited.
fn cargo(args: &[&str]) -> Command {
    let program = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(program);
    command.args(args).current_dir(workspace_root());
    command
}
