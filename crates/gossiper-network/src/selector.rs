//! `NeighborSelector`: the Go demo's `SelectRandomNeighbor`, as a trait with built-ins.

use gossiper_types::NodeId;
use rand::{Rng, RngExt};

use crate::Neighbors;

/// Picks the peers a node gossips with in one round.
///
/// Contract (checked for every built-in by [`conformance::check`], which your own selector can
/// call too): append `min(fanout, candidates.len())` distinct candidates to `out`, never `me`;
/// draw every random choice from `rng`, so the same seed gives the same picks.
pub trait NeighborSelector: Send {
    /// Appends this round's peers to `out` (which the caller has cleared).
    fn select(
        &mut self,
        me: NodeId,
        candidates: &Neighbors<'_>,
        fanout: usize,
        rng: &mut dyn Rng,
        out: &mut Vec<NodeId>,
    );

    /// A short name for logs and reports.
    fn name(&self) -> &'static str;
}

impl<T: NeighborSelector + ?Sized> NeighborSelector for Box<T> {
    fn select(
        &mut self,
        me: NodeId,
        candidates: &Neighbors<'_>,
        fanout: usize,
        rng: &mut dyn Rng,
        out: &mut Vec<NodeId>,
    ) {
        (**self).select(me, candidates, fanout, rng, out)
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
}

/// Uniformly random distinct peers: the random phone-call model of epidemic theory.
///
/// Stateless and allocation-free (Floyd's sampling), so a million nodes can share it.
#[derive(Debug, Clone, Copy, Default)]
pub struct UniformRandom;

impl NeighborSelector for UniformRandom {
    fn select(
        &mut self,
        _me: NodeId,
        candidates: &Neighbors<'_>,
        fanout: usize,
        rng: &mut dyn Rng,
        out: &mut Vec<NodeId>,
    ) {
        let n = candidates.len();
        let k = fanout.min(n);
        let start = out.len();
        // Floyd: for j in n-k..n pick t in 0..=j; take t unless already taken, else take j.
        for j in (n - k)..n {
            let t = candidates.get(rng.random_range(0..=j));
            let pick = if out[start..].contains(&t) {
                candidates.get(j)
            } else {
                t
            };
            out.push(pick);
        }
    }
    fn name(&self) -> &'static str {
        "random"
    }
}

/// Every neighbour once per cycle, in an order reshuffled at each cycle.
///
/// Bounds the time until any given neighbour is contacted to one cycle, where uniform choice only
/// makes it likely. Holds one permutation of the candidates (4 bytes each).
#[derive(Debug, Clone, Default)]
pub struct ShuffledRoundRobin {
    order: Vec<u32>,
    cursor: usize,
}

impl ShuffledRoundRobin {
    /// A selector that shuffles on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn reshuffle(&mut self, n: usize, rng: &mut dyn Rng) {
        if self.order.len() != n {
            self.order = (0..n as u32).collect();
        }
        for i in (1..n).rev() {
            let j = rng.random_range(0..=i);
            self.order.swap(i, j);
        }
        self.cursor = 0;
    }
}

impl NeighborSelector for ShuffledRoundRobin {
    fn select(
        &mut self,
        _me: NodeId,
        candidates: &Neighbors<'_>,
        fanout: usize,
        rng: &mut dyn Rng,
        out: &mut Vec<NodeId>,
    ) {
        let n = candidates.len();
        if self.order.len() != n {
            self.reshuffle(n, rng);
        }
        let start = out.len();
        while out.len() - start < fanout.min(n) {
            if self.cursor >= n {
                self.reshuffle(n, rng);
                // Peers already picked this round move behind the ones we still need, so the
                // new cycle neither repeats them now nor skips them.
                let mut back = n;
                let mut i = 0;
                while i < back.min(fanout) {
                    if out[start..].contains(&candidates.get(self.order[i] as usize)) {
                        back -= 1;
                        self.order.swap(i, back);
                    } else {
                        i += 1;
                    }
                }
            }
            let id = candidates.get(self.order[self.cursor] as usize);
            self.cursor += 1;
            if !out[start..].contains(&id) {
                out.push(id);
            }
        }
    }
    fn name(&self) -> &'static str {
        "round-robin"
    }
}

/// The neighbours contacted longest ago (or never), ties broken at random.
///
/// Keeps one counter per candidate. Spreads contacts evenly, like round-robin, but adapts when the
/// candidate list changes size (the history is then reset).
#[derive(Debug, Clone, Default)]
pub struct LeastRecentlyContacted {
    last: Vec<u64>,
    clock: u64,
}

impl LeastRecentlyContacted {
    /// A selector with no history.
    pub fn new() -> Self {
        Self::default()
    }
}

impl NeighborSelector for LeastRecentlyContacted {
    fn select(
        &mut self,
        _me: NodeId,
        candidates: &Neighbors<'_>,
        fanout: usize,
        rng: &mut dyn Rng,
        out: &mut Vec<NodeId>,
    ) {
        let n = candidates.len();
        if self.last.len() != n {
            self.last = vec![0; n];
            self.clock = 0;
        }
        self.clock += 1;
        for _ in 0..fanout.min(n) {
            // Reservoir-sample among the minima: one pass, no allocation.
            let mut best = u64::MAX;
            let mut chosen = 0;
            let mut ties = 0u32;
            for (i, &t) in self.last.iter().enumerate() {
                if t == u64::MAX {
                    continue; // picked earlier this round
                }
                if t < best {
                    best = t;
                    chosen = i;
                    ties = 1;
                } else if t == best {
                    ties += 1;
                    if rng.random_range(0..ties) == 0 {
                        chosen = i;
                    }
                }
            }
            self.last[chosen] = u64::MAX;
            out.push(candidates.get(chosen));
        }
        for t in &mut self.last {
            if *t == u64::MAX {
                *t = self.clock;
            }
        }
    }
    fn name(&self) -> &'static str {
        "least-recent"
    }
}

/// A conformance suite any [`NeighborSelector`] can be run through, ours and yours.
pub mod conformance {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn picks(mut sel: Box<dyn NeighborSelector>, seed: u64, rounds: usize) -> Vec<Vec<NodeId>> {
        let list: Vec<NodeId> = (1..=12).map(NodeId).collect();
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut all = Vec::new();
        for r in 0..rounds {
            let mut out = Vec::new();
            sel.select(
                NodeId(0),
                &Neighbors::List(&list),
                1 + r % 4,
                &mut rng,
                &mut out,
            );
            all.push(out);
        }
        all
    }

    /// Panics with a message naming the broken rule unless selectors made by `make` obey the
    /// [`NeighborSelector`] contract on list and implicit complete neighbourhoods.
    pub fn check(make: &dyn Fn() -> Box<dyn NeighborSelector>) {
        let name = make().name();
        for (cands, me) in [
            (
                Neighbors::Complete {
                    n: 9,
                    me: NodeId(4),
                },
                NodeId(4),
            ),
            (
                Neighbors::Complete {
                    n: 2,
                    me: NodeId(0),
                },
                NodeId(0),
            ),
        ] {
            let mut sel = make();
            let mut rng = Pcg64Mcg::seed_from_u64(1);
            let mut seen = std::collections::BTreeSet::new();
            for round in 0..200 {
                for fanout in [1, 3, 8, 20] {
                    let mut out = Vec::new();
                    sel.select(me, &cands, fanout, &mut rng, &mut out);
                    assert_eq!(
                        out.len(),
                        fanout.min(cands.len()),
                        "{name}: wrong count, round {round}"
                    );
                    assert!(!out.contains(&me), "{name}: picked itself");
                    let mut sorted = out.clone();
                    sorted.sort();
                    sorted.dedup();
                    assert_eq!(sorted.len(), out.len(), "{name}: duplicate pick {out:?}");
                    for id in &out {
                        assert!(
                            cands.position(*id).is_some(),
                            "{name}: picked non-candidate {id}"
                        );
                    }
                    seen.extend(out);
                }
            }
            assert_eq!(
                seen.len(),
                cands.len(),
                "{name}: never reached some neighbours"
            );
        }
        assert_eq!(
            picks(make(), 42, 50),
            picks(make(), 42, 50),
            "{name}: same seed, other picks"
        );
        let mut empty = Vec::new();
        make().select(
            NodeId(0),
            &Neighbors::List(&[]),
            3,
            &mut Pcg64Mcg::seed_from_u64(0),
            &mut empty,
        );
        assert!(empty.is_empty(), "{name}: picked from an empty list");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn every_builtin_passes_conformance() {
        conformance::check(&|| Box::new(UniformRandom));
        conformance::check(&|| Box::new(ShuffledRoundRobin::new()));
        conformance::check(&|| Box::new(LeastRecentlyContacted::new()));
    }

    #[test]
    fn uniform_is_roughly_uniform() {
        let list: Vec<NodeId> = (0..10).map(NodeId).collect();
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let mut counts = [0u32; 10];
        for _ in 0..20_000 {
            let mut out = Vec::new();
            UniformRandom.select(NodeId(99), &Neighbors::List(&list), 2, &mut rng, &mut out);
            for id in out {
                counts[id.index()] += 1;
            }
        }
        // 4,000 expected per neighbour; binomial std is about 57, so 5 % is over 3 std.
        for c in counts {
            assert!((3_800..=4_200).contains(&c), "counts {counts:?}");
        }
    }

    #[test]
    fn round_robin_visits_everyone_each_cycle() {
        let list: Vec<NodeId> = (1..=7).map(NodeId).collect();
        let mut rng = Pcg64Mcg::seed_from_u64(5);
        let mut sel = ShuffledRoundRobin::new();
        for _cycle in 0..20 {
            let mut seen = Vec::new();
            for _ in 0..7 {
                let mut out = Vec::new();
                sel.select(NodeId(0), &Neighbors::List(&list), 1, &mut rng, &mut out);
                seen.extend(out);
            }
            seen.sort();
            assert_eq!(seen, list);
        }
    }

    #[test]
    fn least_recent_never_repeats_before_everyone_was_contacted() {
        let list: Vec<NodeId> = (1..=6).map(NodeId).collect();
        let mut rng = Pcg64Mcg::seed_from_u64(9);
        let mut sel = LeastRecentlyContacted::new();
        for _ in 0..10 {
            let mut seen = Vec::new();
            for _ in 0..3 {
                let mut out = Vec::new();
                sel.select(NodeId(0), &Neighbors::List(&list), 2, &mut rng, &mut out);
                seen.extend(out);
            }
            seen.sort();
            assert_eq!(seen, list);
        }
    }
}
