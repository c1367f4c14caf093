//! Regenerates the tables of `docs/theory.md`: measured means against the closed forms.
//!
//! ```text
//! cargo run --release -p gossiper-sim --example tables -- anti-entropy [max_exponent] [runs]
//! cargo run --release -p gossiper-sim --example tables -- rumor [nodes] [runs] [instant|demers87]
//! cargo run --release -p gossiper-sim --example tables -- paper [runs]
//! ```
//!
//! Every run uses seed `1 + i` (run `i`), so the tables are reproducible to the last digit.

use gossiper_node::{
    Feedback, LossOfInterest, Mode, Protocol, RumorConfig, RumorDirection, RumorReading,
};
use gossiper_sim::paper::DemersTable;
use gossiper_sim::{SimConfig, Stat, Summary, default_threads, run_many, theory};
use gossiper_types::Register;

fn summary(config: &SimConfig, runs: usize) -> Summary {
    match run_many::<Register<u64>>(config, 1, runs, default_threads(), &|| {}) {
        Ok(reports) => Summary::of(&reports),
        Err(e) => {
            eprintln!("tables: {e}");
            std::process::exit(1);
        }
    }
}

fn anti_entropy(max_exp: u32, runs: usize) {
    println!(
        "| mode | n | runs | measured rounds (mean ± std) | min..max | closed form | value | messages/node |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    for mode in [Mode::Push, Mode::Pull, Mode::PushPull] {
        for e in 3..=max_exp {
            let n = 10usize.pow(e);
            // Fewer runs where one run takes seconds.
            let runs = if e >= 6 {
                runs.min(5)
            } else if e == 5 {
                runs.min(20)
            } else {
                runs
            };
            let config = SimConfig {
                nodes: n,
                mode,
                ..SimConfig::default()
            };
            let s = summary(&config, runs);
            println!(
                "| {mode} | 10^{e} | {runs} | {:.2} ± {:.2} | {}..{} | {} | {:.2} | {:.1} |",
                s.rounds.mean,
                s.rounds.std,
                s.rounds.min,
                s.rounds.max,
                theory::rounds_formula(mode),
                theory::rounds(mode, n as f64),
                s.messages_per_node.mean
            );
        }
    }
}

fn rumor(n: usize, runs: usize, reading: RumorReading) {
    println!(
        "| variant | k | s (mean) | s (std) | m | t_ave | t_last | s = e^-(k+1)(1-s) | e^-m |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let variants = [
        (RumorDirection::Push, Feedback::Feedback, true),
        (RumorDirection::Push, Feedback::Feedback, false),
        (RumorDirection::Push, Feedback::Blind, true),
        (RumorDirection::Push, Feedback::Blind, false),
        (RumorDirection::Pull, Feedback::Feedback, true),
        (RumorDirection::Pull, Feedback::Blind, false),
    ];
    for (direction, feedback, counter) in variants {
        for k in 1..=5u32 {
            let rc = RumorConfig {
                direction,
                feedback,
                loss: if counter {
                    LossOfInterest::Counter(k)
                } else {
                    LossOfInterest::Coin(k)
                },
                anti_entropy_every: 0,
                reading,
            };
            let config = SimConfig {
                nodes: n,
                protocol: Protocol::Rumor(rc),
                ..SimConfig::default()
            };
            let s = summary(&config, runs);
            let formula = if direction == RumorDirection::Push
                && feedback == Feedback::Feedback
                && !counter
            {
                format!("{:.4}", theory::rumor_residue(k))
            } else {
                "-".into()
            };
            let name = rc.describe();
            let name = name.split(" counter").next().unwrap_or(&name);
            let name = name.split(" coin").next().unwrap_or(name);
            println!(
                "| {name} {} | {k} | {:.2e} | {:.1e} | {:.2} | {:.2} | {:.2} | {formula} | {:.2e} |",
                if counter { "counter" } else { "coin" },
                s.residue.mean,
                s.residue.std,
                s.traffic.mean,
                s.t_ave.mean,
                s.t_last.mean,
                theory::residue_from_traffic(s.traffic.mean),
            );
        }
    }
}

/// Demers et al.'s Tables 1 and 2 next to ours under both readings: mean ± sample std per run.
fn paper(runs: usize) {
    let cell = |s: &Stat, digits: usize| format!("{:.*} ± {:.*}", digits, s.mean, digits, s.std);
    for table in DemersTable::ALL {
        println!(
            "Table {} ({runs} runs per row, seeds 1..={runs}):\n",
            table.number()
        );
        println!("| k | reading | s | m | t_ave | t_last |");
        println!("|---:|---|---:|---:|---:|---:|");
        for row in table.rows() {
            println!(
                "| {} | paper | {} | {} | {} | {} |",
                row.k, row.residue, row.traffic, row.t_ave, row.t_last
            );
            for reading in [RumorReading::Demers87, RumorReading::Instant] {
                let s = summary(&table.config(row.k, reading), runs);
                let digits = if row.residue < 0.01 { 5 } else { 4 };
                println!(
                    "| {} | {} | {} | {} | {} | {} |",
                    row.k,
                    reading.name(),
                    cell(&s.residue, digits),
                    cell(&s.traffic, 2),
                    cell(&s.t_ave, 2),
                    cell(&s.t_last, 2),
                );
            }
        }
        println!();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("anti-entropy") => anti_entropy(num(1, 6) as u32, num(2, 100)),
        Some("rumor") => {
            let reading = match args.get(3).map(String::as_str) {
                Some("demers87") => RumorReading::Demers87,
                _ => RumorReading::Instant,
            };
            rumor(num(1, 1_000), num(2, 200), reading)
        }
        Some("paper") => paper(num(1, 300)),
        _ => {
            eprintln!(
                "usage: tables anti-entropy [max_exponent] [runs] | tables rumor [nodes] [runs] \
                 [instant|demers87] | tables paper [runs]"
            );
            std::process::exit(2);
        }
    }
}
