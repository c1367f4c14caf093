//! Proves the example builds, runs and converges: starts its binary the way a user would and
//! reads the JSON summary.

use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custom-strategy"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the custom-strategy binary starts")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not json ({e}): {l}")))
        .collect()
}

#[test]
fn the_custom_strategies_converge() {
    let out = run(&[
        "--nodes", "8", "--min-ms", "10", "--max-ms", "60", "--format", "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let lines = lines(&out);
    let start = &lines[0];
    assert_eq!(start["type"], "start");
    assert_eq!(
        start["selector"], "sticky-partners",
        "our selector is in use"
    );
    assert_eq!(start["interval"], "slow-start(10ms doubling to 60ms)");
    let summary = lines.last().expect("a summary line");
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["converged"], Value::Bool(true));
    assert!(summary["rounds"].as_u64() > Some(0));
    assert!(summary["messages"].as_u64() > Some(0));
}

#[test]
fn its_own_argument_errors_are_one_line_usage_errors() {
    let out = run(&["--min-ms", "50", "--max-ms", "10"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(
        stderr.trim_end(),
        "gossiper: --min-ms/--max-ms: slow-start needs 0 < first <= steady, got 50..10 ms"
    );
}
