//! Numeric flags out of their range stop `bookstore` before it starts, with clap's message
//! naming the flag and the range, never with a panic.

use std::time::Duration;

use crate::helpers::run_until_exit;

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
        // A value that is wrongly accepted starts a server: it is stopped rather than awaited.
        let args: Vec<&str> = ["--database-url", "memory"]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        let (status, stderr) =
            run_until_exit(&args, env, Duration::from_secs(10)).unwrap_or_else(|| {
                panic!("{args:?} {env:?}: bookstore started instead of refusing the value")
            });
        assert_eq!(status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(range), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?} {env:?}: {stderr}");
    }
}
