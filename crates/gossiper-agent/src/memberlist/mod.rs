//! The agent speaking HashiCorp memberlist + Serf (`gossiper agent --protocol memberlist`):
//! the sans-IO [`gossiper_memberlist::Node`] on tokio, with UDP and TCP on one port as Serf
//! has them. It lives beside the gossiper-protocol agent, not inside it, because the two
//! protocols share no state; it keeps the same shape: one task owns the node, the sockets and
//! the clock (`engine`), TCP exchanges run in tasks of their own bounded in size and time
//! (`streams`), and everything else goes through a [`MemberlistHandle`].
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use gossiper_agent::memberlist::MemberlistBuilder;
//! use gossiper_memberlist::Config;
//!
//! let mut config = Config::new("g1", "127.0.0.1:7950".parse()?);
//! config.tags.insert("role".into(), "rust".into());
//! let agent = MemberlistBuilder::new(config).join(vec!["127.0.0.1:7946".parse()?]).start().await?;
//! agent.user_event("deploy", b"v42".to_vec(), false).await?;
//! agent.shutdown().await; // Serf shows it as left
//! # Ok(()) }
//! ```

mod engine;
mod handle;
#[cfg(feature = "http")]
pub mod http;
mod keyring_file;
mod streams;
#[cfg(all(test, feature = "http"))]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use gossiper_memberlist::{Config, Node};
use gossiper_types::Time;
use tokio::sync::{broadcast, mpsc, watch};

use crate::error::AgentError;
pub use engine::{JoinState, QueryDone};
pub use handle::{EventRecord, MemberlistHandle, QueryStream, STREAM_BUFFER};

/// How to start a memberlist agent: its [`Config`], where to bind, whom to join.
#[derive(Debug)]
pub struct MemberlistBuilder {
    config: Config,
    bind: Option<SocketAddr>,
    join: Vec<SocketAddr>,
    seed: Option<u64>,
    keyring_file: Option<PathBuf>,
}

impl MemberlistBuilder {
    /// An agent for `config`; it binds the config's address unless told otherwise.
    pub fn new(config: Config) -> MemberlistBuilder {
        MemberlistBuilder {
            config,
            bind: None,
            join: Vec::new(),
            seed: None,
            keyring_file: None,
        }
    }

    /// Saves the keyring to `path` whenever a key query (`serf keys -install/-use/-remove`)
    /// changes it, as `serf agent -keyring-file` does: atomically (a temporary file renamed
    /// over it), mode 0600; a failed write is reported in the query's answer.
    pub fn keyring_file(mut self, path: impl Into<PathBuf>) -> MemberlistBuilder {
        self.keyring_file = Some(path.into());
        self
    }

    /// Binds UDP and TCP to `addr` (port 0: a free port, the same for both).
    pub fn bind(mut self, addr: SocketAddr) -> MemberlistBuilder {
        self.bind = Some(addr);
        self
    }

    /// Seeds to join through at start (push-pull with each).
    pub fn join(mut self, seeds: Vec<SocketAddr>) -> MemberlistBuilder {
        self.join = seeds;
        self
    }

    /// Fixes the random choices (probe order, peers); from the OS otherwise.
    pub fn seed(mut self, seed: u64) -> MemberlistBuilder {
        self.seed = Some(seed);
        self
    }

    /// Binds and spawns the agent's task on the current tokio runtime.
    pub async fn start(self) -> Result<MemberlistHandle, AgentError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(AgentError::NoRuntime);
        }
        let mut config = self.config;
        config.persist_keyring = self.keyring_file.is_some();
        let bind = self.bind.unwrap_or(config.addr);
        let (udp, tcp) = bind_both(bind).await?;
        let bound = udp.local_addr()?;
        if config.addr.ip().is_unspecified() {
            if bound.ip().is_unspecified() {
                return Err(AgentError::Config(format!(
                    "bound to {bound}: give an address peers can reach (--advertise)"
                )));
            }
            config.addr.set_ip(bound.ip());
        }
        if config.addr.port() == 0 {
            config.addr.set_port(bound.port());
        }
        let seed = self.seed.unwrap_or_else(|| os_random(0));
        let mut nonce_seed = [0u8; 32];
        for (i, chunk) in nonce_seed.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&os_random(i as u64 + 1).to_le_bytes());
        }
        let epoch = tokio::time::Instant::now();
        let mut node =
            Node::new(config, Time::ZERO, seed, nonce_seed).map_err(AgentError::Config)?;
        node.join(Time::ZERO, &self.join);
        let name = node.name().to_owned();
        let addr = node.config().addr;
        let members = watch::channel(Arc::from(node.members()));
        let (commands_tx, commands_rx) = mpsc::channel(256);
        let (events_tx, _) = broadcast::channel(256);
        let last_event = watch::channel(0u64);
        let stopped = watch::channel(false);
        let joins = watch::channel(JoinState::default());
        let stream_drops = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let engine = engine::Engine::new(
            node,
            epoch,
            udp,
            tcp,
            commands_rx,
            engine::Outputs {
                members: members.0,
                events: events_tx.clone(),
                last_event: last_event.0,
                stopped: stopped.0,
                joins: joins.0,
                stream_drops: stream_drops.clone(),
            },
            self.keyring_file,
        );
        tokio::spawn(engine.run());
        log::info!("memberlist agent {name} on {bound} (UDP and TCP) as {addr}");
        Ok(MemberlistHandle::new(
            name,
            addr,
            commands_tx,
            handle::Channels {
                members: members.1,
                events: events_tx,
                last_event: last_event.1,
                stopped: stopped.1,
                joins: joins.1,
                stream_drops,
            },
        ))
    }
}

/// Binds UDP and TCP on one port: the TCP listener first (port 0 picks it), then UDP on the
/// same port, retrying a few free ports if UDP's is taken.
async fn bind_both(
    addr: SocketAddr,
) -> Result<(tokio::net::UdpSocket, tokio::net::TcpListener), AgentError> {
    let bind_err = |source| AgentError::Bind { addr, source };
    for _ in 0..8 {
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind_err)?;
        let port = tcp.local_addr()?.port();
        match tokio::net::UdpSocket::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(udp) => return Ok((udp, tcp)),
            Err(e) if addr.port() != 0 => return Err(bind_err(e)),
            Err(_) => continue,
        }
    }
    Err(bind_err(std::io::Error::other(
        "no port free for both UDP and TCP",
    )))
}

/// 64 bits from the OS's randomness (std's `RandomState` is keyed from it), mixed with the
/// clock and `salt`.
fn os_random(salt: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(salt);
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
