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
    transmits: u32,
    /// Insertion order: larger is newer.
    order: u64,
    bytes: Vec<u8>,
}

/// A bounded queue of encoded updates, keyed by the member they are about.
#[derive(Debug, Clone, Default)]
pub(crate) struct BroadcastQueue {
    entries: Vec<Entry>,
    next_order: u64,
    bound: usize,
    /// Spare buffers of dropped entries, reused for new ones.
    spare: Vec<Vec<u8>>,
    /// The members some entry is about: a new member's update skips the linear search.
    present: HashSet<NodeId, BuildHasherDefault<IdHasher>>,
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
        self.entries.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues an update about `about`, encoded by `encode`, replacing any older one about the
    /// same member. Returns how many entries were dropped to stay within the bound.
    pub fn push(&mut self, about: NodeId, encode: impl FnOnce(&mut Vec<u8>)) -> u64 {
        let order = self.next_order;
        self.next_order += 1;
        if !self.present.insert(about)
            && let Some(e) = self.entries.iter_mut().find(|e| e.about == about)
        {
            e.bytes.clear();
            encode(&mut e.bytes);
            e.transmits = 0;
            e.order = order;
            return 0;
        }
        let mut dropped = 0;
        if self.entries.len() >= self.bound {
            // Drop the most-sent (then oldest) entry: it has done most of its job.
            if let Some(i) = (0..self.entries.len()).max_by_key(|&i| {
                (
                    self.entries[i].transmits,
                    std::cmp::Reverse(self.entries[i].order),
                )
            }) {
                let e = self.entries.swap_remove(i);
                self.present.remove(&e.about);
                self.spare.push(e.bytes);
                dropped = 1;
            }
        }
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        encode(&mut bytes);
        self.entries.push(Entry {
            about,
            transmits: 0,
            order,
            bytes,
        });
        dropped
    }

    /// Appends to `out` as many entries as fit within `budget` bytes, fewest transmits first
    /// (newest first on ties), counting a transmit for each and retiring those that reach
    /// `limit`. Returns how many were appended.
    pub fn fill(&mut self, out: &mut Vec<u8>, mut budget: usize, limit: u32) -> usize {
        if self.entries.is_empty() {
            return 0;
        }
        self.entries
            .sort_unstable_by_key(|e| (e.transmits, std::cmp::Reverse(e.order)));
        let mut n = 0;
        for e in &mut self.entries {
            if e.bytes.len() <= budget {
                out.extend_from_slice(&e.bytes);
                budget -= e.bytes.len();
                e.transmits += 1;
                n += 1;
            }
            if budget < 12 {
                break;
            }
        }
        let (spare, present) = (&mut self.spare, &mut self.present);
        self.entries.retain_mut(|e| {
            if e.transmits >= limit {
                present.remove(&e.about);
                spare.push(std::mem::take(&mut e.bytes));
                false
            } else {
                true
            }
        });
        self.spare.truncate(64);
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
