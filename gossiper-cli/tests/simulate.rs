//! `gossiper simulate` as a process: bad arguments give one line and exit 2, runs are
//! reproducible, and the JSON object names every measure.

use std::process::Output;

mod common;

use common::stderr;

fn simulate(args: &[&str]) -> Output {
    common::gossiper("simulate", args)
}

fn assert_usage_error(args: &[&str], needle: &str) {
    common::assert_usage_error("simulate", args, needle)
}

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    assert_usage_error(&["--loss", "-0.1"], "loss probability -0.1");
    assert_usage_error(&["--loss", "1"], "loss probability 1");
    assert_usage_error(
        &["--protocol", "rumor", "--mode", "push", "--counter", "0"],
        "k must be at least 1",
    );
    assert_usage_error(
        &["--protocol", "rumor", "--mode", "push", "--coin", "0"],
        "k must be at least 1",
    );
    assert_usage_error(
        &["--nodes", "100", "--partition", "2..9:0-49/100-120"],
        "names node 120",
    );
    assert_usage_error(&["--nodes", "100", "--crash", "3:500"], "names node 500");
    assert_usage_error(&["--partition", "9..2:0-10"], "must heal after it starts");
    assert_usage_error(&["--nodes", "1"], "at least 2 nodes");
    // Refused before anything is allocated: 4·10^9 engines need about 1.5 TiB (10^8, about
    // 40 GiB, is refused the same way on a machine with less than that available).
    assert_usage_error(&["--nodes", "4000000000"], "GiB");
    assert_usage_error(&["--reading", "demers87"], "need --protocol rumor");
    assert_usage_error(&["--latency", "fixed:10ms"], "--timing async");
    assert_usage_error(
        &["--timing", "async", "--latency", "fixed:10"],
        "needs a unit",
    );
    assert_usage_error(&["--topology", "moebius"], "unknown topology");
    assert_usage_error(
        &["--topology", "random-regular:3", "--nodes", "11"],
        "must be even",
    );
    assert_usage_error(
        &["--topology", "ring", "--fanout", "3"],
        "exceeds the smallest degree (2)",
    );
    assert_usage_error(
        &["--protocol", "rumor", "--mode", "push-pull"],
        "push or --mode pull",
    );
    assert_usage_error(&["--coin", "2"], "need --protocol rumor");
    assert_usage_error(&["--runs", "0"], "--runs must be at least 1");
    assert_usage_error(&["--plot", "out.png"], "must end in .svg");
    assert_usage_error(&["--format", "yaml"], "yaml");
    assert_usage_error(
        &[
            "--protocol",
            "rumor",
            "--mode",
            "push",
            "--coin",
            "2",
            "--counter",
            "2",
        ],
        "cannot be used with",
    );
}

#[test]
fn same_seed_same_output_and_other_seeds_differ() {
    let args = [
        "--nodes", "300", "--runs", "3", "--loss", "0.2", "--format", "csv",
    ];
    let a = simulate(&[&args[..], &["--seed", "9"]].concat());
    let b = simulate(&[&args[..], &["--seed", "9", "--threads", "3"]].concat());
    let c = simulate(&[&args[..], &["--seed", "10"]].concat());
    // One run spread over threads: still byte-identical.
    let one = ["--nodes", "3000", "--loss", "0.1", "--format", "json"];
    let t1 = simulate(&[&one[..], &["--threads", "1"]].concat());
    let t2 = simulate(&[&one[..], &["--threads", "2"]].concat());
    assert!(t1.status.success(), "{}", stderr(&t1));
    assert_eq!(t1.stdout, t2.stdout);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
}

#[test]
fn json_names_every_measure_beside_args_and_seed() {
    let o = simulate(&[
        "--nodes",
        "200",
        "--protocol",
        "rumor",
        "--mode",
        "push",
        "--feedback",
        "--coin",
        "2",
        "--runs",
        "4",
        "--seed",
        "3",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    for key in [
        "rounds",
        "residue",
        "traffic",
        "t_ave",
        "t_last",
        "messages_per_node",
        "bytes_per_node",
    ] {
        for field in ["mean", "std", "min", "max"] {
            assert!(v[key][field].is_number(), "{key}.{field} in {v}");
        }
    }
    assert_eq!(v["seed"], 3);
    assert_eq!(v["args"]["nodes"], 200);
    assert_eq!(v["args"]["protocol"], "rumor");
}

#[test]
fn a_failing_run_prints_its_seed_and_the_command_to_rerun_it() {
    let o = simulate(&[
        "--nodes",
        "1000",
        "--mode",
        "push",
        "--max-rounds",
        "3",
        "--seed",
        "41",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(err.contains("seed 41"), "{err}");
    assert!(err.contains("rerun with: gossiper simulate"), "{err}");
    assert!(err.contains("--runs 1 --seed 41"), "{err}");
}

#[test]
fn failed_runs_are_reported_beside_the_others_then_exit_3() {
    // Push on 1,000 nodes needs 17 to 19 rounds for seeds 1..=6; with 18 allowed, runs 0, 3 and
    // 5 (seeds 1, 4, 6) fall short.
    let args = [
        "--nodes",
        "1000",
        "--mode",
        "push",
        "--runs",
        "6",
        "--max-rounds",
        "18",
    ];
    let text = simulate(&args);
    assert_eq!(text.status.code(), Some(3));
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("converged: 3/6 runs"), "{out}");
    assert!(
        out.contains("FAILED run 3 (seed 4): not converged"),
        "{out}"
    );
    assert!(out.contains("residue"), "the table is printed: {out}");
    assert!(stderr(&text).contains("rerun with:"));

    let csv = simulate(&[&args[..], &["--format", "csv"]].concat());
    assert_eq!(csv.status.code(), Some(3));
    let out = String::from_utf8_lossy(&csv.stdout);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].ends_with(",failure"));
    assert_eq!(rows.len(), 1 + 6 + 4, "{out}");
    assert!(rows[4].starts_with("3,4,false,18,"), "{}", rows[4]);
    assert!(rows[4].ends_with("of live nodes informed\""), "{}", rows[4]);
    assert!(
        rows[2].ends_with(','),
        "a converged run has no failure: {}",
        rows[2]
    );

    let json = simulate(&[&args[..], &["--format", "json"]].concat());
    assert_eq!(json.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON object");
    assert_eq!(v["runs"], 6);
    assert_eq!(v["converged_runs"], 3);
    assert_eq!(v["failures"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["failures"][1]["seed"], 4);
    assert!(v["rounds"]["mean"].is_number());
}

#[test]
fn rumor_mongering_defaults_to_push() {
    // The README's own example: no --mode.
    let o = simulate(&["--protocol", "rumor", "--runs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("rumor push feedback counter(k=2)"), "{out}");
}

#[test]
fn the_demers87_reading_names_the_papers_row() {
    let o = simulate(&[
        "--protocol",
        "rumor",
        "--mode",
        "push",
        "--counter",
        "2",
        "--reading",
        "demers87",
        "--runs",
        "20",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("(demers87 reading)"), "{out}");
    assert!(
        out.contains("paper (Demers et al. 1987, Table 1, k = 2): s 0.037, m 3.3"),
        "{out}"
    );
}

#[test]
fn plot_writes_an_svg_with_runs_mean_and_theory() {
    let path = std::env::temp_dir().join(format!("gossiper-sim-{}.svg", std::process::id()));
    let p = path.to_string_lossy().into_owned();
    let o = simulate(&["--nodes", "300", "--runs", "3", "--plot", &p]);
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&path).expect("the plot was written");
    let _ = std::fs::remove_file(&path);
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("mean of 3 run(s)"));
    assert!(svg.contains("mean-field theory"));
    // Three faint runs, one bold mean, one dashed theory curve (many dash segments).
    assert!(svg.matches("<polyline").count() >= 5);
    // Rumor mongering (push, feedback, coin) has its recursion drawn too.
    let o = simulate(&[
        "--protocol",
        "rumor",
        "--coin",
        "2",
        "--runs",
        "2",
        "--plot",
        &p,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&path).expect("the plot was written");
    let _ = std::fs::remove_file(&path);
    assert!(svg.contains("mean-field theory"));
}

#[test]
fn plot_dash_draws_the_curve_and_the_theory_on_the_terminal_after_the_table() {
    let o = simulate(&["--nodes", "1000", "--runs", "2", "--plot", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let (table, plot) = text
        .split_once("\n\n1000 nodes, anti-entropy")
        .expect("a plot after the table");
    assert!(
        table.starts_with("gossiper simulate: 1000 nodes"),
        "{table}"
    );
    assert!(
        plot.contains("• mean of 2 run(s)") && plot.contains("· mean-field theory"),
        "{plot}"
    );
    // Push-pull informs everyone: the mean ends on the top row.
    let top = plot
        .lines()
        .find(|l| l.trim_start().starts_with("1.02 │"))
        .expect("the top row");
    assert!(top.trim_end().ends_with('•'), "{plot}");
    assert_usage_error(&["--plot", "-", "--format", "json"], "--format text");
}

#[test]
fn the_html_report_holds_the_chart_with_its_theory_curve_and_the_measures() {
    let o = simulate(&[
        "--nodes", "300", "--runs", "2", "--seed", "5", "--html", "-",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(page.starts_with("<!doctype html>"), "{page:.200}");
    assert!(!page.contains("<script"));
    assert!(
        page.contains("<svg") && page.contains("mean-field theory"),
        "{page}"
    );
    assert!(page.contains("<th scope=\"row\">rounds</th>"), "{page}");
    assert!(page.contains("<dt>seed</dt><dd>5</dd>"), "{page}");
    let o = simulate(&["--nodes", "300", "--html", "r.txt"]);
    assert_eq!(o.status.code(), Some(2));
}
