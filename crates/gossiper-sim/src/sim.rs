//! One simulated run: real engines, virtual time, a faulty network, and the invariant checker.
//!
//! The loop owns every [`Node`] of the run, one [`Outbox`] they all write into, and the network:
//! a list of messages per delivery phase (synchronous model) or a heap of timed events
//! (asynchronous model). Every node call goes through one wrapper that reads the node's held
//! write before and after the call, which is all the measures and the checker need: O(1) per
//! message and no per-node history.

use std::fmt;

use gossiper_network::topology::Graph;
use gossiper_network::{Topology, TopologyError, UniformRandom};
use gossiper_node::{NoStats, Node, Outbox, Peers, SharedConfig};
use gossiper_types::{NodeId, Time};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::config::{ConfigError, Latency, SimConfig, SimInterval, Timing};
use crate::net::{self, EventQueue, Network, Population, Slots, apply_schedule};

mod route;
mod shard;
use crate::metrics::RunReport;
use crate::replica::{Observed, Replica};
use route::Routing;
use shard::{Ctx, Lanes, Tally};

use gossiper_node::Datagram;

/// The engine type the simulator drives: the production [`Node`] with the uniform random
/// selector (the phone-call model), the simulator's compact interval, and no per-node
/// counters ([`NoStats`]: the simulator counts every message itself, where it routes it).
pub type SimNode<S> = Node<S, UniformRandom, SimInterval, NoStats>;

/// An invariant the checker found broken, with everything needed to reproduce it.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Seed of the failing run.
    pub seed: u64,
    /// When (in rounds).
    pub round: f64,
    /// Which node, by the name the simulator gives it (`n{index}`).
    pub node: String,
    /// What was wrong.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant violated (seed {}) at round {}, node {}: {}",
            self.seed, self.round, self.node, self.what
        )
    }
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq)]
pub enum SimError {
    /// The configuration is out of range; nothing ran.
    Config(ConfigError),
    /// The topology could not be built for this seed.
    Topology {
        /// Seed of the run.
        seed: u64,
        /// Why.
        error: TopologyError,
    },
    /// The invariant checker caught a broken invariant.
    Invariant(Violation),
    /// A protocol that promises convergence had not converged after `max_rounds`.
    NotConverged {
        /// Seed of the run.
        seed: u64,
        /// Rounds simulated.
        rounds: u32,
        /// Fraction of live nodes holding the update at the end.
        informed: f64,
        /// What the run measured up to `max_rounds` (`converged` is false): a failed run's
        /// numbers are still results.
        report: Box<RunReport>,
    },
}

impl SimError {
    /// The seed of the failing run, if one ran.
    pub fn seed(&self) -> Option<u64> {
        match self {
            SimError::Config(_) => None,
            SimError::Topology { seed, .. } | SimError::NotConverged { seed, .. } => Some(*seed),
            SimError::Invariant(v) => Some(v.seed),
        }
    }

    /// The measures of a run that ran to its end without reaching its goal; `None` when the
    /// run's numbers cannot be trusted (an invariant broke) or nothing ran.
    pub fn report(&self) -> Option<&RunReport> {
        match self {
            SimError::NotConverged { report, .. } => Some(report),
            _ => None,
        }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Config(e) => write!(f, "{e}"),
            SimError::Topology { seed, error } => write!(f, "topology (seed {seed}): {error}"),
            SimError::Invariant(v) => write!(f, "{v}"),
            SimError::NotConverged {
                seed,
                rounds,
                informed,
                ..
            } => write!(
                f,
                "not converged after {rounds} rounds (seed {seed}): {:.4} of live nodes informed",
                informed
            ),
        }
    }
}

impl std::error::Error for SimError {}

impl From<ConfigError> for SimError {
    fn from(e: ConfigError) -> Self {
        SimError::Config(e)
    }
}

/// A well-mixed 64-bit hash (SplitMix64) to derive independent sub-seeds: the one seed helper
/// of the workspace, [`gossiper_types::seed::mix`].
pub use gossiper_types::seed::mix;
use gossiper_types::seed::split;

pub(crate) fn node_seed(run_seed: u64, id: u64, incarnation: u64) -> u64 {
    mix(split(run_seed, 0x6e6f_6465) ^ id.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ mix(incarnation))
}

/// Runs one simulation of `config` with `seed` and returns its measures.
///
/// The same seed and configuration always give the same report, bit for bit.
pub fn run<S: Replica>(config: &SimConfig, seed: u64) -> Result<RunReport, SimError> {
    run_threaded::<S>(config, seed, 1)
}

/// [`run`], with each synchronous round spread over up to `threads` threads (the asynchronous
/// model runs on one). The report is the same, bit for bit, whatever the thread count.
pub fn run_threaded<S: Replica>(
    config: &SimConfig,
    seed: u64,
    threads: usize,
) -> Result<RunReport, SimError> {
    config.validate()?;
    let mut world = World::<S>::new(config, seed)?;
    world.threads = threads.max(1);
    match config.timing {
        Timing::Sync => world.run_sync(),
        Timing::Async { interval, latency } => world.run_async(interval, latency),
    }
    world.finish()
}

/// Events of the asynchronous model; ordered by (time, sequence number) in the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// Round boundary `k`: record the curve, apply the faults scheduled for round `k`.
    Round(u32),
    /// A node's gossip timer.
    Timer(u32),
    /// Deliver the in-flight message in this slot.
    Deliver(u32),
}

#[derive(Default)]
struct InFlight {
    from: u32,
    to: u32,
    carrying: bool,
    bytes: Vec<u8>,
}

struct World<'c, S: Replica> {
    cfg: &'c SimConfig,
    seed: u64,
    graph: Option<Graph>,
    nodes: Vec<SimNode<S>>,
    live: Vec<bool>,
    /// Round at which each node (current incarnation) learned the update; NaN if it has not.
    learned: Vec<f32>,
    live_count: usize,
    informed_live: usize,
    hot_live: usize,
    writer: usize,
    target: (u64, NodeId),
    written: Vec<Observed>,
    net: Network,
    incarnations: u64,
    now_round: f64,
    active_partitions: Vec<usize>,
    out: Outbox,
    // Counters.
    messages: u64,
    bytes: u64,
    traffic: u64,
    duplicates: u64,
    dropped: u64,
    net_duplicates: u64,
    curve: Vec<f64>,
    rounds: f64,
    ended: bool,
    violation: Option<Violation>,
    faults_end: f64,
    promises_convergence: bool,
    /// Threads a synchronous round may use.
    threads: usize,
}

impl<'c, S: Replica> World<'c, S> {
    fn new(cfg: &'c SimConfig, seed: u64) -> Result<Self, SimError> {
        let n = cfg.nodes;
        let mut topo_rng = Pcg64Mcg::seed_from_u64(split(seed, 0x746f_706f));
        let graph = match cfg.topology {
            Topology::Complete => None,
            t => Some(
                t.build(n, &mut topo_rng)
                    .map_err(|error| SimError::Topology { seed, error })?,
            ),
        };
        // As the demo does: a node cannot contact more distinct neighbours than it has.
        if let Some(g) = &graph
            && cfg.fanout as usize > g.min_degree()
        {
            let why = format!(
                "fanout {} exceeds the smallest degree ({}) of {}; lower the fanout or pick a \
                 denser topology",
                cfg.fanout,
                g.min_degree(),
                cfg.topology
            );
            return Err(SimError::Topology {
                seed,
                error: TopologyError::BadParameter(why),
            });
        }
        let interval = match cfg.timing {
            Timing::Sync => SimInterval::default(),
            Timing::Async { interval, .. } => interval,
        };
        // One configuration, which every engine points to.
        let node_config = SharedConfig::new(cfg.node_config());
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let mut node = Node::with_shared_config(
                NodeId(i),
                node_config.clone(),
                S::default(),
                UniformRandom,
                interval,
                node_seed(seed, i, 0),
                NoStats,
            );
            node.set_peers(peers_of(&graph, n, i));
            nodes.push(node);
        }
        Ok(World {
            cfg,
            seed,
            graph,
            nodes,
            live: vec![true; n],
            learned: vec![f32::NAN; n],
            live_count: n,
            informed_live: 0,
            hot_live: 0,
            writer: 0,
            target: (u64::MAX, NodeId(u64::MAX)),
            written: Vec::new(),
            net: Network::new(seed),
            incarnations: 0,
            now_round: 0.0,
            active_partitions: Vec::new(),
            out: Outbox::new(),
            messages: 0,
            bytes: 0,
            traffic: 0,
            duplicates: 0,
            dropped: 0,
            net_duplicates: 0,
            curve: Vec::new(),
            rounds: 0.0,
            ended: false,
            violation: None,
            faults_end: f64::from(cfg.faults_end()),
            promises_convergence: cfg.promises_convergence(),
            threads: 1,
        })
    }

    fn fraction_informed(&self) -> f64 {
        if self.live_count == 0 {
            0.0
        } else {
            self.informed_live as f64 / self.live_count as f64
        }
    }

    fn is_informed(&self, o: &Observed) -> bool {
        o.dot() >= self.target
    }

    /// Writes the run's update at a random live node.
    fn inject(&mut self, now: Time) {
        let mut rng = Pcg64Mcg::seed_from_u64(split(self.seed, 0x7772_6974));
        let live: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.live[i]).collect();
        let Some(&w) = live.get(rng.random_range(0..live.len().max(1))) else {
            return;
        };
        let value: u64 = rng.random();
        self.writer = w;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let node = &mut self.nodes[w];
        node.write(now, &mut out, |s| s.inject(NodeId(w as u64), value));
        self.out = out;
        let obs = self.nodes[w].state().observe();
        self.written.push(obs);
        self.target = obs.dot();
        self.learned[w] = 0.0;
        self.informed_live += 1;
        if self.nodes[w].is_hot() {
            self.hot_live += 1;
        }
    }

    /// Calls `f` on node `i` with the shared outbox (cleared first) and updates the informed
    /// and hot counts, checking the invariants on any change of the held write. Returns whether
    /// the node held the update before the call.
    fn touch(&mut self, i: usize, f: impl FnOnce(&mut SimNode<S>, &mut Outbox)) -> bool {
        let never = |_: u32, _: u32| false;
        let ctx = Ctx {
            check: self.cfg.check && self.violation.is_none(),
            seed: self.seed,
            round: self.now_round,
            target: self.target,
            written: &self.written,
            live: &self.live,
            partitioned: false,
            blocked: &never,
        };
        let mut tally = Tally::default();
        self.out.clear();
        let was_informed = shard::touch(
            &ctx,
            i,
            &mut self.nodes[i],
            &mut self.learned[i],
            &mut self.out,
            &mut tally,
            f,
        );
        self.merge(tally);
        was_informed
    }

    /// Adds what a group of node calls changed to the run's counts.
    fn merge(&mut self, tally: Tally) {
        self.hot_live = (self.hot_live as i64 + tally.hot) as usize;
        self.informed_live = (self.informed_live as i64 + tally.informed) as usize;
        self.dropped += tally.dropped;
        self.duplicates += tally.duplicates;
        if self.violation.is_none() {
            self.violation = tally.violation;
        }
    }

    fn blocked(&self, from: u32, to: u32) -> bool {
        net::blocked(
            &self.cfg.faults,
            &self.active_partitions,
            u64::from(from),
            u64::from(to),
        )
    }

    /// Counts an outgoing message (traffic: it carries a non-empty delta, which the engine
    /// noted when it wrote it; the run has one update) and decides its fate: 0 (lost), 1 or 2
    /// (duplicated) copies.
    fn send_copies(&mut self, from: u32, sent: &Datagram) -> u32 {
        let to = sent.to();
        self.messages += 1;
        self.bytes += sent.range().len() as u64;
        if sent.carries_delta() {
            self.traffic += 1;
        }
        if to.0 >= self.nodes.len() as u64 {
            self.dropped += 1;
            return 0;
        }
        let (faults, active) = (&self.cfg.faults, &self.active_partitions);
        // A fault-free network draws nothing: the common case skips the fate altogether.
        let copies = if faults.loss == 0.0 && faults.duplicate == 0.0 && active.is_empty() {
            1
        } else {
            self.net.copies(faults, || {
                net::blocked(faults, active, u64::from(from), to.0)
            })
        };
        match copies {
            0 => self.dropped += 1,
            2 => self.net_duplicates += 1,
            _ => {}
        }
        copies
    }

    /// Hands one message to its receiver; returns false if it was dropped on the way in.
    fn deliver(&mut self, from: u32, to: u32, bytes: &[u8], carrying: bool, now: Time) -> bool {
        if !self.live[to as usize] || self.blocked(from, to) {
            self.dropped += 1;
            return false;
        }
        let was_informed = self.touch(to as usize, |node, out| {
            // The engine counts and drops what it rejects; simulated peers send well-formed bytes.
            let _ = node.handle_message(now, NodeId(u64::from(from)), bytes, out);
        });
        if carrying && was_informed {
            self.duplicates += 1;
        }
        true
    }

    fn crash(&mut self, i: usize) {
        if !self.live[i] {
            return;
        }
        self.live[i] = false;
        self.live_count -= 1;
        if !self.learned[i].is_nan() {
            self.informed_live -= 1;
        }
        if self.nodes[i].is_hot() {
            self.hot_live -= 1;
        }
    }

    /// Brings node `i` back as a new engine (new seed), with its old state or an empty one.
    /// Returns whether it restarted.
    fn restart(&mut self, i: usize, keep_state: bool) -> bool {
        if self.live[i] {
            return false;
        }
        self.incarnations += 1;
        let state = if keep_state {
            self.nodes[i].state().clone()
        } else {
            S::default()
        };
        let old = &self.nodes[i];
        let (config, interval) = (old.shared_config().clone(), *old.interval());
        let id = i as u64;
        let mut node = Node::with_shared_config(
            NodeId(id),
            config,
            state,
            UniformRandom,
            interval,
            node_seed(self.seed, id, self.incarnations),
            NoStats,
        );
        node.set_peers(peers_of(&self.graph, self.nodes.len(), id));
        self.nodes[i] = node;
        self.live[i] = true;
        self.live_count += 1;
        let obs = self.nodes[i].state().observe();
        if self.is_informed(&obs) {
            self.informed_live += 1;
        } else {
            self.learned[i] = f32::NAN;
        }
        true
    }

    /// Applies what the schedule says happens at the start of round `r`. Returns the nodes that
    /// restarted (the asynchronous model starts their timers).
    fn apply_faults(&mut self, r: u32) -> Vec<usize> {
        let cfg = self.cfg;
        let (restarted, active) = apply_schedule(self, &cfg.faults, r);
        self.active_partitions = active;
        restarted
    }

    /// Whether the run is over at round `r` (all scheduled faults are behind us and the goal is
    /// reached); records the round count if so.
    fn check_done(&mut self, r: f64, in_flight: usize) -> bool {
        if r < self.faults_end {
            return false;
        }
        let done = if self.promises_convergence {
            self.informed_live == self.live_count
        } else {
            self.hot_live == 0 && in_flight == 0
        };
        if done {
            self.rounds = r;
            self.ended = true;
        }
        done
    }

    fn run_sync(&mut self) {
        self.apply_faults(0);
        self.inject(Time::ZERO);
        self.curve.push(self.fraction_informed());
        let n = self.nodes.len();
        let mut lanes = Lanes::new(self.threads, n);
        let mut routing = Routing::default();
        for r in 1..=self.cfg.max_rounds {
            self.now_round = f64::from(r);
            let now = Time::from_millis(u64::from(r));
            self.apply_faults(r);
            // Phase 1: every live node opens its round against the state at the round's start
            // (opening a round reads the state and changes nothing).
            self.phase(&mut lanes, &|ctx, shard| shard.open_rounds(ctx, now));
            self.route(&lanes, &mut routing);
            // Phases 2, 3, ...: deliver everything sent in the previous phase, collecting the
            // answers for the next one. Each lane delivers its own inbox.
            while !routing.is_empty() {
                let inboxes = &routing.inboxes;
                self.phase(&mut lanes, &|ctx, shard| {
                    let inbox = &inboxes[shard.index()];
                    shard.deliver(ctx, &inbox.bytes, inbox.items(), now);
                });
                self.route(&lanes, &mut routing);
            }
            self.curve.push(self.fraction_informed());
            if self.violation.is_some() || self.check_done(f64::from(r), 0) {
                return;
            }
        }
        self.rounds = f64::from(self.cfg.max_rounds);
    }

    /// Runs `f` on every lane's range of nodes (in parallel when there are several lanes), then
    /// merges the lanes' counts in range order.
    fn phase(
        &mut self,
        lanes: &mut Lanes,
        f: &(dyn Fn(&Ctx<'_>, &mut shard::Shard<'_, S>) + Sync),
    ) {
        let (cfg, active) = (self.cfg, &self.active_partitions);
        let blocked = |from: u32, to: u32| {
            !active.is_empty() && net::blocked(&cfg.faults, active, u64::from(from), u64::from(to))
        };
        let ctx = Ctx {
            check: self.cfg.check && self.violation.is_none(),
            seed: self.seed,
            round: self.now_round,
            target: self.target,
            written: &self.written,
            live: &self.live,
            partitioned: !active.is_empty(),
            blocked: &blocked,
        };
        lanes.run(&mut self.nodes, &mut self.learned, &|shard| f(&ctx, shard));
        for k in 0..lanes.tallies.len() {
            let tally = std::mem::take(&mut lanes.tallies[k]);
            self.merge(tally);
        }
    }

    /// Sends what every lane's nodes sent, in the order one thread sends: counted, lost or
    /// duplicated by the network (and shuffled, if it reorders), and laid out in receiver order
    /// in each lane's inbox of `routing`.
    fn route(&mut self, lanes: &Lanes, routing: &mut Routing) {
        let faults = &self.cfg.faults;
        let clean = faults.loss == 0.0
            && faults.duplicate == 0.0
            && faults.reorder == 0.0
            && self.active_partitions.is_empty();
        if clean {
            // Nothing to draw: the lanes count and split their own messages in parallel.
            let c = routing.route_clean(&lanes.cut, &lanes.outs, &lanes.senders);
            self.messages += c.messages;
            self.bytes += c.bytes;
            self.traffic += c.traffic;
            self.dropped += c.dropped;
            return;
        }
        routing.start();
        for (out, senders) in lanes.outs.iter().zip(&lanes.senders) {
            for (sent, &from) in out.datagrams().iter().zip(senders) {
                let copies = self.send_copies(from, sent);
                routing.note(copies);
            }
        }
        let reorder = self.cfg.faults.reorder > 0.0;
        let shuffle = reorder.then_some(&mut self.net.rng);
        routing.finish(&lanes.cut, &lanes.outs, &lanes.senders, shuffle);
    }

    fn run_async(&mut self, interval: SimInterval, latency: Latency) {
        let round_us = interval.mean_us().max(1.0);
        let max_us = (f64::from(self.cfg.max_rounds) * round_us) as u64;
        let mut queue = EventQueue::new();
        let mut slots: Slots<InFlight> = Slots::new();
        let mut spare: Vec<Vec<u8>> = Vec::new();

        self.apply_faults(0);
        self.inject(Time::ZERO);
        self.curve.push(self.fraction_informed());
        for i in 0..self.nodes.len() {
            if self.live[i] {
                let phase = self.net.rng.random_range(0..round_us as u64);
                self.nodes[i].start(Time(phase));
                queue.push(self.nodes[i].poll_timeout().0, Ev::Timer(i as u32));
            }
        }
        queue.push(round_us as u64, Ev::Round(1));

        while let Some((t, ev)) = queue.pop() {
            if t > max_us {
                break;
            }
            self.now_round = t as f64 / round_us;
            let now = Time(t);
            let from = match ev {
                Ev::Round(k) => {
                    self.curve.push(self.fraction_informed());
                    for i in self.apply_faults(k) {
                        self.nodes[i].start(now);
                        queue.push(self.nodes[i].poll_timeout().0, Ev::Timer(i as u32));
                    }
                    if k < self.cfg.max_rounds {
                        let at = ((f64::from(k) + 1.0) * round_us) as u64;
                        queue.push(at, Ev::Round(k + 1));
                    }
                    None
                }
                Ev::Timer(i) => {
                    let iu = i as usize;
                    if self.live[iu] && self.nodes[iu].poll_timeout() == now {
                        self.touch(iu, |node, out| node.handle_timeout(now, out));
                        queue.push(self.nodes[iu].poll_timeout().0, Ev::Timer(i));
                        Some(i)
                    } else {
                        None
                    }
                }
                Ev::Deliver(slot) => {
                    let m = slots.take(slot);
                    let delivered = self.deliver(m.from, m.to, &m.bytes, m.carrying, now);
                    spare.push(m.bytes);
                    delivered.then_some(m.to)
                }
            };
            if let Some(from) = from {
                let out = std::mem::take(&mut self.out);
                for sent in out.datagrams() {
                    let copies = self.send_copies(from, sent);
                    let (to, bytes) = (sent.to(), &out.bytes()[sent.range()]);
                    for _ in 0..copies {
                        let delay =
                            self.net
                                .delay(&latency, self.cfg.faults.reorder, round_us as u64);
                        let mut buf = spare.pop().unwrap_or_default();
                        buf.clear();
                        buf.extend_from_slice(bytes);
                        let slot = slots.put(InFlight {
                            from,
                            to: to.0 as u32,
                            carrying: sent.carries_delta(),
                            bytes: buf,
                        });
                        queue.push(t + delay, Ev::Deliver(slot));
                    }
                }
                self.out = out;
            }
            if self.violation.is_some() {
                return;
            }
            if self.check_done(self.now_round, slots.in_flight()) {
                self.curve.push(self.fraction_informed());
                return;
            }
        }
        self.rounds = f64::from(self.cfg.max_rounds);
    }

    fn finish(mut self) -> Result<RunReport, SimError> {
        if let Some(v) = self.violation.take() {
            return Err(SimError::Invariant(v));
        }
        let promises = self.cfg.promises_convergence();
        let converged = self.ended && self.informed_live == self.live_count;
        if self.cfg.check && converged {
            // Every live node must now hold exactly the update: the same write, the same value.
            let expected = self.written.iter().max().copied().unwrap_or_default();
            for (i, node) in self.nodes.iter().enumerate() {
                let obs = node.state().observe();
                if self.live[i] && obs != expected {
                    return Err(SimError::Invariant(Violation {
                        seed: self.seed,
                        round: self.rounds,
                        node: format!("n{i}"),
                        what: format!("converged to {obs:?}, expected {expected:?}"),
                    }));
                }
            }
        }
        let (seed, max_rounds, informed) =
            (self.seed, self.cfg.max_rounds, self.fraction_informed());
        let report = self.report(converged);
        if promises && !converged {
            return Err(SimError::NotConverged {
                seed,
                rounds: max_rounds,
                informed,
                report: Box::new(report),
            });
        }
        Ok(report)
    }

    /// The run's measures.
    fn report(self, converged: bool) -> RunReport {
        let n = self.nodes.len() as f64;
        let mut sum = 0.0f64;
        let mut count = 0usize;
        let mut last = f64::NAN;
        for (i, &t) in self.learned.iter().enumerate() {
            if i != self.writer && self.live[i] && !t.is_nan() {
                sum += f64::from(t);
                count += 1;
                last = if last.is_nan() {
                    f64::from(t)
                } else {
                    last.max(f64::from(t))
                };
            }
        }
        RunReport {
            seed: self.seed,
            converged,
            rounds: self.rounds,
            residue: if self.live_count == 0 {
                1.0
            } else {
                1.0 - self.informed_live as f64 / self.live_count as f64
            },
            traffic: self.traffic as f64 / n,
            t_ave: if count > 0 {
                sum / count as f64
            } else {
                f64::NAN
            },
            t_last: last,
            messages_per_node: self.messages as f64 / n,
            bytes_per_node: self.bytes as f64 / n,
            duplicates_per_node: self.duplicates as f64 / n,
            dropped: self.dropped,
            network_duplicates: self.net_duplicates,
            curve: self.curve,
        }
    }
}

impl<S: Replica> Population for World<'_, S> {
    fn len(&self) -> usize {
        self.nodes.len()
    }
    fn is_live(&self, i: usize) -> bool {
        self.live[i]
    }
    fn crash(&mut self, i: usize) {
        World::crash(self, i);
    }
    fn restart(&mut self, i: usize, keep_state: bool) -> bool {
        World::restart(self, i, keep_state)
    }
    fn network(&mut self) -> &mut Network {
        &mut self.net
    }
}

fn peers_of(graph: &Option<Graph>, n: usize, id: u64) -> Peers {
    match graph {
        None => Peers::Complete { n: n as u64 },
        Some(g) => Peers::List(g.neighbors(NodeId(id)).to_vec()),
    }
}
