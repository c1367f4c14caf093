//! A tiny virtual-time loop around the engine: no threads, no clock, one seed.
//!
//! Deadlines and in-flight datagrams sit in one binary heap ordered by (time, sequence number);
//! the loop pops the earliest, hands it to its engine, and schedules what the engine sends after
//! a latency drawn from a seeded RNG. Every choice comes from `seed`, and ties are broken by
//! insertion order, so a run is a pure function of its [`Config`]: the property the full
//! simulator is built on, checked here at small scale.
//!
//! Why its own ten-line heap and not the simulator's one event queue (`gossiper-sim`'s
//! `net.rs`, which the synchronous, asynchronous and cluster simulators share): this crate
//! tests the engine and its runtimes with nothing of the simulator in between, so that a
//! determinism bug in the engine shows here even if the simulator's core had one that hid it.
//! Borrowing the simulator's queue would make that check lean on the code it checks, and
//! would make these cross-crate tests depend on `gossiper-sim` (and through it on
//! `gossiper-cluster`) for a `BinaryHeap` of `(time, sequence, event)`. The network model, the
//! fault fates and the seed helper are not duplicated here: there is no loss, duplication or
//! partition in this loop, and its seeds come from `gossiper_types::seed`.

use gossiper_types::seed::split;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use gossiper_network::{JitterInterval, Topology, UniformRandom};
use gossiper_node::{Mode, Node, NodeConfig, Outbox, Peers, Stats};
use gossiper_types::{KvMap, NodeId, Time};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// One run's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Number of nodes, numbered `0..nodes`.
    pub nodes: usize,
    /// How they are wired (random topologies draw from `seed`).
    pub topology: Topology,
    /// The anti-entropy exchange.
    pub mode: Mode,
    /// Peers per round.
    pub fanout: u32,
    /// Shortest delay between a node's rounds.
    pub min_interval: Duration,
    /// Longest delay between a node's rounds.
    pub max_interval: Duration,
    /// Shortest one-way network delay.
    pub min_latency: Duration,
    /// Longest one-way network delay.
    pub max_latency: Duration,
    /// Application writes at random nodes, at random times in the first `write_window`.
    pub writes: u32,
    /// When the writes happen.
    pub write_window: Duration,
    /// Give up at this virtual time.
    pub deadline: Duration,
    /// The master seed of every random choice.
    pub seed: u64,
    /// The engine's [`NodeConfig::push_on_write`]. Off by default, so that only gossip rounds
    /// move data (the behaviour these tests measure).
    pub push_on_write: bool,
}

impl Default for Config {
    /// 100 nodes on a 4-regular random graph, push-pull, fanout 1, rounds every 100–300 ms,
    /// 1–20 ms latency, 20 writes in the first second, give up after 60 virtual seconds, no
    /// push-on-write.
    fn default() -> Self {
        Config {
            nodes: 100,
            topology: Topology::RandomRegular { degree: 4 },
            mode: Mode::PushPull,
            fanout: 1,
            min_interval: Duration::from_millis(100),
            max_interval: Duration::from_millis(300),
            min_latency: Duration::from_millis(1),
            max_latency: Duration::from_millis(20),
            writes: 20,
            write_window: Duration::from_secs(1),
            deadline: Duration::from_secs(60),
            seed: 1,
            push_on_write: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// When every node first held every write, if it happened before the deadline.
    pub converged_at: Option<Time>,
    /// Each node's counters at the end.
    pub per_node: Vec<Stats>,
    /// All counters added up.
    pub totals: Stats,
    /// Heap entries processed (timers, deliveries, writes).
    pub steps: u64,
    /// True when every node ended with an identical state (entries, not just digests).
    pub states_equal: bool,
}

/// Something due at a virtual time.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// A node's round timer, valid only while it still equals the node's `poll_timeout`.
    Timer(usize),
    /// A datagram arriving.
    Deliver {
        from: NodeId,
        to: usize,
        bytes: Vec<u8>,
    },
    /// The application writes `key` at node `at`.
    Write { at: usize, key: String },
}

/// Derives independent seeds from the master seed: the workspace's one seed helper, with the
/// stream number spread so that streams 1, 2, 3 ... are far apart.
fn stream(seed: u64, n: u64) -> u64 {
    split(seed, n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The event loop.
struct Sim {
    nodes: Vec<Node<KvMap, UniformRandom, JitterInterval>>,
    heap: BinaryHeap<Reverse<(Time, u64, Due)>>,
    seq: u64,
    net_rng: Pcg64Mcg,
    latency_us: (u64, u64),
    out: Outbox,
}

impl Sim {
    fn push(&mut self, at: Time, due: Due) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, due)));
    }

    /// Puts everything node `from` just sent on the wire, and its next round on the heap if
    /// the step moved it.
    fn after_step(&mut self, now: Time, from: usize, timer_before: Time) {
        let sender = self.nodes[from].id();
        let mut sends = Vec::with_capacity(self.out.len());
        for (to, bytes) in self.out.iter() {
            let delay = self
                .net_rng
                .random_range(self.latency_us.0..=self.latency_us.1);
            sends.push((
                Time(now.0 + delay),
                Due::Deliver {
                    from: sender,
                    to: to.index(),
                    bytes: bytes.to_vec(),
                },
            ));
        }
        self.out.clear();
        for (at, due) in sends {
            self.push(at, due);
        }
        let timer = self.nodes[from].poll_timeout();
        if timer != timer_before && timer != Time::NEVER {
            self.push(timer, Due::Timer(from));
        }
    }
}

/// Runs `config` to convergence or its deadline.
///
/// Every node starts from its own key (`node-i`); writes add `write-w` keys at random nodes.
///
/// # Panics
///
/// If `config.topology` cannot be built for `config.nodes` nodes, or the intervals or
/// latencies are out of order: a test's own mistake.
pub fn run(config: &Config) -> Outcome {
    let n = config.nodes;
    let mut topo_rng = Pcg64Mcg::seed_from_u64(stream(config.seed, u64::MAX));
    let graph = config
        .topology
        .build(n, &mut topo_rng)
        .unwrap_or_else(|e| panic!("{}: {e}", config.topology));
    let interval = JitterInterval::new(config.min_interval, config.max_interval)
        .unwrap_or_else(|e| panic!("interval: {e}"));
    assert!(config.min_latency <= config.max_latency, "latency range");
    let node_config = NodeConfig {
        mode: config.mode,
        fanout: config.fanout,
        push_on_write: config.push_on_write,
        ..NodeConfig::default()
    };
    let nodes = (0..n)
        .map(|i| {
            let id = NodeId(i as u64);
            let mut state = KvMap::new();
            state.set(
                id,
                &format!("node-{i}"),
                format!("hello from {i}").into_bytes(),
            );
            let seed = stream(config.seed, i as u64 + 1);
            let mut node = Node::new(id, node_config, state, UniformRandom, interval, seed);
            node.set_peers(Peers::List(graph.neighbors(id).to_vec()));
            node
        })
        .collect();
    let mut sim = Sim {
        nodes,
        heap: BinaryHeap::new(),
        seq: 0,
        net_rng: Pcg64Mcg::seed_from_u64(stream(config.seed, u64::MAX - 1)),
        latency_us: (micros(config.min_latency), micros(config.max_latency)),
        out: Outbox::new(),
    };
    for i in 0..n {
        sim.nodes[i].start(Time::ZERO);
        let at = sim.nodes[i].poll_timeout();
        sim.push(at, Due::Timer(i));
    }
    let mut write_rng = Pcg64Mcg::seed_from_u64(stream(config.seed, u64::MAX - 2));
    let window = micros(config.write_window).max(1);
    for w in 0..config.writes {
        let at = Time(write_rng.random_range(0..window));
        let node = write_rng.random_range(0..n);
        sim.push(
            at,
            Due::Write {
                at: node,
                key: format!("write-{w}"),
            },
        );
    }

    // Every node's own key is version 1 of its owner, and each write adds a version: a node
    // holding every write has this many versions in total.
    let target = n as u64 + u64::from(config.writes);
    let mut complete = vec![false; n];
    let mut complete_count = 0;
    let deadline = Time(micros(config.deadline));
    let mut steps = 0;
    let mut converged_at = None;
    while let Some(Reverse((now, _, due))) = sim.heap.pop() {
        if now > deadline {
            break;
        }
        steps += 1;
        let i = match &due {
            Due::Timer(i) => *i,
            Due::Deliver { to, .. } => *to,
            Due::Write { at, .. } => *at,
        };
        let timer_before = sim.nodes[i].poll_timeout();
        let changes_before = sim.nodes[i].stats().state_changes;
        match due {
            Due::Timer(_) if timer_before != now => continue, // superseded
            Due::Timer(_) => sim.nodes[i].handle_timeout(now, &mut sim.out),
            Due::Deliver { from, bytes, .. } => {
                sim.nodes[i]
                    .handle_message(now, from, &bytes, &mut sim.out)
                    .unwrap_or_else(|e| panic!("engine-made datagram dropped: {e}"));
            }
            Due::Write { key, .. } => {
                let id = sim.nodes[i].id();
                let value = format!("{key} at {id}").into_bytes();
                sim.nodes[i].write(now, &mut sim.out, |s| {
                    s.set(id, &key, value);
                });
            }
        }
        sim.after_step(now, i, timer_before);
        if sim.nodes[i].stats().state_changes != changes_before && !complete[i] {
            complete[i] = sim.nodes[i].state().total_versions() == target;
            if complete[i] {
                complete_count += 1;
                if complete_count == n {
                    converged_at = Some(now);
                    break;
                }
            }
        }
    }

    let per_node: Vec<Stats> = sim.nodes.iter().map(|n| *n.stats()).collect();
    let mut totals = Stats::default();
    for s in &per_node {
        totals.accumulate(s);
    }
    let states_equal = sim.nodes.windows(2).all(|w| w[0].state() == w[1].state());
    Outcome {
        converged_at,
        per_node,
        totals,
        steps,
        states_equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_converges_with_equal_states() {
        let config = Config {
            nodes: 10,
            writes: 5,
            ..Config::default()
        };
        let outcome = run(&config);
        assert!(outcome.converged_at.is_some());
        assert!(outcome.states_equal);
        assert_eq!(outcome.per_node.len(), 10);
        assert!(outcome.totals.rounds >= 10);
    }
}
