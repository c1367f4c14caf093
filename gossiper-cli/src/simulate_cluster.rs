//! `gossiper simulate-cluster`: the cluster protocol (the agent's `ClusterNode`: membership,
//! φ-accrual failure detection, generations, scuttlebutt key-value state) on simulated nodes,
//! over the simulator's faulty network, on virtual time.
//!
//! ```text
//! gossiper simulate-cluster --nodes 100 --runs 8
//! gossiper simulate-cluster --nodes 50 --loss 0.1 --crash 40..80:3-4 --format json
//! gossiper simulate-cluster --nodes 30 --partition 30..80:0-14 --duration 20s
//! ```
//!
//! Every fault time is counted in rounds of `--interval-ms`; `--write-at` and `--duration` are
//! durations. Run `i` uses seed `--seed + i`; a failed run prints its seed and the command that
//! replays it.

use std::io::Write;

use clap::{Args, ValueEnum};
use gossiper_sim::cluster::{ClusterSimConfig, ClusterSummary, run_cluster_many};
use serde::Serialize;
use serde_json::{Value, json};

use crate::CliError;
use crate::simulate::{
    failure_with, parse_churn, parse_crash, parse_duration_us, parse_latency, parse_partition,
    push_fault_flags, push_stat_table, stat_json, with_progress,
};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterFormat {
    /// A summary table.
    Text,
    /// One JSON object.
    Json,
}

/// Options of `gossiper simulate-cluster`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SimulateClusterArgs {
    /// Number of nodes (named n0 .. n{N-1}).
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// How many nodes, from n0, the others join through.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Gossip interval of every node, ms; also the length of a round in --crash and --partition.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// Peers per gossip round.
    #[arg(long, default_value_t = 3)]
    pub fanout: u32,
    /// φ at which a peer is declared dead (suspect from half of it).
    #[arg(long, default_value_t = 8.0)]
    pub phi_threshold: f64,
    /// One-way datagram latency: 0, fixed:10ms, uniform:5ms..20ms or exp:10ms.
    #[arg(long, default_value = "0")]
    pub latency: String,
    /// Probability that a datagram is lost, in [0, 1).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub loss: f64,
    /// Probability that a datagram is delivered twice, in [0, 1].
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub duplicate: f64,
    /// Probability that a datagram is held back by up to one interval (reordering).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub reorder: f64,
    /// A partition FROM..UNTIL:GROUPS in rounds, groups split by '/', each a list of ids and
    /// ranges (0-49,60); unnamed nodes form one more group. Repeatable. Example: 30..80:0-49.
    #[arg(long, value_name = "SPEC")]
    pub partition: Vec<String>,
    /// A crash AT[..RESTART]:NODES in rounds: the nodes stop at AT (state lost) and, with
    /// RESTART, come back then as a new generation. Repeatable. Example: 40..80:3-4.
    #[arg(long, value_name = "SPEC")]
    pub crash: Vec<String>,
    /// Restart every crash without its own ..RESTART this many rounds after it.
    #[arg(long, value_name = "ROUNDS")]
    pub restart_after: Option<u32>,
    /// Churn RATE:FROM..UNTIL: each round, each live node restarts (new generation, state lost)
    /// with probability RATE. Example: 0.01:20..40.
    #[arg(long, value_name = "SPEC")]
    pub churn: Option<String>,
    /// When the measured key is written at a random live node (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s")]
    pub write_at: String,
    /// Virtual time each run lasts (e.g. 20s); the end-of-run invariants are checked then.
    #[arg(long, default_value = "20s")]
    pub duration: String,
    /// How often the measures are sampled (their resolution), e.g. 10ms.
    #[arg(long, default_value = "10ms")]
    pub sample: String,
    /// Independent runs (spread over the cores).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Master seed; run i uses seed + i.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ClusterFormat::Text)]
    pub format: ClusterFormat,
}

/// Runs `gossiper simulate-cluster`.
pub fn run(args: &SimulateClusterArgs) -> Result<(), CliError> {
    let config = to_config(args).map_err(CliError::usage)?;
    config
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    if args.runs == 0 {
        return Err(CliError::usage("--runs must be at least 1"));
    }
    if args.threads == Some(0) {
        return Err(CliError::usage("--threads must be at least 1"));
    }
    let reports = with_progress(args.runs, args.threads, |threads, tick| {
        run_cluster_many(&config, args.seed, args.runs, threads, tick)
    })
    .map_err(|e| failure_with(&e, |seed| rerun_command(args, seed)))?;
    let summary = ClusterSummary::of(&reports);
    let converged = reports.iter().filter(|r| r.members_converged).count();
    let text = match args.format {
        ClusterFormat::Text => text_report(args, &summary, converged),
        ClusterFormat::Json => json_report(args, &summary, converged),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| CliError::from_output(&e))
}

/// Turns the arguments into a cluster simulation; errors are one-line reasons.
pub fn to_config(args: &SimulateClusterArgs) -> Result<ClusterSimConfig, String> {
    let ms = |s: &str, what: &str| {
        parse_duration_us(s)
            .map(|us| us / 1_000)
            .map_err(|e| format!("--{what}: {e}"))
    };
    let latency = parse_latency(&args.latency)?;
    let mut config = ClusterSimConfig {
        nodes: args.nodes,
        seeds: args.seeds,
        interval_ms: args.interval_ms,
        fanout: args.fanout,
        phi_threshold: args.phi_threshold,
        latency,
        write_at_ms: ms(&args.write_at, "write-at")?,
        duration_ms: ms(&args.duration, "duration")?,
        sample_ms: ms(&args.sample, "sample")?,
        ..ClusterSimConfig::default()
    };
    let f = &mut config.faults;
    f.loss = args.loss;
    f.duplicate = args.duplicate;
    f.reorder = args.reorder;
    for p in &args.partition {
        f.partitions.push(parse_partition(p)?);
    }
    for c in &args.crash {
        if c.ends_with(":keep") || c.ends_with(":lose") {
            return Err(format!(
                "bad crash '{c}': a cluster restart always loses its state (no :keep or :lose)"
            ));
        }
        let mut crash = parse_crash(c)?;
        crash.keep_state = false;
        if crash.restart.is_none() {
            crash.restart = args.restart_after.map(|r| crash.at.saturating_add(r));
        }
        f.crashes.push(crash);
    }
    if let Some(c) = &args.churn {
        f.churn = Some(parse_churn(c)?);
    }
    Ok(config)
}

/// The command line that replays the single run with `seed`.
pub fn rerun_command(args: &SimulateClusterArgs, seed: u64) -> String {
    let mut c = format!(
        "gossiper simulate-cluster --nodes {} --seeds {} --interval-ms {} --fanout {} \
         --phi-threshold {} --latency {} --write-at {} --duration {} --sample {}",
        args.nodes,
        args.seeds,
        args.interval_ms,
        args.fanout,
        args.phi_threshold,
        args.latency,
        args.write_at,
        args.duration,
        args.sample
    );
    push_fault_flags(
        &mut c,
        [args.loss, args.duplicate, args.reorder],
        &args.partition,
        &args.crash,
        args.churn.as_deref(),
    );
    if let Some(r) = args.restart_after {
        c.push_str(&format!(" --restart-after {r}"));
    }
    c.push_str(&format!(" --runs 1 --seed {seed}"));
    c
}

fn describe(args: &SimulateClusterArgs) -> String {
    format!(
        "{} nodes ({} seed(s)), interval {} ms, fanout {}, phi {}, latency {}, loss {}, {} run(s), seed {}",
        args.nodes,
        args.seeds,
        args.interval_ms,
        args.fanout,
        args.phi_threshold,
        args.latency,
        args.loss,
        args.runs,
        args.seed
    )
}

fn text_report(args: &SimulateClusterArgs, s: &ClusterSummary, converged: usize) -> String {
    let mut out = format!("gossiper simulate-cluster: {}\n", describe(args));
    out.push_str(&format!(
        "membership converged at the end: {converged}/{} runs; user state converged: all runs\n\n",
        s.runs
    ));
    push_stat_table(&mut out, s.measures.iter().copied());
    out.push_str("\n(times in ms of virtual time; a blank mean: the event did not happen)\n");
    out
}

fn json_report(args: &SimulateClusterArgs, s: &ClusterSummary, converged: usize) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert(
        "args".into(),
        serde_json::to_value(args).unwrap_or(Value::Null),
    );
    obj.insert("seed".into(), json!(args.seed));
    obj.insert("runs".into(), json!(s.runs));
    obj.insert("members_converged_runs".into(), json!(converged));
    for (name, st) in &s.measures {
        obj.insert((*name).into(), stat_json(*st));
    }
    let mut text = Value::Object(obj).to_string();
    text.push('\n');
    text
}
