//! The cluster protocol under simulation: a population of real
//! [`ClusterNode`]s (membership, φ-accrual failure detection, generations, scuttlebutt state) on
//! virtual time, over the simulator's faulty network.
//!
//! Node `i` is named `n{i}` and reached at a synthetic address, `10.a.b.c:7946` with `abc` the
//! 24-bit index (never bound: it is only a key). Node 0 and the next `seeds - 1` nodes are the
//! seeds every node joins through; every node starts at a random instant of the first gossip
//! interval and writes a `boot` key naming its generation. Every datagram a node hands back goes
//! through the network model of [`Faults`] (loss, duplication, reordering, partitions) with a
//! [`Latency`]; every fault time is counted in rounds of `interval_ms`, as in the asynchronous
//! model of [`crate::sim`]. A crash drops the node (its state is lost); a restart is a new
//! `ClusterNode` with the same name and address and the next generation, as a real restart.
//! One key is written at a random live node at `write_at_ms`.
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

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use gossiper_cluster::{ClusterConfig, ClusterEvent, ClusterNode, MemberStatus};
use gossiper_types::{NodeId, Time};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::config::{ConfigError, Faults, Latency, SimConfig, SimInterval, Timing};
use crate::metrics::Stat;
use crate::runner::{run_indexed, run_seed};
use crate::sim::{SimError, Violation, mix, node_seed};

/// The key written once during a run; its propagation time is measured.
pub const WRITE_KEY: &str = "sim-write";
/// The key each node writes at start, holding its generation (the no-zombie check reads it).
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
    /// φ at which a peer is declared dead.
    pub phi_threshold: f64,
    /// One-way delay of every datagram.
    pub latency: Latency,
    /// Loss, duplication, reordering, partitions, crashes (restart = new generation, state
    /// lost; `keep_state` is refused) and churn, timed in rounds of `interval_ms`.
    pub faults: Faults,
    /// When the measured key is written, ms.
    pub write_at_ms: u64,
    /// When the run ends, ms; the end-of-run invariants are checked then.
    pub duration_ms: u64,
    /// How often the measures are sampled, ms (their resolution).
    pub sample_ms: u64,
}

impl Default for ClusterSimConfig {
    fn default() -> Self {
        ClusterSimConfig {
            nodes: 100,
            seeds: 1,
            interval_ms: 100,
            fanout: 3,
            phi_threshold: 8.0,
            latency: Latency::Zero,
            faults: Faults::default(),
            write_at_ms: 2_000,
            duration_ms: 20_000,
            sample_ms: 10,
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
        c.seeds = (0..self.seeds.min(self.nodes))
            .filter(|&s| s != i)
            .map(addr)
            .collect();
        c
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
        if self.sample_ms == 0 {
            return Err(ConfigError("sample period must be at least 1 ms".into()));
        }
        if self.write_at_ms >= self.duration_ms {
            return Err(ConfigError(format!(
                "the write at {} ms must come before the end at {} ms",
                self.write_at_ms, self.duration_ms
            )));
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
    /// From a restart until every live node knows the new generation as alive and none holds
    /// the old generation's records (the slowest restart).
    pub rejoin_ms: Option<f64>,
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
    /// Datagrams the network lost or a partition blocked.
    pub dropped: u64,
    /// Whether, at the end, every live node lists every live node as alive.
    pub members_converged: bool,
}

/// Runs one cluster simulation of `config` with `seed`.
///
/// Fails with [`SimError::Invariant`] when, at the end (after the faults stopped), a node still
/// holds a restarted node's old generation (a zombie), a live node is declared dead by every
/// other live node, or the live nodes disagree on the user-visible state (every live node's
/// generation and user keys).
pub fn run_cluster(config: &ClusterSimConfig, seed: u64) -> Result<ClusterReport, SimError> {
    config.validate()?;
    let mut world = World::new(config, seed);
    world.run();
    world.finish()
}

/// Runs `runs` cluster simulations (run `i` with seed `master + i`) on up to `threads` threads.
pub fn run_cluster_many(
    config: &ClusterSimConfig,
    master: u64,
    runs: usize,
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<ClusterReport>, SimError> {
    config.validate()?;
    run_indexed(runs, threads, progress, &|i| {
        run_cluster(config, run_seed(master, i))
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
        let getters: [(&'static str, Get); 8] = [
            ("settle_ms", |r| opt(r.settle_ms)),
            ("write_ms", |r| opt(r.write_ms)),
            ("detect_ms", |r| opt(r.detect_ms)),
            ("rejoin_ms", |r| opt(r.rejoin_ms)),
            ("false_suspicions", |r| r.false_suspicions as f64),
            ("false_deaths", |r| r.false_deaths as f64),
            ("messages_per_node_s", |r| r.messages_per_node_s),
            ("bytes_per_node_s", |r| r.bytes_per_node_s),
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
}

/// One observer's members and their status.
type View = Vec<(NodeId, MemberStatus)>;

struct InFlight {
    from: u32,
    to: u32,
    bytes: Vec<u8>,
}

/// A crash spec's progress: when detection and rejoin completed.
#[derive(Default, Clone, Copy)]
struct CrashTrack {
    detected: Option<f64>,
    rejoined: Option<f64>,
}

struct World<'c> {
    cfg: &'c ClusterSimConfig,
    seed: u64,
    nodes: Vec<Option<ClusterNode>>,
    ids: Vec<NodeId>,
    index: BTreeMap<NodeId, usize>,
    generation: Vec<u64>,
    started: Vec<bool>,
    timer: Vec<u64>,
    incarnations: u64,
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    slots: Vec<InFlight>,
    free: Vec<u32>,
    net_rng: Pcg64Mcg,
    active_partitions: Vec<usize>,
    live_ids: Vec<NodeId>,
    writer: Option<NodeId>,
    now: u64,
    messages: u64,
    bytes: u64,
    dropped: u64,
    false_suspicions: u64,
    false_deaths: u64,
    settle: Option<f64>,
    write: Option<f64>,
    crashes: Vec<CrashTrack>,
}

impl<'c> World<'c> {
    fn new(cfg: &'c ClusterSimConfig, seed: u64) -> World<'c> {
        let n = cfg.nodes;
        let ids: Vec<NodeId> = (0..n).map(|i| NodeId::from_name(&name(i))).collect();
        let index = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let mut w = World {
            cfg,
            seed,
            nodes: (0..n).map(|_| None).collect(),
            ids,
            index,
            generation: vec![1; n],
            started: vec![false; n],
            timer: vec![u64::MAX; n],
            incarnations: 0,
            heap: BinaryHeap::new(),
            seq: 0,
            slots: Vec::new(),
            free: Vec::new(),
            net_rng: Pcg64Mcg::seed_from_u64(mix(seed ^ 0x6e65_7477)),
            active_partitions: Vec::new(),
            live_ids: Vec::new(),
            writer: None,
            now: 0,
            messages: 0,
            bytes: 0,
            dropped: 0,
            false_suspicions: 0,
            false_deaths: 0,
            settle: None,
            write: None,
            crashes: vec![CrashTrack::default(); cfg.faults.crashes.len()],
        };
        let interval_us = cfg.interval_ms * 1_000;
        let mut phase_rng = Pcg64Mcg::seed_from_u64(mix(seed ^ 0x7068_6173));
        for i in 0..n {
            let at = phase_rng.random_range(0..interval_us);
            w.push(at, Ev::Start(i as u32));
        }
        let last_round = cfg.faults_end_ms() / cfg.interval_ms;
        for k in 0..=last_round {
            w.push(k * interval_us, Ev::Round(k as u32));
        }
        w.push(cfg.write_at_ms * 1_000, Ev::Write);
        w.push(cfg.sample_ms * 1_000, Ev::Sample);
        w
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.heap.push(Reverse((at, self.seq, ev)));
        self.seq += 1;
    }

    fn ms(&self) -> f64 {
        self.now as f64 / 1e3
    }

    fn live(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    fn refresh_live_ids(&mut self) {
        let mut ids: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&i| self.live(i))
            .map(|i| self.ids[i])
            .collect();
        ids.sort_unstable();
        self.live_ids = ids;
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
        let _ = node.set(now, BOOT_KEY, generation.to_string().as_bytes(), None);
        self.nodes[i] = Some(node);
        self.started[i] = true;
        self.timer[i] = u64::MAX;
        self.refresh_live_ids();
        self.after_touch(i);
    }

    fn crash(&mut self, i: usize) {
        if self.nodes[i].take().is_some() {
            self.timer[i] = u64::MAX;
            self.refresh_live_ids();
        }
    }

    fn restart(&mut self, i: usize) {
        if !self.live(i) && self.started[i] {
            self.generation[i] += 1;
            self.start(i);
        }
    }

    /// Sends what node `i` handed back, counts its events, and reschedules its timer.
    fn after_touch(&mut self, i: usize) {
        let Some(mut node) = self.nodes[i].take() else {
            return;
        };
        while let Some(t) = node.poll_transmit() {
            self.send(i as u32, t.to, t.bytes);
        }
        while let Some(ev) = node.poll_event() {
            let (ClusterEvent::MemberSuspect(id) | ClusterEvent::MemberDown(id)) = ev else {
                continue;
            };
            let Some(&t) = self.index.get(&id) else {
                continue;
            };
            let current = node.state().node(id).map(|r| r.generation) == Some(self.generation[t]);
            // A verdict across an active partition is the partition's doing, not a false one.
            if self.live(t) && current && !self.blocked(i, t) {
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
        self.active_partitions.iter().any(|&p| {
            let p = &self.cfg.faults.partitions[p];
            p.group_of(from as u64) != p.group_of(to as u64)
        })
    }

    fn send(&mut self, from: u32, to: SocketAddr, bytes: Vec<u8>) {
        self.messages += 1;
        self.bytes += bytes.len() as u64;
        let f = &self.cfg.faults;
        let to = match index_of(to) {
            Some(t) if t < self.nodes.len() => t,
            _ => {
                self.dropped += 1;
                return;
            }
        };
        if (f.loss > 0.0 && self.net_rng.random_bool(f.loss)) || self.blocked(from as usize, to) {
            self.dropped += 1;
            return;
        }
        let copies = if f.duplicate > 0.0 && self.net_rng.random_bool(f.duplicate) {
            2
        } else {
            1
        };
        let round_us = self.cfg.interval_ms * 1_000;
        for _ in 0..copies {
            let mut delay = self.cfg.latency.sample(&mut self.net_rng);
            let reorder = self.cfg.faults.reorder;
            if reorder > 0.0 && self.net_rng.random_bool(reorder) {
                delay += self.net_rng.random_range(0..round_us);
            }
            let msg = InFlight {
                from,
                to: to as u32,
                bytes: bytes.clone(),
            };
            let slot = match self.free.pop() {
                Some(s) => {
                    self.slots[s as usize] = msg;
                    s
                }
                None => {
                    self.slots.push(msg);
                    (self.slots.len() - 1) as u32
                }
            };
            self.push(self.now + delay, Ev::Deliver(slot));
        }
    }

    fn apply_faults(&mut self, r: u32) {
        let faults = &self.cfg.faults;
        for c in &faults.crashes {
            if c.at == r {
                for id in c.nodes.iter() {
                    self.crash(id as usize);
                }
            }
            if c.restart == Some(r) {
                for id in c.nodes.iter() {
                    self.restart(id as usize);
                }
            }
        }
        if let Some(ch) = faults.churn
            && (ch.from..ch.until).contains(&r)
        {
            for i in 0..self.nodes.len() {
                if self.live(i) && self.net_rng.random_bool(ch.rate) {
                    self.crash(i);
                    self.restart(i);
                }
            }
        }
        self.active_partitions = faults.active_partitions(r);
    }

    fn run(&mut self) {
        let end = self.cfg.duration_ms * 1_000;
        while let Some(Reverse((t, _, ev))) = self.heap.pop() {
            if t > end {
                break;
            }
            self.now = t;
            let now = Time(t);
            match ev {
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
                    let m = std::mem::replace(
                        &mut self.slots[slot as usize],
                        InFlight {
                            from: 0,
                            to: 0,
                            bytes: Vec::new(),
                        },
                    );
                    self.free.push(slot);
                    let (from, to) = (m.from as usize, m.to as usize);
                    if self.blocked(from, to) {
                        self.dropped += 1;
                        continue;
                    }
                    let mut bytes = m.bytes;
                    if let Some(node) = self.nodes[to].as_mut() {
                        // The node counts and drops what it rejects.
                        let _ = node.handle_datagram(now, addr(from), &mut bytes);
                        self.after_touch(to);
                    } else {
                        self.dropped += 1;
                    }
                }
                Ev::Write => {
                    let live: Vec<usize> =
                        (0..self.nodes.len()).filter(|&i| self.live(i)).collect();
                    if !live.is_empty() {
                        let mut rng = Pcg64Mcg::seed_from_u64(mix(self.seed ^ 0x7772_6974));
                        let w = live[rng.random_range(0..live.len())];
                        if let Some(node) = self.nodes[w].as_mut()
                            && node.set(now, WRITE_KEY, b"written", None).is_ok()
                        {
                            self.writer = Some(self.ids[w]);
                        }
                        self.after_touch(w);
                    }
                }
                Ev::Sample => {
                    self.sample();
                    self.push(t + self.cfg.sample_ms * 1_000, Ev::Sample);
                }
            }
        }
        self.now = end;
    }

    /// Live observers, ascending.
    fn observers(&self) -> impl Iterator<Item = (usize, &ClusterNode)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    /// Whether every live node lists every live node (itself included) as alive.
    fn membership_settled(&self) -> bool {
        let now = Time(self.now);
        let want = self.live_ids.len();
        self.observers().all(|(_, n)| {
            if n.status_counts()[0] < want {
                return false;
            }
            let mut alive: Vec<NodeId> = n
                .members(now)
                .into_iter()
                .filter(|m| m.status == MemberStatus::Alive)
                .map(|m| m.id)
                .collect();
            alive.sort_unstable();
            alive == self.live_ids
        })
    }

    fn sample(&mut self) {
        let ms = self.ms();
        if self.settle.is_none()
            && self.live_ids.len() == self.nodes.len()
            && self.membership_settled()
        {
            self.settle = Some(ms);
        }
        if let (None, Some(w)) = (self.write, self.writer) {
            let all = self.observers().all(|(_, n)| {
                n.state()
                    .node(w)
                    .is_some_and(|r| r.get(WRITE_KEY).is_some())
            });
            if all {
                self.write = Some(ms - self.cfg.write_at_ms as f64);
            }
        }
        let round_ms = self.cfg.interval_ms as f64;
        for k in 0..self.crashes.len() {
            let c = &self.cfg.faults.crashes[k];
            let at_ms = f64::from(c.at) * round_ms;
            if ms < at_ms {
                continue;
            }
            let restarted = c.restart.is_some_and(|r| ms >= f64::from(r) * round_ms);
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

    /// Whether every live node marks every down node of crash `k` dead (or has forgotten it).
    fn detected(&self, k: usize) -> bool {
        let now = Time(self.now);
        let down: Vec<NodeId> = self.cfg.faults.crashes[k]
            .nodes
            .iter()
            .map(|i| i as usize)
            .filter(|&i| !self.live(i))
            .map(|i| self.ids[i])
            .collect();
        self.observers().all(|(_, n)| {
            n.members(now)
                .iter()
                .all(|m| !down.contains(&m.id) || m.status == MemberStatus::Dead)
        })
    }

    /// Whether every live node knows each restarted node of crash `k` as alive in its current
    /// generation, with its current `boot` key, and holds nothing of an older generation.
    fn rejoined(&self, k: usize) -> bool {
        let now = Time(self.now);
        let back: Vec<usize> = self.cfg.faults.crashes[k]
            .nodes
            .iter()
            .map(|i| i as usize)
            .filter(|&i| self.live(i))
            .collect();
        self.observers().all(|(o, n)| {
            let members = n.members(now);
            back.iter().filter(|&&b| b != o).all(|&b| {
                let id = self.ids[b];
                let generation = self.generation[b];
                let boot = generation.to_string();
                let record_ok = n.state().node(id).is_some_and(|r| {
                    r.generation == generation
                        && r.get(BOOT_KEY).is_some_and(|e| e.value == boot.as_bytes())
                });
                record_ok
                    && members.iter().any(|m| {
                        m.id == id && m.generation == generation && m.status == MemberStatus::Alive
                    })
            })
        })
    }

    /// A hash of what a user reads at observer `n`: every live node's generation and user keys.
    fn user_view(&self, n: &ClusterNode) -> u64 {
        let mut h = DefaultHasher::new();
        for &id in &self.live_ids {
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
            node: self.ids[node],
            what,
        })
    }

    /// The end-of-run invariants, then the report.
    fn finish(self) -> Result<ClusterReport, SimError> {
        let now = Time(self.now);
        let views: Vec<(usize, View)> = self
            .observers()
            .map(|(i, n)| {
                let v = n
                    .members(now)
                    .into_iter()
                    .map(|m| (m.id, m.status))
                    .collect();
                (i, v)
            })
            .collect();
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
        for (t, _) in self.observers() {
            let id = self.ids[t];
            let others: Vec<_> = views.iter().filter(|(o, _)| *o != t).collect();
            let all_dead = !others.is_empty()
                && others
                    .iter()
                    .all(|(_, v)| v.iter().any(|&(m, s)| m == id && s == MemberStatus::Dead));
            if all_dead {
                return Err(self.violation(
                    t,
                    format!("live node n{t} is declared dead by every other live node after the faults stopped"),
                ));
            }
        }
        // Every live node converges on the same user view.
        let hashes: Vec<u64> = self.observers().map(|(_, n)| self.user_view(n)).collect();
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
        let members_converged = self.membership_settled();
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
            rejoin_ms: slowest(|t| t.rejoined, |c| c.restart.is_some()),
            false_suspicions: self.false_suspicions,
            false_deaths: self.false_deaths,
            messages_per_node_s: per(self.messages),
            bytes_per_node_s: per(self.bytes),
            dropped: self.dropped,
            members_converged,
        })
    }
}
