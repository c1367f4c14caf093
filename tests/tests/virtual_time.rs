//! The engine on virtual time: a run is a pure function of its seed, and it converges in every
//! mode.

use std::time::Duration;

use gossiper_network::Topology;
use gossiper_node::Mode;
use gossiper_tests::virtual_time::{Config, Outcome, run};

fn converged(outcome: &Outcome, what: &str) -> Duration {
    let at = outcome
        .converged_at
        .unwrap_or_else(|| panic!("{what}: no convergence in {} steps", outcome.steps));
    assert!(
        outcome.states_equal,
        "{what}: equal digests but different states"
    );
    Duration::from_micros(at.as_micros())
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let config = Config::default();
    let a = run(&config);
    let b = run(&config);
    converged(&a, "seed 1");
    assert_eq!(a, b, "same seed, same counters, same convergence time");
}

#[test]
fn another_seed_gives_another_run() {
    let a = run(&Config::default());
    let b = run(&Config {
        seed: 2,
        ..Config::default()
    });
    converged(&b, "seed 2");
    assert_ne!(a.per_node, b.per_node);
    assert_ne!(a.converged_at, b.converged_at);
}

#[test]
fn every_mode_converges_on_a_random_regular_graph() {
    for mode in [Mode::Push, Mode::Pull, Mode::PushPull] {
        let outcome = run(&Config {
            mode,
            ..Config::default()
        });
        let at = converged(&outcome, mode.name());
        // 100 nodes, degree 4, a round every 200 ms on average: O(log n) rounds is a few
        // seconds; 30 s means something is broken, not slow.
        assert!(at < Duration::from_secs(30), "{mode}: {at:?}");
        eprintln!("{mode}: {at:?}, {} messages", outcome.totals.messages_sent);
        assert_eq!(
            outcome.totals.dropped.total(),
            0,
            "{mode}: engine-made datagrams dropped"
        );
    }
}

#[test]
fn push_pull_spreads_in_logarithmically_many_rounds() {
    // On a complete graph push-pull informs everyone in O(log n) rounds (Karp et al. 2000);
    // log2(200) is about 7.6. Rounds per node at convergence, over five seeds, must stay well
    // under n, and under a generous 4 log2 n.
    for seed in 1..=5 {
        let outcome = run(&Config {
            nodes: 200,
            topology: Topology::Complete,
            seed,
            ..Config::default()
        });
        converged(&outcome, "push-pull on complete");
        let rounds_per_node = outcome.totals.rounds as f64 / 200.0;
        eprintln!("seed {seed}: {rounds_per_node:.1} rounds per node");
        assert!(
            rounds_per_node < 4.0 * 200f64.log2(),
            "seed {seed}: {rounds_per_node:.1} rounds per node"
        );
    }
}

#[test]
fn more_fanout_means_faster_convergence() {
    // Averaged over seeds so that one lucky run cannot flip it.
    let mean = |fanout| {
        let total: Duration = (1..=5)
            .map(|seed| {
                converged(
                    &run(&Config {
                        fanout,
                        seed,
                        ..Config::default()
                    }),
                    "fanout",
                )
            })
            .sum();
        total / 5
    };
    let (one, three) = (mean(1), mean(3));
    eprintln!("mean convergence: fanout 1 {one:?}, fanout 3 {three:?}");
    assert!(three < one, "fanout 3 took {three:?}, fanout 1 {one:?}");
}

#[test]
/// A write pushed to a node that missed the writer's earlier ones must not make that node's
/// digest claim them (which once left states differing behind equal digests).
fn push_on_write_leaves_no_replica_behind() {
    for mode in [Mode::Pull, Mode::PushPull] {
        let outcome = run(&Config {
            mode,
            push_on_write: true,
            ..Config::default()
        });
        converged(&outcome, mode.name());
    }
}
