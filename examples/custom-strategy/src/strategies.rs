//! Two strategies of our own, written against the public traits only: a neighbour selector
//! that keeps its partners for a few rounds, and an interval that starts fast and slows down.
//!
//! Both draw every random number from the `rng` the engine hands them (the node's seeded RNG),
//! never from the OS, so `--seed` still fixes every choice.

use std::fmt;
use std::time::Duration;

use gossiper_network::{GossipInterval, NeighborSelector, Neighbors};
use gossiper_types::NodeId;
use rand::{Rng, RngExt};

/// Talks to the same partners for `keep_rounds` rounds, then picks new ones at random.
///
/// Why you might want it: when each contact costs a handshake (TLS, a TCP connection, a
/// NAT hole), reusing partners for a while amortises it, at the price of a slightly slower
/// spread than fresh uniform picks. Partners are re-picked early when the fanout or the
/// candidate list changes, so the picks always obey the [`NeighborSelector`] contract.
#[derive(Debug, Clone)]
pub struct StickyPartners {
    keep_rounds: u32,
    partners: Vec<NodeId>,
    rounds_left: u32,
    /// Scratch for drawing distinct candidates, kept to avoid reallocating.
    scratch: Vec<usize>,
}

impl StickyPartners {
    /// Keeps each choice of partners for `keep_rounds` rounds (at least 1).
    pub fn new(keep_rounds: u32) -> Self {
        StickyPartners {
            keep_rounds: keep_rounds.max(1),
            partners: Vec::new(),
            rounds_left: 0,
            scratch: Vec::new(),
        }
    }

    /// True when the current partners can serve this round as they are.
    fn still_fit(&self, candidates: &Neighbors<'_>, want: usize) -> bool {
        self.rounds_left > 0
            && self.partners.len() == want
            && self
                .partners
                .iter()
                .all(|&p| candidates.position(p).is_some())
    }

    /// Draws `want` distinct candidates uniformly: a partial Fisher–Yates shuffle of indices.
    fn repick(&mut self, candidates: &Neighbors<'_>, want: usize, rng: &mut dyn Rng) {
        self.scratch.clear();
        self.scratch.extend(0..candidates.len());
        self.partners.clear();
        for i in 0..want {
            let j = rng.random_range(i..self.scratch.len());
            self.scratch.swap(i, j);
            self.partners.push(candidates.get(self.scratch[i]));
        }
        self.rounds_left = self.keep_rounds;
    }
}

impl NeighborSelector for StickyPartners {
    fn select(
        &mut self,
        _me: NodeId,
        candidates: &Neighbors<'_>,
        fanout: usize,
        rng: &mut dyn Rng,
        out: &mut Vec<NodeId>,
    ) {
        let want = fanout.min(candidates.len());
        if !self.still_fit(candidates, want) {
            self.repick(candidates, want, rng);
        }
        self.rounds_left -= 1;
        out.extend_from_slice(&self.partners);
    }

    fn name(&self) -> &'static str {
        "sticky-partners"
    }
}

/// Why a [`SlowStart`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowStartError(String);

impl fmt::Display for SlowStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SlowStartError {}

/// Starts with short delays and doubles them each round up to a steady delay, each drawn
/// within ±20 % so that nodes do not march in step.
///
/// Why you might want it: a node that just joined (or just restarted) has the most to learn,
/// so it gossips eagerly at first, then settles to the cheaper steady rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowStart {
    next_us: u64,
    steady_us: u64,
    first_us: u64,
}

impl SlowStart {
    /// Delays from `first`, doubling each round, up to `steady`; needs `0 < first <= steady`.
    pub fn new(first: Duration, steady: Duration) -> Result<Self, SlowStartError> {
        if first.is_zero() || first > steady {
            return Err(SlowStartError(format!(
                "slow-start needs 0 < first <= steady, got {}..{} ms",
                first.as_millis(),
                steady.as_millis()
            )));
        }
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Ok(SlowStart {
            next_us: us(first),
            steady_us: us(steady),
            first_us: us(first),
        })
    }
}

impl GossipInterval for SlowStart {
    fn next_delay(&mut self, rng: &mut dyn Rng) -> Duration {
        let base = self.next_us;
        self.next_us = self.next_us.saturating_mul(2).min(self.steady_us);
        let spread = base / 5;
        Duration::from_micros(rng.random_range(base - spread..=base + spread).max(1))
    }

    fn mean(&self) -> Duration {
        // What the delays settle to; the short ones at the start do not last.
        Duration::from_micros(self.steady_us)
    }

    fn describe(&self) -> String {
        format!(
            "slow-start({}ms doubling to {}ms)",
            self.first_us / 1_000,
            self.steady_us / 1_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossiper_network::selector::conformance;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn sticky_partners_pass_the_selector_conformance_suite() {
        for keep in [1, 3, 10] {
            conformance::check(&|| Box::new(StickyPartners::new(keep)));
        }
    }

    #[test]
    fn sticky_partners_stick_then_move_on() {
        let list: Vec<NodeId> = (1..=20).map(NodeId).collect();
        let cands = Neighbors::List(&list);
        let mut rng = Pcg64Mcg::seed_from_u64(4);
        let mut sel = StickyPartners::new(3);
        let mut rounds = Vec::new();
        for _ in 0..30 {
            let mut out = Vec::new();
            sel.select(NodeId(0), &cands, 2, &mut rng, &mut out);
            rounds.push(out);
        }
        for block in rounds.chunks(3) {
            assert!(block.iter().all(|r| *r == block[0]), "kept for 3 rounds");
        }
        let distinct: std::collections::BTreeSet<_> = rounds.iter().collect();
        assert!(
            distinct.len() >= 8,
            "10 re-picks out of 190 pairs mostly differ"
        );
    }

    #[test]
    fn sticky_partners_repick_when_a_partner_leaves() {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let mut sel = StickyPartners::new(100);
        let mut out = Vec::new();
        sel.select(
            NodeId(0),
            &Neighbors::List(&[NodeId(1)]),
            1,
            &mut rng,
            &mut out,
        );
        assert_eq!(out, [NodeId(1)]);
        out.clear();
        sel.select(
            NodeId(0),
            &Neighbors::List(&[NodeId(2)]),
            1,
            &mut rng,
            &mut out,
        );
        assert_eq!(
            out,
            [NodeId(2)],
            "a partner that is gone is replaced at once"
        );
    }

    #[test]
    fn slow_start_doubles_up_to_the_steady_delay() {
        let mut s = SlowStart::new(Duration::from_millis(10), Duration::from_millis(100)).unwrap();
        let mut rng = Pcg64Mcg::seed_from_u64(2);
        let delays: Vec<u128> = (0..8).map(|_| s.next_delay(&mut rng).as_micros()).collect();
        let bases = [
            10_000, 20_000, 40_000, 80_000, 100_000, 100_000, 100_000, 100_000,
        ];
        for (d, base) in delays.iter().zip(bases) {
            assert!(
                (base * 8 / 10..=base * 12 / 10).contains(d),
                "{d} µs is not within 20 % of {base}"
            );
        }
        assert_eq!(s.mean(), Duration::from_millis(100));
        assert_eq!(s.describe(), "slow-start(10ms doubling to 100ms)");
    }

    #[test]
    fn slow_start_is_seeded_and_checked() {
        let make = || SlowStart::new(Duration::from_millis(1), Duration::from_millis(9)).unwrap();
        let draw = |mut s: SlowStart| {
            let mut rng = Pcg64Mcg::seed_from_u64(5);
            (0..20).map(|_| s.next_delay(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(make()), draw(make()));
        assert!(SlowStart::new(Duration::ZERO, Duration::from_millis(1)).is_err());
        let err = SlowStart::new(Duration::from_millis(9), Duration::from_millis(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "slow-start needs 0 < first <= steady, got 9..1 ms"
        );
    }
}
