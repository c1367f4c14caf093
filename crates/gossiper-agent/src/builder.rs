//! [`AgentBuilder`]: from a [`ClusterConfig`] (and, if the caller has one, a bound UDP socket)
//! to a running agent task and its [`AgentHandle`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use gossiper_cluster::state::MAX_KEY_LEN;
use gossiper_cluster::{ClusterConfig, ClusterNode};
use gossiper_types::Time;
use tokio::sync::{broadcast, mpsc, watch};

use crate::engine::{Core, Counters, Engine};
use crate::error::AgentError;
use crate::handle::{AgentHandle, AgentInfo};
use crate::resolver::{Lookup, Resolver, Seed};

/// Default largest value, bytes: fits one datagram at the default MTU (1,400) with the
/// longest key (256 bytes), sealed or not.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 768;

/// Commands waiting for the agent's task; a caller past this waits for room.
const COMMAND_QUEUE: usize = 256;

/// How to start an agent. Only the cluster configuration is required:
///
/// * the socket: the one given to [`socket`](Self::socket), else one bound to
///   [`bind`](Self::bind), else to the configuration's `addr`;
/// * `addr` (what peers are told): an unspecified IP or port 0 in it is filled from the bound
///   socket (an unspecified IP then needs a bound one);
/// * `generation` 0 means "the wall clock in milliseconds", so every restart supersedes the
///   previous run;
/// * seeds equal to the node's own address are ignored.
#[derive(Debug)]
pub struct AgentBuilder {
    cluster: ClusterConfig,
    bind: Option<SocketAddr>,
    socket: Option<std::net::UdpSocket>,
    seed: Option<u64>,
    join: Vec<String>,
    /// A stand-in for the OS's resolver (tests).
    lookup: Option<Lookup>,
    max_value_bytes: usize,
    event_capacity: usize,
}

impl AgentBuilder {
    /// An agent for `cluster`, with the defaults above.
    pub fn new(cluster: ClusterConfig) -> AgentBuilder {
        AgentBuilder {
            cluster,
            bind: None,
            socket: None,
            seed: None,
            join: Vec::new(),
            lookup: None,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            event_capacity: 256,
        }
    }

    /// Binds the gossip socket to `addr` (port 0 picks a free one) rather than to the
    /// configuration's `addr`, e.g. `0.0.0.0:7946` while advertising a reachable address.
    pub fn bind(mut self, addr: SocketAddr) -> AgentBuilder {
        self.bind = Some(addr);
        self
    }

    /// Uses a socket the caller bound (and may have tuned) instead of binding one.
    pub fn socket(mut self, socket: std::net::UdpSocket) -> AgentBuilder {
        self.socket = Some(socket);
        self
    }

    /// Seeds the node's random choices (peers, probe order), for reproducible runs; drawn
    /// from the OS otherwise.
    pub fn seed(mut self, seed: u64) -> AgentBuilder {
        self.seed = Some(seed);
        self
    }

    /// Joins through `HOST:PORT` addresses, with host names (`seed-1.internal:7946`,
    /// `localhost:7946`) or IPs (`[::1]:7946`), besides the configuration's `seeds`. Names are
    /// resolved again shortly before every join attempt, and every address a name resolves to
    /// is tried, so a seed that moves or comes up late is still found; a name that does not
    /// resolve is logged and tried again. [`start`](Self::start) refuses an address that is
    /// not `HOST:PORT`.
    pub fn join<S: Into<String>>(mut self, seeds: impl IntoIterator<Item = S>) -> AgentBuilder {
        self.join.extend(seeds.into_iter().map(Into::into));
        self
    }

    /// Resolves join names with `lookup` instead of the OS.
    #[cfg(test)]
    pub(crate) fn lookup(mut self, lookup: Lookup) -> AgentBuilder {
        self.lookup = Some(lookup);
        self
    }

    /// The largest value a write accepts, in bytes (default [`DEFAULT_MAX_VALUE_BYTES`]).
    /// Every value travels in one datagram, so the limit must fit the MTU with a 256-byte
    /// key: [`start`](Self::start) says how large it may be if not.
    pub fn max_value_bytes(mut self, bytes: usize) -> AgentBuilder {
        self.max_value_bytes = bytes;
        self
    }

    /// Events held for slow subscribers before the oldest are dropped (default 256).
    pub fn event_capacity(mut self, events: usize) -> AgentBuilder {
        self.event_capacity = events.max(1);
        self
    }

    /// Binds (unless given a socket), builds the node and spawns the agent's task on the
    /// current tokio runtime.
    pub async fn start(self) -> Result<AgentHandle, AgentError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(AgentError::NoRuntime);
        }
        let mut cc = self.cluster;
        // The configuration's seeds stay seeds when the names' addresses replace the rest.
        let mut seeds: Vec<Seed> = cc.seeds.iter().copied().map(Seed::Addr).collect();
        for s in &self.join {
            let seed = Seed::parse(s).map_err(AgentError::Config)?;
            if let Seed::Addr(a) = seed {
                cc.seeds.push(a);
            }
            seeds.push(seed);
        }
        let mut resolver = Resolver::new(seeds, std::time::Duration::from_millis(cc.interval_ms));
        if let (Some(r), Some(lookup)) = (&mut resolver, self.lookup) {
            r.lookup = lookup;
        }
        let socket = match self.socket {
            Some(s) => s,
            None => {
                let addr = self.bind.unwrap_or(cc.addr);
                std::net::UdpSocket::bind(addr)
                    .map_err(|source| AgentError::Bind { addr, source })?
            }
        };
        socket.set_nonblocking(true)?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        let bound = socket.local_addr()?;
        let mut advertise = cc.addr;
        if advertise.ip().is_unspecified() {
            if bound.ip().is_unspecified() {
                return Err(AgentError::Config(format!(
                    "bound to {bound}: give an address peers can reach (--advertise)"
                )));
            }
            advertise.set_ip(bound.ip());
        }
        if advertise.port() == 0 {
            advertise.set_port(bound.port());
        }
        cc.addr = advertise;
        if cc.generation == 0 {
            cc.generation = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_millis() as u64)
                .max(1);
        }
        cc.seeds.retain(|&s| s != advertise);
        let seed = self.seed.unwrap_or_else(os_seed);
        let node = ClusterNode::new(cc, Time::ZERO, seed).map_err(|e| AgentError::Config(e.0))?;
        let fits = node.max_value_len(&"k".repeat(MAX_KEY_LEN));
        if self.max_value_bytes > fits {
            return Err(AgentError::Config(format!(
                "a {}-byte value does not fit one {}-byte datagram with a {MAX_KEY_LEN}-byte key: \
                 at most {fits} bytes at this MTU",
                self.max_value_bytes,
                node.config().mtu
            )));
        }
        let config = node.config();
        let info = AgentInfo {
            name: config.name.clone(),
            id: node.id(),
            gossip_addr: advertise,
            generation: node.generation(),
            cluster: config.cluster.clone(),
            encrypted: config.keyring.is_some(),
            detector: config.detector.name(),
            interval_ms: config.interval_ms,
            fanout: config.fanout,
            mtu: config.mtu,
            max_value_bytes: self.max_value_bytes,
        };
        let epoch = tokio::time::Instant::now();
        let members = watch::channel(Arc::from(node.members(Time::ZERO)));
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events_rx) = broadcast::channel(self.event_capacity);
        let stopped = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let mut engine = Engine::new(
            Core::new(node, epoch),
            socket,
            commands_rx,
            events_tx,
            members.0,
            stopped.0,
            counters.clone(),
        );
        engine.resolver = resolver;
        tokio::spawn(engine.run());
        log::info!(
            "agent {} (generation {}) gossiping on {bound} as {advertise}",
            info.name,
            info.generation
        );
        Ok(AgentHandle::new(
            commands_tx,
            events_rx,
            members.1,
            stopped.1,
            counters,
            info,
        ))
    }
}

/// A seed from the OS's randomness (std's `RandomState` is keyed from it once per process) and
/// the wall clock.
fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
