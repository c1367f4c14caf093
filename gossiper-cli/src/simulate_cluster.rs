//! `gossiper simulate-cluster`: the cluster protocol (the agent's `ClusterNode`: membership,
//! failure detection by SWIM or φ-accrual, generations, scuttlebutt key-value state) on
//! simulated nodes, over the simulator's faulty network, on virtual time.
//!
//! ```text
//! gossiper simulate-cluster --nodes 100 --runs 8
//! gossiper simulate-cluster --nodes 50 --loss 0.1 --crash 40..80:3-4 --format json
//! gossiper simulate-cluster --nodes 30 --partition 30..80:0-14 --duration 20s
//! gossiper simulate-cluster --nodes 1000 --detector phi --write-at 8s --join-at 8s --duration 15s
//! ```
//!
//! Every fault time is counted in rounds of `--interval-ms`; `--write-at`, `--join-at`,
//! `--idle-window`, `--start-over` and `--duration` are durations. Run `i` uses seed `--seed + i`; a failed run
//! prints its seed and the command that replays it. On a terminal, one line on stderr shows
//! the runs done and the virtual time reached; it never changes the results.

use crate::detector::DetectorArg;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use gossiper_sim::Stat;
use gossiper_sim::cluster::{ClusterSimConfig, ClusterSummary, ClusterTick, run_cluster_many};
use serde::Serialize;
use serde_json::{Value, json};

use crate::CliError;
use crate::sim_flags::{
    FaultArgs, Format, RunArgs, failure_with, parse_duration_us, push_stat_table, stat_json,
};

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
    /// Failure detector every node runs.
    #[arg(long, value_enum, default_value_t = DetectorArg::Swim)]
    pub detector: DetectorArg,
    /// φ at which a peer is declared dead (suspect from half of it); the φ detector.
    #[arg(long, default_value_t = 8.0)]
    pub phi_threshold: f64,
    /// Latency, loss, duplication, reordering, partitions, crashes and churn, in rounds of
    /// --interval-ms (shared with `simulate`). A crash restarts as a new generation, its state
    /// lost; so does a churned node.
    #[command(flatten)]
    #[serde(flatten)]
    pub faults: FaultArgs,
    /// Restart every crash without its own ..RESTART this many rounds after it.
    #[arg(long, value_name = "ROUNDS")]
    pub restart_after: Option<u32>,
    /// When the measured key is written at a random live node (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s")]
    pub write_at: String,
    /// When the late joiner, the last node n{N-1}, starts (the others start in the first
    /// interval); join_ms is from then until every other live node lists it alive. "off": it
    /// starts with the others.
    #[arg(long, default_value = "2s")]
    pub join_at: String,
    /// Idle window length: the window ends at the first scheduled disturbance (the write, the
    /// late join, the first crash, partition or churn round) and idle_bytes_per_node_s and
    /// idle_messages_per_node_s are what was sent in it per live node per second; reported
    /// only if the membership settled before the window opened. 0 disables them.
    #[arg(long, default_value = "500ms")]
    pub idle_window: String,
    /// The nodes start at random times within this time from 0 (e.g. 10s), as in a rolling
    /// start; 0: all within the first interval. The late joiner keeps --join-at.
    #[arg(long, default_value = "0")]
    pub start_over: String,
    /// Start from a formed cluster (SWIM only): every node but the late joiner starts at 0
    /// knowing all the others alive, as after a restart from a saved member list; skips the
    /// join storm, which at 10,000 nodes costs more than the rest of the run.
    #[arg(long)]
    pub formed: bool,
    /// Virtual time each run lasts (e.g. 20s); the end-of-run invariants are checked then.
    #[arg(long, default_value = "20s")]
    pub duration: String,
    /// How often the measures are sampled (their resolution), e.g. 10ms.
    #[arg(long, default_value = "10ms")]
    pub sample: String,
    /// Runs, seed, threads and output format (shared with `simulate`).
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunArgs,
}

/// What the process measured of itself (not of the simulated cluster): these vary from one
/// invocation to the next, every other figure is fixed by the seed.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Wall-clock ms each run took per second of virtual time.
    pub wall_ms_per_virtual_s: Stat,
    /// The process's peak resident set (VmHWM), bytes; `None` where unavailable.
    pub peak_rss_bytes: Option<u64>,
}

/// Runs `gossiper simulate-cluster`.
pub fn run(args: &SimulateClusterArgs) -> Result<(), CliError> {
    let config = to_config(args).map_err(CliError::usage)?;
    config
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    args.run.check()?;
    if args.run.format == Format::Csv {
        return Err(CliError::usage(
            "--format csv: simulate-cluster prints text or json",
        ));
    }
    let threads = args.run.threads().min(args.run.runs);
    let watch = RunWatch::new(args.run.runs, config.duration_ms);
    let (stop, ticks) = mpsc::channel::<()>();
    let reports = std::thread::scope(|s| {
        if std::io::stderr().is_terminal() {
            let watch = &watch;
            s.spawn(move || watch.show(&ticks));
        }
        let r = run_cluster_many(&config, args.run.seed, args.run.runs, threads, &|t| {
            watch.tick(t)
        });
        drop(stop);
        r
    })
    .map_err(|e| failure_with(&e, |seed| rerun_command(args, seed)))?;
    let cost = Cost {
        wall_ms_per_virtual_s: watch.wall_ms_per_virtual_s(),
        peak_rss_bytes: peak_rss_bytes(),
    };
    let summary = ClusterSummary::of(&reports);
    let converged = reports.iter().filter(|r| r.members_converged).count();
    let text = match args.run.format {
        Format::Text | Format::Csv => text_report(args, &summary, converged, &cost),
        Format::Json => json_report(args, &summary, converged, &cost),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| CliError::from_output(&e))
}

/// Each run's progress and wall time, fed by the runs' ticks (from their worker threads).
struct RunWatch {
    runs: usize,
    duration_ms: u64,
    done: AtomicUsize,
    /// Virtual ms each run reached; `u64::MAX` before it starts.
    at_ms: Vec<AtomicU64>,
    /// When each run started, then its wall ms.
    wall: Mutex<Vec<(Option<Instant>, f64)>>,
}

impl RunWatch {
    fn new(runs: usize, duration_ms: u64) -> RunWatch {
        RunWatch {
            runs,
            duration_ms,
            done: AtomicUsize::new(0),
            at_ms: (0..runs).map(|_| AtomicU64::new(u64::MAX)).collect(),
            wall: Mutex::new(vec![(None, f64::NAN); runs]),
        }
    }

    fn tick(&self, t: ClusterTick) {
        match t {
            ClusterTick::At(i, ms) => self.at_ms[i].store(ms, Ordering::Relaxed),
            ClusterTick::Started(i) => {
                self.at_ms[i].store(0, Ordering::Relaxed);
                self.wall.lock().unwrap_or_else(|e| e.into_inner())[i].0 = Some(Instant::now());
            }
            ClusterTick::Done(i) => {
                self.at_ms[i].store(u64::MAX, Ordering::Relaxed);
                let mut wall = self.wall.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(t0) = wall[i].0 {
                    wall[i].1 = t0.elapsed().as_secs_f64() * 1e3;
                }
                drop(wall);
                self.done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The progress line: runs done, and the virtual time the runs in progress reached.
    fn line(&self) -> String {
        let running: Vec<u64> = self
            .at_ms
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .filter(|&a| a != u64::MAX)
            .collect();
        let mut line = format!(
            "simulate-cluster: {}/{} runs done",
            self.done.load(Ordering::Relaxed),
            self.runs
        );
        if let (Some(lo), Some(hi)) = (running.iter().min(), running.iter().max()) {
            let s = |ms: u64| format!("{:.1}", ms as f64 / 1e3);
            let (lo, hi) = (s(*lo), s(*hi));
            let reached = if lo == hi { lo } else { format!("{lo}-{hi}") };
            line.push_str(&format!(
                ", virtual time {reached} s of {} s",
                s(self.duration_ms)
            ));
        }
        line
    }

    /// Redraws the progress line on stderr five times a second until `stop` hangs up, then
    /// clears it.
    fn show(&self, stop: &mpsc::Receiver<()>) {
        let mut err = std::io::stderr();
        while let Err(mpsc::RecvTimeoutError::Timeout) =
            stop.recv_timeout(Duration::from_millis(200))
        {
            let _ = write!(err, "\r\x1b[2K{}", self.line());
            let _ = err.flush();
        }
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }

    /// Each run's wall ms per virtual second, summarised.
    fn wall_ms_per_virtual_s(&self) -> Stat {
        let seconds = self.duration_ms as f64 / 1e3;
        let wall = self.wall.lock().unwrap_or_else(|e| e.into_inner());
        Stat::of(wall.iter().map(|&(_, ms)| ms / seconds))
    }
}

/// The process's peak resident set size (`VmHWM` in `/proc/self/status`), bytes; `None` where
/// the system does not say.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Turns the arguments into a cluster simulation; errors are one-line reasons.
pub fn to_config(args: &SimulateClusterArgs) -> Result<ClusterSimConfig, String> {
    let ms = |s: &str, what: &str| {
        parse_duration_us(s)
            .map(|us| us / 1_000)
            .map_err(|e| format!("--{what}: {e}"))
    };
    let latency = args.faults.latency()?;
    let mut config = ClusterSimConfig {
        nodes: args.nodes,
        seeds: args.seeds,
        interval_ms: args.interval_ms,
        fanout: args.fanout,
        phi_threshold: args.phi_threshold,
        detector: args.detector.detector(),
        latency,
        write_at_ms: ms(&args.write_at, "write-at")?,
        join_at_ms: match args.join_at.as_str() {
            "off" => None,
            j => Some(ms(j, "join-at")?),
        },
        idle_window_ms: ms(&args.idle_window, "idle-window")?,
        start_over_ms: ms(&args.start_over, "start-over")?,
        formed: args.formed,
        duration_ms: ms(&args.duration, "duration")?,
        sample_ms: ms(&args.sample, "sample")?,
        ..ClusterSimConfig::default()
    };
    config.faults = args.faults.faults()?;
    for (crash, spec) in config.faults.crashes.iter_mut().zip(&args.faults.crash) {
        if spec.ends_with(":keep") {
            return Err(format!(
                "bad crash '{spec}': a cluster restart always loses its state (no :keep)"
            ));
        }
        crash.keep_state = false;
        if crash.restart.is_none() {
            crash.restart = args.restart_after.map(|r| crash.at.saturating_add(r));
        }
    }
    Ok(config)
}

/// The command line that replays the single run with `seed`.
pub fn rerun_command(args: &SimulateClusterArgs, seed: u64) -> String {
    let mut c = format!(
        "gossiper simulate-cluster --nodes {} --seeds {} --interval-ms {} --fanout {} \
         --detector {} --phi-threshold {} --write-at {} --join-at {} \
         --idle-window {} --start-over {} --duration {} --sample {}",
        args.nodes,
        args.seeds,
        args.interval_ms,
        args.fanout,
        args.detector.detector().name(),
        args.phi_threshold,
        args.write_at,
        args.join_at,
        args.idle_window,
        args.start_over,
        args.duration,
        args.sample
    );
    if args.formed {
        c.push_str(" --formed");
    }
    args.faults.push_flags(&mut c);
    if let Some(r) = args.restart_after {
        c.push_str(&format!(" --restart-after {r}"));
    }
    RunArgs::push_rerun(&mut c, seed);
    c
}

fn describe(args: &SimulateClusterArgs) -> String {
    format!(
        "{} nodes ({} seed(s)), detector {}, interval {} ms, fanout {}, phi {}, latency {}, loss {}, {} run(s), seed {}",
        args.nodes,
        args.seeds,
        args.detector.detector().name(),
        args.interval_ms,
        args.fanout,
        args.phi_threshold,
        args.faults.latency.as_deref().unwrap_or("0"),
        args.faults.loss,
        args.run.runs,
        args.run.seed
    )
}

fn text_report(
    args: &SimulateClusterArgs,
    s: &ClusterSummary,
    converged: usize,
    cost: &Cost,
) -> String {
    let mut out = format!("gossiper simulate-cluster: {}\n", describe(args));
    out.push_str(&format!(
        "membership converged at the end: {converged}/{} runs; user state converged: all runs\n\n",
        s.runs
    ));
    push_stat_table(
        &mut out,
        s.measures
            .iter()
            .copied()
            .chain([("wall_ms_per_virtual_s", cost.wall_ms_per_virtual_s)]),
    );
    out.push_str(&format!(
        "\npeak RSS: {}\n",
        cost.peak_rss_bytes
            .map_or("unavailable".into(), |b| format!(
                "{b} bytes ({:.1} MiB)",
                b as f64 / 1_048_576.0
            ))
    ));
    out.push_str(
        "\n(times in ms of virtual time; a blank mean: the event did not happen; idle_*: sent \
         per live node per second in the idle window, blank if not settled by then)\n",
    );
    out
}

fn json_report(
    args: &SimulateClusterArgs,
    s: &ClusterSummary,
    converged: usize,
    cost: &Cost,
) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert(
        "args".into(),
        serde_json::to_value(args).unwrap_or(Value::Null),
    );
    obj.insert("seed".into(), json!(args.run.seed));
    obj.insert("runs".into(), json!(s.runs));
    obj.insert("detector".into(), json!(args.detector.detector().name()));
    obj.insert("members_converged_runs".into(), json!(converged));
    for (name, st) in &s.measures {
        obj.insert((*name).into(), stat_json(*st));
    }
    obj.insert(
        "wall_ms_per_virtual_s".into(),
        stat_json(cost.wall_ms_per_virtual_s),
    );
    obj.insert("peak_rss_bytes".into(), json!(cost.peak_rss_bytes));
    let mut text = Value::Object(obj).to_string();
    text.push('\n');
    text
}
