//! SWIM membership with Lifeguard's refinements, sans-IO: [`Swim`].
//!
//! Why this exists: the φ-accrual membership of [`ClusterNode`](crate::ClusterNode) needs every
//! node's heartbeat to reach everyone, which costs O(N) state per round. SWIM costs one ping and
//! one ack per node per probe period whatever N is, detects a crash within a few periods, and
//! spreads membership changes by piggybacking on those probes (hashicorp/memberlist's
//! semantics, foca's sans-IO shape). On top of SWIM it keeps Lifeguard's three refinements:
//! nacks from indirect-probe helpers, a local-health score that stretches this node's own
//! timeouts when it is the slow one, and suspicion timers that shrink as independent members
//! confirm a suspicion. Identities are versioned `(generation, incarnation)`: a restart (higher
//! generation) overrides everything the old process said.
//!
//! The state machine owns no socket, thread, clock or entropy: it is given `now`, payloads
//! (already authenticated: the caller passes the sender's id and generation from the envelope)
//! and commands, and hands back payloads to send ([`Swim::poll_transmit`]), a deadline
//! ([`Swim::poll_timeout`]) and [`ClusterEvent`]s ([`Swim::poll_event`]). All randomness comes
//! from a PCG seeded by the caller.
//!
//! # Wire format
//!
//! Every payload is `type byte, fixed fields, count varint, count items`. Ids are 8 bytes
//! little-endian; `seq`, generations, incarnations and lengths are LEB128 varints; an address
//! is a family byte (4 or 6), the IP bytes and a 2-byte little-endian port.
//!
//! | type | name     | fixed fields                    | items   | meaning |
//! |------|----------|---------------------------------|---------|---------|
//! | 1    | Ping     | seq, target id                  | updates | are you alive? (`target` is who the prober thinks it pings) |
//! | 2    | Ack      | seq, target id                  | updates | `target` answered ping `seq` (directly, or relayed by a helper) |
//! | 3    | PingReq  | seq, target id, target addr     | updates | please ping `target` for me and relay its ack (or a nack) |
//! | 4    | Nack     | seq, target id                  | updates | a helper's ping of `target` went unanswered |
//! | 5    | PushPull | flags (1 = reply wanted, 0 = reply) | records | membership table (join, reply, partition healing) |
//! | 6    | Gossip   | —                               | updates | pending broadcasts only |
//! | 7    | Whois    | —                               | updates | "who are you?" from a member that does not know the sender; answered by a Gossip of the sender's own Alive |
//!
//! An **update** is `kind byte (1 Alive, 2 Suspect, 3 Dead), member id, generation,
//! incarnation`, then for Alive `name (length-prefixed, ≤ 128 bytes), addr`, else the `from`
//! id of the accuser. A Dead whose `from` is the member itself is a graceful leave. A
//! **record** is `status byte (0 Alive, 1 Suspect, 2 Dead, 3 Left), id, generation,
//! incarnation, name, addr`. Counts are bounded by the bytes left (every item is at least 12
//! bytes) and by 8,192; a message is validated completely before any of it is applied.
//!
//! # Beyond memberlist
//!
//! * A message from a sender this node does not know (or knows with an older generation)
//!   means gossip missed it (its announcement was retired before reaching us): the node asks
//!   that sender for its table
//!   (a push-pull), at most once per 10 probe periods. Idle clusters never trigger it.
//! * A Suspect or Dead about this node at an incarnation it has already refuted means the
//!   accuser missed the refutation: the node re-announces its current incarnation.
//! * Every probe pass, if any member is Dead, the whole table (at most 64 payloads) is pushed
//!   to one random Dead member, so the two sides of a healed partition re-merge.

mod broadcast;
mod config;
mod suspicion;
mod table;
pub(crate) mod wire;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::hash::Hasher;
use std::net::SocketAddr;
use std::time::Duration;

use gossiper_types::{DecodeError, NodeId, Time};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::{ClusterEvent, MemberStatus};
use broadcast::BroadcastQueue;
pub use config::SwimConfig;
use suspicion::Suspicion;
use table::{MemberTable, NewMember, Rec};
use wire::{Header, Kind, Record, Update};

/// How long a dead member still receives gossip (memberlist's `GossipToTheDeadTime`).
const GOSSIP_TO_THE_DEAD: Duration = Duration::from_secs(30);
/// Most push-pull reply payloads per request.
const MAX_PUSH_PULL_PAYLOADS: usize = 64;
/// Most pending broadcasts.
const QUEUE_BOUND: usize = 4_096;
/// Most pending outgoing payloads; beyond it new ones are dropped (the caller is not polling).
const OUTBOX_BOUND: usize = 4_096;
/// Most pending events; beyond it the oldest are dropped (the caller is not polling).
const EVENT_BOUND: usize = 16_384;
/// Most verification pings in flight, and most tables waiting for one (a mass start sends a
/// seed this many joins at once; a flood of forged ones evicts the oldest, whose joiners retry).
const HANDSHAKE_BOUND: usize = 1_024;
/// Most stale-view corrections sent per probe period.
const CORRECTIONS_PER_PERIOD: u32 = 16;
/// Acks per probe period that carry piggybacked news; later ones in the same period go bare.
/// A member is pinged about once a period (its turn in others' probe passes, and a few
/// indirect pings when they fail), so this never binds then; a burst of pings (every member
/// verifying a newcomer at once, or a flood) would otherwise spend each update's few
/// retransmissions on the pingers alone, and a refutation would not reach the rest in time.
const FULL_ACKS_PER_PERIOD: u32 = 4;
/// Most indirect probes run for others at once.
const RELAY_BOUND: usize = 64;
/// At most one table sync with an unknown sender per this many probe periods.
const SYNC_PERIODS: u32 = 10;
/// Probe periods a node's live list must have been still before a fingerprint mismatch
/// starts a whole-table exchange: longer than the gaps between joins in a storm, short enough
/// that a gap gossip missed is repaired within a few hundred ms once joins stop.
const STILL_PERIODS: u32 = 3;
/// How often (in probe periods) the tables' spare capacity is checked.
const COMPACT_PERIODS: u32 = 50;
/// Final pings an unconfirmed suspicion gets before the verdict, two probe periods apart.
const LAST_CHANCES: u8 = 3;
/// How many removed members are remembered, to ignore stale news about them.
const REMOVED_MEMORY: usize = 1_024;
/// How long a member declared dead that nobody here ever heard from directly (a ghost, most
/// likely, or a real member this node had not verified yet) stays listed as dead before it is
/// forgotten; members heard from stay for the configured grace period.
const UNHEARD_DEAD_GRACE: Duration = Duration::from_secs(5);
/// Verification pings a member learned second-hand gets before it is suspected, one probe
/// period apart (three: under 10 % loss a live member fails all of them 0.7 % of the time,
/// and a suspicion still gives it its last chances).
const VERIFY_TRIES: u8 = 3;
/// A node waits a random whole number of probe periods below this, drawn once, before it
/// verifies a member it learned second-hand: a joiner is then pinged by the cluster spread
/// over this many periods rather than by every member in the same one.
const VERIFY_SPREAD_PERIODS: u32 = 10;

/// This node, as it announces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMember {
    /// Its id (usually [`NodeId::from_name`] of `name`).
    pub id: NodeId,
    /// Its name, at most 128 bytes on the wire (longer names are cut).
    pub name: String,
    /// The address peers reach it at.
    pub addr: SocketAddr,
    /// This start's generation: must grow from one start to the next.
    pub generation: u64,
}

/// A member known before any message arrives (from a saved member list, as Serf's snapshot
/// rejoin, or a simulator starting from a formed cluster): see [`Swim::restore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownMember<'a> {
    /// Its id.
    pub id: NodeId,
    /// Its name.
    pub name: &'a str,
    /// Its address.
    pub addr: SocketAddr,
    /// Its generation, as last known.
    pub generation: u64,
    /// Its incarnation, as last known.
    pub incarnation: u64,
}

/// What this node knows of another member (a copy: the table itself is packed, see
/// `table.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwimMember {
    /// Its id.
    pub id: NodeId,
    /// Its name (inline up to 24 bytes).
    pub name: compact_str::CompactString,
    /// Its address.
    pub addr: SocketAddr,
    /// Its generation (process start).
    pub generation: u64,
    /// Its incarnation within that generation.
    pub incarnation: u64,
    /// Alive, Suspect, Dead or Left.
    pub status: MemberStatus,
    /// When `status` last changed, rounded up to a whole second.
    pub since: Time,
}

/// One `(member, generation)`'s share of [`Swim::membership_fingerprint`].
fn fp_share(id: NodeId, generation: u64) -> u64 {
    let mix = |mut x: u64| {
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    mix(id.0 ^ mix(generation))
}

/// Counters, monotonically increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwimStats {
    /// Pings sent by this node's own probes and on behalf of others.
    pub pings_sent: u64,
    /// Acks that completed one of this node's probes.
    pub acks_received: u64,
    /// Indirect-probe requests sent.
    pub ping_reqs_sent: u64,
    /// Nacks received from helpers.
    pub nacks_received: u64,
    /// Probes answered neither directly nor indirectly.
    pub probes_failed: u64,
    /// Suspicion timers started.
    pub suspicions_started: u64,
    /// Independent confirmations counted against running suspicions.
    pub confirmations: u64,
    /// Times this node refuted a claim about itself.
    pub refutations: u64,
    /// Accusations at an incarnation already refuted, answered to the accuser directly.
    pub direct_refutations: u64,
    /// Accusations about others at an incarnation already refuted, answered to the sender
    /// with the member's current Alive.
    pub stale_corrections: u64,
    /// Members this node declared dead itself (its suspicion timer ran out).
    pub deaths_declared: u64,
    /// Updates piggybacked onto outgoing payloads.
    pub broadcasts_sent: u64,
    /// Updates dropped from the full queue, and payloads dropped from a full outbox.
    pub broadcasts_dropped: u64,
    /// Updates ignored as stale or redundant.
    pub updates_ignored: u64,
    /// Unknown members refused because the table is full.
    pub members_refused: u64,
    /// Push-pull requests answered.
    pub join_requests_answered: u64,
    /// Push-pull requests from an address not yet verified, whose table waited for the
    /// asker's ack.
    pub tables_deferred: u64,
    /// Table exchanges started because a peer's membership fingerprint differed (each sends
    /// this node's per-bucket fingerprints, 514 bytes).
    pub table_syncs: u64,
    /// Per-bucket fingerprints answered with the records of the buckets that differed.
    pub bucket_exchanges: u64,
    /// Suspicions nobody confirmed within the longest timeout, given one more ping.
    pub last_chance_pings: u64,
    /// Whois requests sent to senders this node did not know.
    pub whois_sent: u64,
    /// Updates about this node at a newer generation than its own (see
    /// [`Swim::take_generation_claim`]).
    pub generation_claims: u64,
    /// Second-hand Alive updates that would have moved a live member to another address,
    /// ignored (memberlist's "conflicting address"): only the member itself, or its death,
    /// moves it.
    pub address_conflicts: u64,
    /// Verification pings sent to members learned second-hand.
    pub verifications_sent: u64,
    /// Members learned second-hand that never answered their verification pings, suspected
    /// (only while fewer than ⅛ of the live members were heard from directly).
    pub unheard_suspected: u64,
    /// Members learned second-hand and never heard from, evicted from a full table to make
    /// room for a member heard first-hand.
    pub unheard_evicted: u64,
}

/// Whether the caller of `learn` vouches for a member (a restored member list) or it was
/// only heard of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vouched {
    Yes,
    No,
}

/// A member learned second-hand, waiting for its next verification ping.
#[derive(Debug, Clone, Copy)]
struct Unheard {
    id: NodeId,
    due: Time,
    tries: u8,
}

/// Hashes a [`NodeId`] (already a hash of a name) with the splitmix64 finalizer: fast and
/// deterministic, no per-process random state.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// This node's probe in flight.
#[derive(Debug, Clone)]
struct Probe {
    target: NodeId,
    addr: SocketAddr,
    seq: u64,
    indirect_at: Time,
    deadline: Time,
    acked: bool,
    indirect_sent: bool,
    helpers: Vec<NodeId>,
    /// Bit i set when helper i nacked.
    nacked: u64,
}

/// An indirect probe run for another member.
#[derive(Debug, Clone, Copy)]
struct Relay {
    seq: u64,
    target: NodeId,
    requester: SocketAddr,
    requester_seq: u64,
    deadline: Time,
}

/// A payload to produce at the next [`Swim::poll_transmit`].
#[derive(Debug, Clone)]
enum Out {
    Ping {
        to: SocketAddr,
        seq: u64,
        target: NodeId,
    },
    Ack {
        to: SocketAddr,
        seq: u64,
        target: NodeId,
        /// Most payload bytes (piggyback included): a reply to an address that has not proven
        /// it receives is at most `REFLECTION_FACTOR` times the ping.
        room: usize,
    },
    PingReq {
        to: SocketAddr,
        seq: u64,
        target: NodeId,
        addr: SocketAddr,
    },
    Nack {
        to: SocketAddr,
        seq: u64,
        target: NodeId,
    },
    Gossip {
        to: SocketAddr,
    },
    Join {
        to: SocketAddr,
    },
    Raw {
        to: SocketAddr,
        bytes: Vec<u8>,
    },
}

/// The SWIM + Lifeguard membership state machine (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Swim {
    local: LocalMember,
    config: SwimConfig,
    rng: Pcg64Mcg,
    incarnation: u64,
    table: MemberTable,
    /// Live-list positions before this one were probed in this pass.
    probe_pos: usize,
    probe: Option<Probe>,
    relays: Vec<Relay>,
    suspicions: Vec<Suspicion>,
    queue: BroadcastQueue,
    outbox: VecDeque<Out>,
    events: VecDeque<ClusterEvent>,
    stats: SwimStats,
    health: u32,
    seq: u64,
    next_probe: Time,
    next_gossip: Time,
    next_reap: Time,
    next_sync: Time,
    leaving: bool,
    recent_dead: Vec<(NodeId, Time)>,
    removed: VecDeque<(NodeId, u64, u64)>,
    scratch: Vec<u8>,
    picks: Vec<usize>,
    /// The live members' shares of [`Swim::membership_fingerprint`], kept up to date as they
    /// join, leave the live list or change generation.
    live_fp: u64,
    /// The same shares per bucket (`wire::bucket`), so that a mismatch is narrowed to the
    /// buckets that differ before any record is sent.
    bucket_fp: [u64; wire::BUCKETS],
    /// Bumped whenever the live list changes (see [`Swim::live_changes`]).
    live_changes: u64,
    /// When the live list last changed (as of the last input).
    live_changed_at: Time,
    /// When the last whole-table exchange for a fingerprint mismatch started.
    last_table_sync: Time,
    /// Next check of the tables' spare capacity.
    next_compact: Time,
    /// Senders recently asked who they are (see `may_ask_whois`).
    whois_asked: Vec<(NodeId, Time)>,
    /// The newest generation claimed for this node by others, not yet taken.
    generation_claim: Option<u64>,
    /// The envelope sender and source address of the message being applied: news about a
    /// member from that member itself, at that address, is first-hand.
    first_hand: Option<(NodeId, SocketAddr)>,
    /// Stale-view corrections left this probe period (see `correct_stale`).
    corrections_left: u32,
    /// Acks left this probe period that may carry news (see `FULL_ACKS_PER_PERIOD`).
    full_acks_left: u32,
    /// Verification pings in flight: (seq, member, address).
    verifying: Vec<(u64, NodeId, SocketAddr)>,
    /// Members learned second-hand, in the order they are to be verified (see
    /// `verify_unheard`): a forged member nobody answers for is suspected within a few
    /// periods instead of waiting for its turn in a probe pass of the whole table.
    unheard: VecDeque<Unheard>,
    /// Those of `unheard` already pinged and not yet answered, pinged again before any new
    /// one, so a ghost is suspected `VERIFY_TRIES` periods after its first ping.
    unheard_retries: VecDeque<Unheard>,
    /// Scratch space of `pick_live`.
    verified_scratch: Vec<usize>,
    /// This node's wait before verifying a member learned second-hand (see
    /// `VERIFY_SPREAD_PERIODS`).
    verify_delay: Duration,
    /// Tables owed to askers whose address is being verified: (asker, address, whether to
    /// ask for theirs, buckets).
    deferred: Vec<(NodeId, SocketAddr, bool, Option<u64>)>,
    /// The time of the input being handled.
    now: Time,
}

impl Swim {
    /// A node alone in its cluster; [`join`](Swim::join) to meet others. An invalid `config`
    /// is used as is: call [`SwimConfig::validate`] first.
    pub fn new(local: LocalMember, config: SwimConfig, now: Time, seed: u64) -> Swim {
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5717_5eed_0000_0001);
        let stagger = rng.random_range(0..config.probe_interval_ms.max(1));
        // From the seed, not the RNG, so that adding it moved no other random choice.
        let spread = fp_share(NodeId(seed), 0x7e21_f1ed) % u64::from(VERIFY_SPREAD_PERIODS);
        let verify_delay = Duration::from_millis(config.probe_interval_ms * spread);
        Swim {
            local,
            rng,
            incarnation: 0,
            table: MemberTable::default(),
            probe_pos: 0,
            probe: None,
            relays: Vec::new(),
            suspicions: Vec::new(),
            queue: BroadcastQueue::new(QUEUE_BOUND),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: SwimStats::default(),
            health: 0,
            seq: 0,
            next_probe: now + Duration::from_millis(stagger),
            next_gossip: now,
            next_reap: Time::NEVER,
            next_sync: now,
            leaving: false,
            recent_dead: Vec::new(),
            removed: VecDeque::new(),
            scratch: Vec::new(),
            picks: Vec::new(),
            live_fp: 0,
            bucket_fp: [0; wire::BUCKETS],
            live_changes: 0,
            live_changed_at: now,
            last_table_sync: now,
            next_compact: now,
            whois_asked: Vec::new(),
            generation_claim: None,
            first_hand: None,
            corrections_left: CORRECTIONS_PER_PERIOD,
            full_acks_left: FULL_ACKS_PER_PERIOD,
            verifying: Vec::new(),
            unheard: VecDeque::new(),
            unheard_retries: VecDeque::new(),
            verified_scratch: Vec::new(),
            verify_delay,
            deferred: Vec::new(),
            now,
            config,
        }
    }

    /// Sends a join request (a push-pull of membership) to each address; call again to retry.
    pub fn join(&mut self, _now: Time, seeds: &[SocketAddr]) {
        for &to in seeds {
            if to != self.local.addr {
                self.send(Out::Join { to });
            }
        }
    }

    /// Adds members as Alive without hearing from them, nothing broadcast: they are what the
    /// cluster already knows (the node then probes them as any other). Members already known,
    /// and this node itself, are left as they are; the table bound applies.
    pub fn restore<'a>(&mut self, now: Time, members: impl IntoIterator<Item = KnownMember<'a>>) {
        self.now = self.now.max(now);
        let members = members.into_iter();
        let (low, high) = members.size_hint();
        let room = self.config.max_members.saturating_sub(self.table.len());
        self.table.reserve(high.unwrap_or(low).min(room));
        for m in members {
            if m.id == self.local.id || self.table.slot(m.id).is_some() {
                continue;
            }
            let u = Update {
                kind: Kind::Alive,
                id: m.id,
                generation: m.generation,
                incarnation: m.incarnation,
                from: m.id,
                name: m.name,
                addr: Some(m.addr),
            };
            self.learn(now, &u, false, Vouched::Yes);
        }
    }

    /// Runs whatever timers are due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.now = self.now.max(now);
        self.expire_relays(now);
        if let Some(p) = &self.probe
            && !p.acked
            && !p.indirect_sent
            && now >= p.indirect_at
        {
            self.send_indirect();
        }
        if self.probe.as_ref().is_some_and(|p| now >= p.deadline) {
            self.finish_probe(now);
        }
        if !self.leaving && now >= self.next_probe {
            self.start_probe(now);
        }
        while let Some(i) = self.suspicions.iter().position(|s| s.deadline <= now) {
            let still = self.rec(self.suspicions[i].id).is_some_and(|m| {
                let s = &self.suspicions[i];
                m.status == MemberStatus::Suspect
                    && (m.generation, m.incarnation) == (s.generation, s.incarnation)
            });
            let s = &mut self.suspicions[i];
            if still && s.k > 0 && s.confirmers.is_empty() && s.last_chances < LAST_CHANCES {
                // Nobody confirmed in the whole (longest) timeout, though in a real crash
                // every prober would have: more likely the member's refutation was lost.
                // Ping it again (up to LAST_CHANCES times, a ping may be lost too), the
                // suspicion attached; its ack carries the refutation.
                s.last_chances += 1;
                s.deadline = now + self.config.probe_interval() * 2;
                let id = s.id;
                if let Some(to) = self.rec(id).map(Rec::addr) {
                    self.seq += 1;
                    self.stats.pings_sent += 1;
                    self.stats.last_chance_pings += 1;
                    let seq = self.seq;
                    self.send(Out::Ping {
                        to,
                        seq,
                        target: id,
                    });
                }
                continue;
            }
            let s = self.suspicions.swap_remove(i);
            if still {
                self.stats.deaths_declared += 1;
                let from = self.local.id;
                self.apply(now, &dead(s.id, s.generation, s.incarnation, from), true);
            }
        }
        if now >= self.next_gossip && !self.queue.is_empty() {
            self.next_gossip = now + self.config.gossip_interval();
            self.gossip(now);
        }
        if now >= self.next_reap {
            self.reap(now);
        }
        if now >= self.next_compact {
            self.next_compact = now + self.config.probe_interval() * COMPACT_PERIODS;
            self.compact(now);
        }
    }

    /// Once the membership has been still for a while, gives back the tables' growth slack
    /// (up to half of each after the doublings of a join storm).
    fn compact(&mut self, now: Time) {
        let still = now >= self.live_changed_at + self.config.probe_interval() * SYNC_PERIODS;
        if still && self.table.slack() {
            self.table.shrink();
        }
    }

    /// Applies one received payload. `sender`/`sender_generation` come from the authenticated
    /// envelope the caller opened. On a decoding error nothing changed.
    pub fn handle_message(
        &mut self,
        now: Time,
        from: SocketAddr,
        sender: NodeId,
        sender_generation: u64,
        payload: &[u8],
    ) -> Result<(), DecodeError> {
        self.first_hand = Some((sender, from));
        let result = self.apply_message(now, from, sender, sender_generation, payload);
        self.first_hand = None;
        result
    }

    fn apply_message(
        &mut self,
        now: Time,
        from: SocketAddr,
        sender: NodeId,
        sender_generation: u64,
        payload: &[u8],
    ) -> Result<(), DecodeError> {
        self.now = self.now.max(now);
        let header = wire::validate(payload)?;
        if sender == self.local.id {
            return Ok(());
        }
        if self
            .member_generation(sender)
            .is_some_and(|g| g > sender_generation)
        {
            // A process older than the one we know: its news is stale.
            self.stats.updates_ignored += 1;
            return Ok(());
        }
        let gap = self
            .member_generation(sender)
            .is_none_or(|g| g < sender_generation);
        if gap && !self.leaving && self.may_ask_whois(now, sender) {
            // Someone who knows us is unknown to us, or newer than we know: our table has a
            // gap that gossip missed (the announcement was retired before reaching us). Ask
            // it who it is: one small datagram each way, at most once a second per sender.
            let mut p = Vec::with_capacity(2);
            wire::put_header(&mut p, &Header::Whois);
            wire::put_count(&mut p, 0);
            self.stats.whois_sent += 1;
            self.send(Out::Raw { to: from, bytes: p });
        }
        if header == Header::Whois && !self.leaving {
            self.send(Out::Raw {
                to: from,
                bytes: one_update(&self.own_alive()),
            });
        }
        let (_, n, mut r) = wire::read_header(payload)?;
        if let Header::PushPull {
            reply_wanted,
            buckets,
        } = header
        {
            for _ in 0..n {
                let rec = wire::read_record(&mut r)?;
                self.merge_record(now, &rec, sender);
            }
            if reply_wanted {
                self.stats.join_requests_answered += 1;
                if self.is_verified(sender, from) {
                    self.push_table(from, false, buckets);
                } else {
                    self.defer_table(sender, from, false, buckets);
                }
            }
            return Ok(());
        }
        if let Header::Buckets { bits, fps } = header {
            // Answer with the buckets that differ, asking for the sender's in return.
            let ours = wire::fold(&self.bucket_fps(), bits);
            let shift = wire::BUCKET_BITS - bits;
            let mask = (0..wire::BUCKETS)
                .filter(|&b| fps[b >> shift] != ours[b >> shift])
                .fold(0u64, |m, b| m | (1 << b));
            if mask != 0 && !self.leaving {
                self.stats.bucket_exchanges += 1;
                if self.is_verified(sender, from) {
                    self.push_table(from, true, Some(mask));
                } else {
                    self.defer_table(sender, from, true, Some(mask));
                }
            }
            return Ok(());
        }
        for _ in 0..n {
            let u = wire::read_update(&mut r)?;
            self.apply(now, &u, true);
        }
        match header {
            Header::Ping { seq, target } => {
                if target == self.local.id {
                    // Piggyback rides full on acks to live members at their known address (the
                    // news they carry — refutations above all — must spread even where nobody
                    // has probed whom yet); a stranger's ping gets at most 3× back.
                    // (A verified member is a known one: one lookup serves both.)
                    let known = self
                        .rec(sender)
                        .is_some_and(|r| r.is_live() && r.addr() == from);
                    let room = if known && self.full_acks_left > 0 {
                        self.full_acks_left -= 1;
                        self.config.max_payload
                    } else if known {
                        0
                    } else {
                        crate::node::REFLECTION_FACTOR * payload.len()
                    };
                    self.send(Out::Ack {
                        to: from,
                        seq,
                        target,
                        room,
                    });
                }
            }
            Header::Ack { seq, target } => self.on_ack(seq, target, sender),
            Header::PingReq { seq, target, addr } => self.on_ping_req(now, from, seq, target, addr),
            Header::Nack { seq, target } => {
                if let Some(p) = self
                    .probe
                    .as_mut()
                    .filter(|p| p.seq == seq && p.target == target)
                    && let Some(i) = p.helpers.iter().position(|&h| h == sender)
                    && p.nacked & (1 << i) == 0
                {
                    p.nacked |= 1 << i;
                    self.stats.nacks_received += 1;
                }
            }
            Header::PushPull { .. } | Header::Gossip | Header::Whois | Header::Buckets { .. } => {}
        }
        Ok(())
    }

    /// Writes the next payload into `out` (cleared first) and returns its destination.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<SocketAddr> {
        loop {
            let o = crate::pop_releasing(&mut self.outbox)?;
            out.clear();
            let mut room_left = self.config.max_payload;
            let (to, header, suspect_first) = match o {
                Out::Raw { to, bytes } => {
                    out.extend_from_slice(&bytes);
                    return Some(to);
                }
                Out::Join { to } => {
                    wire::put_header(
                        out,
                        &Header::PushPull {
                            reply_wanted: true,
                            buckets: None,
                        },
                    );
                    wire::put_count(out, 1);
                    wire::put_record(out, &self.own_record());
                    return Some(to);
                }
                Out::Ping { to, seq, target } => {
                    // The record itself, not a copy with its name: this runs for every ping.
                    let suspect = self
                        .rec(target)
                        .filter(|m| m.status == MemberStatus::Suspect)
                        .map(|m| suspect(m.id, m.generation, m.incarnation, self.local.id));
                    (to, Header::Ping { seq, target }, suspect)
                }
                Out::Ack {
                    to,
                    seq,
                    target,
                    room,
                } => {
                    room_left = room.min(room_left);
                    (to, Header::Ack { seq, target }, None)
                }
                Out::Nack { to, seq, target } => (to, Header::Nack { seq, target }, None),
                Out::PingReq {
                    to,
                    seq,
                    target,
                    addr,
                } => (to, Header::PingReq { seq, target, addr }, None),
                Out::Gossip { to } => {
                    if self.queue.is_empty() {
                        continue;
                    }
                    (to, Header::Gossip, None)
                }
            };
            wire::put_header(out, &header);
            let mut items = std::mem::take(&mut self.scratch);
            items.clear();
            let mut n = 0;
            if let Some(s) = suspect_first {
                wire::put_update(&mut items, &s);
                n += 1;
            }
            let budget = room_left.saturating_sub(out.len() + wire::COUNT_RESERVE + items.len());
            let sent = self.queue.fill(&mut items, budget, self.retransmit_limit());
            self.stats.broadcasts_sent += sent as u64;
            n += sent;
            if n == 0 && matches!(header, Header::Gossip) {
                self.scratch = items;
                continue;
            }
            wire::put_count(out, n);
            out.extend_from_slice(&items);
            self.scratch = items;
            return Some(to);
        }
    }

    /// The next time [`handle_timeout`](Swim::handle_timeout) has work to do.
    pub fn poll_timeout(&self) -> Time {
        let mut t = if self.leaving {
            Time::NEVER
        } else {
            self.next_probe
        };
        if let Some(p) = &self.probe {
            if !p.acked && !p.indirect_sent {
                t = t.min(p.indirect_at);
            }
            t = t.min(p.deadline);
        }
        for r in &self.relays {
            t = t.min(r.deadline);
        }
        for s in &self.suspicions {
            t = t.min(s.deadline);
        }
        if !self.queue.is_empty() {
            t = t.min(self.next_gossip);
        }
        t.min(self.next_reap)
    }

    /// The next membership change, oldest first.
    pub fn poll_event(&mut self) -> Option<ClusterEvent> {
        crate::pop_releasing(&mut self.events)
    }

    /// Graceful leave: broadcasts Left about itself at once to several members and stops
    /// probing. Pending broadcasts keep being gossiped.
    pub fn leave(&mut self, now: Time) {
        self.leaving = true;
        self.probe = None;
        self.relays.clear();
        let (id, g, inc) = (self.local.id, self.local.generation, self.incarnation);
        let d = dead(id, g, inc, id);
        self.stats.broadcasts_dropped += self.queue.push(id, |b| wire::put_update(b, &d));
        let k = self.config.gossip_nodes.max(3);
        self.pick_live(k, None);
        for i in 0..self.picks.len() {
            let to = self.table.rec(self.table.live_slot(self.picks[i])).addr();
            self.send(Out::Gossip { to });
        }
        self.next_gossip = now + self.config.gossip_interval();
    }

    /// Every other member known, in a deterministic order (not self).
    pub fn members(&self) -> impl Iterator<Item = SwimMember> + '_ {
        (0..self.table.len()).map(|s| self.table.view(s))
    }

    /// How many other members are known (any status).
    pub fn member_count(&self) -> usize {
        self.table.len()
    }

    /// One member (not self).
    pub fn member(&self, id: NodeId) -> Option<SwimMember> {
        self.table.slot(id).map(|s| self.table.view(s))
    }

    /// How many members are Alive or Suspect (the peers to gossip with), self excluded.
    pub fn live_len(&self) -> usize {
        self.table.live_len()
    }

    /// The `i`th of the [`live_len`](Swim::live_len) live members, in no particular (but
    /// deterministic) order.
    pub fn live_id(&self, i: usize) -> NodeId {
        self.table.live_id(i)
    }

    /// Whether `id` is Alive or Suspect here.
    pub fn is_live(&self, id: NodeId) -> bool {
        self.rec(id).is_some_and(Rec::is_live)
    }

    /// Where member `id` (not self) is reached.
    pub fn member_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.rec(id).map(Rec::addr)
    }

    /// Member `id`'s generation (not self).
    pub fn member_generation(&self, id: NodeId) -> Option<u64> {
        self.rec(id).map(|r| r.generation)
    }

    /// Every other member's status, in [`members`](Swim::members)' order, without copying
    /// the members.
    pub fn statuses(&self) -> impl Iterator<Item = MemberStatus> + '_ {
        self.table.records().iter().map(|r| r.status)
    }

    /// The name of member `id` (not self).
    pub fn member_name(&self, id: NodeId) -> Option<&str> {
        self.rec(id).map(|r| self.table.name(r))
    }

    fn rec(&self, id: NodeId) -> Option<&Rec> {
        self.table.get(id)
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// This node.
    pub fn local(&self) -> &LocalMember {
        &self.local
    }

    /// The caller bumped its generation (restart or rebirth): incarnation back to 0, Alive
    /// broadcast.
    pub fn set_generation(&mut self, g: u64) {
        self.local.generation = g;
        self.incarnation = 0;
        self.leaving = false;
        self.broadcast_self();
    }

    /// The newest generation someone claimed for this node, beyond its own, once: the caller
    /// refutes it by moving to a higher generation ([`set_generation`](Swim::set_generation)).
    pub fn take_generation_claim(&mut self) -> Option<u64> {
        self.generation_claim.take()
    }

    /// Counters.
    pub fn stats(&self) -> &SwimStats {
        &self.stats
    }

    /// Lifeguard's local-health score, 0..awareness_max: timeouts are multiplied by
    /// `health + 1`.
    pub fn health(&self) -> u32 {
        self.health
    }

    /// The suspicion timeout after `confirmations` independent confirmations, for the current
    /// cluster size.
    pub fn suspicion_timeout(&self, confirmations: u32) -> Duration {
        let (min, max, k) = self.suspicion_bounds();
        suspicion::timeout(min, max, k, confirmations)
    }

    // ---- internals ----

    fn suspicion_bounds(&self) -> (Duration, Duration, u32) {
        suspicion::bounds(
            self.table.live_len() + 1,
            self.config.suspicion_mult,
            self.config.suspicion_max_timeout_mult,
            self.config.probe_interval(),
        )
    }

    fn retransmit_limit(&self) -> u32 {
        let n = (self.table.live_len() + 2) as f64; // N + 1, N counting self
        self.config.retransmit_mult * (n.log10().ceil() as u32).max(1)
    }

    fn send(&mut self, o: Out) {
        if self.outbox.len() >= OUTBOX_BOUND {
            self.stats.broadcasts_dropped += 1;
            return;
        }
        self.outbox.push_back(o);
    }

    fn event(&mut self, e: ClusterEvent) {
        if self.events.len() >= EVENT_BOUND {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn multiplier(&self) -> u32 {
        self.health + 1
    }

    fn raise_health(&mut self, by: u32) {
        let cap = self.config.awareness_max.saturating_sub(1);
        self.health = self.health.saturating_add(by).min(cap);
    }

    fn own_record(&self) -> Record<'_> {
        Record {
            status: MemberStatus::Alive,
            id: self.local.id,
            generation: self.local.generation,
            incarnation: self.incarnation,
            name: &self.local.name,
            addr: self.local.addr,
        }
    }

    /// This node's own Alive, at its current incarnation.
    fn own_alive(&self) -> Update<'_> {
        Update {
            kind: Kind::Alive,
            id: self.local.id,
            generation: self.local.generation,
            incarnation: self.incarnation,
            from: self.local.id,
            name: &self.local.name,
            addr: Some(self.local.addr),
        }
    }

    fn broadcast_self(&mut self) {
        let mut bytes = Vec::new();
        wire::put_update(&mut bytes, &self.own_alive());
        let id = self.local.id;
        self.stats.broadcasts_dropped += self.queue.push(id, |b| b.extend_from_slice(&bytes));
    }

    /// Picks up to `k` distinct random indices into `live` (skipping `except`) into `picks`,
    /// members heard from directly first (see [`live_heard`](Swim::live_heard)).
    fn pick_live(&mut self, k: usize, except: Option<NodeId>) {
        self.picks.clear();
        let n = self.table.live_len();
        let avail = n - usize::from(except.is_some_and(|e| self.is_live(e)));
        let k = k.min(avail);
        let heard = self.table.heard_live_len();
        if heard > 0 && heard < n && heard * 8 < n {
            // Few members heard from directly (a flood of forged ones, or we just joined):
            // find them by a scan rather than by chance, at a cost this rare case can afford.
            let mut found = std::mem::take(&mut self.verified_scratch);
            found.clear();
            found.extend(
                (0..n).filter(|&i| self.live_heard(i) && Some(self.table.live_id(i)) != except),
            );
            for j in 0..found.len().min(k) {
                let r = self.rng.random_range(j..found.len());
                found.swap(j, r);
                self.picks.push(found[j]);
            }
            self.verified_scratch = found;
        }
        for heard_only in [heard > 0 && heard < n, false] {
            let mut attempts = 0;
            while self.picks.len() < k && attempts < 8 * k + 16 {
                attempts += 1;
                let i = self.rng.random_range(0..n);
                if Some(self.table.live_id(i)) != except
                    && (!heard_only || self.live_heard(i))
                    && !self.picks.contains(&i)
                {
                    self.picks.push(i);
                }
            }
        }
    }

    /// Up to `k` distinct random live members (not `except`) into `out`, those heard from
    /// directly first: whom a caller above this state machine should talk to.
    pub fn pick_live_ids(&mut self, k: usize, except: Option<NodeId>, out: &mut Vec<NodeId>) {
        self.pick_live(k, except);
        out.extend(self.picks.iter().map(|&i| self.table.live_id(i)));
    }

    /// One random live member, preferably one heard from directly (no allocation).
    pub fn pick_one_live(&mut self) -> Option<NodeId> {
        self.pick_live(1, None);
        self.picks.first().map(|&i| self.table.live_id(i))
    }

    /// Whether the `i`th live member was heard from directly (it answered a ping of ours, or
    /// spoke for itself, or the caller vouched for it in [`restore`](Swim::restore)), not only
    /// of second-hand. Gossip, indirect probes and key-value exchanges go to such members
    /// first, so that thousands of forged members nobody answers for cannot starve the real
    /// ones of traffic.
    pub fn live_heard(&self, i: usize) -> bool {
        !self.table.rec(self.table.live_slot(i)).second_hand()
    }

    fn start_probe(&mut self, now: Time) {
        self.corrections_left = CORRECTIONS_PER_PERIOD;
        self.full_acks_left = FULL_ACKS_PER_PERIOD;
        if self.probe.is_some() {
            self.finish_probe(now);
        }
        let mult = self.multiplier();
        self.next_probe = now + self.config.probe_interval() * mult;
        self.verify_unheard(now);
        if self.table.live_len() == 0 {
            return;
        }
        if self.probe_pos >= self.table.live_len() {
            self.end_of_pass();
        }
        let r = self.table.rec(self.table.live_slot(self.probe_pos));
        self.probe_pos += 1;
        let (target, addr) = (r.id, r.addr());
        self.seq += 1;
        let seq = self.seq;
        self.probe = Some(Probe {
            target,
            addr,
            seq,
            indirect_at: now + self.config.probe_timeout() * mult,
            deadline: self.next_probe,
            acked: false,
            indirect_sent: false,
            helpers: Vec::new(),
            nacked: 0,
        });
        self.stats.pings_sent += 1;
        self.send(Out::Ping {
            to: addr,
            seq,
            target,
        });
    }

    /// Reshuffles the probe order and, if any member is dead, pushes our table to one of them
    /// so that two sides of a healed partition re-merge.
    fn end_of_pass(&mut self) {
        for i in (1..self.table.live_len()).rev() {
            let j = self.rng.random_range(0..=i);
            self.table.live_swap(i, j);
        }
        self.probe_pos = 0;
        let records = self.table.records();
        let dead = records
            .iter()
            .filter(|m| m.status == MemberStatus::Dead)
            .count();
        if dead > 0 {
            let pick = self.rng.random_range(0..dead);
            if let Some(to) = records
                .iter()
                .filter(|m| m.status == MemberStatus::Dead)
                .nth(pick)
                .map(Rec::addr)
            {
                self.push_table(to, true, None);
            }
        }
    }

    fn send_indirect(&mut self) {
        let Some(p) = self.probe.as_ref() else { return };
        let (target, addr, seq) = (p.target, p.addr, p.seq);
        let k = self.config.indirect_checks.min(64);
        self.pick_live(k, Some(target));
        let mut helpers = self
            .probe
            .as_mut()
            .map(|p| std::mem::take(&mut p.helpers))
            .unwrap_or_default();
        helpers.clear();
        for i in 0..self.picks.len() {
            let m = self.table.rec(self.table.live_slot(self.picks[i]));
            let (id, to) = (m.id, m.addr());
            helpers.push(id);
            self.stats.ping_reqs_sent += 1;
            self.send(Out::PingReq {
                to,
                seq,
                target,
                addr,
            });
        }
        if let Some(p) = self.probe.as_mut() {
            p.helpers = helpers;
            p.indirect_sent = true;
        }
        // A second direct ping beside the indirect ones (memberlist's fallback is a TCP ping):
        // under 10 % loss it makes a live member five times less likely to be suspected.
        self.stats.pings_sent += 1;
        self.send(Out::Ping {
            to: addr,
            seq,
            target,
        });
    }

    fn finish_probe(&mut self, now: Time) {
        let Some(p) = self.probe.take() else { return };
        let (acked, target, nacks, helpers) = (
            p.acked,
            p.target,
            p.nacked.count_ones(),
            p.helpers.len() as u32,
        );
        if acked {
            return;
        }
        self.stats.probes_failed += 1;
        // Lifeguard as memberlist scores it: a helper that nacked shows the network, not this
        // node, failed; with no helpers to ask, the failure counts once.
        self.raise_health(if helpers > 0 {
            helpers.saturating_sub(nacks)
        } else {
            1
        });
        // Alive: suspect it. Already suspect (others accused it): our failed probe confirms
        // the suspicion, here and, rebroadcast, everywhere, so the timeout shrinks to its
        // minimum as independent probers fail.
        if let Some(m) = self.rec(target)
            && m.is_live()
        {
            let s = suspect(m.id, m.generation, m.incarnation, self.local.id);
            self.apply(now, &s, true);
        }
    }

    fn on_ack(&mut self, seq: u64, target: NodeId, sender: NodeId) {
        if sender == target
            && let Some(i) = self
                .verifying
                .iter()
                .position(|v| v.0 == seq && v.1 == target)
        {
            let (_, id, at) = self.verifying.swap_remove(i);
            self.mark_verified(id, at);
        }
        if let Some(p) = self.probe.as_mut()
            && p.seq == seq
            && p.target == target
            && !p.acked
            && (sender == target || p.helpers.contains(&sender))
        {
            p.acked = true;
            if sender == target {
                let at = p.addr;
                self.mark_verified(target, at);
            }
            self.stats.acks_received += 1;
            self.health = self.health.saturating_sub(1);
            return;
        }
        if let Some(i) = self
            .relays
            .iter()
            .position(|r| r.seq == seq && r.target == target && sender == target)
        {
            let r = self.relays.swap_remove(i);
            self.send(Out::Ack {
                to: r.requester,
                seq: r.requester_seq,
                target,
                room: self.config.max_payload,
            });
        }
    }

    /// `id` answered a ping sent to `at`: if that is where we reach it (and the answer came
    /// from there), its address is verified.
    fn mark_verified(&mut self, id: NodeId, at: SocketAddr) {
        if self.first_hand != Some((id, at)) {
            return;
        }
        if let Some(slot) = self.table.slot(id)
            && self.table.rec(slot).addr() == at
        {
            self.table.set_verified(slot, true);
        }
        if let Some(i) = self.deferred.iter().position(|d| d.0 == id && d.1 == at) {
            let (_, to, reply_wanted, buckets) = self.deferred.swap_remove(i);
            self.push_table(to, reply_wanted, buckets);
        }
    }

    /// Whether `id` is a live member reached at `from` that proved it receives there (it
    /// answered one of our pings): replies to it need no amplification limit.
    pub fn is_verified(&self, id: NodeId, from: SocketAddr) -> bool {
        self.rec(id)
            .is_some_and(|r| r.is_live() && r.verified() && r.addr() == from)
    }

    /// A table asked for from an address that has not proven it receives (a forged source
    /// would turn this node into an amplifier aimed at it): answer with our own record only,
    /// ping the asker, and send the table when its ack proves the address (one round trip, as
    /// a TCP handshake would).
    fn defer_table(
        &mut self,
        id: NodeId,
        to: SocketAddr,
        reply_wanted: bool,
        buckets: Option<u64>,
    ) {
        self.stats.tables_deferred += 1;
        self.deferred.retain(|d| d.0 != id);
        if self.deferred.len() >= HANDSHAKE_BOUND {
            self.deferred.remove(0);
        }
        self.deferred.push((id, to, reply_wanted, buckets));
        let mut p = Vec::with_capacity(64);
        wire::put_header(
            &mut p,
            &Header::PushPull {
                reply_wanted: false,
                buckets: None,
            },
        );
        wire::put_count(&mut p, 1);
        wire::put_record(&mut p, &self.own_record());
        self.send(Out::Raw { to, bytes: p });
        if !self.verifying.iter().any(|v| v.1 == id && v.2 == to) {
            self.verify(id, to);
        }
    }

    /// Pings a member first heard of first-hand, so that its address is verified at once
    /// rather than when its turn in the probe order comes.
    fn verify(&mut self, id: NodeId, to: SocketAddr) {
        if self.verifying.len() >= HANDSHAKE_BOUND {
            self.verifying.remove(0);
        }
        self.seq += 1;
        let seq = self.seq;
        self.verifying.push((seq, id, to));
        self.stats.pings_sent += 1;
        // Bare: no piggyback towards an address that has not proven it receives.
        let mut p = Vec::with_capacity(16);
        wire::put_header(&mut p, &Header::Ping { seq, target: id });
        wire::put_count(&mut p, 0);
        self.send(Out::Raw { to, bytes: p });
    }

    fn on_ping_req(
        &mut self,
        now: Time,
        from: SocketAddr,
        seq: u64,
        target: NodeId,
        addr: SocketAddr,
    ) {
        if target == self.local.id {
            self.send(Out::Ack {
                to: from,
                seq,
                target,
                room: self.config.max_payload,
            });
            return;
        }
        if self.relays.len() >= RELAY_BOUND {
            return;
        }
        self.seq += 1;
        let my_seq = self.seq;
        // Answer before the requester's probe period ends: 80% of our probe timeout.
        let wait = self.config.probe_timeout() * 4 / 5;
        self.relays.push(Relay {
            seq: my_seq,
            target,
            requester: from,
            requester_seq: seq,
            deadline: now + wait,
        });
        self.stats.pings_sent += 1;
        self.send(Out::Ping {
            to: addr,
            seq: my_seq,
            target,
        });
    }

    fn expire_relays(&mut self, now: Time) {
        let mut i = 0;
        while i < self.relays.len() {
            if self.relays[i].deadline <= now {
                let r = self.relays.swap_remove(i);
                self.send(Out::Nack {
                    to: r.requester,
                    seq: r.requester_seq,
                    target: r.target,
                });
            } else {
                i += 1;
            }
        }
    }

    fn gossip(&mut self, now: Time) {
        self.recent_dead
            .retain(|&(_, t)| now.saturating_since(t) < GOSSIP_TO_THE_DEAD);
        let n_live = self.table.live_len();
        let n = n_live + self.recent_dead.len();
        let k = self.config.gossip_nodes.min(n);
        if self.recent_dead.is_empty() {
            self.pick_live(k, None);
        } else {
            self.picks.clear();
            let mut attempts = 0;
            while self.picks.len() < k && attempts < 8 * k + 16 {
                attempts += 1;
                let i = self.rng.random_range(0..n);
                if !self.picks.contains(&i) {
                    self.picks.push(i);
                }
            }
        }
        for j in 0..self.picks.len() {
            let i = self.picks[j];
            let id = if i < n_live {
                self.table.live_id(i)
            } else {
                self.recent_dead[i - n_live].0
            };
            if let Some(to) = self.rec(id).map(Rec::addr) {
                self.send(Out::Gossip { to });
            }
        }
    }

    /// Queues our table (self first, then from a random offset) as push-pull payloads to `to`:
    /// all of it, or only the records in the `buckets` mask. Only the first payload asks for a
    /// reply, so that a table of many payloads is answered once.
    fn push_table(&mut self, to: SocketAddr, reply_wanted: bool, buckets: Option<u64>) {
        let wanted = |id: NodeId| buckets.is_none_or(|m| m & (1 << wire::bucket(id)) != 0);
        let max = self.config.max_payload;
        let mut payloads = 0;
        let mut items = Vec::new();
        let mut n = 0;
        if wanted(self.local.id) {
            wire::put_record(&mut items, &self.own_record());
            n += 1;
        }
        let len = self.table.len();
        let start = if len == 0 {
            0
        } else {
            self.rng.random_range(0..len)
        };
        let mut out: Vec<Vec<u8>> = Vec::new();
        let flush = |items: &mut Vec<u8>, n: &mut usize, out: &mut Vec<Vec<u8>>| {
            let header = Header::PushPull {
                reply_wanted: reply_wanted && out.is_empty(),
                buckets,
            };
            let mut p = Vec::with_capacity(items.len() + 12);
            wire::put_header(&mut p, &header);
            wire::put_count(&mut p, *n);
            p.extend_from_slice(items);
            out.push(p);
            items.clear();
            *n = 0;
        };
        let room = max - 10 - wire::COUNT_RESERVE;
        let mut rec_buf = Vec::new();
        for k in 0..len {
            let m = self.table.rec((start + k) % len);
            if !wanted(m.id) {
                continue;
            }
            rec_buf.clear();
            wire::put_record(
                &mut rec_buf,
                &Record {
                    status: m.status,
                    id: m.id,
                    generation: m.generation,
                    incarnation: m.incarnation,
                    name: self.table.name(m),
                    addr: m.addr(),
                },
            );
            if items.len() + rec_buf.len() > room {
                flush(&mut items, &mut n, &mut out);
                payloads += 1;
                if payloads >= MAX_PUSH_PULL_PAYLOADS {
                    break;
                }
            }
            items.extend_from_slice(&rec_buf);
            n += 1;
        }
        if (n > 0 || out.is_empty()) && payloads < MAX_PUSH_PULL_PAYLOADS {
            flush(&mut items, &mut n, &mut out);
        }
        for bytes in out {
            self.send(Out::Raw { to, bytes });
        }
    }

    /// This node's membership fingerprint per bucket (its own share included).
    fn bucket_fps(&self) -> [u64; wire::BUCKETS] {
        let mut fps = self.bucket_fp;
        fps[wire::bucket(self.local.id)] ^= fp_share(self.local.id, self.local.generation);
        fps
    }

    fn merge_record(&mut self, now: Time, r: &Record<'_>, sender: NodeId) {
        let alive = Update {
            kind: Kind::Alive,
            id: r.id,
            generation: r.generation,
            incarnation: r.incarnation,
            from: r.id,
            name: r.name,
            addr: Some(r.addr),
        };
        // Records about the sender itself are news worth spreading; the rest of a table is
        // what the cluster already knows.
        let spread = r.id == sender;
        match r.status {
            MemberStatus::Alive => self.apply(now, &alive, spread),
            MemberStatus::Suspect => {
                self.apply(now, &alive, spread);
                self.apply(
                    now,
                    &suspect(r.id, r.generation, r.incarnation, sender),
                    true,
                );
            }
            // memberlist: "prefer suspect to dead", so that a live member can refute.
            MemberStatus::Dead => self.apply(
                now,
                &suspect(r.id, r.generation, r.incarnation, sender),
                true,
            ),
            MemberStatus::Left => {
                self.apply(now, &dead(r.id, r.generation, r.incarnation, r.id), true)
            }
        }
    }

    fn rebroadcast(&mut self, u: &Update<'_>) {
        self.stats.broadcasts_dropped += self.queue.push(u.id, |b| wire::put_update(b, u));
    }

    /// Applies one update with memberlist's precedence, generations first.
    fn apply(&mut self, now: Time, u: &Update<'_>, spread: bool) {
        if u.id == self.local.id {
            self.about_self(u);
            return;
        }
        let Some(idx) = self.table.slot(u.id) else {
            self.learn(now, u, spread, Vouched::No);
            return;
        };
        let m = self.table.rec(idx);
        if u.generation < m.generation {
            self.stats.updates_ignored += 1;
            return;
        }
        let newer_gen = u.generation > m.generation;
        let was = m.status;
        let was_live = matches!(was, MemberStatus::Alive | MemberStatus::Suspect);
        match u.kind {
            Kind::Alive => {
                if !newer_gen && u.incarnation <= m.incarnation {
                    self.stats.updates_ignored += 1;
                    return;
                }
                if let Some(a) = u.addr
                    && was_live
                    && a != m.addr()
                    && self.first_hand != Some((u.id, a))
                {
                    // Someone says a live member moved: a forger redirecting its traffic, or a
                    // restart elsewhere, which is believed once the old process is dead.
                    self.stats.address_conflicts += 1;
                    return;
                }
                self.cancel_suspicion(u.id);
                self.set_member_generation(idx, u.generation);
                self.table.set_name(idx, u.name);
                let mut unverified = None;
                if let Some(a) = u.addr {
                    self.table.rec_mut(idx).set_addr(a);
                    unverified = (!self.table.rec(idx).verified()).then_some(a);
                }
                let m = self.table.rec_mut(idx);
                m.incarnation = u.incarnation;
                if was != MemberStatus::Alive {
                    m.status = MemberStatus::Alive;
                    m.set_since(now);
                }
                if let Some(a) = unverified
                    && self.first_hand == Some((u.id, a))
                {
                    self.verify(u.id, a);
                }
                if !was_live || newer_gen {
                    self.event(ClusterEvent::MemberUp(u.id));
                }
                if !was_live {
                    self.add_live(u.id);
                }
            }
            Kind::Suspect => {
                if !newer_gen && u.incarnation < m.incarnation {
                    self.stats.updates_ignored += 1;
                    if was_live {
                        self.correct_stale(idx);
                    }
                    return;
                }
                if !newer_gen && was == MemberStatus::Suspect {
                    if u.incarnation == m.incarnation {
                        let counted = self
                            .suspicions
                            .iter_mut()
                            .find(|s| s.id == u.id)
                            .is_some_and(|s| s.confirm(u.from));
                        if counted {
                            self.stats.confirmations += 1;
                            if spread {
                                self.rebroadcast(u);
                            }
                        } else {
                            self.stats.updates_ignored += 1;
                        }
                        return;
                    }
                } else if !newer_gen && !was_live {
                    self.stats.updates_ignored += 1;
                    return;
                }
                self.set_member_generation(idx, u.generation);
                let m = self.table.rec_mut(idx);
                m.incarnation = u.incarnation;
                m.status = MemberStatus::Suspect;
                m.set_since(now);
                self.cancel_suspicion(u.id);
                let s = Suspicion::new(
                    u.id,
                    u.generation,
                    u.incarnation,
                    u.from,
                    self.local.id,
                    now,
                    self.suspicion_bounds(),
                );
                self.suspicions.push(s);
                if was != MemberStatus::Suspect {
                    self.stats.suspicions_started += 1;
                    self.event(ClusterEvent::MemberSuspect(u.id));
                }
                if !was_live {
                    self.add_live(u.id);
                }
            }
            Kind::Dead => {
                if !newer_gen && (u.incarnation < m.incarnation || !was_live) {
                    self.stats.updates_ignored += 1;
                    if was_live {
                        self.correct_stale(idx);
                    }
                    return;
                }
                self.cancel_suspicion(u.id);
                let left = u.from == u.id;
                self.set_member_generation(idx, u.generation);
                let m = self.table.rec_mut(idx);
                let second_hand = m.second_hand();
                m.incarnation = u.incarnation;
                m.status = if left {
                    MemberStatus::Left
                } else {
                    MemberStatus::Dead
                };
                m.set_since(now);
                if was_live {
                    self.remove_live(u.id);
                }
                if left {
                    self.event(ClusterEvent::MemberLeft(u.id));
                } else {
                    self.event(ClusterEvent::MemberDown(u.id));
                    if !second_hand {
                        self.recent_dead.push((u.id, now));
                    }
                }
                let grace = if second_hand {
                    UNHEARD_DEAD_GRACE
                } else {
                    self.config.dead_grace()
                };
                self.next_reap = self.next_reap.min(now + grace);
            }
        }
        if spread {
            self.rebroadcast(u);
        }
    }

    /// A first Alive about an unknown member creates it; anything else about one is ignored.
    /// A member heard of second-hand (not `vouched` for by the caller) is queued for
    /// verification.
    fn learn(&mut self, now: Time, u: &Update<'_>, spread: bool, vouched: Vouched) {
        let (Kind::Alive, Some(addr)) = (u.kind, u.addr) else {
            self.stats.updates_ignored += 1;
            return;
        };
        if let Some(i) = self.removed.iter().position(|&(id, _, _)| id == u.id) {
            let (_, g, inc) = self.removed[i];
            if (u.generation, u.incarnation) <= (g, inc) {
                self.stats.updates_ignored += 1;
                return;
            }
            self.removed.remove(i);
        }
        let first_hand = self.first_hand == Some((u.id, addr));
        if self.table.len() >= self.config.max_members && !(first_hand && self.evict_unheard()) {
            self.stats.members_refused += 1;
            return;
        }
        self.table.insert(NewMember {
            id: u.id,
            name: u.name,
            addr,
            generation: u.generation,
            incarnation: u.incarnation,
            status: MemberStatus::Alive,
            since: now,
            second_hand: !first_hand && vouched == Vouched::No,
        });
        self.add_live(u.id);
        if first_hand {
            self.verify(u.id, addr);
        } else if vouched == Vouched::No
            && self.unheard.len() + self.unheard_retries.len() < self.config.max_members
        {
            self.unheard.push_back(Unheard {
                id: u.id,
                due: now + self.verify_delay,
                tries: 0,
            });
        }
        self.event(ClusterEvent::MemberUp(u.id));
        if spread {
            self.rebroadcast(u);
        }
    }

    /// Pings up to `verify_per_period` members learned second-hand whose wait is over; one
    /// that has not answered `VERIFY_TRIES` pings is suspected, as a failed probe would make
    /// it. Forged members (ghosts) are thus gone within a few suspicion periods of a flood,
    /// whatever the size of the table, and a real member is verified before it would have
    /// been probed in its turn.
    fn verify_unheard(&mut self, now: Time) {
        let mut budget = self.config.verify_per_period;
        while budget > 0 {
            let queue = match self.unheard_retries.front() {
                Some(r) if r.due <= now => &mut self.unheard_retries,
                _ => &mut self.unheard,
            };
            let Some(next) = queue.pop_front() else {
                break;
            };
            if next.due > now {
                queue.push_front(next);
                break;
            }
            let Some(r) = self.rec(next.id) else {
                continue;
            };
            if r.verified() || r.status != MemberStatus::Alive {
                continue;
            }
            let (id, generation, incarnation, to) = (r.id, r.generation, r.incarnation, r.addr());
            if next.tries >= VERIFY_TRIES {
                // Never answered. While nearly all of the table is members nobody here has
                // heard from (fewer than 1/64 heard: a flood of forged records; a joiner passes
                // that within its first period of verifications), that is an accusation,
                // as a failed probe is. Otherwise the member waits for its regular probe, with
                // its indirect pings: under loss, three lost verifications happen to live
                // members (0.7 % at 10 %), and a bare accusation of each cost some their lives.
                if self.table.heard_live_len() * 64 < self.table.live_len() {
                    self.stats.unheard_suspected += 1;
                    let s = suspect(id, generation, incarnation, self.local.id);
                    self.apply(now, &s, true);
                }
                continue;
            }
            budget -= 1;
            self.stats.verifications_sent += 1;
            self.verify(id, to);
            self.unheard_retries.push_back(Unheard {
                due: now + self.config.probe_interval() * self.multiplier(),
                tries: next.tries + 1,
                ..next
            });
        }
    }

    /// Makes room in a full table for a member heard first-hand by evicting the oldest member
    /// learned second-hand that has never answered: a member nobody has heard from directly
    /// never displaces one that has been. Returns whether a slot was freed.
    fn evict_unheard(&mut self) -> bool {
        while let Some(next) = self
            .unheard_retries
            .pop_front()
            .or_else(|| self.unheard.pop_front())
        {
            let Some(slot) = self.table.slot(next.id) else {
                continue;
            };
            if !self.table.rec(slot).second_hand() {
                continue;
            }
            self.cancel_suspicion(next.id);
            self.remove_live(next.id);
            let Some(slot) = self.table.slot(next.id) else {
                continue;
            };
            let m = self.table.swap_remove(slot);
            self.remember_removed(&m);
            self.stats.unheard_evicted += 1;
            self.event(ClusterEvent::MemberRemoved(m.id));
            return true;
        }
        false
    }

    fn about_self(&mut self, u: &Update<'_>) {
        if u.generation > self.local.generation && !self.leaving {
            // Someone speaks for a newer run of this node (forged, or an older process of ours
            // that ran ahead): only a newer generation of our own can answer it, and that is
            // the caller's to choose (`take_generation_claim`).
            self.stats.generation_claims += 1;
            let g = u.generation;
            self.generation_claim = Some(self.generation_claim.map_or(g, |c| c.max(g)));
            return;
        }
        if u.generation != self.local.generation || self.leaving {
            self.stats.updates_ignored += 1;
            return;
        }
        let stale = match u.kind {
            Kind::Alive => {
                u.incarnation < self.incarnation
                    || (u.incarnation == self.incarnation
                        && u.addr == Some(self.local.addr)
                        && u.name == wire::truncate(&self.local.name))
            }
            Kind::Suspect | Kind::Dead => u.incarnation < self.incarnation,
        };
        if stale {
            self.stats.updates_ignored += 1;
            if u.kind != Kind::Alive {
                // The accuser has not heard our refutation (it may have been lost, or retired
                // before reaching it): announce our current incarnation again, without raising
                // it, and tell the accuser directly — the others already know, so they will not
                // spread it, and a lone accuser would otherwise time out on its own.
                self.broadcast_self();
                if let Some(to) = self.member_addr(u.from) {
                    self.stats.direct_refutations += 1;
                    let bytes = one_update(&self.own_alive());
                    self.send(Out::Raw { to, bytes });
                }
            }
            return;
        }
        self.incarnation = self.incarnation.max(u.incarnation).saturating_add(1);
        self.stats.refutations += 1;
        self.raise_health(1);
        self.broadcast_self();
    }

    /// Someone passed on an accusation about member `idx` at an incarnation it has already
    /// refuted: that sender holds a stale view (it learned the member from an old copy, or
    /// missed the refutation), which no fingerprint shows — fingerprints cover who is live,
    /// not incarnations — and stale views confirm each other's suspicions until a live member
    /// is declared dead. Send the sender the member's current Alive, at most
    /// `CORRECTIONS_PER_PERIOD` a period.
    fn correct_stale(&mut self, idx: usize) {
        let Some((_, to)) = self.first_hand else {
            return;
        };
        if self.corrections_left == 0 {
            return;
        }
        self.corrections_left -= 1;
        let r = self.table.rec(idx);
        let alive = Update {
            kind: Kind::Alive,
            id: r.id,
            generation: r.generation,
            incarnation: r.incarnation,
            from: r.id,
            name: self.table.name(r),
            addr: Some(r.addr()),
        };
        let bytes = one_update(&alive);
        self.stats.stale_corrections += 1;
        self.send(Out::Raw { to, bytes });
    }

    fn cancel_suspicion(&mut self, id: NodeId) {
        if let Some(i) = self.suspicions.iter().position(|s| s.id == id) {
            self.suspicions.swap_remove(i);
        }
    }

    /// A fingerprint of the live membership: every Alive or Suspect `(member, generation)`
    /// known, this node included, mixed and xor-ed. Two members with equal fingerprints agree
    /// on who is in the cluster; a mismatch means one missed an announcement gossip retired
    /// (the repair memberlist does with a push-pull every 30 s, here only when needed).
    /// Whether a Whois may go to `sender` now: not asked within the last `SYNC_PERIODS` probe
    /// periods (a small bounded memory of recent askings).
    fn may_ask_whois(&mut self, now: Time, sender: NodeId) -> bool {
        let horizon = self.config.probe_interval() * SYNC_PERIODS;
        self.whois_asked.retain(|&(_, at)| now < at + horizon);
        if self.whois_asked.iter().any(|&(id, _)| id == sender) || self.whois_asked.len() >= 64 {
            return false;
        }
        self.whois_asked.push((sender, now));
        true
    }

    /// Maintained incrementally: O(1) to read at any N.
    pub fn membership_fingerprint(&self) -> u64 {
        self.live_fp ^ fp_share(self.local.id, self.local.generation)
    }

    /// A counter bumped whenever the live list ([`live_id`](Swim::live_id)) changes: a caller
    /// that keeps something derived from the live list compares this instead of the list.
    pub fn live_changes(&self) -> u64 {
        self.live_changes
    }

    /// A peer's [`membership_fingerprint`](Swim::membership_fingerprint) differed from ours:
    /// exchange whole tables with it (a push-pull asking for a reply), at most once per
    /// `SYNC_PERIODS` probe periods.
    /// A node whose own live list has been still for `STILL_PERIODS` probe periods acts:
    /// while members come and go (a mass start, a failure being spread), fingerprints differ
    /// for a while anyway and gossip is already carrying the news.
    /// So that a list that never stands still (formation under loss) still converges, one
    /// exchange per `5 × SYNC_PERIODS` periods goes ahead regardless.
    pub fn sync_table(&mut self, now: Time, to: SocketAddr) {
        let period = self.config.probe_interval() * SYNC_PERIODS;
        let still = now >= self.live_changed_at + self.config.probe_interval() * STILL_PERIODS;
        let overdue = now >= self.last_table_sync + period * 5;
        if now < self.next_sync || self.leaving || !(still || overdue) {
            return;
        }
        self.next_sync = now + period;
        self.last_table_sync = now;
        self.stats.table_syncs += 1;
        // As many buckets as fit the payload budget (64 at the usual MTU).
        let bits = (0..=wire::BUCKET_BITS)
            .rev()
            .find(|&b| wire::buckets_len(b) <= self.config.max_payload)
            .unwrap_or(0);
        let mut p = Vec::with_capacity(wire::buckets_len(bits));
        wire::put_header(
            &mut p,
            &Header::Buckets {
                bits,
                fps: wire::fold(&self.bucket_fps(), bits),
            },
        );
        wire::put_count(&mut p, 0);
        self.send(Out::Raw { to, bytes: p });
    }

    /// Puts a member on the live list at a random place in the part of this pass still to be
    /// probed (memberlist's swap with a random slot): O(1) at any N.
    fn add_live(&mut self, id: NodeId) {
        let Some(slot) = self.table.slot(id) else {
            return;
        };
        let m = self.table.rec(slot);
        if m.is_live() {
            return;
        }
        self.live_fp ^= fp_share(id, m.generation);
        self.bucket_fp[wire::bucket(id)] ^= fp_share(id, m.generation);
        let end = self.table.live_len();
        let pos = self.rng.random_range(self.probe_pos.min(end)..=end);
        self.table.live_insert(slot, pos);
        self.live_changes += 1;
        self.live_changed_at = self.now;
    }

    /// Takes a member off the live list: O(1) at any N.
    fn remove_live(&mut self, id: NodeId) {
        let Some(slot) = self.table.slot(id) else {
            return;
        };
        let m = self.table.rec(slot);
        if !m.is_live() {
            return;
        }
        self.live_fp ^= fp_share(id, m.generation);
        self.bucket_fp[wire::bucket(id)] ^= fp_share(id, m.generation);
        self.probe_pos = self.table.live_remove(slot, self.probe_pos);
        self.live_changes += 1;
        self.live_changed_at = self.now;
    }

    /// Sets member `idx`'s generation, keeping the membership fingerprint in step.
    fn set_member_generation(&mut self, idx: usize, generation: u64) {
        let m = self.table.rec_mut(idx);
        if m.generation != generation {
            if m.is_live() {
                let change = fp_share(m.id, m.generation) ^ fp_share(m.id, generation);
                self.live_fp ^= change;
                self.bucket_fp[wire::bucket(m.id)] ^= change;
            }
            m.generation = generation;
        }
    }

    /// Forgets the dead and departed members whose grace period is over.
    /// Keeps a removed member's last (generation, incarnation), so stale news about it is
    /// ignored rather than bringing it back.
    fn remember_removed(&mut self, m: &Rec) {
        if self.removed.len() >= REMOVED_MEMORY {
            self.removed.pop_front();
        }
        self.removed.push_back((m.id, m.generation, m.incarnation));
        self.recent_dead.retain(|&(id, _)| id != m.id);
    }

    fn reap(&mut self, now: Time) {
        let grace = self.config.dead_grace();
        let mut next = Time::NEVER;
        let mut i = 0;
        while i < self.table.len() {
            let m = self.table.rec(i);
            if matches!(m.status, MemberStatus::Dead | MemberStatus::Left) {
                // Dead without ever having answered us (a ghost, most likely): nothing of it
                // is worth keeping, and its tombstone in `removed` stops its return.
                let due = if m.status == MemberStatus::Dead && m.second_hand() {
                    m.since() + UNHEARD_DEAD_GRACE
                } else {
                    m.since() + grace
                };
                if due <= now {
                    let m = self.table.swap_remove(i);
                    self.remember_removed(&m);
                    self.event(ClusterEvent::MemberRemoved(m.id));
                    continue;
                }
                next = next.min(due);
            }
            i += 1;
        }
        self.next_reap = next;
    }
}

/// A Gossip payload carrying the one update `u` (a direct answer rather than a broadcast).
fn one_update(u: &Update<'_>) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    wire::put_header(&mut p, &Header::Gossip);
    wire::put_count(&mut p, 1);
    wire::put_update(&mut p, u);
    p
}

/// A Suspect or Dead update about `id`, raised by `from`.
fn accusation(
    kind: Kind,
    id: NodeId,
    generation: u64,
    incarnation: u64,
    from: NodeId,
) -> Update<'static> {
    Update {
        kind,
        id,
        generation,
        incarnation,
        from,
        name: "",
        addr: None,
    }
}

fn suspect(id: NodeId, generation: u64, incarnation: u64, from: NodeId) -> Update<'static> {
    accusation(Kind::Suspect, id, generation, incarnation, from)
}

fn dead(id: NodeId, generation: u64, incarnation: u64, from: NodeId) -> Update<'static> {
    accusation(Kind::Dead, id, generation, incarnation, from)
}
