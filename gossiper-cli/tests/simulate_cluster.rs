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
    assert_usage_error(&["--format", "yaml"], "yaml");
    assert_usage_error(&["--plot", "out.png"], "must end in .svg");
    assert_usage_error(&["--plot", "-", "--format", "csv"], "--format text");
    assert_usage_error(
        &["--format", "csv", "--step", "0"],
        "--step must be at least 1ms",
    );
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

/// The CSV rows, split into fields, after the header (which is checked).
fn csv_rows(o: &Output) -> Vec<Vec<String>> {
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "run,seed,t_ms,live,alive,suspect,dead,bytes_per_s,crashed_dead_fraction,write_fraction"
        )
    );
    lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[test]
fn csv_is_a_time_series_per_run_that_follows_the_crash_and_the_write() {
    // Two runs of 20 nodes; n5 crashes at 2 s for good; the write is at 1 s; a step of 250 ms.
    let args = [
        "--nodes",
        "20",
        "--crash",
        "20:5",
        "--write-at",
        "1s",
        "--duration",
        "6s",
        "--step",
        "250ms",
        "--runs",
        "2",
        "--seed",
        "3",
        "--format",
        "csv",
    ];
    let o = simulate_cluster(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = csv_rows(&o);
    assert_eq!(rows.len(), 2 * 24, "6 s in steps of 250 ms, twice");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 10, "{row:?}");
        assert_eq!(row[0], (i / 24).to_string());
        assert_eq!(row[1], (3 + i / 24).to_string(), "run i has seed 3 + i");
        assert_eq!(row[2], (250 * (i % 24 + 1)).to_string());
    }
    let field = |run: usize, t_ms: u64, col: usize| -> String {
        rows.iter()
            .find(|r| r[0] == run.to_string() && r[2] == t_ms.to_string())
            .map(|r| r[col].clone())
            .expect("a row")
    };
    for run in 0..2 {
        // No crashed node is down before 2 s, so the fraction is blank; at the end every live
        // node (19) marks n5 dead and holds the write.
        assert_eq!(field(run, 1_750, 8), "");
        assert_eq!(field(run, 6_000, 8), "1");
        assert_eq!(field(run, 750, 9), "", "no write before 1 s");
        assert_eq!(field(run, 6_000, 9), "1");
        assert_eq!(field(run, 6_000, 3), "19");
        let alive: u64 = field(run, 6_000, 4).parse().expect("a count");
        assert_eq!(
            alive,
            19 * 19,
            "every live node holds the 19 live ones alive"
        );
    }
    // The same seeds give the same rows.
    assert_eq!(simulate_cluster(&args).stdout, o.stdout);
}

#[test]
fn the_plot_draws_on_the_terminal_or_into_an_svg_file() {
    // `:lose` is accepted (it is what a cluster restart does anyway).
    let common = ["--nodes", "16", "--crash", "20:3:lose", "--duration", "5s"];
    let o = simulate_cluster(&[&common[..], &["--plot", "-"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    // The table first, then the plot with its legend; the mean reaches the top row by the end.
    assert!(
        text.starts_with("gossiper simulate-cluster: 16 nodes"),
        "{text}"
    );
    assert!(
        text.contains("• marking the crashed nodes dead, mean of 1 run(s)")
            && text.contains("· holding the write"),
        "{text}"
    );
    let top = text
        .lines()
        .find(|l| l.trim_start().starts_with("1.02 │"))
        .expect("the top row");
    assert!(top.trim_end().ends_with('•'), "{text}");
    let dir = std::env::temp_dir().join(format!("gossiper-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let svg = dir.join("cluster.svg");
    let path = svg.to_str().expect("a UTF-8 path");
    let o = simulate_cluster(&[&common[..], &["--plot", path, "--runs", "2"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let drawn = std::fs::read_to_string(&svg).expect("the SVG was written");
    assert!(
        drawn.starts_with("<svg") && drawn.contains("mean of 2 run(s)"),
        "{drawn:.200}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_html_report_is_one_page_with_the_heat_map_and_the_same_measures() {
    let common = ["--nodes", "16", "--crash", "20:3", "--duration", "5s"];
    let o = simulate_cluster(&[&common[..], &["--html", "-"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(page.starts_with("<!doctype html>"), "{page:.200}");
    assert!(page.trim_end().ends_with("</html>"));
    // Self-contained: no script, nothing fetched.
    assert!(!page.contains("<script") && !page.contains("src=\"http"));
    assert!(page.contains("class=\"heatmap\"") && page.contains("n3 · crash 2.0s"));
    // The crashed n3 ends dead to the 15 live nodes (the late joiner n15 among them).
    assert!(
        page.contains("n3 · crash 2.0s (down)") && page.contains("0 alive, 0 suspect, 15 dead"),
        "{page}"
    );
    // The same runs as without --html: the JSON measures do not move.
    let json = |extra: &[&str]| -> serde_json::Value {
        let o = simulate_cluster(&[&common[..], &["--format", "json"], extra].concat());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_object_mut().unwrap().remove("wall_ms_per_virtual_s");
        v.as_object_mut().unwrap().remove("peak_rss_bytes");
        v
    };
    let dir = std::env::temp_dir().join(format!("gossiper-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.html");
    let with_page = json(&["--html", file.to_str().unwrap()]);
    assert_eq!(with_page, json(&[]));
    assert!(std::fs::read_to_string(&file).unwrap().contains("<svg"));
    let _ = std::fs::remove_dir_all(&dir);
    assert_usage_error(&["--html", "report.svg"], "must end in .html");
    assert_usage_error(&["--html", "-", "--plot", "-"], "both write to stdout");
}

#[test]
fn a_run_that_crashes_every_node_is_not_reported_as_converged() {
    let base = ["--nodes", "20", "--crash", "25:0-19", "--duration", "4s"];
    let o = simulate_cluster(&base);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("membership converged at the end: 0/1 runs")
            && text.contains("no node was live at the end of 1 run(s)"),
        "{text}"
    );
    let o = simulate_cluster(&[&base[..], &["--format", "json"]].concat());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["members_converged_runs"], 0);
    assert_eq!(v["runs_without_live_nodes"], 1);
    assert_eq!(v["detect_ms"]["mean"], serde_json::Value::Null);
}
