//! The demo: the Go program's `main`, as a command you can watch.
//!
//! It wires `--nodes` in-process nodes into a topology, gives each its own starting state (node
//! `i` writes `node-i = "hello from i"`), runs them on the threaded runtime (one thread per node,
//! real time, an in-memory network), injects `--writes` more writes at random nodes and random
//! times during the first second, and prints every node's state every `--print-every-ms` until
//! every node holds the same state. Then it prints a one-line summary and exits 0; if
//! `--max-duration` passes first, it exits 3.
//!
//! Everything random (the graph, the write schedule, every node's choices) derives from `--seed`,
//! so the same seed wires the same graph and schedules the same writes; the threads' timing
//! still varies from run to run, so round and message counts do too.
//!
//! The neighbour selector and the gossip interval come from a [`Strategies`] value: the
//! `gossiper` binary passes [`Strategies::builtin`], which maps `--selector` and `--interval`
//! to the built-ins, and another binary can swap in its own (see `examples/custom-strategy`):
//!
//! ```no_run
//! use gossiper_cli::demo::Strategies;
//! use gossiper_network::UniformRandom;
//!
//! let strategies = Strategies::builtin().with_selector(|_id, _args| Ok(Box::new(UniformRandom)));
//! std::process::exit(match gossiper_cli::main_with_strategies(std::env::args_os(), &strategies) {
//!     code if code == std::process::ExitCode::SUCCESS => 0,
//!     _ => 1,
//! });
//! ```

use std::io::{self, Write};
use std::time::Duration;

use gossiper_network::{GossipInterval, InMemoryNetwork, NeighborSelector};
use gossiper_node::Stats;
use gossiper_node::runtime::threaded::Cluster;
use gossiper_types::{KvMap, NodeId};

use crate::CliError;
use plan::{MTU, Plan, ScheduledWrite, plan};
use print::{Printer, Summary, millis};
use rows::{MAX_ROWS, View, distinct_states, row, rows_of_nodes, shown};

mod args;
mod plan;
mod print;
mod rows;
mod strategies;

pub use args::{DemoArgs, Format, IntervalKind, MAX_NODES, ModeArg, SelectorKind, TopologyKind};
pub use plan::node_seed;
pub use strategies::{
    IntervalFactory, SelectorFactory, Strategies, builtin_interval, builtin_selector,
};

/// How often the watcher thread wakes, at most (to hand out writes on time).
const TICK: Duration = Duration::from_millis(5);

/// How often the watcher compares the nodes' digests, at most. A comparison locks every node's
/// snapshot slot and compares digests of one entry per node, so at 1,000 nodes it is a million
/// comparisons fighting 1,000 threads for the locks: done every `TICK`, as it once was, it kept
/// a core busy and starved the watcher past `--max-duration`.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// Runs the demo with `args`, building each node's selector and interval from `strategies`,
/// and prints to stdout. `Ok` means every node came to hold the same state.
pub fn run(args: &DemoArgs, strategies: &Strategies) -> Result<(), CliError> {
    run_to(args, strategies, io::stdout().lock())
}

/// [`run`], printing to `out`.
pub fn run_to(args: &DemoArgs, strategies: &Strategies, out: impl Write) -> Result<(), CliError> {
    let plan = plan(args, strategies)?;
    let mut printer = Printer {
        out,
        format: args.format,
    };
    printer.start(args, &plan)?;
    // Every node's version counter starts at 1 (its own key); each write adds one.
    let target = args.nodes as u64 + u64::from(args.writes);
    let start = View::of(
        rows_of_nodes(&plan.nodes, &plan.writes),
        Stats::default(),
        args.format,
    );
    printer.table(0, &start, target)?;

    let Plan { nodes, writes, .. } = plan;
    let network = InMemoryNetwork::new(MTU as usize);
    // Only the nodes a live table shows publish a copy of their state, in either format: at
    // 1,000 nodes a copy of every state is a second copy of a million entries, made again at
    // every change by a thousand threads on two cores (JSON, which once shared them all,
    // overran `--max-duration` by minutes). The final table reads every stopped node.
    let shared: Vec<NodeId> = shown(nodes.len())
        .into_iter()
        .map(|i| nodes[i].id())
        .collect();
    let cluster = Cluster::spawn_sharing(nodes, network, |id| shared.contains(&id))
        .map_err(|e| CliError::failure(format!("cannot start the cluster: {e}")))?;
    let every = Duration::from_millis(args.print_every_ms);
    let max = Duration::from_secs_f64(args.max_duration);
    let mut next_print = every;
    let mut next_check = Duration::ZERO;
    let mut pending = writes.iter().peekable();
    // Ends with the snapshots that showed agreement, or `None` when time ran out.
    let agreed = loop {
        let now = cluster.elapsed();
        while let Some(w) = pending.next_if(|w| Duration::from_millis(w.at_ms) <= now) {
            let (owner, key) = (NodeId(w.node), w.key.clone());
            let value = format!("{key} at n{}", w.node).into_bytes();
            cluster
                .write(owner, move |s: &mut KvMap| {
                    s.set(owner, &key, value);
                })
                .map_err(|e| CliError::failure(format!("write failed: {e}")))?;
            printer.write(millis(now), w)?;
        }
        // Digests first (cheap, and the comparison stops at the first difference), then whole
        // states: the demo claims agreement only when every node holds exactly the same entries.
        if now >= next_check {
            next_check = now + CHECK_EVERY;
            if pending.peek().is_none()
                && cluster.converged()
                && cluster.writes_applied() == u64::from(args.writes)
            {
                // The shared copies must agree now; every state is compared once stopped.
                let snaps = cluster.snapshots();
                let states: Vec<&KvMap> = snaps.iter().filter_map(|s| s.state.as_deref()).collect();
                match all_equal(&states, || cluster.elapsed() >= max) {
                    Some(true) => break Some(snaps),
                    Some(false) => {}
                    None => break None,
                }
            }
        }
        // Checked again after the (lock-taking) comparison, which can be slow when a thousand
        // node threads compete for two cores.
        if cluster.elapsed() >= max {
            break None;
        }
        if now >= next_print {
            if let Some(view) = live_view(&cluster, &writes, args.format, max) {
                printer.table(millis(now), &view, target)?;
            }
            while next_print <= now {
                next_print += every;
            }
        }
        let next_write = pending
            .peek()
            .map_or(Duration::MAX, |w| Duration::from_millis(w.at_ms));
        let wake = next_print.min(next_write).min(max).min(now + TICK);
        std::thread::sleep(wake.saturating_sub(cluster.elapsed()));
    };
    let elapsed_ms = millis(cluster.elapsed());
    let converged_at_ms = agreed
        .as_ref()
        .and_then(|snaps| snaps.iter().filter_map(|s| s.last_change).max())
        .map(|t| t.as_millis());
    // The final table reads the stopped nodes themselves: no copy of any state.
    let nodes = cluster
        .stop()
        .map_err(|e| CliError::failure(format!("stopping the cluster failed: {e}")))?;
    // The demo claims agreement only when every node holds exactly the same entries.
    let converged = agreed.is_some() && nodes.windows(2).all(|w| w[0].state() == w[1].state());
    let rows = rows_of_nodes(&nodes, &writes);
    let mut stats = Stats::default();
    for n in &nodes {
        stats.accumulate(n.stats());
    }
    let keys = rows.iter().map(|r| r.keys).max().unwrap_or(0);
    let last = View::of(rows, stats, args.format);
    printer.table(elapsed_ms, &last, target)?;
    let summary = Summary {
        converged,
        elapsed_ms,
        converged_at_ms,
        rounds: stats.rounds,
        messages: stats.messages_sent,
        bytes: stats.bytes_sent,
        nodes: args.nodes,
        keys,
        writes: args.writes,
        distinct_states: last.distinct,
        seed: args.seed,
    };
    printer.summary(&summary)?;
    if converged {
        Ok(())
    } else {
        Err(CliError::not_converged(format!(
            "did not converge within {} s ({} distinct states among {} nodes); try a longer \
             --max-duration or a denser topology",
            args.max_duration, summary.distinct_states, args.nodes
        )))
    }
}

/// A table of the running cluster, or `None` if `deadline` passed while it was being made.
///
/// A live table of more than `MAX_ROWS` nodes, text or JSON, reads only the shown nodes (one
/// state copy each, and their totals; JSON says how many in `counted`): with a thousand node
/// threads sharing two cores the watcher gets a thousandth of a core, so every lock it takes
/// and every state it copies costs real seconds, and `--max-duration` must hold. The final
/// table has every node's row.
fn live_view(
    cluster: &DemoCluster,
    writes: &[ScheduledWrite],
    format: Format,
    deadline: Duration,
) -> Option<View> {
    let ids = cluster.ids();
    if ids.len() <= MAX_ROWS {
        let totals = cluster.totals();
        let snaps = cluster.snapshots();
        let mut rows = Vec::with_capacity(snaps.len());
        for s in &snaps {
            // A row hashes the node's whole state: at 1,000 nodes, on a thousandth of a core,
            // the rows of one table can take longer than the whole run may.
            if cluster.elapsed() >= deadline {
                return None;
            }
            if let Some(state) = s.state.as_deref() {
                rows.push(row(s.id, state, &s.stats, writes));
            }
        }
        return Some(View::of(rows, totals, format));
    }
    let mut rows = Vec::with_capacity(MAX_ROWS);
    let mut totals = Stats::default();
    for i in shown(ids.len()) {
        if cluster.elapsed() >= deadline {
            return None;
        }
        if let Ok(s) = cluster.snapshot(ids[i]) {
            totals.accumulate(&s.stats);
            if let Some(state) = s.state.as_deref() {
                rows.push(row(s.id, state, &s.stats, writes));
            }
        }
    }
    Some(View {
        distinct: distinct_states(&rows),
        counted: rows.len(),
        nodes: ids.len(),
        rows,
        totals,
    })
}

/// Whether every state equals the first, or `None` if `late()` said the time was up first
/// (comparing a thousand states of a thousand entries each is slow on a starved watcher).
fn all_equal(states: &[&KvMap], late: impl Fn() -> bool) -> Option<bool> {
    let Some((first, rest)) = states.split_first() else {
        return Some(true);
    };
    for s in rest {
        if late() {
            return None;
        }
        if s != first {
            return Some(false);
        }
    }
    Some(true)
}

/// The running cluster the demo watches.
type DemoCluster = Cluster<KvMap, Box<dyn NeighborSelector>, Box<dyn GossipInterval>>;

#[cfg(test)]
mod tests {
    use super::plan::schedule_writes;
    use super::print::{BAR_WIDTH, bar};
    use super::rows::fingerprint;
    use super::*;
    use crate::{Cli, ExitStatus};
    use clap::Parser;
    use gossiper_network::{FixedInterval, ShuffledRoundRobin};

    fn args(flags: &[&str]) -> DemoArgs {
        let argv = std::iter::once("gossiper").chain(flags.iter().copied());
        Cli::try_parse_from(argv).expect("flags parse").demo
    }

    fn plan_err(flags: &[&str]) -> CliError {
        match plan(&args(flags), &Strategies::builtin()) {
            Ok(_) => panic!("{flags:?} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults_plan_a_connected_ten_node_graph() {
        let a = args(&[]);
        let p = plan(&a, &Strategies::builtin()).unwrap();
        assert_eq!(p.nodes.len(), 10);
        assert_eq!(p.graph.min_degree(), 3);
        assert!(p.graph.is_connected());
        assert_eq!(p.writes.len(), 5);
        assert_eq!(p.selector_name, "random");
        assert_eq!(p.interval_name, "jitter(100..300ms)");
        for (i, n) in p.nodes.iter().enumerate() {
            let key = format!("node-{i}");
            assert_eq!(n.state().len(), 1, "each node starts from its own state");
            assert!(n.state().get(n.id(), &key).is_some());
            assert_eq!(n.config().fanout, 1);
        }
    }

    #[test]
    fn bad_flags_are_one_line_usage_errors() {
        for (flags, needle) in [
            (&["--nodes", "0"][..], "--nodes 0"),
            (&["--nodes", "1001"], "--nodes 1001"),
            (&["--topology", "ring", "--fanout", "3"], "--fanout 3"),
            (&["--fanout", "0"], "--fanout"),
            (&["--nodes", "5"], "even"),
            (
                &[
                    "--topology",
                    "erdos-renyi",
                    "--p",
                    "0.0001",
                    "--nodes",
                    "50",
                ],
                "disconnected",
            ),
            (&["--min-ms", "300", "--max-ms", "100"], "--min-ms/--max-ms"),
            (
                &["--interval", "exp", "--interval-ms", "0"],
                "--interval exp",
            ),
            (&["--max-duration=-1"], "--max-duration"),
            (&["--max-duration", "NaN"], "--max-duration"),
            (&["--print-every-ms", "0"], "--print-every-ms"),
        ] {
            let e = plan_err(flags);
            assert_eq!(e.status, ExitStatus::Usage, "{flags:?}");
            assert!(e.message.contains(needle), "{flags:?}: {e}");
            assert!(!e.message.contains('\n'), "{flags:?}: {e}");
        }
    }

    #[test]
    fn same_seed_same_plan_other_seed_other_plan() {
        let fingerprint = |seed: &str| {
            let p = plan(&args(&["--seed", seed]), &Strategies::builtin()).unwrap();
            let links: Vec<Vec<NodeId>> = (0..10)
                .map(|i| p.graph.neighbors(NodeId(i)).to_vec())
                .collect();
            let writes: Vec<(u64, u64)> = p.writes.iter().map(|w| (w.at_ms, w.node)).collect();
            (links, writes)
        };
        assert_eq!(fingerprint("7"), fingerprint("7"));
        assert_ne!(fingerprint("7"), fingerprint("8"));
    }

    #[test]
    fn writes_are_scheduled_in_order_inside_the_window() {
        let w = schedule_writes(200, 7, 1_000, 3);
        assert_eq!(w.len(), 200);
        assert!(w.windows(2).all(|p| p[0].at_ms <= p[1].at_ms));
        assert!(w.iter().all(|x| x.at_ms < 1_000 && x.node < 7));
        let nodes: std::collections::BTreeSet<u64> = w.iter().map(|x| x.node).collect();
        assert_eq!(nodes.len(), 7, "200 draws reach every node");
        assert_eq!(w[13].key, "write-13");
        // A short --max-duration shrinks the window.
        let p = plan(&args(&["--max-duration", "0.4"]), &Strategies::builtin()).unwrap();
        assert!(p.writes.iter().all(|x| x.at_ms < 200));
    }

    #[test]
    fn node_seeds_are_distinct_per_node_and_per_seed() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..20 {
            for id in 0..50 {
                assert!(seen.insert(node_seed(seed, NodeId(id))));
            }
        }
    }

    #[test]
    fn fingerprints_follow_whole_states() {
        let mut a = KvMap::new();
        a.set(NodeId(1), "k", b"v".to_vec());
        let b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let mut c = KvMap::new();
        c.set(NodeId(1), "k", b"w".to_vec());
        assert_ne!(fingerprint(&a), fingerprint(&c), "same digest, other value");
        assert_eq!(fingerprint(&a).len(), 8);
    }

    #[test]
    fn bars_fill_with_progress() {
        assert_eq!(bar(0, 10), format!("[{}]", "-".repeat(BAR_WIDTH)));
        assert_eq!(bar(10, 10), format!("[{}]", "#".repeat(BAR_WIDTH)));
        assert_eq!(bar(5, 10).matches('#').count(), BAR_WIDTH / 2);
        assert_eq!(bar(99, 10), bar(10, 10));
    }

    #[test]
    fn a_small_fast_run_converges_and_reports_in_json() {
        let a = args(&[
            "--nodes",
            "6",
            "--interval",
            "fixed",
            "--interval-ms",
            "10",
            "--writes",
            "4",
            "--print-every-ms",
            "50",
            "--max-duration",
            "20",
            "--format",
            "json",
        ]);
        let mut out = Vec::new();
        run_to(&a, &Strategies::builtin(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is json"))
            .collect();
        assert_eq!(lines[0]["type"], "start");
        assert_eq!(lines[0]["neighbors"].as_array().unwrap().len(), 6);
        let writes = lines.iter().filter(|l| l["type"] == "write").count();
        assert_eq!(writes, 4);
        let last_table = &lines[lines.len() - 2];
        assert_eq!(last_table["type"], "snapshot");
        assert_eq!(last_table["distinct_states"], 1);
        for node in last_table["nodes"].as_array().unwrap() {
            assert_eq!(node["keys"], 10, "6 own keys and 4 writes");
            assert_eq!(node["newest"], "write-3");
        }
        let summary = &lines[lines.len() - 1];
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["converged"], true);
        assert!(summary["rounds"].as_u64().unwrap() > 0);
        assert!(summary["messages"].as_u64().unwrap() > 0);
        assert!(summary["bytes"].as_u64().unwrap() > summary["messages"].as_u64().unwrap());
        assert!(summary["converged_at_ms"].as_u64() <= summary["elapsed_ms"].as_u64());
    }

    #[test]
    fn a_run_that_cannot_finish_in_time_says_so() {
        // A 40-node ring needs about 20 hops; 0.2 s of 50 ms rounds allows 4.
        let a = args(&[
            "--nodes",
            "40",
            "--topology",
            "ring",
            "--interval",
            "fixed",
            "--interval-ms",
            "50",
            "--max-duration",
            "0.2",
        ]);
        let mut out = Vec::new();
        let e = run_to(&a, &Strategies::builtin(), &mut out).unwrap_err();
        assert_eq!(e.status, ExitStatus::NotConverged);
        assert!(
            e.message.starts_with("did not converge within 0.2 s"),
            "{e}"
        );
        let text = String::from_utf8(out).unwrap();
        let verdict = text.lines().rev().nth(1).unwrap();
        assert!(verdict.starts_with("not converged after"), "{verdict}");
    }

    #[test]
    fn custom_factories_are_used_and_their_errors_reported() {
        let strategies = Strategies::builtin()
            .with_selector(|_, _| Ok(Box::new(ShuffledRoundRobin::new())))
            .with_interval(|id, _| {
                FixedInterval::new(Duration::from_millis(10 + id.0))
                    .map(|i| Box::new(i) as Box<dyn GossipInterval>)
                    .map_err(|e| CliError::usage(e.to_string()))
            });
        let p = plan(&args(&[]), &strategies).unwrap();
        assert_eq!(p.selector_name, "round-robin");
        assert_eq!(p.nodes[3].interval().describe(), "fixed(13ms)");
        let refusing =
            Strategies::builtin().with_interval(|_, _| Err(CliError::usage("no intervals today")));
        let e = plan(&args(&[]), &refusing).err().expect("refused");
        assert_eq!(e.message, "no intervals today");
    }
}
