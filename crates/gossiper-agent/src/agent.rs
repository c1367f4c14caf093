//! The agent runtime: one UDP socket, one [`ClusterNode`], a real clock, and the HTTP API
//! thread. The gossip loop is the only place that reads the clock and the socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gossiper_cluster::{ClusterConfig, ClusterEvent, ClusterNode, Detector, Keyring};
use gossiper_types::{NodeId, Time};
use parking_lot::{Condvar, Mutex};

use crate::udp::UdpTransport;

/// Everything needed to start an agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Node name, unique in the cluster.
    pub name: String,
    /// UDP address to bind (port 0 picks a free port).
    pub bind: SocketAddr,
    /// Address peers should use; defaults to the bound address (which must then not be
    /// unspecified like 0.0.0.0).
    pub advertise: Option<SocketAddr>,
    /// Seed addresses to join through.
    pub join: Vec<SocketAddr>,
    /// HTTP API address (port 0 picks a free port).
    pub api: SocketAddr,
    /// Cluster name.
    pub cluster: String,
    /// Keyring; every datagram is sealed when set.
    pub keyring: Option<Keyring>,
    /// Gossip interval in ms.
    pub interval_ms: u64,
    /// Peers per round.
    pub fanout: u32,
    /// Largest datagram in bytes.
    pub mtu: usize,
    /// Failure detector: SWIM (default) or φ-accrual.
    pub detector: Detector,
    /// φ threshold for dead (φ detector only).
    pub phi_threshold: f64,
    /// Dead/left nodes are forgotten after this many ms.
    pub dead_grace_ms: u64,
    /// Tombstones are dropped after this many ms.
    pub tombstone_grace_ms: u64,
    /// RNG seed; drawn from the OS when `None`.
    pub seed: Option<u64>,
}

impl AgentConfig {
    /// Defaults for everything but the name: gossip on 127.0.0.1:7946, API on 127.0.0.1:8946.
    pub fn new(name: impl Into<String>) -> AgentConfig {
        AgentConfig {
            name: name.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 7946)),
            advertise: None,
            join: Vec::new(),
            api: SocketAddr::from(([127, 0, 0, 1], 8946)),
            cluster: "default".into(),
            keyring: None,
            interval_ms: 200,
            fanout: 3,
            mtu: 1_400,
            detector: Detector::Swim,
            phi_threshold: 8.0,
            dead_grace_ms: 600_000,
            tombstone_grace_ms: 600_000,
            seed: None,
        }
    }
}

/// Why an agent could not start or stopped with an error.
#[derive(Debug)]
pub enum AgentError {
    /// A configuration value is out of range.
    Config(String),
    /// A socket could not be bound or failed.
    Io(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::Config(m) => write!(f, "invalid configuration: {m}"),
            AgentError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AgentError {}

/// What the gossip loop and the API share.
pub(crate) struct Shared {
    pub(crate) node: Mutex<ClusterNode>,
    /// Signalled whenever the replicated state changes (blocking queries wait on it).
    pub(crate) changed: Condvar,
    pub(crate) epoch: Instant,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) send_errors: AtomicU64,
    /// Membership events seen: up, suspect, down, left, removed.
    pub(crate) member_events: [AtomicU64; 5],
    pub(crate) transport: Mutex<Option<Arc<std::net::UdpSocket>>>,
}

impl Shared {
    pub(crate) fn now(&self) -> Time {
        Time::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Sends whatever the node queued.
    pub(crate) fn flush(&self, node: &mut ClusterNode) {
        let socket = self.transport.lock().clone();
        while let Some(t) = node.poll_transmit() {
            if let Some(s) = &socket
                && s.send_to(&t.bytes, t.to).is_err()
            {
                self.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A running agent's handles.
pub struct Agent {
    shared: Arc<Shared>,
    gossip_addr: SocketAddr,
    api_addr: SocketAddr,
    gossip: Option<thread::JoinHandle<Result<(), AgentError>>>,
    http: Arc<tiny_http::Server>,
    http_thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("gossip_addr", &self.gossip_addr)
            .field("api_addr", &self.api_addr)
            .finish_non_exhaustive()
    }
}

fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is keyed from the OS's randomness once per process.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

impl Agent {
    /// Binds the sockets and starts the gossip loop and the API. `stop` ends both (after a
    /// graceful leave) when set.
    pub fn start(config: AgentConfig, stop: Arc<AtomicBool>) -> Result<Agent, AgentError> {
        let transport = UdpTransport::bind(NodeId::from_name(&config.name), config.bind, 65_507)
            .map_err(|e| AgentError::Io(format!("cannot bind {}: {e}", config.bind)))?;
        let bound = transport
            .local_addr()
            .map_err(|e| AgentError::Io(e.to_string()))?;
        let advertise = config.advertise.unwrap_or(bound);
        if advertise.ip().is_unspecified() {
            return Err(AgentError::Config(format!(
                "bound to {bound}: pass --advertise with an address peers can reach"
            )));
        }
        let http = tiny_http::Server::http(config.api)
            .map_err(|e| AgentError::Io(format!("cannot serve the API on {}: {e}", config.api)))?;
        let api_addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| AgentError::Io("API bound to a non-IP address".into()))?;
        // Generation: wall-clock milliseconds, so a restart supersedes the previous run.
        let generation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64)
            .max(1);
        let mut cc = ClusterConfig::new(config.name.clone(), advertise, generation);
        cc.cluster = config.cluster.clone();
        cc.keyring = config.keyring.clone();
        cc.seeds = config
            .join
            .iter()
            .copied()
            .filter(|&s| s != advertise)
            .collect();
        cc.interval_ms = config.interval_ms;
        cc.fanout = config.fanout;
        cc.mtu = config.mtu;
        cc.phi_threshold = config.phi_threshold;
        cc.detector = config.detector;
        cc.dead_grace_ms = config.dead_grace_ms;
        cc.tombstone_grace_ms = config.tombstone_grace_ms;
        let epoch = Instant::now();
        let seed = config.seed.unwrap_or_else(os_seed);
        let node = ClusterNode::new(cc, Time::ZERO, seed).map_err(|e| AgentError::Config(e.0))?;
        let shared = Arc::new(Shared {
            node: Mutex::new(node),
            changed: Condvar::new(),
            epoch,
            stop,
            send_errors: AtomicU64::new(0),
            member_events: Default::default(),
            transport: Mutex::new(None),
        });
        let http = Arc::new(http);
        let gossip = {
            let shared = shared.clone();
            let http = http.clone();
            thread::Builder::new()
                .name("gossip".into())
                .stack_size(256 * 1024)
                .spawn(move || {
                    let r = gossip_loop(&shared, transport);
                    http.unblock();
                    r
                })
                .map_err(|e| AgentError::Io(e.to_string()))?
        };
        let http_thread = {
            let shared = shared.clone();
            let http = http.clone();
            thread::Builder::new()
                .name("api".into())
                .stack_size(256 * 1024)
                .spawn(move || crate::http::serve(&shared, &http))
                .map_err(|e| AgentError::Io(e.to_string()))?
        };
        log::info!(
            "agent {} (generation {generation}) gossiping on {bound} as {advertise}, API on http://{api_addr}",
            config.name
        );
        Ok(Agent {
            shared,
            gossip_addr: advertise,
            api_addr,
            gossip: Some(gossip),
            http,
            http_thread: Some(http_thread),
        })
    }

    /// The gossip address peers use.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.gossip_addr
    }

    /// The API address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Blocks until the agent stops (its `stop` flag was set): the node has left and flushed.
    pub fn wait(mut self) -> Result<(), AgentError> {
        let r = match self.gossip.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(AgentError::Io("gossip thread panicked".into())),
            None => Ok(()),
        };
        self.http.unblock();
        if let Some(h) = self.http_thread.take() {
            let _ = h.join();
        }
        r
    }

    /// Asks the agent to leave and stop.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
    }
}

fn gossip_loop(shared: &Shared, mut transport: UdpTransport) -> Result<(), AgentError> {
    let socket =
        Arc::new(transport_socket(&transport).map_err(|e| AgentError::Io(format!("socket: {e}")))?);
    *shared.transport.lock() = Some(socket);
    let mut buf = Vec::with_capacity(65_536);
    let mut seen_changes = 0;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            let mut node = shared.node.lock();
            let now = shared.now();
            node.leave(now);
            shared.flush(&mut node);
            log::info!("{} left the cluster", node.name());
            drop(node);
            shared.changed.notify_all();
            return Ok(());
        }
        let wait = {
            let node = shared.node.lock();
            let next = node.poll_timeout();
            let now = shared.now();
            Duration::from_micros(next.as_micros().saturating_sub(now.as_micros()))
                .min(Duration::from_millis(50))
        };
        let received = transport
            .recv_from_addr(&mut buf, wait)
            .map_err(|e| AgentError::Io(e.to_string()))?;
        let mut node = shared.node.lock();
        let now = shared.now();
        if let Some(from) = received {
            let _ = node.handle_datagram(now, from, &mut buf);
        }
        node.handle_timeout(now);
        shared.flush(&mut node);
        while let Some(e) = node.poll_event() {
            let slot = match e {
                ClusterEvent::MemberUp(_) => 0,
                ClusterEvent::MemberSuspect(_) => 1,
                ClusterEvent::MemberDown(_) => 2,
                ClusterEvent::MemberLeft(_) => 3,
                ClusterEvent::MemberRemoved(_) => 4,
            };
            shared.member_events[slot].fetch_add(1, Ordering::Relaxed);
            let name = |id: NodeId| {
                node.member_name(id)
                    .map_or_else(|| id.to_string(), str::to_owned)
            };
            match e {
                ClusterEvent::MemberUp(id) => log::info!("member {} is alive", name(id)),
                ClusterEvent::MemberSuspect(id) => log::info!("member {} is suspect", name(id)),
                ClusterEvent::MemberDown(id) => log::warn!("member {} is dead", name(id)),
                ClusterEvent::MemberLeft(id) => log::info!("member {} left", name(id)),
                ClusterEvent::MemberRemoved(id) => log::info!("member {id} forgotten"),
            }
        }
        let changes = node.changes();
        drop(node);
        if changes != seen_changes {
            seen_changes = changes;
            shared.changed.notify_all();
        }
    }
}

fn transport_socket(t: &UdpTransport) -> std::io::Result<std::net::UdpSocket> {
    t.try_clone_socket()
}
