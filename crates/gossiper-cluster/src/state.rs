//! `ClusterState`: the replicated per-node key-value state of a real cluster, reconciled the
//! Scuttlebutt way by the ordinary [`Node`](gossiper_node::Node) engine.
//!
//! Every node owns a record: its *generation* (one per process start, so a restart supersedes
//! the old record whole and no zombie entry survives), a *heartbeat* it bumps every round (the
//! failure detector's input), and its versioned keys. Per node the digest carries
//! `(generation, heartbeat, max_version, last_gc_version)`; a delta block carries, per node, the
//! header and the entries newer than the peer's `max_version`, in version order, so a block cut
//! to the budget leaves a prefix. Deleted keys are tombstones, dropped after a grace period;
//! a peer whose `max_version` is below our `last_gc_version` may have missed a delete that no
//! longer exists, so it is told to *reset* that node and re-sync it from scratch. Nodes that
//! the membership layer garbage-collects are remembered for a while, so stale gossip cannot
//! resurrect them.
//!
//! Every digest carries a hash of every `(node, generation)` the sender knows. Most of the time
//! both sides know the same nodes, so the digest is *compact*: just `(heartbeat, max_version,
//! last_gc_version)` per node in id order, about 4 bytes a node instead of 18; a receiver whose
//! hash matches reads it against its own node list, and one whose hash differs answers with what
//! it has (so joiners and restarted nodes catch up). Receivers also take heartbeats straight
//! from digests ([`ClusterState::absorb_heartbeats`]), so a delta never has to carry a
//! heartbeat-only block to a peer that sent a compact digest: in push-pull both sides see each
//! other's digest. A digest that does not fit even compact is *sampled* (a rotating window of
//! full entries); when the hashes match, nodes left out of the window are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use gossiper_types::codec::{Reader, bytes_len, put_bytes, put_varint, varint_len};
use gossiper_types::{DecodeError, NodeId, State, Time};

/// Largest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Keys starting with this prefix are reserved for the protocol (`__name`, `__addr`, `__left`).
pub const RESERVED_PREFIX: &str = "__";
/// Reserved key holding a node's human-readable name.
pub const KEY_NAME: &str = "__name";
/// Reserved key holding a node's gossip address (`ip:port`).
pub const KEY_ADDR: &str = "__addr";
/// Reserved key a node writes when it leaves gracefully.
pub const KEY_LEFT: &str = "__left";

/// Block flag: the receiver must drop what it holds of this node and re-sync from scratch.
const FLAG_RESET: u8 = 1;
/// Digest flag: the digest lists only a window of the sender's nodes.
const FLAG_SAMPLED: u8 = 1;
/// Digest flag: entries carry no id or generation; they follow the sorted node list that the
/// node-set hash names (valid only for a receiver with the same hash).
const FLAG_COMPACT: u8 = 2;
/// Fixed bytes of a digest: flags, node-set hash.
const DIGEST_FIXED: usize = 1 + 8;

/// One key's value as of one write by its owner.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClusterEntry {
    /// The owner's write counter when this value was written (1, 2, 3, ...).
    pub version: u64,
    /// True for a delete (a tombstone); `value` is then empty.
    pub deleted: bool,
    /// The value's bytes.
    pub value: Vec<u8>,
}

/// Everything a replica holds about one node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeRecord {
    /// The node's start number; a higher one replaces the record whole.
    pub generation: u64,
    /// Bumped by the node once per gossip round; the failure detector watches it.
    pub heartbeat: u64,
    /// Highest version held: every live entry at or below it is held.
    pub max_version: u64,
    /// Tombstones at or below this version may have been garbage-collected.
    pub last_gc_version: u64,
    entries: BTreeMap<String, ClusterEntry>,
    by_version: BTreeSet<(u64, String)>,
    /// When this replica first saw each tombstone, for garbage collection (local, not gossiped).
    tombstone_seen: BTreeMap<String, Time>,
    /// The `__addr` key, parsed once when it arrives (not on every membership sync).
    addr: Option<SocketAddr>,
}

impl NodeRecord {
    fn new(generation: u64) -> NodeRecord {
        NodeRecord {
            generation,
            ..NodeRecord::default()
        }
    }

    /// Stores `entry` if it beats what is there. Returns whether anything changed.
    fn offer(&mut self, key: &str, entry: ClusterEntry) -> bool {
        let mut changed = false;
        if entry.version > self.max_version {
            self.max_version = entry.version;
            changed = true;
        }
        if key == KEY_ADDR && self.entries.get(key).is_none_or(|old| *old < entry) {
            self.addr = (!entry.deleted)
                .then(|| std::str::from_utf8(&entry.value).ok()?.parse().ok())
                .flatten();
        }
        match self.entries.get_mut(key) {
            Some(old) if *old >= entry => {}
            Some(old) => {
                self.by_version.remove(&(old.version, key.to_owned()));
                self.by_version.insert((entry.version, key.to_owned()));
                if !entry.deleted {
                    self.tombstone_seen.remove(key);
                }
                *old = entry;
                changed = true;
            }
            None => {
                self.by_version.insert((entry.version, key.to_owned()));
                self.entries.insert(key.to_owned(), entry);
                changed = true;
            }
        }
        changed
    }

    /// The stored entry for `key`, tombstones included.
    pub fn entry(&self, key: &str) -> Option<&ClusterEntry> {
        self.entries.get(key)
    }

    /// The live value of `key` (tombstones read as absent).
    pub fn get(&self, key: &str) -> Option<&ClusterEntry> {
        self.entries.get(key).filter(|e| !e.deleted)
    }

    /// Every `(key, entry)`, tombstones and reserved keys included, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &ClusterEntry)> + '_ {
        self.entries.iter().map(|(k, e)| (k.as_str(), e))
    }

    /// The node's name (its `__name` key), if known yet.
    pub fn name(&self) -> Option<&str> {
        self.get(KEY_NAME)
            .and_then(|e| std::str::from_utf8(&e.value).ok())
    }

    /// The node's gossip address (its `__addr` key, parsed when it arrived), if known yet.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// True once the node announced a graceful leave.
    pub fn has_left(&self) -> bool {
        self.get(KEY_LEFT).is_some()
    }
}

/// What a replica knows of one node, as listed in a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeDigest {
    /// The node.
    pub id: NodeId,
    /// Its generation as held.
    pub generation: u64,
    /// Its heartbeat as held.
    pub heartbeat: u64,
    /// Its highest version held.
    pub max_version: u64,
    /// Its tombstone GC horizon as held.
    pub last_gc_version: u64,
}

/// A [`ClusterState`] digest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterDigest {
    /// Listed nodes, sorted by id, ids unique.
    pub nodes: Vec<NodeDigest>,
    /// True when `nodes` is a window of what the sender knows (decoded digests only).
    pub sampled: bool,
    /// Compact digests (decoded only): `(heartbeat, max_version, last_gc_version)` of every
    /// node the sender knows, in id order; `nodes` is then empty.
    pub compact: Option<Vec<(u64, u64, u64)>>,
    /// Hash of every `(id, generation)` the sender knows (see [`ClusterState::node_set_hash`]).
    pub node_set_hash: u64,
    /// Largest encoded size the sender wants for its own digests, in bytes (0 = no limit);
    /// carried here because [`State::encode_digest`] has no `self`. Not encoded.
    pub budget_hint: usize,
}

impl ClusterDigest {
    /// The listed entry of `id`, if any.
    pub fn get(&self, id: NodeId) -> Option<&NodeDigest> {
        self.nodes
            .binary_search_by_key(&id, |n| n.id)
            .ok()
            .map(|i| &self.nodes[i])
    }
}

/// The replicated cluster state. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterState {
    nodes: BTreeMap<NodeId, NodeRecord>,
    /// The node this replica runs on: the only authority about its own record, which no
    /// peer's copy ever replaces (see [`ClusterState::set_owner`]).
    owner: Option<NodeId>,
    /// The newest generation a peer claimed for `owner` beyond what it holds, not yet taken
    /// by [`ClusterState::take_owner_claim`] (a cell: taking it is not a change of state).
    owner_claim: ClaimCell,
    /// Peer claims about `owner` ignored.
    owner_claims: u64,
    /// Delta blocks dropped for implausible counters (see [`MAX_VERSION`]).
    implausible: u64,
    /// Garbage-collected nodes: their last generation, and when they were forgotten.
    forgotten: BTreeMap<NodeId, (u64, Time)>,
    /// See [`ClusterDigest::budget_hint`].
    digest_budget: usize,
    /// [`ClusterState::fingerprint`], computed on demand and cleared by every change.
    fingerprint: FingerprintCache,
}

/// A pending claim about the owner. Two states are equal whatever claims they wait on.
#[derive(Debug, Clone, Default)]
struct ClaimCell(std::cell::Cell<Option<u64>>);

impl PartialEq for ClaimCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ClaimCell {}

/// A cached fingerprint. Two states are equal whatever their caches hold.
#[derive(Debug, Clone, Default)]
struct FingerprintCache(std::cell::Cell<Option<u64>>);

impl PartialEq for FingerprintCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for FingerprintCache {}

/// The largest version, heartbeat or tombstone mark a replica accepts or reaches: 2^53 − 1
/// (exact in a JSON number). A node writing a million keys a second reaches it in 285 years;
/// a block claiming more is forged or corrupt and is dropped whole, so that no counter ever
/// wraps and loses acknowledged writes.
pub const MAX_VERSION: u64 = (1 << 53) - 1;

/// The largest generation accepted: 2^62 (microseconds since 1970 stay below it for 140,000
/// years), leaving room to refute a claim by going one higher.
pub const MAX_GENERATION: u64 = 1 << 62;

/// Why a local write was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The key is empty, too long, or reserved.
    BadKey(String),
    /// The value would not fit in one datagram.
    ValueTooLarge {
        /// Value size in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// This node's versions reached [`MAX_VERSION`] within its generation: restart it (a new
    /// generation starts from version 1).
    VersionsExhausted,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::BadKey(why) => write!(f, "bad key: {why}"),
            WriteError::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the {max}-byte limit")
            }
            WriteError::VersionsExhausted => write!(
                f,
                "no version above {MAX_VERSION} left in this generation: restart the node"
            ),
        }
    }
}

impl std::error::Error for WriteError {}

/// Checks a user key: non-empty, at most [`MAX_KEY_LEN`] bytes, not reserved.
pub fn check_user_key(key: &str) -> Result<(), WriteError> {
    if key.is_empty() {
        return Err(WriteError::BadKey("empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(WriteError::BadKey(format!(
            "longer than {MAX_KEY_LEN} bytes"
        )));
    }
    if key.starts_with(RESERVED_PREFIX) {
        return Err(WriteError::BadKey(format!(
            "keys starting with {RESERVED_PREFIX:?} are reserved"
        )));
    }
    Ok(())
}

/// Wire size of one delta entry.
fn entry_len(key: &str, e: &ClusterEntry) -> usize {
    bytes_len(key.len())
        + varint_len(e.version)
        + 1
        + if e.deleted {
            0
        } else {
            bytes_len(e.value.len())
        }
}

/// Largest block header: id, flags, generation, heartbeat, from, upto, last_gc, count.
const MAX_BLOCK_HEADER: usize = 8 + 1 + 10 * 6;

/// The largest value a datagram of `budget` delta bytes can carry for a key of `key_len` bytes.
pub fn max_value_len(budget: usize, key_len: usize) -> usize {
    budget.saturating_sub(MAX_BLOCK_HEADER + bytes_len(key_len) + 10 + 1 + 3)
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: spreads (id, generation) pairs before xor-ing them together.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One decoded delta block, borrowing its entries' bytes.
struct Block<'a> {
    id: NodeId,
    flags: u8,
    generation: u64,
    heartbeat: u64,
    from: u64,
    /// The sender holds nothing newer than the block's entries up to this version.
    upto: u64,
    last_gc: u64,
    entries: Vec<(&'a str, u64, bool, &'a [u8])>,
}

fn read_u64_le(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    let b = r.take(8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

/// The decode error of a block whose counters are beyond [`MAX_VERSION`] or
/// [`MAX_GENERATION`].
pub(crate) const IMPLAUSIBLE: &str = "implausible version or generation";

/// Decodes and checks a whole delta without applying anything.
fn parse_delta(delta: &[u8]) -> Result<Vec<Block<'_>>, DecodeError> {
    let mut r = Reader::new(delta);
    let mut blocks = Vec::new();
    while !r.is_empty() {
        let id = NodeId(read_u64_le(&mut r)?);
        let flags = r.u8()?;
        if flags & !FLAG_RESET != 0 {
            return Err(DecodeError::Invalid("block flags"));
        }
        let generation = r.varint()?;
        let heartbeat = r.varint()?;
        let from = r.varint()?;
        let upto = r.varint()?;
        let last_gc = if flags & FLAG_RESET != 0 {
            if from != 0 {
                return Err(DecodeError::Invalid("reset block not from zero"));
            }
            r.varint()?
        } else {
            0
        };
        let count = r.len(delta.len(), "entry count")?;
        let mut entries = Vec::with_capacity(count.min(64));
        let mut last = from;
        for _ in 0..count {
            let key = r.str()?;
            if key.is_empty() || key.len() > MAX_KEY_LEN {
                return Err(DecodeError::Invalid("key length"));
            }
            let version = r.varint()?;
            if version <= last {
                return Err(DecodeError::Invalid("entry version order"));
            }
            last = version;
            let deleted = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::Invalid("entry flags")),
            };
            let value = if deleted { &[][..] } else { r.bytes()? };
            entries.push((key, version, deleted, value));
        }
        if upto < last {
            return Err(DecodeError::Invalid("block upto below its entries"));
        }
        if generation > MAX_GENERATION || heartbeat.max(upto).max(last_gc) > MAX_VERSION {
            return Err(DecodeError::Invalid(IMPLAUSIBLE));
        }
        blocks.push(Block {
            id,
            flags,
            generation,
            heartbeat,
            from,
            upto,
            last_gc,
            entries,
        });
    }
    Ok(blocks)
}

impl ClusterState {
    /// An empty state.
    pub fn new() -> ClusterState {
        ClusterState::default()
    }

    /// Makes `id` this replica's owner: peers' blocks, merges and heartbeats about it are
    /// never applied (it alone writes its record); a claim newer than what it holds is kept for
    /// [`take_owner_claim`](Self::take_owner_claim), so the owner can refute it.
    pub fn set_owner(&mut self, id: NodeId) {
        self.owner = Some(id);
    }

    /// The newest generation a peer claimed for the owner beyond what it holds (a forgery, or
    /// an older run of this node that wrote more), once.
    pub fn take_owner_claim(&self) -> Option<u64> {
        self.owner_claim.0.take()
    }

    /// Peer claims about the owner ignored so far.
    pub fn owner_claims(&self) -> u64 {
        self.owner_claims
    }

    /// Notes a peer's view of the owner's record: `(generation, max_version, heartbeat)`.
    fn claim_about_owner(&mut self, generation: u64, max_version: u64, heartbeat: u64) {
        let Some(id) = self.owner else { return };
        let newer = match self.nodes.get(&id) {
            Some(r) => {
                generation > r.generation
                    || (generation == r.generation
                        && (max_version > r.max_version || heartbeat > r.heartbeat))
            }
            None => true,
        };
        if newer {
            self.owner_claims += 1;
            let claim = self.owner_claim.0.get();
            self.owner_claim
                .0
                .set(Some(claim.map_or(generation, |g| g.max(generation))));
        }
    }

    /// Limits this replica's own encoded digests to `bytes` (0 = only the engine's budget).
    /// Smaller digests cost less per round and cover every node over several rounds.
    pub fn set_digest_budget(&mut self, bytes: usize) {
        self.digest_budget = bytes;
    }

    /// The record of `id`, if held.
    pub fn node(&self, id: NodeId) -> Option<&NodeRecord> {
        self.nodes.get(&id)
    }

    /// Every held node, in id order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &NodeRecord)> + '_ {
        self.nodes.iter().map(|(&id, r)| (id, r))
    }

    /// Number of held nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no node is held.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// True if `id` was garbage-collected and stale gossip about it is being ignored.
    pub fn is_forgotten(&self, id: NodeId) -> Option<u64> {
        self.forgotten.get(&id).map(|&(g, _)| g)
    }

    /// Starts (or restarts) the local record of `id` at `generation`, dropping any older one.
    pub fn start_node(&mut self, id: NodeId, generation: u64) {
        self.changed();
        self.forgotten.remove(&id);
        match self.nodes.get_mut(&id) {
            Some(r) if r.generation >= generation => {}
            _ => {
                self.nodes.insert(id, NodeRecord::new(generation));
            }
        }
    }

    /// Moves the local record of `id` to a newer `generation`, keeping its keys (used when the
    /// cluster forgot a node that is in fact alive: the new generation makes peers take it
    /// back).
    pub fn bump_generation(&mut self, id: NodeId, generation: u64) {
        self.changed();
        self.forgotten.remove(&id);
        let r = self.nodes.entry(id).or_default();
        if generation > r.generation {
            r.generation = generation;
        }
    }

    /// Bumps `id`'s heartbeat (its owner does this once per round). Returns the new value.
    pub fn beat(&mut self, id: NodeId) -> u64 {
        let r = self.nodes.entry(id).or_default();
        r.heartbeat = (r.heartbeat + 1).min(MAX_VERSION);
        r.heartbeat
    }

    /// Writes `key = value` as `owner`, without key checks (the caller checked). Returns the
    /// new version.
    pub fn set(&mut self, owner: NodeId, key: &str, value: Vec<u8>) -> u64 {
        self.write(owner, key, value, false)
    }

    /// Deletes `key` as `owner` by writing a tombstone. Returns the new version, or `None` if
    /// there was no live value.
    pub fn delete(&mut self, owner: NodeId, key: &str) -> Option<u64> {
        self.nodes.get(&owner)?.get(key)?;
        Some(self.write(owner, key, Vec::new(), true))
    }

    /// Whether `owner` can still write: its versions are below [`MAX_VERSION`].
    pub fn can_write(&self, owner: NodeId) -> bool {
        self.nodes
            .get(&owner)
            .is_none_or(|r| r.max_version < MAX_VERSION)
    }

    /// Writes one entry at the next version; at [`MAX_VERSION`] nothing is written and the
    /// current version is returned (callers check [`can_write`](Self::can_write) first).
    fn write(&mut self, owner: NodeId, key: &str, value: Vec<u8>, deleted: bool) -> u64 {
        self.changed();
        let r = self.nodes.entry(owner).or_default();
        if r.max_version >= MAX_VERSION {
            return r.max_version;
        }
        let version = r.max_version + 1;
        r.offer(
            key,
            ClusterEntry {
                version,
                deleted,
                value,
            },
        );
        version
    }

    /// Drops tombstones first seen more than `grace_us` microseconds before `now`, advancing
    /// each node's `last_gc_version`. Returns how many were dropped.
    pub fn gc_tombstones(&mut self, now: Time, grace_us: u64) -> usize {
        self.changed();
        let mut dropped = 0;
        for r in self.nodes.values_mut() {
            let mut doomed = Vec::new();
            for (key, e) in &r.entries {
                if !e.deleted {
                    continue;
                }
                let seen = *r.tombstone_seen.entry(key.clone()).or_insert(now);
                if now.as_micros().saturating_sub(seen.as_micros()) >= grace_us {
                    doomed.push((key.clone(), e.version));
                }
            }
            for (key, version) in doomed {
                r.entries.remove(&key);
                r.by_version.remove(&(version, key.clone()));
                r.tombstone_seen.remove(&key);
                r.last_gc_version = r.last_gc_version.max(version);
                dropped += 1;
            }
        }
        dropped
    }

    /// Removes `id` (a dead or departed node past its grace period) and ignores gossip about
    /// its generation or older from now on, until [`expire_forgotten`](Self::expire_forgotten).
    pub fn forget(&mut self, id: NodeId, now: Time) {
        self.changed();
        if let Some(r) = self.nodes.remove(&id) {
            self.forgotten.insert(id, (r.generation, now));
        }
    }

    /// Stops remembering nodes forgotten more than `memory_us` before `now`.
    pub fn expire_forgotten(&mut self, now: Time, memory_us: u64) {
        self.forgotten
            .retain(|_, &mut (_, at)| now.as_micros().saturating_sub(at.as_micros()) < memory_us);
    }

    /// Number of node blocks in a well-formed delta (0 if malformed).
    pub fn delta_blocks(delta: &[u8]) -> usize {
        parse_delta(delta).map_or(0, |b| b.len())
    }

    /// Takes the heartbeats a peer's digest reports, where newer than ours (same generation).
    /// Returns whether any changed. Compact digests are read only if the node sets match.
    pub fn absorb_heartbeats(&mut self, digest: &ClusterDigest) -> bool {
        let mut changed = false;
        match &digest.compact {
            Some(entries) => {
                if entries.len() != self.nodes.len() || digest.node_set_hash != self.node_set_hash()
                {
                    return false;
                }
                let owner = self.owner;
                let mut about_owner = None;
                for ((&id, r), &(hb, mv, _)) in self.nodes.iter_mut().zip(entries) {
                    if Some(id) == owner {
                        about_owner = Some((r.generation, mv, hb));
                    } else if hb > r.heartbeat && hb <= MAX_VERSION {
                        r.heartbeat = hb;
                        changed = true;
                    }
                }
                if let Some((g, mv, hb)) = about_owner {
                    self.claim_about_owner(g, mv, hb);
                }
            }
            None => {
                for d in &digest.nodes {
                    if Some(d.id) == self.owner {
                        self.claim_about_owner(d.generation, d.max_version, d.heartbeat);
                        continue;
                    }
                    if let Some(r) = self.nodes.get_mut(&d.id)
                        && r.generation == d.generation
                        && d.heartbeat > r.heartbeat
                        && d.heartbeat <= MAX_VERSION
                    {
                        r.heartbeat = d.heartbeat;
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// Hash of every `(id, generation)` held: equal hashes mean (barring collisions) equal
    /// node sets, so a sampled digest's missing nodes are known to both sides.
    pub fn node_set_hash(&self) -> u64 {
        self.nodes
            .iter()
            .fold(0, |h, (id, r)| h ^ mix(id.0 ^ mix(r.generation)))
    }

    /// A fingerprint of the whole version vector: every `(node, generation, max_version,
    /// last_gc_version)` held, mixed and xor-ed together (heartbeats left out). Two replicas
    /// with equal fingerprints hold (barring a 2^-64 collision) the same entries, so an
    /// anti-entropy exchange between them can stop after comparing these 8 bytes. Cached:
    /// recomputed (O(nodes)) only after the state changed.
    pub fn fingerprint(&self) -> u64 {
        if let Some(fp) = self.fingerprint.0.get() {
            return fp;
        }
        let fp = self.nodes.iter().fold(0, |h, (id, r)| {
            h ^ mix(id.0 ^ mix(r.generation ^ mix(r.max_version ^ mix(r.last_gc_version))))
        });
        self.fingerprint.0.set(Some(fp));
        fp
    }

    fn changed(&mut self) {
        self.fingerprint.0.set(None);
    }

    fn write_block(
        id: NodeId,
        r: &NodeRecord,
        from: u64,
        reset: bool,
        left: &mut usize,
        out: &mut Vec<u8>,
    ) -> usize {
        let newer: Vec<&(u64, String)> = if from >= r.max_version {
            Vec::new()
        } else {
            r.by_version.range((from + 1, String::new())..).collect()
        };
        let header = 8
            + 1
            + varint_len(r.generation)
            + varint_len(r.heartbeat)
            + varint_len(from)
            + varint_len(r.max_version.max(from))
            + if reset {
                varint_len(r.last_gc_version)
            } else {
                0
            }
            + varint_len(newer.len() as u64);
        if header > *left {
            return 0;
        }
        let mut room = *left - header;
        let mut count = 0;
        for (_, key) in &newer {
            let len = entry_len(key, &r.entries[key]);
            if len > room {
                break;
            }
            room -= len;
            count += 1;
        }
        // Complete up to our max version if every newer entry fits, else up to the last one
        // sent (never claim what was not sent).
        let upto = if count == newer.len() {
            r.max_version.max(from)
        } else if count == 0 {
            from
        } else {
            newer[count - 1].0
        };
        let start = out.len();
        out.extend_from_slice(&id.0.to_le_bytes());
        out.push(if reset { FLAG_RESET } else { 0 });
        put_varint(out, r.generation);
        put_varint(out, r.heartbeat);
        put_varint(out, from);
        put_varint(out, upto);
        if reset {
            put_varint(out, r.last_gc_version);
        }
        put_varint(out, count as u64);
        for (_, key) in newer.iter().take(count) {
            let e = &r.entries[key];
            put_bytes(out, key.as_bytes());
            put_varint(out, e.version);
            out.push(u8::from(e.deleted));
            if !e.deleted {
                put_bytes(out, &e.value);
            }
        }
        *left -= out.len() - start;
        1 + count
    }

    fn apply_block(&mut self, b: &Block<'_>) -> bool {
        if self.owner == Some(b.id) {
            self.claim_about_owner(b.generation, b.upto, b.heartbeat);
            return false;
        }
        self.changed();
        if let Some(&(g, _)) = self.forgotten.get(&b.id) {
            if b.generation <= g {
                return false;
            }
            self.forgotten.remove(&b.id);
        }
        let mut changed = false;
        let r = match self.nodes.get_mut(&b.id) {
            Some(r) if b.generation < r.generation => return false,
            Some(r) if b.generation == r.generation => r,
            _ => {
                // Unknown node or a newer generation: only a block from version zero can start
                // it, else we would hold entries above a gap.
                if b.from != 0 {
                    return false;
                }
                self.nodes.insert(b.id, NodeRecord::new(b.generation));
                changed = true;
                self.nodes.get_mut(&b.id).expect("just inserted")
            }
        };
        if b.heartbeat > r.heartbeat {
            r.heartbeat = b.heartbeat;
            changed = true;
        }
        let reset = b.flags & FLAG_RESET != 0 && r.max_version < b.last_gc;
        if reset {
            *r = NodeRecord {
                generation: r.generation,
                heartbeat: r.heartbeat,
                last_gc_version: b.last_gc,
                ..NodeRecord::default()
            };
            changed = true;
        } else if r.max_version < b.from {
            return changed; // a gap: wait for a delta from what we hold
        }
        for &(key, version, deleted, value) in &b.entries {
            if !reset && version <= r.last_gc_version {
                continue; // overwritten or collected long ago; never resurrect it
            }
            changed |= r.offer(
                key,
                ClusterEntry {
                    version,
                    deleted,
                    value: value.to_vec(),
                },
            );
        }
        if b.upto > r.max_version {
            r.max_version = b.upto;
            changed = true;
        }
        changed
    }
}

impl State for ClusterState {
    type Digest = ClusterDigest;

    fn merge(&mut self, other: &Self) -> bool {
        self.changed();
        let mut changed = false;
        for (&id, theirs) in &other.nodes {
            if self.owner == Some(id) {
                continue;
            }
            match self.nodes.get_mut(&id) {
                Some(mine) if mine.generation > theirs.generation => {}
                Some(mine) if mine.generation == theirs.generation => {
                    if theirs.heartbeat > mine.heartbeat {
                        mine.heartbeat = theirs.heartbeat;
                        changed = true;
                    }
                    if theirs.last_gc_version > mine.last_gc_version {
                        mine.last_gc_version = theirs.last_gc_version;
                        changed = true;
                    }
                    if theirs.max_version > mine.max_version {
                        mine.max_version = theirs.max_version;
                        changed = true;
                    }
                    for (key, e) in &theirs.entries {
                        changed |= mine.offer(key, e.clone());
                    }
                }
                _ => {
                    let mut fresh = theirs.clone();
                    fresh.tombstone_seen.clear();
                    self.nodes.insert(id, fresh);
                    changed = true;
                }
            }
        }
        changed
    }

    fn digest_into(&self, out: &mut ClusterDigest) {
        out.nodes.clear();
        out.nodes
            .extend(self.nodes.iter().map(|(&id, r)| NodeDigest {
                id,
                generation: r.generation,
                heartbeat: r.heartbeat,
                max_version: r.max_version,
                last_gc_version: r.last_gc_version,
            }));
        out.sampled = false;
        out.node_set_hash = self.node_set_hash();
        out.budget_hint = self.digest_budget;
    }

    fn encode_digest(digest: &ClusterDigest, budget: usize, rotation: u64, out: &mut Vec<u8>) {
        let budget = match digest.budget_hint {
            0 => budget,
            hint => budget.min(hint),
        };
        let node_len = |n: &NodeDigest| {
            8 + varint_len(n.generation)
                + varint_len(n.heartbeat)
                + varint_len(n.max_version)
                + varint_len(n.last_gc_version)
        };
        let n = digest.nodes.len();
        let fixed = DIGEST_FIXED + varint_len(n as u64);
        let compact_len: usize = digest
            .nodes
            .iter()
            .map(|d| {
                varint_len(d.heartbeat) + varint_len(d.max_version) + varint_len(d.last_gc_version)
            })
            .sum();
        if n > 0 && fixed + compact_len <= budget {
            out.push(FLAG_COMPACT);
            out.extend_from_slice(&digest.node_set_hash.to_le_bytes());
            put_varint(out, n as u64);
            for d in &digest.nodes {
                put_varint(out, d.heartbeat);
                put_varint(out, d.max_version);
                put_varint(out, d.last_gc_version);
            }
            return;
        }
        let total: usize = digest.nodes.iter().map(node_len).sum();
        let (start, take, sampled) = if fixed + total <= budget || n == 0 {
            (0, n, false)
        } else {
            let start = (rotation % n as u64) as usize;
            let mut room = budget.saturating_sub(fixed);
            let mut take = 0;
            while take < n {
                let len = node_len(&digest.nodes[(start + take) % n]);
                if len > room {
                    break;
                }
                room -= len;
                take += 1;
            }
            (start, take, true)
        };
        out.push(if sampled { FLAG_SAMPLED } else { 0 });
        out.extend_from_slice(&digest.node_set_hash.to_le_bytes());
        put_varint(out, take as u64);
        // Written in id order (the decoder checks it): the wrapped head, then the tail.
        let wrapped = (start + take).saturating_sub(n);
        let listed = digest.nodes[..wrapped]
            .iter()
            .chain(&digest.nodes[start..(start + take).min(n)]);
        for d in listed {
            out.extend_from_slice(&d.id.0.to_le_bytes());
            put_varint(out, d.generation);
            put_varint(out, d.heartbeat);
            put_varint(out, d.max_version);
            put_varint(out, d.last_gc_version);
        }
    }

    fn decode_digest_into(input: &[u8], out: &mut ClusterDigest) -> Result<(), DecodeError> {
        out.nodes.clear();
        out.compact = None;
        out.budget_hint = 0;
        let mut r = Reader::new(input);
        let flags = r.u8()?;
        if flags & !(FLAG_SAMPLED | FLAG_COMPACT) != 0 || flags == FLAG_SAMPLED | FLAG_COMPACT {
            return Err(DecodeError::Invalid("digest flags"));
        }
        out.sampled = flags & FLAG_SAMPLED != 0;
        out.node_set_hash = read_u64_le(&mut r)?;
        if flags & FLAG_COMPACT != 0 {
            let n = r.len(input.len() / 3, "digest length")?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push((r.varint()?, r.varint()?, r.varint()?));
            }
            out.compact = Some(entries);
            return r.finish();
        }
        let n = r.len(input.len() / 12, "digest length")?;
        for _ in 0..n {
            let d = NodeDigest {
                id: NodeId(read_u64_le(&mut r)?),
                generation: r.varint()?,
                heartbeat: r.varint()?,
                max_version: r.varint()?,
                last_gc_version: r.varint()?,
            };
            if out.nodes.last().is_some_and(|p| p.id >= d.id) {
                return Err(DecodeError::Invalid("digest order"));
            }
            out.nodes.push(d);
        }
        r.finish()
    }

    fn write_delta(
        &self,
        peer: &ClusterDigest,
        budget: usize,
        rotation: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        let n = self.nodes.len();
        if n == 0 {
            return 0;
        }
        let hash_matches = peer.node_set_hash == self.node_set_hash();
        let same_set = peer.sampled && hash_matches;
        // A compact digest from a peer with our node set: read it against our node list. One
        // from a peer with another set cannot be read: send what fits, in rotation.
        let compact: Option<Vec<NodeDigest>> = match &peer.compact {
            Some(entries) if hash_matches && entries.len() == n => Some(
                self.nodes
                    .iter()
                    .zip(entries)
                    .map(
                        |((&id, r), &(heartbeat, max_version, last_gc_version))| NodeDigest {
                            id,
                            generation: r.generation,
                            heartbeat,
                            max_version,
                            last_gc_version,
                        },
                    )
                    .collect(),
            ),
            _ => None,
        };
        // The peer sent its heartbeats and will read ours from our own digest in this exchange.
        let skip_heartbeats = compact.is_some();
        let lookup = |id: NodeId| -> Option<&NodeDigest> {
            match &compact {
                Some(list) => list
                    .binary_search_by_key(&id, |d| d.id)
                    .ok()
                    .map(|i| &list[i]),
                None => peer.get(id),
            }
        };
        let skip = (rotation % n as u64) as usize;
        let order = self
            .nodes
            .iter()
            .skip(skip)
            .chain(self.nodes.iter().take(skip));
        let mut left = budget;
        let mut written = 0;
        for (&id, r) in order {
            let (from, reset) = match lookup(id) {
                None if same_set => continue,
                None => (0, false),
                Some(p) if p.generation > r.generation => continue,
                Some(p) if p.generation < r.generation => (0, false),
                Some(p) => {
                    let reset =
                        p.max_version < r.last_gc_version && p.last_gc_version < r.last_gc_version;
                    if reset {
                        (0, true)
                    } else if p.max_version >= r.max_version
                        && (skip_heartbeats || p.heartbeat >= r.heartbeat)
                    {
                        continue;
                    } else {
                        (p.max_version, false)
                    }
                }
            };
            if self.forgotten.contains_key(&id) {
                continue;
            }
            written += Self::write_block(id, r, from, reset, &mut left, out);
            if left < 16 {
                break;
            }
        }
        written
    }

    fn apply_delta(&mut self, delta: &[u8]) -> Result<bool, DecodeError> {
        self.changed();
        let blocks = parse_delta(delta)?;
        let mut changed = false;
        for b in &blocks {
            changed |= self.apply_block(b);
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn digest(s: &ClusterState) -> ClusterDigest {
        let mut d = ClusterDigest::default();
        s.digest_into(&mut d);
        d
    }

    /// Runs delta rounds `from -> to` until nothing more is sent. Returns the rounds taken.
    fn sync(from: &ClusterState, to: &mut ClusterState, budget: usize) -> usize {
        for round in 0..1_000 {
            // As in push-pull, the receiver also sees the sender's digest.
            let mut theirs = Vec::new();
            ClusterState::encode_digest(&digest(from), usize::MAX, 0, &mut theirs);
            let mut d = ClusterDigest::default();
            ClusterState::decode_digest_into(&theirs, &mut d).unwrap();
            to.absorb_heartbeats(&d);
            let mut bytes = Vec::new();
            ClusterState::encode_digest(&digest(to), usize::MAX, 0, &mut bytes);
            let mut d = ClusterDigest::default();
            ClusterState::decode_digest_into(&bytes, &mut d).unwrap();
            let mut delta = Vec::new();
            if from.write_delta(&d, budget, round as u64, &mut delta) == 0 {
                return round;
            }
            assert!(delta.len() <= budget, "delta overshoots its budget");
            to.apply_delta(&delta).unwrap();
        }
        panic!("no convergence");
    }

    fn user_view(s: &ClusterState) -> Vec<(NodeId, u64, String, ClusterEntry)> {
        s.nodes()
            .flat_map(|(id, r)| {
                r.entries()
                    .map(move |(k, e)| (id, r.generation, k.to_owned(), e.clone()))
            })
            .collect()
    }

    fn replica() -> impl Strategy<Value = ClusterState> {
        proptest::collection::vec((0u64..3, 1u64..3, 0u8..4, any::<bool>(), 0u8..3), 0..16)
            .prop_map(|ops| {
                let mut s = ClusterState::new();
                for (owner, generation, key, del, val) in ops {
                    let id = NodeId(owner);
                    s.start_node(id, generation);
                    let key = format!("k{key}");
                    if del {
                        s.delete(id, &key);
                    } else {
                        s.set(id, &key, vec![val]);
                    }
                    s.beat(id);
                }
                s
            })
    }

    #[test]
    fn fingerprints_match_exactly_when_the_version_vectors_do() {
        let mut a = ClusterState::new();
        a.start_node(NodeId(1), 7);
        a.set(NodeId(1), "k", b"v".to_vec());
        let mut b = ClusterState::new();
        assert_ne!(a.fingerprint(), b.fingerprint());
        sync(&a, &mut b, 1_000);
        assert_eq!(a.fingerprint(), b.fingerprint(), "in sync after a sync");
        a.beat(NodeId(1));
        assert_eq!(a.fingerprint(), b.fingerprint(), "heartbeats are left out");
        a.set(NodeId(1), "k", b"w".to_vec());
        assert_ne!(
            a.fingerprint(),
            b.fingerprint(),
            "a write shows (cache cleared)"
        );
        sync(&a, &mut b, 1_000);
        assert_eq!(a.fingerprint(), b.fingerprint());
        a.delete(NodeId(1), "k");
        assert_ne!(a.fingerprint(), b.fingerprint(), "a delete shows");
        a.forget(NodeId(1), Time::ZERO);
        assert_eq!(
            a.fingerprint(),
            ClusterState::new().fingerprint(),
            "forgetting shows"
        );
    }

    #[test]
    fn deltas_carry_keys_and_heartbeats_within_budget() {
        let mut a = ClusterState::new();
        a.start_node(NodeId(1), 7);
        for i in 0..50 {
            a.set(NodeId(1), &format!("key{i}"), vec![i as u8; 20]);
        }
        a.beat(NodeId(1));
        let mut b = ClusterState::new();
        let rounds = sync(&a, &mut b, 200);
        assert!(rounds > 5, "a 200-byte budget needs several rounds");
        assert_eq!(user_view(&a), user_view(&b));
        assert_eq!(b.node(NodeId(1)).unwrap().heartbeat, 1);
        a.beat(NodeId(1));
        assert_eq!(
            sync(&a, &mut b, 200),
            0,
            "a heartbeat travels in the digest alone"
        );
        assert_eq!(b.node(NodeId(1)).unwrap().heartbeat, 2);
        // Without a compact digest from the peer, a heartbeat-only block carries it.
        a.beat(NodeId(1));
        let mut full = digest(&b);
        full.compact = None;
        let mut delta = Vec::new();
        assert_eq!(a.write_delta(&full, 200, 0, &mut delta), 1);
        assert!(b.apply_delta(&delta).unwrap());
        assert_eq!(b.node(NodeId(1)).unwrap().heartbeat, 3);
    }

    #[test]
    fn a_new_generation_replaces_the_old_record_whole() {
        let mut old = ClusterState::new();
        old.start_node(NodeId(1), 1);
        old.set(NodeId(1), "stale", b"x".to_vec());
        old.set(NodeId(1), "k", b"old".to_vec());
        let mut peer = ClusterState::new();
        sync(&old, &mut peer, 1_000);
        let mut restarted = ClusterState::new();
        restarted.start_node(NodeId(1), 2);
        restarted.set(NodeId(1), "k", b"new".to_vec());
        sync(&restarted, &mut peer, 1_000);
        let r = peer.node(NodeId(1)).unwrap();
        assert_eq!(r.generation, 2);
        assert_eq!(r.get("k").unwrap().value, b"new");
        assert!(
            r.entry("stale").is_none(),
            "no zombie key from generation 1"
        );
        // The old incarnation's gossip is ignored from now on.
        let mut delta = Vec::new();
        old.write_delta(&ClusterDigest::default(), 1_000, 0, &mut delta);
        assert!(!peer.apply_delta(&delta).unwrap());
    }

    #[test]
    fn peers_behind_the_gc_horizon_are_reset() {
        let mut a = ClusterState::new();
        a.start_node(NodeId(1), 1);
        a.set(NodeId(1), "gone", b"1".to_vec());
        a.set(NodeId(1), "kept", b"2".to_vec());
        let mut b = ClusterState::new();
        sync(&a, &mut b, 1_000);
        a.delete(NodeId(1), "gone");
        a.gc_tombstones(Time::ZERO, 10);
        assert_eq!(a.gc_tombstones(Time::from_micros(20), 10), 1);
        assert_eq!(a.node(NodeId(1)).unwrap().last_gc_version, 3);
        // b never saw the tombstone: it must be reset, else it keeps "gone" forever.
        sync(&a, &mut b, 1_000);
        assert!(b.node(NodeId(1)).unwrap().get("gone").is_none());
        assert_eq!(user_view(&a), user_view(&b));
    }

    #[test]
    fn forgotten_nodes_do_not_come_back() {
        let mut a = ClusterState::new();
        a.start_node(NodeId(1), 1);
        a.set(NodeId(1), "k", b"v".to_vec());
        let mut b = ClusterState::new();
        sync(&a, &mut b, 1_000);
        b.forget(NodeId(1), Time::ZERO);
        let mut delta = Vec::new();
        a.write_delta(&digest(&b), 1_000, 0, &mut delta);
        assert!(!b.apply_delta(&delta).unwrap(), "stale gossip is ignored");
        assert!(b.node(NodeId(1)).is_none());
        b.expire_forgotten(Time::from_micros(100), 50);
        sync(&a, &mut b, 1_000);
        assert!(b.node(NodeId(1)).is_some(), "memory expires");
    }

    #[test]
    fn sampled_digests_skip_nodes_both_sides_know() {
        let mut a = ClusterState::new();
        for i in 0..100 {
            a.start_node(NodeId(i), 5);
            a.set(NodeId(i), "k", vec![1; 10]);
        }
        let mut b = a.clone();
        b.set_digest_budget(300);
        let mut bytes = Vec::new();
        ClusterState::encode_digest(&digest(&b), 1_400, 3, &mut bytes);
        assert!(bytes.len() <= 300);
        let mut d = ClusterDigest::default();
        ClusterState::decode_digest_into(&bytes, &mut d).unwrap();
        assert!(d.sampled && d.nodes.len() < 100);
        let mut delta = Vec::new();
        assert_eq!(a.write_delta(&d, 1_400, 0, &mut delta), 0);
        // With a new node on a's side the sets differ: b is sent what it may lack.
        a.start_node(NodeId(1_000), 1);
        assert!(a.write_delta(&d, 1_400, 0, &mut delta) > 0);
    }

    #[test]
    fn compact_digests_carry_heartbeats_and_versions_in_four_bytes_a_node() {
        let mut a = ClusterState::new();
        for i in 0..100 {
            a.start_node(NodeId(i), 1_790_000_000_000 + i);
            a.set(NodeId(i), "k", vec![1; 10]);
            for _ in 0..200 {
                a.beat(NodeId(i));
            }
        }
        let mut b = a.clone();
        let mut bytes = Vec::new();
        ClusterState::encode_digest(&digest(&a), 1_400, 0, &mut bytes);
        assert!(
            bytes.len() <= 100 * 4 + 16,
            "compact: {} bytes",
            bytes.len()
        );
        let mut d = ClusterDigest::default();
        ClusterState::decode_digest_into(&bytes, &mut d).unwrap();
        assert!(d.compact.is_some());
        let mut delta = Vec::new();
        assert_eq!(
            b.write_delta(&d, 1_400, 0, &mut delta),
            0,
            "same state: nothing"
        );
        // Heartbeats: read from the digest, never sent as blocks.
        a.beat(NodeId(7));
        bytes.clear();
        ClusterState::encode_digest(&digest(&a), 1_400, 0, &mut bytes);
        ClusterState::decode_digest_into(&bytes, &mut d).unwrap();
        assert_eq!(a.write_delta(&digest_of(&b), 1_400, 0, &mut delta), 0);
        assert!(b.absorb_heartbeats(&d));
        assert_eq!(b.node(NodeId(7)).unwrap().heartbeat, 201);
        // Keys: a newer version is sent.
        a.set(NodeId(7), "k", vec![2]);
        assert_eq!(a.write_delta(&digest_of(&b), 1_400, 0, &mut delta), 2);
        // Another node set: the compact digest cannot be read, so everything that fits is sent.
        b.start_node(NodeId(500), 1);
        delta.clear();
        assert!(a.write_delta(&digest_of(&b), 1_400, 0, &mut delta) > 10);
        assert!(!a.clone().absorb_heartbeats(&digest_of(&b)));
    }

    /// `s`'s digest as a peer decodes it off the wire.
    fn digest_of(s: &ClusterState) -> ClusterDigest {
        let mut bytes = Vec::new();
        ClusterState::encode_digest(&digest(s), 1_400, 0, &mut bytes);
        let mut d = ClusterDigest::default();
        ClusterState::decode_digest_into(&bytes, &mut d).unwrap();
        d
    }

    #[test]
    fn replays_and_gaps_never_roll_back() {
        let mut a = ClusterState::new();
        a.start_node(NodeId(1), 1);
        a.set(NodeId(1), "k", b"1".to_vec());
        let mut first = Vec::new();
        a.write_delta(&ClusterDigest::default(), 1_000, 0, &mut first);
        let before = digest(&a);
        a.set(NodeId(1), "k", b"2".to_vec());
        a.set(NodeId(1), "j", b"3".to_vec());
        let mut second = Vec::new();
        a.write_delta(&before, 1_000, 0, &mut second);
        let mut b = ClusterState::new();
        assert!(
            !b.apply_delta(&second).unwrap(),
            "a block above a gap waits"
        );
        assert!(b.apply_delta(&first).unwrap());
        assert!(b.apply_delta(&second).unwrap());
        let snapshot = b.clone();
        assert!(!b.apply_delta(&first).unwrap(), "replay changes nothing");
        assert_eq!(b, snapshot);
        assert_eq!(b.node(NodeId(1)).unwrap().get("k").unwrap().value, b"2");
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_idempotent(a in replica(), b in replica(), c in replica()) {
            let mut ab = a.clone(); ab.merge(&b);
            let mut ba = b.clone(); ba.merge(&a);
            prop_assert_eq!(user_view(&ab), user_view(&ba));
            let mut l = ab.clone(); l.merge(&c);
            let mut bc = b.clone(); bc.merge(&c);
            let mut r = a.clone(); r.merge(&bc);
            prop_assert_eq!(user_view(&l), user_view(&r));
            let snapshot = l.clone();
            prop_assert!(!l.merge(&snapshot));
        }

        #[test]
        fn merged_replicas_have_equal_fingerprints(a in replica(), b in replica()) {
            let (mut x, mut y) = (a.clone(), b.clone());
            x.merge(&b);
            y.merge(&a);
            prop_assert_eq!(user_view(&x), user_view(&y));
            prop_assert_eq!(x.fingerprint(), y.fingerprint());
        }

        #[test]
        fn digests_round_trip(a in replica(), budget in 20usize..400, rot in any::<u64>()) {
            let d = digest(&a);
            let mut bytes = Vec::new();
            ClusterState::encode_digest(&d, budget, rot, &mut bytes);
            let mut back = ClusterDigest::default();
            ClusterState::decode_digest_into(&bytes, &mut back).unwrap();
            prop_assert_eq!(back.node_set_hash, d.node_set_hash);
            for n in &back.nodes {
                prop_assert_eq!(Some(n), d.get(n.id));
            }
            match &back.compact {
                Some(entries) => {
                    let want: Vec<_> = d.nodes.iter().map(|n| (n.heartbeat, n.max_version, n.last_gc_version)).collect();
                    prop_assert_eq!(entries, &want);
                }
                None if !back.sampled => prop_assert_eq!(back.nodes, d.nodes),
                None => {}
            }
        }

        /// Budgeted deltas reach what the sender holds, for every budget and rotation.
        #[test]
        fn budgeted_deltas_converge(a in replica(), budget in 60usize..200) {
            let mut b = ClusterState::new();
            sync(&a, &mut b, budget);
            prop_assert_eq!(user_view(&a), user_view(&b));
        }

        #[test]
        fn arbitrary_bytes_never_panic_nor_change_state(
            a in replica(),
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut s = a.clone();
            if s.apply_delta(&bytes).is_err() {
                prop_assert_eq!(&s, &a);
            }
            let mut d = ClusterDigest::default();
            let _ = ClusterState::decode_digest_into(&bytes, &mut d);
        }
    }
}
