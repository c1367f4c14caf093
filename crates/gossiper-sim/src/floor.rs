//! The floor the simulator's speed is measured against: the same random phone calls, on a
//! bitset.
//!
//! A synchronous push-pull anti-entropy run of one update on the complete graph, fanout 1, is
//! the random phone-call model: each round every node calls one peer picked uniformly, and
//! after the call both hold the update if either did at the round's start. This module runs
//! exactly that, with nothing else: one bit per node for "informed", and each node's own RNG
//! (seeded as the simulator seeds its engine) advanced by exactly the draws the engine makes
//! (the pick, the Syn's rotation, one SynAck rotation per call received, the Ack's rotation).
//! So it makes the very calls of [`crate::run`] with the same seed, and reaches full spread in
//! the same number of rounds (a test checks it); what it leaves out is everything that makes
//! the simulator a simulator: the engines, their messages and their bytes, the network, the
//! traffic accounting and the invariant checker. Its time is the floor that the simulator's
//! time is quoted against (`examples/floor.rs`, `docs/benchmarks.md`).
//!
//! The draws keep the engine's order within each node's stream: every node picks its peer and
//! draws its Syn's rotation before any call is answered (the simulator's first phase), and only
//! then are the answers' rotations drawn. A floor that drew a callee's rotation as soon as it
//! was called would shift the callee's own pick of that round, and make other calls.
//!
//! [`bare_push_pull`] is barer still, the kernel issue 11 quoted: one RNG for the whole run and
//! one draw per call, so not the simulator's calls, only the same process.

use gossiper_network::{NeighborSelector, Neighbors, UniformRandom};
use gossiper_types::NodeId;
use gossiper_types::seed::split;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::sim::node_seed;

/// What a floor run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorRun {
    /// Rounds until every node was informed (`max_rounds` if that never happened).
    pub rounds: u32,
    /// Nodes informed at the end.
    pub informed: usize,
    /// Calls made (one per node per round).
    pub calls: u64,
    /// Nodes informed at the start (index 0) and at the end of each round.
    pub informed_by_round: Vec<usize>,
}

/// The random phone calls of a synchronous push-pull run of one update among `nodes` nodes on
/// the complete graph, fanout 1, with `seed`, up to `max_rounds` rounds.
pub fn push_pull(nodes: usize, seed: u64, max_rounds: u32) -> FloorRun {
    let n = nodes as u64;
    let mut rngs: Vec<Pcg64Mcg> = (0..n)
        .map(|i| Pcg64Mcg::seed_from_u64(node_seed(seed, i, 0)))
        .collect();
    let words = nodes.div_ceil(64);
    let mut informed = vec![0u64; words];
    // The writer, drawn as the simulator draws it (every node is live at round 0).
    let mut writer_rng = Pcg64Mcg::seed_from_u64(split(seed, 0x7772_6974));
    let mut count = 0;
    if nodes > 0 {
        let w = writer_rng.random_range(0..nodes);
        informed[w / 64] |= 1 << (w % 64);
        count = 1;
    }
    let mut start = informed.clone();
    let mut picks = Vec::with_capacity(1);
    // Who each node calls this round (u32::MAX: nobody).
    let mut callee = vec![u32::MAX; nodes];
    let mut calls = 0;
    let bit = |set: &[u64], i: usize| (set[i / 64] >> (i % 64)) & 1 == 1;
    let mut informed_by_round = vec![count];
    for r in 1..=max_rounds {
        start.copy_from_slice(&informed);
        // The openings: every node picks its peer and writes its Syn (one rotation drawn),
        // all before any call is answered, as in the simulator's first phase.
        for (i, rng) in rngs.iter_mut().enumerate() {
            picks.clear();
            let me = NodeId(i as u64);
            let candidates = Neighbors::Complete { n, me };
            UniformRandom.select(me, &candidates, 1, rng, &mut picks);
            callee[i] = picks.first().map_or(u32::MAX, |p| p.0 as u32);
            let _: u64 = rng.random();
        }
        // The answers: each callee's SynAck and each caller's Ack draw one rotation each; after
        // the call both hold the update if either did at the round's start.
        for i in 0..nodes {
            if callee[i] == u32::MAX {
                continue;
            }
            let j = callee[i] as usize;
            calls += 1;
            let _: u64 = rngs[j].random();
            let _: u64 = rngs[i].random();
            if bit(&start, i) != bit(&start, j) {
                for k in [i, j] {
                    if !bit(&informed, k) {
                        informed[k / 64] |= 1 << (k % 64);
                        count += 1;
                    }
                }
            }
        }
        informed_by_round.push(count);
        if count == nodes {
            return FloorRun {
                rounds: r,
                informed: count,
                calls,
                informed_by_round,
            };
        }
    }
    FloorRun {
        rounds: max_rounds,
        informed: count,
        calls,
        informed_by_round,
    }
}

/// The bare kernel: the same process as [`push_pull`] (each round every node calls a uniformly
/// random other node, and after the call both hold the update if either did at the round's
/// start), with one RNG seeded by `seed` and one draw per call instead of the engines' own RNGs.
pub fn bare_push_pull(nodes: usize, seed: u64, max_rounds: u32) -> FloorRun {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let words = nodes.div_ceil(64);
    let mut informed = vec![0u64; words];
    let mut count = 0;
    if nodes > 1 {
        let w = rng.random_range(0..nodes);
        informed[w / 64] |= 1 << (w % 64);
        count = 1;
    }
    let mut start = informed.clone();
    let bit = |set: &[u64], i: usize| (set[i / 64] >> (i % 64)) & 1 == 1;
    let mut informed_by_round = vec![count];
    let mut calls = 0;
    for r in 1..=max_rounds {
        if nodes < 2 {
            break;
        }
        start.copy_from_slice(&informed);
        for i in 0..nodes {
            // A uniform other node: draw among n - 1 and skip ourselves.
            let mut j = rng.random_range(0..nodes - 1);
            if j >= i {
                j += 1;
            }
            calls += 1;
            if bit(&start, i) != bit(&start, j) {
                for k in [i, j] {
                    if !bit(&informed, k) {
                        informed[k / 64] |= 1 << (k % 64);
                        count += 1;
                    }
                }
            }
        }
        informed_by_round.push(count);
        if count == nodes {
            return FloorRun {
                rounds: r,
                informed: count,
                calls,
                informed_by_round,
            };
        }
    }
    FloorRun {
        rounds: max_rounds,
        informed: count,
        calls,
        informed_by_round,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SimConfig, run};
    use gossiper_types::Register;

    #[test]
    fn the_floor_makes_the_simulators_calls() {
        for (nodes, seed) in [(1_000, 1), (1_000, 2), (5_000, 7), (20_000, 3)] {
            let config = SimConfig {
                nodes,
                ..SimConfig::default()
            };
            let report = run::<Register<u64>>(&config, seed).unwrap();
            let floor = push_pull(nodes, seed, config.max_rounds);
            assert_eq!(floor.informed, nodes);
            // The same calls: the same node count informed after every round.
            let curve: Vec<f64> = floor
                .informed_by_round
                .iter()
                .map(|&k| k as f64 / nodes as f64)
                .collect();
            assert_eq!(curve, report.curve, "n = {nodes}, seed {seed}");
            assert_eq!(
                f64::from(floor.rounds),
                report.rounds,
                "n = {nodes}, seed {seed}"
            );
            // Each call is a Syn, a SynAck and, unless the caller has nothing the callee lacks, an Ack.
            assert!(report.messages_per_node * nodes as f64 >= 2.0 * floor.calls as f64);
            assert!(report.messages_per_node * nodes as f64 <= 3.0 * floor.calls as f64);
        }
    }

    #[test]
    fn the_bare_kernel_spreads_alike() {
        // Not the same calls, the same process: full spread in about log2 n + ln n rounds.
        let bare = bare_push_pull(100_000, 1, 1_000);
        assert_eq!(bare.informed, 100_000);
        assert!((10..=20).contains(&bare.rounds), "{}", bare.rounds);
    }
}
