//! What the simulator needs to know about a gossiped state: how to write the run's update into
//! it, and how to read back which write it holds, for the measures and the invariant checker.

use gossiper_types::{NodeId, Register, State};

/// Which write a replica holds, as the checker sees it.
///
/// Ordered by `(version, origin, value)`, the order in which a last-writer-wins register picks
/// its winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Observed {
    /// Version of the held write (0: never written).
    pub version: u64,
    /// Who wrote it.
    pub origin: NodeId,
    /// The value written (`None` before any write).
    pub value: Option<u64>,
}

impl Observed {
    /// The write's identity without its value: `(version, origin)`.
    pub fn dot(&self) -> (u64, NodeId) {
        (self.version, self.origin)
    }
}

/// A [`State`] the simulator can drive: an empty replica, a way to write the run's update, and
/// a view of the write held. Implemented for `Register<u64>`; tests implement it for deliberately
/// broken states to show the checker catches them.
pub trait Replica: State + Default + Send {
    /// Writes `value` as `writer` (the run's update).
    fn inject(&mut self, writer: NodeId, value: u64);

    /// The write this replica holds.
    fn observe(&self) -> Observed;
}

impl Replica for Register<u64> {
    fn inject(&mut self, writer: NodeId, value: u64) {
        self.set(writer, value);
    }

    fn observe(&self) -> Observed {
        Observed {
            version: self.version(),
            origin: self.origin(),
            value: self.value().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_observes_what_was_injected() {
        let mut r = Register::<u64>::default();
        assert_eq!(r.observe(), Observed::default());
        r.inject(NodeId(3), 42);
        assert_eq!(
            r.observe(),
            Observed {
                version: 1,
                origin: NodeId(3),
                value: Some(42)
            }
        );
        assert_eq!(r.observe().dot(), (1, NodeId(3)));
    }
}
