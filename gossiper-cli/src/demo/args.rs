//! The demo's flags, and the checks and topology they imply.

use clap::{Args, ValueEnum};
use gossiper_network::Topology;
use gossiper_node::Mode;

use crate::CliError;

/// Most nodes the demo starts: each is an OS thread. The simulator is the tool for more.
pub const MAX_NODES: usize = 1_000;

/// The demo's options. Every default is chosen so that a bare `gossiper` converges in a few
/// seconds on a laptop.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Number of nodes (2..=1000), one thread each.
    #[arg(long, default_value_t = 10)]
    pub nodes: usize,

    /// How the nodes are wired. The default is a random connected graph in which every node has
    /// `--degree` neighbours.
    #[arg(long, value_enum, default_value_t = TopologyKind::RandomRegular)]
    pub topology: TopologyKind,

    /// random-regular: neighbours per node (node count times degree must be even).
    #[arg(long, default_value_t = 3)]
    pub degree: usize,

    /// erdos-renyi: probability of each link, in (0, 1].
    #[arg(long, default_value_t = 0.3)]
    pub p: f64,

    /// watts-strogatz: neighbours per node in the starting ring lattice (even).
    #[arg(long, default_value_t = 4)]
    pub k: usize,

    /// watts-strogatz: probability of rewiring each lattice link, in [0, 1].
    #[arg(long, default_value_t = 0.1)]
    pub beta: f64,

    /// barabasi-albert: links each new node makes to existing ones.
    #[arg(long, default_value_t = 2)]
    pub m: usize,

    /// How a node picks the peers it gossips with each round.
    #[arg(long, value_enum, default_value_t = SelectorKind::Random)]
    pub selector: SelectorKind,

    /// How long a node waits between rounds.
    #[arg(long, value_enum, default_value_t = IntervalKind::Jitter)]
    pub interval: IntervalKind,

    /// fixed: the delay between rounds; exp: the mean delay. In milliseconds.
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,

    /// jitter: shortest delay between rounds, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub min_ms: u64,

    /// jitter: longest delay between rounds, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub max_ms: u64,

    /// The anti-entropy exchange each round performs.
    #[arg(long, value_enum, default_value_t = ModeArg::PushPull)]
    pub mode: ModeArg,

    /// Peers contacted per round; at most the topology's smallest degree.
    #[arg(long, default_value_t = 1)]
    pub fanout: u32,

    /// Writes injected at random nodes, at random times during the first second.
    #[arg(long, default_value_t = 5)]
    pub writes: u32,

    /// Seed of every random choice: the graph, the write schedule and each node's picks and
    /// delays. Fixed by default so that runs are reproducible; thread timing still varies.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// How often to print every node's state, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub print_every_ms: u64,

    /// Give up (exit code 3) if the nodes do not agree within this long: seconds, or a
    /// duration such as 500ms, 20s or 2m.
    #[arg(long, default_value = "30", value_parser = crate::sim_flags::parse_seconds)]
    pub max_duration: f64,

    /// Output: a readable table, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The topologies `--topology` offers; their parameters are separate flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopologyKind {
    /// Everyone is everyone's neighbour.
    Complete,
    /// Each node is linked to the next and the previous one.
    Ring,
    /// Node 0 is linked to everyone else.
    Star,
    /// A square-ish grid.
    Grid,
    /// Every node has `--degree` random neighbours.
    RandomRegular,
    /// Each pair is linked with probability `--p`.
    ErdosRenyi,
    /// A ring lattice of degree `--k`, links rewired with probability `--beta`.
    WattsStrogatz,
    /// Preferential attachment, `--m` links per new node.
    BarabasiAlbert,
}

/// The built-in neighbour selectors `--selector` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SelectorKind {
    /// Uniformly random peers.
    Random,
    /// Every neighbour once per cycle, reshuffled each cycle.
    RoundRobin,
    /// The neighbours contacted longest ago.
    LeastRecent,
}

/// The built-in gossip intervals `--interval` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntervalKind {
    /// Always `--interval-ms`.
    Fixed,
    /// Uniform in [`--min-ms`, `--max-ms`] (`uniform` is the same, as `simulate` spells it).
    #[value(alias = "uniform")]
    Jitter,
    /// Exponential with mean `--interval-ms` (a Poisson process).
    Exp,
}

/// The anti-entropy modes `--mode` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Send what you have.
    Push,
    /// Ask for what you lack.
    Pull,
    /// Both, in three messages.
    PushPull,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Push => Mode::Push,
            ModeArg::Pull => Mode::Pull,
            ModeArg::PushPull => Mode::PushPull,
        }
    }
}

/// The output formats `--format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Text,
    /// One JSON object per line, for programs.
    Json,
}

impl DemoArgs {
    /// The topology the flags describe (its parameters are checked when it is built).
    pub fn topology(&self) -> Topology {
        match self.topology {
            TopologyKind::Complete => Topology::Complete,
            TopologyKind::Ring => Topology::Ring,
            TopologyKind::Star => Topology::Star,
            TopologyKind::Grid => Topology::Grid,
            TopologyKind::RandomRegular => Topology::RandomRegular {
                degree: self.degree,
            },
            TopologyKind::ErdosRenyi => Topology::ErdosRenyi { p: self.p },
            TopologyKind::WattsStrogatz => Topology::WattsStrogatz {
                k: self.k,
                beta: self.beta,
            },
            TopologyKind::BarabasiAlbert => Topology::BarabasiAlbert { m: self.m },
        }
    }

    /// Checks the flags no builder checks. Topology and interval parameters are checked by
    /// their builders.
    pub(super) fn validate(&self) -> Result<(), CliError> {
        if !(2..=MAX_NODES).contains(&self.nodes) {
            return Err(CliError::usage(format!(
                "--nodes {} must be between 2 and {MAX_NODES}",
                self.nodes
            )));
        }
        if self.fanout == 0 {
            return Err(CliError::usage("--fanout must be at least 1"));
        }
        if self.print_every_ms == 0 {
            return Err(CliError::usage("--print-every-ms must be at least 1"));
        }
        if !(self.max_duration > 0.0 && self.max_duration <= 86_400.0) {
            return Err(CliError::usage(format!(
                "--max-duration {} must be in (0, 86400] seconds",
                self.max_duration
            )));
        }
        Ok(())
    }
}
