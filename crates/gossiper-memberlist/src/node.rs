//! [`Node`]: memberlist's SWIM state machine with Serf on top, sans-IO (memberlist-wire.md §5,
//! §6). It is handed time, datagrams, stream bytes and commands; it hands back datagrams,
//! streams to open, the next deadline and events. The runtime owns sockets and the clock.
//!
//! What it does, as memberlist 0.2.2 does: answers pings (UDP and TCP) and indirect pings
//! (with nacks), probes one member per interval (direct, then indirect and TCP) on a period
//! Lifeguard's local health stretches ([`Awareness`]), suspects and declares dead with
//! Lifeguard's shrinking suspicion timeout, refutes accusations about itself with a higher
//! incarnation, gossips and piggybacks broadcasts, answers and starts push-pulls.
//! Serf's part: tags in meta, join and leave intents, user events with their Lamport clock;
//! queries with their filters and relays, and our own (`node/queries.rs`); key rotation by
//! Serf's key queries (`node/keys.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use gossiper_types::Time;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::awareness::Awareness;
use crate::config::Config;
use crate::crypto::OVERHEAD;
use crate::messages::{
    Accusation, AckResp, Alive, ErrResp, IndirectPingReq, Message, MessageType, NackResp,
    NodeState, Ping, PushNodeState,
};
use crate::msgpack::{DecodeError, Writer};
use crate::packet::{
    MAX_COMPOUND_PARTS, StreamMessage, compound, decode_datagram, decode_stream, encode_push_pull,
    with_crc,
};
use crate::queue::{Queue, retransmit_limit};
use crate::serf::{LeaveOutcome, Serf, SerfStatus, UserEvent};
use crate::serf_wire::{
    META_MAX, QUERY_RESPONSE_SIZE_LIMIT, SerfMessage, decode_serf, decode_serf_push_pull,
    decode_tags, encode_join, encode_leave, encode_query_response, encode_tags, encode_user_event,
};

mod keys;
mod queries;

pub use queries::MAX_RELAY_FACTOR;

/// The version vector we advertise: memberlist 1..5 speaking 2, Serf delegate 2..5 speaking 5.
pub const VSN: [u8; 6] = [1, 5, 2, 2, 5, 5];

/// Relayed indirect probes in flight at most; more requests are dropped.
const MAX_RELAYS: usize = 256;
/// Outbound streams in flight at most.
const MAX_STREAMS: usize = 64;

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub to: SocketAddr,
    /// What (already framed, CRC'd and sealed).
    pub bytes: Vec<u8>,
}

/// A TCP exchange for the runtime: connect to `to`, write `bytes`, read one reply frame
/// (see [`Node::stream_frame_len`]) within the timing's `tcp_timeout`, and hand it to
/// [`Node::handle_stream_reply`] with this `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// Names the exchange in the reply.
    pub id: u64,
    /// Where.
    pub to: SocketAddr,
    /// The request, framed and sealed.
    pub bytes: Vec<u8>,
}

/// What the node tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member's Serf status, address, tags or incarnation changed.
    Member(Member),
    /// A user event arrived (or we sent one).
    User(UserEvent),
    /// A join through `addr` succeeded (`Ok`) or failed.
    Joined {
        /// The seed.
        addr: SocketAddr,
        /// The error, if it failed.
        result: Result<(), String>,
    },
    /// A query we asked ([`Node::query`], [`Node::key_query`]) is over: who acknowledged and
    /// answered.
    QueryFinished(crate::outgoing::QueryResult),
    /// An ack or answer to a streamed query of ours ([`QueryParams::stream`](crate::QueryParams::stream),
    /// every key query) arrived.
    QueryReply(crate::outgoing::QueryReply),
    /// A key query changed the keyring to `keys` (primary first); with
    /// [`Config::persist_keyring`] the runtime saves them and reports back with
    /// [`Node::keyring_persisted`] and this `ticket`.
    KeyringChanged {
        /// Names this change in [`Node::keyring_persisted`].
        ticket: u64,
        /// The keys now, primary first.
        keys: Vec<Vec<u8>>,
    },
}

/// A member as the Serf layer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its Serf status.
    pub status: SerfStatus,
    /// Its memberlist incarnation.
    pub incarnation: u32,
    /// Its version vector.
    pub vsn: Vec<u8>,
}

/// Counters of what came in and what was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub datagrams: u64,
    /// Datagrams dropped whole (undecryptable, bad CRC, no message in them).
    pub bad_datagrams: u64,
    /// Messages inside datagrams that did not decode.
    pub bad_messages: u64,
    /// Datagrams or streams that no key opened, or plaintext when a key is required.
    pub decrypt_failures: u64,
    /// Streams answered.
    pub streams: u64,
    /// Streams refused (bad frame, wrong key, not a request).
    pub bad_streams: u64,
    /// Serf messages that did not decode.
    pub bad_serf: u64,
    /// Alives refused for a conflicting address.
    pub conflicts: u64,
    /// Times we refuted an accusation.
    pub refutes: u64,
    /// Nodes not admitted because the table was full.
    pub table_full: u64,
    /// Queries answered (beyond the ack).
    pub query_answers: u64,
    /// Answers not sent: over Serf's response size limit.
    pub query_answers_too_large: u64,
    /// Probes run on a stretched period because the health score was above 0 (memberlist's
    /// `memberlist.degraded.probe`).
    pub degraded_probes: u64,
    /// Nacks received for our own probes (a helper could not reach the target either).
    pub nacks: u64,
    /// Queries not acted on: a filter we could not read, or a tag expression we would not
    /// compile (malformed, over the length, size or nesting bound).
    pub bad_filters: u64,
    /// Acks and answers relayed for others' queries through other members (relay factor).
    pub relays_sent: u64,
    /// Relayed responses passed on to their destination.
    pub relays_forwarded: u64,
    /// Relays dropped: not a query response, too large, or not to a member we know.
    pub relays_refused: u64,
    /// Queries whose relay factor was cut to [`MAX_RELAY_FACTOR`].
    pub relay_factor_capped: u64,
    /// Acks collected for our own queries.
    pub query_acks: u64,
    /// Answers collected for our own queries.
    pub query_responses: u64,
    /// Acks and answers for no open query of ours (late, duplicate or stray).
    pub stray_responses: u64,
    /// Keyring changes made by key queries.
    pub key_changes: u64,
    /// Key queries refused (no keyring, bad key, the primary, unknown key).
    pub key_changes_refused: u64,
    /// Key queries whose request did not decode.
    pub bad_key_queries: u64,
}

#[derive(Debug, Clone)]
struct NodeEntry {
    addr: Vec<u8>,
    port: u16,
    meta: Vec<u8>,
    vsn: Vec<u8>,
    incarnation: u32,
    state: NodeState,
    changed: Time,
}

impl NodeEntry {
    fn socket(&self) -> Option<SocketAddr> {
        ip_of(&self.addr).map(|ip| SocketAddr::new(ip, self.port))
    }
    fn pmax(&self) -> u8 {
        self.vsn.get(1).copied().unwrap_or(0)
    }
}

/// An IP from memberlist's 4- or 16-byte form (IPv4-mapped read as IPv4).
pub fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let mut b = [0; 16];
            b.copy_from_slice(bytes);
            let v6 = Ipv6Addr::from(b);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

pub(crate) fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[derive(Debug)]
struct Probe {
    target: String,
    seq: u32,
    indirect_at: Option<Time>,
    end_at: Time,
    acked: bool,
    /// Helpers asked for a nack (those speaking protocol 4 or later).
    expected_nacks: u32,
    /// Nacks heard back, at most `indirect_checks + 1` (memberlist's channel size).
    nacks: u32,
}

#[derive(Debug)]
struct Relay {
    seq: u32,
    orig_seq: u32,
    to: SocketAddr,
    nack: bool,
    deadline: Time,
}

#[derive(Debug)]
struct Suspicion {
    start: Time,
    min: Duration,
    max: Duration,
    k: u32,
    confirmations: Vec<String>,
    deadline: Time,
    changed: Time,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    PushPull { join: bool },
    Ping { seq: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// Not leaving.
    No,
    /// Serf's leave intent is on its way (queue id), until the deadline.
    Intent(u64, Time),
    /// memberlist's dead-about-ourselves is on its way.
    Dead(u64, Time),
    /// Staying a moment to answer probes, then done.
    Propagate(Time),
    /// Left.
    Done,
}

/// A memberlist + Serf node.
pub struct Node {
    config: Config,
    rng: Pcg64,
    nonce_rng: Pcg64,
    addr: Vec<u8>,
    meta: Vec<u8>,
    incarnation: u32,
    nodes: BTreeMap<String, NodeEntry>,
    serf: Serf,
    queue: Queue,
    seq: u32,
    probe_order: Vec<String>,
    probe_index: usize,
    probe: Option<Probe>,
    next_probe: Time,
    next_gossip: Time,
    /// When the last gossip round went out (see [`early_gossip`](Node::early_gossip)).
    last_gossip: Time,
    next_push_pull: Time,
    next_reconnect: Time,
    relays: Vec<Relay>,
    suspicions: BTreeMap<String, Suspicion>,
    awareness: Awareness,
    /// Our own queries, collecting, by `(ltime, id)`.
    asks: BTreeMap<(u64, u32), queries::Ask>,
    /// Key-query answers waiting for the keyring to be saved, by ticket.
    key_answers: BTreeMap<u64, keys::KeyAnswer>,
    next_ticket: u64,
    pending: BTreeMap<u64, (Pending, SocketAddr, Time)>,
    next_stream_id: u64,
    leave: Leave,
    joined: bool,
    transmits: VecDeque<Transmit>,
    streams: VecDeque<StreamRequest>,
    events: VecDeque<Event>,
    /// What each member looked like when last told in an [`Event::Member`].
    told: BTreeMap<String, Member>,
    stats: Stats,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.config.name)
            .field("incarnation", &self.incarnation)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node at time `now`. `seed` drives every random choice (probe order, peers, stagger);
    /// `nonce_seed` only the AES-GCM nonces, and must differ on every start (the runtime
    /// draws it from the OS), since a repeated nonce under one key breaks AES-GCM.
    pub fn new(config: Config, now: Time, seed: u64, nonce_seed: [u8; 32]) -> Result<Node, String> {
        if config.name.is_empty() {
            return Err("a node needs a name".into());
        }
        let meta = encode_tags(&config.tags);
        if meta.len() >= META_MAX {
            return Err(format!(
                "tags take {} bytes encoded: at most {} fit",
                meta.len(),
                META_MAX - 1
            ));
        }
        for (name, response) in &config.query_responses {
            let worst = encode_query_response(u64::MAX, u32::MAX, &config.name, 0, Some(response));
            if worst.len() > QUERY_RESPONSE_SIZE_LIMIT {
                return Err(format!(
                    "the response to query {name:?} takes {} bytes encoded: Serf accepts at most {QUERY_RESPONSE_SIZE_LIMIT}",
                    worst.len()
                ));
            }
        }
        if config.addr.ip().is_unspecified() || config.addr.port() == 0 {
            return Err(format!(
                "advertise a reachable address, not {}",
                config.addr
            ));
        }
        let mut rng = Pcg64::seed_from_u64(seed);
        let t = &config.timing;
        let stagger = |rng: &mut Pcg64, d: Duration| now + d.mul_f64(rng.random::<f64>());
        let next_probe = stagger(&mut rng, t.probe_interval);
        let next_gossip = stagger(&mut rng, t.gossip_interval);
        let next_push_pull = stagger(&mut rng, t.push_pull_interval);
        let next_reconnect = now + t.reconnect_interval;
        let mut serf = Serf::new(config.event_buffer);
        serf.node_join(&config.name);
        let seq = rng.random();
        Ok(Node {
            addr: ip_bytes(config.addr.ip()),
            meta,
            incarnation: 1,
            nodes: BTreeMap::new(),
            serf,
            queue: Queue::default(),
            seq,
            probe_order: Vec::new(),
            probe_index: 0,
            probe: None,
            next_probe,
            next_gossip,
            last_gossip: now,
            next_push_pull,
            next_reconnect,
            relays: Vec::new(),
            suspicions: BTreeMap::new(),
            awareness: Awareness::new(t.awareness_max_multiplier),
            asks: BTreeMap::new(),
            key_answers: BTreeMap::new(),
            next_ticket: 0,
            pending: BTreeMap::new(),
            next_stream_id: 0,
            leave: Leave::No,
            joined: false,
            transmits: VecDeque::new(),
            streams: VecDeque::new(),
            events: VecDeque::new(),
            told: BTreeMap::new(),
            stats: Stats::default(),
            nonce_rng: Pcg64::from_seed(nonce_seed),
            rng,
            config,
        })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Its incarnation now.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// What was received and refused.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Lifeguard's local health score: 0 healthy, up to `awareness_max_multiplier − 1`
    /// (memberlist's `GetHealthScore`).
    pub fn health_score(&self) -> u32 {
        self.awareness.score()
    }

    /// The probe period now: the probe interval stretched by the health score
    /// (`ScaleTimeout`); it is also how long a probe waits for an ack, direct or relayed.
    pub fn probe_period(&self) -> Duration {
        self.awareness.scale(self.config.timing.probe_interval)
    }

    /// Whether a join through some seed succeeded.
    pub fn has_joined(&self) -> bool {
        self.joined
    }

    /// Whether the graceful leave is complete.
    pub fn has_left(&self) -> bool {
        self.leave == Leave::Done
    }

    /// Every member as Serf shows it, ourselves first.
    pub fn members(&self) -> Vec<Member> {
        let mut out = vec![self.own_member()];
        out.extend(self.nodes.keys().filter_map(|name| self.member(name)));
        out
    }

    fn own_member(&self) -> Member {
        Member {
            name: self.config.name.clone(),
            addr: self.config.addr,
            tags: self.config.tags.clone(),
            status: self
                .serf
                .members
                .get(&self.config.name)
                .map_or(SerfStatus::Alive, |m| m.status),
            incarnation: self.incarnation,
            vsn: VSN.to_vec(),
        }
    }

    /// Member `name` (not ourselves) if both memberlist and Serf know it.
    fn member(&self, name: &str) -> Option<Member> {
        let n = self.nodes.get(name)?;
        let m = self.serf.members.get(name)?;
        Some(Member {
            name: name.to_owned(),
            addr: n.socket()?,
            tags: decode_tags(&n.meta),
            status: m.status,
            incarnation: n.incarnation,
            vsn: n.vsn.clone(),
        })
    }

    /// Tells of `name` if anything about it changed since last told.
    fn emit_member(&mut self, name: &str) {
        let Some(m) = self.member(name) else { return };
        if self.told.get(name) == Some(&m) {
            return;
        }
        if self.told.len() > self.config.max_nodes && !self.told.contains_key(name) {
            self.told.retain(|k, _| self.nodes.contains_key(k));
        }
        self.told.insert(name.to_owned(), m.clone());
        self.events.push_back(Event::Member(m));
    }

    // ---- commands ----

    /// Joins the cluster through `seeds` (push-pull with each; the replies come back through
    /// [`handle_stream_reply`](Self::handle_stream_reply)).
    pub fn join(&mut self, now: Time, seeds: &[SocketAddr]) {
        for &s in seeds {
            if s != self.config.addr {
                self.start_push_pull(now, s, true);
            }
        }
    }

    /// Sends a user event (Serf's `UserEvent`): clock, local delivery, broadcast.
    pub fn user_event(
        &mut self,
        name: &str,
        payload: &[u8],
        coalesce: bool,
    ) -> Result<u64, String> {
        if self.leave != Leave::No {
            return Err("leaving the cluster".into());
        }
        let ltime = self.serf.event_clock.time();
        let raw = encode_user_event(ltime, name, payload, coalesce);
        if name.len() + payload.len() > self.config.user_event_size_limit
            || raw.len() > self.config.user_event_size_limit
        {
            return Err(format!(
                "user event exceeds the limit of {} bytes",
                self.config.user_event_size_limit
            ));
        }
        self.serf.event_clock.increment();
        let msg = crate::serf_wire::UserEventMsg {
            ltime,
            name: name.into(),
            payload: payload.to_vec(),
            cc: coalesce,
        };
        if let Some(e) = self.serf.user_event(&msg) {
            self.events.push_back(Event::User(e));
        }
        self.queue_serf(raw);
        Ok(ltime)
    }

    /// Leaves gracefully, as Serf does: its leave intent first, then memberlist's dead about
    /// ourselves, then a moment to answer probes; [`has_left`](Self::has_left) says when done.
    pub fn leave(&mut self, now: Time) {
        if self.leave != Leave::No {
            return;
        }
        let me = self.config.name.clone();
        let ltime = self.serf.clock.time();
        self.serf.clock.increment();
        self.serf.leaving = true;
        if let Some(m) = self.serf.members.get_mut(&me) {
            m.status = SerfStatus::Leaving;
            m.status_ltime = ltime;
        }
        if !self.nodes.values().any(|n| n.state == NodeState::Alive) {
            self.leave = Leave::Done;
            return;
        }
        let id = self.queue_serf(encode_leave(ltime, &me));
        self.leave = Leave::Intent(id, now + Duration::from_secs(5));
        log::info!("{me}: leave intent at clock {ltime}");
    }

    // ---- output ----

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next TCP exchange to run.
    pub fn poll_stream(&mut self) -> Option<StreamRequest> {
        self.streams.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Time {
        let mut t = self
            .next_probe
            .min(self.next_gossip)
            .min(self.next_push_pull)
            .min(self.next_reconnect);
        if let Some(early) = self.early_gossip() {
            t = t.min(early);
        }
        if let Some(p) = &self.probe {
            t = t.min(p.indirect_at.unwrap_or(p.end_at)).min(p.end_at);
        }
        for r in &self.relays {
            t = t.min(r.deadline);
        }
        for s in self.suspicions.values() {
            t = t.min(s.deadline);
        }
        for (_, _, deadline) in self.pending.values() {
            t = t.min(*deadline);
        }
        for a in self.asks.values() {
            t = t.min(a.deadline);
        }
        if let Some(d) = self.key_answers_deadline() {
            // Just past it: `expire_key_answers` keeps an answer until its deadline passes.
            t = t.min(d + Duration::from_millis(1));
        }
        match self.leave {
            Leave::Intent(_, d) | Leave::Dead(_, d) | Leave::Propagate(d) => t.min(d),
            Leave::No | Leave::Done => t,
        }
    }

    // ---- sending ----

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn encrypting(&self) -> bool {
        self.config.keyring.is_some()
    }

    fn seal_packet(&mut self, plain: Vec<u8>) -> Vec<u8> {
        match &self.config.keyring {
            Some(k) => {
                let nonce: [u8; 12] = self.nonce_rng.random();
                k.encrypt(&nonce, &plain, &[])
            }
            None => plain,
        }
    }

    /// A stream message, sealed when a key is set: `[10][u32 len][blob]`, the 5-byte header
    /// as associated data.
    fn seal_stream(&mut self, plain: Vec<u8>) -> Vec<u8> {
        // memberlist compresses a stream before sealing it (`sendLocalState`).
        let plain = if self.config.compression {
            crate::packet::compressed(&plain)
        } else {
            plain
        };
        match &self.config.keyring {
            Some(k) => {
                let nonce: [u8; 12] = self.nonce_rng.random();
                let len = (OVERHEAD + plain.len()) as u32;
                let mut header = vec![MessageType::Encrypt as u8];
                header.extend_from_slice(&len.to_be_bytes());
                let blob = k.encrypt(&nonce, &plain, &header);
                header.extend_from_slice(&blob);
                header
            }
            None => plain,
        }
    }

    fn raw_send(&mut self, to: SocketAddr, node: Option<&str>, msg: Vec<u8>) {
        debug_assert!(!msg.is_empty());
        // As `rawSendMsgPacket`: compressed only when that makes it smaller; CRC outside.
        let msg = if self.config.compression {
            let c = crate::packet::compressed(&msg);
            if c.len() < msg.len() { c } else { msg }
        } else {
            msg
        };
        let crc = node
            .and_then(|n| self.nodes.get(n))
            .is_some_and(|n| n.pmax() >= 5);
        let msg = if crc { with_crc(&msg) } else { msg };
        let bytes = self.seal_packet(msg);
        self.transmits.push_back(Transmit { to, bytes });
    }

    fn budget(&self) -> usize {
        self.config
            .udp_buffer_size
            .saturating_sub(if self.encrypting() { OVERHEAD + 5 } else { 5 })
    }

    fn retransmit_limit(&self) -> u32 {
        retransmit_limit(self.config.timing.retransmit_mult, self.nodes.len() + 1)
    }

    /// Sends `msg` with as many broadcasts as fit piggybacked (a compound then).
    fn send_msg(&mut self, to: SocketAddr, node: Option<&str>, msg: Vec<u8>) {
        let room = self.budget().saturating_sub(msg.len() + 2 + 2);
        let limit = self.retransmit_limit();
        let extra = self.queue.take(2, room, MAX_COMPOUND_PARTS - 1, limit);
        if extra.is_empty() {
            self.raw_send(to, node, msg);
        } else {
            let mut parts: Vec<&[u8]> = vec![&msg];
            parts.extend(extra.iter().map(Vec::as_slice));
            let c = compound(&parts);
            self.raw_send(to, node, c);
        }
    }

    /// When a gossip round is due early: a quarter interval after the last one, once news
    /// (a user event, a query, an intent, an alive, suspect or dead) was queued since.
    /// memberlist waits for its next tick (up to the whole interval, 200 ms on a LAN); sending
    /// sooner spends none of a message's retransmits twice, only earlier.
    fn early_gossip(&self) -> Option<Time> {
        self.queue
            .has_fresh()
            .then(|| self.last_gossip + self.config.timing.gossip_interval / 4)
    }

    fn queue_serf(&mut self, serf_bytes: Vec<u8>) -> u64 {
        let mut msg = vec![MessageType::User as u8];
        msg.extend_from_slice(&serf_bytes);
        self.queue.push_unique(msg)
    }

    fn encode(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::default();
        f(&mut w);
        w.buf
    }

    fn own_alive(&self) -> Alive {
        Alive {
            incarnation: self.incarnation,
            node: self.config.name.clone(),
            addr: self.addr.clone(),
            port: self.config.addr.port(),
            meta: self.meta.clone(),
            vsn: VSN.to_vec(),
        }
    }

    fn ping_to(&self, seq: u32, target: &str) -> Ping {
        Ping {
            seq_no: seq,
            node: target.to_owned(),
            source_addr: self.addr.clone(),
            source_port: self.config.addr.port(),
            source_node: self.config.name.clone(),
        }
    }

    // ---- input: datagrams ----

    /// A datagram from `from`. Bad input is dropped and counted; nothing panics.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams += 1;
        let plain;
        let bytes = match &self.config.keyring {
            Some(k) => match k.decrypt(datagram, &[]) {
                Ok(p) => {
                    plain = p;
                    &plain[..]
                }
                Err(e) => {
                    self.stats.decrypt_failures += 1;
                    self.stats.bad_datagrams += 1;
                    log::warn!("datagram from {from} refused: {e} (wrong key, or not encrypted?)");
                    return;
                }
            },
            None => datagram,
        };
        let d = decode_datagram(bytes);
        if d.messages.is_empty() {
            self.stats.bad_datagrams += 1;
        }
        if d.bad > 0 {
            self.stats.bad_messages += d.bad as u64;
            log::debug!(
                "datagram from {from}: {} bad part(s): {:?}",
                d.bad,
                d.first_error
            );
        }
        for m in d.messages {
            self.handle_message(now, from, m);
        }
    }

    fn handle_message(&mut self, now: Time, from: SocketAddr, m: Message) {
        match m {
            Message::Ping(p) => self.on_ping(from, p),
            Message::IndirectPing(r) => self.on_indirect(now, from, r),
            Message::Ack(a) => self.on_ack(now, a.seq_no),
            Message::Nack(n) => self.on_nack(n.seq_no),
            Message::Suspect(s) => self.suspect_node(now, s),
            Message::Alive(a) => self.alive_node(now, a),
            Message::Dead(d) => self.dead_node(now, d),
            Message::User(bytes) => self.on_serf(now, &bytes),
        }
    }

    fn reply_addr(from: SocketAddr, addr: &[u8], port: u16) -> SocketAddr {
        match ip_of(addr) {
            Some(ip) if port != 0 => SocketAddr::new(ip, port),
            _ => from,
        }
    }

    fn on_ping(&mut self, from: SocketAddr, p: Ping) {
        if !p.node.is_empty() && p.node != self.config.name {
            log::debug!("ping for {} from {from} ignored", p.node);
            return;
        }
        let to = Self::reply_addr(from, &p.source_addr, p.source_port);
        let ack = Self::encode(|w| {
            AckResp {
                seq_no: p.seq_no,
                payload: vec![],
            }
            .encode(w)
        });
        self.send_msg(to, None, ack);
    }

    fn on_indirect(&mut self, now: Time, from: SocketAddr, r: IndirectPingReq) {
        if self.relays.len() >= MAX_RELAYS {
            return;
        }
        let Some(ip) = ip_of(&r.target) else { return };
        let port = if r.port == 0 {
            self.config.addr.port()
        } else {
            r.port
        };
        let seq = self.next_seq();
        let ping = Self::encode(|w| self.ping_to(seq, &r.node).encode(w));
        self.send_msg(SocketAddr::new(ip, port), None, ping);
        self.relays.push(Relay {
            seq,
            orig_seq: r.seq_no,
            to: Self::reply_addr(from, &r.source_addr, r.source_port),
            nack: r.nack,
            deadline: now + self.config.timing.probe_timeout,
        });
    }

    fn on_ack(&mut self, _now: Time, seq: u32) {
        if let Some(p) = &mut self.probe
            && p.seq == seq
        {
            p.acked = true;
            return;
        }
        if let Some(i) = self.relays.iter().position(|r| r.seq == seq) {
            let r = self.relays.swap_remove(i);
            let ack = Self::encode(|w| {
                AckResp {
                    seq_no: r.orig_seq,
                    payload: vec![],
                }
                .encode(w)
            });
            self.send_msg(r.to, None, ack);
        }
    }

    /// A nack for our probe: a helper could not reach the target either (counted, as
    /// memberlist's buffered channel does, up to one more than the helpers asked).
    fn on_nack(&mut self, seq: u32) {
        let cap = self.config.timing.indirect_checks as u32 + 1;
        if let Some(p) = &mut self.probe
            && p.seq == seq
            && !p.acked
            && p.nacks < cap
        {
            p.nacks += 1;
            self.stats.nacks += 1;
        }
    }

    fn on_serf(&mut self, now: Time, bytes: &[u8]) {
        let msg = match decode_serf(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.stats.bad_serf += 1;
                log::debug!("bad serf message: {e}");
                return;
            }
        };
        match msg {
            SerfMessage::Join(j) => {
                if self.serf.join_intent(&j) {
                    self.queue_serf(bytes.to_vec());
                    self.emit_member(&j.node);
                }
            }
            SerfMessage::Leave(l) => match self.serf.leave_intent(&l, &self.config.name) {
                LeaveOutcome::Rebroadcast => {
                    self.queue_serf(bytes.to_vec());
                    self.emit_member(&l.node);
                }
                LeaveOutcome::Refute => self.broadcast_join(),
                LeaveOutcome::Ignore => {}
            },
            SerfMessage::UserEvent(e) => {
                if let Some(ev) = self.serf.user_event(&e) {
                    log::info!("user event {:?} (clock {})", ev.name, ev.ltime);
                    self.events.push_back(Event::User(ev));
                    self.queue_serf(bytes.to_vec());
                }
            }
            SerfMessage::Query(q) => self.on_query(now, bytes, q),
            SerfMessage::QueryResponse(r) => self.on_query_response(now, r),
            SerfMessage::Relay(r) => self.on_relay(now, r),
            SerfMessage::Other(t) => log::debug!("serf message type {t} ignored"),
        }
    }

    fn broadcast_join(&mut self) {
        let ltime = self.serf.clock.time();
        let me = self.config.name.clone();
        self.serf.join_intent(&crate::serf_wire::JoinIntent {
            ltime,
            node: me.clone(),
        });
        self.queue_serf(encode_join(ltime, &me));
    }

    // ---- memberlist's state rules ----

    fn refute(&mut self, accused: u32) {
        let mut inc = self.incarnation.saturating_add(1);
        if accused >= inc {
            inc = accused.saturating_add(1);
        }
        self.incarnation = inc;
        self.stats.refutes += 1;
        // Being accused is a hint that we are the slow one (memberlist's `refute`).
        self.awareness.apply_delta(1);
        log::info!(
            "{}: refuting an accusation at incarnation {accused} with {inc}",
            self.config.name
        );
        let me = self.config.name.clone();
        let alive = Self::encode(|w| self.own_alive().encode(w));
        self.queue.push_named(&me, alive);
    }

    fn alive_node(&mut self, now: Time, a: Alive) {
        if a.node == self.config.name {
            if self.leave != Leave::No || a.incarnation < self.incarnation {
                return;
            }
            if a.incarnation == self.incarnation && a.meta == self.meta && a.vsn == VSN {
                return;
            }
            return self.refute(a.incarnation);
        }
        if a.vsn.len() >= 3 && (a.vsn[0] == 0 || a.vsn[1] == 0 || a.vsn[0] > a.vsn[1]) {
            return;
        }
        if a.vsn.len() < 6 || ip_of(&a.addr).is_none() || a.node.is_empty() {
            // Not a node we could talk to or gossip about safely.
            self.stats.bad_messages += 1;
            return;
        }
        let mut replaced = false;
        match self.nodes.get_mut(&a.node) {
            None => {
                if self.nodes.len() >= self.config.max_nodes {
                    self.stats.table_full += 1;
                    return;
                }
                self.nodes.insert(
                    a.node.clone(),
                    NodeEntry {
                        addr: a.addr.clone(),
                        port: a.port,
                        meta: a.meta.clone(),
                        vsn: a.vsn.clone(),
                        incarnation: 0,
                        state: NodeState::Dead,
                        changed: now,
                    },
                );
                // As memberlist does, a new member takes a random place in the probe round
                // under way (the member there moves to its end), so it can be probed before
                // the next round starts.
                let at = self.probe_order.len();
                self.probe_order.push(a.node.clone());
                if at > 0 {
                    let other = self.rng.random_range(0..at);
                    self.probe_order.swap(other, at);
                }
            }
            Some(n) if n.addr != a.addr || n.port != a.port => {
                if n.state == NodeState::Left {
                    replaced = true;
                } else {
                    self.stats.conflicts += 1;
                    log::warn!(
                        "conflicting address for {}: ours {:?}:{}, theirs {:?}:{}",
                        a.node,
                        n.addr,
                        n.port,
                        a.addr,
                        a.port
                    );
                    return;
                }
            }
            Some(_) => {}
        }
        let Some(n) = self.nodes.get_mut(&a.node) else {
            return;
        };
        if !replaced && a.incarnation <= n.incarnation {
            return;
        }
        self.suspicions.remove(&a.node);
        let old_state = n.state;
        let meta_changed = n.meta != a.meta;
        n.vsn = a.vsn.clone();
        n.incarnation = a.incarnation;
        n.meta = a.meta.clone();
        n.addr = a.addr.clone();
        n.port = a.port;
        if n.state != NodeState::Alive {
            n.state = NodeState::Alive;
            n.changed = now;
        }
        let name = a.node.clone();
        let msg = Self::encode(|w| a.encode(w));
        self.queue.push_named(&name, msg);
        if matches!(old_state, NodeState::Dead | NodeState::Left) {
            log::info!("member {name} joined");
            self.serf.node_join(&name);
            self.emit_member(&name);
        } else if meta_changed || old_state != NodeState::Alive {
            self.emit_member(&name);
        }
    }

    fn suspicion_min(&self) -> Duration {
        let n = (self.nodes.len() + 1).max(1) as f64;
        let scale = n.log10().max(1.0);
        self.config
            .timing
            .probe_interval
            .mul_f64(f64::from(self.config.timing.suspicion_mult) * scale)
    }

    fn suspect_node(&mut self, now: Time, s: Accusation) {
        if s.node == self.config.name {
            if s.incarnation < self.incarnation || self.leave != Leave::No {
                return;
            }
            return self.refute(s.incarnation);
        }
        let Some(n) = self.nodes.get(&s.node) else {
            return;
        };
        if s.incarnation < n.incarnation {
            return;
        }
        if let Some(sus) = self.suspicions.get_mut(&s.node) {
            if sus.confirmations.len() as u32 > sus.k || sus.confirmations.contains(&s.from) {
                return;
            }
            sus.confirmations.push(s.from.clone());
            let c = (sus.confirmations.len() - 1) as f64;
            let frac = (c + 1.0).ln() / (f64::from(sus.k) + 1.0).ln();
            let span = sus.max.saturating_sub(sus.min);
            let timeout = sus
                .max
                .saturating_sub(span.mul_f64(frac.min(1.0)))
                .max(sus.min);
            sus.deadline = (sus.start + Duration::from_millis(timeout.as_millis() as u64)).max(now);
            let msg = Self::encode(|w| s.encode(MessageType::Suspect, w));
            self.queue.push_named(&s.node, msg);
            return;
        }
        if n.state != NodeState::Alive {
            return;
        }
        let min = self.suspicion_min();
        let max = min * self.config.timing.suspicion_max_timeout_mult;
        // memberlist counts every member it holds, the dead not yet forgotten and itself.
        let known = self.nodes.len() + 1;
        let mut k = self.config.timing.suspicion_mult.saturating_sub(2);
        if (known as u32).saturating_sub(2) < k {
            k = 0;
        }
        let Some(n) = self.nodes.get_mut(&s.node) else {
            return;
        };
        n.incarnation = s.incarnation;
        n.state = NodeState::Suspect;
        n.changed = now;
        let name = s.node.clone();
        log::info!("member {name} is suspect (accused by {})", s.from);
        self.suspicions.insert(
            name.clone(),
            Suspicion {
                start: now,
                min,
                max,
                k,
                confirmations: vec![s.from.clone()],
                deadline: now + if k < 1 { min } else { max },
                changed: now,
            },
        );
        let msg = Self::encode(|w| s.encode(MessageType::Suspect, w));
        self.queue.push_named(&name, msg);
    }

    fn dead_node(&mut self, now: Time, d: Accusation) {
        if d.node == self.config.name {
            if d.incarnation < self.incarnation {
                return;
            }
            if self.leave == Leave::No {
                self.refute(d.incarnation);
            }
            return;
        }
        let Some(n) = self.nodes.get_mut(&d.node) else {
            return;
        };
        if d.incarnation < n.incarnation {
            return;
        }
        self.suspicions.remove(&d.node);
        if matches!(n.state, NodeState::Dead | NodeState::Left) {
            return;
        }
        n.incarnation = d.incarnation;
        n.state = if d.from == d.node {
            NodeState::Left
        } else {
            NodeState::Dead
        };
        n.changed = now;
        let name = d.node.clone();
        let msg = Self::encode(|w| d.encode(MessageType::Dead, w));
        self.queue.push_named(&name, msg);
        let status = self.serf.node_leave(&name);
        log::info!(
            "member {name} is {} ({:?})",
            if d.from == d.node { "left" } else { "dead" },
            status
        );
        self.emit_member(&name);
    }

    // ---- timers ----

    /// Runs whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.leave_progress(now);
        self.expire_relays(now);
        self.expire_suspicions(now);
        self.expire_streams(now);
        self.expire_queries(now);
        self.expire_key_answers(now);
        self.probe_progress(now);
        if now >= self.next_probe {
            self.next_probe = now + self.config.timing.probe_interval;
            if self.probe.is_none() {
                self.start_probe(now);
            }
        }
        if now >= self.next_gossip || self.early_gossip().is_some_and(|t| now >= t) {
            self.next_gossip = now + self.config.timing.gossip_interval;
            self.queue.gossiped();
            self.last_gossip = now;
            self.gossip(now);
        }
        if now >= self.next_push_pull {
            self.next_push_pull = now + self.push_pull_interval();
            self.periodic_push_pull(now);
        }
        if now >= self.next_reconnect {
            self.next_reconnect = now + self.config.timing.reconnect_interval;
            self.reconnect(now);
        }
    }

    fn push_pull_interval(&self) -> Duration {
        let n = self.nodes.len() + 1;
        let base = self.config.timing.push_pull_interval;
        if n <= 32 {
            return base;
        }
        let mult = ((n as f64).log2() - 32f64.log2()).ceil() + 1.0;
        base.mul_f64(mult)
    }

    fn leave_progress(&mut self, now: Time) {
        match self.leave {
            Leave::Intent(id, deadline) if !self.queue.contains(id) || now >= deadline => {
                let me = self.config.name.clone();
                let dead = Accusation {
                    incarnation: self.incarnation,
                    node: me.clone(),
                    from: me.clone(),
                };
                let msg = Self::encode(|w| dead.encode(MessageType::Dead, w));
                let id = self.queue.push_named(&me, msg);
                self.leave = Leave::Dead(id, now + Duration::from_secs(5));
            }
            Leave::Dead(id, deadline) if !self.queue.contains(id) || now >= deadline => {
                self.leave = Leave::Propagate(now + Duration::from_secs(1));
            }
            Leave::Propagate(deadline) if now >= deadline => {
                if let Some(m) = self.serf.members.get_mut(&self.config.name) {
                    m.status = SerfStatus::Left;
                }
                self.leave = Leave::Done;
            }
            _ => {}
        }
    }

    fn expire_relays(&mut self, now: Time) {
        let mut i = 0;
        while i < self.relays.len() {
            if self.relays[i].deadline <= now {
                let r = self.relays.swap_remove(i);
                if r.nack {
                    let nack = Self::encode(|w| NackResp { seq_no: r.orig_seq }.encode(w));
                    self.send_msg(r.to, None, nack);
                }
            } else {
                i += 1;
            }
        }
    }

    fn expire_suspicions(&mut self, now: Time) {
        let due: Vec<String> = self
            .suspicions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for name in due {
            let Some(s) = self.suspicions.remove(&name) else {
                continue;
            };
            let Some(n) = self.nodes.get(&name) else {
                continue;
            };
            if n.state == NodeState::Suspect && n.changed == s.changed {
                let d = Accusation {
                    incarnation: n.incarnation,
                    node: name.clone(),
                    from: self.config.name.clone(),
                };
                log::info!("member {name}: suspicion timed out, marking dead");
                self.dead_node(now, d);
            }
        }
    }

    fn expire_streams(&mut self, now: Time) {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (_, _, d))| *d <= now)
            .map(|(k, _)| *k)
            .collect();
        for id in due {
            self.handle_stream_reply(now, id, Err("timed out".into()));
        }
    }

    fn start_probe(&mut self, now: Time) {
        let mut target = None;
        for _ in 0..=self.probe_order.len() {
            if self.probe_index >= self.probe_order.len() {
                self.reset_probe_order(now);
                if self.probe_order.is_empty() {
                    return;
                }
            }
            let name = self.probe_order[self.probe_index].clone();
            self.probe_index += 1;
            if let Some(n) = self.nodes.get(&name)
                && matches!(n.state, NodeState::Alive | NodeState::Suspect)
            {
                target = Some(name);
                break;
            }
        }
        let Some(target) = target else { return };
        let Some(n) = self.nodes.get(&target) else {
            return;
        };
        let Some(to) = n.socket() else { return };
        let suspect = (n.state != NodeState::Alive).then(|| Accusation {
            incarnation: n.incarnation,
            node: target.clone(),
            from: self.config.name.clone(),
        });
        let seq = self.next_seq();
        let ping = Self::encode(|w| self.ping_to(seq, &target).encode(w));
        match suspect {
            Some(s) => {
                let s = Self::encode(|w| s.encode(MessageType::Suspect, w));
                let c = compound(&[&ping, &s]);
                self.raw_send(to, Some(&target), c);
            }
            None => self.send_msg(to, Some(&target), ping),
        }
        // The direct ack is awaited for the plain probe timeout (memberlist does not scale
        // it: waiting longer does not get UDP through); the whole probe, with its indirect
        // and TCP attempts, gets the period stretched by the health score.
        let period = self.probe_period();
        if period > self.config.timing.probe_interval {
            self.stats.degraded_probes += 1;
        }
        self.probe = Some(Probe {
            target,
            seq,
            indirect_at: Some(now + self.config.timing.probe_timeout),
            end_at: now + period,
            acked: false,
            expected_nacks: 0,
            nacks: 0,
        });
    }

    fn reset_probe_order(&mut self, now: Time) {
        let keep = self.config.timing.gossip_to_the_dead;
        self.nodes
            .retain(|_, n| n.state != NodeState::Dead || now.saturating_since(n.changed) < keep);
        self.probe_order = self.nodes.keys().cloned().collect();
        self.probe_order.shuffle(&mut self.rng);
        self.probe_index = 0;
    }

    fn probe_progress(&mut self, now: Time) {
        let Some(p) = &mut self.probe else { return };
        if p.acked {
            self.probe = None;
            // A completed probe: we look healthy.
            self.awareness.apply_delta(-1);
            return;
        }
        if let Some(at) = p.indirect_at
            && now >= at
        {
            p.indirect_at = None;
            let (target, seq) = (p.target.clone(), p.seq);
            let expected = self.indirect_probe(now, &target, seq);
            if let Some(p) = &mut self.probe {
                p.expected_nacks = expected;
            }
        }
        let Some(p) = &self.probe else { return };
        if now >= p.end_at {
            let target = p.target.clone();
            // memberlist's penalty for a failed probe: one per nack that did not come back
            // from a helper asked for one, or 1 when no helper could be asked.
            let delta = if p.expected_nacks > 0 {
                p.expected_nacks.saturating_sub(p.nacks)
            } else {
                1
            };
            self.awareness.apply_delta(i64::from(delta));
            self.probe = None;
            if let Some(n) = self.nodes.get(&target) {
                log::debug!("probe of {target} failed");
                let s = Accusation {
                    incarnation: n.incarnation,
                    node: target,
                    from: self.config.name.clone(),
                };
                self.suspect_node(now, s);
            }
        }
    }

    /// Asks helpers to probe `target` and tries TCP; returns how many helpers will nack.
    fn indirect_probe(&mut self, now: Time, target: &str, seq: u32) -> u32 {
        let Some(n) = self.nodes.get(target) else {
            return 0;
        };
        let (taddr, tport, tpmax) = (n.addr.clone(), n.port, n.pmax());
        let mut peers: Vec<String> = self
            .nodes
            .iter()
            .filter(|(k, n)| *k != target && n.state == NodeState::Alive)
            .map(|(k, _)| k.clone())
            .collect();
        peers.shuffle(&mut self.rng);
        peers.truncate(self.config.timing.indirect_checks);
        let mut expected_nacks = 0;
        for peer in peers {
            let Some(pn) = self.nodes.get(&peer) else {
                continue;
            };
            let Some(to) = pn.socket() else { continue };
            let nack = pn.pmax() >= 4;
            expected_nacks += u32::from(nack);
            let req = IndirectPingReq {
                seq_no: seq,
                target: taddr.clone(),
                port: tport,
                node: target.to_owned(),
                nack,
                source_addr: self.addr.clone(),
                source_port: self.config.addr.port(),
                source_node: self.config.name.clone(),
            };
            let msg = Self::encode(|w| req.encode(w));
            self.send_msg(to, Some(&peer), msg);
        }
        if tpmax >= 3
            && let Some(ip) = ip_of(&taddr)
        {
            let ping = Self::encode(|w| self.ping_to(seq, target).encode(w));
            self.open_stream(now, SocketAddr::new(ip, tport), Pending::Ping { seq }, ping);
        }
        expected_nacks
    }

    fn gossip(&mut self, now: Time) {
        let dead_keep = self.config.timing.gossip_to_the_dead;
        let mut peers: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| match n.state {
                NodeState::Alive | NodeState::Suspect => true,
                NodeState::Dead => now.saturating_since(n.changed) < dead_keep,
                NodeState::Left => false,
            })
            .map(|(k, _)| k.clone())
            .collect();
        peers.shuffle(&mut self.rng);
        peers.truncate(self.config.timing.gossip_nodes);
        let limit = self.retransmit_limit();
        for peer in peers {
            let room = self.budget().saturating_sub(2);
            let msgs = self.queue.take(2, room, MAX_COMPOUND_PARTS, limit);
            if msgs.is_empty() {
                return;
            }
            let Some(to) = self.nodes.get(&peer).and_then(NodeEntry::socket) else {
                continue;
            };
            let packet = if msgs.len() == 1 {
                msgs.into_iter().next().unwrap_or_default()
            } else {
                let parts: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
                compound(&parts)
            };
            self.raw_send(to, Some(&peer), packet);
        }
    }

    fn periodic_push_pull(&mut self, now: Time) {
        let alive: Vec<SocketAddr> = self
            .nodes
            .values()
            .filter(|n| n.state == NodeState::Alive)
            .filter_map(NodeEntry::socket)
            .collect();
        if let Some(&to) = alive.get(self.rng.random_range(0..alive.len().max(1))) {
            self.start_push_pull(now, to, false);
        }
    }

    /// Serf's reconnect: now and then, a push-pull join with a random failed member, with a
    /// chance scaled by failed / alive.
    fn reconnect(&mut self, now: Time) {
        let failed: Vec<SocketAddr> = self
            .nodes
            .iter()
            .filter(|(k, _)| {
                self.serf
                    .members
                    .get(*k)
                    .is_some_and(|m| m.status == SerfStatus::Failed)
            })
            .filter_map(|(_, n)| n.socket())
            .collect();
        if failed.is_empty() {
            return;
        }
        let alive = self
            .nodes
            .values()
            .filter(|n| n.state == NodeState::Alive)
            .count()
            + 1;
        let p = (failed.len() as f64 / alive as f64).min(1.0);
        if self.rng.random::<f64>() < p {
            let to = failed[self.rng.random_range(0..failed.len())];
            self.start_push_pull(now, to, true);
        }
    }

    // ---- streams ----

    fn open_stream(&mut self, now: Time, to: SocketAddr, kind: Pending, plain: Vec<u8>) {
        if self.pending.len() >= MAX_STREAMS {
            return;
        }
        self.next_stream_id += 1;
        let id = self.next_stream_id;
        let bytes = self.seal_stream(plain);
        // Our own deadline is a little past the runtime's, which reports its timeout first.
        let deadline = now + self.config.timing.tcp_timeout + Duration::from_secs(1);
        self.pending.insert(id, (kind, to, deadline));
        self.streams.push_back(StreamRequest { id, to, bytes });
    }

    fn local_state(&self) -> Vec<PushNodeState> {
        let mut out = vec![PushNodeState {
            name: self.config.name.clone(),
            addr: self.addr.clone(),
            port: self.config.addr.port(),
            meta: self.meta.clone(),
            incarnation: self.incarnation,
            state: if self.leave == Leave::No || matches!(self.leave, Leave::Intent(..)) {
                0
            } else {
                3
            },
            vsn: VSN.to_vec(),
        }];
        for (name, n) in &self.nodes {
            out.push(PushNodeState {
                name: name.clone(),
                addr: n.addr.clone(),
                port: n.port,
                meta: n.meta.clone(),
                incarnation: n.incarnation,
                state: n.state as i64,
                vsn: n.vsn.clone(),
            });
        }
        out
    }

    fn push_pull_message(&self, join: bool) -> Vec<u8> {
        encode_push_pull(join, &self.local_state(), &self.serf.local_state())
    }

    fn start_push_pull(&mut self, now: Time, to: SocketAddr, join: bool) {
        let msg = self.push_pull_message(join);
        self.open_stream(now, to, Pending::PushPull { join }, msg);
    }

    /// How long the frame at the start of `buf` is (see [`packet::stream_frame_len`]).
    ///
    /// [`packet::stream_frame_len`]: crate::packet::stream_frame_len
    pub fn stream_frame_len(&self, buf: &[u8]) -> Result<Option<usize>, DecodeError> {
        crate::packet::stream_frame_len(buf)
    }

    fn open_frame(&mut self, frame: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let encrypted = frame.first() == Some(&(MessageType::Encrypt as u8));
        match (&self.config.keyring, encrypted) {
            (Some(k), true) => {
                let (header, blob) = frame.split_at(5.min(frame.len()));
                k.decrypt(blob, header)
                    .inspect_err(|_| self.stats.decrypt_failures += 1)
            }
            (Some(_), false) => {
                self.stats.decrypt_failures += 1;
                Err(DecodeError::Invalid(
                    "encryption is required but the stream is not encrypted".into(),
                ))
            }
            (None, true) => {
                self.stats.decrypt_failures += 1;
                Err(DecodeError::Invalid(
                    "the stream is encrypted but no key is set".into(),
                ))
            }
            (None, false) => Ok(frame.to_vec()),
        }
    }

    /// A complete inbound stream frame (see [`stream_frame_len`](Self::stream_frame_len)) from
    /// `from`; returns the reply to write before closing, if any.
    pub fn handle_stream(&mut self, now: Time, from: SocketAddr, frame: &[u8]) -> Option<Vec<u8>> {
        let msg = self
            .open_frame(frame)
            .and_then(|plain| decode_stream(&plain).map(|(m, _)| m));
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                self.stats.bad_streams += 1;
                log::warn!("stream from {from} refused: {e}");
                let err = Self::encode(|w| {
                    ErrResp {
                        error: e.to_string(),
                    }
                    .encode(w)
                });
                return Some(self.seal_stream(err));
            }
        };
        self.stats.streams += 1;
        match msg {
            StreamMessage::PushPull {
                join,
                nodes,
                user_state,
            } => {
                let reply = self.push_pull_message(join);
                self.merge_remote(now, &nodes, &user_state, join);
                Some(self.seal_stream(reply))
            }
            StreamMessage::Ping(p) => {
                if !p.node.is_empty() && p.node != self.config.name {
                    return None;
                }
                let ack = Self::encode(|w| {
                    AckResp {
                        seq_no: p.seq_no,
                        payload: vec![],
                    }
                    .encode(w)
                });
                Some(self.seal_stream(ack))
            }
            StreamMessage::User(bytes) => {
                self.on_serf(now, &bytes);
                None
            }
            StreamMessage::Ack(_) | StreamMessage::Err(_) => {
                self.stats.bad_streams += 1;
                None
            }
        }
    }

    /// The reply frame of the exchange `id` (or why there is none).
    pub fn handle_stream_reply(&mut self, now: Time, id: u64, reply: Result<&[u8], String>) {
        let Some((kind, to, _)) = self.pending.remove(&id) else {
            return;
        };
        let msg = reply.and_then(|frame| {
            let plain = self.open_frame(frame).map_err(|e| e.to_string())?;
            decode_stream(&plain)
                .map(|(m, _)| m)
                .map_err(|e| e.to_string())
        });
        match (kind, msg) {
            (
                Pending::PushPull { join },
                Ok(StreamMessage::PushPull {
                    nodes, user_state, ..
                }),
            ) => {
                self.merge_remote(now, &nodes, &user_state, join);
                if join {
                    if !self.joined {
                        self.joined = true;
                        self.broadcast_join();
                    }
                    log::info!("joined through {to} ({} nodes)", nodes.len());
                    self.events.push_back(Event::Joined {
                        addr: to,
                        result: Ok(()),
                    });
                }
            }
            (Pending::Ping { seq }, Ok(StreamMessage::Ack(a))) if a.seq_no == seq => {
                self.on_ack(now, seq)
            }
            (Pending::PushPull { join }, other) => {
                let why = match other {
                    Ok(StreamMessage::Err(e)) => format!("remote error: {e}"),
                    Ok(m) => format!("unexpected reply {m:?}"),
                    Err(e) => e,
                };
                log::warn!("push-pull with {to} failed: {why}");
                if join {
                    self.events.push_back(Event::Joined {
                        addr: to,
                        result: Err(why),
                    });
                }
            }
            (Pending::Ping { .. }, _) => {}
        }
    }

    fn merge_remote(&mut self, now: Time, nodes: &[PushNodeState], user_state: &[u8], join: bool) {
        for n in nodes {
            match NodeState::from_wire(n.state) {
                NodeState::Alive => self.alive_node(
                    now,
                    Alive {
                        incarnation: n.incarnation,
                        node: n.name.clone(),
                        addr: n.addr.clone(),
                        port: n.port,
                        meta: n.meta.clone(),
                        vsn: n.vsn.clone(),
                    },
                ),
                NodeState::Left => self.dead_node(
                    now,
                    Accusation {
                        incarnation: n.incarnation,
                        node: n.name.clone(),
                        from: n.name.clone(),
                    },
                ),
                NodeState::Dead | NodeState::Suspect => self.suspect_node(
                    now,
                    Accusation {
                        incarnation: n.incarnation,
                        node: n.name.clone(),
                        from: self.config.name.clone(),
                    },
                ),
            }
        }
        if user_state.is_empty() {
            return;
        }
        match decode_serf_push_pull(user_state) {
            Ok(pp) => {
                let me = self.config.name.clone();
                let (events, refute) = self.serf.merge(&pp, join, &me);
                for e in events {
                    self.events.push_back(Event::User(e));
                }
                if refute {
                    self.broadcast_join();
                }
                let names: Vec<String> = pp.status_ltimes.keys().cloned().collect();
                for n in names {
                    if n != me {
                        self.emit_member(&n);
                    }
                }
            }
            Err(e) => {
                self.stats.bad_serf += 1;
                log::debug!("bad serf push-pull state: {e}");
            }
        }
    }
}

#[cfg(test)]
mod detection_tests;
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod query_tests;

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn node(name: &str, port: u16) -> Node {
        let mut c = Config::new(name, SocketAddr::from(([127, 0, 0, 1], port)));
        c.tags.insert("role".into(), name.into());
        Node::new(c, Time::ZERO, u64::from(port), [port as u8; 32]).unwrap()
    }

    #[test]
    fn streams_are_lzw_compressed_and_datagrams_only_when_smaller() {
        let mut a = node("a", 7001);
        a.join(Time::ZERO, &[SocketAddr::from(([127, 0, 0, 1], 7002))]);
        let req = a.poll_stream().unwrap();
        assert_eq!(req.bytes[0], MessageType::Compress as u8);
        let (plain, _) = crate::packet::decode_stream(&req.bytes).unwrap();
        assert!(matches!(plain, StreamMessage::PushPull { .. }));

        // A ping does not shrink: sent as it is. A large, repetitive message does.
        let to = SocketAddr::from(([127, 0, 0, 1], 7002));
        while a.poll_transmit().is_some() {}
        a.raw_send(to, None, vec![MessageType::Ping as u8, 0x80]);
        assert_eq!(
            a.poll_transmit().unwrap().bytes,
            [MessageType::Ping as u8, 0x80]
        );
        let mut big = vec![MessageType::User as u8];
        big.extend(std::iter::repeat_n(b'x', 600));
        a.raw_send(to, None, big.clone());
        let sent = a.poll_transmit().unwrap().bytes;
        assert_eq!(sent[0], MessageType::Compress as u8);
        assert!(sent.len() < big.len() / 4);

        let mut c = Config::new("b", SocketAddr::from(([127, 0, 0, 1], 7003)));
        c.compression = false;
        let mut b = Node::new(c, Time::ZERO, 1, [1; 32]).unwrap();
        b.join(Time::ZERO, &[to]);
        assert_eq!(
            b.poll_stream().unwrap().bytes[0],
            MessageType::PushPull as u8
        );
    }

    /// Runs one stream request of `a` against `b` as a runtime would.
    pub(super) fn run_stream(a: &mut Node, b: &mut Node, now: Time) -> bool {
        let Some(req) = a.poll_stream() else {
            return false;
        };
        let len = b.stream_frame_len(&req.bytes).unwrap().unwrap();
        assert_eq!(len, req.bytes.len());
        let reply = b.handle_stream(now, a.config.addr, &req.bytes).unwrap();
        assert_eq!(a.stream_frame_len(&reply).unwrap(), Some(reply.len()));
        a.handle_stream_reply(now, req.id, Ok(&reply));
        true
    }

    /// Delivers every queued datagram between the two nodes; returns how many.
    pub(super) fn deliver(nodes: &mut [&mut Node], now: Time) -> usize {
        let mut n = 0;
        loop {
            let mut moved = false;
            for i in 0..nodes.len() {
                while let Some(t) = nodes[i].poll_transmit() {
                    moved = true;
                    n += 1;
                    let from = nodes[i].config.addr;
                    if let Some(j) = nodes.iter().position(|x| x.config.addr == t.to) {
                        nodes[j].handle_datagram(now, from, &t.bytes);
                    }
                }
            }
            if !moved {
                return n;
            }
        }
    }

    pub(super) fn status(n: &Node, name: &str) -> Option<SerfStatus> {
        n.members()
            .into_iter()
            .find(|m| m.name == name)
            .map(|m| m.status)
    }

    #[test]
    fn a_push_pull_join_lists_both_alive_with_tags() {
        let (mut a, mut b) = (node("a", 1001), node("b", 1002));
        a.join(Time::ZERO, &[b.config.addr]);
        assert!(run_stream(&mut a, &mut b, Time::ZERO));
        assert!(a.has_joined());
        assert_eq!(status(&a, "b"), Some(SerfStatus::Alive));
        assert_eq!(status(&b, "a"), Some(SerfStatus::Alive));
        let tags = &b
            .members()
            .into_iter()
            .find(|m| m.name == "a")
            .unwrap()
            .tags;
        assert_eq!(tags.get("role").map(String::as_str), Some("a"));
    }

    #[test]
    fn probes_are_answered_and_a_silent_node_fails() {
        let (mut a, mut b) = (node("a", 1001), node("b", 1002));
        a.join(Time::ZERO, &[b.config.addr]);
        run_stream(&mut a, &mut b, Time::ZERO);
        let mut now = Time::ZERO;
        for _ in 0..100 {
            now = now + Duration::from_millis(100);
            a.handle_timeout(now);
            b.handle_timeout(now);
            deliver(&mut [&mut a, &mut b], now);
            while a.poll_stream().is_some() {}
            while b.poll_stream().is_some() {}
        }
        assert_eq!(
            status(&a, "b"),
            Some(SerfStatus::Alive),
            "10 s of answered probes"
        );
        assert_eq!(a.stats().refutes + b.stats().refutes, 0);
        // b goes silent: a suspects it, then (4 s minimum in a 2-node cluster) marks it failed.
        for _ in 0..300 {
            now = now + Duration::from_millis(100);
            a.handle_timeout(now);
            while a.poll_transmit().is_some() {}
            while let Some(s) = a.poll_stream() {
                a.handle_stream_reply(now, s.id, Err("refused".into()));
            }
        }
        assert_eq!(status(&a, "b"), Some(SerfStatus::Failed));
    }

    #[test]
    fn a_member_that_joins_mid_round_takes_a_place_in_the_round_under_way() {
        let alive = |a: &Node, name: &str, port: u16| Alive {
            node: name.into(),
            port,
            incarnation: 1,
            ..a.own_alive()
        };
        let mut in_this_round = 0;
        for seed in 0..20u16 {
            let mut a = node("a", 3000 + seed);
            for i in 0..10 {
                a.alive_node(Time::ZERO, alive(&a, &format!("m{i}"), 4000 + i));
            }
            a.reset_probe_order(Time::ZERO);
            let mut probed = Vec::new();
            for _ in 0..3 {
                a.start_probe(Time::ZERO);
                probed.push(a.probe.take().unwrap().target);
            }
            a.alive_node(Time::ZERO, alive(&a, "new", 5000));
            while a.probe_index < a.probe_order.len() {
                a.start_probe(Time::ZERO);
                probed.push(a.probe.take().unwrap().target);
            }
            // Every old member is probed in the round; the newcomer is too, unless it took the
            // place of one already probed, who then goes again at the end.
            assert_eq!(probed.len(), 11, "seed {seed}: {probed:?}");
            for i in 0..10 {
                assert!(probed.contains(&format!("m{i}")), "seed {seed}: {probed:?}");
            }
            if probed.iter().any(|t| t == "new") {
                in_this_round += 1;
            } else {
                let mut sorted = probed.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), 10, "seed {seed}: one member twice");
            }
        }
        // 7 places of 10 are still ahead: about 14 of 20 rounds probe the newcomer.
        assert!((8..20).contains(&in_this_round), "{in_this_round} of 20");
    }

    #[test]
    fn an_accusation_about_us_is_refuted_with_a_higher_incarnation() {
        let (mut a, mut b) = (node("a", 1001), node("b", 1002));
        a.join(Time::ZERO, &[b.config.addr]);
        run_stream(&mut a, &mut b, Time::ZERO);
        let mut w = Writer::default();
        Accusation {
            incarnation: 1,
            node: "a".into(),
            from: "b".into(),
        }
        .encode(MessageType::Suspect, &mut w);
        a.handle_datagram(Time::ZERO, b.config.addr, &w.buf);
        assert_eq!(a.incarnation(), 2);
        // The refutation spreads: b sees a alive at incarnation 2.
        let mut now = Time::ZERO;
        for _ in 0..10 {
            now = now + Duration::from_millis(200);
            a.handle_timeout(now);
            deliver(&mut [&mut a, &mut b], now);
        }
        let m = b.members().into_iter().find(|m| m.name == "a").unwrap();
        assert_eq!((m.incarnation, m.status), (2, SerfStatus::Alive));
    }

    #[test]
    fn a_graceful_leave_shows_left() {
        let (mut a, mut b) = (node("a", 1001), node("b", 1002));
        a.join(Time::ZERO, &[b.config.addr]);
        run_stream(&mut a, &mut b, Time::ZERO);
        a.leave(Time::ZERO);
        let mut now = Time::ZERO;
        for _ in 0..100 {
            now = now + Duration::from_millis(100);
            a.handle_timeout(now);
            b.handle_timeout(now);
            deliver(&mut [&mut a, &mut b], now);
            if a.has_left() {
                break;
            }
        }
        assert!(a.has_left());
        assert_eq!(status(&b, "a"), Some(SerfStatus::Left));
    }

    #[test]
    fn user_events_reach_the_other_node_once() {
        let (mut a, mut b) = (node("a", 1001), node("b", 1002));
        a.join(Time::ZERO, &[b.config.addr]);
        run_stream(&mut a, &mut b, Time::ZERO);
        while b.poll_event().is_some() {}
        a.user_event("deploy", b"v42", false).unwrap();
        let mut now = Time::ZERO;
        let mut got = Vec::new();
        for _ in 0..20 {
            now = now + Duration::from_millis(200);
            a.handle_timeout(now);
            b.handle_timeout(now);
            deliver(&mut [&mut a, &mut b], now);
            while let Some(e) = b.poll_event() {
                if let Event::User(u) = e {
                    got.push(u);
                }
            }
        }
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].name.as_str(), &got[0].payload[..]),
            ("deploy", &b"v42"[..])
        );
        assert!(
            a.user_event("x", &[0; 600], false).is_err(),
            "over Serf's 512-byte limit"
        );
    }

    #[test]
    fn a_user_event_leaves_without_waiting_for_the_gossip_tick() {
        let (mut a, mut b) = (node("a", 1001), node("b", 1002));
        a.join(Time::ZERO, &[b.config.addr]);
        run_stream(&mut a, &mut b, Time::ZERO);
        while b.poll_event().is_some() {}
        // Let both settle on their tick, then send just after a gossip round.
        let mut now = Time::ZERO;
        for _ in 0..10 {
            now = now + Duration::from_millis(200);
            a.handle_timeout(now);
            b.handle_timeout(now);
            deliver(&mut [&mut a, &mut b], now);
        }
        while b.poll_event().is_some() {}
        let tick = a.config.timing.gossip_interval;
        now = now.max(a.last_gossip) + Duration::from_millis(1);
        a.user_event("deploy", b"v42", false).unwrap();
        let due = a.poll_timeout();
        assert!(
            due <= a.last_gossip + tick / 4,
            "the event waits for the tick: due {due:?}, last gossip {:?}",
            a.last_gossip
        );
        a.handle_timeout(due.max(now));
        deliver(&mut [&mut a, &mut b], due.max(now));
        let got = std::iter::from_fn(|| b.poll_event())
            .filter(|e| matches!(e, Event::User(_)))
            .count();
        assert_eq!(got, 1, "b has the event a quarter tick after it was sent");
        // A burst: at most one early round a quarter interval.
        let before = a.last_gossip;
        a.user_event("x", b"1", false).unwrap();
        a.user_event("y", b"2", false).unwrap();
        assert!(a.poll_timeout() >= before + tick / 4);
    }

    #[test]
    fn encrypted_nodes_talk_and_a_wrong_key_is_refused() {
        let key = |b: u8| Some(crate::Keyring::new(&[vec![b; 32]]).unwrap());
        let mk = |name: &str, port: u16, k| {
            let mut c = Config::new(name, SocketAddr::from(([127, 0, 0, 1], port)));
            c.keyring = k;
            Node::new(c, Time::ZERO, 1, [port as u8; 32]).unwrap()
        };
        let (mut a, mut b, mut c) = (
            mk("a", 1001, key(1)),
            mk("b", 1002, key(1)),
            mk("c", 1003, key(2)),
        );
        a.join(Time::ZERO, &[b.config.addr]);
        assert!(run_stream(&mut a, &mut b, Time::ZERO));
        assert_eq!(status(&b, "a"), Some(SerfStatus::Alive));
        c.join(Time::ZERO, &[b.config.addr]);
        let req = c.poll_stream().unwrap();
        let reply = b.handle_stream(Time::ZERO, c.config.addr, &req.bytes);
        assert!(status(&b, "c").is_none(), "the wrong key does not get in");
        assert_eq!(b.stats().decrypt_failures, 1);
        c.handle_stream_reply(Time::ZERO, req.id, Ok(&reply.unwrap()));
        assert!(!c.has_joined());
    }

    #[test]
    fn indirect_pings_are_relayed_with_the_requesters_seq_and_nacked_when_silent() {
        let (mut b, mut c) = (node("b", 1002), node("c", 1003));
        let a_addr = SocketAddr::from(([127, 0, 0, 1], 1001));
        let req = |seq| {
            let mut w = Writer::default();
            IndirectPingReq {
                seq_no: seq,
                target: vec![127, 0, 0, 1],
                port: 1003,
                node: "c".into(),
                nack: true,
                source_addr: vec![127, 0, 0, 1],
                source_port: 1001,
                source_node: "a".into(),
            }
            .encode(&mut w);
            w.buf
        };
        b.handle_datagram(Time::ZERO, a_addr, &req(77));
        let ping = b.poll_transmit().unwrap();
        assert_eq!(ping.to, c.config.addr);
        c.handle_datagram(Time::ZERO, b.config.addr, &ping.bytes);
        let ack = c.poll_transmit().unwrap();
        assert_eq!(ack.to, b.config.addr, "the ack goes to the ping's source");
        b.handle_datagram(Time::ZERO, c.config.addr, &ack.bytes);
        let relayed = b.poll_transmit().unwrap();
        assert_eq!(relayed.to, a_addr);
        let d = decode_datagram(&relayed.bytes);
        assert!(
            matches!(&d.messages[0], Message::Ack(a) if a.seq_no == 77),
            "{d:?}"
        );
        // c silent: after the probe timeout, a nack with the requester's seq.
        b.handle_datagram(Time::ZERO, a_addr, &req(78));
        let _ = b.poll_transmit();
        b.handle_timeout(Time::from_millis(600));
        let nack = std::iter::from_fn(|| b.poll_transmit())
            .find(|t| t.to == a_addr)
            .unwrap();
        let d = decode_datagram(&nack.bytes);
        assert!(
            matches!(&d.messages[0], Message::Nack(n) if n.seq_no == 78),
            "{d:?}"
        );
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut a = node("a", 1001);
        let from = SocketAddr::from(([127, 0, 0, 1], 9));
        let mut rng = Pcg64::seed_from_u64(7);
        let seeds: [&[u8]; 9] = [
            b"\x07\xff",
            b"\x09\x82\xa4Algo\x00\xa3Buf\xdb\xff\xff\xff\xff",
            b"\x0c\0\0\0\0",
            b"\x06\x83",
            b"\x04\x86",
            b"\x08\x03\x84",
            // A query with filters, a query response, a relay.
            b"\x08\x04\x82\xa7Filters\x91\xa3\x01\x82\xa4Expr",
            b"\x08\x05\x85",
            b"\x08\x09\x82\xa8DestAddr\x83",
        ];
        for i in 0..20_000 {
            let mut buf: Vec<u8> = seeds[i % seeds.len()].to_vec();
            let extra = rng.random_range(0..64);
            for _ in 0..extra {
                buf.push(rng.random());
            }
            a.handle_datagram(Time::ZERO, from, &buf);
            if let Ok(Some(n)) = a.stream_frame_len(&buf) {
                let _ = a.handle_stream(Time::ZERO, from, &buf[..n]);
            }
        }
        assert!(a.stats().bad_datagrams > 0);
        assert!(a.members().len() <= 1 + a.config.max_nodes);
    }
}
