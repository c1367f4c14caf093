//! Simulation tests: determinism, each fault, the checker, and agreement with theory, all with
//! fixed seeds and tolerances argued from the run-to-run spread (no timing assertions).

use gossiper_network::Topology;
use gossiper_node::{Feedback, LossOfInterest, Mode, Protocol, RumorConfig, RumorDirection};
use gossiper_sim::{
    Crash, Faults, Latency, NodeSet, Observed, Partition, Replica, RunReport, SimConfig, SimError,
    SimInterval, SimNode, Summary, Timing, run, run_many, theory,
};
use gossiper_types::{DecodeError, NodeId, Register, State};

type Reg = Register<u64>;

fn cfg(nodes: usize, mode: Mode) -> SimConfig {
    SimConfig {
        nodes,
        mode,
        ..SimConfig::default()
    }
}

fn asynchronous(latency: Latency) -> Timing {
    Timing::Async {
        interval: SimInterval::Uniform {
            min_us: 50_000,
            max_us: 150_000,
        },
        latency,
    }
}

fn summary(config: &SimConfig, seed: u64, runs: usize) -> Summary {
    Summary::of(&run_many::<Reg>(config, seed, runs, 2, &|| {}).unwrap())
}

#[test]
fn engines_stay_lean_enough_for_a_million_nodes() {
    // Without per-node counters (the simulator counts messages itself), with the event queue
    // and the rumor bookkeeping allocated only when first needed, and the configuration shared:
    // 10^6 nodes in about 160 MB.
    let size = std::mem::size_of::<SimNode<Reg>>();
    assert!(size <= 160, "node is {size} bytes");
}

#[test]
fn same_seed_same_report_and_different_seeds_differ() {
    let mut c = cfg(300, Mode::PushPull);
    c.faults.loss = 0.1;
    c.faults.duplicate = 0.05;
    c.faults.reorder = 1.0;
    assert_eq!(run::<Reg>(&c, 11).unwrap(), run::<Reg>(&c, 11).unwrap());
    assert_ne!(run::<Reg>(&c, 11).unwrap(), run::<Reg>(&c, 12).unwrap());
    c.timing = asynchronous(Latency::Exp { mean_us: 20_000 });
    assert_eq!(run::<Reg>(&c, 11).unwrap(), run::<Reg>(&c, 11).unwrap());
    assert_ne!(run::<Reg>(&c, 11).unwrap(), run::<Reg>(&c, 12).unwrap());
}

#[test]
fn many_runs_do_not_depend_on_thread_count() {
    let c = cfg(200, Mode::Push);
    let one = run_many::<Reg>(&c, 5, 6, 1, &|| {}).unwrap();
    let two = run_many::<Reg>(&c, 5, 6, 2, &|| {}).unwrap();
    assert_eq!(one, two);
    let seeds: Vec<u64> = one.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, [5, 6, 7, 8, 9, 10]);
    // Run i alone with seed master + i is the same run.
    assert_eq!(run::<Reg>(&c, 8).unwrap(), one[3]);
}

#[test]
fn one_run_is_the_same_on_any_number_of_threads() {
    // Faults of every kind, so that every shared decision (the network's RNG, partitions, dead
    // receivers, restarts) is exercised, and rumor mongering, whose feedback depends on the
    // order of deliveries to a node.
    let mut faulty = cfg(600, Mode::PushPull);
    faulty.faults = Faults {
        loss: 0.2,
        duplicate: 0.1,
        reorder: 1.0,
        partitions: vec![Partition {
            from: 2,
            until: 6,
            groups: vec![NodeSet(vec![(0, 199)])],
        }],
        crashes: vec![Crash {
            at: 3,
            restart: Some(7),
            nodes: NodeSet(vec![(100, 149)]),
            keep_state: false,
        }],
        churn: None,
    };
    let rumor = rumor(
        RumorDirection::Push,
        Feedback::Feedback,
        LossOfInterest::Counter(2),
    );
    let pull = cfg(500, Mode::Pull);
    for c in [faulty, rumor, pull] {
        let one = gossiper_sim::run_threaded::<Reg>(&c, 11, 1).unwrap();
        for threads in [2, 3, 7] {
            assert_eq!(
                gossiper_sim::run_threaded::<Reg>(&c, 11, threads).unwrap(),
                one,
                "{threads} threads"
            );
        }
    }
}

#[test]
fn thirty_percent_loss_still_converges_in_both_timing_models() {
    for timing in [Timing::Sync, asynchronous(Latency::Fixed { us: 10_000 })] {
        for mode in [Mode::Push, Mode::Pull, Mode::PushPull] {
            let mut c = cfg(500, mode);
            c.timing = timing;
            c.faults.loss = 0.3;
            let lossy = run::<Reg>(&c, 3).unwrap();
            c.faults.loss = 0.0;
            let clean = run::<Reg>(&c, 3).unwrap();
            assert!(lossy.converged, "{mode} {timing:?}");
            assert!(lossy.dropped > 0);
            assert!(
                lossy.rounds >= clean.rounds * 0.9,
                "{mode}: loss cannot help much"
            );
        }
    }
}

#[test]
fn a_partition_holds_the_update_back_until_it_heals() {
    let mut c = cfg(400, Mode::PushPull);
    // Two halves from round 0 to 25: the update cannot cross before round 25.
    c.faults.partitions.push(Partition {
        from: 0,
        until: 25,
        groups: vec![NodeSet(vec![(0, 199)])],
    });
    for timing in [
        Timing::Sync,
        asynchronous(Latency::Uniform {
            min_us: 1_000,
            max_us: 30_000,
        }),
    ] {
        c.timing = timing;
        let r = run::<Reg>(&c, 21).unwrap();
        assert!(r.converged);
        assert!(r.rounds >= 25.0, "converged at {} before healing", r.rounds);
        // During the split exactly one half (200 nodes) can learn it.
        assert!(
            (r.curve[20] - 0.5).abs() < 1e-6,
            "{timing:?}: {}",
            r.curve[20]
        );
        assert!(r.dropped > 0);
    }
}

#[test]
fn crashed_nodes_restart_and_converge_with_state_kept_or_lost() {
    for keep_state in [true, false] {
        let mut c = cfg(300, Mode::PushPull);
        c.faults.crashes.push(Crash {
            at: 3,
            restart: Some(12),
            nodes: NodeSet(vec![(0, 99)]),
            keep_state,
        });
        for timing in [Timing::Sync, asynchronous(Latency::Zero)] {
            c.timing = timing;
            let r = run::<Reg>(&c, 8).unwrap();
            assert!(r.converged, "keep {keep_state} {timing:?}");
            assert!(r.rounds >= 12.0);
        }
    }
    // Nodes that never come back are not waited for.
    let mut c = cfg(300, Mode::Push);
    c.faults.crashes.push(Crash {
        at: 2,
        restart: None,
        nodes: NodeSet(vec![(100, 199)]),
        keep_state: false,
    });
    assert!(run::<Reg>(&c, 8).unwrap().converged);
}

#[test]
fn churn_stops_and_everyone_left_converges() {
    let mut c = cfg(300, Mode::PushPull);
    c.faults.churn = Some(gossiper_sim::Churn {
        rate: 0.05,
        from: 1,
        until: 15,
    });
    let r = run::<Reg>(&c, 4).unwrap();
    assert!(r.converged && r.rounds >= 15.0);
}

#[test]
fn duplication_and_reordering_only_cost_messages() {
    let mut c = cfg(300, Mode::PushPull);
    c.faults.duplicate = 0.5;
    c.faults.reorder = 1.0;
    let r = run::<Reg>(&c, 2).unwrap();
    assert!(r.converged);
    assert!(r.network_duplicates > 0);
    assert!(r.duplicates_per_node > 0.0);
}

#[test]
fn other_topologies_converge_more_slowly_than_the_complete_graph() {
    let mut c = cfg(256, Mode::PushPull);
    let complete = run::<Reg>(&c, 1).unwrap().rounds;
    c.topology = Topology::Ring;
    let ring = run::<Reg>(&c, 1).unwrap().rounds;
    c.topology = Topology::RandomRegular { degree: 4 };
    assert!(run::<Reg>(&c, 1).unwrap().converged);
    // On a ring the update advances at most one hop each way per round: 128 hops.
    assert!(
        ring >= 64.0 && ring > complete * 4.0,
        "ring {ring}, complete {complete}"
    );
}

/// A register whose merge corrupts the value (adds one): a "value nobody wrote".
#[derive(Debug, Clone, Default, PartialEq)]
struct Corrupting(Reg);

/// A register that forgets what it is told twice: its version goes back to 0.
#[derive(Debug, Clone, Default, PartialEq)]
struct Forgetful(Reg);

macro_rules! faulty_state {
    ($t:ident, |$me:ident, $incoming:ident| $merge:expr) => {
        impl State for $t {
            type Digest = <Reg as State>::Digest;
            fn merge(&mut self, other: &Self) -> bool {
                let ($me, $incoming) = (self, &other.0);
                $merge
            }
            fn digest_into(&self, out: &mut Self::Digest) {
                self.0.digest_into(out)
            }
            fn encode_digest(d: &Self::Digest, budget: usize, rotation: u64, out: &mut Vec<u8>) {
                Reg::encode_digest(d, budget, rotation, out)
            }
            fn decode_digest_into(input: &[u8], out: &mut Self::Digest) -> Result<(), DecodeError> {
                Reg::decode_digest_into(input, out)
            }
            fn write_delta(
                &self,
                peer: &Self::Digest,
                budget: usize,
                rotation: u64,
                out: &mut Vec<u8>,
            ) -> usize {
                // Push sends everything; make it send even what the peer has, to exercise merge.
                self.0.write_delta(peer, budget, rotation, out)
            }
            fn apply_delta(&mut self, delta: &[u8]) -> Result<bool, DecodeError> {
                let mut incoming = Reg::default();
                incoming.apply_delta(delta)?;
                Ok(self.merge(&$t(incoming)))
            }
        }
        impl Replica for $t {
            fn inject(&mut self, writer: NodeId, value: u64) {
                self.0.inject(writer, value)
            }
            fn observe(&self) -> Observed {
                self.0.observe()
            }
        }
    };
}

faulty_state!(Corrupting, |me, incoming| {
    if incoming.version() == 0 {
        return false;
    }
    let v = incoming.value().copied().unwrap_or(0);
    me.0 = Reg::with(incoming.version(), incoming.origin(), v.wrapping_add(1));
    true
});

faulty_state!(Forgetful, |me, incoming| {
    if incoming.version() == 0 {
        return false;
    }
    me.0 = if me.0 == *incoming {
        Reg::default()
    } else {
        incoming.clone()
    };
    true
});

#[test]
fn the_checker_catches_a_merge_that_invents_values_and_names_the_seed() {
    let c = cfg(50, Mode::Push);
    let err = run::<Corrupting>(&c, 77).unwrap_err();
    let SimError::Invariant(v) = &err else {
        panic!("expected an invariant violation, got {err}");
    };
    assert_eq!(v.seed, 77);
    assert!(v.what.contains("nobody wrote"), "{}", v.what);
    let line = err.to_string();
    assert!(line.contains("seed 77"), "{line}");
    // The same faulty state passes unnoticed with the checker off.
    let unchecked = SimConfig {
        check: false,
        ..c.clone()
    };
    assert!(run::<Corrupting>(&unchecked, 77).is_ok());
    // And a correct state passes with it on.
    assert!(run::<Reg>(&c, 77).is_ok());
}

#[test]
fn the_checker_catches_versions_going_backwards() {
    let err = run::<Forgetful>(&cfg(50, Mode::Push), 5).unwrap_err();
    let SimError::Invariant(v) = &err else {
        panic!("expected an invariant violation, got {err}");
    };
    assert!(v.what.contains("went backwards"), "{}", v.what);
    assert_eq!(err.seed(), Some(5));
}

fn rumor(direction: RumorDirection, feedback: Feedback, loss: LossOfInterest) -> SimConfig {
    SimConfig {
        nodes: 1_000,
        protocol: Protocol::Rumor(RumorConfig {
            direction,
            feedback,
            loss,
            ..RumorConfig::default()
        }),
        ..SimConfig::default()
    }
}

#[test]
fn anti_entropy_rounds_agree_with_the_closed_forms() {
    // n = 1,000, 40 runs each. The spread across runs is about 1.3 rounds (push) and 0.6
    // (push-pull), so the mean has a standard error of 0.2 and 0.1; the closed forms hold up
    // to O(1), so we allow 1.5 rounds.
    for mode in [Mode::Push, Mode::PushPull] {
        let s = summary(&cfg(1_000, mode), 100, 40);
        let expected = theory::rounds(mode, 1_000.0);
        assert!(
            (s.rounds.mean - expected).abs() < 1.5,
            "{mode}: measured {} vs {expected}",
            s.rounds.mean
        );
        assert_eq!(s.converged, 40);
    }
    // Push-pull beats push by several rounds, as log3 n + ln ln n vs log2 n + ln n says.
    let push = summary(&cfg(1_000, Mode::Push), 1, 20).rounds.mean;
    let pp = summary(&cfg(1_000, Mode::PushPull), 1, 20).rounds.mean;
    assert!(push - pp > 5.0, "push {push}, push-pull {pp}");
}

#[test]
fn the_informed_curve_follows_the_mean_field_recursion() {
    let s = summary(&cfg(2_000, Mode::Push), 40, 30);
    let theory = theory::informed_curve(Mode::Push, 1, 2_000, s.mean_curve.len());
    // Mid-epidemic the per-round fraction has a run-to-run std of about 0.1 (the random start
    // shifts the curve by a round or so); over 30 runs the mean is within about 0.05.
    for (round, (m, t)) in s.mean_curve.iter().zip(&theory).enumerate() {
        assert!(
            (m - t).abs() < 0.08,
            "round {round}: measured {m}, mean field {t}"
        );
    }
}

#[test]
fn the_rumor_curve_follows_its_recursion() {
    let c = SimConfig {
        nodes: 2_000,
        ..rumor(
            RumorDirection::Push,
            Feedback::Feedback,
            LossOfInterest::Coin(2),
        )
    };
    let s = summary(&c, 60, 30);
    let theory = theory::rumor_curve(2, 2_000, s.mean_curve.len());
    // Early on every push reaches an uninformed node, so runs hardly differ in timing (unlike
    // anti-entropy push, whose start is random); with these seeds the mean of 30 runs never
    // strays more than 0.0015 from the recursion. The recursion tracks means only, not the
    // O(1/sqrt(n)) fluctuations of a run, so allow 0.01.
    for (round, (m, t)) in s.mean_curve.iter().zip(&theory).enumerate() {
        assert!(
            (m - t).abs() < 0.01,
            "round {round}: measured {m}, recursion {t}"
        );
    }
}

#[test]
fn feedback_coin_residue_agrees_with_demers_formula() {
    // s = e^{-(k+1)(1-s)}: 0.203 (k=1), 0.060 (k=2), 0.020 (k=3). With n = 1,000 the residue's
    // run-to-run std is about 0.013, 0.008, 0.005; over 60 runs the mean's standard error is at
    // most 0.002; the formula is a large-n limit, so we allow 0.015 (k=1) and 0.01 otherwise.
    for (k, tol) in [(1, 0.015), (2, 0.01), (3, 0.01)] {
        let c = rumor(
            RumorDirection::Push,
            Feedback::Feedback,
            LossOfInterest::Coin(k),
        );
        let s = summary(&c, 1_000, 60);
        let expected = theory::rumor_residue(k);
        assert!(
            (s.residue.mean - expected).abs() < tol,
            "k={k}: measured {} vs {expected}",
            s.residue.mean
        );
        // And for a push epidemic s ≈ e^{-m}.
        let from_m = theory::residue_from_traffic(s.traffic.mean);
        assert!(
            (s.residue.mean - from_m).abs() < tol,
            "k={k}: e^-m = {from_m}"
        );
    }
}

#[test]
fn feedback_counter_traffic_meets_demers_bound_exactly() {
    // With counters "m sites are removed, m-1 messages were necessary and each removed site
    // sent k unnecessary ones": traffic = (k+1)·removed - 1 with fanout 1 and no loss.
    for k in 1..=3 {
        let c = rumor(
            RumorDirection::Push,
            Feedback::Feedback,
            LossOfInterest::Counter(k),
        );
        let r: RunReport = run::<Reg>(&c, 9).unwrap();
        let removed = ((1.0 - r.residue) * 1_000.0).round();
        let messages = (r.traffic * 1_000.0).round();
        assert_eq!(messages, f64::from(k + 1) * removed - 1.0, "k={k}");
    }
}

#[test]
fn blind_needs_k_one_larger_than_feedback_and_pull_beats_push() {
    // Demers et al.: "k will have to be at least one larger to achieve performance equivalent to
    // a feedback mechanism"; and under pull the residue falls off much faster.
    let feedback = summary(
        &rumor(
            RumorDirection::Push,
            Feedback::Feedback,
            LossOfInterest::Coin(2),
        ),
        7,
        40,
    );
    let blind_same = summary(
        &rumor(
            RumorDirection::Push,
            Feedback::Blind,
            LossOfInterest::Coin(2),
        ),
        7,
        40,
    );
    let blind_plus_one = summary(
        &rumor(
            RumorDirection::Push,
            Feedback::Blind,
            LossOfInterest::Coin(3),
        ),
        7,
        40,
    );
    assert!(blind_same.residue.mean > 2.0 * feedback.residue.mean);
    assert!((blind_plus_one.residue.mean - feedback.residue.mean).abs() < 0.015);
    let pull = summary(
        &rumor(
            RumorDirection::Pull,
            Feedback::Feedback,
            LossOfInterest::Counter(2),
        ),
        7,
        40,
    );
    let push = summary(
        &rumor(
            RumorDirection::Push,
            Feedback::Feedback,
            LossOfInterest::Counter(2),
        ),
        7,
        40,
    );
    assert!(
        pull.residue.mean < push.residue.mean / 3.0,
        "pull {} push {}",
        pull.residue.mean,
        push.residue.mean
    );
}

#[test]
fn rumor_backed_by_anti_entropy_leaves_no_residue() {
    let mut c = rumor(
        RumorDirection::Push,
        Feedback::Blind,
        LossOfInterest::Coin(1),
    );
    let Protocol::Rumor(ref mut rc) = c.protocol else {
        unreachable!()
    };
    rc.anti_entropy_every = 5;
    c.nodes = 500;
    let r = run::<Reg>(&c, 3).unwrap();
    assert!(r.converged);
    assert_eq!(r.residue, 0.0);
    // The asynchronous model too.
    c.timing = asynchronous(Latency::Fixed { us: 5_000 });
    assert!(run::<Reg>(&c, 3).unwrap().converged);
}

#[test]
fn async_push_pull_takes_about_as_many_intervals_as_sync_rounds() {
    let mut c = cfg(1_000, Mode::PushPull);
    let sync = summary(&c, 50, 10).rounds.mean;
    c.timing = asynchronous(Latency::Zero);
    let s = summary(&c, 50, 10);
    assert_eq!(s.converged, 10);
    // Asynchronous rounds let news travel several hops per interval, and convergence is counted
    // in fractional intervals: same order as sync, never wildly off.
    assert!(
        s.rounds.mean > sync * 0.4 && s.rounds.mean < sync * 1.6,
        "async {} sync {sync}",
        s.rounds.mean
    );
}

#[test]
fn impossible_goals_fail_with_the_seed() {
    let c = SimConfig {
        max_rounds: 2,
        ..cfg(1_000, Mode::Push)
    };
    let err = run::<Reg>(&c, 123).unwrap_err();
    assert!(
        matches!(err, SimError::NotConverged { seed: 123, .. }),
        "{err}"
    );
    assert_eq!(err.seed(), Some(123));
    let bad = SimConfig {
        faults: Faults {
            loss: 1.5,
            ..Faults::default()
        },
        ..cfg(10, Mode::Push)
    };
    assert!(matches!(run::<Reg>(&bad, 1), Err(SimError::Config(_))));
}
