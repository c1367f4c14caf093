//! The demo: the Go program's `main`, as a command you can watch.
//!
//! It wires `--nodes` in-process nodes into a topology, gives each its own starting state (node
//! `i` writes `node-i = "hello from i"`), runs them on the threaded runtime (one thread per node,
//! real time, an in-memory network), injects `--writes` more writes at random nodes and random
//! times during the first second, and prints every node's state every `--print-every-ms` until
//! every node holds the same state. Then it prints a one-line summary and exits 0; if
//! `--max-duration` passes first, it exits 3.
//!
//! Everything random (the graph, the write schedule, every node's choices) derives from `--seed`,
//! so the same seed wires the same graph and schedules the same writes; the threads' timing
//! still varies from run to run, so round and message counts do too.
//!
//! The neighbour selector and the gossip interval come from a [`Strategies`] value: the
//! `gossiper` binary passes [`Strategies::builtin`], which maps `--selector` and `--interval`
//! to the built-ins, and another binary can swap in its own (see `examples/custom-strategy`):
//!
//! ```no_run
//! use gossiper_cli::demo::Strategies;
//! use gossiper_network::UniformRandom;
//!
//! let strategies = Strategies::builtin().with_selector(|_id, _args| Ok(Box::new(UniformRandom)));
//! std::process::exit(match gossiper_cli::main_with_strategies(std::env::args_os(), &strategies) {
//!     code if code == std::process::ExitCode::SUCCESS => 0,
//!     _ => 1,
//! });
//! ```

use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use clap::{Args, ValueEnum};
use gossiper_network::topology::Graph;
use gossiper_network::{
    ExponentialInterval, FixedInterval, GossipInterval, InMemoryNetwork, JitterInterval,
    LeastRecentlyContacted, NeighborSelector, ShuffledRoundRobin, Topology, UniformRandom,
};
use gossiper_node::runtime::threaded::{Cluster, Snapshot};
use gossiper_node::{Mode, Node, NodeConfig, Peers, Stats};
use gossiper_types::{KvMap, NodeId};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::Serialize;

use crate::CliError;

/// Most nodes the demo starts: each is an OS thread. The simulator is the tool for more.
pub const MAX_NODES: usize = 1_000;

/// Largest datagram, in bytes: the engine's default, safe under an Ethernet MTU.
const MTU: u32 = 1_400;

/// How often the watcher thread wakes, at most (to hand out writes on time).
const TICK: Duration = Duration::from_millis(5);

/// How often the watcher compares the nodes' digests, at most. A comparison locks every node's
/// snapshot slot and compares digests of one entry per node, so at 1,000 nodes it is a million
/// comparisons fighting 1,000 threads for the locks: done every `TICK`, as it once was, it kept
/// a core busy and starved the watcher past `--max-duration`.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// A text table shows at most this many nodes (evenly spaced ids, the first and last included),
/// so that it fits an 80×40 terminal. Each shown node costs one state copy; copying all of them
/// for every table is what made the demo at 1,000 nodes balloon.
const MAX_ROWS: usize = 16;

/// Writes are injected during the first this-many milliseconds (or half of `--max-duration`,
/// if that is shorter).
const WRITE_WINDOW_MS: u64 = 1_000;

/// Width of the progress bar in the text table.
const BAR_WIDTH: usize = 20;

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

    /// Give up (exit code 3) if the nodes do not agree within this many seconds.
    #[arg(long, default_value_t = 30.0)]
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
    /// Uniform in [`--min-ms`, `--max-ms`].
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
    fn validate(&self) -> Result<(), CliError> {
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

/// Makes the neighbour selector of one node.
pub type SelectorFactory =
    Box<dyn Fn(NodeId, &DemoArgs) -> Result<Box<dyn NeighborSelector>, CliError> + Send + Sync>;

/// Makes the gossip interval of one node.
pub type IntervalFactory =
    Box<dyn Fn(NodeId, &DemoArgs) -> Result<Box<dyn GossipInterval>, CliError> + Send + Sync>;

/// The customisation point: how each node gets its neighbour selector and gossip interval.
///
/// Factories are called once per node, with the node's id and the parsed flags, so a strategy
/// can differ per node and read any flag. Return [`CliError::usage`] for flags it cannot
/// accept; the demo prints it as one line and exits 2.
pub struct Strategies {
    selector: SelectorFactory,
    interval: IntervalFactory,
}

impl fmt::Debug for Strategies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Strategies").finish_non_exhaustive()
    }
}

impl Default for Strategies {
    fn default() -> Self {
        Strategies::builtin()
    }
}

impl Strategies {
    /// `--selector` and `--interval` mapped to the built-ins ([`builtin_selector`],
    /// [`builtin_interval`]).
    pub fn builtin() -> Self {
        Strategies {
            selector: Box::new(builtin_selector),
            interval: Box::new(builtin_interval),
        }
    }

    /// Replaces the selector factory; `--selector` is then ignored unless `f` reads it.
    pub fn with_selector<F>(mut self, f: F) -> Self
    where
        F: Fn(NodeId, &DemoArgs) -> Result<Box<dyn NeighborSelector>, CliError>
            + Send
            + Sync
            + 'static,
    {
        self.selector = Box::new(f);
        self
    }

    /// Replaces the interval factory; `--interval` is then ignored unless `f` reads it.
    pub fn with_interval<F>(mut self, f: F) -> Self
    where
        F: Fn(NodeId, &DemoArgs) -> Result<Box<dyn GossipInterval>, CliError>
            + Send
            + Sync
            + 'static,
    {
        self.interval = Box::new(f);
        self
    }

    /// The selector for node `id`.
    pub fn selector(
        &self,
        id: NodeId,
        args: &DemoArgs,
    ) -> Result<Box<dyn NeighborSelector>, CliError> {
        (self.selector)(id, args)
    }

    /// The interval for node `id`.
    pub fn interval(
        &self,
        id: NodeId,
        args: &DemoArgs,
    ) -> Result<Box<dyn GossipInterval>, CliError> {
        (self.interval)(id, args)
    }
}

/// The built-in selector `--selector` names.
pub fn builtin_selector(
    _id: NodeId,
    args: &DemoArgs,
) -> Result<Box<dyn NeighborSelector>, CliError> {
    Ok(match args.selector {
        SelectorKind::Random => Box::new(UniformRandom),
        SelectorKind::RoundRobin => Box::new(ShuffledRoundRobin::new()),
        SelectorKind::LeastRecent => Box::new(LeastRecentlyContacted::new()),
    })
}

/// The built-in interval `--interval` names, with `--interval-ms`, `--min-ms` and `--max-ms`.
pub fn builtin_interval(_id: NodeId, args: &DemoArgs) -> Result<Box<dyn GossipInterval>, CliError> {
    let ms = Duration::from_millis;
    let built: Result<Box<dyn GossipInterval>, _> = match args.interval {
        IntervalKind::Fixed => FixedInterval::new(ms(args.interval_ms)).map(|i| Box::new(i) as _),
        IntervalKind::Jitter => {
            JitterInterval::new(ms(args.min_ms), ms(args.max_ms)).map(|i| Box::new(i) as _)
        }
        IntervalKind::Exp => {
            ExponentialInterval::new(ms(args.interval_ms)).map(|i| Box::new(i) as _)
        }
    };
    built.map_err(|e| {
        let flags = match args.interval {
            IntervalKind::Jitter => "--min-ms/--max-ms",
            IntervalKind::Fixed | IntervalKind::Exp => "--interval-ms",
        };
        let name = args
            .interval
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned());
        CliError::usage(format!("--interval {name}: {e} (set {flags})"))
    })
}

/// SplitMix64: turns one seed into well-spread independent seeds.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The RNG seed of node `id` under `--seed seed`: every node gets its own stream.
pub fn node_seed(seed: u64, id: NodeId) -> u64 {
    splitmix64(seed ^ splitmix64(id.0.wrapping_add(1)))
}

/// Seeds of the demo's own streams, apart from the nodes'.
const TOPOLOGY_STREAM: u64 = 0x746f_706f_6c6f_6779; // "topology"
const WRITES_STREAM: u64 = 0x7772_6974_6573_0000; // "writes"

/// One scheduled application write.
#[derive(Debug, Clone, Serialize)]
struct ScheduledWrite {
    /// When, in milliseconds after the cluster started.
    at_ms: u64,
    /// The writing node (and owner of the key).
    node: u64,
    /// The key written.
    key: String,
}

/// Draws `count` writes at random nodes and times in `[0, window_ms)`, in time order.
fn schedule_writes(count: u32, nodes: usize, window_ms: u64, seed: u64) -> Vec<ScheduledWrite> {
    let mut rng = Pcg64Mcg::seed_from_u64(splitmix64(seed ^ WRITES_STREAM));
    let mut times: Vec<(u64, u64)> = (0..count)
        .map(|_| {
            (
                rng.random_range(0..window_ms.max(1)),
                rng.random_range(0..nodes as u64),
            )
        })
        .collect();
    times.sort_by_key(|&(at, _)| at);
    times
        .into_iter()
        .enumerate()
        .map(|(w, (at_ms, node))| ScheduledWrite {
            at_ms,
            node,
            key: format!("write-{w}"),
        })
        .collect()
}

/// The engine the demo runs: a key-value map, strategies chosen at run time.
type DemoNode = Node<KvMap, Box<dyn NeighborSelector>, Box<dyn GossipInterval>>;

/// Everything decided before the first thread starts.
struct Plan {
    graph: Graph,
    topology: Topology,
    writes: Vec<ScheduledWrite>,
    nodes: Vec<DemoNode>,
    selector_name: &'static str,
    interval_name: String,
}

/// Checks the flags and builds the graph, the schedule and the nodes.
fn plan(args: &DemoArgs, strategies: &Strategies) -> Result<Plan, CliError> {
    args.validate()?;
    let topology = args.topology();
    let mut topo_rng = Pcg64Mcg::seed_from_u64(splitmix64(args.seed ^ TOPOLOGY_STREAM));
    let graph = topology
        .build(args.nodes, &mut topo_rng)
        .map_err(|e| CliError::usage(format!("--topology {topology}: {e}")))?;
    if !graph.is_connected() {
        return Err(CliError::usage(format!(
            "--topology {topology} is disconnected: some nodes could never hear the others"
        )));
    }
    if args.fanout as usize > graph.min_degree() {
        return Err(CliError::usage(format!(
            "--fanout {} exceeds the smallest degree ({}) of {topology}; lower --fanout or pick \
             a denser topology",
            args.fanout,
            graph.min_degree()
        )));
    }
    let config = NodeConfig {
        mode: args.mode.into(),
        fanout: args.fanout,
        max_message_bytes: MTU,
        // A write is pushed to `fanout` peers at once; rounds then carry it the rest of the way.
        push_on_write: true,
        ..NodeConfig::default()
    };
    config
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let window_ms = WRITE_WINDOW_MS.min((args.max_duration * 500.0) as u64);
    let writes = schedule_writes(args.writes, args.nodes, window_ms, args.seed);

    let mut nodes = Vec::with_capacity(args.nodes);
    let (mut selector_name, mut interval_name) = ("", String::new());
    for i in 0..args.nodes as u64 {
        let id = NodeId(i);
        let selector = strategies.selector(id, args)?;
        let interval = strategies.interval(id, args)?;
        if i == 0 {
            // Reported in the header; a factory may still hand other nodes other strategies.
            selector_name = selector.name();
            interval_name = interval.describe();
        }
        let mut state = KvMap::new();
        state.set(
            id,
            &format!("node-{i}"),
            format!("hello from {i}").into_bytes(),
        );
        let mut node = Node::new(
            id,
            config,
            state,
            selector,
            interval,
            node_seed(args.seed, id),
        );
        node.set_peers(match topology {
            Topology::Complete => Peers::Complete {
                n: args.nodes as u64,
            },
            _ => Peers::List(graph.neighbors(id).to_vec()),
        });
        nodes.push(node);
    }
    Ok(Plan {
        graph,
        topology,
        writes,
        nodes,
        selector_name,
        interval_name,
    })
}

/// One node's row in a printed table.
#[derive(Debug, Clone, Serialize)]
struct Row {
    id: u64,
    /// Live keys held.
    keys: usize,
    /// Sum over owners of the highest version held: grows with every write learned.
    versions: u64,
    /// A short hash of the node's digest: equal fingerprints, (almost surely) equal states.
    fingerprint: String,
    /// The newest scheduled write this node holds, if any.
    newest: Option<String>,
    rounds: u64,
    messages_sent: u64,
}

/// FNV-1a over every entry of the state (owner, key, version, tombstone flag, value), folded to
/// 32 bits: equal fingerprints mean (almost surely) equal states, whatever the digests say.
fn fingerprint(state: &KvMap) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for owner in state.owners() {
        eat(&owner.0.to_le_bytes());
        eat(&state.max_version(owner).to_le_bytes());
        for (key, entry) in state.entries(owner) {
            eat(&(key.len() as u64).to_le_bytes());
            eat(key.as_bytes());
            eat(&entry.version.to_le_bytes());
            eat(&[u8::from(entry.deleted)]);
            eat(&(entry.value.len() as u64).to_le_bytes());
            eat(&entry.value);
        }
    }
    format!("{:08x}", (h ^ (h >> 32)) as u32)
}

fn row(id: NodeId, state: &KvMap, stats: &Stats, writes: &[ScheduledWrite]) -> Row {
    let newest = writes
        .iter()
        .rev()
        .find(|w| state.get(NodeId(w.node), &w.key).is_some())
        .map(|w| w.key.clone());
    Row {
        id: id.0,
        keys: state.len(),
        versions: state.total_versions(),
        fingerprint: fingerprint(state),
        newest,
        rounds: stats.rounds,
        messages_sent: stats.messages_sent,
    }
}

fn rows_of_nodes(nodes: &[DemoNode], writes: &[ScheduledWrite]) -> Vec<Row> {
    nodes
        .iter()
        .map(|n| row(n.id(), n.state(), n.stats(), writes))
        .collect()
}

fn rows_of_snapshots(snaps: &[Snapshot<KvMap>], writes: &[ScheduledWrite]) -> Vec<Row> {
    snaps
        .iter()
        .map(|s| row(s.id, &s.state, &s.stats, writes))
        .collect()
}

/// How many different states the rows show (1 once converged).
fn distinct_states(rows: &[Row]) -> usize {
    let mut seen: Vec<&str> = rows.iter().map(|r| r.fingerprint.as_str()).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// The JSON lines the demo prints, one object each, told apart by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    /// The plan: deterministic for a given set of flags.
    Start {
        nodes: usize,
        topology: String,
        links: usize,
        neighbors: Vec<Vec<u64>>,
        mode: &'static str,
        fanout: u32,
        selector: &'static str,
        interval: String,
        seed: u64,
        writes: &'a [ScheduledWrite],
    },
    /// A scheduled write was handed to its node.
    Write { t_ms: u64, node: u64, key: &'a str },
    /// Every node's state at one moment.
    Snapshot {
        t_ms: u64,
        rounds: u64,
        messages: u64,
        bytes: u64,
        distinct_states: usize,
        nodes: &'a [Row],
    },
    /// How the run ended.
    Summary(&'a Summary),
}

/// The final line: `converged`, `elapsed_ms`, `rounds`, `messages` and `bytes` at least.
#[derive(Debug, Serialize)]
struct Summary {
    converged: bool,
    /// When the watcher saw agreement (or gave up), in ms since the cluster started.
    elapsed_ms: u64,
    /// When the last node last learned something, in ms (the true convergence time).
    converged_at_ms: Option<u64>,
    /// Gossip rounds, over all nodes.
    rounds: u64,
    /// Datagrams sent, over all nodes.
    messages: u64,
    /// Bytes sent, over all nodes.
    bytes: u64,
    nodes: usize,
    /// Live keys every node holds (on convergence; else the most any node holds).
    keys: usize,
    writes: u32,
    distinct_states: usize,
    seed: u64,
}

/// Where output goes, in the chosen format.
struct Printer<W: Write> {
    out: W,
    format: Format,
}

impl<W: Write> Printer<W> {
    fn json(&mut self, line: &Line<'_>) -> Result<(), CliError> {
        let text = serde_json::to_string(line)
            .map_err(|e| CliError::failure(format!("cannot encode json: {e}")))?;
        self.line(format_args!("{text}"))
    }

    fn line(&mut self, args: fmt::Arguments<'_>) -> Result<(), CliError> {
        writeln!(self.out, "{args}")
            .and_then(|()| self.out.flush())
            .map_err(|e| CliError::from_output(&e))
    }

    fn start(&mut self, args: &DemoArgs, plan: &Plan) -> Result<(), CliError> {
        let mode: Mode = args.mode.into();
        match self.format {
            Format::Json => self.json(&Line::Start {
                nodes: args.nodes,
                topology: plan.topology.to_string(),
                links: plan.graph.edge_count(),
                neighbors: (0..plan.graph.len() as u64)
                    .map(|i| {
                        plan.graph
                            .neighbors(NodeId(i))
                            .iter()
                            .map(|n| n.0)
                            .collect()
                    })
                    .collect(),
                mode: mode.name(),
                fanout: args.fanout,
                selector: plan.selector_name,
                interval: plan.interval_name.clone(),
                seed: args.seed,
                writes: &plan.writes,
            }),
            Format::Text => {
                self.line(format_args!(
                    "gossiper demo: {} nodes on {} ({} links)",
                    args.nodes,
                    plan.topology,
                    plan.graph.edge_count(),
                ))?;
                self.line(format_args!(
                    "{mode}, fanout {}, selector {}, interval {}, seed {}",
                    args.fanout, plan.selector_name, plan.interval_name, args.seed
                ))?;
                let window = plan.writes.last().map_or(0, |w| w.at_ms);
                self.line(format_args!(
                    "{} writes by {:.1} s; a table every {} ms until all agree (at most {} s)",
                    plan.writes.len(),
                    window as f64 / 1_000.0,
                    args.print_every_ms,
                    args.max_duration
                ))
            }
        }
    }

    fn write(&mut self, t_ms: u64, w: &ScheduledWrite) -> Result<(), CliError> {
        match self.format {
            Format::Json => self.json(&Line::Write {
                t_ms,
                node: w.node,
                key: &w.key,
            }),
            Format::Text => self.line(format_args!(
                "{:>7}  n{} writes {}",
                seconds(t_ms),
                w.node,
                w.key
            )),
        }
    }

    /// One table: the totals, then a row per node in `rows` (all nodes, or the ones shown);
    /// `distinct` counts the different states among `counted` nodes.
    fn table(&mut self, t_ms: u64, view: &View, target: u64) -> Result<(), CliError> {
        let View {
            rows,
            totals,
            distinct,
            counted,
            nodes,
        } = view;
        match self.format {
            Format::Json => self.json(&Line::Snapshot {
                t_ms,
                rounds: totals.rounds,
                messages: totals.messages_sent,
                bytes: totals.bytes_sent,
                distinct_states: *distinct,
                nodes: rows,
            }),
            Format::Text => {
                self.line(format_args!(
                    "{:>7}  {} rounds, {} messages, {}; {} distinct state{}",
                    seconds(t_ms),
                    totals.rounds,
                    totals.messages_sent,
                    bytes(totals.bytes_sent),
                    distinct,
                    if *distinct == 1 { "" } else { "s" }
                ))?;
                self.line(format_args!(
                    "  {:>5} {:>5} {:>6}  {:<8}  {:<w$}  {:<8} {:>6}",
                    "node",
                    "keys",
                    "writes",
                    "state",
                    "progress",
                    "newest",
                    "rounds",
                    w = BAR_WIDTH + 2
                ))?;
                for r in rows {
                    self.line(format_args!(
                        "  {:>5} {:>5} {:>6}  {:<8}  {}  {:<8} {:>6}",
                        format!("n{}", r.id),
                        r.keys,
                        r.versions,
                        r.fingerprint,
                        bar(r.versions, target),
                        r.newest.as_deref().unwrap_or("-"),
                        r.rounds
                    ))?;
                }
                if rows.len() < *nodes {
                    let over = if counted < nodes {
                        "; states and totals over them"
                    } else {
                        ""
                    };
                    self.line(format_args!(
                        "  ({} of {} nodes shown{over})",
                        rows.len(),
                        nodes
                    ))?;
                }
                Ok(())
            }
        }
    }

    fn summary(&mut self, s: &Summary) -> Result<(), CliError> {
        match self.format {
            Format::Json => self.json(&Line::Summary(s)),
            Format::Text => {
                if s.converged {
                    self.line(format_args!(
                        "converged in {}: {} nodes agree on {} keys",
                        seconds(s.elapsed_ms),
                        s.nodes,
                        s.keys
                    ))?;
                } else {
                    self.line(format_args!(
                        "not converged after {}: {} distinct states among {} nodes",
                        seconds(s.elapsed_ms),
                        s.distinct_states,
                        s.nodes
                    ))?;
                }
                self.line(format_args!(
                    "  {} rounds ({:.1} per node), {} messages, {} bytes",
                    s.rounds,
                    s.rounds as f64 / s.nodes as f64,
                    s.messages,
                    s.bytes
                ))
            }
        }
    }
}

/// What one table shows: its rows, the totals over every node, and how many distinct states
/// the rows hold.
struct View {
    rows: Vec<Row>,
    totals: Stats,
    /// Distinct states among the `counted` nodes.
    distinct: usize,
    /// How many nodes `distinct` looked at: all of them, or the shown sample of a live table.
    counted: usize,
    /// Nodes in the cluster (more than `rows` when the table shows a sample).
    nodes: usize,
}

impl View {
    /// A view of every node's row, shown whole (JSON) or sampled (text, above `MAX_ROWS`); the
    /// distinct states are counted over every row.
    fn of(rows: Vec<Row>, totals: Stats, format: Format) -> View {
        let nodes = rows.len();
        let distinct = distinct_states(&rows);
        let rows = match format {
            Format::Json => rows,
            Format::Text => shown(nodes)
                .into_iter()
                .filter_map(|i| rows.get(i).cloned())
                .collect(),
        };
        View {
            rows,
            totals,
            distinct,
            counted: nodes,
            nodes,
        }
    }
}

/// The nodes a text table shows: all of them up to `MAX_ROWS`, else `MAX_ROWS` evenly spaced
/// indices from the first to the last.
fn shown(nodes: usize) -> Vec<usize> {
    if nodes <= MAX_ROWS {
        return (0..nodes).collect();
    }
    (0..MAX_ROWS)
        .map(|k| k * (nodes - 1) / (MAX_ROWS - 1))
        .collect()
}

/// Bytes in B, kB or MB (decimal), to keep a table's first line short.
fn bytes(b: u64) -> String {
    if b < 10_000 {
        format!("{b} B")
    } else if b < 10_000_000 {
        format!("{} kB", b / 1_000)
    } else {
        format!("{} MB", b / 1_000_000)
    }
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1_000, ms % 1_000)
}

/// `[#####-----]`: how much of everything ever written a node holds.
fn bar(have: u64, target: u64) -> String {
    let filled = (have.min(target) * BAR_WIDTH as u64)
        .checked_div(target)
        .map_or(BAR_WIDTH, |f| f as usize);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs the demo with `args`, building each node's selector and interval from `strategies`,
/// and prints to stdout. `Ok` means every node came to hold the same state.
pub fn run(args: &DemoArgs, strategies: &Strategies) -> Result<(), CliError> {
    run_to(args, strategies, io::stdout().lock())
}

/// [`run`], printing to `out`.
pub fn run_to(args: &DemoArgs, strategies: &Strategies, out: impl Write) -> Result<(), CliError> {
    let plan = plan(args, strategies)?;
    let mut printer = Printer {
        out,
        format: args.format,
    };
    printer.start(args, &plan)?;
    // Every node's version counter starts at 1 (its own key); each write adds one.
    let target = args.nodes as u64 + u64::from(args.writes);
    let start = View::of(
        rows_of_nodes(&plan.nodes, &plan.writes),
        Stats::default(),
        args.format,
    );
    printer.table(0, &start, target)?;

    let Plan { nodes, writes, .. } = plan;
    let network = InMemoryNetwork::new(MTU as usize);
    let cluster = Cluster::spawn(nodes, network)
        .map_err(|e| CliError::failure(format!("cannot start the cluster: {e}")))?;
    let every = Duration::from_millis(args.print_every_ms);
    let max = Duration::from_secs_f64(args.max_duration);
    let mut next_print = every;
    let mut next_check = Duration::ZERO;
    let mut pending = writes.iter().peekable();
    // Ends with the snapshots that showed agreement, or `None` when time ran out.
    let agreed = loop {
        let now = cluster.elapsed();
        while let Some(w) = pending.next_if(|w| Duration::from_millis(w.at_ms) <= now) {
            let (owner, key) = (NodeId(w.node), w.key.clone());
            let value = format!("{key} at n{}", w.node).into_bytes();
            cluster
                .write(owner, move |s: &mut KvMap| {
                    s.set(owner, &key, value);
                })
                .map_err(|e| CliError::failure(format!("write failed: {e}")))?;
            printer.write(millis(now), w)?;
        }
        // Digests first (cheap, and the comparison stops at the first difference), then whole
        // states: the demo claims agreement only when every node holds exactly the same entries.
        if now >= next_check {
            next_check = now + CHECK_EVERY;
            if pending.peek().is_none()
                && cluster.converged()
                && cluster.writes_applied() == u64::from(args.writes)
            {
                let snaps = cluster.snapshots();
                if snaps.windows(2).all(|w| w[0].state == w[1].state) {
                    break Some(snaps);
                }
            }
        }
        // Checked again after the (lock-taking) comparison, which can be slow when a thousand
        // node threads compete for two cores.
        if cluster.elapsed() >= max {
            break None;
        }
        if now >= next_print {
            if let Some(view) = live_view(&cluster, &writes, args.format, max) {
                printer.table(millis(now), &view, target)?;
            }
            while next_print <= now {
                next_print += every;
            }
        }
        let next_write = pending
            .peek()
            .map_or(Duration::MAX, |w| Duration::from_millis(w.at_ms));
        let wake = next_print.min(next_write).min(max).min(now + TICK);
        std::thread::sleep(wake.saturating_sub(cluster.elapsed()));
    };
    let elapsed_ms = millis(cluster.elapsed());
    let converged = agreed.is_some();
    let converged_at_ms = agreed
        .as_ref()
        .and_then(|snaps| snaps.iter().filter_map(|s| s.last_change).max())
        .map(|t| t.as_millis());
    // The final table reads the stopped nodes themselves: no copy of any state.
    let nodes = cluster
        .stop()
        .map_err(|e| CliError::failure(format!("stopping the cluster failed: {e}")))?;
    let rows = rows_of_nodes(&nodes, &writes);
    let mut stats = Stats::default();
    for n in &nodes {
        stats.accumulate(n.stats());
    }
    let keys = rows.iter().map(|r| r.keys).max().unwrap_or(0);
    let last = View::of(rows, stats, args.format);
    printer.table(elapsed_ms, &last, target)?;
    let summary = Summary {
        converged,
        elapsed_ms,
        converged_at_ms,
        rounds: stats.rounds,
        messages: stats.messages_sent,
        bytes: stats.bytes_sent,
        nodes: args.nodes,
        keys,
        writes: args.writes,
        distinct_states: last.distinct,
        seed: args.seed,
    };
    printer.summary(&summary)?;
    if converged {
        Ok(())
    } else {
        Err(CliError::not_converged(format!(
            "did not converge within {} s ({} distinct states among {} nodes); try a longer \
             --max-duration or a denser topology",
            args.max_duration, summary.distinct_states, args.nodes
        )))
    }
}

/// A table of the running cluster, or `None` if `deadline` passed while it was being made.
///
/// JSON consumers get every node's row and the totals over all nodes. A text table of more than
/// `MAX_ROWS` nodes reads only the shown nodes (one state copy each, and their totals): with a
/// thousand node threads sharing two cores the watcher gets a thousandth of a core, so every
/// lock it takes and every state it copies costs real seconds, and `--max-duration` must hold.
fn live_view(
    cluster: &DemoCluster,
    writes: &[ScheduledWrite],
    format: Format,
    deadline: Duration,
) -> Option<View> {
    let ids = cluster.ids();
    if format == Format::Json || ids.len() <= MAX_ROWS {
        let totals = cluster.totals();
        let snaps = cluster.snapshots();
        return Some(View::of(rows_of_snapshots(&snaps, writes), totals, format));
    }
    let mut rows = Vec::with_capacity(MAX_ROWS);
    let mut totals = Stats::default();
    for i in shown(ids.len()) {
        if cluster.elapsed() >= deadline {
            return None;
        }
        if let Ok(s) = cluster.snapshot(ids[i]) {
            totals.accumulate(&s.stats);
            rows.push(row(s.id, &s.state, &s.stats, writes));
        }
    }
    Some(View {
        distinct: distinct_states(&rows),
        counted: rows.len(),
        nodes: ids.len(),
        rows,
        totals,
    })
}

/// The running cluster the demo watches.
type DemoCluster = Cluster<KvMap, Box<dyn NeighborSelector>, Box<dyn GossipInterval>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, ExitStatus};
    use clap::Parser;

    fn args(flags: &[&str]) -> DemoArgs {
        let argv = std::iter::once("gossiper").chain(flags.iter().copied());
        Cli::try_parse_from(argv).expect("flags parse").demo
    }

    fn plan_err(flags: &[&str]) -> CliError {
        match plan(&args(flags), &Strategies::builtin()) {
            Ok(_) => panic!("{flags:?} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults_plan_a_connected_ten_node_graph() {
        let a = args(&[]);
        let p = plan(&a, &Strategies::builtin()).unwrap();
        assert_eq!(p.nodes.len(), 10);
        assert_eq!(p.graph.min_degree(), 3);
        assert!(p.graph.is_connected());
        assert_eq!(p.writes.len(), 5);
        assert_eq!(p.selector_name, "random");
        assert_eq!(p.interval_name, "jitter(100..300ms)");
        for (i, n) in p.nodes.iter().enumerate() {
            let key = format!("node-{i}");
            assert_eq!(n.state().len(), 1, "each node starts from its own state");
            assert!(n.state().get(n.id(), &key).is_some());
            assert_eq!(n.config().fanout, 1);
        }
    }

    #[test]
    fn bad_flags_are_one_line_usage_errors() {
        for (flags, needle) in [
            (&["--nodes", "0"][..], "--nodes 0"),
            (&["--nodes", "1001"], "--nodes 1001"),
            (&["--topology", "ring", "--fanout", "3"], "--fanout 3"),
            (&["--fanout", "0"], "--fanout"),
            (&["--nodes", "5"], "even"),
            (
                &[
                    "--topology",
                    "erdos-renyi",
                    "--p",
                    "0.0001",
                    "--nodes",
                    "50",
                ],
                "disconnected",
            ),
            (&["--min-ms", "300", "--max-ms", "100"], "--min-ms/--max-ms"),
            (
                &["--interval", "exp", "--interval-ms", "0"],
                "--interval exp",
            ),
            (&["--max-duration=-1"], "--max-duration"),
            (&["--max-duration", "NaN"], "--max-duration"),
            (&["--print-every-ms", "0"], "--print-every-ms"),
        ] {
            let e = plan_err(flags);
            assert_eq!(e.status, ExitStatus::Usage, "{flags:?}");
            assert!(e.message.contains(needle), "{flags:?}: {e}");
            assert!(!e.message.contains('\n'), "{flags:?}: {e}");
        }
    }

    #[test]
    fn same_seed_same_plan_other_seed_other_plan() {
        let fingerprint = |seed: &str| {
            let p = plan(&args(&["--seed", seed]), &Strategies::builtin()).unwrap();
            let links: Vec<Vec<NodeId>> = (0..10)
                .map(|i| p.graph.neighbors(NodeId(i)).to_vec())
                .collect();
            let writes: Vec<(u64, u64)> = p.writes.iter().map(|w| (w.at_ms, w.node)).collect();
            (links, writes)
        };
        assert_eq!(fingerprint("7"), fingerprint("7"));
        assert_ne!(fingerprint("7"), fingerprint("8"));
    }

    #[test]
    fn writes_are_scheduled_in_order_inside_the_window() {
        let w = schedule_writes(200, 7, 1_000, 3);
        assert_eq!(w.len(), 200);
        assert!(w.windows(2).all(|p| p[0].at_ms <= p[1].at_ms));
        assert!(w.iter().all(|x| x.at_ms < 1_000 && x.node < 7));
        let nodes: std::collections::BTreeSet<u64> = w.iter().map(|x| x.node).collect();
        assert_eq!(nodes.len(), 7, "200 draws reach every node");
        assert_eq!(w[13].key, "write-13");
        // A short --max-duration shrinks the window.
        let p = plan(&args(&["--max-duration", "0.4"]), &Strategies::builtin()).unwrap();
        assert!(p.writes.iter().all(|x| x.at_ms < 200));
    }

    #[test]
    fn node_seeds_are_distinct_per_node_and_per_seed() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..20 {
            for id in 0..50 {
                assert!(seen.insert(node_seed(seed, NodeId(id))));
            }
        }
    }

    #[test]
    fn fingerprints_follow_whole_states() {
        let mut a = KvMap::new();
        a.set(NodeId(1), "k", b"v".to_vec());
        let b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let mut c = KvMap::new();
        c.set(NodeId(1), "k", b"w".to_vec());
        assert_ne!(fingerprint(&a), fingerprint(&c), "same digest, other value");
        assert_eq!(fingerprint(&a).len(), 8);
    }

    #[test]
    fn bars_fill_with_progress() {
        assert_eq!(bar(0, 10), format!("[{}]", "-".repeat(BAR_WIDTH)));
        assert_eq!(bar(10, 10), format!("[{}]", "#".repeat(BAR_WIDTH)));
        assert_eq!(bar(5, 10).matches('#').count(), BAR_WIDTH / 2);
        assert_eq!(bar(99, 10), bar(10, 10));
    }

    #[test]
    fn a_small_fast_run_converges_and_reports_in_json() {
        let a = args(&[
            "--nodes",
            "6",
            "--interval",
            "fixed",
            "--interval-ms",
            "10",
            "--writes",
            "4",
            "--print-every-ms",
            "50",
            "--max-duration",
            "20",
            "--format",
            "json",
        ]);
        let mut out = Vec::new();
        run_to(&a, &Strategies::builtin(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is json"))
            .collect();
        assert_eq!(lines[0]["type"], "start");
        assert_eq!(lines[0]["neighbors"].as_array().unwrap().len(), 6);
        let writes = lines.iter().filter(|l| l["type"] == "write").count();
        assert_eq!(writes, 4);
        let last_table = &lines[lines.len() - 2];
        assert_eq!(last_table["type"], "snapshot");
        assert_eq!(last_table["distinct_states"], 1);
        for node in last_table["nodes"].as_array().unwrap() {
            assert_eq!(node["keys"], 10, "6 own keys and 4 writes");
            assert_eq!(node["newest"], "write-3");
        }
        let summary = &lines[lines.len() - 1];
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["converged"], true);
        assert!(summary["rounds"].as_u64().unwrap() > 0);
        assert!(summary["messages"].as_u64().unwrap() > 0);
        assert!(summary["bytes"].as_u64().unwrap() > summary["messages"].as_u64().unwrap());
        assert!(summary["converged_at_ms"].as_u64() <= summary["elapsed_ms"].as_u64());
    }

    #[test]
    fn a_run_that_cannot_finish_in_time_says_so() {
        // A 40-node ring needs about 20 hops; 0.2 s of 50 ms rounds allows 4.
        let a = args(&[
            "--nodes",
            "40",
            "--topology",
            "ring",
            "--interval",
            "fixed",
            "--interval-ms",
            "50",
            "--max-duration",
            "0.2",
        ]);
        let mut out = Vec::new();
        let e = run_to(&a, &Strategies::builtin(), &mut out).unwrap_err();
        assert_eq!(e.status, ExitStatus::NotConverged);
        assert!(
            e.message.starts_with("did not converge within 0.2 s"),
            "{e}"
        );
        let text = String::from_utf8(out).unwrap();
        let verdict = text.lines().rev().nth(1).unwrap();
        assert!(verdict.starts_with("not converged after"), "{verdict}");
    }

    #[test]
    fn custom_factories_are_used_and_their_errors_reported() {
        let strategies = Strategies::builtin()
            .with_selector(|_, _| Ok(Box::new(ShuffledRoundRobin::new())))
            .with_interval(|id, _| {
                FixedInterval::new(Duration::from_millis(10 + id.0))
                    .map(|i| Box::new(i) as Box<dyn GossipInterval>)
                    .map_err(|e| CliError::usage(e.to_string()))
            });
        let p = plan(&args(&[]), &strategies).unwrap();
        assert_eq!(p.selector_name, "round-robin");
        assert_eq!(p.nodes[3].interval().describe(), "fixed(13ms)");
        let refusing =
            Strategies::builtin().with_interval(|_, _| Err(CliError::usage("no intervals today")));
        let e = plan(&args(&[]), &refusing).err().expect("refused");
        assert_eq!(e.message, "no intervals today");
    }
}
