//! The floor: the random phone calls of one synchronous push-pull run, on a bitset
//! ([`gossiper_sim::floor`]), timed, to quote the simulator's time against.
//!
//! ```text
//! cargo run --release -p gossiper-sim --example floor -- 1000000 [seed] [same|bare|both]
//! ```
//!
//! It makes the same calls as `gossiper simulate --nodes N --mode push-pull --seed S` (same
//! RNGs, same draws, same rounds; `floor::tests` checks the informed count round by round), so
//! the ratio of the two times is what the simulator's engines, messages, network and checker
//! cost on top of the calls themselves. It then times the barer kernel of issue 11 (one RNG
//! for the run, one draw a call: the same process, not the same calls).

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = match args.next().map(|a| a.parse()) {
        None => 1_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("floor: bad node count: {e}");
            std::process::exit(2);
        }
    };
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    // Which kernel to time: one alone, so that an instruction count covers only it.
    let which = args.next().unwrap_or_else(|| "both".to_owned());
    if !["same", "bare", "both"].contains(&which.as_str()) {
        eprintln!("floor: the kernel is same, bare or both, not {which:?}");
        std::process::exit(2);
    }
    println!("nodes: {nodes}  seed: {seed}");
    if which != "bare" {
        same_calls(nodes, seed);
    }
    if which != "same" {
        bare(nodes, seed);
    }
}

/// Times the floor: the simulator's very calls.
fn same_calls(nodes: usize, seed: u64) {
    #[allow(clippy::disallowed_methods)] // wall time is what this example measures
    let start = Instant::now();
    let run = gossiper_sim::floor::push_pull(nodes, seed, 1_000);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "rounds to full spread: {}  calls: {}  informed: {}",
        run.rounds, run.calls, run.informed
    );
    println!("wall time: {secs:.3} s (seeding the RNGs and the calls)");
}

/// Times the bare kernel: the same process, one RNG.
fn bare(nodes: usize, seed: u64) {
    #[allow(clippy::disallowed_methods)] // wall time is what this example measures
    let start = Instant::now();
    let bare = gossiper_sim::floor::bare_push_pull(nodes, seed, 1_000);
    let bare_secs = start.elapsed().as_secs_f64();
    println!(
        "bare kernel (one RNG, one draw a call): rounds {}  calls {}  wall time {bare_secs:.3} s",
        bare.rounds, bare.calls
    );
}
