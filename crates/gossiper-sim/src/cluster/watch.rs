//! Event-driven tallies of what the live nodes think of a few watched nodes (the crashed ones
//! and the late joiner), kept from [`ClusterEvent`]s so that "every live node marks X dead" or
//! "every live node lists X alive" is an O(1) question instead of a scan of every member list.
//!
//! A [`Watch`] holds, for one watched node, the status each observer last announced for it
//! (one byte per observer) and how many live observers are at each status. Memory is one byte
//! per (watched node, observer): watched nodes are the few named by crash specs, never all N.

use gossiper_cluster::ClusterEvent;

/// What an observer last said of the watched node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Seen {
    /// Never heard of it, forgot it, or the observer is down.
    Unknown = 0,
    Alive = 1,
    Suspect = 2,
    Dead = 3,
    Left = 4,
}

impl Seen {
    /// The status an event announces, if it concerns membership.
    pub(crate) fn of(ev: ClusterEvent) -> Seen {
        match ev {
            ClusterEvent::MemberUp(_) => Seen::Alive,
            ClusterEvent::MemberSuspect(_) => Seen::Suspect,
            ClusterEvent::MemberDown(_) => Seen::Dead,
            ClusterEvent::MemberLeft(_) => Seen::Left,
            ClusterEvent::MemberRemoved(_) => Seen::Unknown,
        }
    }

    fn from_u8(b: u8) -> Seen {
        match b {
            1 => Seen::Alive,
            2 => Seen::Suspect,
            3 => Seen::Dead,
            4 => Seen::Left,
            _ => Seen::Unknown,
        }
    }
}

/// One watched node: each observer's last announced status, and the live observers per status.
pub(crate) struct Watch {
    seen: Vec<u8>,
    counts: [usize; 5],
    /// When a live observer first marked it dead since `armed` was last set (µs of virtual
    /// time); `None` before that.
    pub(crate) first_down: Option<u64>,
    /// Whether Down verdicts are being timed (the node is down after a crash).
    pub(crate) armed: bool,
}

impl Watch {
    pub(crate) fn new(observers: usize) -> Watch {
        Watch {
            seen: vec![0; observers],
            counts: [observers, 0, 0, 0, 0],
            first_down: None,
            armed: false,
        }
    }

    /// Observer `o` (live) announced `s` at time `now` (µs).
    pub(crate) fn set(&mut self, o: usize, s: Seen, now: u64) {
        let old = self.seen[o] as usize;
        self.counts[old] -= 1;
        self.counts[s as usize] += 1;
        self.seen[o] = s as u8;
        if s == Seen::Dead && self.armed && self.first_down.is_none() {
            self.first_down = Some(now);
        }
    }

    /// Observer `o` went down or restarted: it knows nothing any more.
    pub(crate) fn forget(&mut self, o: usize) {
        self.set(o, Seen::Unknown, 0);
    }

    /// What observer `o` last announced.
    pub(crate) fn seen(&self, o: usize) -> Seen {
        Seen::from_u8(self.seen[o])
    }

    /// Live observers whose last word on the node is `s`.
    pub(crate) fn count(&self, s: Seen) -> usize {
        self.counts[s as usize]
    }

    /// Whether no live observer holds the node as anything but dead (or does not know it).
    pub(crate) fn all_dead_or_unknown(&self) -> bool {
        self.count(Seen::Alive) + self.count(Seen::Suspect) + self.count(Seen::Left) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_last_word_of_each_observer() {
        let mut w = Watch::new(3);
        w.set(0, Seen::Alive, 1);
        w.set(1, Seen::Alive, 1);
        assert_eq!(w.count(Seen::Alive), 2);
        assert!(!w.all_dead_or_unknown());
        w.armed = true;
        w.set(0, Seen::Dead, 7);
        w.set(1, Seen::Dead, 9);
        assert_eq!(w.first_down, Some(7));
        assert!(w.all_dead_or_unknown());
        w.forget(1);
        assert_eq!((w.count(Seen::Unknown), w.seen(1)), (2, Seen::Unknown));
    }
}
