//! One synchronous phase spread over threads, with the same result whatever their number.
//!
//! Within a phase of the synchronous model a delivery changes only its receiver (and queues the
//! receiver's answers), and a round's opening changes only its own node. So the nodes can be cut
//! into contiguous ranges, one per thread, each thread handling its range's openings or its
//! range's deliveries (routed to it, grouped by receiver: its inbox) in the same order one
//! thread would. What is shared is merged afterwards in range order: the counts are sums, the
//! first broken invariant is the lowest range's first, and the messages each range sent are
//! routed so that every receiver gets them in the order one thread sends them in (lane after
//! lane), the network's one RNG drawing their fates in that order (`route.rs`). Hence the same
//! seed gives byte-identical reports on 1 thread or 64.
//!
//! Each lane's engines write a whole phase into the lane's one [`Outbox`], from which the
//! routing copies it once, in receiver order (`route.rs`).

use gossiper_node::Outbox;
use gossiper_types::{NodeId, Time};

use super::route::{Cut, Item};
use super::{SimNode, Violation};
use crate::replica::{Observed, Replica};

/// The read-only facts a node's change is checked against.
pub(super) struct Ctx<'a> {
    /// Run the invariant checker.
    pub check: bool,
    pub seed: u64,
    /// The round now, for `learned` and for violations.
    pub round: f64,
    /// The run's update: a node holding this dot or a later one is informed.
    pub target: (u64, NodeId),
    /// Every write made so far.
    pub written: &'a [Observed],
    /// Liveness of every node.
    pub live: &'a [bool],
    /// Whether a partition is in force (if not, [`blocked`](Ctx::blocked) is never asked).
    pub partitioned: bool,
    /// Whether a partition in force separates two nodes.
    pub blocked: &'a (dyn Fn(u32, u32) -> bool + Sync),
}

/// What a group of node calls changed in the run's counts, merged into the run afterwards.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Change in the number of live infective nodes.
    pub hot: i64,
    /// Change in the number of live informed nodes.
    pub informed: i64,
    /// Messages dropped on the way in (dead receiver, partition).
    pub dropped: u64,
    /// Deliveries of the update to a node that already held it.
    pub duplicates: u64,
    /// The first broken invariant, in call order.
    pub violation: Option<Violation>,
}

/// Calls `f` on node `i` (whose learned round is `learned`) with `out`, records
/// in `tally` what changed (informed, hot, a broken invariant), and returns whether the node
/// held the update before the call.
pub(super) fn touch<S: Replica>(
    ctx: &Ctx<'_>,
    i: usize,
    node: &mut SimNode<S>,
    learned: &mut f32,
    out: &mut Outbox,
    tally: &mut Tally,
    f: impl FnOnce(&mut SimNode<S>, &mut Outbox),
) -> bool {
    let before = node.state().observe();
    let was_hot = node.is_hot();
    f(node, out);
    let after = node.state().observe();
    let hot = node.is_hot();
    tally.hot += i64::from(hot) - i64::from(was_hot);
    let was_informed = before.dot() >= ctx.target;
    if after != before {
        if ctx.check && tally.violation.is_none() {
            tally.violation = check_change(ctx, i, &before, &after);
        }
        let is_informed = after.dot() >= ctx.target;
        if is_informed && !was_informed {
            *learned = ctx.round as f32;
            tally.informed += 1;
        } else if was_informed && !is_informed {
            *learned = f32::NAN;
            tally.informed -= 1;
        }
    }
    was_informed
}

/// The invariant a change of node `i`'s held write from `before` to `after` breaks, if any.
fn check_change(ctx: &Ctx<'_>, i: usize, before: &Observed, after: &Observed) -> Option<Violation> {
    let what = if after.dot() < before.dot() {
        format!(
            "version went backwards from {}@{} to {}@{}",
            before.version, before.origin, after.version, after.origin
        )
    } else if after.version > 0 && !ctx.written.contains(after) {
        format!(
            "holds a value nobody wrote: version {} by {} = {:?}",
            after.version, after.origin, after.value
        )
    } else {
        return None;
    };
    Some(Violation {
        seed: ctx.seed,
        round: ctx.round,
        node: format!("n{i}"),
        what,
    })
}

/// One thread's part of a phase: a contiguous range of nodes starting at `lo`, the outbox
/// its engines write the phase's messages into (not yet routed), the sender of each, and what
/// it changed.
pub(super) struct Shard<'a, S: Replica> {
    index: usize,
    lo: usize,
    nodes: &'a mut [SimNode<S>],
    learned: &'a mut [f32],
    out: &'a mut Outbox,
    senders: &'a mut Vec<u32>,
    tally: &'a mut Tally,
}

impl<S: Replica> Shard<'_, S> {
    /// Which lane this is (0 for the lowest range).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Notes `from` as the sender of what the last call wrote into the outbox.
    #[inline]
    fn collect(&mut self, from: u32) {
        // Mostly one datagram a call: a push, not a resize's loop.
        let len = self.out.len();
        if len == self.senders.len() + 1 {
            self.senders.push(from);
        } else {
            self.senders.resize(len, from);
        }
    }

    /// Every live node of the range opens its round.
    pub fn open_rounds(&mut self, ctx: &Ctx<'_>, now: Time) {
        for k in 0..self.nodes.len() {
            let i = self.lo + k;
            if !ctx.live[i] {
                continue;
            }
            touch(
                ctx,
                i,
                &mut self.nodes[k],
                &mut self.learned[k],
                self.out,
                self.tally,
                |node, out| node.gossip_now(now, out),
            );
            self.collect(i as u32);
        }
    }

    /// Delivers `items` (all addressed to this range, in receiver order), whose bytes are in
    /// `bytes`, the lane's inbox.
    pub fn deliver(&mut self, ctx: &Ctx<'_>, bytes: &[u8], items: &[Item], now: Time) {
        for item in items {
            let to = item.to as usize;
            if !ctx.live[to] || (ctx.partitioned && (ctx.blocked)(item.from, item.to)) {
                self.tally.dropped += 1;
                continue;
            }
            let bytes = item.bytes(bytes);
            let k = to - self.lo;
            let was_informed = touch(
                ctx,
                to,
                &mut self.nodes[k],
                &mut self.learned[k],
                self.out,
                self.tally,
                |node, out| {
                    // The engine counts and drops what it rejects; simulated peers send
                    // well-formed bytes.
                    let _ = node.handle_message(now, NodeId(u64::from(item.from)), bytes, out);
                },
            );
            if item.carrying && was_informed {
                self.tally.duplicates += 1;
            }
            self.collect(item.to);
        }
    }
}

/// The most lanes a phase is cut into (a message names its lane in one byte).
const MAX_LANES: usize = 256;

/// Per-thread scratch kept across the phases of a run.
pub(super) struct Lanes {
    /// Each thread's range of nodes, and their blocks.
    pub cut: Cut,
    /// What each lane's engines sent in the phase (cleared when a phase starts).
    pub outs: Vec<Outbox>,
    /// The sender of each datagram of `outs`.
    pub senders: Vec<Vec<u32>>,
    pub tallies: Vec<Tally>,
}

impl Lanes {
    /// Lanes for `threads` threads (at least one, at most one per node and 256) over `n` nodes.
    pub fn new(threads: usize, n: usize) -> Lanes {
        let t = threads.clamp(1, n.clamp(1, MAX_LANES));
        Lanes {
            cut: Cut::new(t, n),
            outs: (0..t).map(|_| Outbox::new()).collect(),
            senders: (0..t).map(|_| Vec::new()).collect(),
            tallies: (0..t).map(|_| Tally::default()).collect(),
        }
    }

    /// Runs `f` on every lane's shard, on its own thread when there is more than one.
    pub fn run<S: Replica>(
        &mut self,
        nodes: &mut [SimNode<S>],
        learned: &mut [f32],
        f: &(dyn Fn(&mut Shard<'_, S>) + Sync),
    ) {
        let mut shards = Vec::with_capacity(self.outs.len());
        let (mut nodes, mut learned) = (nodes, learned);
        let lanes = self
            .outs
            .iter_mut()
            .zip(self.senders.iter_mut())
            .zip(self.tallies.iter_mut());
        for (k, ((out, senders), tally)) in lanes.enumerate() {
            let len = self.cut.bounds[k + 1] - self.cut.bounds[k];
            let (n_here, n_rest) = std::mem::take(&mut nodes).split_at_mut(len);
            let (l_here, l_rest) = std::mem::take(&mut learned).split_at_mut(len);
            (nodes, learned) = (n_rest, l_rest);
            out.clear();
            senders.clear();
            shards.push(Shard {
                index: k,
                lo: self.cut.bounds[k],
                nodes: n_here,
                learned: l_here,
                out,
                senders,
                tally,
            });
        }
        parallel(&mut shards, &|_, shard| f(shard));
    }
}

/// Calls `f(k, &mut items[k])` for every `k`, each on its own thread when there are several
/// (the calling thread takes the first).
pub(super) fn parallel<T: Send>(items: &mut [T], f: &(dyn Fn(usize, &mut T) + Sync)) {
    if let [only] = items {
        f(0, only);
        return;
    }
    std::thread::scope(|scope| {
        let mut items = items.iter_mut().enumerate();
        let first = items.next();
        for (k, item) in items {
            scope.spawn(move || f(k, item));
        }
        if let Some((k, item)) = first {
            f(k, item);
        }
    });
}
