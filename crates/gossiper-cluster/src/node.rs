//! `ClusterNode`: membership, failure detection, security and addressing around the ordinary
//! anti-entropy engine, still sans-IO.
//!
//! The engine ([`Node`]`<`[`ClusterState`]`>`) reconciles the replicated state and speaks
//! [`NodeId`]s. Around it this state machine adds what a real cluster needs: the envelope and
//! keyring ([`Codec`]), an address book learned from the gossiped `__addr` keys, joining through
//! seed addresses with back-off, a heartbeat per round and a φ-accrual detector per peer
//! (alive → suspect → dead), graceful leave (recorded as *left*), garbage collection of dead and
//! departed nodes, rumor-style forwarding of fresh writes (so a write reaches everyone in a few
//! network hops, not a few rounds), and occasional gossip to dead nodes so partitions heal.
//! Inputs take `now`; outputs are [`Transmit`]s, [`ClusterEvent`]s and
//! [`poll_timeout`](ClusterNode::poll_timeout).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use gossiper_network::{FixedInterval, UniformRandom};
use gossiper_types::codec::Reader;
use gossiper_types::{Message, MessageKind, NodeId, State, Time};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

mod authority;
mod broadcast;
mod credit;
#[cfg(test)]
pub(crate) use broadcast::broadcast_copies_per_node;
mod swim_mode;

use crate::phi::PhiDetector;
use crate::state::{
    ClusterDigest, ClusterState, KEY_ADDR, KEY_LEFT, KEY_NAME, WriteError, check_user_key,
    max_value_len,
};
use crate::swim::Swim;
use crate::wire::{Codec, DropReason, EnvelopeKind, Keyring};
use gossiper_node::{ConfigError, DropReason as EngineDrop, Mode, Node, NodeConfig, Outbox, Peers};

/// How a [`ClusterNode`] behaves. Times in milliseconds.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's name, unique in the cluster; its [`NodeId`] is derived from it.
    pub name: String,
    /// The address peers reach this node at (gossiped as its `__addr` key).
    pub addr: SocketAddr,
    /// This start's generation: must grow from one start to the next (the agent uses the wall
    /// clock in milliseconds). A higher generation supersedes everything the old one wrote.
    pub generation: u64,
    /// Cluster name: datagrams of other clusters are dropped. Default `"default"`.
    pub cluster: String,
    /// Seals every datagram when set.
    pub keyring: Option<Keyring>,
    /// Addresses to join through (retried with back-off until a peer answers, and again
    /// whenever no peer is alive).
    pub seeds: Vec<SocketAddr>,
    /// Gossip round interval, 10..=60,000 ms, default 200. Under SWIM also the probe period
    /// (one member pinged per period; a direct ack is awaited half of it) and the gossip
    /// period of membership changes; a fingerprint exchange runs every two periods. Under φ
    /// also the heartbeat period.
    pub interval_ms: u64,
    /// Peers per round, 1..=16, default 3: under SWIM, the members each pending membership
    /// change is gossiped to per period; under φ, the peers of each anti-entropy round.
    pub fanout: u32,
    /// Largest datagram, envelope included, 256..=65,507 bytes, default 1,400.
    pub mtu: usize,
    /// φ detector only: φ at which a peer is declared dead, default 8 (suspect from half of it). Lower detects
    /// sooner with more false positives. A peer is declared dead only once it has also been
    /// suspect, with no newer heartbeat, for 3 × log10(N) intervals (N the members known, at
    /// least 10).
    pub phi_threshold: f64,
    /// Floor of the heartbeat inter-arrival deviation, ms; 0 (default) means 2 × interval.
    pub min_std_ms: u64,
    /// Tombstones are dropped this long after a replica first saw them, ms; default 600,000.
    pub tombstone_grace_ms: u64,
    /// Dead and left nodes are forgotten this long after their status changed, ms; default
    /// 600,000. Forgotten generations are remembered (and ignored) three times as long.
    pub dead_grace_ms: u64,
    /// Size cap of this node's digests in bytes; 0 (default) means no cap beyond the datagram:
    /// a Syn's digest may fill it, a SynAck's half of it (the rest is its delta). Larger
    /// reconciles more nodes per round (and keeps compact digests, which carry every node's
    /// heartbeat, unsampled up to about 330 nodes), smaller costs less when idle.
    pub digest_budget: usize,
    /// Longest pause between join attempts, ms; default 5,000.
    pub join_backoff_max_ms: u64,
    /// The heartbeat advances every this many rounds, 1..=100, default 1. Every advance is news
    /// that travels to every node, so larger values cut idle traffic and slow detection.
    pub heartbeat_rounds: u32,
    /// How liveness is checked: [`Detector::Swim`] (default; cost per node flat in N) or
    /// [`Detector::Phi`] (heartbeats in every digest; cost grows with N).
    pub detector: Detector,
    /// Bound of the SWIM member table, 1..=16,777,216, default 65,536: news of members beyond
    /// it is dropped and counted (`members_refused`), except that a member heard first-hand
    /// takes the place of one only ever heard of second-hand.
    pub max_members: usize,
}

/// The failure detector a [`ClusterNode`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detector {
    /// SWIM with Lifeguard's refinements: one member probed per period, indirect probes,
    /// suspicion that confirmations shorten, incarnations; membership changes piggybacked.
    #[default]
    Swim,
    /// A heartbeat per round in every digest and a φ-accrual detector per peer.
    Phi,
}

impl Detector {
    /// `swim` or `phi`.
    pub fn name(self) -> &'static str {
        match self {
            Detector::Swim => "swim",
            Detector::Phi => "phi",
        }
    }
}

impl ClusterConfig {
    /// A configuration with the defaults above.
    pub fn new(name: impl Into<String>, addr: SocketAddr, generation: u64) -> ClusterConfig {
        ClusterConfig {
            name: name.into(),
            addr,
            generation,
            cluster: "default".into(),
            keyring: None,
            seeds: Vec::new(),
            interval_ms: 200,
            fanout: 3,
            mtu: 1_400,
            phi_threshold: 8.0,
            min_std_ms: 0,
            tombstone_grace_ms: 600_000,
            dead_grace_ms: 600_000,
            digest_budget: 0,
            join_backoff_max_ms: 5_000,
            heartbeat_rounds: 1,
            detector: Detector::Swim,
            max_members: 65_536,
        }
    }

    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if self.name.is_empty() || self.name.len() > 128 {
            return bad("name must be 1 to 128 bytes".into());
        }
        if !(10..=60_000).contains(&self.interval_ms) {
            return bad(format!(
                "interval {} ms not within 10..=60000",
                self.interval_ms
            ));
        }
        if !(1..=16).contains(&self.fanout) {
            return bad(format!("fanout {} not within 1..=16", self.fanout));
        }
        if !(256..=65_507).contains(&self.mtu) {
            return bad(format!("mtu {} not within 256..=65507 bytes", self.mtu));
        }
        if !(self.phi_threshold.is_finite() && self.phi_threshold > 0.5) {
            return bad("phi threshold must be above 0.5".into());
        }
        if !(1..=100).contains(&self.heartbeat_rounds) {
            return bad(format!(
                "heartbeat rounds {} not within 1..=100",
                self.heartbeat_rounds
            ));
        }
        if self.generation == 0 {
            return bad("generation must be positive".into());
        }
        if !(1..=1 << 24).contains(&self.max_members) {
            return bad(format!(
                "max members {} not within 1..=16777216",
                self.max_members
            ));
        }
        Ok(())
    }
}

/// What a node thinks of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberStatus {
    /// Heartbeats arrive.
    Alive,
    /// Heartbeats are late (φ above half the threshold).
    Suspect,
    /// Heartbeats stopped (φ above the threshold).
    Dead,
    /// Announced a graceful leave.
    Left,
}

impl MemberStatus {
    /// Every status, in order.
    pub const ALL: [MemberStatus; 4] = [
        MemberStatus::Alive,
        MemberStatus::Suspect,
        MemberStatus::Dead,
        MemberStatus::Left,
    ];

    /// `alive`, `suspect`, `dead` or `left`.
    pub fn name(self) -> &'static str {
        match self {
            MemberStatus::Alive => "alive",
            MemberStatus::Suspect => "suspect",
            MemberStatus::Dead => "dead",
            MemberStatus::Left => "left",
        }
    }
}

/// How many members (this node included) have each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// [`MemberStatus::Alive`].
    pub alive: usize,
    /// [`MemberStatus::Suspect`].
    pub suspect: usize,
    /// [`MemberStatus::Dead`].
    pub dead: usize,
    /// [`MemberStatus::Left`].
    pub left: usize,
}

impl StatusCounts {
    /// The count for one status.
    pub fn get(&self, status: MemberStatus) -> usize {
        match status {
            MemberStatus::Alive => self.alive,
            MemberStatus::Suspect => self.suspect,
            MemberStatus::Dead => self.dead,
            MemberStatus::Left => self.left,
        }
    }

    fn add(&mut self, status: MemberStatus) {
        *match status {
            MemberStatus::Alive => &mut self.alive,
            MemberStatus::Suspect => &mut self.suspect,
            MemberStatus::Dead => &mut self.dead,
            MemberStatus::Left => &mut self.left,
        } += 1;
    }
}

/// A member as reported to the application.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberInfo {
    /// The member's id.
    pub id: NodeId,
    /// Its name (the id in text until its `__name` key arrives).
    pub name: String,
    /// Its gossip address, when known.
    pub addr: Option<SocketAddr>,
    /// What this node thinks of it.
    pub status: MemberStatus,
    /// Its generation.
    pub generation: u64,
    /// Its SWIM incarnation (0 under φ).
    pub incarnation: u64,
    /// Its heartbeat as last heard (0 under SWIM, which has none).
    pub heartbeat: u64,
    /// Current suspicion level (0 for this node itself).
    pub phi: f64,
}

/// A membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterEvent {
    /// A node joined, restarted with a new generation, or came back.
    MemberUp(NodeId),
    /// A node became suspect.
    MemberSuspect(NodeId),
    /// A node was declared dead.
    MemberDown(NodeId),
    /// A node left gracefully.
    MemberLeft(NodeId),
    /// A dead or departed node was garbage-collected.
    MemberRemoved(NodeId),
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// The whole datagram, envelope included.
    pub bytes: Vec<u8>,
}

/// Datagrams dropped, one named counter per [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// [`DropReason::Garbage`].
    pub garbage: u64,
    /// [`DropReason::Truncated`].
    pub truncated: u64,
    /// [`DropReason::Oversized`].
    pub oversized: u64,
    /// [`DropReason::UnknownVersion`].
    pub unknown_version: u64,
    /// [`DropReason::ForeignCluster`].
    pub foreign_cluster: u64,
    /// [`DropReason::AuthFailure`].
    pub auth_failure: u64,
    /// [`DropReason::FromSelf`].
    pub from_self: u64,
    /// [`DropReason::Forgotten`].
    pub forgotten: u64,
    /// [`DropReason::Replayed`].
    pub replayed: u64,
}

impl DropCounts {
    fn slot(&mut self, reason: DropReason) -> &mut u64 {
        match reason {
            DropReason::Garbage => &mut self.garbage,
            DropReason::Truncated => &mut self.truncated,
            DropReason::Oversized => &mut self.oversized,
            DropReason::UnknownVersion => &mut self.unknown_version,
            DropReason::ForeignCluster => &mut self.foreign_cluster,
            DropReason::AuthFailure => &mut self.auth_failure,
            DropReason::FromSelf => &mut self.from_self,
            DropReason::Forgotten => &mut self.forgotten,
            DropReason::Replayed => &mut self.replayed,
        }
    }

    /// Counts one drop.
    pub fn count(&mut self, reason: DropReason) {
        *self.slot(reason) += 1;
    }

    /// Drops for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        *self.clone().slot(reason)
    }
}

/// Counters, monotonically increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Datagrams handed in.
    pub packets_in: u64,
    /// Bytes handed in.
    pub bytes_in: u64,
    /// Datagrams produced.
    pub packets_out: u64,
    /// Bytes produced.
    pub bytes_out: u64,
    /// Datagrams dropped, by reason.
    pub drops: DropCounts,
    /// Engine datagrams with no known address for their destination.
    pub no_route: u64,
    /// Gossip rounds started.
    pub rounds: u64,
    /// Fresh pushes forwarded to further peers.
    pub forwarded: u64,
    /// Fingerprints received (SWIM's anti-entropy openers).
    pub syncs_received: u64,
    /// Fingerprints received that differed from ours (each opened an exchange).
    pub syncs_mismatched: u64,
    /// Claims about this node it did not make, refuted with a new generation.
    pub claims_refuted: u64,
    /// φ: senders not added to the full address book.
    pub senders_refused: u64,
    /// Datagrams from a live member's id at another address that would have moved it (φ;
    /// SWIM counts its own in [`SwimStats::address_conflicts`](crate::SwimStats)).
    pub address_conflicts: u64,
    /// Claims at a generation too high to go above
    /// ([`MAX_GENERATION`](crate::state::MAX_GENERATION)).
    pub claims_unrefutable: u64,
}

impl ClusterStats {
    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops.get(reason)
    }
}

#[derive(Debug, Clone)]
struct Member {
    generation: u64,
    heartbeat: u64,
    detector: PhiDetector,
    status: MemberStatus,
    since: Time,
    /// Whether its heartbeat has advanced since this node first learned of it (until then the
    /// detector runs on assumed gaps, not observed ones).
    heard: bool,
}

type Engine = Node<ClusterState, UniformRandom, FixedInterval>;

/// A datagram from an address that has not proven it receives (it never answered one of our
/// messages there) gets at most about this many times its own size back (QUIC's
/// anti-amplification limit), so a forged source cannot turn a node into an amplifier aimed at
/// a third party: SWIM answers a ping with a short ack and a table request with its own record
/// and a verification ping, sending the table once the ack proves the address; φ sends its
/// multi-datagram snapshot only to verified peers.
pub const REFLECTION_FACTOR: usize = 3;

/// Most recycled datagram buffers kept.
const SPARE_BUFFERS: usize = 32;
/// Smallest capacity a datagram buffer is given: every idle-path datagram (pings, acks,
/// fingerprints: 30–100 bytes) fits, so a recycled buffer never grows for the next one.
const MIN_BUFFER: usize = 128;

/// Suspicion period in gossip intervals per decade of cluster size (see
/// `ClusterNode::suspicion_period`).
const SUSPICION_MULT: f64 = 3.0;

/// One cluster member's protocol state machine: membership, failure detection, security and
/// addressing around the anti-entropy engine (see [`crate`]).
pub struct ClusterNode {
    config: ClusterConfig,
    id: NodeId,
    generation: u64,
    engine: Engine,
    codec: Codec,
    rng: Pcg64Mcg,
    members: BTreeMap<NodeId, Member>,
    /// Where each peer is reached, and the generation that said so (newer generations win:
    /// a restarted node may come back on another port).
    addrs: BTreeMap<NodeId, (SocketAddr, u64)>,
    /// Datagram buffers handed back by the runtime ([`ClusterNode::recycle`]).
    spare: Vec<Vec<u8>>,
    /// Sealed datagrams already seen, per sender.
    replay: crate::replay::ReplayGuard,
    /// φ: the address each peer answered one of our messages from (a round trip).
    verified: BTreeMap<NodeId, SocketAddr>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClusterEvent>,
    stats: ClusterStats,
    outbox: Outbox,
    ttls: BTreeMap<String, Time>,
    next_tick: Time,
    next_join: Time,
    join_backoff: Duration,
    live: Vec<NodeId>,
    left: bool,
    /// The highest generation a peer claimed for this node, waiting for its refutation.
    pending_claim: Option<u64>,
    /// No refutation before this.
    next_refute: Time,
    scratch_digest: ClusterDigest,
    /// Live members and this node by id, for the broadcast tree, and what they were built from.
    ring: Vec<NodeId>,
    ring_stamp: (usize, u64, u64),
    scratch_ids: Vec<NodeId>,
    scratch_payload: Vec<u8>,
    /// Random copies of broadcasts, sent a little after the tree's (`node/broadcast.rs`).
    copies: broadcast::DeferredCopies,
    /// What addresses not yet proven to receive may still be sent (φ; SWIM has its handshake).
    credit: credit::ReflectionCredit,
    /// The SWIM membership engine, under [`Detector::Swim`] (then `members` and `addrs` stay
    /// empty: SWIM's table is the membership).
    swim: Option<Box<Swim>>,
    /// Reused for SWIM payloads.
    swim_buf: Vec<u8>,
    /// Next fingerprint exchange (SWIM only).
    next_sync: Time,
    /// Follow-up fingerprints left in this sync period (see `sync_followup`).
    followups_left: u32,
    /// [`Swim::live_changes`] when last looked at, and whether the live list was empty then.
    live_changes: u64,
    live_was_empty: bool,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("name", &self.config.name)
            .field("id", &self.id)
            .field("generation", &self.generation)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl ClusterNode {
    /// A node started at `now`, its random choices drawn from `seed`. It writes its name and
    /// address, and starts joining through the seeds at once.
    pub fn new(config: ClusterConfig, now: Time, seed: u64) -> Result<ClusterNode, ConfigError> {
        config.validate()?;
        let id = NodeId::from_name(&config.name);
        let codec = Codec::new(&config.cluster, config.keyring.clone());
        // Every engine message fits in a broadcast envelope, the largest.
        let budget = config.mtu - codec.overhead() - broadcast::BROADCAST_HEADER;
        let engine_config = NodeConfig {
            mode: Mode::PushPull,
            fanout: config.fanout,
            max_message_bytes: budget as u32,
            push_on_write: false,
            emit_events: false,
            ..NodeConfig::default()
        };
        engine_config.validate()?;
        let interval = Duration::from_millis(config.interval_ms);
        let every = FixedInterval::new(interval).map_err(|e| ConfigError(e.to_string()))?;
        let mut state = ClusterState::new();
        state.set_digest_budget(config.digest_budget);
        state.set_owner(id);
        let swim = match config.detector {
            Detector::Swim => Some(Box::new(Self::swim_for(&config, id, budget, now, seed))),
            Detector::Phi => {
                state.start_node(id, config.generation);
                state.set(id, KEY_NAME, config.name.clone().into_bytes());
                state.set(id, KEY_ADDR, config.addr.to_string().into_bytes());
                None
            }
        };
        let mut engine = Node::new(id, engine_config, state, UniformRandom, every, seed);
        if swim.is_none() {
            // Under SWIM the engine runs no rounds of its own: fingerprints open exchanges.
            engine.start(now);
        }
        let generation = config.generation;
        Ok(ClusterNode {
            id,
            generation,
            engine,
            codec,
            rng: Pcg64Mcg::seed_from_u64(seed ^ 0x5eed_c1a5_7e00_0001),
            members: BTreeMap::new(),
            addrs: BTreeMap::new(),
            verified: BTreeMap::new(),
            replay: crate::replay::ReplayGuard::default(),
            spare: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: ClusterStats::default(),
            outbox: Outbox::new(),
            ttls: BTreeMap::new(),
            next_tick: now + interval,
            next_join: now,
            join_backoff: interval,
            live: Vec::new(),
            left: false,
            pending_claim: None,
            next_refute: now,
            scratch_digest: ClusterDigest::default(),
            ring: Vec::new(),
            ring_stamp: (usize::MAX, 0, 0),
            scratch_ids: Vec::new(),
            scratch_payload: Vec::new(),
            copies: broadcast::DeferredCopies::default(),
            credit: credit::ReflectionCredit::default(),
            swim,
            swim_buf: Vec::new(),
            next_sync: now,
            followups_left: 0,
            live_changes: 0,
            live_was_empty: true,
            config,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Replaces the keyring (a key rotation: add the new key everywhere, make it primary
    /// everywhere, then drop the old one). Datagrams are sealed with its first key from now
    /// on, and any of its keys opens them. A node started without a keyring cannot start
    /// sealing (nor a sealed one stop): that changes every datagram's overhead, so it needs a
    /// restart, and this returns an error changing nothing.
    pub fn set_keyring(&mut self, keyring: Keyring) -> Result<(), ConfigError> {
        if !self.codec.replace_keyring(keyring.clone()) {
            return Err(ConfigError(
                "this node was started without a keyring: sealing cannot be turned on while it runs"
                    .into(),
            ));
        }
        self.config.keyring = Some(keyring);
        Ok(())
    }

    /// Replaces the addresses that join attempts go to (the node's own is skipped), e.g.
    /// with what the seeds' host names resolve to at `now`. An address not among the old ones
    /// is tried at the next [`handle_timeout`](Self::handle_timeout) (while the node is
    /// alone); otherwise the join back-off goes on.
    pub fn set_seeds(&mut self, now: Time, seeds: impl IntoIterator<Item = SocketAddr>) {
        let old = std::mem::take(&mut self.config.seeds);
        for seed in seeds {
            if seed != self.config.addr && !self.config.seeds.contains(&seed) {
                self.config.seeds.push(seed);
            }
        }
        if self.config.seeds.iter().any(|s| !old.contains(s)) {
            self.next_join = self.next_join.min(now);
        }
    }

    /// When the next join attempt is due, while the node is alone (it knows no live member
    /// and has not left), whether or not it has seeds to try; `None` otherwise.
    pub fn next_join(&self) -> Option<Time> {
        (!self.left && self.live_len() == 0).then_some(self.next_join)
    }

    /// This node's current generation (it grows if the cluster forgot this node and it had to
    /// come back).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The configuration in force.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The replicated state.
    pub fn state(&self) -> &ClusterState {
        self.engine.state()
    }

    /// Counters.
    pub fn stats(&self) -> &ClusterStats {
        &self.stats
    }

    /// How many times the replicated state changed (local writes, merges, heartbeats).
    pub fn changes(&self) -> u64 {
        self.engine.stats().state_changes
    }

    /// The largest value [`set`](Self::set) accepts for `key`, in bytes.
    pub fn max_value_len(&self, key: &str) -> usize {
        max_value_len(self.engine.message_budget(), key.len())
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Time {
        let mut t = self.engine.poll_timeout().min(self.next_tick);
        if let Some(swim) = &self.swim {
            t = t.min(swim.poll_timeout());
            if !self.left {
                t = t.min(self.next_sync);
            }
        }
        if self.joining() {
            t = t.min(self.next_join);
        }
        if let Some(due) = self.copies.next_due() {
            t = t.min(due);
        }
        t
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Hands back a datagram buffer once its bytes are sent (or handled): the next datagram
    /// is written into it, so a runtime that recycles sends without allocating.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && buf.capacity() <= 2 * self.config.mtu {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// The next membership event.
    pub fn poll_event(&mut self) -> Option<ClusterEvent> {
        crate::pop_releasing(&mut self.events)
    }

    fn joining(&self) -> bool {
        !self.left && self.live_len() == 0 && !self.config.seeds.is_empty()
    }

    /// How many members gossip goes to: SWIM's live list, or the φ view's.
    fn live_len(&self) -> usize {
        match &self.swim {
            Some(swim) => swim.live_len(),
            None => self.live.len(),
        }
    }

    /// The `i`th of [`live_len`](Self::live_len) live members.
    fn live_at(&self, i: usize) -> NodeId {
        match &self.swim {
            Some(swim) => swim.live_id(i),
            None => self.live[i],
        }
    }

    /// Whether `id` is on the live list (O(1) under SWIM).
    fn is_live_member(&self, id: NodeId) -> bool {
        match &self.swim {
            Some(swim) => swim.is_live(id),
            None => self.live.contains(&id),
        }
    }

    /// Runs whatever is due at `now`: the gossip round (after a heartbeat), membership upkeep,
    /// join attempts.
    pub fn handle_timeout(&mut self, now: Time) {
        self.send_due_copies(now);
        if self.swim.is_some() {
            self.swim_timeout(now);
            return;
        }
        if now >= self.engine.poll_timeout() && !self.left {
            let id = self.id;
            if self
                .stats
                .rounds
                .is_multiple_of(u64::from(self.config.heartbeat_rounds))
            {
                self.engine.write(now, &mut self.outbox, |s| s.beat(id));
            }
            self.engine.handle_timeout(now, &mut self.outbox);
            self.stats.rounds += 1;
            self.flush();
            self.gossip_to_dead();
        }
        if now >= self.next_tick {
            self.next_tick = now + Duration::from_millis(self.config.interval_ms);
            self.upkeep(now);
        }
        if self.joining() && now >= self.next_join {
            let seeds: Vec<SocketAddr> = self.config.seeds.clone();
            let own = self.own_record_push();
            for seed in seeds {
                if seed != self.config.addr {
                    // A full datagram first, so that the seed may answer our tiny Syn in full
                    // before we have proven we receive here (QUIC pads its first datagram).
                    let padding = vec![0; self.config.mtu - self.codec.overhead()];
                    self.send_raw(seed, EnvelopeKind::Padding, &padding);
                    self.send_syn(seed);
                    // Our own record too: the seed learns of us at once and spreads the news.
                    if let Some(msg) = &own {
                        self.send_raw(seed, EnvelopeKind::Gossip, msg);
                    }
                }
            }
            self.next_join = now + self.join_backoff;
            let max = Duration::from_millis(self.config.join_backoff_max_ms.max(1));
            self.join_backoff = (self.join_backoff * 2).min(max);
        }
        self.note_claims(now);
    }

    /// Handles one received datagram from `from`. `buf` is decrypted in place. On error the
    /// datagram was dropped, counted, and changed nothing.
    pub fn handle_datagram(
        &mut self,
        now: Time,
        from: SocketAddr,
        buf: &mut [u8],
    ) -> Result<(), DropReason> {
        self.stats.packets_in += 1;
        self.stats.bytes_in += buf.len() as u64;
        let result = self.dispatch(now, from, buf);
        if let Err(reason) = result {
            self.stats.drops.count(reason);
            log::debug!(
                "{}: dropped datagram from {from}: {reason}",
                self.config.name
            );
        }
        result
    }

    fn dispatch(&mut self, now: Time, from: SocketAddr, buf: &mut [u8]) -> Result<(), DropReason> {
        let datagram_len = buf.len();
        let env = self.codec.open(buf, self.config.mtu)?;
        if env.sender == self.id {
            return Err(DropReason::FromSelf);
        }
        if self.codec.encrypted()
            && !self
                .replay
                .accept(now, env.sender, env.generation, env.counter)
        {
            return Err(DropReason::Replayed);
        }
        if self.swim.is_none() && !self.is_member_at(env.sender, from) {
            // Everything an unproven address sends earns it replies (`node/credit.rs`).
            self.credit.earn(from, REFLECTION_FACTOR * datagram_len);
        }
        if env.kind == EnvelopeKind::Padding {
            return Ok(());
        }
        if self.swim.is_some() {
            match env.kind {
                EnvelopeKind::Swim => {
                    let (sender, generation, payload) = (env.sender, env.generation, env.payload);
                    return self.handle_swim(now, from, sender, generation, payload);
                }
                EnvelopeKind::Sync => return self.handle_sync(now, from, env.sender, env.payload),
                EnvelopeKind::Rebirth | EnvelopeKind::Padding => return Err(DropReason::Garbage),
                EnvelopeKind::Gossip | EnvelopeKind::Broadcast => {
                    if self
                        .state()
                        .is_forgotten(env.sender)
                        .is_some_and(|g| env.generation <= g)
                    {
                        return Err(DropReason::Forgotten);
                    }
                }
            }
        } else if matches!(env.kind, EnvelopeKind::Swim | EnvelopeKind::Sync) {
            return Err(DropReason::Garbage);
        }
        if matches!(env.kind, EnvelopeKind::Gossip | EnvelopeKind::Broadcast)
            && let Some(g) = self.state().is_forgotten(env.sender)
            && env.generation <= g
        {
            let mut payload = Vec::new();
            gossiper_types::codec::put_varint(&mut payload, env.generation);
            self.send_raw(from, EnvelopeKind::Rebirth, &payload);
            return Err(DropReason::Forgotten);
        }
        match env.kind {
            EnvelopeKind::Swim | EnvelopeKind::Sync | EnvelopeKind::Padding => {
                Err(DropReason::Garbage)
            }
            EnvelopeKind::Rebirth => {
                let mut r = Reader::new(env.payload);
                let g = r.varint().map_err(DropReason::from_decode)?;
                r.finish().map_err(DropReason::from_decode)?;
                if g == self.generation && !self.left {
                    // The cluster forgot this generation: come back as a newer one, through
                    // the same rate-limited path as any claim about us (one a second at most,
                    // however many peers say so).
                    log::debug!("{}: the cluster forgot generation {g}", self.config.name);
                    self.pending_claim = Some(self.pending_claim.map_or(g, |c| c.max(g)));
                    self.next_join = now;
                    self.join_backoff = Duration::from_millis(self.config.interval_ms);
                    self.note_claims(now);
                }
                Ok(())
            }
            EnvelopeKind::Gossip | EnvelopeKind::Broadcast => {
                let before = self.engine.stats().state_changes;
                let (origin, payload) = match env.kind {
                    EnvelopeKind::Broadcast => {
                        let Some((origin, push)) = env.payload.split_first_chunk::<8>() else {
                            return Err(DropReason::Garbage);
                        };
                        (Some(NodeId(u64::from_le_bytes(*origin))), push)
                    }
                    _ => (None, env.payload),
                };
                let kind = payload.first().and_then(|&k| MessageKind::try_from(k).ok());
                let is_push = kind == Some(MessageKind::Push);
                if origin.is_some() && !is_push {
                    return Err(DropReason::Garbage);
                }
                let sender = env.sender;
                let unverified = self.swim.is_none() && !self.is_member_at(sender, from);
                let queued = self.transmits.len();
                let handled = if unverified {
                    // Not proven to receive at `from` (it never answered us there): replies
                    // get what is left of REFLECTION_FACTOR times all it sent us (see
                    // `node/credit.rs`), so a forged source cannot aim our SynAcks at a third
                    // party. The peer's Ack to a short SynAck verifies it; full replies follow.
                    let envelope = datagram_len - payload.len();
                    let credit = self.credit.left(from);
                    self.engine.handle_message_limited(
                        now,
                        sender,
                        payload,
                        &mut self.outbox,
                        credit.saturating_sub(envelope),
                    )
                } else {
                    self.engine
                        .handle_message(now, sender, payload, &mut self.outbox)
                };
                if let Err(e) = handled {
                    self.outbox.clear();
                    return Err(match e {
                        EngineDrop::Malformed(d) => DropReason::from_decode(d),
                        EngineDrop::UnknownKind(_) => DropReason::Garbage,
                        EngineDrop::Oversized(_) => DropReason::Oversized,
                        EngineDrop::FromSelf => DropReason::FromSelf,
                    });
                }
                // Only a well-formed message teaches us where its sender is (a newer
                // generation may have moved).
                let known = self.addrs.get(&env.sender).copied();
                // A live member does not move on one datagram's word: a forger claiming its
                // id from elsewhere would get its traffic. It moves once it is no longer
                // alive here (a restart elsewhere is believed after its old process died).
                let alive_elsewhere = known.is_some_and(|(a, _)| a != from)
                    && self
                        .members
                        .get(&env.sender)
                        .is_some_and(|m| m.status == MemberStatus::Alive);
                if self.swim.is_none()
                    && matches!(kind, Some(MessageKind::SynAck | MessageKind::Ack))
                    && known.is_some_and(|(a, _)| a == from)
                {
                    // An answer to our Syn or SynAck: the peer receives at this address.
                    self.verified.insert(env.sender, from);
                }
                if self.swim.is_none() && known.is_none_or(|(_, g)| env.generation > g) {
                    let full = known.is_none() && self.addrs.len() >= self.address_book_bound();
                    if alive_elsewhere {
                        self.stats.address_conflicts += 1;
                    } else if full {
                        // Spoofed sender ids must not grow the book without bound; a real
                        // newcomer is still learned from its gossiped `__addr`.
                        self.stats.senders_refused += 1;
                    } else {
                        self.addrs.insert(env.sender, (from, env.generation));
                    }
                }
                // Heartbeats ride in digests too (Syn and SynAck), which the engine decoded.
                let is_syn = kind == Some(MessageKind::Syn);
                if let Some(d) = self.engine.peer_digest() {
                    self.scratch_digest.clone_from(d);
                    let d = std::mem::take(&mut self.scratch_digest);
                    self.engine
                        .write(now, &mut self.outbox, |s| s.absorb_heartbeats(&d));
                    let known = d.compact.as_ref().map_or(d.nodes.len(), Vec::len);
                    // The snapshot (many datagrams) only to a peer that answered us from this
                    // address before: a forged Syn must not aim it at a third party. (A Syn
                    // verifies nothing, so asking now is asking before it arrived.)
                    if is_syn
                        && !d.sampled
                        && known * 2 < self.state().len()
                        && self.is_member_at(sender, from)
                    {
                        self.send_snapshot(sender, &d);
                    }
                    self.scratch_digest = d;
                }
                let changed = self.engine.stats().state_changes > before;
                self.note_claims(now);
                if changed && is_push {
                    // Rumor: pass news on at once, each node once per piece of news.
                    let payload = payload.to_vec();
                    match origin {
                        Some(origin) => self.broadcast(now, origin, &payload, Some(sender)),
                        None => self.forward(&payload, sender),
                    }
                }
                self.flush();
                if unverified {
                    let sent = self.transmits.iter().skip(queued);
                    let sent = sent.filter(|t| t.to == from).map(|t| t.bytes.len()).sum();
                    self.credit.spend(from, sent);
                }
                if changed
                    && self.swim.is_some()
                    && matches!(kind, Some(MessageKind::SynAck | MessageKind::Ack))
                {
                    // The exchange a fingerprint mismatch opened brought news: there may be
                    // more than one datagram held, so compare again at once.
                    self.sync_followup(from);
                }
                if changed && self.swim.is_none() {
                    let fresh = self.sync_members(now);
                    if !is_push {
                        self.announce(&fresh);
                    }
                }
                Ok(())
            }
        }
    }

    /// Writes `key = value` on this node, pushes it to `fanout` peers at once, and deletes it
    /// after `ttl` if given. Returns the new version.
    pub fn set(
        &mut self,
        now: Time,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<u64, WriteError> {
        check_user_key(key)?;
        let max = self.max_value_len(key);
        if value.len() > max {
            return Err(WriteError::ValueTooLarge {
                len: value.len(),
                max,
            });
        }
        self.ensure_own_record(now);
        let id = self.id;
        if !self.state().can_write(id) {
            return Err(WriteError::VersionsExhausted);
        }
        let before = self.digest();
        let version = self
            .engine
            .write(now, &mut self.outbox, |s| s.set(id, key, value.to_vec()));
        match ttl {
            Some(ttl) => {
                self.ttls.insert(key.to_owned(), now + ttl);
            }
            None => {
                self.ttls.remove(key);
            }
        }
        self.broadcast_local(now, &before);
        Ok(version)
    }

    /// Deletes `key` on this node (a tombstone) and pushes that at once. Returns the
    /// tombstone's version, or `None` if the key had no live value.
    pub fn delete(&mut self, now: Time, key: &str) -> Result<Option<u64>, WriteError> {
        check_user_key(key)?;
        self.ttls.remove(key);
        self.ensure_own_record(now);
        let id = self.id;
        if !self.state().can_write(id) {
            return Err(WriteError::VersionsExhausted);
        }
        let before = self.digest();
        let version = self
            .engine
            .write(now, &mut self.outbox, |s| s.delete(id, key));
        if version.is_some() {
            self.broadcast_local(now, &before);
        }
        Ok(version)
    }

    /// Announces a graceful leave: peers record this node as *left*. Stops gossip rounds;
    /// flush [`poll_transmit`](Self::poll_transmit) before exiting.
    pub fn leave(&mut self, now: Time) {
        if self.left {
            return;
        }
        if let Some(swim) = &mut self.swim {
            swim.leave(now);
            self.left = true;
            self.drain_swim(now);
            return;
        }
        let id = self.id;
        let before = self.digest();
        self.engine.write(now, &mut self.outbox, |s| {
            s.set(id, KEY_LEFT, b"1".to_vec())
        });
        self.push_local(&before, 64);
        self.left = true;
    }

    /// True once [`leave`](Self::leave) was called.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// Every known member, this node first, then by name.
    pub fn members(&self, now: Time) -> Vec<MemberInfo> {
        let mut out = vec![MemberInfo {
            id: self.id,
            name: self.config.name.clone(),
            addr: Some(self.config.addr),
            status: if self.left {
                MemberStatus::Left
            } else {
                MemberStatus::Alive
            },
            generation: self.generation,
            incarnation: self.swim.as_deref().map_or(0, Swim::incarnation),
            heartbeat: self.state().node(self.id).map_or(0, |r| r.heartbeat),
            phi: 0.0,
        }];
        if let Some(swim) = &self.swim {
            out.extend(self.swim_members(swim));
            return out;
        }
        let mut others: Vec<MemberInfo> = self
            .members
            .iter()
            .map(|(&id, m)| MemberInfo {
                id,
                name: self
                    .state()
                    .node(id)
                    .and_then(|r| r.name())
                    .map_or_else(|| id.to_string(), str::to_owned),
                addr: self.addrs.get(&id).map(|&(a, _)| a),
                status: m.status,
                generation: m.generation,
                incarnation: 0,
                heartbeat: m.heartbeat,
                phi: match m.status {
                    MemberStatus::Left => 0.0,
                    _ => m.detector.phi(now),
                },
            })
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(others);
        out
    }

    /// How many members (this node included) have each status, in [`MemberStatus::ALL`] order.
    pub fn status_counts(&self) -> StatusCounts {
        let mut counts = StatusCounts::default();
        counts.add(if self.left {
            MemberStatus::Left
        } else {
            MemberStatus::Alive
        });
        match &self.swim {
            Some(swim) => swim.statuses().for_each(|s| counts.add(s)),
            None => self.members.values().for_each(|m| counts.add(m.status)),
        }
        counts
    }

    /// SWIM's counters, under [`Detector::Swim`].
    pub fn swim_stats(&self) -> Option<&crate::SwimStats> {
        self.swim.as_deref().map(Swim::stats)
    }

    /// The generation this node holds for member `id` (its own included), if it knows `id`.
    pub fn member_generation(&self, id: NodeId) -> Option<u64> {
        if id == self.id {
            return Some(self.generation);
        }
        match &self.swim {
            Some(swim) => swim.member_generation(id),
            None => self.members.get(&id).map(|m| m.generation),
        }
    }

    /// The name of member `id` (this node's own included), if known yet.
    pub fn member_name(&self, id: NodeId) -> Option<&str> {
        if id == self.id {
            return Some(&self.config.name);
        }
        match &self.swim {
            Some(swim) => swim.member_name(id),
            None => self.state().node(id).and_then(|r| r.name()),
        }
    }

    /// The id of the member named `name`, if known (or this node).
    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        let id = NodeId::from_name(name);
        let known = match &self.swim {
            Some(swim) => swim.member_generation(id).is_some(),
            None => self.state().node(id).is_some(),
        };
        (id == self.id || known).then_some(id)
    }

    fn digest(&self) -> ClusterDigest {
        let mut d = ClusterDigest::default();
        self.state().digest_into(&mut d);
        d
    }

    /// The engine's Push of what holders of `before` lack; `None` when they lack nothing.
    fn push_since(&mut self, before: &ClusterDigest) -> Option<Vec<u8>> {
        let mut msg = Vec::new();
        let rotation = self.rng.random::<u64>();
        let written = self
            .engine
            .encode_message(MessageKind::Push, before, rotation, &mut msg);
        (written > 0).then_some(msg)
    }

    /// Broadcasts what holders of `before` lack (a fresh write of this node's) down the tree.
    fn broadcast_local(&mut self, now: Time, before: &ClusterDigest) {
        if let Some(msg) = self.push_since(before) {
            self.broadcast(now, self.id, &msg, None);
        }
    }

    /// Pushes what holders of `before` lack to up to `count` live peers.
    fn push_local(&mut self, before: &ClusterDigest, count: usize) {
        let Some(msg) = self.push_since(before) else {
            return;
        };
        let peers = self.pick_live(count, None);
        for to in peers {
            if let Some(addr) = self.addr_of(to) {
                self.send_raw(addr, EnvelopeKind::Gossip, &msg);
            }
        }
    }

    /// How long a member stays suspect, with no newer heartbeat, before φ ≥ threshold may
    /// declare it dead: `SUSPICION_MULT × log10(N) × interval` (Lifeguard's scaling; N counts
    /// every member this node knows, at least 10). A newer heartbeat in that time clears the
    /// suspicion; a member whose heartbeat has not advanced since it was learned of gets twice
    /// the period. In a large cluster, or just after a node is first learned of, heartbeats of a
    /// peer can arrive much less regularly than the detector's model assumes; the period keeps
    /// that from becoming a dead verdict, at the cost of a later detection (about 0.6 s at
    /// N = 100 with a 100 ms interval, 0.75 s at N = 300).
    fn suspicion_period(&self) -> Duration {
        let n = (self.members.len() + 1).max(10) as f64;
        let ms = SUSPICION_MULT * n.log10() * self.config.interval_ms as f64;
        Duration::from_micros((ms * 1_000.0) as u64)
    }

    /// Peers a fresh write is pushed or forwarded to: with each node forwarding once, a node is
    /// missed with probability about e^-k, so k = ln(n) + 2 reaches all n nodes in a few hops
    /// most of the time (anti-entropy catches the rest within a round or two).
    fn rumor_fanout(&self) -> usize {
        let n = (self.live_len() + 1) as f64;
        (self.config.fanout as usize).max(n.ln().ceil() as usize + 2)
    }

    fn forward(&mut self, payload: &[u8], except: NodeId) {
        let peers = self.pick_live(self.rumor_fanout(), Some(except));
        for to in peers {
            if let Some(addr) = self.addr_of(to) {
                self.stats.forwarded += 1;
                self.send_raw(addr, EnvelopeKind::Gossip, payload);
            }
        }
    }

    /// Up to `count` distinct random live members other than `except`, drawn without copying
    /// the live list (O(count), whatever N).
    /// One random live member, without allocating (the idle path's fingerprint exchanges).
    fn pick_one_live(&mut self) -> Option<NodeId> {
        if let Some(swim) = &mut self.swim {
            return swim.pick_one_live();
        }
        let n = self.live_len();
        (n > 0).then(|| {
            let i = self.rng.random_range(0..n);
            self.live_at(i)
        })
    }

    /// Up to `count` random live members; under SWIM those heard from directly first
    /// (see [`Swim::pick_live_ids`]).
    fn pick_live(&mut self, count: usize, except: Option<NodeId>) -> Vec<NodeId> {
        if let Some(swim) = &mut self.swim {
            let mut picks = Vec::with_capacity(count);
            swim.pick_live_ids(count, except, &mut picks);
            return picks;
        }
        let n = self.live_len();
        let available = n - usize::from(except.is_some_and(|e| self.is_live_member(e)));
        let k = count.min(available);
        let mut picks = Vec::with_capacity(k);
        if k * 2 >= n {
            // Most of the list: a partial shuffle of a copy is as cheap.
            let mut pool: Vec<NodeId> = (0..n)
                .map(|i| self.live_at(i))
                .filter(|&id| Some(id) != except)
                .collect();
            for i in 0..k {
                let j = self.rng.random_range(i..pool.len());
                pool.swap(i, j);
            }
            pool.truncate(k);
            return pool;
        }
        while picks.len() < k {
            let i = self.rng.random_range(0..n);
            let id = self.live_at(i);
            if Some(id) != except && !picks.contains(&id) {
                picks.push(id);
            }
        }
        picks
    }

    /// A push of this node's own record (as much as fits), for seeds.
    fn own_record_push(&mut self) -> Option<Vec<u8>> {
        let mut d = self.digest();
        d.nodes.retain(|n| n.id != self.id);
        let mut msg = Vec::new();
        let rotation = self.rng.random::<u64>();
        let written = self
            .engine
            .encode_message(MessageKind::Push, &d, rotation, &mut msg);
        (written > 0).then_some(msg)
    }

    fn send_syn(&mut self, to: SocketAddr) {
        let mut msg = Vec::new();
        let rotation = self.rng.random();
        self.engine.encode_message(
            MessageKind::Syn,
            &ClusterDigest::default(),
            rotation,
            &mut msg,
        );
        self.send_raw(to, EnvelopeKind::Gossip, &msg);
    }

    /// Now and then a round also contacts a dead node, so that partitions heal (chitchat's
    /// heuristic: probability dead / (live + 1)).
    fn gossip_to_dead(&mut self) {
        let dead: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, m)| m.status == MemberStatus::Dead)
            .map(|(&id, _)| id)
            .collect();
        if dead.is_empty() {
            return;
        }
        let p = dead.len() as f64 / (self.live.len() + 1) as f64;
        if self.rng.random::<f64>() < p {
            let pick = dead[self.rng.random_range(0..dead.len())];
            if let Some(&(addr, _)) = self.addrs.get(&pick) {
                self.send_syn(addr);
            }
        }
    }

    /// Where `id` is reached: SWIM's table, or the address book under φ.
    fn addr_of(&self, id: NodeId) -> Option<SocketAddr> {
        match &self.swim {
            Some(swim) => swim.member_addr(id),
            None => self.addrs.get(&id).map(|&(a, _)| a),
        }
    }

    /// Most entries of the φ address book: room for every node the state holds, and as many
    /// senders again not yet in it.
    fn address_book_bound(&self) -> usize {
        2 * self.state().len() + 1_024
    }

    /// Entries in the address book (SWIM: its member table), for bounds checks and metrics.
    pub fn address_book_len(&self) -> usize {
        match &self.swim {
            Some(swim) => swim.member_count(),
            None => self.addrs.len(),
        }
    }

    /// Whether `id` is a live member reached at `from` that proved it receives there (it
    /// answered a ping, under SWIM; a SynAck or Ack answered one of our messages, under φ).
    fn is_member_at(&self, id: NodeId, from: SocketAddr) -> bool {
        match &self.swim {
            Some(swim) => swim.is_verified(id, from),
            None => {
                self.verified.get(&id) == Some(&from)
                    && self
                        .members
                        .get(&id)
                        .is_some_and(|m| m.status == MemberStatus::Alive)
            }
        }
    }

    fn send_raw(&mut self, to: SocketAddr, kind: EnvelopeKind, payload: &[u8]) {
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.reserve((payload.len() + self.codec.overhead()).max(MIN_BUFFER));
        self.codec
            .seal(kind, self.id, self.generation, payload, &mut bytes);
        self.stats.packets_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        self.transmits.push_back(Transmit { to, bytes });
    }

    /// Wraps the engine's datagrams in envelopes addressed by the address book.
    fn flush(&mut self) {
        let outbox = std::mem::take(&mut self.outbox);
        for (to, payload) in outbox.iter() {
            match self.addr_of(to) {
                Some(addr) => self.send_raw(addr, EnvelopeKind::Gossip, payload),
                None => self.stats.no_route += 1,
            }
        }
        self.outbox = outbox;
        self.outbox.clear();
    }

    fn min_std_us(&self) -> u64 {
        match self.config.min_std_ms {
            0 => 2 * self.config.interval_ms * 1_000,
            ms => ms * 1_000,
        }
    }

    /// Folds what the replicated state says (new nodes, generations, heartbeats, leaves,
    /// addresses) into the membership view.
    fn sync_members(&mut self, now: Time) -> Vec<NodeId> {
        let mut fresh_ids = Vec::new();
        let interval_us = self.config.interval_ms * 1_000 * u64::from(self.config.heartbeat_rounds);
        let min_std = self.min_std_us();
        let me = self.id;
        let mut seen = Vec::new();
        let nodes: Vec<(NodeId, u64, u64, bool, Option<SocketAddr>)> = self
            .engine
            .state()
            .nodes()
            .filter(|&(id, _)| id != me)
            .map(|(id, r)| (id, r.generation, r.heartbeat, r.has_left(), r.addr()))
            .collect();
        for (id, generation, heartbeat, left, addr) in nodes {
            seen.push(id);
            if let Some(addr) = addr
                && self.addrs.get(&id).is_none_or(|&(_, g)| generation >= g)
            {
                self.addrs.insert(id, (addr, generation));
            }
            let fresh = |status| Member {
                generation,
                heartbeat,
                detector: PhiDetector::new(now, interval_us, 100, min_std),
                status,
                since: now,
                heard: false,
            };
            let status_new = if left {
                MemberStatus::Left
            } else {
                MemberStatus::Alive
            };
            match self.members.get_mut(&id) {
                Some(m) if m.generation == generation => {
                    if heartbeat > m.heartbeat {
                        m.heartbeat = heartbeat;
                        m.detector.heartbeat(now);
                        m.heard = true;
                        if matches!(m.status, MemberStatus::Dead | MemberStatus::Suspect) && !left {
                            m.status = MemberStatus::Alive;
                            m.since = now;
                            self.events.push_back(ClusterEvent::MemberUp(id));
                        }
                    }
                    if left && m.status != MemberStatus::Left {
                        m.status = MemberStatus::Left;
                        m.since = now;
                        self.events.push_back(ClusterEvent::MemberLeft(id));
                    }
                }
                Some(m) if m.generation > generation => {}
                _ => {
                    fresh_ids.push(id);
                    self.members.insert(id, fresh(status_new));
                    self.events.push_back(if left {
                        ClusterEvent::MemberLeft(id)
                    } else {
                        ClusterEvent::MemberUp(id)
                    });
                }
            }
        }
        if seen.len() != self.members.len() {
            self.members.retain(|id, _| seen.binary_search(id).is_ok());
        }
        self.refresh_live();
        fresh_ids
    }

    /// Tells `rumor_fanout` peers about nodes (or generations) this node just learned of by
    /// anti-entropy, as a push they forward in turn: a joiner is known everywhere within a few
    /// network hops instead of a few rounds.
    fn announce(&mut self, fresh: &[NodeId]) {
        if fresh.is_empty() {
            return;
        }
        let mut d = self.digest();
        d.nodes.retain(|n| fresh.binary_search(&n.id).is_err());
        let mut msg = Vec::new();
        let rotation = self.rng.random::<u64>();
        if self
            .engine
            .encode_message(MessageKind::Push, &d, rotation, &mut msg)
            == 0
        {
            return;
        }
        let peers = self.pick_live(self.rumor_fanout(), None);
        for to in peers {
            if fresh.binary_search(&to).is_ok() {
                continue;
            }
            if let Some(addr) = self.addr_of(to) {
                self.stats.forwarded += 1;
                self.send_raw(addr, EnvelopeKind::Gossip, &msg);
            }
        }
    }

    /// Answers a joiner's Syn (a digest knowing far fewer nodes than we do) with up to 16
    /// datagrams of our state, so it learns the cluster in one exchange instead of many rounds.
    /// Sent as pull replies: applied, never forwarded.
    fn send_snapshot(&mut self, to: NodeId, peer: &ClusterDigest) {
        let Some(addr) = self.addr_of(to) else {
            return;
        };
        let n = self.state().len() as u64;
        let mut rotation = self.rng.random::<u64>() % n.max(1);
        let mut covered = 0;
        let mut msg = Vec::new();
        for _ in 0..16 {
            let written =
                self.engine
                    .encode_message(MessageKind::PullReply, peer, rotation, &mut msg);
            if written == 0 {
                break;
            }
            self.send_raw(addr, EnvelopeKind::Gossip, &msg);
            // Blocks come in node order from `rotation`: the next datagram starts after them.
            let blocks = match Message::decode(&msg) {
                Ok(Message::PullReply { delta }) => ClusterState::delta_blocks(delta).max(1),
                _ => 1,
            } as u64;
            covered += blocks;
            rotation = rotation.wrapping_add(blocks);
            if covered >= n {
                break;
            }
        }
    }

    fn refresh_live(&mut self) {
        let live: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, m)| matches!(m.status, MemberStatus::Alive | MemberStatus::Suspect))
            .map(|(&id, _)| id)
            .collect();
        if live != self.live {
            if self.live.is_empty() && !live.is_empty() {
                self.join_backoff = Duration::from_millis(self.config.interval_ms);
            }
            self.live = live;
            self.engine.set_peers(Peers::List(self.live.clone()));
        }
    }

    /// Periodic upkeep: statuses from φ, GC of dead/left nodes and tombstones, TTL expiry.
    fn upkeep(&mut self, now: Time) {
        let threshold = self.config.phi_threshold;
        let grace = Duration::from_millis(self.config.dead_grace_ms);
        let suspicion = self.suspicion_period();
        let mut forget = Vec::new();
        for (&id, m) in &mut self.members {
            let status = match m.status {
                MemberStatus::Left => MemberStatus::Left,
                _ => {
                    let phi = m.detector.phi(now);
                    // A member never heard from since it was learned of gets twice the period.
                    let period = if m.heard { suspicion } else { suspicion * 2 };
                    let suspected_long_enough =
                        m.status == MemberStatus::Suspect && now - m.since >= period;
                    if phi >= threshold && (m.status == MemberStatus::Dead || suspected_long_enough)
                    {
                        MemberStatus::Dead
                    } else if phi >= threshold {
                        // Past the threshold but not yet suspected for the whole period.
                        MemberStatus::Suspect
                    } else if phi >= threshold / 2.0 && m.status != MemberStatus::Dead {
                        MemberStatus::Suspect
                    } else if m.status == MemberStatus::Dead {
                        MemberStatus::Dead // only a fresh heartbeat revives
                    } else {
                        MemberStatus::Alive
                    }
                }
            };
            if status != m.status {
                m.status = status;
                m.since = now;
                self.events.push_back(match status {
                    MemberStatus::Alive => ClusterEvent::MemberUp(id),
                    MemberStatus::Suspect => ClusterEvent::MemberSuspect(id),
                    MemberStatus::Dead => ClusterEvent::MemberDown(id),
                    MemberStatus::Left => ClusterEvent::MemberLeft(id),
                });
            }
            if matches!(m.status, MemberStatus::Dead | MemberStatus::Left) && now - m.since >= grace
            {
                forget.push(id);
            }
        }
        for id in forget {
            self.members.remove(&id);
            self.addrs.remove(&id);
            self.verified.remove(&id);
            self.engine
                .write(now, &mut self.outbox, |s| s.forget(id, now));
            self.events.push_back(ClusterEvent::MemberRemoved(id));
        }
        self.refresh_live();
        self.upkeep_state(now);
    }

    /// Deletes the keys whose TTL ran out.
    fn expire_ttls(&mut self, now: Time) {
        let expired: Vec<String> = self
            .ttls
            .iter()
            .filter(|&(_, &at)| at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            let _ = self.delete(now, &key);
        }
        self.outbox.clear();
    }
}
