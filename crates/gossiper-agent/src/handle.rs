//! [`AgentHandle`]: the one door into a running agent, cheap to clone, for the embedding
//! application and the HTTP API alike. Each call is a command to the agent's task (see
//! `engine`), answered through a oneshot channel; reads of membership and
//! events go through watch and broadcast channels that the task fills.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gossiper_cluster::state::RESERVED_PREFIX;
use gossiper_cluster::{ClusterNode, MemberInfo};
use gossiper_types::{NodeId, Time};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::engine::{Command, Core, Counters};
use crate::error::AgentError;
use crate::events::{Entry, Event, EventStream, KeyFilter, MemberEventKind, Subscription};

/// What does not change while an agent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The node's name.
    pub name: String,
    /// Its id (derived from the name).
    pub id: NodeId,
    /// The address peers reach it at.
    pub gossip_addr: SocketAddr,
    /// The generation it started with.
    pub generation: u64,
    /// The cluster name.
    pub cluster: String,
    /// Whether datagrams are sealed with a keyring.
    pub encrypted: bool,
    /// `swim` or `phi`.
    pub detector: &'static str,
    /// Gossip interval, ms.
    pub interval_ms: u64,
    /// Peers per round.
    pub fanout: u32,
    /// Largest datagram, bytes.
    pub mtu: usize,
    /// Largest value a write accepts, bytes.
    pub max_value_bytes: usize,
}

/// The runtime's own counters (the protocol's are in [`ClusterNode::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeCounters {
    /// Datagrams the OS refused to send.
    pub send_errors: u64,
    /// Socket receive errors.
    pub recv_errors: u64,
    /// Membership events seen, in [`MemberEventKind::ALL`] order.
    pub member_events: [u64; 5],
    /// Key changes published.
    pub key_events: u64,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    /// A receiver kept only to make new ones from; the task holds the only sender, so every
    /// subscription ends when the task does.
    events: broadcast::Receiver<Event>,
    members: watch::Receiver<Arc<[MemberInfo]>>,
    stopped: watch::Receiver<bool>,
    counters: Arc<Counters>,
    info: AgentInfo,
}

/// A running agent: clone it freely; every clone talks to the same node. The agent leaves the
/// cluster on [`shutdown`](Self::shutdown), or when the last handle is dropped.
#[derive(Clone)]
pub struct AgentHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle")
            .field("name", &self.inner.info.name)
            .field("gossip_addr", &self.inner.info.gossip_addr)
            .finish_non_exhaustive()
    }
}

impl AgentHandle {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        events: broadcast::Receiver<Event>,
        members: watch::Receiver<Arc<[MemberInfo]>>,
        stopped: watch::Receiver<bool>,
        counters: Arc<Counters>,
        info: AgentInfo,
    ) -> AgentHandle {
        AgentHandle {
            inner: Arc::new(Inner {
                commands,
                events,
                members,
                stopped,
                counters,
                info,
            }),
        }
    }

    /// Runs `f` inside the agent's task and returns what it returns.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core) -> R + Send + 'static,
    ) -> Result<R, AgentError> {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |core| {
            // The caller may have given up (its future was dropped): nothing to do then.
            let _ = tx.send(f(core));
        });
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| AgentError::Stopped)?;
        rx.await.map_err(|_| AgentError::Stopped)
    }

    /// What does not change while the agent runs: name, address, settings.
    pub fn info(&self) -> &AgentInfo {
        &self.inner.info
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.inner.info.name
    }

    /// The address peers reach this node at.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.inner.info.gossip_addr
    }

    /// Writes `key = value` on this node; it spreads to every member. Returns the new version.
    /// Keys are 1 to 256 bytes and may not start with `__`; values are bytes, at most
    /// [`AgentInfo::max_value_bytes`].
    pub async fn set(&self, key: &str, value: impl Into<Vec<u8>>) -> Result<u64, AgentError> {
        self.write(key.to_owned(), value.into(), None).await
    }

    /// [`set`](Self::set), deleted again after `ttl`.
    pub async fn set_with_ttl(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        ttl: Duration,
    ) -> Result<u64, AgentError> {
        self.write(key.to_owned(), value.into(), Some(ttl)).await
    }

    async fn write(
        &self,
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<u64, AgentError> {
        let max = self.inner.info.max_value_bytes;
        if value.len() > max {
            return Err(AgentError::ValueTooLarge {
                len: value.len(),
                max,
            });
        }
        self.call(move |core| {
            if !core.accepting() {
                return Err(AgentError::Stopped);
            }
            let now = core.now();
            Ok(core.node.set(now, &key, &value, ttl)?)
        })
        .await?
    }

    /// Deletes `key` on this node. Returns the tombstone's version, or `None` if the key had
    /// no live value.
    pub async fn delete(&self, key: &str) -> Result<Option<u64>, AgentError> {
        let key = key.to_owned();
        self.call(move |core| {
            if !core.accepting() {
                return Err(AgentError::Stopped);
            }
            let now = core.now();
            Ok(core.node.delete(now, &key)?)
        })
        .await?
    }

    /// The live value of `key` owned by the node named `node`, as this replica holds it.
    pub async fn get(&self, node: &str, key: &str) -> Result<Option<Vec<u8>>, AgentError> {
        Ok(self.entry(node, key).await?.and_then(|e| e.value))
    }

    /// `key` of node `node` with its version, tombstones included (`value: None`).
    pub async fn entry(&self, node: &str, key: &str) -> Result<Option<Entry>, AgentError> {
        let (id, key) = (NodeId::from_name(node), key.to_owned());
        self.inspect(move |node, _| {
            node.state().node(id)?.entry(&key).map(|e| Entry {
                version: e.version,
                value: (!e.deleted).then(|| e.value.clone()),
            })
        })
        .await
    }

    /// Every live user key of the node named `node`, in key order; `None` if this replica
    /// holds nothing of that node.
    pub async fn keys(&self, node: &str) -> Result<Option<Vec<(String, Entry)>>, AgentError> {
        let id = NodeId::from_name(node);
        self.inspect(move |node, _| Some(live_keys(node.state().node(id)?)))
            .await
    }

    /// Every node's live user keys, by node name.
    pub async fn state(&self) -> Result<Vec<(String, Vec<(String, Entry)>)>, AgentError> {
        self.inspect(|node, _| {
            node.state()
                .nodes()
                .map(|(id, record)| (crate::engine::name_of(node, id), live_keys(record)))
                .collect()
        })
        .await
    }

    /// Every member as this node sees it now (itself first), with current suspicion levels.
    pub async fn members(&self) -> Result<Vec<MemberInfo>, AgentError> {
        self.inspect(|node, now| node.members(now)).await
    }

    /// The member list, updated on every membership change (join, suspect, dead, left,
    /// forgotten, a name learned). `changed().await` on it waits for the next one.
    pub fn membership(&self) -> watch::Receiver<Arc<[MemberInfo]>> {
        self.inner.members.clone()
    }

    /// Key changes passing `filter`, from now on.
    pub fn subscribe(&self, filter: KeyFilter) -> Subscription {
        Subscription {
            filter,
            events: self.inner.events.resubscribe(),
        }
    }

    /// Every event (membership and keys), from now on.
    pub fn events(&self) -> EventStream {
        EventStream {
            events: self.inner.events.resubscribe(),
        }
    }

    /// Runs `f` on the node inside the agent's task, with the protocol's current time: any
    /// read the other methods do not offer (stats, digests, ...). Keep it short: the agent
    /// does nothing else meanwhile.
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&ClusterNode, Time) -> R + Send + 'static,
    ) -> Result<R, AgentError> {
        self.call(move |core| {
            let now = core.now();
            f(&core.node, now)
        })
        .await
    }

    /// Replaces the keyring: datagrams are sealed with its first key from now on and opened
    /// with any of them (see [`ClusterNode::set_keyring`]). An agent started without a
    /// keyring cannot start sealing: that is [`AgentError::Config`], and nothing changes.
    pub async fn set_keyring(&self, keyring: gossiper_cluster::Keyring) -> Result<(), AgentError> {
        self.call(move |core| {
            core.node
                .set_keyring(keyring)
                .map_err(|e| AgentError::Config(e.0))
        })
        .await?
    }

    /// The runtime's counters.
    pub fn counters(&self) -> RuntimeCounters {
        let c = &self.inner.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let mut member_events = [0; 5];
        for kind in MemberEventKind::ALL {
            member_events[kind.index()] = load(&c.member_events[kind.index()]);
        }
        RuntimeCounters {
            send_errors: load(&c.send_errors),
            recv_errors: load(&c.recv_errors),
            member_events,
            key_events: load(&c.key_events),
        }
    }

    /// Whether the agent has stopped (it left the cluster).
    pub fn is_stopped(&self) -> bool {
        *self.inner.stopped.borrow()
    }

    /// Resolves once the agent has stopped, whoever asked it to.
    pub async fn stopped(&self) {
        let mut stopped = self.inner.stopped.clone();
        // An error means the task is gone, which is stopped too.
        let _ = stopped.wait_for(|s| *s).await;
    }

    /// Leaves the cluster gracefully (peers record this node as *left*, not dead) and stops
    /// the agent; resolves once the leave was sent. Calling it again is harmless.
    pub async fn shutdown(&self) {
        let _ = self.call(|core| core.leave_requested = true).await;
        self.stopped().await;
    }
}

fn live_keys(record: &gossiper_cluster::NodeRecord) -> Vec<(String, Entry)> {
    record
        .entries()
        .filter(|(k, e)| !e.deleted && !k.starts_with(RESERVED_PREFIX))
        .map(|(k, e)| {
            (
                k.to_owned(),
                Entry {
                    version: e.version,
                    value: Some(e.value.clone()),
                },
            )
        })
        .collect()
}
