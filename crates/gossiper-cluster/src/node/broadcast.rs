//! Spreading a fresh write: down a tree, with a few random copies beside it.
//!
//! Random forwarding ("every node that learns the news passes it to k random peers, once")
//! needs k ≈ ln N + 2 to reach every node, so a write cost k·N datagrams: 7 per node at
//! N = 100, each one a wake-up of the receiving process, and on a loaded host that CPU is the
//! write's latency. Here the news goes down a tree instead, which every node computes alike
//! from the push's origin and its own view of the live members, sorted by id: N − 1 datagrams
//! for the whole cluster, in two hops (each tree node has ⌈√N⌉ children). Views differ a little while membership
//! moves, and datagrams get lost, so each node that learns the news also sends it to
//! [`RANDOM_COPIES`] random live members (who then do their own part of the tree): a hole in
//! the tree is mended within a hop or two, and anti-entropy catches whatever is left. The
//! random copies leave a quarter interval after the tree's ([`DeferredCopies`]): when nothing
//! is lost they only confirm, and sent at once they would compete with the tree for the
//! receivers' time just when the write is spreading.
//!
//! A node passes the news on only when the push brought it something new, as before, so a
//! replayed or duplicate push costs nothing downstream.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use gossiper_types::{NodeId, Time};

use super::ClusterNode;
use crate::wire::EnvelopeKind;

/// Broadcasts whose random copies wait at once; past it the oldest go out early.
const MAX_DEFERRED: usize = 64;

/// Random copies of broadcasts waiting for their time: the addresses and the envelope payload.
#[derive(Debug, Default)]
pub(crate) struct DeferredCopies {
    queue: VecDeque<(Time, Vec<SocketAddr>, Vec<u8>)>,
}

impl DeferredCopies {
    /// When the first copies are due.
    pub(crate) fn next_due(&self) -> Option<Time> {
        self.queue.front().map(|(due, _, _)| *due)
    }
}

/// Bytes a broadcast adds before the engine's push: the origin's id.
pub(crate) const BROADCAST_HEADER: usize = 8;

/// Random live members each node sends the news to besides its tree children.
pub(crate) const RANDOM_COPIES: usize = 2;

/// Children per tree node on a ring of `n` members: ⌈√n⌉, at least `fanout`.
pub(crate) fn tree_fanout(n: usize, fanout: usize) -> usize {
    let root = n.isqrt();
    fanout.max(root + usize::from(root * root < n))
}

/// The members `me` passes a broadcast from `origin` to, in a `k`-ary tree over `ring` (every
/// live member this node knows and itself, sorted ascending, no duplicates).
///
/// Members are ranked by their place on the ring after `origin` (the origin itself is not
/// ranked, known or not); the origin sends to ranks `0..k`, and rank `r` to ranks
/// `k(r+1) .. k(r+1)+k`. So with the same ring at every node each member but the origin is
/// sent to exactly once. Appends to `out`.
pub(crate) fn tree_children(
    ring: &[NodeId],
    origin: NodeId,
    me: NodeId,
    k: usize,
    out: &mut Vec<NodeId>,
) {
    let len = ring.len();
    if len == 0 || k == 0 {
        return;
    }
    let base = ring.partition_point(|&id| id <= origin) % len;
    let ranked = len - usize::from(ring.binary_search(&origin).is_ok());
    // Children of rank r start at k(r+1); the origin counts as rank -1.
    let first = if me == origin {
        0
    } else {
        let Ok(at) = ring.binary_search(&me) else {
            return;
        };
        let rank = (at + len - base) % len;
        if rank >= ranked {
            return;
        }
        match k.checked_mul(rank + 1) {
            Some(f) => f,
            None => return,
        }
    };
    for child in first..first.saturating_add(k).min(ranked) {
        out.push(ring[(base + child) % len]);
    }
}

/// Most datagrams one node sends for one broadcast: its tree children and the random copies.
#[cfg(test)]
pub(crate) fn broadcast_copies_per_node() -> usize {
    1 + RANDOM_COPIES
}

impl ClusterNode {
    /// Children per tree node: √N, so the tree is two hops deep (the origin's children and
    /// theirs) at any N; at least the configured fanout.
    fn tree_fanout(&self) -> usize {
        tree_fanout(self.live_len() + 1, self.config.fanout as usize)
    }

    /// The live members and this node, sorted by id; rebuilt only when the live list moved.
    /// Under SWIM only members heard from directly count: a flood of forged members nobody
    /// answers for must not take the tree's places (the random copies still reach them).
    fn broadcast_ring(&mut self) -> &[NodeId] {
        let n = self.live_len();
        let (mut count, mut sum, mut xor) = (0, self.id.0, self.id.0);
        for i in 0..n {
            if let Some(id) = self.ring_member(i) {
                count += 1;
                sum = sum.wrapping_add(id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                xor ^= id.0.rotate_left(17);
            }
        }
        let stamp = (count, sum, xor);
        if stamp != self.ring_stamp {
            self.ring_stamp = stamp;
            self.ring.clear();
            self.ring.push(self.id);
            for i in 0..n {
                if let Some(id) = self.ring_member(i) {
                    self.ring.push(id);
                }
            }
            self.ring.sort_unstable();
            self.ring.dedup();
        }
        &self.ring
    }

    /// The `i`th live member, if it has a place on the ring.
    fn ring_member(&self, i: usize) -> Option<NodeId> {
        match &self.swim {
            Some(swim) => swim.live_heard(i).then(|| swim.live_id(i)),
            None => Some(self.live_at(i)),
        }
    }

    /// Sends the engine push `push` about news from `origin` to this node's tree children now,
    /// and to [`RANDOM_COPIES`] random live members a quarter interval later; none of them
    /// `except` (who sent it to us).
    pub(super) fn broadcast(
        &mut self,
        now: Time,
        origin: NodeId,
        push: &[u8],
        except: Option<NodeId>,
    ) {
        let k = self.tree_fanout();
        let me = self.id;
        let mut to = std::mem::take(&mut self.scratch_ids);
        to.clear();
        tree_children(self.broadcast_ring(), origin, me, k, &mut to);
        let children = to.len();
        for id in self.pick_live(RANDOM_COPIES + children, except) {
            if to.len() == children + RANDOM_COPIES {
                break;
            }
            if !to[..children].contains(&id) {
                to.push(id);
            }
        }
        let mut payload = std::mem::take(&mut self.scratch_payload);
        payload.clear();
        payload.extend_from_slice(&origin.0.to_le_bytes());
        payload.extend_from_slice(push);
        let mut later = Vec::new();
        for (i, &id) in to.iter().enumerate() {
            if Some(id) == except || id == me {
                continue;
            }
            let Some(addr) = self.addr_of(id) else {
                continue;
            };
            self.stats.forwarded += 1;
            if i < children {
                self.send_raw(addr, EnvelopeKind::Broadcast, &payload);
            } else {
                later.push(addr);
            }
        }
        if !later.is_empty() {
            if self.copies.queue.len() >= MAX_DEFERRED {
                self.send_oldest_copies();
            }
            let due = now + Duration::from_millis(self.config.interval_ms / 4);
            self.copies.queue.push_back((due, later, payload.clone()));
        }
        self.scratch_payload = payload;
        self.scratch_ids = to;
    }

    /// Sends the random copies that are due at `now`.
    pub(super) fn send_due_copies(&mut self, now: Time) {
        while self.copies.next_due().is_some_and(|due| due <= now) {
            self.send_oldest_copies();
        }
    }

    /// Sends the random copies of the oldest waiting broadcast.
    fn send_oldest_copies(&mut self) {
        if let Some((_, addrs, payload)) = self.copies.queue.pop_front() {
            for addr in addrs {
                self.send_raw(addr, EnvelopeKind::Broadcast, &payload);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        let mut r: Vec<NodeId> = v.iter().map(|&i| NodeId(i)).collect();
        r.sort_unstable();
        r.dedup();
        r
    }

    /// Everyone's children, from the same ring: who is sent to, how often.
    fn sent_to(ring: &[NodeId], origin: NodeId, k: usize) -> Vec<(NodeId, usize)> {
        let mut count: Vec<(NodeId, usize)> = ring.iter().map(|&id| (id, 0)).collect();
        let mut senders: Vec<NodeId> = ring.to_vec();
        if ring.binary_search(&origin).is_err() {
            senders.push(origin);
        }
        for &me in &senders {
            let mut out = Vec::new();
            tree_children(ring, origin, me, k, &mut out);
            for c in out {
                let i = ring.binary_search(&c).unwrap();
                count[i].1 += 1;
            }
        }
        count
    }

    /// Breadth first from `origin` over one ring: members reached, hops taken.
    fn spread(ring: &[NodeId], origin: NodeId, k: usize) -> (usize, u32) {
        let (mut reached, mut hops) = (0, 0);
        let mut frontier = vec![origin];
        loop {
            let mut next = Vec::new();
            for &me in &frontier {
                tree_children(ring, origin, me, k, &mut next);
            }
            if next.is_empty() {
                return (reached, hops);
            }
            hops += 1;
            reached += next.len();
            frontier = next;
        }
    }

    #[test]
    fn the_origin_sends_to_the_k_members_after_it_on_the_ring() {
        let ring = ids(&[10, 20, 30, 40, 50, 60]);
        let mut out = Vec::new();
        tree_children(&ring, NodeId(40), NodeId(40), 3, &mut out);
        assert_eq!(out, vec![NodeId(50), NodeId(60), NodeId(10)]);
    }

    #[test]
    fn rank_zero_passes_on_to_ranks_k_to_2k() {
        // Ranks after origin 40: 50=0, 60=1, 10=2, 20=3, 30=4.
        let ring = ids(&[10, 20, 30, 40, 50, 60]);
        let mut out = Vec::new();
        tree_children(&ring, NodeId(40), NodeId(50), 2, &mut out);
        assert_eq!(out, vec![NodeId(10), NodeId(20)]);
        out.clear();
        tree_children(&ring, NodeId(40), NodeId(60), 2, &mut out);
        assert_eq!(out, vec![NodeId(30)]);
        out.clear();
        tree_children(&ring, NodeId(40), NodeId(30), 2, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_node_outside_the_ring_sends_nothing() {
        let ring = ids(&[10, 20, 30]);
        let mut out = Vec::new();
        tree_children(&ring, NodeId(10), NodeId(25), 2, &mut out);
        assert!(out.is_empty());
        tree_children(&[], NodeId(10), NodeId(10), 2, &mut out);
        tree_children(&ring, NodeId(10), NodeId(10), 0, &mut out);
        assert!(out.is_empty());
    }

    proptest! {
        /// With one ring everywhere, every member but the origin is sent to exactly once,
        /// whether or not the origin is on the ring.
        #[test]
        fn one_ring_makes_a_spanning_tree(
            members in proptest::collection::vec(any::<u64>(), 1..300),
            origin in any::<u64>(),
            k in 1usize..12,
        ) {
            let ring = ids(&members);
            let origin = NodeId(origin);
            for (id, n) in sent_to(&ring, origin, k) {
                prop_assert_eq!(n, usize::from(id != origin), "{:?} sent to {} times", id, n);
            }
        }

        /// With ⌈√n⌉ children a node, every member is reached in at most two hops.
        #[test]
        fn square_root_children_make_two_hops(
            members in proptest::collection::vec(any::<u64>(), 2..3_000),
            origin in any::<u64>(),
        ) {
            let ring = ids(&members);
            let k = tree_fanout(ring.len(), 3);
            let (reached, hops) = spread(&ring, NodeId(origin), k);
            prop_assert_eq!(reached, ring.len() - usize::from(ring.contains(&NodeId(origin))));
            prop_assert!(hops <= 2, "{} hops with {} children", hops, k);
        }

        /// Depth: breadth first from the origin, every member is reached within
        /// ⌈log_k(M + 1)⌉ hops.
        #[test]
        fn the_tree_is_shallow(
            members in proptest::collection::vec(any::<u64>(), 2..2_000),
            k in 2usize..12,
        ) {
            let ring = ids(&members);
            let (reached, hops) = spread(&ring, ring[0], k);
            let m = ring.len() - 1;
            prop_assert_eq!(reached, m);
            let bound = ((m + 1) as f64).log(k as f64).ceil() as u32;
            prop_assert!(hops <= bound, "{} hops > {}", hops, bound);
        }
    }
}
