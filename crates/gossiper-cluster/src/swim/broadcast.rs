//! The broadcast queue: at most one pending update per member, each piggybacked a bounded
//! number of times, fewest-transmits first (memberlist's `TransmitLimitedQueue`).

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use gossiper_types::NodeId;

use super::IdHasher;

/// One pending update, already encoded.
#[derive(Debug, Clone)]
struct Entry {
    about: NodeId,
    bytes: Vec<u8>,
}

/// A bounded queue of encoded updates, keyed by the member they are about.
///
/// Entries sit in one level per transmit count, newest last within a level, so taking the
/// fewest-sent, newest entries costs O(entries taken), not a sort of the whole queue: a join
/// storm can queue thousands of updates, and every outgoing payload draws from the queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct BroadcastQueue {
    /// `levels[t]`: the entries sent `t` times, oldest first.
    levels: Vec<Vec<Entry>>,
    len: usize,
    bound: usize,
    /// Spare buffers of dropped entries, reused for new ones.
    spare: Vec<Vec<u8>>,
    /// The members some entry is about: a new member's update skips the search.
    present: HashSet<NodeId, BuildHasherDefault<IdHasher>>,
    /// Entries taken by the fill in progress (reused).
    taken: Vec<Entry>,
}

impl BroadcastQueue {
    /// An empty queue holding at most `bound` entries.
    pub fn new(bound: usize) -> BroadcastQueue {
        BroadcastQueue {
            bound: bound.max(1),
            ..BroadcastQueue::default()
        }
    }

    /// Pending entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues an update about `about`, encoded by `encode`, replacing any older one about the
    /// same member. Returns how many entries were dropped to stay within the bound.
    pub fn push(&mut self, about: NodeId, encode: impl FnOnce(&mut Vec<u8>)) -> u64 {
        if !self.present.insert(about) {
            // Replaced: the old entry goes, the new one starts unsent (rare: a member's state
            // changing again before its last change was spread).
            for level in &mut self.levels {
                if let Some(i) = level.iter().position(|e| e.about == about) {
                    let e = level.remove(i);
                    self.spare.push(e.bytes);
                    self.len -= 1;
                    break;
                }
            }
        }
        let mut dropped = 0;
        if self.len >= self.bound {
            // Drop the most-sent (then oldest) entry: it has done most of its job.
            if let Some(level) = self.levels.iter_mut().rev().find(|l| !l.is_empty()) {
                let e = level.remove(0);
                self.present.remove(&e.about);
                self.spare.push(e.bytes);
                self.len -= 1;
                dropped = 1;
            }
        }
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        encode(&mut bytes);
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(Entry { about, bytes });
        self.len += 1;
        dropped
    }

    /// Appends to `out` as many entries as fit within `budget` bytes, fewest transmits first
    /// (newest first within a count), counting a transmit for each and retiring those that
    /// reach `limit`. Returns how many were appended.
    pub fn fill(&mut self, out: &mut Vec<u8>, mut budget: usize, limit: u32) -> usize {
        if self.len == 0 {
            return 0;
        }
        let mut n = 0;
        let mut taken = std::mem::take(&mut self.taken);
        let mut moved_to = Vec::new();
        'levels: for t in 0..self.levels.len() {
            let level = &mut self.levels[t];
            let mut i = level.len();
            while i > 0 {
                i -= 1;
                if level[i].bytes.len() <= budget {
                    let e = level.remove(i);
                    out.extend_from_slice(&e.bytes);
                    budget -= e.bytes.len();
                    n += 1;
                    taken.push(e);
                    moved_to.push(t + 1);
                }
                if budget < 12 {
                    break 'levels;
                }
            }
        }
        // Sent entries move up a level (oldest first there, as they were taken newest first),
        // or retire at the limit.
        for (e, t) in taken.drain(..).zip(moved_to).rev() {
            if t as u32 >= limit {
                self.present.remove(&e.about);
                self.spare.push(e.bytes);
                self.len -= 1;
            } else {
                if self.levels.len() <= t {
                    self.levels.resize_with(t + 1, Vec::new);
                }
                self.levels[t].push(e);
            }
        }
        self.taken = taken;
        self.spare.truncate(64);
        // Entries pass through every level once, so a level's storm-sized capacity is dead
        // weight once they have moved on.
        for level in &mut self.levels {
            if level.capacity() > 32 && level.len() * 4 < level.capacity() {
                level.shrink_to(level.len() * 2);
            }
        }
        // A storm's queue is gone once spread: give its memory back (10,000 simulated nodes
        // each keeping a storm's worth of capacity would not fit).
        if self.len == 0 && self.levels.iter().map(Vec::capacity).sum::<usize>() > 64 {
            self.levels = Vec::new();
            self.taken = Vec::new();
            self.spare = Vec::new();
            self.present = HashSet::default();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_update_replaces_the_queued_one_and_the_limit_retires_it() {
        let mut q = BroadcastQueue::new(8);
        q.push(NodeId(1), |b| b.extend_from_slice(b"old-1"));
        q.push(NodeId(2), |b| b.extend_from_slice(b"two-2"));
        q.push(NodeId(1), |b| b.extend_from_slice(b"new-1"));
        assert_eq!(q.len(), 2);
        let mut out = Vec::new();
        assert_eq!(q.fill(&mut out, 100, 2), 2);
        assert_eq!(out, b"new-1two-2", "newest first on ties");
        out.clear();
        assert_eq!(q.fill(&mut out, 100, 2), 2);
        assert!(q.is_empty(), "each sent twice, then retired");
    }

    #[test]
    fn fewest_transmits_go_first_and_the_budget_is_kept() {
        let mut q = BroadcastQueue::new(8);
        q.push(NodeId(1), |b| b.extend_from_slice(&[1; 20]));
        let mut out = Vec::new();
        q.fill(&mut out, 100, 5);
        q.push(NodeId(2), |b| b.extend_from_slice(&[2; 20]));
        out.clear();
        assert_eq!(q.fill(&mut out, 30, 5), 1);
        assert_eq!(out, [2; 20]);
    }

    #[test]
    fn the_bound_drops_the_most_sent() {
        let mut q = BroadcastQueue::new(2);
        q.push(NodeId(1), |b| b.push(1));
        let mut out = Vec::new();
        q.fill(&mut out, 100, 9);
        q.push(NodeId(2), |b| b.push(2));
        assert_eq!(q.push(NodeId(3), |b| b.push(3)), 1);
        out.clear();
        q.fill(&mut out, 100, 9);
        assert_eq!(out, [3, 2]);
    }
}
