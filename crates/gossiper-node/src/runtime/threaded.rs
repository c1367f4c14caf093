//! The threaded real-time runtime: the Go demo's goroutines, one OS thread per node.
//!
//! Each thread owns its [`Node`] outright (no `Arc<Mutex<Node>>`), an [`InMemoryTransport`]
//! endpoint and a command channel, and runs the loop every real-time runtime runs around the
//! sans-IO engine:
//!
//! 1. apply queued commands (application writes, stop);
//! 2. run the round if [`Node::poll_timeout`] has passed;
//! 3. wait for a datagram until that deadline (at most [`MAX_WAIT`], so commands are seen
//!    promptly) and hand it to [`Node::handle_message`];
//! 4. send whatever the engine wrote into its [`Outbox`], and clear it.
//!
//! The runtime, not the engine, reads the clock: [`std::time::Instant`] converted to a
//! [`Time`] relative to one start instant shared by every thread. The only thing behind a lock
//! is what the application watches: after every step that changed something, a node publishes a
//! small [`Snapshot`] (a shared copy of its state when the state changed, its digest and its
//! [`Stats`]) into its own `parking_lot` slot, which [`Cluster::snapshots`] reads without
//! copying any state.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use gossiper_network::{FixedInterval, InMemoryNetwork, UniformRandom};
//! use gossiper_node::runtime::threaded::Cluster;
//! use gossiper_node::{Node, NodeConfig, Peers};
//! use gossiper_types::{KvMap, NodeId};
//!
//! let every = FixedInterval::new(Duration::from_millis(10)).unwrap();
//! let nodes: Vec<_> = (0..3)
//!     .map(|i| {
//!         let mut node =
//!             Node::new(NodeId(i), NodeConfig::default(), KvMap::new(), UniformRandom, every, i);
//!         node.set_peers(Peers::Complete { n: 3 });
//!         node
//!     })
//!     .collect();
//! let cluster = Cluster::spawn(nodes, InMemoryNetwork::new(1_400)).unwrap();
//! cluster.write(NodeId(0), |s: &mut KvMap| { s.set(NodeId(0), "hello", b"world".to_vec()); }).unwrap();
//!
//! let deadline = Instant::now() + Duration::from_secs(10);
//! while !(cluster.writes_applied() == 1 && cluster.converged()) {
//!     assert!(Instant::now() < deadline, "did not converge");
//!     std::thread::sleep(Duration::from_millis(5));
//! }
//! let nodes = cluster.stop().unwrap();
//! assert!(nodes.iter().all(|n| n.state().get(NodeId(0), "hello").is_some()));
//! ```

// This module is a runtime, not core: it owns the threads and the real clock the engine must
// never touch, so it alone opts out of the crate's clippy bans.
#![allow(clippy::disallowed_methods)]

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gossiper_network::{
    GossipInterval, InMemoryNetwork, InMemoryTransport, NeighborSelector, Transport, TransportError,
};
use gossiper_types::{NodeId, State, Time};
use parking_lot::Mutex;

use crate::{Node, Outbox, Stats};

/// Longest a node thread blocks waiting for a datagram before it looks at its command channel
/// again. Bounds how late a write or a stop is seen; 10 ms is well under any sensible gossip
/// interval and costs an idle node 100 wake-ups a second.
pub const MAX_WAIT: Duration = Duration::from_millis(10);

/// A write the application asks a node to apply to its state.
pub type WriteFn<S> = Box<dyn FnOnce(&mut S) + Send>;

/// What the application can tell a node thread.
enum Command<S> {
    /// Apply a local write through [`Node::write`].
    Write(WriteFn<S>),
    /// Leave the loop and hand the node back.
    Stop,
}

/// What one node last published: enough to print a table and to tell whether the cluster agrees.
#[derive(Debug, Clone)]
pub struct Snapshot<S: State> {
    /// The node's id.
    pub id: NodeId,
    /// A copy of the node's state, taken after its latest change; `None` for a node spawned
    /// not to share its state ([`Cluster::spawn_sharing`]). Shared with the node's thread:
    /// reading a snapshot copies a pointer, not the state.
    pub state: Option<Arc<S>>,
    /// The digest of that state: equal digests mean equal knowledge, and are cheap to compare.
    pub digest: Arc<S::Digest>,
    /// The node's counters at its latest step.
    pub stats: Stats,
    /// How many [`Cluster::write`]s this node has applied so far.
    pub writes_applied: u64,
    /// When the state last changed (by a write or a merge); `None` if it never did.
    pub last_change: Option<Time>,
    /// False once the node's thread has left its loop.
    pub running: bool,
}

impl<S: State> Snapshot<S> {
    fn of<Sel, Int>(node: &Node<S, Sel, Int>, share_state: bool) -> Self
    where
        Sel: NeighborSelector,
        Int: GossipInterval,
    {
        let mut digest = S::Digest::default();
        node.state().digest_into(&mut digest);
        Snapshot {
            id: node.id(),
            state: share_state.then(|| Arc::new(node.state().clone())),
            digest: Arc::new(digest),
            stats: *node.stats(),
            writes_applied: 0,
            last_change: None,
            running: true,
        }
    }
}

/// Why the cluster could not start, or a command could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// Two nodes share an id; nothing was started.
    DuplicateId(NodeId),
    /// A node may write datagrams larger than the network carries; nothing was started.
    MessageTooLarge {
        /// The node whose configuration is too large.
        id: NodeId,
        /// Its `max_message_bytes`.
        max_message_bytes: u32,
        /// The network's largest payload.
        max_payload: usize,
    },
    /// No node with that id is in the cluster; nothing happened.
    UnknownNode(NodeId),
    /// That node's thread has already left its loop; the command was not applied.
    Stopped(NodeId),
    /// The operating system refused a thread; the threads already started were stopped.
    Spawn(String),
    /// A node's thread panicked (a bug in the engine or in a strategy); other nodes were
    /// still stopped and joined.
    Panicked(NodeId),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::DuplicateId(id) => write!(f, "node id {id} appears twice"),
            ClusterError::MessageTooLarge {
                id,
                max_message_bytes,
                max_payload,
            } => write!(
                f,
                "{id} may send {max_message_bytes}-byte messages but the network carries \
                 at most {max_payload} bytes"
            ),
            ClusterError::UnknownNode(id) => write!(f, "no node {id} in the cluster"),
            ClusterError::Stopped(id) => write!(f, "node {id} has stopped"),
            ClusterError::Spawn(e) => write!(f, "cannot start a node thread: {e}"),
            ClusterError::Panicked(id) => write!(f, "node {id}'s thread panicked"),
        }
    }
}

impl std::error::Error for ClusterError {}

/// The runtime's clock: real time since one shared start instant, as protocol [`Time`].
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
}

impl Clock {
    fn now(&self) -> Time {
        let us = self.start.elapsed().as_micros();
        Time::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }
}

/// One published slot per node, indexed like [`Cluster::ids`]. A mutex rather than a read-write
/// lock: each slot has one writer and one occasional reader, sections are a few copies long, and a
/// mutex asks only `S: Send` (a read-write lock would need `S: Sync` too).
type Slots<S> = Arc<Vec<Mutex<Snapshot<S>>>>;

/// A running set of nodes, one thread each, talking over one [`InMemoryNetwork`].
///
/// Dropping a cluster stops and joins its threads; [`stop`](Cluster::stop) does the same and
/// hands the nodes back.
pub struct Cluster<S: State, Sel, Int> {
    ids: Vec<NodeId>,
    commands: Vec<Sender<Command<S>>>,
    threads: Vec<JoinHandle<Node<S, Sel, Int>>>,
    slots: Slots<S>,
    clock: Clock,
}

impl<S: State, Sel, Int> fmt::Debug for Cluster<S, Sel, Int> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("ids", &self.ids)
            .field("running_threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl<S, Sel, Int> Cluster<S, Sel, Int>
where
    // Snapshots share the published copy with the watcher.
    S: State + Sync,
    S::Digest: Sync,
    Sel: NeighborSelector + 'static,
    Int: GossipInterval + 'static,
{
    /// Starts one thread per node, each attached to `network` under the node's id, and starts
    /// every node's gossip rounds ([`Node::start`]) at the cluster's time zero.
    ///
    /// Nodes keep the peers, state and configuration they were built with. Fails, starting
    /// nothing, if two nodes share an id or a node's `max_message_bytes` exceeds what the
    /// network carries.
    pub fn spawn(
        nodes: Vec<Node<S, Sel, Int>>,
        network: InMemoryNetwork,
    ) -> Result<Self, ClusterError> {
        Self::spawn_sharing(nodes, network, |_| true)
    }

    /// [`spawn`](Cluster::spawn), where only the nodes `share` names publish a copy of their
    /// state in their snapshots (the others publish their digest and counters only, and their
    /// [`Snapshot::state`] is `None`). Each copy costs the node's state again, and again every
    /// time it changes: a watcher that looks at 16 nodes of 1,000, each holding an entry per
    /// node, should not pay for a second copy of all million entries.
    pub fn spawn_sharing(
        nodes: Vec<Node<S, Sel, Int>>,
        network: InMemoryNetwork,
        share: impl Fn(NodeId) -> bool,
    ) -> Result<Self, ClusterError> {
        let mut ids: Vec<NodeId> = nodes.iter().map(Node::id).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(ClusterError::DuplicateId(w[0]));
        }
        let ids: Vec<NodeId> = nodes.iter().map(Node::id).collect();
        let mut transports = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let transport = network.endpoint(node.id());
            let max_message_bytes = node.config().max_message_bytes;
            if max_message_bytes as usize > transport.max_payload() {
                for id in &ids {
                    network.detach(*id);
                }
                return Err(ClusterError::MessageTooLarge {
                    id: node.id(),
                    max_message_bytes,
                    max_payload: transport.max_payload(),
                });
            }
            transports.push(transport);
        }
        let slots: Slots<S> = Arc::new(
            nodes
                .iter()
                .map(|n| Mutex::new(Snapshot::of(n, share(n.id()))))
                .collect(),
        );
        let clock = Clock {
            start: Instant::now(),
        };
        let mut cluster = Cluster {
            ids,
            commands: Vec::with_capacity(nodes.len()),
            threads: Vec::with_capacity(nodes.len()),
            slots,
            clock,
        };
        for (index, (node, transport)) in nodes.into_iter().zip(transports).enumerate() {
            let (tx, rx) = mpsc::channel();
            let worker = Worker {
                share_state: share(node.id()),
                node,
                transport,
                commands: rx,
                slots: Arc::clone(&cluster.slots),
                index,
                clock,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("gossiper-{}", worker.node.id()))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => {
                    cluster.commands.push(tx);
                    cluster.threads.push(handle);
                }
                Err(e) => {
                    // Dropping the cluster stops and joins the threads started so far.
                    return Err(ClusterError::Spawn(e.to_string()));
                }
            }
        }
        Ok(cluster)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for a cluster of no nodes.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The nodes' ids, in the order they were given to [`spawn`](Cluster::spawn); snapshots
    /// come in the same order.
    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// The cluster's current time (zero at [`spawn`](Cluster::spawn)), on the clock the nodes
    /// see.
    pub fn now(&self) -> Time {
        self.clock.now()
    }

    /// Real time since [`spawn`](Cluster::spawn).
    pub fn elapsed(&self) -> Duration {
        self.clock.start.elapsed()
    }

    /// Queues a local write at node `id`; its thread applies it through [`Node::write`] within
    /// about [`MAX_WAIT`]. Returns once queued: watch [`Snapshot::writes_applied`] (or
    /// [`writes_applied`](Cluster::writes_applied)) to know it was applied.
    pub fn write(
        &self,
        id: NodeId,
        f: impl FnOnce(&mut S) + Send + 'static,
    ) -> Result<(), ClusterError> {
        let index = self.index_of(id)?;
        self.commands[index]
            .send(Command::Write(Box::new(f)))
            .map_err(|_| ClusterError::Stopped(id))
    }

    /// The latest snapshot of node `id`.
    pub fn snapshot(&self, id: NodeId) -> Result<Snapshot<S>, ClusterError> {
        let index = self.index_of(id)?;
        Ok(self.slots[index].lock().clone())
    }

    /// The latest snapshot of every node, in [`ids`](Cluster::ids) order. Each is consistent on
    /// its own; nodes keep running while they are read one after another.
    pub fn snapshots(&self) -> Vec<Snapshot<S>> {
        self.slots.iter().map(|slot| slot.lock().clone()).collect()
    }

    /// Every node's latest counters, added up.
    pub fn totals(&self) -> Stats {
        let mut total = Stats::default();
        for slot in self.slots.iter() {
            total.accumulate(&slot.lock().stats);
        }
        total
    }

    /// Writes applied so far, over all nodes.
    pub fn writes_applied(&self) -> u64 {
        self.slots
            .iter()
            .map(|slot| slot.lock().writes_applied)
            .sum()
    }

    /// True when every node's latest published digest is the same, i.e. every node knows the
    /// same writes. Reads only digests, without cloning states.
    pub fn converged(&self) -> bool {
        let Some((first, rest)) = self.slots.split_first() else {
            return true;
        };
        let first = first.lock();
        rest.iter().all(|slot| slot.lock().digest == first.digest)
    }

    /// Stops every node, joins every thread and returns the nodes, in [`ids`](Cluster::ids)
    /// order, with their final state and counters.
    pub fn stop(mut self) -> Result<Vec<Node<S, Sel, Int>>, ClusterError> {
        self.shutdown()
    }

    /// Tells every thread to stop, then joins them all (even if one panicked).
    fn shutdown(&mut self) -> Result<Vec<Node<S, Sel, Int>>, ClusterError> {
        for tx in &self.commands {
            // A thread that already left its loop dropped its receiver; nothing to tell it.
            let _ = tx.send(Command::Stop);
        }
        let mut nodes = Vec::with_capacity(self.threads.len());
        let mut panicked = None;
        for (i, handle) in self.threads.drain(..).enumerate() {
            match handle.join() {
                Ok(node) => nodes.push(node),
                Err(_) => {
                    panicked.get_or_insert(self.ids[i]);
                }
            }
        }
        self.commands.clear();
        match panicked {
            Some(id) => Err(ClusterError::Panicked(id)),
            None => Ok(nodes),
        }
    }

    fn index_of(&self, id: NodeId) -> Result<usize, ClusterError> {
        self.ids
            .iter()
            .position(|&x| x == id)
            .ok_or(ClusterError::UnknownNode(id))
    }
}

impl<S: State, Sel, Int> Drop for Cluster<S, Sel, Int> {
    fn drop(&mut self) {
        for tx in &self.commands {
            let _ = tx.send(Command::Stop);
        }
        for handle in self.threads.drain(..) {
            // A panicked thread has already reported itself on stderr; dropping must not panic.
            let _ = handle.join();
        }
    }
}

/// Everything one node thread owns.
struct Worker<S: State, Sel, Int> {
    node: Node<S, Sel, Int>,
    /// Whether snapshots carry a copy of the state.
    share_state: bool,
    transport: InMemoryTransport,
    commands: Receiver<Command<S>>,
    slots: Slots<S>,
    index: usize,
    clock: Clock,
}

impl<S, Sel, Int> Worker<S, Sel, Int>
where
    S: State,
    Sel: NeighborSelector,
    Int: GossipInterval,
{
    /// The node's loop; returns the node when told to stop.
    fn run(mut self) -> Node<S, Sel, Int> {
        let mut out = Outbox::new();
        let mut buf = Vec::with_capacity(self.transport.max_payload());
        let mut published = Published {
            stats: *self.node.stats(),
            writes_applied: 0,
            last_change: None,
        };
        let mut writes_applied = 0u64;
        self.node.start(self.clock.now());
        log::debug!(
            "{}: started, first round at {}",
            self.node.id(),
            self.node.poll_timeout()
        );
        'run: loop {
            // 1. Commands.
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Write(f)) => {
                        self.node.write(self.clock.now(), &mut out, f);
                        writes_applied += 1;
                    }
                    Ok(Command::Stop) | Err(TryRecvError::Disconnected) => break 'run,
                    Err(TryRecvError::Empty) => break,
                }
            }
            // 2. Timers.
            self.node.handle_timeout(self.clock.now(), &mut out);
            self.flush(&mut out);
            self.publish(&mut published, writes_applied, true);
            // 3. Input, waiting at most until the next round.
            let now = self.clock.now();
            let wait = self.node.poll_timeout().saturating_since(now).min(MAX_WAIT);
            match self.transport.recv(&mut buf, wait) {
                Ok(Some(from)) => {
                    // A rejected datagram is counted and logged by the engine; nothing to do.
                    let _ = self
                        .node
                        .handle_message(self.clock.now(), from, &buf, &mut out);
                    self.flush(&mut out);
                    self.publish(&mut published, writes_applied, true);
                }
                Ok(None) => {}
                Err(e) => {
                    // Our endpoint was detached or replaced: nothing can reach us any more.
                    log::warn!("{}: receiving failed ({e}); stopping", self.node.id());
                    break 'run;
                }
            }
        }
        // Hang up the command channel before saying so, so that once a snapshot reads
        // `running: false`, every later write fails with `Stopped` instead of being lost.
        self.commands = mpsc::channel().1;
        self.flush(&mut out);
        self.publish(&mut published, writes_applied, false);
        log::debug!("{}: stopped", self.node.id());
        self.node
    }

    /// Sends everything in the outbox, then clears it. Like UDP, a failed send is a lost
    /// datagram: anti-entropy repairs it in a later round.
    fn flush(&mut self, out: &mut Outbox) {
        for (to, bytes) in out.iter() {
            match self.transport.send(to, bytes) {
                Ok(()) => {}
                Err(TransportError::UnknownPeer(_)) => {
                    log::debug!("{}: no route to {to}, datagram lost", self.node.id());
                }
                Err(e) => log::warn!("{}: send to {to} failed: {e}", self.node.id()),
            }
        }
        out.clear();
        // Events are not forwarded by this runtime; drain them so they cannot pile up.
        while let Some(event) = self.node.poll_event() {
            log::trace!("{}: {event:?}", self.node.id());
        }
    }

    /// Publishes a snapshot if anything changed since the last one (or when stopping). The
    /// state is cloned only when it changed, and outside the lock.
    fn publish(&mut self, last: &mut Published, writes_applied: u64, running: bool) {
        let stats = *self.node.stats();
        if running && stats == last.stats && writes_applied == last.writes_applied {
            return;
        }
        let state_changed = stats.state_changes != last.stats.state_changes;
        if state_changed {
            last.last_change = Some(self.clock.now());
        }
        let mut fresh = state_changed.then(|| {
            let mut digest = S::Digest::default();
            self.node.state().digest_into(&mut digest);
            let state = self
                .share_state
                .then(|| Arc::new(self.node.state().clone()));
            (state, Arc::new(digest))
        });
        {
            let mut slot = self.slots[self.index].lock();
            if let Some((state, digest)) = &mut fresh {
                // Swapped, so that the old copy is freed after the lock is released.
                std::mem::swap(&mut slot.state, state);
                std::mem::swap(&mut slot.digest, digest);
            }
            slot.stats = stats;
            slot.writes_applied = writes_applied;
            slot.last_change = last.last_change;
            slot.running = running;
        }
        drop(fresh);
        last.stats = stats;
        last.writes_applied = writes_applied;
    }
}

/// What a worker last published, to tell whether a new snapshot is due.
struct Published {
    stats: Stats,
    writes_applied: u64,
    last_change: Option<Time>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mode, NodeConfig, Peers};
    use gossiper_network::{FixedInterval, JitterInterval, UniformRandom};
    use gossiper_types::KvMap;

    type KvNode = Node<KvMap, UniformRandom, JitterInterval>;

    fn nodes(n: u64, mode: Mode) -> Vec<KvNode> {
        let config = NodeConfig {
            mode,
            ..NodeConfig::default()
        };
        let every =
            JitterInterval::new(Duration::from_millis(5), Duration::from_millis(15)).unwrap();
        (0..n)
            .map(|i| {
                let mut state = KvMap::new();
                state.set(NodeId(i), "hello", format!("from {i}").into_bytes());
                let mut node = Node::new(NodeId(i), config, state, UniformRandom, every, i);
                node.set_peers(Peers::Complete { n });
                node
            })
            .collect()
    }

    /// Polls `done` every few ms until it holds or `secs` pass.
    fn wait_until(secs: u64, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        done()
    }

    #[test]
    fn five_nodes_converge_on_each_others_initial_state() {
        for mode in [Mode::Push, Mode::Pull, Mode::PushPull] {
            let cluster = Cluster::spawn(nodes(5, mode), InMemoryNetwork::new(1_400)).unwrap();
            assert!(
                wait_until(10, || cluster.converged()),
                "{mode}: no convergence"
            );
            for snap in cluster.snapshots() {
                assert_eq!(
                    snap.state.as_deref().unwrap().len(),
                    5,
                    "{mode}: {} lacks keys",
                    snap.id
                );
                assert!(snap.last_change.is_some());
            }
            let totals = cluster.totals();
            assert!(totals.rounds > 0 && totals.messages_sent > 0);
            let nodes = cluster.stop().unwrap();
            assert!(nodes.iter().all(|n| n.state() == nodes[0].state()));
        }
    }

    #[test]
    fn snapshots_start_from_the_nodes_as_given() {
        // Rounds an hour apart: nothing moves while we look.
        let hourly = FixedInterval::new(Duration::from_secs(3_600)).unwrap();
        let quiet: Vec<_> = (0..3)
            .map(|i| {
                let mut state = KvMap::new();
                state.set(NodeId(i), "own", vec![i as u8]);
                let mut node = Node::new(
                    NodeId(i),
                    NodeConfig::default(),
                    state,
                    UniformRandom,
                    hourly,
                    i,
                );
                node.set_peers(Peers::Complete { n: 3 });
                node
            })
            .collect();
        let cluster = Cluster::spawn(quiet, InMemoryNetwork::new(1_400)).unwrap();
        assert_eq!(cluster.len(), 3);
        assert_eq!(cluster.ids(), [NodeId(0), NodeId(1), NodeId(2)]);
        assert!(!cluster.converged(), "everyone starts different");
        for (i, snap) in cluster.snapshots().iter().enumerate() {
            assert_eq!(snap.id, NodeId(i as u64));
            assert_eq!(snap.state.as_deref().unwrap().len(), 1);
            assert_eq!(
                snap.state
                    .as_deref()
                    .unwrap()
                    .get(snap.id, "own")
                    .unwrap()
                    .value,
                [i as u8]
            );
            assert_eq!(snap.last_change, None);
            assert!(snap.running);
        }
        assert_eq!(cluster.totals(), Stats::default());
        assert!(!cluster.is_empty());
    }

    #[test]
    fn writes_reach_all_nodes() {
        let cluster =
            Cluster::spawn(nodes(4, Mode::PushPull), InMemoryNetwork::new(1_400)).unwrap();
        assert!(wait_until(10, || cluster.converged()));
        cluster
            .write(NodeId(2), |s: &mut KvMap| {
                s.set(NodeId(2), "news", b"fresh".to_vec());
            })
            .unwrap();
        assert!(wait_until(10, || {
            cluster.writes_applied() == 1
                && cluster
                    .snapshots()
                    .iter()
                    .all(|s| s.state.as_deref().unwrap().get(NodeId(2), "news").is_some())
        }));
        assert_eq!(cluster.snapshot(NodeId(2)).unwrap().writes_applied, 1);
        assert_eq!(cluster.snapshot(NodeId(1)).unwrap().writes_applied, 0);
        assert!(cluster.converged());
    }

    #[test]
    fn only_the_sharing_nodes_publish_their_state_and_all_publish_their_digest() {
        let cluster = Cluster::spawn_sharing(
            nodes(4, Mode::PushPull),
            InMemoryNetwork::new(1_400),
            |id| id == NodeId(1),
        )
        .unwrap();
        cluster
            .write(NodeId(3), |s: &mut KvMap| {
                s.set(NodeId(3), "news", b"!".to_vec());
            })
            .unwrap();
        assert!(wait_until(10, || cluster.writes_applied() == 1 && cluster.converged()));
        let snaps = cluster.snapshots();
        let shared: Vec<bool> = snaps.iter().map(|s| s.state.is_some()).collect();
        assert_eq!(shared, [false, true, false, false]);
        // The sharing node's copy follows its state; every digest (equal: converged) too.
        assert!(wait_until(10, || {
            cluster
                .snapshot(NodeId(1))
                .unwrap()
                .state
                .as_deref()
                .unwrap()
                .len()
                == 5
        }));
        assert!(snaps.windows(2).all(|w| w[0].digest == w[1].digest));
        let nodes = cluster.stop().unwrap();
        assert!(
            nodes
                .iter()
                .all(|n| n.state().get(NodeId(3), "news").is_some())
        );
    }

    #[test]
    fn stop_joins_every_thread_and_returns_the_nodes_in_order() {
        let cluster =
            Cluster::spawn(nodes(6, Mode::PushPull), InMemoryNetwork::new(1_400)).unwrap();
        let slots = Arc::downgrade(&cluster.slots);
        assert!(wait_until(10, || cluster.totals().rounds >= 6));
        let before = cluster.totals();
        let nodes = cluster.stop().unwrap();
        // Every thread held a reference to the slots; all were dropped, so all threads ended.
        assert_eq!(slots.strong_count(), 0, "a node thread outlived stop()");
        let ids: Vec<NodeId> = nodes.iter().map(Node::id).collect();
        assert_eq!(ids, (0..6).map(NodeId).collect::<Vec<_>>());
        let mut after = Stats::default();
        for n in &nodes {
            after.accumulate(n.stats());
        }
        assert!(after.rounds >= before.rounds, "counters never go back");
    }

    #[test]
    fn dropping_the_cluster_stops_its_threads() {
        let cluster = Cluster::spawn(nodes(3, Mode::Push), InMemoryNetwork::new(1_400)).unwrap();
        let slots = Arc::downgrade(&cluster.slots);
        drop(cluster);
        assert_eq!(slots.strong_count(), 0);
    }

    #[test]
    fn a_stopped_node_is_reported_and_others_go_on() {
        let net = InMemoryNetwork::new(1_400);
        let cluster = Cluster::spawn(nodes(3, Mode::PushPull), net.clone()).unwrap();
        // Re-attaching id 1 disconnects the running node's inbox: its thread leaves its loop.
        let _thief = net.endpoint(NodeId(1));
        assert!(wait_until(5, || !cluster
            .snapshot(NodeId(1))
            .unwrap()
            .running));
        let write = cluster.write(NodeId(1), |s: &mut KvMap| {
            s.set(NodeId(1), "late", Vec::new());
        });
        assert_eq!(write, Err(ClusterError::Stopped(NodeId(1))));
        assert!(cluster.snapshot(NodeId(0)).unwrap().running);
        assert_eq!(cluster.stop().map(|n| n.len()), Ok(3));
    }

    #[test]
    fn bad_clusters_are_refused_before_starting() {
        let mut twins = nodes(2, Mode::Push);
        twins.extend(nodes(1, Mode::Push));
        assert_eq!(
            Cluster::spawn(twins, InMemoryNetwork::new(1_400)).err(),
            Some(ClusterError::DuplicateId(NodeId(0)))
        );
        let err = Cluster::spawn(nodes(2, Mode::Push), InMemoryNetwork::new(512)).err();
        assert_eq!(
            err,
            Some(ClusterError::MessageTooLarge {
                id: NodeId(0),
                max_message_bytes: 1_400,
                max_payload: 512
            })
        );
        assert!(err.unwrap().to_string().contains("at most 512 bytes"));
    }

    #[test]
    fn unknown_nodes_are_named() {
        let cluster = Cluster::spawn(nodes(2, Mode::Push), InMemoryNetwork::new(1_400)).unwrap();
        assert_eq!(
            cluster.write(NodeId(9), |_: &mut KvMap| {}),
            Err(ClusterError::UnknownNode(NodeId(9)))
        );
        assert!(cluster.snapshot(NodeId(9)).is_err());
    }

    #[test]
    fn rounds_follow_the_real_clock() {
        // A fixed 20 ms interval over ~300 ms gives each node about 15 rounds; the bounds allow
        // for a loaded machine (late wake-ups only ever mean fewer rounds).
        let every = FixedInterval::new(Duration::from_millis(20)).unwrap();
        let mut node = Node::new(
            NodeId(0),
            NodeConfig::default(),
            KvMap::new(),
            UniformRandom,
            every,
            0,
        );
        node.set_peers(Peers::Complete { n: 2 });
        let mut other = Node::new(
            NodeId(1),
            NodeConfig::default(),
            KvMap::new(),
            UniformRandom,
            every,
            1,
        );
        other.set_peers(Peers::Complete { n: 2 });
        let cluster = Cluster::spawn(vec![node, other], InMemoryNetwork::new(1_400)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let elapsed = cluster.elapsed();
        let nodes = cluster.stop().unwrap();
        let max_rounds = elapsed.as_millis() as u64 / 20 + 1;
        for n in &nodes {
            let rounds = n.stats().rounds;
            assert!(
                (3..=max_rounds).contains(&rounds),
                "{} ran {rounds} rounds in {elapsed:?}",
                n.id()
            );
        }
    }
}
