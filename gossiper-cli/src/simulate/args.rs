//! The flags of `gossiper simulate`, as clap parses them.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;

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
