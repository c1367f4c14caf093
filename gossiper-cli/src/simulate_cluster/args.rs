//! The flags of `gossiper simulate-cluster`, as clap parses them; the faults and the runs are
//! the ones `simulate` takes too ([`FaultArgs`], [`RunArgs`]).

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::detector::DetectorArg;
use crate::sim_flags::{FaultArgs, HtmlArgs, RunArgs};

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
    /// The time step of the series that --format csv prints and --plot draws, e.g. 100ms. Each
    /// step reads every node's member list (N² a step): a coarser step costs less.
    #[arg(long, default_value = "100ms")]
    pub step: String,
    /// Draw, over time, the fraction of live nodes that mark the crashed nodes dead (with
    /// --crash; each run faint, their mean bold) and the fraction that hold the measured write
    /// (dashed; bold without --crash): to this SVG file, or on the terminal with `-` (after the
    /// text report).
    #[arg(long, value_name = "FILE.svg|-")]
    pub plot: Option<PathBuf>,
    /// Runs, seed, threads and output format (shared with `simulate`).
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunArgs,
    /// The report as a web page (shared with `simulate`); for the cluster it adds a heat map of
    /// what the live nodes think of the crashed, joining and a sample of other members over
    /// time (the first run's).
    #[command(flatten)]
    #[serde(flatten)]
    pub html: HtmlArgs,
}
