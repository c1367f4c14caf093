//! `gossiper simulate-cluster` as a process: bad arguments give one line and exit 2, the JSON
//! object names every measure, and a run the checker fails names its seed and the command that
//! replays it.

use std::process::Output;

mod common;

use common::stderr;

fn simulate_cluster(args: &[&str]) -> Output {
    common::gossiper("simulate-cluster", args)
}

fn assert_usage_error(args: &[&str], needle: &str) {
    common::assert_usage_error("simulate-cluster", args, needle)
}

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    assert_usage_error(&["--loss", "-0.1"], "loss probability -0.1");
    assert_usage_error(&["--nodes", "1"], "need 2 to");
    assert_usage_error(&["--nodes", "10", "--crash", "3:500"], "names node 500");
    assert_usage_error(&["--crash", "3..9:1:keep"], "always loses its state");
    assert_usage_error(&["--write-at", "5s", "--duration", "2s"], "before the end");
    assert_usage_error(&["--duration", "20"], "needs a unit");
    assert_usage_error(&["--fanout", "0"], "fanout 0");
    assert_usage_error(&["--interval-ms", "5"], "interval 5 ms");
    assert_usage_error(&["--latency", "sometimes"], "bad latency");
    assert_usage_error(&["--partition", "9..2:0-10"], "must heal after it starts");
    assert_usage_error(
        &["--duration", "5s", "--partition", "10..60:0-4"],
        "after the run's end",
    );
    assert_usage_error(&["--runs", "0"], "--runs must be at least 1");
    assert_usage_error(&["--format", "csv"], "csv");
    assert_usage_error(&["--detector", "foo"], "foo");
    assert_usage_error(&["--join-at", "9s", "--duration", "5s"], "late join");
    assert_usage_error(&["--idle-window", "5"], "needs a unit");
}

/// The JSON object without the two figures that are the process's, not the seed's.
fn without_cost(mut v: serde_json::Value) -> serde_json::Value {
    let obj = v.as_object_mut().expect("an object");
    obj.remove("wall_ms_per_virtual_s");
    obj.remove("peak_rss_bytes");
    v
}

#[test]
fn both_detectors_are_accepted_and_named_in_the_header_and_the_json() {
    for detector in ["phi", "swim"] {
        let common = ["--nodes", "12", "--duration", "3s", "--detector", detector];
        let o = simulate_cluster(&common);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        let header = text.lines().next().unwrap_or_default();
        assert!(header.contains(&format!("detector {detector}")), "{header}");
        for row in [
            "detect_first_ms",
            "join_ms",
            "idle_bytes_per_node_s",
            "wall_ms_per_virtual_s",
        ] {
            assert!(text.contains(row), "{row} in {text}");
        }
        assert!(text.contains("peak RSS: "), "{text}");
        let o = simulate_cluster(&[&common[..], &["--format", "json"]].concat());
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
        assert_eq!(v["detector"], detector, "{v}");
        assert_eq!(v["args"]["detector"], detector, "{v}");
    }
}

#[test]
fn json_output_parses_and_names_every_measure() {
    let args = [
        "--nodes",
        "20",
        "--duration",
        "5s",
        "--crash",
        "20..35:4",
        // The detection bound below is φ's; the late joiner comes before the crash.
        "--detector",
        "phi",
        "--join-at",
        "1s",
        "--loss",
        "0.05",
        "--runs",
        "2",
        "--format",
        "json",
    ];
    let o = simulate_cluster(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["runs"], 2);
    assert_eq!(v["members_converged_runs"], 2);
    for key in [
        "settle_ms",
        "write_ms",
        "detect_ms",
        "rejoin_ms",
        "false_suspicions",
        "false_deaths",
        "messages_per_node_s",
        "bytes_per_node_s",
        "detect_first_ms",
        "join_ms",
        "idle_messages_per_node_s",
        "idle_bytes_per_node_s",
        "wall_ms_per_virtual_s",
    ] {
        for stat in ["mean", "std", "min", "max"] {
            assert!(v[key][stat].is_number(), "{key}.{stat} in {v}");
        }
    }
    assert!(v["detect_ms"]["mean"].as_f64().is_some_and(|d| d > 0.0));
    let first = v["detect_first_ms"]["max"].as_f64().unwrap_or(f64::NAN);
    assert!(first <= v["detect_ms"]["min"].as_f64().unwrap_or(0.0) || first.is_nan());
    assert!(
        v["idle_bytes_per_node_s"]["min"]
            .as_f64()
            .is_some_and(|b| b > 0.0)
    );
    assert!(v["join_ms"]["min"].as_f64().is_some_and(|j| j > 0.0));
    // Linux reports the peak resident set; elsewhere it is null.
    let rss = &v["peak_rss_bytes"];
    assert!(
        rss.as_u64().is_some_and(|b| b > 0) || rss.is_null(),
        "{rss}"
    );
    // The same seed gives the same figures, the process's own cost aside.
    let again: serde_json::Value =
        serde_json::from_slice(&simulate_cluster(&args).stdout).expect("one JSON object");
    assert_eq!(without_cost(again), without_cost(v));
}

#[test]
fn a_failed_run_names_its_seed_and_the_command_that_replays_it() {
    // The partition heals 1 ms before the end: the checker finds the sides disagreeing.
    let args = [
        "--nodes",
        "20",
        "--duration",
        "5901ms",
        "--write-at",
        "3s",
        "--latency",
        "fixed:5ms",
        "--partition",
        "10..59:0-9",
        "--seed",
        "4",
    ];
    let o = simulate_cluster(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("(seed 4)") && err.contains("disagree on the user view"),
        "{err}"
    );
    assert!(
        err.contains("rerun with: gossiper simulate-cluster --nodes 20")
            && err.contains("--partition 10..59:0-9")
            && err.contains("--runs 1 --seed 4"),
        "{err}"
    );
}
