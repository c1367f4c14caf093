//! Scale check: one synchronous push-pull anti-entropy run on the complete graph, one update to
//! full convergence, printing wall time, engine-node-rounds per second and peak RSS.
//!
//! ```text
//! cargo run --release -p gossiper-sim --example scale -- 1000000 [seed] [push|pull|push-pull] [threads]
//! ```
//!
//! Node-rounds are live nodes × rounds simulated, each a full engine round (gossip_now plus the
//! Syn, SynAck and Ack it causes). Peak RSS is the kernel's high-water mark (`VmHWM` in
//! `/proc/self/status`), so it covers everything the process ever held.

use std::time::Instant;

use gossiper_node::Mode;
use gossiper_sim::{SimConfig, SimNode, run_threaded};
use gossiper_types::Register;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[allow(clippy::disallowed_methods)] // wall time is what this example measures
fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = match args.next().map(|a| a.parse()) {
        None => 1_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("scale: bad node count: {e}");
            std::process::exit(2);
        }
    };
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mode = match args.next().as_deref() {
        Some("push") => Mode::Push,
        Some("pull") => Mode::Pull,
        _ => Mode::PushPull,
    };
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let config = SimConfig {
        nodes,
        mode,
        ..SimConfig::default()
    };
    println!(
        "node size: {} bytes (Node<Register<u64>, UniformRandom, SimInterval, NoStats>)",
        std::mem::size_of::<SimNode<Register<u64>>>()
    );
    let start = Instant::now();
    let report = match run_threaded::<Register<u64>>(&config, seed, threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "scale: {e}; rerun: cargo run --release -p gossiper-sim --example scale -- {nodes} {}",
                e.seed().unwrap_or(seed)
            );
            std::process::exit(1);
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let node_rounds = nodes as f64 * report.rounds;
    println!("nodes: {nodes}  mode: {mode}  seed: {seed}  threads: {threads}");
    println!("rounds to convergence: {}", report.rounds);
    println!(
        "messages per node: {:.3}  bytes per node: {:.1}",
        report.messages_per_node, report.bytes_per_node
    );
    println!("wall time: {secs:.2} s (setup, run and teardown)");
    println!("engine-node-rounds per second: {:.3e}", node_rounds / secs);
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
}
