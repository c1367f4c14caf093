//! The sans-IO engine: one node's anti-entropy logic as a state machine.

use std::collections::VecDeque;
use std::fmt;

use gossiper_network::{GossipInterval, NeighborSelector, Neighbors};
use gossiper_types::{DecodeError, Message, MessageKind, NodeId, State, Time};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::rumor::RumorState;
use crate::{
    Count, Counters, Event, Feedback, Mode, NodeConfig, Outbox, Protocol, RumorConfig,
    RumorDirection, SharedConfig, Stats,
};

/// Who a node may contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peers {
    /// An explicit neighbour list (from a topology, or the agent's live members).
    List(Vec<NodeId>),
    /// Every node `0..n` but this one, without storing the list.
    Complete {
        /// Number of nodes in the graph.
        n: u64,
    },
}

/// Why a received datagram was dropped. Dropping changed no state; the reason is counted in
/// [`Stats::dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Malformed: empty, truncated, bad digest or delta.
    Malformed(DecodeError),
    /// Unknown message kind.
    UnknownKind(u8),
    /// Larger than the configured maximum.
    Oversized(usize),
    /// Sender id equals ours.
    FromSelf,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Malformed(e) => write!(f, "malformed: {e}"),
            DropReason::UnknownKind(k) => write!(f, "unknown message kind {k}"),
            DropReason::Oversized(n) => write!(f, "oversized datagram of {n} bytes"),
            DropReason::FromSelf => f.write_str("datagram claims to come from ourselves"),
        }
    }
}

impl std::error::Error for DropReason {}

/// One gossiping node: state, strategies, RNG and counters, and no I/O.
///
/// Inputs are [`handle_timeout`](Node::handle_timeout), [`handle_message`](Node::handle_message)
/// and [`write`](Node::write); outputs are the datagrams they append to the caller's [`Outbox`],
/// [`poll_timeout`](Node::poll_timeout) and [`poll_event`](Node::poll_event). The selector and
/// interval are type parameters, so a million nodes with the stateless built-ins pay nothing
/// for them; pass `Box<dyn NeighborSelector>` to choose at run time.
///
/// Kept lean for the simulator's million engines: the complete graph is implicit
/// ([`Peers::Complete`]), the event queue is allocated only once an event is emitted, and the
/// per-round scratch (the peers picked) lives in the caller's [`Outbox`], and engines built
/// from one [`SharedConfig`] share their configuration. With a `Register<u64>` state and the
/// built-in strategies a node is 272 bytes with its [`Stats`], 160 with
/// [`NoStats`](crate::NoStats) (the counters are the type parameter `C`: a runtime that counts
/// traffic itself, like the simulator, drops them).
pub struct Node<S: State, Sel, Int, C = Stats> {
    id: NodeId,
    config: SharedConfig,
    state: S,
    selector: Sel,
    interval: Int,
    rng: Pcg64Mcg,
    peers: Peers,
    next_round: Time,
    /// Rounds started (the rumor's anti-entropy backing runs on every n-th).
    rounds: u64,
    stats: C,
    /// Reused to decode a peer's digest: no allocation per message once warmed up.
    peer_digest: S::Digest,
    /// Whether `peer_digest` came with the last message handled (see [`Node::peer_digest`]).
    peer_digest_fresh: bool,
    /// Reused to encode our own digest.
    own_digest: S::Digest,
    /// The event queue and the rumor bookkeeping, allocated with the first of either: a node
    /// that emits no event and never has news under rumor mongering (every simulated node
    /// under anti-entropy) pays a pointer, where they take 32 and 32 bytes.
    extra: Option<Box<Extra<S::Digest>>>,
    /// While a message is handled through
    /// [`handle_message_limited`](Node::handle_message_limited): the most bytes each reply
    /// may take (0: no limit beyond `max_message_bytes`). Kept within `u16`: a datagram holds
    /// at most 65,507 bytes, so a larger limit limits nothing.
    reply_limit: u16,
}

/// What few engines need, allocated with the first of it.
#[derive(Default)]
struct Extra<D> {
    /// Events not yet polled (only with [`NodeConfig::emit_events`]).
    events: VecDeque<Event>,
    /// Rumor-mongering bookkeeping, from the first news under rumor mongering.
    rumor: Option<RumorState<D>>,
}

impl<S: State, Sel, Int, C: fmt::Debug> fmt::Debug for Node<S, Sel, Int, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("config", &*self.config)
            .field("state", &self.state)
            .field("next_round", &self.next_round)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The kind byte that opens every message.
const HEADER_BYTES: usize = 1;
/// The SynAck digest's length prefix: a varint padded to 3 bytes (lengths up to 2^21).
const DIGEST_PREFIX_BYTES: usize = 3;

impl<S: State, Sel: NeighborSelector, Int: GossipInterval> Node<S, Sel, Int> {
    /// A node with no peers and no round scheduled, counting into [`Stats`]; every random
    /// choice it makes derives from `seed`. Call [`set_peers`](Node::set_peers) and
    /// [`start`](Node::start) next.
    ///
    /// `config` should have passed [`NodeConfig::validate`]; out-of-range values are clamped.
    pub fn new(
        id: NodeId,
        config: NodeConfig,
        state: S,
        selector: Sel,
        interval: Int,
        seed: u64,
    ) -> Self {
        Node::with_counters(
            id,
            config,
            state,
            selector,
            interval,
            seed,
            Stats::default(),
        )
    }
}

impl<S: State, Sel: NeighborSelector, Int: GossipInterval, C: Counters> Node<S, Sel, Int, C> {
    /// [`Node::new`], counting into `counters` instead of [`Stats`] (for example
    /// [`NoStats`](crate::NoStats), to count nothing).
    pub fn with_counters(
        id: NodeId,
        config: NodeConfig,
        state: S,
        selector: Sel,
        interval: Int,
        seed: u64,
        counters: C,
    ) -> Self {
        let config = SharedConfig::new(config);
        Node::with_shared_config(id, config, state, selector, interval, seed, counters)
    }

    /// [`Node::with_counters`] with a configuration shared with other engines (a simulator
    /// builds a million engines from one).
    pub fn with_shared_config(
        id: NodeId,
        config: SharedConfig,
        state: S,
        selector: Sel,
        interval: Int,
        seed: u64,
        counters: C,
    ) -> Self {
        Node {
            id,
            config,
            state,
            selector,
            interval,
            rng: Pcg64Mcg::seed_from_u64(seed),
            peers: Peers::List(Vec::new()),
            next_round: Time::NEVER,
            rounds: 0,
            stats: counters,
            peer_digest: S::Digest::default(),
            peer_digest_fresh: false,
            own_digest: S::Digest::default(),
            extra: None,
            reply_limit: 0,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The configuration in force.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The configuration in force, as shared with other engines.
    pub fn shared_config(&self) -> &SharedConfig {
        &self.config
    }

    /// The replicated state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Counters so far ([`Stats`] unless the node was built to count nothing).
    pub fn stats(&self) -> &C {
        &self.stats
    }

    /// The candidate peers.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// The gossip interval strategy.
    pub fn interval(&self) -> &Int {
        &self.interval
    }

    /// Under rumor mongering, whether this node is *infective*: it holds a hot rumor and is still
    /// spreading it. Always false under anti-entropy.
    pub fn is_hot(&self) -> bool {
        self.rumor().is_some_and(|r| r.hot)
    }

    fn rumor(&self) -> Option<&RumorState<S::Digest>> {
        self.extra.as_ref()?.rumor.as_ref()
    }

    /// Replaces the candidate peers (a topology's list, or the agent's live members). The node
    /// itself is removed from a list if present.
    pub fn set_peers(&mut self, peers: Peers) {
        self.peers = match peers {
            Peers::List(mut l) => {
                l.retain(|&p| p != self.id);
                Peers::List(l)
            }
            complete => complete,
        };
    }

    /// Schedules the first round one interval draw after `now` (nodes started together then
    /// drift apart, as the Go demo's goroutines did).
    pub fn start(&mut self, now: Time) {
        let delay = self.interval.next_delay(&mut self.rng);
        self.next_round = now + delay;
    }

    /// When [`handle_timeout`](Node::handle_timeout) should next be called
    /// ([`Time::NEVER`] before [`start`](Node::start)).
    pub fn poll_timeout(&self) -> Time {
        self.next_round
    }

    /// The next queued event, if [`NodeConfig::emit_events`] is on.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.extra.as_mut()?.events.pop_front()
    }

    /// Runs a due round (if `now` has reached [`poll_timeout`](Node::poll_timeout)) and
    /// schedules the next one.
    pub fn handle_timeout(&mut self, now: Time, out: &mut Outbox) {
        if now < self.next_round || self.next_round == Time::NEVER {
            return;
        }
        self.gossip_now(now, out);
        let delay = self.interval.next_delay(&mut self.rng);
        self.next_round = now + delay;
    }

    /// Runs one gossip round right now, without touching the schedule: picks `fanout` peers and
    /// opens the configured exchange with each. The synchronous simulator calls this directly.
    ///
    /// Under rumor mongering a round is: push, an infective node sends its rumor (a susceptible
    /// or removed one does nothing); pull, every node asks for hot rumors; and, every
    /// `anti_entropy_every`-th round, one anti-entropy exchange as well.
    pub fn gossip_now(&mut self, _now: Time, out: &mut Outbox) {
        self.rounds += 1;
        self.stats.count(Count::Round);
        match self.config.protocol {
            Protocol::AntiEntropy => self.anti_entropy_round(out),
            Protocol::Rumor(rc) => {
                match rc.direction {
                    RumorDirection::Push if self.is_hot() => self.rumor_push_round(rc, out),
                    RumorDirection::Push => {}
                    RumorDirection::Pull => {
                        let picks = self.pick_peers(out);
                        for &to in &picks {
                            self.send_rumor_pull(to, out);
                        }
                        out.picks = picks;
                    }
                }
                if rc.anti_entropy_every > 0
                    && self.rounds.is_multiple_of(u64::from(rc.anti_entropy_every))
                {
                    self.anti_entropy_round(out);
                }
            }
        }
    }

    fn anti_entropy_round(&mut self, out: &mut Outbox) {
        let picks = self.pick_peers(out);
        for &to in &picks {
            match self.config.mode {
                Mode::Push => {
                    self.send_push(to, None, out);
                }
                Mode::Pull => self.send_digest(to, MessageKind::PullRequest, out),
                Mode::PushPull => self.send_digest(to, MessageKind::Syn, out),
            }
        }
        out.picks = picks;
    }

    fn rumor_push_round(&mut self, rc: RumorConfig, out: &mut Outbox) {
        let picks = self.pick_peers(out);
        for &to in &picks {
            self.send_rumor(to, out);
        }
        if rc.feedback == Feedback::Blind {
            // Blind: every contact counts, whatever the recipient knew.
            for _ in 0..picks.len() {
                self.rumor_contact_unnecessary(rc);
            }
        }
        out.picks = picks;
    }

    fn rumor_contact_unnecessary(&mut self, rc: RumorConfig) {
        // A node that never had news is not infective: nothing to lose.
        let Some(rumor) = self.extra.as_mut().and_then(|e| e.rumor.as_mut()) else {
            return;
        };
        if rumor.unnecessary_contact(rc.loss, &mut self.rng) {
            self.stats.count(Count::LostInterest);
        }
    }

    /// Applies a local write. If it changed the state and [`NodeConfig::push_on_write`] is on,
    /// pushes just the fresh entries to `fanout` peers immediately.
    pub fn write<R>(&mut self, now: Time, out: &mut Outbox, f: impl FnOnce(&mut S) -> R) -> R {
        let mut before = S::Digest::default();
        self.state.digest_into(&mut before);
        let result = f(&mut self.state);
        let mut after = S::Digest::default();
        self.state.digest_into(&mut after);
        if after != before {
            self.note_change(self.id);
            if matches!(self.config.protocol, Protocol::Rumor(_)) {
                self.extra
                    .get_or_insert_with(Default::default)
                    .rumor
                    .get_or_insert_with(Default::default)
                    .infect(&before, now);
            }
            if self.config.push_on_write {
                let picks = self.pick_peers(out);
                for &to in &picks {
                    self.send_push(to, Some(&before), out);
                }
                out.picks = picks;
            }
        }
        result
    }

    /// [`handle_message`](Node::handle_message) with every message it sends in reply cut to
    /// at most `reply_limit` bytes (a smaller digest, less of the delta): what a runtime uses
    /// towards an address that has not proven it receives, so that a forged source gets little
    /// more than it sent (QUIC's anti-amplification rule).
    pub fn handle_message_limited(
        &mut self,
        now: Time,
        from: NodeId,
        bytes: &[u8],
        out: &mut Outbox,
        reply_limit: usize,
    ) -> Result<(), DropReason> {
        self.reply_limit = u16::try_from(reply_limit.max(HEADER_BYTES + 1)).unwrap_or(u16::MAX);
        let result = self.handle_message(now, from, bytes, out);
        self.reply_limit = 0;
        result
    }

    /// Handles one datagram from `from`. On error the datagram was dropped, counted, and changed
    /// nothing.
    pub fn handle_message(
        &mut self,
        now: Time,
        from: NodeId,
        bytes: &[u8],
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        self.stats.count(Count::Received { bytes: bytes.len() });
        self.peer_digest_fresh = false;
        let result = self.dispatch(now, from, bytes, out);
        if let Err(reason) = result {
            self.stats.count(Count::Dropped(reason));
            log::debug!("{}: dropped datagram from {from}: {reason}", self.id);
        }
        result
    }

    fn dispatch(
        &mut self,
        now: Time,
        from: NodeId,
        bytes: &[u8],
        out: &mut Outbox,
    ) -> Result<(), DropReason> {
        if from == self.id {
            return Err(DropReason::FromSelf);
        }
        if bytes.len() > self.config.max_message_bytes as usize {
            return Err(DropReason::Oversized(bytes.len()));
        }
        let msg = Message::decode(bytes).map_err(|e| match e {
            DecodeError::UnknownKind(k) => DropReason::UnknownKind(k),
            e => DropReason::Malformed(e),
        })?;
        log::trace!("{} <- {from}: {}", self.id, msg.kind().name());
        match msg {
            Message::Push { delta } | Message::PullReply { delta } | Message::Ack { delta } => {
                self.apply(now, from, delta)?;
            }
            Message::PullRequest { digest } => {
                self.decode_peer_digest(digest)?;
                self.reply_delta(from, MessageKind::PullReply, out);
            }
            Message::Syn { digest } => {
                self.decode_peer_digest(digest)?;
                self.send_syn_ack(from, out);
            }
            Message::SynAck { digest, delta } => {
                // Check both halves before changing anything.
                self.decode_peer_digest(digest)?;
                self.apply(now, from, delta)?;
                self.reply_delta(from, MessageKind::Ack, out);
            }
            Message::Rumor { delta } => {
                let news = self.apply(now, from, delta)?;
                if let Protocol::Rumor(rc) = self.config.protocol
                    && rc.feedback == Feedback::Feedback
                {
                    // A node that never had news already knew it (it never heard it "now").
                    let known = !news
                        && self
                            .rumor()
                            .is_none_or(|r| r.already_known(rc.reading, now));
                    self.send_rumor_reply(from, known, out);
                }
            }
            Message::RumorReply { already_known } => {
                if let Protocol::Rumor(rc) = self.config.protocol {
                    if already_known {
                        self.rumor_contact_unnecessary(rc);
                    } else {
                        if let Some(rumor) = self.extra.as_mut().and_then(|e| e.rumor.as_mut()) {
                            rumor.necessary_contact(rc.reading);
                        }
                    }
                }
            }
            Message::RumorPull => {
                if let Protocol::Rumor(rc) = self.config.protocol
                    && self.is_hot()
                {
                    self.send_rumor(from, out);
                    if rc.feedback == Feedback::Blind {
                        self.rumor_contact_unnecessary(rc);
                    }
                }
            }
        }
        Ok(())
    }

    fn decode_peer_digest(&mut self, digest: &[u8]) -> Result<(), DropReason> {
        S::decode_digest_into(digest, &mut self.peer_digest).map_err(DropReason::Malformed)?;
        self.peer_digest_fresh = true;
        Ok(())
    }

    /// The digest the last message handled carried (a Syn, SynAck or PullRequest), as the
    /// engine decoded it, or `None` if that message had none. Layers above read a peer's
    /// digest here instead of decoding the message a second time.
    pub fn peer_digest(&self) -> Option<&S::Digest> {
        self.peer_digest_fresh.then_some(&self.peer_digest)
    }

    /// Opens an anti-entropy exchange with `to` now (in the configured mode), whatever the
    /// schedule: a layer above that knows the peer differs (a fingerprint mismatch) calls this
    /// instead of waiting for a round.
    pub fn exchange_with(&mut self, to: NodeId, out: &mut Outbox) {
        match self.config.mode {
            Mode::Push => {
                self.send_push(to, None, out);
            }
            Mode::Pull => self.send_digest(to, MessageKind::PullRequest, out),
            Mode::PushPull => self.send_digest(to, MessageKind::Syn, out),
        }
    }

    /// Pushes to each of `to` what a holder of `since` lacks (everything when `None`), one
    /// Push message each, cut to the message budget. Returns the entries in each push (0:
    /// nothing to tell, nothing sent).
    pub fn push_to(&mut self, to: &[NodeId], since: Option<&S::Digest>, out: &mut Outbox) -> usize {
        let mut entries = 0;
        for &peer in to {
            entries = self.send_push(peer, since, out);
        }
        entries
    }

    /// Writes into `buf` (cleared first) a message of `kind` for a destination the engine has
    /// no id for (a seed address): a `Syn`/`PullRequest` carries our digest, a `Push`/`PullReply`
    /// what a holder of `since` lacks, starting `rotation` entries in. Returns the entries
    /// written for a delta (0 means `buf` is left empty), 1 for a digest.
    pub fn encode_message(
        &mut self,
        kind: MessageKind,
        since: &S::Digest,
        rotation: u64,
        buf: &mut Vec<u8>,
    ) -> usize {
        buf.clear();
        buf.push(kind as u8);
        let budget = self.budget();
        match kind {
            MessageKind::Syn | MessageKind::PullRequest => {
                let mut digest = std::mem::take(&mut self.own_digest);
                self.state.digest_into(&mut digest);
                S::encode_digest(&digest, budget, rotation, buf);
                self.own_digest = digest;
                1
            }
            _ => {
                let written = self.state.write_delta(since, budget, rotation, buf);
                if written == 0 {
                    buf.clear();
                }
                written
            }
        }
    }

    /// Applies a delta received at `now`; returns whether it was news. Under rumor mongering news makes the node
    /// infective, with the rumor based on the digest held just before.
    fn apply(&mut self, now: Time, from: NodeId, delta: &[u8]) -> Result<bool, DropReason> {
        let rumor = matches!(self.config.protocol, Protocol::Rumor(_));
        if rumor && !self.is_hot() {
            self.state.digest_into(&mut self.own_digest);
        }
        if self
            .state
            .apply_delta(delta)
            .map_err(DropReason::Malformed)?
        {
            log::debug!("{} merged news from {from}", self.id);
            self.note_change(from);
            if rumor {
                // `own_digest` holds the pre-news digest when we were not hot; when we were,
                // `infect` keeps the older base and ignores it.
                self.extra
                    .get_or_insert_with(Default::default)
                    .rumor
                    .get_or_insert_with(Default::default)
                    .infect(&self.own_digest, now);
            }
            Ok(true)
        } else {
            self.stats.count(Count::Useless);
            Ok(false)
        }
    }

    fn note_change(&mut self, from: NodeId) {
        self.stats.count(Count::StateChange);
        if self.config.emit_events {
            self.extra
                .get_or_insert_with(Default::default)
                .events
                .push_back(Event::StateChanged { from });
        }
    }

    /// Picks this round's peers into the outbox's scratch list, which the caller hands back
    /// (`out.picks = picks`) when done so its allocation is reused.
    fn pick_peers(&mut self, out: &mut Outbox) -> Vec<NodeId> {
        let mut picks = std::mem::take(&mut out.picks);
        picks.clear();
        let fanout = self.config.fanout as usize;
        let candidates = match &self.peers {
            Peers::List(l) => Neighbors::List(l),
            Peers::Complete { n } => Neighbors::Complete { n: *n, me: self.id },
        };
        self.selector
            .select(self.id, &candidates, fanout, &mut self.rng, &mut picks);
        picks
    }

    /// Sends the hot rumor: what the holder of the rumor's base digest lacks.
    fn send_rumor(&mut self, to: NodeId, out: &mut Outbox) {
        let rotation = self.rng.random::<u64>();
        let start = out.begin();
        out.buf().push(MessageKind::Rumor as u8);
        let budget = self.budget();
        // Only an infective node sends its rumor, and it has the bookkeeping.
        let written = match self.extra.as_ref().and_then(|e| e.rumor.as_ref()) {
            Some(rumor) => self
                .state
                .write_delta(&rumor.base, budget, rotation, out.buf()),
            None => 0,
        };
        if written == 0 {
            // Nothing left to tell (the state was replaced under us): stop spreading.
            out.abort(start);
            if let Some(rumor) = self.extra.as_mut().and_then(|e| e.rumor.as_mut()) {
                rumor.hot = false;
            }
            return;
        }
        self.stats.count(Count::RumorSent);
        self.sent(to, start, MessageKind::Rumor, true, out);
    }

    fn send_rumor_reply(&mut self, to: NodeId, already_known: bool, out: &mut Outbox) {
        let start = out.begin();
        Message::RumorReply { already_known }.encode(out.buf());
        self.sent(to, start, MessageKind::RumorReply, false, out);
    }

    fn send_rumor_pull(&mut self, to: NodeId, out: &mut Outbox) {
        let start = out.begin();
        out.buf().push(MessageKind::RumorPull as u8);
        self.sent(to, start, MessageKind::RumorPull, false, out);
    }

    fn budget(&self) -> usize {
        let full = self.message_budget();
        match self.reply_limit {
            0 => full,
            limit => full.min((limit as usize).saturating_sub(HEADER_BYTES)),
        }
    }

    /// Bytes one message has for its digest or delta (the message size less its header): the
    /// largest delta [`encode_message`](Node::encode_message) and pushes carry.
    pub fn message_budget(&self) -> usize {
        self.config.max_message_bytes as usize - HEADER_BYTES
    }

    /// Sends our entries the holder of `since` lacks (everything, when `since` is `None`).
    fn send_push(&mut self, to: NodeId, since: Option<&S::Digest>, out: &mut Outbox) -> usize {
        let empty;
        let since = match since {
            Some(d) => d,
            None => {
                empty = S::Digest::default();
                &empty
            }
        };
        let rotation = self.rng.random::<u64>();
        let start = out.begin();
        out.buf().push(MessageKind::Push as u8);
        let budget = self.budget();
        let written = self.state.write_delta(since, budget, rotation, out.buf());
        if written == 0 {
            out.abort(start);
            return 0;
        }
        self.sent(to, start, MessageKind::Push, true, out);
        written
    }

    fn send_digest(&mut self, to: NodeId, kind: MessageKind, out: &mut Outbox) {
        let mut digest = std::mem::take(&mut self.own_digest);
        self.state.digest_into(&mut digest);
        let rotation = self.rng.random::<u64>();
        let start = out.begin();
        out.buf().push(kind as u8);
        S::encode_digest(&digest, self.budget(), rotation, out.buf());
        self.own_digest = digest;
        self.sent(to, start, kind, false, out);
    }

    /// Answers a digest (already decoded into `peer_digest`) with what its sender lacks.
    fn reply_delta(&mut self, to: NodeId, kind: MessageKind, out: &mut Outbox) {
        let rotation = self.rng.random::<u64>();
        let start = out.begin();
        out.buf().push(kind as u8);
        let budget = self.budget();
        if self
            .state
            .write_delta(&self.peer_digest, budget, rotation, out.buf())
            == 0
        {
            out.abort(start);
            return;
        }
        self.sent(to, start, kind, true, out);
    }

    /// SynAck: our digest (length-prefixed, at most half the budget) and the initiator's delta.
    fn send_syn_ack(&mut self, to: NodeId, out: &mut Outbox) {
        let rotation = self.rng.random::<u64>();
        let start = out.begin();
        out.buf().push(MessageKind::SynAck as u8);
        // Reserve a fixed 3-byte length (a padded varint, which the reader accepts), write the
        // digest after it, then patch the length in: one buffer, no allocation.
        let len_at = out.buf().len();
        out.buf().extend_from_slice(&[0x80, 0x80, 0x00]);
        let mut ours = std::mem::take(&mut self.own_digest);
        self.state.digest_into(&mut ours);
        let digest_budget = (self.budget() / 2).saturating_sub(DIGEST_PREFIX_BYTES);
        S::encode_digest(&ours, digest_budget, rotation, out.buf());
        self.own_digest = ours;
        let digest_len = out.buf().len() - len_at - DIGEST_PREFIX_BYTES;
        let buf = out.buf();
        buf[len_at] = 0x80 | (digest_len & 0x7f) as u8;
        buf[len_at + 1] = 0x80 | ((digest_len >> 7) & 0x7f) as u8;
        buf[len_at + 2] = ((digest_len >> 14) & 0x7f) as u8;
        let budget = self
            .budget()
            .saturating_sub(DIGEST_PREFIX_BYTES + digest_len);
        let delta_at = out.buf().len();
        self.state
            .write_delta(&self.peer_digest, budget, rotation, out.buf());
        let carries_delta = out.buf().len() > delta_at;
        self.sent(to, start, MessageKind::SynAck, carries_delta, out);
    }

    /// Closes the datagram opened at `start`; `carries_delta` says whether its delta is
    /// non-empty (see [`Datagram::carries_delta`](crate::Datagram::carries_delta)).
    #[inline]
    fn sent(
        &mut self,
        to: NodeId,
        start: usize,
        kind: MessageKind,
        carries_delta: bool,
        out: &mut Outbox,
    ) {
        let len = out.commit(to, start, carries_delta);
        self.stats.count(Count::Sent { bytes: len });
        log::trace!("{} -> {to}: {} ({len} bytes)", self.id, kind.name());
    }
}
