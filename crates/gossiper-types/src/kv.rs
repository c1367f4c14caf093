//! A per-node versioned key-value map, reconciled the Scuttlebutt way.
//!
//! Every key belongs to the node that wrote it (its *owner*), and each owner numbers its writes
//! 1, 2, 3, ... So a replica's knowledge of an owner is summed up by one number, the highest
//! version it holds for that owner, and the digest is one `(owner, max_version)` pair per owner
//! (van Renesse et al., 2008). A delta answers a digest with, per owner, the entries newer than
//! the peer's number, in version order: cutting a delta to a byte budget then leaves a prefix, so
//! the receiver's number never claims a write it has not seen.
//!
//! Each owner block of a delta also says which version it starts after (`since`) and up to which
//! version it makes the receiver complete (`upto`). A block that starts beyond what the receiver
//! holds (a fresh write pushed to a node that missed earlier ones) is still stored, so reads see
//! it at once, but it does not raise the receiver's number: the digest stays honest and the gap
//! is filled by the next anti-entropy exchange.

use std::collections::{BTreeMap, BTreeSet};

use crate::codec::{Reader, bytes_len, put_bytes, put_varint, varint_len};
use crate::{DecodeError, NodeId, State};

/// Largest key accepted from the wire, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// One key's value as of one write.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KvEntry {
    /// The owner's write counter when this value was written.
    pub version: u64,
    /// True for a delete (a tombstone); `value` is then empty.
    pub deleted: bool,
    /// The value's bytes.
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Owner {
    max_version: u64,
    entries: BTreeMap<String, KvEntry>,
    /// `(version, key)` of every entry, so a delta can walk versions in order.
    by_version: BTreeSet<(u64, String)>,
}

impl Owner {
    /// Stores the entry under `key` if it beats what is there. Returns whether anything
    /// changed. Allocates only when it stores something, so replaying known entries is free.
    fn offer(&mut self, key: &str, version: u64, deleted: bool, value: &[u8]) -> bool {
        let mut changed = false;
        let beats = |old: &KvEntry| {
            (version, deleted, value) > (old.version, old.deleted, old.value.as_slice())
        };
        match self.entries.get_mut(key) {
            Some(old) if !beats(old) => {}
            Some(old) => {
                self.by_version.remove(&(old.version, key.to_owned()));
                self.by_version.insert((version, key.to_owned()));
                *old = KvEntry {
                    version,
                    deleted,
                    value: value.to_vec(),
                };
                changed = true;
            }
            None => {
                self.by_version.insert((version, key.to_owned()));
                self.entries.insert(
                    key.to_owned(),
                    KvEntry {
                        version,
                        deleted,
                        value: value.to_vec(),
                    },
                );
                changed = true;
            }
        }
        changed
    }
}

/// The per-node versioned key-value map. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KvMap {
    owners: BTreeMap<NodeId, Owner>,
}

/// A [`KvMap`] digest: `(owner, highest version held)`, sorted by owner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KvDigest {
    /// One pair per owner the replica knows, sorted by owner, owners unique.
    pub owners: Vec<(NodeId, u64)>,
}

impl KvDigest {
    /// The highest version of `owner` the digest's replica holds (0 if none).
    pub fn version_of(&self, owner: NodeId) -> u64 {
        self.owners
            .binary_search_by_key(&owner, |&(o, _)| o)
            .map(|i| self.owners[i].1)
            .unwrap_or(0)
    }
}

impl KvMap {
    /// An empty map.
    pub fn new() -> KvMap {
        KvMap::default()
    }

    /// Writes `key = value` as `owner`. Returns the new version.
    pub fn set(&mut self, owner: NodeId, key: &str, value: Vec<u8>) -> u64 {
        self.write(owner, key, value, false)
    }

    /// Deletes `key` as `owner` by writing a tombstone. Returns the new version.
    pub fn delete(&mut self, owner: NodeId, key: &str) -> u64 {
        self.write(owner, key, Vec::new(), true)
    }

    fn write(&mut self, owner: NodeId, key: &str, value: Vec<u8>, deleted: bool) -> u64 {
        let o = self.owners.entry(owner).or_default();
        let version = o.max_version + 1;
        o.max_version = version;
        o.offer(key, version, deleted, &value);
        version
    }

    /// The live value of `key` written by `owner` (tombstones read as absent).
    pub fn get(&self, owner: NodeId, key: &str) -> Option<&KvEntry> {
        self.entry(owner, key).filter(|e| !e.deleted)
    }

    /// The stored entry for `key`, tombstones included.
    pub fn entry(&self, owner: NodeId, key: &str) -> Option<&KvEntry> {
        self.owners.get(&owner)?.entries.get(key)
    }

    /// The highest version of `owner` up to which this replica holds every write (0 if none).
    pub fn max_version(&self, owner: NodeId) -> u64 {
        self.owners.get(&owner).map_or(0, |o| o.max_version)
    }

    /// Owners this replica knows, in id order.
    pub fn owners(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.owners.keys().copied()
    }

    /// Every `(key, entry)` of `owner`, tombstones included, in key order.
    pub fn entries(&self, owner: NodeId) -> impl Iterator<Item = (&str, &KvEntry)> + '_ {
        self.owners
            .get(&owner)
            .into_iter()
            .flat_map(|o| o.entries.iter().map(|(k, e)| (k.as_str(), e)))
    }

    /// Number of live (non-deleted) keys over all owners.
    pub fn len(&self) -> usize {
        self.owners
            .values()
            .map(|o| o.entries.values().filter(|e| !e.deleted).count())
            .sum()
    }

    /// True when no owner has a live key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sum of every owner's max version: a cheap fingerprint that grows with every write seen.
    pub fn total_versions(&self) -> u64 {
        self.owners.values().map(|o| o.max_version).sum()
    }
}

/// Wire size of one delta entry.
fn entry_len(key: &str, e: &KvEntry) -> usize {
    bytes_len(key.len())
        + varint_len(e.version)
        + 1
        + if e.deleted {
            0
        } else {
            bytes_len(e.value.len())
        }
}

/// One owner block of a delta, as seen by [`walk_delta`]'s block callback.
struct Block {
    owner: NodeId,
    /// The version the sender assumed the receiver holds; entries are newer.
    since: u64,
    /// With `since`, the receiver holds every write of `owner` up to this version.
    upto: u64,
}

/// Walks a delta after checking each field's shape, calling `entry(owner, key, version, deleted,
/// value)` for each entry and `block(..)` after each owner block. Borrows from `delta`;
/// allocates nothing.
fn walk_delta(
    delta: &[u8],
    mut entry: impl FnMut(NodeId, &str, u64, bool, &[u8]),
    mut block: impl FnMut(Block),
) -> Result<(), DecodeError> {
    let mut r = Reader::new(delta);
    while !r.is_empty() {
        let owner = NodeId(r.varint()?);
        let since = r.varint()?;
        let upto = r.varint()?;
        if upto < since {
            return Err(DecodeError::Invalid("owner block range"));
        }
        let count = r.len(delta.len(), "entry count")?;
        if count == 0 {
            return Err(DecodeError::Invalid("empty owner block"));
        }
        let mut last = since;
        for _ in 0..count {
            let key = r.str()?;
            if key.len() > MAX_KEY_LEN {
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
            entry(owner, key, version, deleted, value);
        }
        block(Block { owner, since, upto });
    }
    Ok(())
}

impl State for KvMap {
    type Digest = KvDigest;

    fn merge(&mut self, other: &Self) -> bool {
        let mut changed = false;
        for (&id, theirs) in &other.owners {
            let mine = self.owners.entry(id).or_default();
            if theirs.max_version > mine.max_version {
                mine.max_version = theirs.max_version;
                changed = true;
            }
            for (key, e) in &theirs.entries {
                changed |= mine.offer(key, e.version, e.deleted, &e.value);
            }
        }
        changed
    }

    fn digest_into(&self, out: &mut KvDigest) {
        out.owners.clear();
        out.owners
            .extend(self.owners.iter().map(|(&id, o)| (id, o.max_version)));
    }

    fn encode_digest(digest: &KvDigest, budget: usize, rotation: u64, out: &mut Vec<u8>) {
        let pair_len = |&(id, v): &(NodeId, u64)| varint_len(id.0) + varint_len(v);
        let total: usize = digest.owners.iter().map(pair_len).sum();
        let n = digest.owners.len();
        if varint_len(n as u64) + total <= budget || n == 0 {
            put_varint(out, n as u64);
            for &(id, v) in &digest.owners {
                put_varint(out, id.0);
                put_varint(out, v);
            }
            return;
        }
        // Sample a contiguous run (wrapping) that fits, then write it in owner order, as the
        // decoder expects owners sorted.
        let start = (rotation % n as u64) as usize;
        let mut room = budget.saturating_sub(varint_len(n as u64));
        let mut take = 0;
        while take < n {
            let len = pair_len(&digest.owners[(start + take) % n]);
            if len > room {
                break;
            }
            room -= len;
            take += 1;
        }
        put_varint(out, take as u64);
        let wrapped = (start + take).saturating_sub(n);
        let pairs = digest.owners[..wrapped]
            .iter()
            .chain(&digest.owners[start..(start + take).min(n)]);
        for &(id, v) in pairs {
            put_varint(out, id.0);
            put_varint(out, v);
        }
    }

    fn decode_digest_into(input: &[u8], out: &mut KvDigest) -> Result<(), DecodeError> {
        out.owners.clear();
        let mut r = Reader::new(input);
        let n = r.len(input.len() / 2, "digest length")?;
        for _ in 0..n {
            let id = NodeId(r.varint()?);
            let v = r.varint()?;
            if out.owners.last().is_some_and(|&(prev, _)| prev >= id) {
                return Err(DecodeError::Invalid("digest order"));
            }
            out.owners.push((id, v));
        }
        r.finish()
    }

    fn write_delta(
        &self,
        peer: &KvDigest,
        budget: usize,
        rotation: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        let n_owners = self.owners.len();
        if n_owners == 0 {
            return 0;
        }
        let skip = (rotation % n_owners as u64) as usize;
        let order = self
            .owners
            .iter()
            .skip(skip)
            .chain(self.owners.iter().take(skip));
        let mut written = 0;
        let mut left = budget;
        for (&id, owner) in order {
            let known = peer.version_of(id);
            // Entries stored across a gap may lie above `max_version`: forward those too.
            let newer = || owner.by_version.range((known + 1, String::new())..);
            let Some(&(newest, _)) = owner.by_version.last() else {
                continue;
            };
            if newest <= known {
                continue;
            }
            // Pass 1: how many entries fit in what is left of the budget.
            let total = newer().count();
            let header = varint_len(id.0)
                + 2 * varint_len(owner.max_version.max(known))
                + varint_len(total as u64);
            if header >= left {
                continue;
            }
            let mut room = left - header;
            let mut count = 0;
            let mut last = known;
            for (version, key) in newer() {
                let len = entry_len(key, &owner.entries[key]);
                if len > room {
                    break;
                }
                room -= len;
                count += 1;
                last = *version;
            }
            if count == 0 {
                continue;
            }
            // What the receiver will hold completely: our own complete prefix, or less if the
            // budget cut the block short of it.
            let upto = if count == total {
                owner.max_version
            } else {
                owner.max_version.min(last)
            }
            .max(known);
            // Pass 2: write them.
            let start = out.len();
            put_varint(out, id.0);
            put_varint(out, known);
            put_varint(out, upto);
            put_varint(out, count as u64);
            for (_, key) in newer().take(count) {
                let e = &owner.entries[key];
                put_bytes(out, key.as_bytes());
                put_varint(out, e.version);
                out.push(u8::from(e.deleted));
                if !e.deleted {
                    put_bytes(out, &e.value);
                }
            }
            left -= out.len() - start;
            written += count;
        }
        written
    }

    fn apply_delta(&mut self, delta: &[u8]) -> Result<bool, DecodeError> {
        walk_delta(delta, |_, _, _, _, _| {}, |_| {})?;
        // Both callbacks need the map: collect the change flag through a cell-free two-step,
        // entries first (stored even across a gap), then each block's contiguous-prefix claim.
        let mut changed = false;
        let owners = &mut self.owners;
        let mut raised = false;
        walk_delta(
            delta,
            |owner, key, version, deleted, value| {
                changed |= owners
                    .entry(owner)
                    .or_default()
                    .offer(key, version, deleted, value);
            },
            |_| {},
        )?;
        walk_delta(
            delta,
            |_, _, _, _, _| {},
            |b| {
                let o = owners.entry(b.owner).or_default();
                // Raise the claim only when the block continues what we hold: no gaps.
                if b.since <= o.max_version && b.upto > o.max_version {
                    o.max_version = b.upto;
                    raised = true;
                }
            },
        )?;
        changed |= raised;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A replica built by a random sequence of valid writes by a few owners.
    fn replica() -> impl Strategy<Value = KvMap> {
        proptest::collection::vec((0u64..3, 0u8..4, any::<bool>(), 0u8..3), 0..12).prop_map(|ops| {
            let mut m = KvMap::new();
            for (owner, key, del, val) in ops {
                let key = format!("k{key}");
                if del {
                    m.delete(NodeId(owner), &key);
                } else {
                    m.set(NodeId(owner), &key, vec![val]);
                }
            }
            m
        })
    }

    fn digest(m: &KvMap) -> KvDigest {
        let mut d = KvDigest::default();
        m.digest_into(&mut d);
        d
    }

    proptest! {
        #[test]
        fn merge_is_commutative(a in replica(), b in replica()) {
            let mut ab = a.clone(); ab.merge(&b);
            let mut ba = b.clone(); ba.merge(&a);
            prop_assert_eq!(ab, ba);
        }

        #[test]
        fn merge_is_associative(a in replica(), b in replica(), c in replica()) {
            let mut left = a.clone(); left.merge(&b); left.merge(&c);
            let mut bc = b.clone(); bc.merge(&c);
            let mut right = a.clone(); right.merge(&bc);
            prop_assert_eq!(left, right);
        }

        #[test]
        fn merge_is_idempotent_and_reports_change(a in replica(), b in replica()) {
            let mut m = a.clone();
            let changed = m.merge(&b);
            prop_assert_eq!(changed, m != a);
            let snapshot = m.clone();
            prop_assert!(!m.merge(&b));
            prop_assert!(!m.merge(&snapshot));
            prop_assert_eq!(m, snapshot);
        }

        #[test]
        fn digest_round_trips(a in replica()) {
            let d = digest(&a);
            let mut bytes = Vec::new();
            KvMap::encode_digest(&d, usize::MAX, 0, &mut bytes);
            let mut back = KvDigest::default();
            KvMap::decode_digest_into(&bytes, &mut back).unwrap();
            prop_assert_eq!(back, d);
        }

        /// Deltas cut to any budget never overshoot it, and repeating delta rounds reaches the
        /// same state a full merge gives (when the sender's owners are disjoint from the
        /// receiver's, as in real use where each node writes only its own keys).
        #[test]
        fn budgeted_deltas_converge_to_merge(a in replica(), budget in 16usize..64, rot in any::<u64>()) {
            let mut b = KvMap::new();
            b.set(NodeId(9), "mine", b"b".to_vec());
            let mut target = b.clone();
            target.merge(&a);
            for round in 0..200 {
                let mut delta = Vec::new();
                let n = a.write_delta(&digest(&b), budget, rot.wrapping_add(round), &mut delta);
                prop_assert!(delta.len() <= budget);
                if n == 0 { break; }
                b.apply_delta(&delta).unwrap();
            }
            prop_assert_eq!(digest(&b), digest(&target));
            for owner in a.owners() {
                for (k, e) in a.entries(owner) {
                    prop_assert_eq!(b.entry(owner, k), Some(e));
                }
            }
        }

        #[test]
        fn garbage_deltas_change_nothing(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut m = KvMap::new();
            m.set(NodeId(1), "a", b"1".to_vec());
            let before = m.clone();
            if m.apply_delta(&bytes).is_err() {
                prop_assert_eq!(m, before);
            }
        }
    }

    #[test]
    fn oversized_digests_are_sampled_within_budget() {
        let mut m = KvMap::new();
        for owner in 0..200 {
            m.set(NodeId(owner * 1_000), "k", vec![1]);
        }
        let d = digest(&m);
        for rotation in [0, 7, 150, 199, 1_000] {
            let mut bytes = Vec::new();
            KvMap::encode_digest(&d, 100, rotation, &mut bytes);
            assert!(bytes.len() <= 100, "{} bytes", bytes.len());
            let mut back = KvDigest::default();
            KvMap::decode_digest_into(&bytes, &mut back).unwrap();
            assert!(back.owners.len() > 10);
            assert!(back.owners.iter().all(|p| d.owners.contains(p)));
        }
    }

    #[test]
    fn delta_is_cut_to_budget_and_rest_follows() {
        let mut a = KvMap::new();
        for i in 0..100 {
            a.set(NodeId(1), &format!("key{i:03}"), vec![7; 20]);
        }
        let mut b = KvMap::new();
        let mut rounds = 0;
        loop {
            let mut delta = Vec::new();
            let n = a.write_delta(&digest(&b), 300, 0, &mut delta);
            if n == 0 {
                break;
            }
            assert!(delta.len() <= 300, "delta of {} bytes", delta.len());
            assert!(n < 100);
            b.apply_delta(&delta).unwrap();
            // The receiver's digest only ever claims a prefix of versions.
            let claimed = b.max_version(NodeId(1));
            assert_eq!(b.entries(NodeId(1)).count() as u64, claimed);
            rounds += 1;
        }
        assert!(rounds >= 8, "took {rounds} rounds");
        assert_eq!(b, a);
    }

    #[test]
    fn a_pushed_write_across_a_gap_is_stored_but_not_claimed() {
        let mut writer = KvMap::new();
        writer.set(NodeId(1), "a", b"1".to_vec());
        writer.set(NodeId(1), "b", b"2".to_vec());
        let before = digest(&writer);
        writer.set(NodeId(1), "c", b"3".to_vec());
        // Push only the fresh write, as push-on-write does, to a node that holds nothing.
        let mut fresh = Vec::new();
        assert_eq!(writer.write_delta(&before, 1_400, 0, &mut fresh), 1);
        let mut reader = KvMap::new();
        assert!(reader.apply_delta(&fresh).unwrap());
        assert_eq!(
            reader.get(NodeId(1), "c").unwrap().value,
            b"3",
            "readable at once"
        );
        assert_eq!(
            reader.max_version(NodeId(1)),
            0,
            "the digest does not claim a, b"
        );
        // Anti-entropy then fills the gap, and the claim catches up.
        let mut repair = Vec::new();
        assert!(writer.write_delta(&digest(&reader), 1_400, 0, &mut repair) >= 2);
        reader.apply_delta(&repair).unwrap();
        assert_eq!(reader, writer);
        // And a node holding a gap forwards the stored entry without claiming past its prefix.
        let mut third = KvMap::new();
        let mut fwd = Vec::new();
        let mut gap = KvMap::new();
        gap.apply_delta(&fresh).unwrap();
        gap.write_delta(&digest(&third), 1_400, 0, &mut fwd);
        third.apply_delta(&fwd).unwrap();
        assert!(third.get(NodeId(1), "c").is_some());
        assert_eq!(third.max_version(NodeId(1)), 0);
    }

    #[test]
    fn newer_write_and_tombstone_win() {
        let mut a = KvMap::new();
        a.set(NodeId(1), "k", b"old".to_vec());
        let mut b = a.clone();
        b.set(NodeId(1), "k", b"new".to_vec());
        assert!(a.merge(&b));
        assert_eq!(a.get(NodeId(1), "k").unwrap().value, b"new");
        b.delete(NodeId(1), "k");
        assert!(a.merge(&b));
        assert!(a.get(NodeId(1), "k").is_none());
        assert!(a.entry(NodeId(1), "k").unwrap().deleted);
        assert_eq!(a.max_version(NodeId(1)), 3);
        assert!(a.is_empty());
    }

    #[test]
    fn malformed_deltas_are_rejected_whole() {
        let mut good = KvMap::new();
        good.set(NodeId(4), "x", b"1".to_vec());
        let mut delta = Vec::new();
        good.write_delta(&KvDigest::default(), 100, 0, &mut delta);
        delta.push(0x05); // a trailing owner id with no count
        let mut m = KvMap::new();
        assert_eq!(m.apply_delta(&delta), Err(DecodeError::Truncated));
        assert!(
            m.owners().next().is_none(),
            "first block must not be applied"
        );
    }
}
