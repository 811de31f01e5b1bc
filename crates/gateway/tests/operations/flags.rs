//! Numeric flags out of their range stop `bookstore` before it starts, with clap's message
//! naming the flag and the range, never with a panic.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::free_port;

/// A value out of range, given as flags or variables, and what the refusal must name.
struct OutOfRange {
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    flag: &'static str,
    range: &'static str,
}

#[test]
fn an_out_of_range_numeric_flag_or_variable_stops_start_up_with_the_flag_and_its_range() {
    let cases = [
        OutOfRange {
            args: &["--recovery-grace-seconds", "18446744073709551615"],
            env: &[],
            flag: "--recovery-grace-seconds",
            range: "0..=86400",
        },
        OutOfRange {
            args: &["--workers", "0"],
            env: &[],
            flag: "--workers",
            range: "1..=512",
        },
        OutOfRange {
            args: &["--workers", "513"],
            env: &[],
            flag: "--workers",
            range: "1..=512",
        },
        OutOfRange {
            args: &["--port", "0"],
            env: &[],
            flag: "--port",
            range: "1..=65535",
        },
        OutOfRange {
            args: &[],
            env: &[("BOOKSTORE_SHUTDOWN_TIMEOUT_SECONDS", "18446744073709551615")],
            flag: "--shutdown-timeout-seconds",
            range: "0..=3600",
        },
    ];
    for OutOfRange {
        args,
        env,
        flag,
        range,
    } in cases
    {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bookstore"));
        if !args.contains(&"--port") {
            command.args(["--port", &free_port().to_string()]);
        }
        let mut child = command
            .args(["--database-url", "memory"])
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bookstore");
        // A value that is wrongly accepted starts a server: stop it rather than wait forever.
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll bookstore") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{args:?} {env:?}: bookstore started instead of refusing the value");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("stderr is piped")
            .read_to_string(&mut stderr)
            .expect("read stderr");
        assert_eq!(status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(range), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?} {env:?}: {stderr}");
    }
}
