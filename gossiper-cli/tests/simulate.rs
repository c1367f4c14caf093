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
    assert_usage_error(&["--latency", "fixed:10ms"], "--timing async");
    assert_usage_error(
        &["--timing", "async", "--latency", "fixed:10"],
        "needs a unit",
    );
    assert_usage_error(&["--topology", "moebius"], "unknown topology");
    assert_usage_error(&["--protocol", "rumor"], "push or --mode pull");
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
    let b = simulate(&[&args[..], &["--seed", "9"]].concat());
    let c = simulate(&[&args[..], &["--seed", "10"]].concat());
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
}
