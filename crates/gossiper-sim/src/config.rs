//! What to simulate: the cluster, the protocol, the timing model and the faults.
//!
//! Every time in a fault schedule is counted in *rounds*: a synchronous round, or one mean gossip
//! interval in the asynchronous model, so the same schedule means the same thing under both.

use std::time::Duration;

use gossiper_network::{GossipInterval, Topology};
use gossiper_node::{Mode, NodeConfig, Protocol};
use rand::{Rng, RngExt};

/// A configuration the simulator refuses, with a one-line reason: the engine's own error type,
/// so an engine setting out of range and a simulator setting out of range read alike.
pub use gossiper_node::ConfigError;

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// The gossip interval of the asynchronous model, in microseconds. Compact (12 bytes) because
/// every one of a million nodes holds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimInterval {
    /// The same delay every round.
    Fixed {
        /// Delay, µs, at least 1.
        us: u32,
    },
    /// Uniform in `[min_us, max_us]`.
    Uniform {
        /// Shortest delay, µs, at least 1.
        min_us: u32,
        /// Longest delay, µs.
        max_us: u32,
    },
    /// Exponential with the given mean (each node's rounds form a Poisson process).
    Exp {
        /// Mean delay, µs, at least 1.
        mean_us: u32,
    },
}

impl Default for SimInterval {
    fn default() -> Self {
        SimInterval::Fixed { us: 100_000 }
    }
}

impl SimInterval {
    /// The mean delay in microseconds: the length of one "round" in the asynchronous model.
    pub fn mean_us(&self) -> f64 {
        match *self {
            SimInterval::Fixed { us } => f64::from(us),
            SimInterval::Uniform { min_us, max_us } => {
                (f64::from(min_us) + f64::from(max_us)) / 2.0
            }
            SimInterval::Exp { mean_us } => f64::from(mean_us),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            SimInterval::Fixed { us } | SimInterval::Exp { mean_us: us } if us == 0 => {
                Err(bad("gossip interval must be positive"))
            }
            SimInterval::Uniform { min_us, max_us } if min_us == 0 || min_us > max_us => {
                Err(bad("uniform interval needs 0 < min <= max"))
            }
            _ => Ok(()),
        }
    }
}

impl GossipInterval for SimInterval {
    fn next_delay(&mut self, rng: &mut dyn Rng) -> Duration {
        let us = match *self {
            SimInterval::Fixed { us } => u64::from(us),
            SimInterval::Uniform { min_us, max_us } => u64::from(rng.random_range(min_us..=max_us)),
            SimInterval::Exp { mean_us } => exp_sample(rng, f64::from(mean_us)).max(1),
        };
        Duration::from_micros(us)
    }
    fn mean(&self) -> Duration {
        Duration::from_micros(self.mean_us() as u64)
    }
    fn describe(&self) -> String {
        match *self {
            SimInterval::Fixed { us } => format!("fixed({}ms)", f64::from(us) / 1e3),
            SimInterval::Uniform { min_us, max_us } => {
                format!(
                    "uniform({}..{}ms)",
                    f64::from(min_us) / 1e3,
                    f64::from(max_us) / 1e3
                )
            }
            SimInterval::Exp { mean_us } => format!("exp(mean {}ms)", f64::from(mean_us) / 1e3),
        }
    }
}

/// An exponential draw with the given mean, in whole microseconds (inverse CDF).
fn exp_sample(rng: &mut dyn Rng, mean: f64) -> u64 {
    let u: f64 = rng.random();
    (-mean * (1.0 - u).ln()) as u64
}

/// One-way message delay in the asynchronous model.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Latency {
    /// Delivered at the instant it is sent (events at the same instant keep send order).
    #[default]
    Zero,
    /// Always `us` microseconds.
    Fixed {
        /// Delay, µs.
        us: u64,
    },
    /// Uniform in `[min_us, max_us]`.
    Uniform {
        /// Shortest delay, µs.
        min_us: u64,
        /// Longest delay, µs.
        max_us: u64,
    },
    /// Exponential with mean `mean_us`.
    Exp {
        /// Mean delay, µs.
        mean_us: u64,
    },
}

impl Latency {
    /// Draws one delay, µs.
    pub fn sample(&self, rng: &mut dyn Rng) -> u64 {
        match *self {
            Latency::Zero => 0,
            Latency::Fixed { us } => us,
            Latency::Uniform { min_us, max_us } => rng.random_range(min_us..=max_us),
            Latency::Exp { mean_us } => exp_sample(rng, mean_us as f64),
        }
    }

    /// The mean delay, µs.
    pub fn mean_us(&self) -> f64 {
        match *self {
            Latency::Zero => 0.0,
            Latency::Fixed { us } => us as f64,
            Latency::Uniform { min_us, max_us } => (min_us + max_us) as f64 / 2.0,
            Latency::Exp { mean_us } => mean_us as f64,
        }
    }
}

/// The two timing models.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timing {
    /// Synchronous rounds, the random phone-call model: every live node acts once per round
    /// against the state at the round's start. Messages are delivered in phases: all
    /// round-opening messages, then all replies they provoke, then all closing messages.
    Sync,
    /// Each node on its own gossip timer (started at a random phase), messages with latency.
    Async {
        /// Each node's gossip interval; its mean is the length of a round.
        interval: SimInterval,
        /// One-way delay of every message.
        latency: Latency,
    },
}

/// A set of node ids, as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeSet(pub Vec<(u64, u64)>);

impl NodeSet {
    /// Whether `id` is in the set.
    pub fn contains(&self, id: u64) -> bool {
        self.0.iter().any(|&(a, b)| a <= id && id <= b)
    }

    /// The largest id named, if any.
    pub fn max_id(&self) -> Option<u64> {
        self.0.iter().map(|&(_, b)| b).max()
    }

    /// Ids in the set, ascending order of ranges as given.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|&(a, b)| a..=b)
    }

    /// Number of ids (ranges may overlap; overlaps are counted twice).
    pub fn len(&self) -> u64 {
        self.0.iter().map(|&(a, b)| b - a + 1).sum()
    }

    /// True when no id is named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A network partition: from round `from` until round `until` (exclusive) nodes in different
/// groups cannot reach each other. Nodes named in no group form one more group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// First round of the split.
    pub from: u32,
    /// Round at which it heals.
    pub until: u32,
    /// The groups.
    pub groups: Vec<NodeSet>,
}

impl Partition {
    /// The group `id` belongs to (`groups.len()` for the unnamed rest).
    pub fn group_of(&self, id: u64) -> usize {
        self.groups
            .iter()
            .position(|g| g.contains(id))
            .unwrap_or(self.groups.len())
    }
}

/// Nodes that crash at a round and maybe restart later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// Round at whose start the nodes stop.
    pub at: u32,
    /// Round at whose start they come back (`None`: never).
    pub restart: Option<u32>,
    /// Which nodes.
    pub nodes: NodeSet,
    /// Restart with the state held at the crash (true) or empty (false).
    pub keep_state: bool,
}

/// Churn: while active, at the start of each round every live node is, with probability
/// `rate`, replaced by a fresh one (same id, empty state).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    /// Per node, per round, in `[0, 1]`.
    pub rate: f64,
    /// First round with churn.
    pub from: u32,
    /// Round at which churn stops.
    pub until: u32,
}

/// The network and node faults of a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Faults {
    /// Probability that a message is lost, in `[0, 1)`.
    pub loss: f64,
    /// Probability that a delivered message is delivered twice, in `[0, 1]`.
    pub duplicate: f64,
    /// Reordering: under sync, shuffle each delivery phase (any value > 0); under async, the
    /// probability that a message is held back by an extra delay of up to one round.
    pub reorder: f64,
    /// Scheduled partitions.
    pub partitions: Vec<Partition>,
    /// Scheduled crashes.
    pub crashes: Vec<Crash>,
    /// Churn, if any.
    pub churn: Option<Churn>,
}

impl Faults {
    /// Indices of the partitions in force during round `r`.
    pub fn active_partitions(&self, r: u32) -> Vec<usize> {
        self.partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| (p.from..p.until).contains(&r))
            .map(|(i, _)| i)
            .collect()
    }
}

/// Everything one simulated run needs besides its seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Number of nodes, ids `0..nodes`; at least 2.
    pub nodes: usize,
    /// The graph; `Complete` is implicit (no neighbour lists), the others are built per run.
    pub topology: Topology,
    /// Anti-entropy or rumor mongering.
    pub protocol: Protocol,
    /// Anti-entropy exchange (push, pull, push-pull); also rumor mongering's backing exchange.
    pub mode: Mode,
    /// Peers contacted per round, at least 1.
    pub fanout: u32,
    /// Synchronous rounds or asynchronous timers.
    pub timing: Timing,
    /// Faults to inject.
    pub faults: Faults,
    /// Give up after this many rounds.
    pub max_rounds: u32,
    /// Run the invariant checker (cheap: O(1) per delivery).
    pub check: bool,
    /// Largest datagram, bytes (see [`NodeConfig::max_message_bytes`]).
    pub max_message_bytes: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 1_000,
            topology: Topology::Complete,
            protocol: Protocol::AntiEntropy,
            mode: Mode::PushPull,
            fanout: 1,
            timing: Timing::Sync,
            faults: Faults::default(),
            max_rounds: 10_000,
            check: true,
            max_message_bytes: 1_400,
        }
    }
}

impl SimConfig {
    /// The engine configuration every node runs with.
    pub fn node_config(&self) -> NodeConfig {
        NodeConfig {
            protocol: self.protocol,
            mode: self.mode,
            fanout: self.fanout,
            max_message_bytes: self.max_message_bytes,
            push_on_write: false,
            emit_events: false,
        }
    }

    /// Whether the protocol promises that every live node eventually holds every update
    /// (anti-entropy, or rumor mongering backed by it). Pure rumor mongering leaves a residue.
    pub fn promises_convergence(&self) -> bool {
        match self.protocol {
            Protocol::AntiEntropy => true,
            Protocol::Rumor(r) => r.anti_entropy_every > 0,
        }
    }

    /// The first round after which no scheduled fault starts, ends or is active, except loss,
    /// duplication and reordering, which may last forever.
    pub fn faults_end(&self) -> u32 {
        let f = &self.faults;
        let parts = f.partitions.iter().map(|p| p.until.max(p.from));
        let crashes = f
            .crashes
            .iter()
            .map(|c| c.restart.unwrap_or(c.at).max(c.at));
        let churn = f.churn.iter().map(|c| c.until.max(c.from));
        parts.chain(crashes).chain(churn).max().unwrap_or(0)
    }

    /// Checks every value's range; the error is one line naming the bad value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes < 2 {
            return Err(bad(format!("need at least 2 nodes, got {}", self.nodes)));
        }
        if self.nodes > u32::MAX as usize {
            return Err(bad(format!("at most {} nodes", u32::MAX)));
        }
        self.node_config().validate()?;
        if self.max_rounds == 0 {
            return Err(bad("max rounds must be at least 1"));
        }
        let f = &self.faults;
        let prob = |name: &str, p: f64, max_incl: bool| {
            let ok = p >= 0.0 && if max_incl { p <= 1.0 } else { p < 1.0 };
            if ok {
                Ok(())
            } else {
                let range = if max_incl { "[0, 1]" } else { "[0, 1)" };
                Err(bad(format!("{name} probability {p} must be in {range}")))
            }
        };
        prob("loss", f.loss, false)?;
        prob("duplication", f.duplicate, true)?;
        prob("reorder", f.reorder, true)?;
        let n = self.nodes as u64;
        let check_set = |what: &str, set: &NodeSet| {
            if set.is_empty() {
                return Err(bad(format!("{what} names no nodes")));
            }
            for &(a, b) in &set.0 {
                if a > b {
                    return Err(bad(format!("{what}: empty range {a}-{b}")));
                }
            }
            match set.max_id() {
                Some(m) if m >= n => Err(bad(format!(
                    "{what} names node {m}, but nodes are 0..{}",
                    n - 1
                ))),
                _ => Ok(()),
            }
        };
        for p in &f.partitions {
            if p.from >= p.until {
                return Err(bad(format!(
                    "partition must heal after it starts (rounds {}..{})",
                    p.from, p.until
                )));
            }
            if p.groups.is_empty() {
                return Err(bad("partition needs at least one group"));
            }
            for g in &p.groups {
                check_set("partition", g)?;
            }
        }
        for c in &f.crashes {
            check_set("crash", &c.nodes)?;
            if let Some(r) = c.restart
                && r <= c.at
            {
                return Err(bad(format!(
                    "crash restart round {r} must come after crash round {}",
                    c.at
                )));
            }
        }
        if let Some(c) = f.churn {
            prob("churn", c.rate, true)?;
            if c.from >= c.until {
                return Err(bad(format!(
                    "churn must stop after it starts (rounds {}..{})",
                    c.from, c.until
                )));
            }
        }
        if let Timing::Async { interval, latency } = self.timing {
            interval.validate()?;
            if let Latency::Uniform { min_us, max_us } = latency
                && min_us > max_us
            {
                return Err(bad("uniform latency needs min <= max"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        assert!(SimConfig::default().validate().is_ok());
        let mut c = SimConfig::default();
        c.faults.loss = -0.1;
        assert!(c.validate().unwrap_err().0.contains("loss"));
        let mut c = SimConfig::default();
        c.faults.partitions.push(Partition {
            from: 1,
            until: 5,
            groups: vec![NodeSet(vec![(0, 2_000)])],
        });
        assert!(c.validate().unwrap_err().0.contains("names node 2000"));
        let mut c = SimConfig::default();
        c.faults.crashes.push(Crash {
            at: 5,
            restart: Some(3),
            nodes: NodeSet(vec![(0, 0)]),
            keep_state: true,
        });
        assert!(c.validate().is_err());
        assert_eq!(
            SimConfig {
                nodes: 1,
                ..SimConfig::default()
            }
            .validate()
            .unwrap_err()
            .0,
            "need at least 2 nodes, got 1"
        );
    }

    #[test]
    fn faults_end_is_the_last_scheduled_change() {
        let mut c = SimConfig::default();
        assert_eq!(c.faults_end(), 0);
        c.faults.crashes.push(Crash {
            at: 4,
            restart: Some(9),
            nodes: NodeSet(vec![(1, 3)]),
            keep_state: false,
        });
        c.faults.partitions.push(Partition {
            from: 2,
            until: 7,
            groups: vec![NodeSet(vec![(0, 10)])],
        });
        assert_eq!(c.faults_end(), 9);
        assert_eq!(c.faults.partitions[0].group_of(5), 0);
        assert_eq!(c.faults.partitions[0].group_of(50), 1);
    }
}
