//! The flags of `gossiper simulate`, as clap parses them.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::sim_flags::{FaultArgs, HtmlArgs, RunArgs};

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
    /// Runs, seed, threads and output format (shared with `simulate-cluster`).
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunArgs,
    /// Latency, loss, duplication, reordering, partitions, crashes and churn (shared with
    /// `simulate-cluster`).
    #[command(flatten)]
    #[serde(flatten)]
    pub faults: FaultArgs,
    /// Give up after this many rounds.
    #[arg(long, default_value_t = 10_000)]
    pub max_rounds: u32,
    /// Turn the invariant checker off.
    #[arg(long)]
    pub no_check: bool,
    /// Draw the informed fraction per round: to this SVG file, or on the terminal with `-`
    /// (after the text report).
    #[arg(long, value_name = "FILE.svg|-")]
    pub plot: Option<PathBuf>,
    /// The report as a web page (shared with `simulate-cluster`).
    #[command(flatten)]
    #[serde(flatten)]
    pub html: HtmlArgs,
}
