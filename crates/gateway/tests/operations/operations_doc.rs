//! docs/OPERATIONS.md documents every flag and environment variable of `bookstore --help`.

use std::process::Command;

#[test]
fn the_operations_guide_lists_every_flag_and_environment_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("utf-8");
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/OPERATIONS.md"
    ))
    .expect("docs/OPERATIONS.md exists");

    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-'))
        .filter(|flag| !["--help", "--version"].contains(flag))
        .collect();
    let variables: Vec<&str> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .collect();
    assert!(flags.len() >= 15, "found flags {flags:?}");
    assert!(variables.len() >= 15, "found variables {variables:?}");
    let missing: Vec<&&str> = flags
        .iter()
        .chain(&variables)
        .filter(|name| !guide.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/OPERATIONS.md does not mention {missing:?}"
    );
}
