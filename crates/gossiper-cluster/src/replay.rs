//! The replay window of sealed datagrams: per sender, the newest `(generation, counter)` seen
//! and a 64-bit bitmap of the counters just below it (IPsec's and WireGuard's sliding window).
//! A datagram is accepted once; one from an older generation, or more than 64 counters behind
//! the newest, is refused. Datagrams arrive out of order by a few at most, so 64 is ample.
//!
//! Only datagrams that opened with a key reach it, so only key holders can make it grow; it is
//! bounded anyway ([`MAX_SENDERS`]), forgetting the longest-quiet sender when full.

use std::collections::HashMap;

use gossiper_types::{NodeId, Time};

/// Most senders remembered.
pub const MAX_SENDERS: usize = 65_536;
/// Counters behind the newest still accepted (once each).
const WINDOW: u64 = 64;

#[derive(Debug, Clone, Copy)]
struct Window {
    generation: u64,
    newest: u64,
    /// Bit `i`: counter `newest - i` seen.
    seen: u64,
    last: Time,
}

/// See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct ReplayGuard {
    senders: HashMap<NodeId, Window>,
}

impl ReplayGuard {
    /// Whether `(sender, generation, counter)` is new; records it if so.
    pub fn accept(&mut self, now: Time, sender: NodeId, generation: u64, counter: u64) -> bool {
        if !self.senders.contains_key(&sender) && self.senders.len() >= MAX_SENDERS {
            let oldest = self
                .senders
                .iter()
                .min_by_key(|(_, w)| w.last)
                .map(|(&id, _)| id);
            if let Some(id) = oldest {
                self.senders.remove(&id);
            }
        }
        let w = self.senders.entry(sender).or_insert(Window {
            generation,
            newest: 0,
            seen: 0,
            last: now,
        });
        if generation < w.generation {
            return false;
        }
        if generation > w.generation {
            *w = Window {
                generation,
                newest: counter,
                seen: 1,
                last: now,
            };
            return true;
        }
        w.last = now;
        if counter > w.newest {
            let shift = counter - w.newest;
            w.seen = if shift >= WINDOW { 0 } else { w.seen << shift };
            w.seen |= 1;
            w.newest = counter;
            return true;
        }
        let back = w.newest - counter;
        if back >= WINDOW || w.seen & (1 << back) != 0 {
            return false;
        }
        w.seen |= 1 << back;
        true
    }

    /// Senders remembered.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// True when no sender is remembered.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_once_within_the_window_and_older_generations_never() {
        let mut g = ReplayGuard::default();
        let (a, t) = (NodeId(1), Time::ZERO);
        assert!(g.accept(t, a, 5, 10));
        assert!(!g.accept(t, a, 5, 10), "the same datagram again");
        assert!(g.accept(t, a, 5, 8), "late, within the window");
        assert!(!g.accept(t, a, 5, 8));
        assert!(g.accept(t, a, 5, 100));
        assert!(!g.accept(t, a, 5, 36), "64 behind the newest");
        assert!(g.accept(t, a, 5, 37));
        assert!(!g.accept(t, a, 4, 1_000), "an older generation");
        assert!(g.accept(t, a, 6, 1), "a newer generation starts afresh");
        assert!(!g.accept(t, a, 5, 101));
        assert!(g.accept(t, NodeId(2), 5, 10), "senders are independent");
    }

    #[test]
    fn the_table_is_bounded() {
        let mut g = ReplayGuard::default();
        for i in 0..(MAX_SENDERS as u64 + 10) {
            g.accept(Time(i), NodeId(i), 1, 1);
        }
        assert_eq!(g.len(), MAX_SENDERS);
    }
}
