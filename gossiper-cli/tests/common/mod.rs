//! Helpers shared by the process tests that start the `gossiper` binary.
// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `gossiper SUBCOMMAND ARGS...` to completion.
pub fn gossiper(subcommand: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gossiper"))
        .arg(subcommand)
        .args(args)
        .output()
        .expect("the gossiper binary starts")
}

/// The process's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a usage error: exit 2, nothing on stdout, one line on stderr containing `needle`.
pub fn assert_usage_error(subcommand: &str, args: &[&str], needle: &str) {
    let o = gossiper(subcommand, args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
}
