//! Reads test counts out of the output of `cargo nextest run` and `cargo test`.
//!
//! Pure functions over lines of text, so `cargo xtask test` can stream the output to the
//! terminal and still print one summary line at the end.

use std::ops::AddAssign;

/// How many tests passed, failed and were skipped (nextest) or ignored (libtest).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TestCounts {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) skipped: u64,
}

impl AddAssign for TestCounts {
    fn add_assign(&mut self, other: TestCounts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

impl std::iter::Sum for TestCounts {
    fn sum<I: Iterator<Item = TestCounts>>(counts: I) -> TestCounts {
        counts.fold(TestCounts::default(), |mut total, more| {
            total += more;
            total
        })
    }
}

/// The counts from nextest's final summary line, e.g.
/// `Summary [   0.105s] 3 tests run: 1 passed, 2 failed, 1 skipped`.
///
/// Only that line is read: nextest also echoes the libtest output of failing tests,
/// `test result:` lines included. Timed-out tests count as failed. `None` if there is no
/// summary line (the build failed, or nextest's format changed).
pub(crate) fn from_nextest(lines: &[&str]) -> Option<TestCounts> {
    lines
        .iter()
        .map(|line| strip_ansi(line))
        .filter_map(|line| {
            let line = line.trim_start().strip_prefix("Summary [")?;
            let (_, counts) = line.split_once(" run: ")?;
            Some(counts_in(counts))
        })
        .next_back()
}

/// The sum of libtest's `test result:` lines, e.g.
/// `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s`.
///
/// Ignored tests count as skipped. A line must carry the verdict and the timing so that a
/// test printing something similar is not counted. `None` if there is no such line.
pub(crate) fn from_libtest(lines: &[&str]) -> Option<TestCounts> {
    lines
        .iter()
        .map(|line| strip_ansi(line))
        .filter_map(|line| {
            let rest = line.strip_prefix("test result: ")?;
            let rest = rest
                .strip_prefix("ok. ")
                .or_else(|| rest.strip_prefix("FAILED. "))?;
            rest.contains("; finished in ").then(|| counts_in(rest))
        })
        .reduce(|mut total, counts| {
            total += counts;
            total
        })
}

/// How many tests a libtest `--list` output names (lines `path::name: test`; benchmarks
/// and the closing `N tests, M benchmarks` line are not counted).
pub(crate) fn from_libtest_list(lines: &[&str]) -> u64 {
    let tests = lines
        .iter()
        .map(|line| strip_ansi(line))
        .filter(|line| line.ends_with(": test"))
        .count();
    u64::try_from(tests).unwrap_or(u64::MAX)
}

/// Adds up every `<number> <word>` pair whose word names an outcome, ignoring the rest
/// (`measured`, `filtered out`, nextest's `(1 slow, 2 flaky)` details, ...).
fn counts_in(text: &str) -> TestCounts {
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|word| word.trim_matches(|c: char| matches!(c, '(' | ')' | ',' | ';' | '.')))
        .collect();
    let mut counts = TestCounts::default();
    for pair in words.windows(2) {
        let Ok(number) = pair[0].parse::<u64>() else {
            continue;
        };
        match pair[1] {
            "passed" => counts.passed += number,
            "failed" | "timed" | "exec" => counts.failed += number,
            "skipped" | "ignored" => counts.skipped += number,
            _ => {}
        }
    }
    counts
}

/// Removes ANSI colour sequences (`ESC [ ... letter`), in case the output is coloured.
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                chars.by_ref().find(|c| ('@'..='~').contains(c));
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(passed: u64, failed: u64, skipped: u64) -> Option<TestCounts> {
        Some(TestCounts {
            passed,
            failed,
            skipped,
        })
    }

    #[test]
    fn nextest_summaries_are_read_in_all_their_shapes() {
        let cases = [
            (
                "     Summary [   0.004s] 12 tests run: 12 passed, 0 skipped",
                counts(12, 0, 0),
            ),
            (
                "     Summary [   0.105s] 3 tests run: 1 passed, 2 failed, 1 skipped",
                counts(1, 2, 1),
            ),
            (
                "     Summary [   0.010s] 1 test run: 1 passed, 4 skipped",
                counts(1, 0, 4),
            ),
            (
                "     Summary [   0.010s] 5/9 tests run: 4 passed, 1 failed, 0 skipped",
                counts(4, 1, 0),
            ),
            (
                "     Summary [  60.100s] 6 tests run: 3 passed (1 slow, 1 flaky), 2 failed, 1 timed out, 2 skipped",
                counts(3, 3, 2),
            ),
            (
                "     Summary [   0.000s] 0 tests run: 0 passed, 0 skipped",
                counts(0, 0, 0),
            ),
            (
                "\u{1b}[32;1m     Summary\u{1b}[0m [   0.004s] \u{1b}[1m2\u{1b}[0m tests run: \u{1b}[1m2\u{1b}[0m \u{1b}[32;1mpassed\u{1b}[0m, \u{1b}[1m0\u{1b}[0m \u{1b}[33;1mskipped\u{1b}[0m",
                counts(2, 0, 0),
            ),
        ];

        for (line, expected) in cases {
            assert_eq!(from_nextest(&[line]), expected, "{line:?}");
        }
    }

    #[test]
    fn nextest_output_ignores_the_libtest_lines_it_echoes_from_failing_tests() {
        let output = [
            "        FAIL [   0.097s] (3/3) nxprobe tests::d",
            "    test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 3 filtered out; finished in 0.09s",
            "     Summary [   0.105s] 3 tests run: 1 passed, 2 failed, 1 skipped",
            "        FAIL [   0.096s] (2/3) nxprobe tests::b",
            "error: test run failed",
        ];

        assert_eq!(from_nextest(&output), counts(1, 2, 1));
    }

    #[test]
    fn nextest_output_without_a_summary_has_no_counts() {
        let output = [
            "error[E0425]: cannot find value `x` in this scope",
            "error: could not compile `bookstore-sales`",
        ];

        assert_eq!(from_nextest(&output), None);
    }

    #[test]
    fn libtest_results_are_summed_over_all_test_binaries() {
        let output = [
            "running 3 tests",
            "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.09s",
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        ];

        assert_eq!(from_libtest(&output), counts(4, 2, 1));
    }

    #[test]
    fn libtest_lines_printed_by_a_test_itself_are_not_counted() {
        let output = [
            "test result: ok. 99 passed; 0 failed;",
            "    test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        ];

        assert_eq!(from_libtest(&output), counts(1, 0, 0));
    }

    #[test]
    fn libtest_lists_are_counted_test_by_test() {
        let output = [
            "auth::a_missing_key_and_an_unknown_key_get_the_same_401: test",
            "books::listing_books_returns_the_first_twenty: test",
            "wire::serialise_a_page: benchmark",
            "",
            "2 tests, 1 benchmark",
        ];

        assert_eq!(from_libtest_list(&output), 2);
        assert_eq!(from_libtest_list(&[]), 0);
    }

    #[test]
    fn libtest_output_without_a_result_line_has_no_counts() {
        assert_eq!(
            from_libtest(&["error: could not compile `bookstore-types`"]),
            None
        );
    }
}
