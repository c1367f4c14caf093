//! A synchronous phase's messages on their way to delivery: how many copies of each the network
//! lets through, and all of them put in receiver order, each lane's share by that lane's thread.
//!
//! The engines of each lane write a whole phase into the lane's outbox. Routing then works in
//! two parallel steps, with the same result whatever the number of lanes:
//!
//! 1. **Split** (one thread per sending lane): each datagram of the lane, in send order, becomes
//!    one 24-byte [`Item`] per copy the network lets through, appended to the bucket of the
//!    block of receivers its receiver belongs to. An item carries the message's bytes in itself
//!    when they fit (12 bytes: every message of a `Register<u64>` exchange but those carrying
//!    the update), read here in send order, i.e. as one stream. The counts (messages, bytes,
//!    traffic) are per-lane sums.
//! 2. **Gather** (one thread per receiving lane): the lane reads its buckets from every sending
//!    lane in lane order (so in the order one thread would have sent them), lays them out in
//!    receiver order with a stable counting sort over its own range of receivers, and copies the
//!    bytes of the few items too long to carry them into its inbox, in that order.
//!
//! Each receiver still gets its messages in the order they were sent, and deliveries to
//! different receivers do not interact within a phase, so what every node sees is unchanged;
//! but the engines (hundreds of MB at a million nodes) are then read in memory order instead of
//! at random, and the random accesses happen here, in tight loops of independent stores the
//! processor overlaps. Measured at 10^6 nodes (`docs/benchmarks.md`): copying every message's
//! bytes in receiver order, read at random from the senders' outboxes, was about 40 % of the
//! run's time (the copies waited on cache misses), and items that pointed into the outboxes
//! with no copy at all were slower still (each delivery then waited on the miss).
//!
//! A faulty network draws each datagram's fate from its one RNG in send order: then the draws
//! come first, on one thread, and the split reads them. Under reordering the whole phase is
//! shuffled by that RNG in send order before it is gathered, on one thread too.

use gossiper_node::{Datagram, Outbox};
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;

use super::shard::parallel;

/// Message bytes an [`Item`] carries in itself: every message of a `Register<u64>` exchange
/// but those that carry the update (a SynAck's delta or an Ack), about one per node over a
/// whole run.
const INLINE: usize = 12;

/// One message of a delivery phase: sender, receiver, its bytes (in the item itself when they
/// fit, else where they sit: in the outbox of the lane that sent it, then in the receiving
/// lane's inbox), and whether it carries the update (the engine said so when it wrote it).
/// 24 bytes.
#[derive(Clone, Copy, Default)]
pub(super) struct Item {
    pub from: u32,
    pub to: u32,
    /// Length in bytes (a datagram is at most 65,507 bytes).
    len: u16,
    /// The lane whose outbox holds the bytes.
    lane: u8,
    pub carrying: bool,
    /// The bytes when they fit; otherwise the first four hold where they start.
    body: [u8; INLINE],
}

impl Item {
    /// The item of the datagram `d` that lane `lane`'s outbox `out` holds, sent by `from`.
    #[inline]
    fn of(d: &Datagram, from: u32, lane: usize, out: &Outbox) -> Item {
        let range = d.range();
        let len = range.len();
        let mut body = [0u8; INLINE];
        let bytes = out.bytes();
        if len > INLINE {
            body[..4].copy_from_slice(&(range.start as u32).to_le_bytes());
        } else if range.start + INLINE <= bytes.len() {
            // A fixed-size copy (the bytes past `len` are not read).
            body.copy_from_slice(&bytes[range.start..range.start + INLINE]);
        } else {
            body[..len].copy_from_slice(&bytes[range]);
        }
        Item {
            from,
            to: d.to().0 as u32,
            len: len as u16,
            lane: lane as u8,
            carrying: d.carries_delta(),
            body,
        }
    }

    /// Whether the bytes are elsewhere.
    #[inline]
    fn outside(&self) -> bool {
        usize::from(self.len) > INLINE
    }

    /// Where the bytes start, for an item whose bytes are elsewhere.
    #[inline]
    fn start(&self) -> usize {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.body[..4]);
        u32::from_le_bytes(b) as usize
    }

    /// The message's bytes: in the item, or in `inbox_bytes`, its inbox's buffer.
    #[inline]
    pub fn bytes<'a>(&'a self, inbox_bytes: &'a [u8]) -> &'a [u8] {
        let len = usize::from(self.len);
        if self.outside() {
            &inbox_bytes[self.start()..self.start() + len]
        } else {
            &self.body[..len]
        }
    }
}

/// What one lane's split counted: the sums the run adds to its totals.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SplitCounts {
    /// Datagrams sent.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Datagrams carrying a non-empty delta.
    pub traffic: u64,
    /// Datagrams addressed to no node.
    pub dropped: u64,
}

/// One receiving lane's share of a routed phase: its messages in receiver order, and their
/// bytes in the same order.
#[derive(Default)]
pub(super) struct Inbox {
    /// The phase's items are `items[..len]`; the buffer past them holds stale items, kept
    /// so that a phase overwrites it instead of zeroing it first (24 MB a phase at 10^6 nodes).
    items: Vec<Item>,
    len: usize,
    pub bytes: Vec<u8>,
    /// The counting sort's counter per receiver of the lane.
    counts: Vec<u32>,
}

/// One sending lane's split: its items, one bucket per block of receivers, in send order.
#[derive(Default)]
struct Buckets {
    to_block: Vec<Vec<Item>>,
    counts: SplitCounts,
}

/// How the nodes are cut: into lanes (one per thread), and each lane into blocks of
/// `1 << shift` receivers, small enough that sorting one block's items by receiver stays within
/// the core's own cache (a counting sort over a whole lane at once scattered its stores over
/// tens of MB, each a cache and TLB miss: a third of the run at 10^6 nodes).
#[derive(Debug, Clone)]
pub(super) struct Cut {
    /// Where each lane's range starts (a multiple of the block size); the last entry is the
    /// node count.
    pub bounds: Vec<usize>,
    /// Block size, as a power of two.
    pub shift: u32,
}

impl Cut {
    /// The most receivers in a block: their items (24 bytes each, about one per receiver in a
    /// phase) and counters then take some 1 MB, about the core's own (L2) cache, where the
    /// sort's scattered stores land. Blocks of 65,536 (2 MB) left those stores missing it;
    /// smaller blocks mean more buckets for the split to write at once (`docs/benchmarks.md`).
    const MAX_BLOCK_SHIFT: u32 = 15;

    /// `lanes` lanes (at least one) over `n` nodes.
    pub fn new(lanes: usize, n: usize) -> Cut {
        let lanes = lanes.max(1);
        // Some eight blocks per lane, from 64 to 32,768 receivers each.
        let per_block = (n / (lanes * 8)).max(1);
        let shift = (usize::BITS - 1 - per_block.leading_zeros()).clamp(6, Self::MAX_BLOCK_SHIFT);
        let block = 1usize << shift;
        let mut bounds: Vec<usize> = (0..=lanes)
            .map(|k| ((k * n / lanes + block / 2) >> shift << shift).min(n))
            .collect();
        bounds[lanes] = n;
        Cut { bounds, shift }
    }

    /// Blocks over the `n` nodes.
    fn blocks(&self) -> usize {
        let n = self.bounds[self.bounds.len() - 1];
        (n + (1 << self.shift) - 1) >> self.shift
    }

    /// The blocks of lane `j`.
    fn blocks_of(&self, j: usize) -> std::ops::Range<usize> {
        let up = (1usize << self.shift) - 1;
        (self.bounds[j] >> self.shift)..((self.bounds[j + 1] + up) >> self.shift)
    }
}

/// The routing of one phase after another, with its buffers kept across them.
#[derive(Default)]
pub(super) struct Routing {
    /// Per receiving lane, the phase in receiver order.
    pub inboxes: Vec<Inbox>,
    /// Per sending lane, its items split by receiving lane.
    buckets: Vec<Buckets>,
    /// Under a faulty network: the copies it let through of each datagram, in send order.
    copies: Vec<u8>,
    /// Under reordering, the phase in send order before it is shuffled.
    routed: Vec<Item>,
}

impl Routing {
    /// Whether any lane has something to deliver.
    pub fn is_empty(&self) -> bool {
        self.inboxes.iter().all(|i| i.len == 0)
    }

    fn reset(&mut self, cut: &Cut) {
        let lanes = cut.bounds.len() - 1;
        self.inboxes.resize_with(lanes, Inbox::default);
        self.buckets.resize_with(lanes, Buckets::default);
        for b in &mut self.buckets {
            b.to_block.resize_with(cut.blocks(), Vec::new);
            for v in &mut b.to_block {
                v.clear();
            }
            b.counts = SplitCounts::default();
        }
    }

    /// Routes a phase over a network that loses, duplicates or reorders nothing: `outs[k]`
    /// holds what lane `k`'s nodes sent (`senders[k]` who sent each), `cut` how the nodes are
    /// cut. Returns the counts, summed in lane order.
    pub fn route_clean(&mut self, cut: &Cut, outs: &[Outbox], senders: &[Vec<u32>]) -> SplitCounts {
        self.reset(cut);
        parallel(&mut self.buckets, &|k, b| {
            b.split(cut, k, &outs[k], &senders[k], None);
        });
        self.gather(cut, outs);
        let mut total = SplitCounts::default();
        for b in &self.buckets {
            total.messages += b.counts.messages;
            total.bytes += b.counts.bytes;
            total.traffic += b.counts.traffic;
            total.dropped += b.counts.dropped;
        }
        total
    }

    /// Starts routing a phase whose fates a faulty network draws one datagram at a time (then
    /// [`note`](Routing::note) each, in send order, and [`finish`](Routing::finish)).
    pub fn start(&mut self) {
        self.copies.clear();
    }

    /// The next datagram in send order goes through in `copies` copies (0: lost).
    #[inline]
    pub fn note(&mut self, copies: u32) {
        self.copies.push(copies as u8);
    }

    /// Lays out the phase noted since [`start`](Routing::start) in receiver order; under
    /// reordering, `shuffle` first shuffles it in send order (as a network that reorders
    /// would).
    pub fn finish(
        &mut self,
        cut: &Cut,
        outs: &[Outbox],
        senders: &[Vec<u32>],
        shuffle: Option<&mut Pcg64Mcg>,
    ) {
        self.reset(cut);
        // Each lane's share of the copies, in send order.
        let mut offsets = Vec::with_capacity(outs.len() + 1);
        offsets.push(0);
        for out in outs {
            offsets.push(offsets[offsets.len() - 1] + out.len());
        }
        let copies = &self.copies;
        if let Some(rng) = shuffle {
            // One thread: the whole phase in send order, shuffled, then split as if one lane
            // had sent it in that order.
            self.routed.clear();
            for (k, (out, senders)) in outs.iter().zip(senders).enumerate() {
                let copies = &copies[offsets[k]..offsets[k + 1]];
                each_copy(k, out, senders, copies, |item| self.routed.push(item));
            }
            self.routed.shuffle(rng);
            let first = &mut self.buckets[0];
            for &item in &self.routed {
                first.to_block[item.to as usize >> cut.shift].push(item);
            }
        } else {
            parallel(&mut self.buckets, &|k, b| {
                let copies = &copies[offsets[k]..offsets[k + 1]];
                b.split(cut, k, &outs[k], &senders[k], Some(copies));
            });
        }
        self.gather(cut, outs);
    }

    /// Step 2: every receiving lane gathers its buckets from all sending lanes.
    fn gather(&mut self, cut: &Cut, outs: &[Outbox]) {
        let buckets = &self.buckets;
        parallel(&mut self.inboxes, &|j, inbox| {
            inbox.gather(cut, j, buckets, outs)
        });
    }
}

impl Buckets {
    /// Step 1 for sending lane `lane`: one item per copy of each of `out`'s datagrams, into the
    /// bucket of its receiver's block. `copies` are the network's fates (`None`: one copy each,
    /// or none for a receiver that does not exist, which is counted as dropped).
    fn split(
        &mut self,
        cut: &Cut,
        lane: usize,
        out: &Outbox,
        senders: &[u32],
        copies: Option<&[u8]>,
    ) {
        let shift = cut.shift;
        let to_block = &mut self.to_block[..];
        let datagrams = out.datagrams();
        let senders = &senders[..datagrams.len()];
        match copies {
            None => {
                // One copy of each, read and written as one stream: the loop the clean network
                // runs twice a round over every node, kept free of per-copy branches.
                let nodes = cut.bounds[cut.bounds.len() - 1] as u64;
                let mut counts = SplitCounts::default();
                for (d, &from) in datagrams.iter().zip(senders) {
                    let to = d.to().0;
                    counts.bytes += d.range().len() as u64;
                    counts.traffic += u64::from(d.carries_delta());
                    if to >= nodes {
                        counts.dropped += 1;
                        continue;
                    }
                    to_block[to as usize >> shift].push(Item::of(d, from, lane, out));
                }
                counts.messages = datagrams.len() as u64;
                self.counts = counts;
            }
            Some(copies) => {
                let copies = &copies[..datagrams.len()];
                for ((d, &from), &n) in datagrams.iter().zip(senders).zip(copies) {
                    if n == 0 {
                        continue;
                    }
                    let item = Item::of(d, from, lane, out);
                    let bucket = &mut to_block[d.to().0 as usize >> shift];
                    for _ in 0..n {
                        bucket.push(item);
                    }
                }
                self.counts = SplitCounts::default();
            }
        }
    }
}

impl Inbox {
    /// The phase's messages, in receiver order.
    pub fn items(&self) -> &[Item] {
        &self.items[..self.len]
    }

    /// Step 2 for receiving lane `lane`: its items from every sending lane's buckets, block by
    /// block and within a block in lane order, stably sorted by receiver, then the bytes of
    /// those too long to carry them copied in that order.
    fn gather(&mut self, cut: &Cut, lane: usize, buckets: &[Buckets], outs: &[Outbox]) {
        self.len = 0;
        let n = cut.bounds[cut.bounds.len() - 1];
        for block in cut.blocks_of(lane) {
            let lo = block << cut.shift;
            let hi = ((block + 1) << cut.shift).min(n);
            let counts = &mut self.counts;
            counts.clear();
            counts.resize(hi - lo + 1, 0);
            for b in buckets {
                for item in &b.to_block[block] {
                    counts[item.to as usize - lo + 1] += 1;
                }
            }
            for r in 1..counts.len() {
                counts[r] += counts[r - 1];
            }
            let base = self.len;
            let total = counts.last().copied().unwrap_or(0) as usize;
            if self.items.len() < base + total {
                self.items.resize(base + total, Item::default());
            }
            // Every slot of `base..base + total` is written exactly once below.
            let items = &mut self.items[base..base + total];
            for b in buckets {
                for &item in &b.to_block[block] {
                    let slot = &mut counts[item.to as usize - lo];
                    items[*slot as usize] = item;
                    *slot += 1;
                }
            }
            self.len = base + total;
        }
        // Bytes too long to travel in their item follow in receiver order, into one buffer.
        self.bytes.clear();
        for item in self.items[..self.len]
            .iter_mut()
            .filter(|item| item.outside())
        {
            let start = item.start();
            let sent = &outs[usize::from(item.lane)].bytes()[start..start + usize::from(item.len)];
            item.body[..4].copy_from_slice(&(self.bytes.len() as u32).to_le_bytes());
            self.bytes.extend_from_slice(sent);
        }
    }
}

/// Calls `f` on every copy of every datagram of lane `lane`'s `out`, in send order.
#[inline]
fn each_copy(lane: usize, out: &Outbox, senders: &[u32], copies: &[u8], mut f: impl FnMut(Item)) {
    for ((d, &from), &n) in out.datagrams().iter().zip(senders).zip(copies) {
        if n == 0 {
            continue;
        }
        let item = Item::of(d, from, lane, out);
        for _ in 0..n {
            f(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossiper_types::NodeId;

    #[test]
    fn cuts_are_whole_blocks_that_cover_every_node() {
        for (lanes, n) in [(1, 1), (1, 1_000), (2, 1_000), (3, 100_000), (7, 1_000_000)] {
            let cut = Cut::new(lanes, n);
            assert_eq!(cut.bounds.len(), lanes + 1);
            assert_eq!((cut.bounds[0], cut.bounds[lanes]), (0, n));
            let mut next = 0;
            for j in 0..lanes {
                assert!(cut.bounds[j] <= cut.bounds[j + 1]);
                assert_eq!(cut.bounds[j] % (1 << cut.shift), 0);
                let blocks = cut.blocks_of(j);
                assert_eq!(blocks.start, next, "lanes {lanes}, n {n}");
                next = blocks.end;
            }
            assert_eq!(next, cut.blocks());
        }
    }

    #[test]
    fn items_carry_short_messages_and_point_at_long_ones() {
        assert_eq!(std::mem::size_of::<Item>(), 24);
        let mut out = Outbox::new();
        let mut node = gossiper_node::Node::<gossiper_types::Register<u64>, _, _>::new(
            NodeId(0),
            gossiper_node::NodeConfig::default(),
            gossiper_types::Register::default(),
            gossiper_network::UniformRandom,
            crate::SimInterval::default(),
            1,
        );
        node.set_peers(gossiper_node::Peers::Complete { n: 2 });
        node.gossip_now(gossiper_types::Time::ZERO, &mut out);
        node.write(gossiper_types::Time::ZERO, &mut out, |s| {
            s.set(NodeId(0), u64::MAX)
        });
        // A Syn (short), then the write's Push (longer than an item holds).
        assert_eq!(out.len(), 2);
        let short = Item::of(&out.datagrams()[0], 0, 0, &out);
        let long = Item::of(&out.datagrams()[1], 0, 0, &out);
        assert!(!short.outside() && long.outside());
        assert_eq!(short.bytes(&[]), out.get(0).unwrap().1);
        assert_eq!(long.bytes(out.bytes()), out.get(1).unwrap().1);
    }
}
