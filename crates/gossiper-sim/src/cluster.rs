//! The cluster protocol under simulation: a population of real
//! [`ClusterNode`]s (membership, failure detection by SWIM or φ-accrual, generations,
//! scuttlebutt state) on virtual time, over the simulator's faulty network.
//!
//! Node `i` is named `n{i}` and reached at a synthetic address, `10.a.b.c:7946` with `abc` the
//! 24-bit index (never bound: it is only a key). Node 0 and the next `seeds - 1` nodes are the
//! seeds every node joins through; every node starts at a random instant of the first gossip
//! interval and writes a `boot` key naming its generation. Every datagram a node hands back goes
//! through the network model of [`Faults`] (loss, duplication, reordering, partitions) with a
//! [`Latency`]; every fault time is counted in rounds of `interval_ms`, as in the asynchronous
//! model of [`crate::sim`]. A crash drops the node (its state is lost); a restart is a new
//! `ClusterNode` with the same name and address and the next generation, as a real restart.
//! One key is written at a random live node at `write_at_ms`. The last node, `n{N-1}`, is the
//! late joiner: with `join_at_ms` set it starts only then, after the others settled.
//!
//! The measures are kept from the nodes' membership events ([`ClusterEvent`]), not by scanning
//! every member list of every node: the simulator's own cost per event is O(1), and it keeps
//! no table of N × N entries (only one byte per observer for each node a crash spec names and
//! for the late joiner). A full scan of every node's state is done once, at the end, for the
//! end-of-run invariants.
//!
//! One master seed derives every node's seed, the start phases, the writer and every network
//! fault, so the same configuration and seed give the same [`ClusterReport`], bit for bit.
//!
//! ```
//! use gossiper_sim::cluster::{ClusterSimConfig, run_cluster};
//!
//! let config = ClusterSimConfig { nodes: 20, duration_ms: 4_000, ..ClusterSimConfig::default() };
//! let report = run_cluster(&config, 1).unwrap();
//! assert!(report.settle_ms.is_some() && report.write_ms.is_some());
//! assert_eq!(run_cluster(&config, 1).unwrap(), report);
//! ```

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use gossiper_cluster::{
    ClusterConfig, ClusterEvent, ClusterNode, Detector, KnownMember, MemberStatus,
};
use gossiper_types::{NodeId, Time};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::config::{ConfigError, Faults, Latency, SimConfig, SimInterval, Timing};
use crate::metrics::Stat;
use crate::net::{self, EventQueue, Network, Population, Slots, apply_schedule};
use crate::runner::{run_indexed, run_seed};
use crate::sim::{SimError, Violation, node_seed};
use gossiper_types::seed::split;

mod series;
mod views;
mod watch;

pub use series::{ClusterStep, mean_series};
pub use views::{MAX_VIEW_MEMBERS, MAX_VIEW_STEPS, MemberView, ViewRecording, ViewStep};
use watch::{Seen, Watch};

/// The key written once during a run; its propagation time is measured.
pub const WRITE_KEY: &str = "sim-write";
/// The key a node writes when it restarts, holding its generation (the no-zombie check reads
/// it).
pub const BOOT_KEY: &str = "boot";
/// The port of every synthetic address.
pub const PORT: u16 = 7946;

/// Everything one simulated cluster run needs besides its seed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSimConfig {
    /// Number of nodes, `n0 .. n{nodes-1}`; 2 to 2^24.
    pub nodes: usize,
    /// How many nodes (from node 0) the others join through; at least 1.
    pub seeds: usize,
    /// Gossip interval of every node, ms; also the length of a fault-schedule round.
    pub interval_ms: u64,
    /// Peers per round.
    pub fanout: u32,
    /// φ at which a peer is declared dead (the φ detector).
    pub phi_threshold: f64,
    /// The failure detector every node runs ([`ClusterConfig::detector`]).
    pub detector: Detector,
    /// One-way delay of every datagram.
    pub latency: Latency,
    /// Loss, duplication, reordering, partitions, crashes (restart = new generation, state
    /// lost; `keep_state` is refused) and churn, timed in rounds of `interval_ms`.
    pub faults: Faults,
    /// When the measured key is written, ms.
    pub write_at_ms: u64,
    /// When the late joiner, the last node `n{nodes-1}`, starts, ms; `None`: it starts with the
    /// others in the first interval and `join_ms` is not measured.
    pub join_at_ms: Option<u64>,
    /// Length of the idle window, ms (see [`ClusterSimConfig::idle_window`]); 0: not measured.
    pub idle_window_ms: u64,
    /// The nodes (all but the late joiner) start at random times within this many ms from 0;
    /// 0 means within the first interval. A ramp keeps a large cluster's formation from being
    /// one join storm, as when an operator rolls nodes out.
    pub start_over_ms: u64,
    /// Start from a formed cluster (SWIM only): every node but the late joiner starts at 0
    /// knowing every other one as Alive ([`ClusterNode::restore_members`], as a restart from a
    /// saved member list would), so the run measures the steady state without the join storm
    /// that forming 10,000 nodes from nothing costs (O(N² log N) messages).
    pub formed: bool,
    /// When the run ends, ms; the end-of-run invariants are checked then.
    pub duration_ms: u64,
    /// How often the measures are sampled, ms (their resolution).
    pub sample_ms: u64,
    /// The length of a step of the time series ([`ClusterReport::series`]), ms; 0 (the
    /// default): no series. A step reads every live node's member counts, O(N²).
    pub series_ms: u64,
    /// Record what the live nodes think of these members, step by step
    /// ([`ClusterReport::views`]); `None` (the default): nothing recorded, nothing kept.
    pub views: Option<ViewRecording>,
}

impl Default for ClusterSimConfig {
    fn default() -> Self {
        ClusterSimConfig {
            nodes: 100,
            seeds: 1,
            interval_ms: 100,
            fanout: 3,
            phi_threshold: 8.0,
            detector: Detector::Swim,
            latency: Latency::Zero,
            faults: Faults::default(),
            write_at_ms: 2_000,
            join_at_ms: Some(2_000),
            idle_window_ms: 500,
            start_over_ms: 0,
            formed: false,
            duration_ms: 20_000,
            sample_ms: 10,
            series_ms: 0,
            views: None,
        }
    }
}

impl ClusterSimConfig {
    /// The configuration node `i` starts with (generation `generation`).
    pub fn node_config(&self, i: usize, generation: u64) -> ClusterConfig {
        let mut c = ClusterConfig::new(name(i), addr(i), generation);
        c.interval_ms = self.interval_ms;
        c.fanout = self.fanout;
        c.phi_threshold = self.phi_threshold;
        c.detector = self.detector;
        c.seeds = (0..self.seeds.min(self.nodes))
            .filter(|&s| s != i)
            .map(addr)
            .collect();
        c
    }

    /// The idle window `[start, end)` in ms: it ends at the first scheduled disturbance (the
    /// write, the late join, the first crash, partition or churn round) and lasts
    /// `idle_window_ms` (less when the disturbance comes sooner). `None` when `idle_window_ms`
    /// is 0. The idle measures count what every node sent in it, and are reported only when
    /// the membership had settled by its start.
    pub fn idle_window(&self) -> Option<(u64, u64)> {
        if self.idle_window_ms == 0 {
            return None;
        }
        let f = &self.faults;
        let rounds = f
            .crashes
            .iter()
            .map(|c| c.at)
            .chain(f.partitions.iter().map(|p| p.from))
            .chain(f.churn.map(|c| c.from));
        let end = rounds
            .map(|r| u64::from(r) * self.interval_ms)
            .chain(self.join_at_ms)
            .fold(self.write_at_ms, u64::min);
        Some((end.saturating_sub(self.idle_window_ms), end))
    }

    /// The late joiner's index, if there is one.
    pub fn late_joiner(&self) -> Option<usize> {
        self.join_at_ms.map(|_| self.nodes - 1)
    }

    /// When the last scheduled fault (partition, crash, restart, churn) ends, ms.
    pub fn faults_end_ms(&self) -> u64 {
        u64::from(self.shim().faults_end()) * self.interval_ms
    }

    /// The fault schedule as the round simulator sees it, to share its validation.
    fn shim(&self) -> SimConfig {
        SimConfig {
            nodes: self.nodes,
            fanout: self.fanout,
            timing: Timing::Async {
                interval: SimInterval::Fixed {
                    us: u32::try_from(self.interval_ms.saturating_mul(1_000)).unwrap_or(u32::MAX),
                },
                latency: self.latency,
            },
            faults: self.faults.clone(),
            ..SimConfig::default()
        }
    }

    /// Checks every value's range; the error is one line naming the bad value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes < 2 || self.nodes > 1 << 24 {
            return Err(ConfigError(format!(
                "need 2 to {} nodes, got {}",
                1 << 24,
                self.nodes
            )));
        }
        if self.seeds == 0 || self.seeds > self.nodes {
            return Err(ConfigError(format!(
                "seeds must be 1 to {} (the node count), got {}",
                self.nodes, self.seeds
            )));
        }
        self.node_config(0, 1).validate()?;
        self.shim().validate()?;
        if self.faults.crashes.iter().any(|c| c.keep_state) {
            return Err(ConfigError(
                "a cluster restart always loses its state (a new generation): crash spec may not keep state".into(),
            ));
        }
        if self.formed && self.detector != Detector::Swim {
            return Err(ConfigError(
                "a formed start needs the SWIM detector (φ's membership lives in the replicated state)".into(),
            ));
        }
        if self.formed && self.start_over_ms > 0 {
            return Err(ConfigError(
                "a formed start has no ramp: nodes start at 0 (drop --start-over)".into(),
            ));
        }
        if self.sample_ms == 0 {
            return Err(ConfigError("sample period must be at least 1 ms".into()));
        }
        if self.write_at_ms >= self.duration_ms {
            return Err(ConfigError(format!(
                "the write at {} ms must come before the end at {} ms",
                self.write_at_ms, self.duration_ms
            )));
        }
        if let Some(j) = self.join_at_ms {
            if j >= self.duration_ms {
                return Err(ConfigError(format!(
                    "the late join at {j} ms must come before the end at {} ms",
                    self.duration_ms
                )));
            }
            if self.seeds >= self.nodes {
                return Err(ConfigError(format!(
                    "the late joiner n{} may not be a seed: use fewer than {} seeds",
                    self.nodes - 1,
                    self.nodes
                )));
            }
        }
        if let Some(v) = &self.views {
            v.validate(self.nodes, self.duration_ms)?;
        }
        if self.faults_end_ms() >= self.duration_ms {
            return Err(ConfigError(format!(
                "the faults end at {} ms, after the run's end at {} ms",
                self.faults_end_ms(),
                self.duration_ms
            )));
        }
        Ok(())
    }
}

/// The name of node `i`.
pub fn name(i: usize) -> String {
    format!("n{i}")
}

/// The synthetic address of node `i`: `10.a.b.c:7946`, `abc` its 24-bit index.
pub fn addr(i: usize) -> SocketAddr {
    let [_, a, b, c] = (i as u32).to_be_bytes();
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, a, b, c), PORT))
}

/// The node index behind a synthetic address, if it is one.
pub fn index_of(a: SocketAddr) -> Option<usize> {
    match a {
        SocketAddr::V4(v4) if v4.port() == PORT && v4.ip().octets()[0] == 10 => {
            let [_, a, b, c] = v4.ip().octets();
            Some(u32::from_be_bytes([0, a, b, c]) as usize)
        }
        _ => None,
    }
}

/// What one cluster run measured. Times are ms; `None` when the event did not happen (no crash
/// configured) or was not reached before the deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterReport {
    /// Seed of the run.
    pub seed: u64,
    /// From the start until every live node first lists every live node as alive.
    pub settle_ms: Option<f64>,
    /// From the write until every live node holds it.
    pub write_ms: Option<f64>,
    /// From a crash until every live node marks each crashed node dead (the slowest crash).
    pub detect_ms: Option<f64>,
    /// From a crash until the first live node marks each crashed node dead (the slowest
    /// crashed node of the slowest crash), at event resolution, not sampled.
    pub detect_first_ms: Option<f64>,
    /// From a restart until every live node knows the new generation as alive and none holds
    /// the old generation's records (the slowest restart).
    pub rejoin_ms: Option<f64>,
    /// From the late joiner's start until every other live node lists it alive.
    pub join_ms: Option<f64>,
    /// Times a node marked a live node (in its current generation, not cut off from it by an
    /// active partition) suspect.
    pub false_suspicions: u64,
    /// Times a node marked a live node (in its current generation, not cut off from it by an
    /// active partition) dead.
    pub false_deaths: u64,
    /// Datagrams sent per node per second of the run.
    pub messages_per_node_s: f64,
    /// Bytes sent per node per second of the run.
    pub bytes_per_node_s: f64,
    /// Datagrams sent per live node per second over the idle window
    /// ([`ClusterSimConfig::idle_window`]); `None` when the membership had not settled by its
    /// start or there is no window.
    pub idle_messages_per_node_s: Option<f64>,
    /// Bytes sent per live node per second over the idle window, as above.
    pub idle_bytes_per_node_s: Option<f64>,
    /// Datagrams the network lost or a partition blocked.
    pub dropped: u64,
    /// Whether, at the end, every live node lists every live node as alive (false when no
    /// node is live).
    pub members_converged: bool,
    /// Nodes live at the end.
    pub live_at_end: usize,
    /// The time series, one step every [`ClusterSimConfig::series_ms`] from then to the end;
    /// empty when that is 0.
    pub series: Vec<ClusterStep>,
    /// The recorded members' views, one step every [`ViewRecording::every_ms`]; empty without
    /// [`ClusterSimConfig::views`].
    pub views: Vec<ViewStep>,
}

/// Runs one cluster simulation of `config` with `seed`.
///
/// Fails with [`SimError::Invariant`] when, at the end (after the faults stopped), a node still
/// holds a restarted node's old generation (a zombie), a live node is declared dead by every
/// other live node, or the live nodes disagree on the user-visible state (every live node's
/// generation and user keys).
pub fn run_cluster(config: &ClusterSimConfig, seed: u64) -> Result<ClusterReport, SimError> {
    run_cluster_observed(config, seed, &mut |_| {})
}

/// [`run_cluster`], calling `at(ms)` with the virtual time reached at every sample (for a
/// progress display; it cannot change the run).
pub fn run_cluster_observed(
    config: &ClusterSimConfig,
    seed: u64,
    at: &mut dyn FnMut(u64),
) -> Result<ClusterReport, SimError> {
    config.validate()?;
    let mut world = World::new(config, seed);
    world.run(at);
    world.finish()
}

/// What [`run_cluster_many`] reports while it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterTick {
    /// Run `run` (its index) started.
    Started(usize),
    /// Run `run` reached virtual time `ms`.
    At(usize, u64),
    /// Run `run` finished.
    Done(usize),
}

/// Runs `runs` cluster simulations (run `i` with seed `master + i`) on up to `threads` threads.
pub fn run_cluster_many(
    config: &ClusterSimConfig,
    master: u64,
    runs: usize,
    threads: usize,
    progress: &(dyn Fn(ClusterTick) + Sync),
) -> Result<Vec<ClusterReport>, SimError> {
    config.validate()?;
    run_indexed(runs, threads, &|| {}, &|i| {
        progress(ClusterTick::Started(i));
        let r = run_cluster_observed(config, run_seed(master, i), &mut |ms| {
            progress(ClusterTick::At(i, ms));
        });
        progress(ClusterTick::Done(i));
        r
    })
}

/// Mean, spread and range of each measure over runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSummary {
    /// Runs summarised.
    pub runs: usize,
    /// Each measure by its report key, in report order.
    pub measures: Vec<(&'static str, Stat)>,
}

impl ClusterSummary {
    /// Summarises runs (measures that did not happen in a run are skipped for it).
    pub fn of(reports: &[ClusterReport]) -> ClusterSummary {
        type Get = fn(&ClusterReport) -> f64;
        fn opt(o: Option<f64>) -> f64 {
            o.unwrap_or(f64::NAN)
        }
        let getters: [(&'static str, Get); 12] = [
            ("settle_ms", |r| opt(r.settle_ms)),
            ("write_ms", |r| opt(r.write_ms)),
            ("detect_first_ms", |r| opt(r.detect_first_ms)),
            ("detect_ms", |r| opt(r.detect_ms)),
            ("rejoin_ms", |r| opt(r.rejoin_ms)),
            ("join_ms", |r| opt(r.join_ms)),
            ("false_suspicions", |r| r.false_suspicions as f64),
            ("false_deaths", |r| r.false_deaths as f64),
            ("messages_per_node_s", |r| r.messages_per_node_s),
            ("bytes_per_node_s", |r| r.bytes_per_node_s),
            ("idle_messages_per_node_s", |r| {
                opt(r.idle_messages_per_node_s)
            }),
            ("idle_bytes_per_node_s", |r| opt(r.idle_bytes_per_node_s)),
        ];
        ClusterSummary {
            runs: reports.len(),
            measures: getters
                .iter()
                .map(|&(k, f)| (k, Stat::of(reports.iter().map(f))))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// The idle window opens (counters snapshot).
    IdleStart,
    /// The idle window closes.
    IdleEnd,
    /// Fault schedule: the start of round k.
    Round(u32),
    /// Node i starts for the first time.
    Start(u32),
    /// Node i's timer, as last scheduled.
    Timer(u32),
    /// An in-flight datagram arrives.
    Deliver(u32),
    /// The measured write.
    Write,
    /// Sample the measures.
    Sample,
    /// Take a step of the time series.
    Step,
    /// Record the chosen members' views.
    View,
}

#[derive(Default)]
struct InFlight {
    from: u32,
    to: u32,
    bytes: Vec<u8>,
}

/// A crash spec's progress: when detection and rejoin completed.
#[derive(Default, Clone, Copy)]
struct CrashTrack {
    detected: Option<f64>,
    detected_first: Option<f64>,
    rejoined: Option<f64>,
}

struct Idle {
    messages: u64,
    bytes: u64,
    live: usize,
    settled: bool,
}

struct World<'c> {
    cfg: &'c ClusterSimConfig,
    seed: u64,
    /// Boxed: a node is taken out and put back on every touch, and a box moves in 8 bytes.
    nodes: Vec<Option<Box<ClusterNode>>>,
    ids: Vec<NodeId>,
    /// Every node's name, made only for a formed start.
    names: Vec<String>,
    index: BTreeMap<NodeId, usize>,
    generation: Vec<u64>,
    started: Vec<bool>,
    started_count: usize,
    live_count: usize,
    timer: Vec<u64>,
    incarnations: u64,
    queue: EventQueue<Ev>,
    slots: Slots<InFlight>,
    net: Network,
    active_partitions: Vec<usize>,
    /// Watched nodes (crash-spec nodes and the late joiner) and their tallies.
    watches: Vec<Watch>,
    /// Each node's slot in `watches`, `u32::MAX` when not watched.
    watch_of: Vec<u32>,
    /// The watched nodes' ids (a few).
    watched_ids: Vec<NodeId>,
    /// The settle check's next observer to examine (see `check_settled`).
    settle_cursor: usize,
    writer: Option<NodeId>,
    write_left: bool,
    now: u64,
    messages: u64,
    bytes: u64,
    dropped: u64,
    false_suspicions: u64,
    false_deaths: u64,
    settle: Option<f64>,
    write: Option<f64>,
    join: Option<f64>,
    idle_start: Option<Idle>,
    idle: Option<(f64, f64)>,
    crashes: Vec<CrashTrack>,
    series: Vec<ClusterStep>,
    /// `bytes` at the last step.
    step_bytes: u64,
    /// What every observer last said of each recorded member ([`ClusterSimConfig::views`]).
    views: Vec<Watch>,
    /// Each node's slot in `views`, `u32::MAX` when not recorded; empty when nothing is.
    view_of: Vec<u32>,
    view_steps: Vec<ViewStep>,
}

impl<'c> World<'c> {
    fn new(cfg: &'c ClusterSimConfig, seed: u64) -> World<'c> {
        let n = cfg.nodes;
        let ids: Vec<NodeId> = (0..n).map(|i| NodeId::from_name(&name(i))).collect();
        let index = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let mut watch_of = vec![u32::MAX; n];
        let mut watches = Vec::new();
        let watched = cfg
            .faults
            .crashes
            .iter()
            .flat_map(|c| c.nodes.iter())
            .map(|i| i as usize)
            .chain(cfg.late_joiner());
        for i in watched {
            if i < n && watch_of[i] == u32::MAX {
                watch_of[i] = watches.len() as u32;
                watches.push(Watch::new(n));
            }
        }
        let watched_ids = (0..n)
            .filter(|&i| watch_of[i] != u32::MAX)
            .map(|i| ids[i])
            .collect();
        let mut w = World {
            cfg,
            seed,
            nodes: (0..n).map(|_| None).collect(),
            ids,
            names: Vec::new(),
            index,
            generation: vec![1; n],
            started: vec![false; n],
            started_count: 0,
            live_count: 0,
            timer: vec![u64::MAX; n],
            incarnations: 0,
            queue: EventQueue::new(),
            slots: Slots::new(),
            net: Network::new(seed),
            active_partitions: Vec::new(),
            watched_ids,
            watches,
            watch_of,
            settle_cursor: 0,
            writer: None,
            write_left: false,
            now: 0,
            messages: 0,
            bytes: 0,
            dropped: 0,
            false_suspicions: 0,
            false_deaths: 0,
            settle: None,
            write: None,
            join: None,
            idle_start: None,
            idle: None,
            crashes: vec![CrashTrack::default(); cfg.faults.crashes.len()],
            series: Vec::new(),
            step_bytes: 0,
            views: Vec::new(),
            view_of: Vec::new(),
            view_steps: Vec::new(),
        };
        if let Some(v) = &cfg.views {
            w.view_of = vec![u32::MAX; n];
            for &m in &v.members {
                if w.view_of[m] == u32::MAX {
                    w.view_of[m] = w.views.len() as u32;
                    w.views.push(Watch::new(n));
                }
            }
            w.push(v.every_ms * 1_000, Ev::View);
        }
        if let Some((from, until)) = cfg.idle_window() {
            w.push(from * 1_000, Ev::IdleStart);
            w.push(until * 1_000, Ev::IdleEnd);
        }
        let interval_us = cfg.interval_ms * 1_000;
        let mut phase_rng = Pcg64Mcg::seed_from_u64(split(seed, 0x7068_6173));
        let late = cfg.late_joiner();
        for i in 0..n {
            let at = phase_rng.random_range(0..(cfg.start_over_ms * 1_000).max(interval_us));
            let at = if cfg.formed { 0 } else { at };
            let at = match (late, cfg.join_at_ms) {
                (Some(l), Some(j)) if l == i => j * 1_000,
                _ => at,
            };
            w.push(at, Ev::Start(i as u32));
        }
        let last_round = cfg.faults_end_ms() / cfg.interval_ms;
        for k in 0..=last_round {
            w.push(k * interval_us, Ev::Round(k as u32));
        }
        w.push(cfg.write_at_ms * 1_000, Ev::Write);
        w.push(cfg.sample_ms * 1_000, Ev::Sample);
        if cfg.series_ms > 0 {
            w.push(cfg.series_ms * 1_000, Ev::Step);
        }
        w
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.queue.push(at, ev);
    }

    fn ms(&self) -> f64 {
        self.now as f64 / 1e3
    }

    fn live(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    fn watch(&self, i: usize) -> Option<&Watch> {
        self.watches.get(self.watch_of[i] as usize)
    }

    /// The live nodes' ids, ascending.
    fn live_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&i| self.live(i))
            .map(|i| self.ids[i])
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Starts node `i` (first start or restart) with its current generation.
    fn start(&mut self, i: usize) {
        let now = Time(self.now);
        let generation = self.generation[i];
        let seed = node_seed(self.seed, i as u64, self.incarnations);
        self.incarnations += 1;
        let node = ClusterNode::new(self.cfg.node_config(i, generation), now, seed);
        // The configuration was validated before the run; a refusal here would be a bug.
        let Ok(mut node) = node else {
            return;
        };
        if self.cfg.formed && !self.started[i] && self.cfg.late_joiner() != Some(i) {
            self.restore_formed(&mut node, now);
        }
        if self.started[i] {
            // A restart: the boot key proves the new generation replaced the old one
            // everywhere (the no-zombie check). First starts write nothing, so that the key-value
            // load is the one measured write, as in an idle cluster.
            let _ = node.set(now, BOOT_KEY, generation.to_string().as_bytes(), None);
        }
        self.nodes[i] = Some(Box::new(node));
        if !self.started[i] {
            self.started[i] = true;
            self.started_count += 1;
        }
        self.live_count += 1;
        if let Some(w) = self.watches.get_mut(self.watch_of[i] as usize) {
            w.armed = false;
        }
        self.timer[i] = u64::MAX;
        self.after_touch(i);
    }

    /// Gives a first-starting node of a formed cluster everyone else's record (the late joiner
    /// excluded: it joins for real).
    fn restore_formed(&mut self, node: &mut ClusterNode, now: Time) {
        if self.names.is_empty() {
            self.names = (0..self.cfg.nodes).map(name).collect();
        }
        let late = self.cfg.late_joiner();
        let (names, generation) = (&self.names, &self.generation);
        node.restore_members(
            now,
            (0..self.cfg.nodes)
                .filter(|&j| Some(j) != late)
                .map(|j| KnownMember {
                    id: self.ids[j],
                    name: &names[j],
                    addr: addr(j),
                    generation: generation[j],
                    incarnation: 0,
                }),
        );
    }

    fn crash(&mut self, i: usize) {
        if self.nodes[i].take().is_some() {
            self.timer[i] = u64::MAX;
            self.live_count -= 1;
            for w in self.watches.iter_mut().chain(&mut self.views) {
                w.forget(i);
            }
            if let Some(w) = self.watches.get_mut(self.watch_of[i] as usize) {
                w.armed = true;
                w.first_down = None;
            }
        }
    }

    /// Restarts a crashed node as its next generation; whether it restarted.
    fn restart(&mut self, i: usize) -> bool {
        if self.live(i) || !self.started[i] {
            return false;
        }
        self.generation[i] += 1;
        self.start(i);
        true
    }

    /// Sends what node `i` handed back, tallies its events, and reschedules its timer.
    fn after_touch(&mut self, i: usize) {
        let Some(mut node) = self.nodes[i].take() else {
            return;
        };
        while let Some(t) = node.poll_transmit() {
            self.send(i as u32, t.to, t.bytes);
        }
        while let Some(ev) = node.poll_event() {
            let (ClusterEvent::MemberUp(id)
            | ClusterEvent::MemberSuspect(id)
            | ClusterEvent::MemberDown(id)
            | ClusterEvent::MemberLeft(id)
            | ClusterEvent::MemberRemoved(id)) = ev;
            let verdict = matches!(
                ev,
                ClusterEvent::MemberSuspect(_) | ClusterEvent::MemberDown(_)
            );
            let recording = !self.view_of.is_empty();
            if !verdict && !recording && !self.watched_ids.contains(&id) {
                // Nothing to tally (a formed start hands every node N such events).
                continue;
            }
            let Some(&t) = self.index.get(&id) else {
                continue;
            };
            if recording && let Some(v) = self.views.get_mut(self.view_of[t] as usize) {
                v.set(i, Seen::of(ev), self.now);
            }
            if let Some(w) = self.watches.get_mut(self.watch_of[t] as usize) {
                w.set(i, Seen::of(ev), self.now);
            }
            if !matches!(
                ev,
                ClusterEvent::MemberSuspect(_) | ClusterEvent::MemberDown(_)
            ) {
                continue;
            }
            let current = node.member_generation(id) == Some(self.generation[t]);
            // A verdict across an active partition is the partition's doing, not a false one.
            if self.nodes[t].is_some() && current && !self.blocked(i, t) {
                match ev {
                    ClusterEvent::MemberSuspect(_) => self.false_suspicions += 1,
                    _ => self.false_deaths += 1,
                }
            }
        }
        let at = node.poll_timeout().0.max(self.now + 1);
        self.nodes[i] = Some(node);
        if at != self.timer[i] {
            self.timer[i] = at;
            self.push(at, Ev::Timer(i as u32));
        }
    }

    fn blocked(&self, from: usize, to: usize) -> bool {
        net::blocked(
            &self.cfg.faults,
            &self.active_partitions,
            from as u64,
            to as u64,
        )
    }

    fn send(&mut self, from: u32, to: SocketAddr, bytes: Vec<u8>) {
        self.messages += 1;
        self.bytes += bytes.len() as u64;
        let to = match index_of(to) {
            Some(t) if t < self.nodes.len() => t,
            _ => {
                self.dropped += 1;
                return;
            }
        };
        let (faults, active) = (&self.cfg.faults, &self.active_partitions);
        let copies = self.net.copies(faults, || {
            net::blocked(faults, active, u64::from(from), to as u64)
        });
        if copies == 0 {
            self.dropped += 1;
            return;
        }
        if copies == 2 {
            self.deliver_later(from, to as u32, bytes.clone());
        }
        self.deliver_later(from, to as u32, bytes);
    }

    /// Puts one copy in flight, with the latency and reordering delay.
    fn deliver_later(&mut self, from: u32, to: u32, bytes: Vec<u8>) {
        let delay = self.net.delay(
            &self.cfg.latency,
            self.cfg.faults.reorder,
            self.cfg.interval_ms * 1_000,
        );
        let slot = self.slots.put(InFlight { from, to, bytes });
        self.push(self.now + delay, Ev::Deliver(slot));
    }

    fn apply_faults(&mut self, r: u32) {
        let cfg = self.cfg;
        let (_, active) = apply_schedule(self, &cfg.faults, r);
        self.active_partitions = active;
    }

    fn run(&mut self, at: &mut dyn FnMut(u64)) {
        let end = self.cfg.duration_ms * 1_000;
        while let Some((t, ev)) = self.queue.pop() {
            if t > end {
                break;
            }
            self.now = t;
            let now = Time(t);
            match ev {
                Ev::IdleStart => {
                    self.idle_start = Some(Idle {
                        messages: self.messages,
                        bytes: self.bytes,
                        live: self.live_count,
                        settled: self.settle.is_some(),
                    });
                }
                Ev::IdleEnd => self.close_idle(),
                Ev::Round(k) => self.apply_faults(k),
                Ev::Start(i) => {
                    if !self.started[i as usize] {
                        self.start(i as usize);
                    }
                }
                Ev::Timer(i) => {
                    let i = i as usize;
                    if self.timer[i] == t
                        && let Some(node) = self.nodes[i].as_mut()
                    {
                        node.handle_timeout(now);
                        self.after_touch(i);
                    }
                }
                Ev::Deliver(slot) => {
                    let m = self.slots.take(slot);
                    let (from, to) = (m.from as usize, m.to as usize);
                    if self.blocked(from, to) {
                        self.dropped += 1;
                        continue;
                    }
                    let mut bytes = m.bytes;
                    if let Some(node) = self.nodes[to].as_mut() {
                        // The node counts and drops what it rejects.
                        let _ = node.handle_datagram(now, addr(from), &mut bytes);
                        // To the receiver, which usually answers at once from its pool.
                        node.recycle(bytes);
                        self.after_touch(to);
                    } else {
                        self.dropped += 1;
                    }
                }
                Ev::Write => self.write_key(now),
                Ev::Sample => {
                    self.sample();
                    at(t / 1_000);
                    self.push(t + self.cfg.sample_ms * 1_000, Ev::Sample);
                }
                Ev::Step => {
                    self.step();
                    self.push(t + self.cfg.series_ms * 1_000, Ev::Step);
                }
                Ev::View => {
                    self.record_views();
                    if let Some(v) = &self.cfg.views {
                        self.push(t + v.every_ms * 1_000, Ev::View);
                    }
                }
            }
        }
        self.now = end;
    }

    fn write_key(&mut self, now: Time) {
        let live: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.live(i)).collect();
        if live.is_empty() {
            return;
        }
        let mut rng = Pcg64Mcg::seed_from_u64(split(self.seed, 0x7772_6974));
        let w = live[rng.random_range(0..live.len())];
        if let Some(node) = self.nodes[w].as_mut()
            && node.set(now, WRITE_KEY, b"written", None).is_ok()
        {
            self.writer = Some(self.ids[w]);
            self.write_left = true;
        }
        self.after_touch(w);
    }

    fn close_idle(&mut self) {
        let (Some(s), Some((from, until))) = (self.idle_start.take(), self.cfg.idle_window())
        else {
            return;
        };
        if !s.settled || s.live == 0 || until <= from {
            return;
        }
        let per = |x: u64| x as f64 / s.live as f64 / ((until - from) as f64 / 1e3);
        self.idle = Some((per(self.messages - s.messages), per(self.bytes - s.bytes)));
    }

    /// Live observers, ascending.
    fn observers(&self) -> impl Iterator<Item = (usize, &ClusterNode)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_deref().map(|n| (i, n)))
    }

    /// Whether live observer `o` lists exactly the live nodes as alive: none of the nodes down
    /// now (`down`; every node down at the end is a watched crash-spec node) is alive to it,
    /// so its alive count must be the live count.
    fn lists_live_alive(&self, o: usize, n: &ClusterNode, down: &[usize]) -> bool {
        n.status_counts().alive == self.live_count
            && down
                .iter()
                .all(|&x| self.watch(x).is_some_and(|w| w.seen(o) != Seen::Alive))
    }

    /// Settle: every live node lists every live node alive, all nodes but the late joiner
    /// started and none down (so an alive count equal to the live count means exactly the live
    /// nodes). Each sample goes on from where the last one stopped until an observer that has
    /// not settled; once a pass reaches the last observer, one full pass confirms it at this
    /// instant. The cost is thus about one pass over the observers per settle, not per sample.
    fn check_settled(&mut self) -> bool {
        let want = self.nodes.len() - usize::from(self.cfg.join_at_ms.is_some());
        if self.started_count < want || self.live_count != self.started_count {
            return false;
        }
        let settled = |n: &Option<Box<ClusterNode>>| {
            n.as_ref()
                .is_none_or(|n| n.status_counts().alive == self.live_count)
        };
        while self.settle_cursor < self.nodes.len() {
            if !settled(&self.nodes[self.settle_cursor]) {
                return false;
            }
            self.settle_cursor += 1;
        }
        if self.nodes.iter().all(settled) {
            return true;
        }
        self.settle_cursor = 0;
        false
    }

    fn sample(&mut self) {
        let ms = self.ms();
        if self.settle.is_none() && self.check_settled() {
            self.settle = Some(ms);
        }
        if let (true, Some(w)) = (self.write_left, self.writer) {
            let all = self.observers().all(|(_, n)| {
                n.state()
                    .node(w)
                    .is_some_and(|r| r.get(WRITE_KEY).is_some())
            });
            if all {
                self.write = Some(ms - self.cfg.write_at_ms as f64);
                self.write_left = false;
            }
        }
        if let (None, Some(l), Some(j)) = (self.join, self.cfg.late_joiner(), self.cfg.join_at_ms)
            && self.live(l)
            && self
                .watch(l)
                .is_some_and(|w| w.count(Seen::Alive) + 1 == self.live_count)
        {
            self.join = Some(ms - j as f64);
        }
        let round_ms = self.cfg.interval_ms as f64;
        for k in 0..self.crashes.len() {
            let c = &self.cfg.faults.crashes[k];
            let at_ms = f64::from(c.at) * round_ms;
            if ms < at_ms {
                continue;
            }
            let restarted = c.restart.is_some_and(|r| ms >= f64::from(r) * round_ms);
            if self.crashes[k].detected_first.is_none() {
                self.crashes[k].detected_first = self.detected_first(k, at_ms);
            }
            if self.crashes[k].detected.is_none() && !restarted && self.detected(k) {
                self.crashes[k].detected = Some(ms - at_ms);
            }
            if let (true, None, Some(r)) = (restarted, self.crashes[k].rejoined, c.restart)
                && self.rejoined(k)
            {
                self.crashes[k].rejoined = Some(ms - f64::from(r) * round_ms);
            }
        }
    }

    /// Takes a step of the time series (reads only: no random draw, no node touched).
    fn step(&mut self) {
        let (mut alive, mut suspect, mut dead) = (0u64, 0u64, 0u64);
        for (_, n) in self.observers() {
            let c = n.status_counts();
            alive += c.alive as u64;
            suspect += c.suspect as u64;
            dead += c.dead as u64;
        }
        let live = self.live_count;
        let fraction = |count: usize| {
            if live == 0 {
                f64::NAN
            } else {
                count as f64 / live as f64
            }
        };
        let down: Vec<f64> = (0..self.nodes.len())
            .filter(|&i| self.started[i] && !self.live(i))
            .filter_map(|i| self.watch(i))
            .map(|w| fraction(w.count(Seen::Dead)))
            .collect();
        let crashed_dead_fraction = if down.is_empty() {
            f64::NAN
        } else {
            down.iter().sum::<f64>() / down.len() as f64
        };
        let write_fraction = match self.writer {
            None => f64::NAN,
            Some(w) => fraction(
                self.observers()
                    .filter(|(_, n)| {
                        n.state()
                            .node(w)
                            .is_some_and(|r| r.get(WRITE_KEY).is_some())
                    })
                    .count(),
            ),
        };
        let seconds = self.cfg.series_ms as f64 / 1e3;
        self.series.push(ClusterStep {
            at_ms: self.now / 1_000,
            live,
            alive,
            suspect,
            dead,
            bytes_per_s: (self.bytes - self.step_bytes) as f64 / seconds,
            crashed_dead_fraction,
            write_fraction,
        });
        self.step_bytes = self.bytes;
    }

    /// Records the chosen members' views (reads only, as `step`).
    fn record_views(&mut self) {
        let Some(v) = &self.cfg.views else {
            return;
        };
        let members = v
            .members
            .iter()
            .map(|&m| {
                let w = &self.views[self.view_of[m] as usize];
                let live = self.live(m);
                let count = |s: Seen| w.count(s) as u32;
                MemberView {
                    live,
                    observers: (self.live_count - usize::from(live)) as u32,
                    alive: count(Seen::Alive),
                    suspect: count(Seen::Suspect),
                    dead: count(Seen::Dead),
                }
            })
            .collect();
        self.view_steps.push(ViewStep {
            at_ms: self.now / 1_000,
            members,
        });
    }

    /// When, after crash `k` at `at_ms`, the last of its nodes was first marked dead by a
    /// live node; `None` while one of them has not been.
    fn detected_first(&self, k: usize, at_ms: f64) -> Option<f64> {
        let mut slowest = 0.0f64;
        for i in self.cfg.faults.crashes[k].nodes.iter() {
            let first = self.watch(i as usize)?.first_down? as f64 / 1e3;
            if first < at_ms {
                return None;
            }
            slowest = slowest.max(first - at_ms);
        }
        Some(slowest)
    }

    /// Whether every live node marks every down node of crash `k` dead (or has forgotten it).
    fn detected(&self, k: usize) -> bool {
        // With no live node left there is nobody to have noticed.
        self.live_count > 0
            && self.cfg.faults.crashes[k].nodes.iter().all(|i| {
                let i = i as usize;
                self.live(i) || self.watch(i).is_some_and(Watch::all_dead_or_unknown)
            })
    }

    /// Whether every live node knows each restarted node of crash `k` as alive in its current
    /// generation, with its current `boot` key, and holds nothing of an older generation.
    fn rejoined(&self, k: usize) -> bool {
        self.cfg.faults.crashes[k].nodes.iter().all(|b| {
            let b = b as usize;
            if !self.live(b) {
                return true;
            }
            // Cheap first: every other live node's last word on it is "alive".
            if self
                .watch(b)
                .is_none_or(|w| w.count(Seen::Alive) + 1 < self.live_count)
            {
                return false;
            }
            let id = self.ids[b];
            let generation = self.generation[b];
            let boot = generation.to_string();
            self.observers().filter(|&(o, _)| o != b).all(|(_, n)| {
                n.state().node(id).is_some_and(|r| {
                    r.generation == generation
                        && r.get(BOOT_KEY).is_some_and(|e| e.value == boot.as_bytes())
                })
            })
        })
    }

    /// A hash of what a user reads at observer `n`: every live node's generation and user keys.
    fn user_view(n: &ClusterNode, live_ids: &[NodeId]) -> u64 {
        let mut h = DefaultHasher::new();
        for &id in live_ids {
            match n.state().node(id) {
                None => 0u8.hash(&mut h),
                Some(r) => {
                    1u8.hash(&mut h);
                    r.generation.hash(&mut h);
                    for (key, e) in r.entries().filter(|(k, _)| !k.starts_with("__")) {
                        (key, e.version, e.deleted, &e.value).hash(&mut h);
                    }
                }
            }
        }
        h.finish()
    }

    fn violation(&self, node: usize, what: String) -> SimError {
        SimError::Invariant(Violation {
            seed: self.seed,
            round: self.now as f64 / (self.cfg.interval_ms as f64 * 1e3),
            node: name(node),
            what,
        })
    }

    /// The live nodes observer `n` marks dead.
    fn dead_at(&self, n: &ClusterNode) -> Vec<usize> {
        n.members(Time(self.now))
            .into_iter()
            .filter(|m| m.status == MemberStatus::Dead)
            .filter_map(|m| self.index.get(&m.id).copied())
            .filter(|&t| self.live(t))
            .collect()
    }

    /// A live node every other live node declares dead, if any. Only the nodes the first two
    /// live observers declare dead can be one, so the other member lists are read only when
    /// there is such a candidate.
    fn dead_to_all(&self) -> Option<usize> {
        let mut obs = self.observers();
        let (a, na) = obs.next()?;
        let (_, nb) = obs.next()?;
        let mut candidates: Vec<usize> = self.dead_at(na);
        candidates.retain(|&t| t != a);
        if self.dead_at(nb).contains(&a) {
            candidates.push(a);
        }
        if candidates.is_empty() {
            return None;
        }
        let views: Vec<(usize, Vec<usize>)> = self
            .observers()
            .map(|(o, n)| (o, self.dead_at(n)))
            .collect();
        candidates.into_iter().find(|&t| {
            views
                .iter()
                .filter(|(o, _)| *o != t)
                .all(|(_, dead)| dead.contains(&t))
        })
    }

    /// The end-of-run invariants, then the report.
    fn finish(self) -> Result<ClusterReport, SimError> {
        // No zombie: nobody holds an older generation of a live node.
        for (o, n) in self.observers() {
            for (id, r) in n.state().nodes() {
                if let Some(&t) = self.index.get(&id)
                    && self.live(t)
                    && r.generation < self.generation[t]
                {
                    return Err(self.violation(
                        o,
                        format!(
                            "zombie: holds generation {} of n{t}, which runs generation {}",
                            r.generation, self.generation[t]
                        ),
                    ));
                }
            }
        }
        // No live node declared dead by every other live node after the faults stopped.
        if let Some(t) = self.dead_to_all() {
            return Err(self.violation(
                t,
                format!("live node n{t} is declared dead by every other live node after the faults stopped"),
            ));
        }
        // Every live node converges on the same user view.
        let live_ids = self.live_ids();
        let hashes: Vec<u64> = self
            .observers()
            .map(|(_, n)| Self::user_view(n, &live_ids))
            .collect();
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for &h in &hashes {
            *counts.entry(h).or_default() += 1;
        }
        if let Some((&common, &agree)) = counts.iter().max_by_key(|&(_, &c)| c)
            && agree < hashes.len()
        {
            let odd = hashes.iter().position(|&h| h != common).unwrap_or(0);
            let node = self.observers().nth(odd).map_or(0, |(i, _)| i);
            return Err(self.violation(
                node,
                format!(
                    "live nodes disagree on the user view (generations and user keys) after \
                         the faults stopped: {agree} of {} hold the most common one, n{node} not",
                    hashes.len()
                ),
            ));
        }
        let down: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.started[i] && !self.live(i))
            .collect();
        // A cluster with no live node has no membership to agree on.
        let members_converged = self.live_count > 0
            && self
                .observers()
                .all(|(o, n)| self.lists_live_alive(o, n, &down));
        let seconds = self.cfg.duration_ms as f64 / 1e3;
        let per = |x: u64| x as f64 / self.cfg.nodes as f64 / seconds;
        let slowest = |f: fn(&CrashTrack) -> Option<f64>, want: fn(&crate::Crash) -> bool| {
            let relevant: Vec<Option<f64>> = self
                .crashes
                .iter()
                .zip(&self.cfg.faults.crashes)
                .filter(|(_, c)| want(c))
                .map(|(t, _)| f(t))
                .collect();
            if relevant.is_empty() || relevant.iter().any(Option::is_none) {
                None
            } else {
                relevant.into_iter().flatten().reduce(f64::max)
            }
        };
        Ok(ClusterReport {
            seed: self.seed,
            settle_ms: self.settle,
            write_ms: self.write,
            detect_ms: slowest(|t| t.detected, |_| true),
            detect_first_ms: slowest(|t| t.detected_first, |_| true),
            rejoin_ms: slowest(|t| t.rejoined, |c| c.restart.is_some()),
            join_ms: self.join,
            false_suspicions: self.false_suspicions,
            false_deaths: self.false_deaths,
            messages_per_node_s: per(self.messages),
            bytes_per_node_s: per(self.bytes),
            idle_messages_per_node_s: self.idle.map(|i| i.0),
            idle_bytes_per_node_s: self.idle.map(|i| i.1),
            dropped: self.dropped,
            members_converged,
            live_at_end: self.live_count,
            series: self.series,
            views: self.view_steps,
        })
    }
}

impl Population for World<'_> {
    fn len(&self) -> usize {
        self.nodes.len()
    }
    fn is_live(&self, i: usize) -> bool {
        self.live(i)
    }
    fn crash(&mut self, i: usize) {
        World::crash(self, i);
    }
    /// A cluster restart is a new generation: its state is always lost (`keep_state` is
    /// refused by [`ClusterSimConfig::validate`]).
    fn restart(&mut self, i: usize, _keep_state: bool) -> bool {
        World::restart(self, i)
    }
    fn network(&mut self) -> &mut Network {
        &mut self.net
    }
}
