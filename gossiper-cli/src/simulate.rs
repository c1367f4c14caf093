//! `gossiper simulate`: measure a gossip protocol on thousands to millions of simulated nodes.
//!
//! This is the command-line face of the `gossiper-sim` crate. It parses the experiment (cluster,
//! protocol, timing model, faults), runs `--runs` independent simulations of the real engine on
//! every core, and prints the measures' mean, spread and range as a text table, one JSON object
//! or CSV rows; `--plot` draws the informed fraction per round as an SVG.
//!
//! ```text
//! gossiper simulate --nodes 10000 --mode push-pull --runs 20 --seed 1
//! gossiper simulate --nodes 1000 --protocol rumor --mode push --feedback --coin 2 --runs 100
//! gossiper simulate --nodes 500 --timing async --latency exp:20ms --loss 0.3 --format json
//! gossiper simulate --nodes 400 --partition 0..25:0-199 --crash 5..15:0-49:lose --plot run.svg
//! ```
//!
//! Every run is reproducible: run `i` uses seed `--seed + i`. When a run fails (the invariant
//! checker fires, or a protocol that promises convergence does not converge) the error line
//! names its seed and the command that replays exactly that run.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use gossiper_network::Topology;
use gossiper_node::{
    Feedback, LossOfInterest, Mode, Protocol, RumorConfig, RumorDirection, RumorReading,
};
use gossiper_sim::{
    Churn, Crash, Latency, NodeSet, Partition, RunReport, SimConfig, SimError, SimInterval,
    Summary, Timing, metrics::fmt_num, run_each, theory,
};
use gossiper_types::Register;
use serde::Serialize;
use serde_json::{Value, json};

use crate::CliError;

/// Which protocol family to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolArg {
    /// Compare replicas with a random peer every round (push, pull or push-pull).
    AntiEntropy,
    /// Rumor mongering (Demers et al. 1987): spread while hot, then lose interest.
    Rumor,
}

/// Exchange direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModeArg {
    /// The caller sends.
    Push,
    /// The caller asks.
    Pull,
    /// Both (anti-entropy only).
    PushPull,
}

/// How rumor mongering reads two of Demers et al.'s definitions (see `docs/theory.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadingArg {
    /// A recipient knows the rumor once its first copy arrived; the counter counts every
    /// unnecessary contact. Matches the paper's formula s = e^-(k+1)(1-s).
    Instant,
    /// The paper's own simulations (its Tables 1 and 2): a recipient that learned the rumor in
    /// this same cycle still counts as news, and the counter counts unnecessary contacts in a row.
    Demers87,
}

/// Timing model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimingArg {
    /// Synchronous rounds (the random phone-call model).
    Sync,
    /// Each node on its own timer; messages have latency.
    Async,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FormatArg {
    /// A summary table.
    Text,
    /// One JSON object.
    Json,
    /// One CSV row per run, then mean, std, min and max rows.
    Csv,
}

/// Options of `gossiper simulate`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SimulateArgs {
    /// Number of nodes (ids 0..N).
    #[arg(long, default_value_t = 1_000)]
    pub nodes: usize,
    /// Graph: complete, ring, star, grid, random-regular:K, erdos-renyi:P, watts-strogatz:K:BETA
    /// or barabasi-albert:M.
    #[arg(long, default_value = "complete")]
    pub topology: String,
    /// Anti-entropy or rumor mongering.
    #[arg(long, value_enum, default_value_t = ProtocolArg::AntiEntropy)]
    pub protocol: ProtocolArg,
    /// Exchange: push, pull or push-pull (rumor mongering: push or pull). Default push-pull for
    /// anti-entropy, push for rumor mongering.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Rumor: the sender loses interest only when the recipient already knew (default).
    #[arg(long, conflicts_with = "blind")]
    pub feedback: bool,
    /// Rumor: the sender loses interest whatever the recipient knew.
    #[arg(long)]
    pub blind: bool,
    /// Rumor: lose interest after K unnecessary contacts (default: counter 2).
    #[arg(long, value_name = "K", conflicts_with = "coin")]
    pub counter: Option<u32>,
    /// Rumor: lose interest with probability 1/K after each unnecessary contact.
    #[arg(long, value_name = "K")]
    pub coin: Option<u32>,
    /// Rumor: how to read "already knew" and the counter: instant (default) or demers87, the
    /// reading that reproduces the paper's tables.
    #[arg(long, value_enum)]
    pub reading: Option<ReadingArg>,
    /// Rumor: back it with one push-pull anti-entropy exchange every N rounds (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub anti_entropy_every: u32,
    /// Peers contacted per round.
    #[arg(long, default_value_t = 1)]
    pub fanout: u32,
    /// Timing model.
    #[arg(long, value_enum, default_value_t = TimingArg::Sync)]
    pub timing: TimingArg,
    /// Async gossip interval: fixed:100ms, uniform:50ms..150ms or exp:100ms. One round = its mean.
    #[arg(long, default_value = "fixed:100ms")]
    pub interval: String,
    /// Async message latency: 0, fixed:10ms, uniform:5ms..20ms or exp:10ms.
    #[arg(long)]
    pub latency: Option<String>,
    /// Independent runs (spread over the cores).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Master seed; run i uses seed + i.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores). Runs are spread over them, each holding its nodes in
    /// memory; with fewer runs than threads, each run spreads its rounds over the rest (sync
    /// timing). Results are the same whatever the number, so it is left out of the JSON echo of
    /// the arguments, and the output is byte-identical.
    #[arg(long)]
    #[serde(skip)]
    pub threads: Option<usize>,
    /// Probability that a message is lost, in [0, 1).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub loss: f64,
    /// Probability that a message is delivered twice, in [0, 1].
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub duplicate: f64,
    /// Reordering: sync, shuffle each delivery phase (> 0); async, probability of an extra delay
    /// of up to one round.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub reorder: f64,
    /// A partition FROM..UNTIL:GROUPS, rounds FROM (inclusive) to UNTIL (exclusive), groups split
    /// by '/', each a list of ids and ranges (0-99,200); unnamed nodes form one more group.
    /// Repeatable. Example: 5..20:0-499.
    #[arg(long, value_name = "SPEC")]
    pub partition: Vec<String>,
    /// A crash AT[..RESTART]:NODES[:keep|lose]: nodes stop at round AT and come back at RESTART
    /// with their state kept (default) or lost. Repeatable. Example: 5..15:0-99:lose.
    #[arg(long, value_name = "SPEC")]
    pub crash: Vec<String>,
    /// Churn RATE:FROM..UNTIL: each round, each live node is replaced by an empty one with
    /// probability RATE. Example: 0.01:0..20.
    #[arg(long, value_name = "SPEC")]
    pub churn: Option<String>,
    /// Give up after this many rounds.
    #[arg(long, default_value_t = 10_000)]
    pub max_rounds: u32,
    /// Turn the invariant checker off.
    #[arg(long)]
    pub no_check: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// Draw the informed fraction per round to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// Runs `gossiper simulate`.
pub fn run(args: &SimulateArgs) -> Result<(), CliError> {
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
    if let Some(p) = &args.plot
        && p.extension().and_then(|e| e.to_str()) != Some("svg")
    {
        return Err(CliError::usage(format!(
            "--plot writes SVG: {} must end in .svg",
            p.display()
        )));
    }
    check_memory(&config, args.runs, args.threads)?;
    let outcomes = with_progress(args.runs, args.threads, |threads, tick| {
        run_each::<Register<u64>>(&config, args.seed, args.runs, threads, tick)
    })
    .map_err(|e| failure(args, &e))?;
    // A topology that cannot be built (bad parameters, always disconnected, thinner than the
    // fanout) is a bad argument, not a result: one line, exit 2.
    if let Some(Err(e @ SimError::Topology { .. })) = outcomes.iter().find(|o| o.is_err()) {
        return Err(CliError::usage(e.to_string()));
    }
    // A failed run is reported, never dropped: its measures join the others when it ran to its
    // end (not converged), and every failure is listed with its seed and rerun command.
    let reports: Vec<RunReport> = outcomes
        .iter()
        .filter_map(|o| match o {
            Ok(r) => Some(r.clone()),
            Err(e) => e.report().cloned(),
        })
        .collect();
    let failures: Vec<Failed> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(run, o)| {
            let e = o.as_ref().err()?;
            let seed = e.seed().unwrap_or(args.seed);
            Some(Failed {
                run,
                seed,
                error: e.to_string(),
                rerun: rerun_command(args, seed),
                measured: e.report().is_some(),
            })
        })
        .collect();
    let summary = Summary::of(&reports);
    let text = match args.format {
        FormatArg::Text => text_report(args, &config, &summary, &failures),
        FormatArg::Json => json_report(args, &config, &summary, &failures),
        FormatArg::Csv => csv_report(&outcomes, &summary),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .map_err(|e| CliError::from_output(&e))?;
    if let Some(path) = &args.plot
        && !reports.is_empty()
    {
        plot(path, args, &config, &reports, &summary)
            .map_err(|e| CliError::failure(format!("cannot draw {}: {e}", path.display())))?;
    }
    match outcomes.iter().find_map(|o| o.as_ref().err()) {
        Some(first) => Err(failure(args, first)),
        None => Ok(()),
    }
}

/// Refuses, with one line, a batch whose runs would not fit in the memory available: each of
/// the `threads` workers holds one run's nodes at a time.
pub(crate) fn check_memory(
    config: &SimConfig,
    runs: usize,
    threads: Option<usize>,
) -> Result<(), CliError> {
    let threads = threads
        .unwrap_or_else(gossiper_sim::default_threads)
        .min(runs)
        .max(1) as u64;
    let per_run = gossiper_sim::memory::run_bytes::<Register<u64>>(config);
    let need = per_run.saturating_mul(threads);
    let Some(available) = available_memory() else {
        return Ok(());
    };
    if need <= available {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    let fix = if threads > 1 && per_run <= available {
        "use --threads 1 or fewer --nodes"
    } else {
        "use fewer --nodes"
    };
    Err(CliError::usage(format!(
        "--nodes {} needs about {:.1} GiB ({threads} thread(s) x {:.1} GiB per run) but {:.1} GiB \
         of memory is available; {fix}",
        config.nodes,
        gib(need),
        gib(per_run),
        gib(available)
    )))
}

/// The memory the kernel says is available (`MemAvailable` in `/proc/meminfo`), if it says.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A run that failed, as the reports list it.
struct Failed {
    run: usize,
    seed: u64,
    error: String,
    rerun: String,
    /// Whether its measures are in the summary (it ran to `--max-rounds`).
    measured: bool,
}

/// Runs a batch of `runs` runs on `threads` threads (default: all cores) with a progress bar:
/// `batch` gets the thread count and the callback to tick after each run. (The batch decides
/// what to do with more threads than runs: `run_each` gives them to the runs' rounds.)
pub(crate) fn with_progress<T>(
    runs: usize,
    threads: Option<usize>,
    batch: impl FnOnce(usize, &(dyn Fn() + Sync)) -> T,
) -> T {
    let threads = threads.unwrap_or_else(gossiper_sim::default_threads);
    let bar = progress_bar(runs);
    let tick = || {
        if let Some(b) = &bar {
            b.inc(1);
        }
    };
    let result = batch(threads, &tick);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    result
}

/// A progress bar on stderr, only when stderr is a terminal and there is more than one run.
fn progress_bar(runs: usize) -> Option<indicatif::ProgressBar> {
    if runs < 2 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(runs as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} runs")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// The error line for a failed run: what went wrong, its seed, and the command to replay it.
fn failure(args: &SimulateArgs, e: &SimError) -> CliError {
    failure_with(e, |seed| rerun_command(args, seed))
}

/// A failed run's error: a configuration error is a usage error; otherwise the line names the
/// seed and the command `rerun` builds for it, with exit 3 when the run did not converge.
pub(crate) fn failure_with(e: &SimError, rerun: impl FnOnce(u64) -> String) -> CliError {
    let Some(seed) = e.seed() else {
        return CliError::usage(e.to_string());
    };
    let line = format!("{e}; rerun with: {}", rerun(seed));
    match e {
        SimError::NotConverged { .. } => CliError::not_converged(line),
        _ => CliError::failure(line),
    }
}

/// The command line that replays the single run with `seed`.
pub fn rerun_command(args: &SimulateArgs, seed: u64) -> String {
    let mut c = format!(
        "gossiper simulate --nodes {} --topology {} --protocol {} --mode {} --fanout {} --timing {}",
        args.nodes,
        args.topology,
        value_name(args.protocol),
        value_name(mode_of(args)),
        args.fanout,
        value_name(args.timing)
    );
    if args.protocol == ProtocolArg::Rumor {
        c.push_str(if args.blind {
            " --blind"
        } else {
            " --feedback"
        });
        match (args.counter, args.coin) {
            (_, Some(k)) => c.push_str(&format!(" --coin {k}")),
            (Some(k), None) => c.push_str(&format!(" --counter {k}")),
            (None, None) => {}
        }
        if let Some(r) = args.reading {
            c.push_str(&format!(" --reading {}", value_name(r)));
        }
        if args.anti_entropy_every > 0 {
            c.push_str(&format!(
                " --anti-entropy-every {}",
                args.anti_entropy_every
            ));
        }
    }
    if args.timing == TimingArg::Async {
        c.push_str(&format!(" --interval {}", args.interval));
        if let Some(l) = &args.latency {
            c.push_str(&format!(" --latency {l}"));
        }
    }
    push_fault_flags(
        &mut c,
        [args.loss, args.duplicate, args.reorder],
        &args.partition,
        &args.crash,
        args.churn.as_deref(),
    );
    if args.max_rounds != 10_000 {
        c.push_str(&format!(" --max-rounds {}", args.max_rounds));
    }
    if args.no_check {
        c.push_str(" --no-check");
    }
    c.push_str(&format!(" --runs 1 --seed {seed}"));
    c
}

/// Appends the fault flags of a rerun command: `--loss`, `--duplicate`, `--reorder` (when not
/// 0), every `--partition` and `--crash`, and `--churn`.
pub(crate) fn push_fault_flags(
    c: &mut String,
    [loss, duplicate, reorder]: [f64; 3],
    partitions: &[String],
    crashes: &[String],
    churn: Option<&str>,
) {
    for (name, p) in [
        ("loss", loss),
        ("duplicate", duplicate),
        ("reorder", reorder),
    ] {
        if p != 0.0 {
            c.push_str(&format!(" --{name} {p}"));
        }
    }
    for p in partitions {
        c.push_str(&format!(" --partition {p}"));
    }
    for p in crashes {
        c.push_str(&format!(" --crash {p}"));
    }
    if let Some(p) = churn {
        c.push_str(&format!(" --churn {p}"));
    }
}

fn value_name<T: ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

/// The exchange `--mode` names, or the protocol's default: push-pull for anti-entropy (the
/// fastest), push for rumor mongering (the paper's default variant).
fn mode_of(args: &SimulateArgs) -> ModeArg {
    args.mode.unwrap_or(match args.protocol {
        ProtocolArg::AntiEntropy => ModeArg::PushPull,
        ProtocolArg::Rumor => ModeArg::Push,
    })
}

/// Turns the arguments into a simulator configuration; errors are one-line reasons.
pub fn to_config(args: &SimulateArgs) -> Result<SimConfig, String> {
    let mode = match mode_of(args) {
        ModeArg::Push => Mode::Push,
        ModeArg::Pull => Mode::Pull,
        ModeArg::PushPull => Mode::PushPull,
    };
    let rumor_only = args.feedback
        || args.blind
        || args.counter.is_some()
        || args.coin.is_some()
        || args.reading.is_some()
        || args.anti_entropy_every > 0;
    let (protocol, mode) = match args.protocol {
        ProtocolArg::AntiEntropy => {
            if rumor_only {
                return Err("--feedback, --blind, --counter, --coin, --reading and \
                     --anti-entropy-every need --protocol rumor"
                    .into());
            }
            (Protocol::AntiEntropy, mode)
        }
        ProtocolArg::Rumor => {
            let direction = match mode_of(args) {
                ModeArg::Push => RumorDirection::Push,
                ModeArg::Pull => RumorDirection::Pull,
                ModeArg::PushPull => {
                    return Err("rumor mongering is --mode push or --mode pull".into());
                }
            };
            let loss = match (args.counter, args.coin) {
                (_, Some(0)) | (Some(0), _) => {
                    return Err("k must be at least 1 (--counter K / --coin K)".into());
                }
                (_, Some(k)) => LossOfInterest::Coin(k),
                (Some(k), None) => LossOfInterest::Counter(k),
                (None, None) => LossOfInterest::Counter(2),
            };
            let rc = RumorConfig {
                direction,
                feedback: if args.blind {
                    Feedback::Blind
                } else {
                    Feedback::Feedback
                },
                loss,
                anti_entropy_every: args.anti_entropy_every,
                reading: match args.reading {
                    Some(ReadingArg::Demers87) => RumorReading::Demers87,
                    Some(ReadingArg::Instant) | None => RumorReading::Instant,
                },
            };
            // The backing exchange is push-pull, the fastest anti-entropy.
            (Protocol::Rumor(rc), Mode::PushPull)
        }
    };
    let timing = match args.timing {
        TimingArg::Sync => {
            if args.latency.is_some() {
                return Err("--latency needs --timing async (sync rounds have no latency)".into());
            }
            Timing::Sync
        }
        TimingArg::Async => Timing::Async {
            interval: parse_interval(&args.interval)?,
            latency: match &args.latency {
                Some(l) => parse_latency(l)?,
                None => Latency::Zero,
            },
        },
    };
    let mut config = SimConfig {
        nodes: args.nodes,
        topology: args
            .topology
            .parse::<Topology>()
            .map_err(|e| e.to_string())?,
        protocol,
        mode,
        fanout: args.fanout,
        timing,
        max_rounds: args.max_rounds,
        check: !args.no_check,
        ..SimConfig::default()
    };
    config.faults.loss = args.loss;
    config.faults.duplicate = args.duplicate;
    config.faults.reorder = args.reorder;
    for p in &args.partition {
        config.faults.partitions.push(parse_partition(p)?);
    }
    for c in &args.crash {
        config.faults.crashes.push(parse_crash(c)?);
    }
    if let Some(c) = &args.churn {
        config.faults.churn = Some(parse_churn(c)?);
    }
    Ok(config)
}

fn parse_num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.trim().parse().map_err(|_| format!("bad {what} '{s}'"))
}

/// `10ms`, `1.5s`, `250us` → microseconds.
pub(crate) fn parse_duration_us(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, scale) = if let Some(v) = s.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1e6)
    } else if s == "0" {
        ("0", 1.0)
    } else {
        return Err(format!("duration '{s}' needs a unit: us, ms or s"));
    };
    let v: f64 = parse_num(num, "duration")?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("duration '{s}' must be non-negative"));
    }
    Ok((v * scale).round() as u64)
}

fn parse_range_us(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' should be MIN..MAX"))?;
    let (a, b) = (parse_duration_us(a)?, parse_duration_us(b)?);
    if a > b {
        return Err(format!("'{s}': min is above max"));
    }
    Ok((a, b))
}

fn parse_interval(s: &str) -> Result<SimInterval, String> {
    let to_u32 = |us: u64| {
        u32::try_from(us)
            .ok()
            .filter(|&u| u > 0)
            .ok_or_else(|| format!("interval '{s}' must be between 1us and about 71 minutes"))
    };
    match s.split_once(':') {
        Some(("fixed", d)) => Ok(SimInterval::Fixed {
            us: to_u32(parse_duration_us(d)?)?,
        }),
        Some(("exp", d)) => Ok(SimInterval::Exp {
            mean_us: to_u32(parse_duration_us(d)?)?,
        }),
        Some(("uniform", r)) => {
            let (a, b) = parse_range_us(r)?;
            Ok(SimInterval::Uniform {
                min_us: to_u32(a)?,
                max_us: to_u32(b)?,
            })
        }
        _ => Err(format!(
            "bad interval '{s}': use fixed:100ms, uniform:50ms..150ms or exp:100ms"
        )),
    }
}

pub(crate) fn parse_latency(s: &str) -> Result<Latency, String> {
    if s == "0" || s == "zero" {
        return Ok(Latency::Zero);
    }
    match s.split_once(':') {
        Some(("fixed", d)) => Ok(Latency::Fixed {
            us: parse_duration_us(d)?,
        }),
        Some(("exp", d)) => Ok(Latency::Exp {
            mean_us: parse_duration_us(d)?,
        }),
        Some(("uniform", r)) => {
            let (min_us, max_us) = parse_range_us(r)?;
            Ok(Latency::Uniform { min_us, max_us })
        }
        _ => Err(format!(
            "bad latency '{s}': use 0, fixed:10ms, uniform:5ms..20ms or exp:10ms"
        )),
    }
}

fn parse_rounds(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("'{s}' should be FROM..UNTIL (rounds)"))?;
    Ok((parse_num(a, "round")?, parse_num(b, "round")?))
}

fn parse_nodes(s: &str) -> Result<NodeSet, String> {
    let mut ranges = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (parse_num(a, "node id")?, parse_num(b, "node id")?),
            None => {
                let v = parse_num(part, "node id")?;
                (v, v)
            }
        };
        ranges.push((a, b));
    }
    Ok(NodeSet(ranges))
}

pub(crate) fn parse_partition(s: &str) -> Result<Partition, String> {
    let (rounds, groups) = s
        .split_once(':')
        .ok_or_else(|| format!("bad partition '{s}': use FROM..UNTIL:GROUPS, e.g. 5..20:0-499"))?;
    let (from, until) = parse_rounds(rounds)?;
    let groups = groups
        .split('/')
        .map(parse_nodes)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Partition {
        from,
        until,
        groups,
    })
}

pub(crate) fn parse_crash(s: &str) -> Result<Crash, String> {
    let mut parts = s.split(':');
    let when = parts.next().unwrap_or_default();
    let nodes = parts
        .next()
        .ok_or_else(|| format!("bad crash '{s}': use AT[..RESTART]:NODES[:keep|lose]"))?;
    let keep_state = match parts.next() {
        None | Some("keep") => true,
        Some("lose") => false,
        Some(other) => return Err(format!("bad crash '{s}': '{other}' is not keep or lose")),
    };
    if parts.next().is_some() {
        return Err(format!("bad crash '{s}': too many ':'"));
    }
    let (at, restart) = match when.split_once("..") {
        Some((a, r)) => (parse_num(a, "round")?, Some(parse_num(r, "round")?)),
        None => (parse_num(when, "round")?, None),
    };
    Ok(Crash {
        at,
        restart,
        nodes: parse_nodes(nodes)?,
        keep_state,
    })
}

pub(crate) fn parse_churn(s: &str) -> Result<Churn, String> {
    let (rate, rounds) = s
        .split_once(':')
        .ok_or_else(|| format!("bad churn '{s}': use RATE:FROM..UNTIL, e.g. 0.01:0..20"))?;
    let (from, until) = parse_rounds(rounds)?;
    Ok(Churn {
        rate: parse_num(rate, "churn rate")?,
        from,
        until,
    })
}

fn describe(args: &SimulateArgs, config: &SimConfig) -> String {
    let protocol = match config.protocol {
        Protocol::AntiEntropy => format!("anti-entropy {}", config.mode),
        Protocol::Rumor(rc) => format!("rumor {}", rc.describe()),
    };
    let timing = match config.timing {
        Timing::Sync => "sync rounds".to_owned(),
        Timing::Async { .. } => format!(
            "async, interval {}, latency {}",
            args.interval,
            args.latency.as_deref().unwrap_or("0")
        ),
    };
    format!(
        "{} nodes, {} topology, {protocol}, fanout {}, {timing}, {} run(s), seed {}",
        config.nodes, args.topology, config.fanout, args.runs, args.seed
    )
}

fn text_report(args: &SimulateArgs, config: &SimConfig, s: &Summary, failed: &[Failed]) -> String {
    let mut out = format!("gossiper simulate: {}\n", describe(args, config));
    out.push_str(&format!("converged: {}/{} runs\n", s.converged, args.runs));
    for f in failed {
        let counted = if f.measured {
            "measured to --max-rounds, included below"
        } else {
            "not included below"
        };
        out.push_str(&format!(
            "FAILED run {} (seed {}): {} [{counted}]\n",
            f.run, f.seed, f.error
        ));
    }
    out.push('\n');
    push_stat_table(&mut out, s.measures());
    let expected = theory::expected(config);
    if let Some((formula, value)) = expected.rounds {
        out.push_str(&format!("\ntheory: rounds ≈ {formula} = {value:.2}\n"));
    }
    if let Some(r) = expected.residue {
        out.push_str(&format!("\ntheory: residue s = e^-(k+1)(1-s) = {r:.4}\n"));
    }
    if let Some((table, row)) = expected.paper {
        out.push_str(&format!(
            "\npaper (Demers et al. 1987, Table {}, k = {}): s {}, m {}, t_ave {}, t_last {}\n",
            table.number(),
            row.k,
            row.residue,
            row.traffic,
            row.t_ave,
            row.t_last
        ));
    }
    out
}

/// Appends a table of measures: name, mean, std, min, max.
pub(crate) fn push_stat_table<'a>(
    out: &mut String,
    measures: impl IntoIterator<Item = (&'a str, gossiper_sim::Stat)>,
) {
    out.push_str(&format!(
        "{:<20} {:>12} {:>12} {:>12} {:>12}\n",
        "measure", "mean", "std", "min", "max"
    ));
    for (name, st) in measures {
        out.push_str(&format!(
            "{:<20} {:>12} {:>12} {:>12} {:>12}\n",
            name,
            fmt_num(st.mean),
            fmt_num(st.std),
            fmt_num(st.min),
            fmt_num(st.max)
        ));
    }
}

pub(crate) fn stat_json(st: gossiper_sim::Stat) -> Value {
    json!({ "mean": st.mean, "std": st.std, "min": st.min, "max": st.max })
}

fn json_report(args: &SimulateArgs, config: &SimConfig, s: &Summary, failed: &[Failed]) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert(
        "args".into(),
        serde_json::to_value(args).unwrap_or(Value::Null),
    );
    obj.insert("seed".into(), json!(args.seed));
    obj.insert("runs".into(), json!(args.runs));
    obj.insert("measured_runs".into(), json!(s.runs));
    obj.insert("converged_runs".into(), json!(s.converged));
    let failures: Vec<Value> = failed
        .iter()
        .map(|f| {
            json!({
                "run": f.run,
                "seed": f.seed,
                "error": f.error,
                "rerun": f.rerun,
                "measured": f.measured,
            })
        })
        .collect();
    obj.insert("failures".into(), Value::Array(failures));
    for (name, st) in s.measures() {
        obj.insert(name.into(), stat_json(st));
    }
    let mut theory = serde_json::Map::new();
    let expected = theory::expected(config);
    if let Some((formula, value)) = expected.rounds {
        theory.insert("rounds_formula".into(), json!(formula));
        theory.insert("rounds".into(), json!(value));
    }
    if let Some(r) = expected.residue {
        theory.insert("residue".into(), json!(r));
    }
    obj.insert("theory".into(), Value::Object(theory));
    if let Some((table, row)) = expected.paper {
        obj.insert(
            "paper".into(),
            json!({
                "source": "Demers et al. 1987",
                "table": table.number(),
                "k": row.k,
                "residue": row.residue,
                "traffic": row.traffic,
                "t_ave": row.t_ave,
                "t_last": row.t_last,
            }),
        );
    }
    obj.insert("mean_curve".into(), json!(s.mean_curve));
    let mut text = Value::Object(obj).to_string();
    text.push('\n');
    text
}

/// A CSV field: quoted, with inner quotes doubled.
fn csv_text(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn csv_num(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else {
        format!("{x}")
    }
}

/// One row per run in run order (a failed run's row names its error in the last column, and has
/// its measures if it ran to its end), then the mean, std, min and max of the measured runs.
fn csv_report(outcomes: &[Result<RunReport, SimError>], s: &Summary) -> String {
    let mut out = String::from(
        "run,seed,converged,rounds,residue,traffic,t_ave,t_last,messages_per_node,\
         bytes_per_node,duplicates_per_node,failure\n",
    );
    for (i, o) in outcomes.iter().enumerate() {
        let (r, failure) = match o {
            Ok(r) => (Some(r), String::new()),
            Err(e) => (e.report(), csv_text(&e.to_string())),
        };
        let Some(r) = r else {
            let seed = o
                .as_ref()
                .err()
                .and_then(SimError::seed)
                .unwrap_or_default();
            out.push_str(&format!("{i},{seed},false,,,,,,,,,{failure}\n"));
            continue;
        };
        let vals = [
            r.rounds,
            r.residue,
            r.traffic,
            r.t_ave,
            r.t_last,
            r.messages_per_node,
            r.bytes_per_node,
            r.duplicates_per_node,
        ];
        let vals: Vec<String> = vals.iter().map(|&v| csv_num(v)).collect();
        out.push_str(&format!(
            "{i},{},{},{},{failure}\n",
            r.seed,
            r.converged,
            vals.join(",")
        ));
    }
    let measures = s.measures();
    for (label, pick) in [
        (
            "mean",
            (|st: gossiper_sim::Stat| st.mean) as fn(gossiper_sim::Stat) -> f64,
        ),
        ("std", |st| st.std),
        ("min", |st| st.min),
        ("max", |st| st.max),
    ] {
        let vals: Vec<String> = measures.iter().map(|(_, st)| csv_num(pick(*st))).collect();
        out.push_str(&format!("{label},,,{},\n", vals.join(",")));
    }
    out
}

/// The informed fraction per round: each run faint, the mean bold, the mean-field curve dashed
/// where one exists (anti-entropy on the complete graph, synchronous rounds).
fn plot(
    path: &std::path::Path,
    args: &SimulateArgs,
    config: &SimConfig,
    reports: &[RunReport],
    summary: &Summary,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let len = summary.mean_curve.len().max(2);
    let theory_curve = theory::expected(config)
        .curve
        .then(|| theory::informed_curve(config.mode, config.fanout, config.nodes, len - 1));
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "{} nodes, {}",
        config.nodes,
        match config.protocol {
            Protocol::AntiEntropy => format!("anti-entropy {}", config.mode),
            Protocol::Rumor(rc) => format!("rumor {}", rc.describe()),
        }
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..(len - 1) as f64, 0f64..1.02f64)?;
    chart
        .configure_mesh()
        .x_desc(if matches!(config.timing, Timing::Sync) {
            "round"
        } else {
            "round (mean gossip intervals)"
        })
        .y_desc("informed fraction")
        .draw()?;
    let faint = RGBColor(70, 110, 200).mix(0.18);
    for r in reports {
        chart.draw_series(LineSeries::new(
            r.curve.iter().enumerate().map(|(i, &y)| (i as f64, y)),
            faint.stroke_width(1),
        ))?;
    }
    chart
        .draw_series(LineSeries::new(
            summary
                .mean_curve
                .iter()
                .enumerate()
                .map(|(i, &y)| (i as f64, y)),
            RGBColor(20, 50, 160).stroke_width(3),
        ))?
        .label(format!("mean of {} run(s)", reports.len()))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(20, 50, 160)));
    if let Some(curve) = theory_curve {
        chart
            .draw_series(DashedLineSeries::new(
                curve.into_iter().enumerate().map(|(i, y)| (i as f64, y)),
                6,
                4,
                RGBColor(200, 40, 40).stroke_width(2),
            ))?
            .label("mean-field theory")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(200, 40, 40)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    let _ = args;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: SimulateArgs,
    }

    fn parse(extra: &[&str]) -> SimulateArgs {
        let mut v = vec!["t"];
        v.extend_from_slice(extra);
        T::try_parse_from(v).unwrap().a
    }

    #[test]
    fn specs_parse_into_the_simulator_config() {
        let a = parse(&[
            "--nodes",
            "100",
            "--partition",
            "5..20:0-49/60,70",
            "--crash",
            "3..9:1-3:lose",
            "--churn",
            "0.01:0..10",
            "--timing",
            "async",
            "--latency",
            "uniform:5ms..20ms",
        ]);
        let c = to_config(&a).unwrap();
        assert_eq!(c.faults.partitions[0].groups.len(), 2);
        assert_eq!(c.faults.partitions[0].group_of(70), 1);
        assert_eq!(c.faults.crashes[0].restart, Some(9));
        assert!(!c.faults.crashes[0].keep_state);
        assert!(matches!(
            c.timing,
            Timing::Async {
                latency: Latency::Uniform {
                    min_us: 5_000,
                    max_us: 20_000
                },
                ..
            }
        ));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn rumor_options_need_the_rumor_protocol_and_k_at_least_one() {
        assert!(to_config(&parse(&["--coin", "2"])).is_err());
        let e = to_config(&parse(&[
            "--protocol",
            "rumor",
            "--mode",
            "push",
            "--coin",
            "0",
        ]));
        assert!(e.unwrap_err().contains("k must be at least 1"));
        let e = to_config(&parse(&["--protocol", "rumor", "--mode", "push-pull"]));
        assert!(e.unwrap_err().contains("push or --mode pull"));
        // Without --mode, rumor mongering pushes.
        let c = to_config(&parse(&["--protocol", "rumor"])).unwrap();
        let Protocol::Rumor(rc) = c.protocol else {
            panic!("rumor mongering expected");
        };
        assert_eq!(rc.direction, RumorDirection::Push);
    }

    #[test]
    fn the_rerun_command_replays_one_run() {
        let a = parse(&[
            "--protocol",
            "rumor",
            "--mode",
            "pull",
            "--blind",
            "--coin",
            "3",
        ]);
        let c = rerun_command(&a, 42);
        assert!(c.ends_with("--runs 1 --seed 42"), "{c}");
        assert!(c.contains("--blind --coin 3"), "{c}");
        // The command parses back to the same configuration.
        let words: Vec<&str> = c.split(' ').skip(2).collect();
        assert_eq!(to_config(&parse(&words)), to_config(&a));
    }
}
