//! The broadcast queue (memberlist-wire.md §5.6): messages waiting to ride on gossip and
//! piggyback on probes, each sent a bounded number of times. memberlist's own messages are
//! named by node (a new one about a node replaces the queued one) and go first; Serf's are
//! unique and follow.

/// Most messages queued; past it the oldest Serf messages go first.
pub const MAX_QUEUED: usize = 4096;

#[derive(Debug)]
struct Entry {
    /// The node a memberlist message is about; `None` for Serf's.
    name: Option<String>,
    msg: Vec<u8>,
    transmits: u32,
    id: u64,
}

/// Messages to disseminate.
#[derive(Debug, Default)]
pub struct Queue {
    entries: Vec<Entry>,
    next_id: u64,
    /// A message was queued since [`gossiped`](Queue::gossiped) was last called.
    fresh: bool,
}

impl Queue {
    /// Whether a message was queued since the last gossip round.
    pub fn has_fresh(&self) -> bool {
        self.fresh
    }

    /// A gossip round went out (whatever it carried).
    pub fn gossiped(&mut self) {
        self.fresh = false;
    }

    /// Queues a memberlist message about `node`, replacing any queued one about it.
    pub fn push_named(&mut self, node: &str, msg: Vec<u8>) -> u64 {
        self.entries.retain(|e| e.name.as_deref() != Some(node));
        self.push(Some(node.to_owned()), msg)
    }

    /// Queues a Serf message (`[8][serf bytes]`).
    pub fn push_unique(&mut self, msg: Vec<u8>) -> u64 {
        self.push(None, msg)
    }

    fn push(&mut self, name: Option<String>, msg: Vec<u8>) -> u64 {
        self.fresh = true;
        if self.entries.len() >= MAX_QUEUED {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.name.is_none())
                .min_by_key(|(_, e)| e.id)
                .or_else(|| self.entries.iter().enumerate().min_by_key(|(_, e)| e.id))
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                self.entries.swap_remove(i);
            }
        }
        self.next_id += 1;
        self.entries.push(Entry {
            name,
            msg,
            transmits: 0,
            id: self.next_id,
        });
        self.next_id
    }

    /// Whether the message `id` is still queued.
    pub fn contains(&self, id: u64) -> bool {
        self.entries.iter().any(|e| e.id == id)
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes messages for one packet: each costs its length plus `overhead`, together at most
    /// `limit` bytes and `max_count` messages; memberlist's first, then fewest transmissions,
    /// then largest, then newest. Each taken message counts a transmission and leaves the
    /// queue after `retransmit_limit`.
    pub fn take(
        &mut self,
        overhead: usize,
        limit: usize,
        max_count: usize,
        retransmit_limit: u32,
    ) -> Vec<Vec<u8>> {
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        order.sort_by_key(|&i| {
            let e = &self.entries[i];
            (
                e.name.is_none(),
                e.transmits,
                std::cmp::Reverse(e.msg.len()),
                std::cmp::Reverse(e.id),
            )
        });
        let mut left = limit;
        let mut out = Vec::new();
        let mut done = Vec::new();
        for i in order {
            if out.len() >= max_count {
                break;
            }
            let e = &mut self.entries[i];
            if e.msg.len() + overhead > left {
                continue;
            }
            left -= e.msg.len() + overhead;
            out.push(e.msg.clone());
            e.transmits += 1;
            if e.transmits >= retransmit_limit {
                done.push(i);
            }
        }
        done.sort_unstable();
        for i in done.into_iter().rev() {
            self.entries.remove(i);
        }
        out
    }
}

/// memberlist's `retransmitLimit`: `mult × ceil(log10(n + 1))`.
pub fn retransmit_limit(mult: u32, nodes: usize) -> u32 {
    let scale = ((nodes as f64) + 1.0).log10().ceil().max(1.0) as u32;
    mult * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_messages_replace_and_go_first() {
        let mut q = Queue::default();
        q.push_unique(vec![8; 10]);
        q.push_named("a", vec![4; 5]);
        q.push_named("a", vec![4; 6]);
        assert_eq!(q.len(), 2);
        let got = q.take(2, 100, 10, 2);
        assert_eq!(got, vec![vec![4; 6], vec![8; 10]]);
        q.take(2, 100, 10, 2);
        assert!(q.is_empty(), "each left after two transmissions");
    }

    #[test]
    fn the_budget_is_kept() {
        let mut q = Queue::default();
        q.push_unique(vec![1; 50]);
        q.push_unique(vec![2; 30]);
        let got = q.take(2, 40, 10, 5);
        assert_eq!(got, vec![vec![2; 30]]);
        assert_eq!(retransmit_limit(4, 1), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
    }
}
