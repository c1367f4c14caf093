//! A node's configuration: who it is (name, address, Serf tags, keys) and memberlist's timing
//! profiles (memberlist-wire.md §5.9; the Serf agent's default is LAN).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::crypto::Keyring;

/// memberlist's timing and fan-out settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Time between probes (LAN 1 s).
    pub probe_interval: Duration,
    /// Time a direct probe waits for its ack before indirect probes (LAN 500 ms).
    pub probe_timeout: Duration,
    /// Time between gossip rounds (LAN 200 ms).
    pub gossip_interval: Duration,
    /// Peers per gossip round (LAN 3).
    pub gossip_nodes: usize,
    /// Peers asked to probe a silent node for us (LAN 3).
    pub indirect_checks: usize,
    /// Time between full state syncs with a random peer (LAN 30 s).
    pub push_pull_interval: Duration,
    /// Retransmissions per broadcast: this × ceil(log10(n + 1)) (LAN 4).
    pub retransmit_mult: u32,
    /// Suspicion timeout: this × max(1, log10 n) × probe interval (LAN 4).
    pub suspicion_mult: u32,
    /// Longest suspicion, as a multiple of the shortest (6).
    pub suspicion_max_timeout_mult: u32,
    /// Dead nodes still gossiped to and kept this long (LAN 30 s).
    pub gossip_to_the_dead: Duration,
    /// Longest a TCP exchange may take (LAN 10 s).
    pub tcp_timeout: Duration,
    /// Serf's wait for a failed member before trying to rejoin it (30 s).
    pub reconnect_interval: Duration,
    /// Lifeguard's local health: the probe period and a probe's deadline stretch up to this
    /// many times the probe interval while the node seems to be at fault (memberlist's
    /// `AwarenessMaxMultiplier`, 8 in every profile; 1 or 0: never stretch).
    pub awareness_max_multiplier: u32,
}

impl Timing {
    /// `DefaultLANConfig`.
    pub fn lan() -> Timing {
        Timing {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            indirect_checks: 3,
            push_pull_interval: Duration::from_secs(30),
            retransmit_mult: 4,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            gossip_to_the_dead: Duration::from_secs(30),
            tcp_timeout: Duration::from_secs(10),
            reconnect_interval: Duration::from_secs(30),
            awareness_max_multiplier: 8,
        }
    }

    /// `DefaultWANConfig`.
    pub fn wan() -> Timing {
        Timing {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            push_pull_interval: Duration::from_secs(60),
            suspicion_mult: 6,
            gossip_to_the_dead: Duration::from_secs(60),
            tcp_timeout: Duration::from_secs(30),
            ..Timing::lan()
        }
    }

    /// `DefaultLocalConfig`.
    pub fn local() -> Timing {
        Timing {
            probe_timeout: Duration::from_millis(200),
            gossip_interval: Duration::from_millis(100),
            indirect_checks: 1,
            push_pull_interval: Duration::from_secs(15),
            retransmit_mult: 2,
            suspicion_mult: 3,
            gossip_to_the_dead: Duration::from_secs(15),
            tcp_timeout: Duration::from_secs(1),
            ..Timing::lan()
        }
    }

    /// The profile named `lan`, `wan` or `local`.
    pub fn profile(name: &str) -> Option<Timing> {
        match name {
            "lan" => Some(Timing::lan()),
            "wan" => Some(Timing::wan()),
            "local" => Some(Timing::local()),
            _ => None,
        }
    }
}

/// Everything a [`Node`](crate::Node) is built from.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's name, unique in the cluster.
    pub name: String,
    /// The address peers reach it at (UDP and TCP, one port).
    pub addr: SocketAddr,
    /// Serf tags (sent as node meta; at most 511 bytes encoded).
    pub tags: BTreeMap<String, String>,
    /// memberlist's timing.
    pub timing: Timing,
    /// AES-GCM keys, primary first (Serf's keyring); `None`: plaintext.
    pub keyring: Option<Keyring>,
    /// Largest datagram we build (memberlist's `UDPBufferSize`, 1,400).
    pub udp_buffer_size: usize,
    /// Most nodes kept in the table; a push-pull or alive past it is not admitted.
    pub max_nodes: usize,
    /// User events kept for the replay check (Serf's `EventBuffer`, 512).
    pub event_buffer: usize,
    /// Largest user event we send, encoded (the Serf agent's default, 512).
    pub user_event_size_limit: usize,
    /// Answers to user queries by name (`serf query NAME` lists them), where a Serf agent
    /// would run its query handler; each must fit Serf's 1,024-byte response limit.
    pub query_responses: BTreeMap<String, Vec<u8>>,
    /// LZW-compress what we send, as memberlist does with `EnableCompression` (on in Serf):
    /// every stream, and each datagram that comes out smaller.
    pub compression: bool,
    /// The runtime saves the keyring (Serf's `-keyring-file`): after a key query changes it,
    /// the node tells the runtime ([`Event::KeyringChanged`](crate::Event::KeyringChanged))
    /// and answers the query only once the runtime reports the file written
    /// ([`Node::keyring_persisted`](crate::Node::keyring_persisted)), with its error if any,
    /// as Serf does. Off: key queries are answered at once.
    pub persist_keyring: bool,
}

impl Config {
    /// A LAN node named `name` at `addr`, no tags, no keys.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Config {
        Config {
            name: name.into(),
            addr,
            tags: BTreeMap::new(),
            timing: Timing::lan(),
            keyring: None,
            udp_buffer_size: 1400,
            max_nodes: 10_000,
            event_buffer: 512,
            user_event_size_limit: 512,
            query_responses: BTreeMap::new(),
            compression: true,
            persist_keyring: false,
        }
    }
}
