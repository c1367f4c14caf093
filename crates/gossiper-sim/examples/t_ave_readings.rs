//! Candidate readings of Demers et al.'s t_ave (1987, Tables 1 and 2), screened against the
//! paper: a stand-alone model of one synchronous cycle of push rumor mongering under the
//! `demers87` reading, computing every candidate measure in the same runs.
//!
//! ```text
//! cargo run --release -p gossiper-sim --example t_ave_readings -- [runs]
//! ```
//!
//! This is a model, not the engine: a few lines of the process the engine runs (every site
//! infective at a cycle's start pushes to one uniformly random other site; a recipient that was
//! susceptible at the cycle's start learns, and counts as news to every caller of that cycle;
//! feedback counter: k unnecessary contacts in a row, blind coin: lose interest with probability
//! 1/k after each push). Its s, m, t_ave and t_last agree with the engine's within noise (see
//! `docs/theory.md`), so it can compute measures the simulator does not keep (every arrival, the
//! cycle a site lost interest) for all candidates at once. `docs/theory.md` lists the outcome.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

const N: usize = 1_000;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    FeedbackCounter,
    BlindCoin,
}

/// What one run records per site.
struct Sites {
    /// Cycle of first arrival (NaN: never).
    learned: Vec<f64>,
    /// Cycle of the last arrival.
    last_arrival: Vec<f64>,
    /// Cycle at which the site lost interest (NaN: never infective, or still infective).
    removed: Vec<f64>,
    /// Pushes received.
    contacts: Vec<u32>,
}

/// The candidate measures, in the order of [`NAMES`].
const NAMES: [&str; 13] = [
    "s",
    "m",
    "t_last",
    "first",
    "first+1",
    "with w",
    "all@last",
    "all@end",
    "removal",
    "last arr",
    "push t",
    "mid life",
    "by contacts",
];

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = xs.fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// One run of row `k` of `variant` with `seed`: every candidate measure.
fn run(variant: Variant, k: u32, seed: u64) -> [f64; NAMES.len()] {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut sites = Sites {
        learned: vec![f64::NAN; N],
        last_arrival: vec![f64::NAN; N],
        removed: vec![f64::NAN; N],
        contacts: vec![0; N],
    };
    let mut hot = vec![false; N];
    let mut counter = vec![0u32; N];
    let writer = rng.random_range(0..N);
    sites.learned[writer] = 0.0;
    hot[writer] = true;
    let (mut pushes, mut push_cycles) = (0u64, 0.0);
    let mut cycle = 0u32;
    while hot.iter().any(|&h| h) {
        cycle += 1;
        let t = f64::from(cycle);
        let knew_at_start: Vec<bool> = sites.learned.iter().map(|l| !l.is_nan()).collect();
        let hot_at_start = hot.clone();
        for i in (0..N).filter(|&i| hot_at_start[i]) {
            let mut j = rng.random_range(0..N - 1);
            if j >= i {
                j += 1;
            }
            pushes += 1;
            push_cycles += t;
            sites.last_arrival[j] = t;
            sites.contacts[j] += 1;
            if !knew_at_start[j] && sites.learned[j].is_nan() {
                sites.learned[j] = t;
            }
            let lost = match variant {
                Variant::FeedbackCounter if knew_at_start[j] => {
                    counter[i] += 1;
                    counter[i] >= k
                }
                Variant::FeedbackCounter => {
                    counter[i] = 0;
                    false
                }
                Variant::BlindCoin => rng.random_range(0..k) == 0,
            };
            if lost {
                hot[i] = false;
                sites.removed[i] = t;
            }
        }
        // Who learned in this cycle pushes from the next one on.
        for i in 0..N {
            if !knew_at_start[i] && sites.learned[i] == t {
                hot[i] = true;
            }
        }
    }
    measures(&sites, writer, pushes, push_cycles, cycle)
}

fn measures(
    sites: &Sites,
    writer: usize,
    pushes: u64,
    push_cycles: f64,
    cycles: u32,
) -> [f64; NAMES.len()] {
    let informed: Vec<usize> = (0..N).filter(|&i| !sites.learned[i].is_nan()).collect();
    let others: Vec<usize> = informed.iter().copied().filter(|&i| i != writer).collect();
    let first = |i: &usize| sites.learned[*i];
    let t_last = others.iter().map(first).fold(0.0, f64::max);
    let unreached = (N - informed.len()) as f64;
    let first_sum: f64 = others.iter().map(first).sum();
    let by_contacts: f64 = others
        .iter()
        .map(|&i| f64::from(sites.contacts[i]) * sites.learned[i])
        .sum::<f64>()
        / others
            .iter()
            .map(|&i| f64::from(sites.contacts[i]))
            .sum::<f64>();
    let removed = || informed.iter().filter(|&&i| !sites.removed[i].is_nan());
    [
        unreached / N as f64,
        pushes as f64 / N as f64,
        t_last,
        mean(others.iter().map(first)),
        mean(others.iter().map(first)) + 1.0,
        mean(informed.iter().map(first)),
        (first_sum + unreached * t_last) / (N - 1) as f64,
        (first_sum + unreached * f64::from(cycles)) / (N - 1) as f64,
        mean(removed().map(|&i| sites.removed[i])),
        mean(others.iter().map(|&i| sites.last_arrival[i])),
        push_cycles / pushes.max(1) as f64,
        mean(removed().map(|&i| (sites.learned[i] + sites.removed[i]) / 2.0)),
        by_contacts,
    ]
}

fn main() {
    let runs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    // The paper's t_ave per row, k = 1..5.
    let tables = [
        (1, Variant::FeedbackCounter, [11.0, 12.1, 12.5, 12.7, 12.8]),
        (2, Variant::BlindCoin, [19.0, 17.0, 15.0, 14.1, 13.8]),
    ];
    print!("| table | k | paper t_ave |");
    for name in NAMES {
        print!(" {name} |");
    }
    println!();
    println!("|---|---|---|{}", "---|".repeat(NAMES.len()));
    for (number, variant, paper) in tables {
        for (k, t_ave) in (1..=5).zip(paper) {
            let mut sums = [0.0; NAMES.len()];
            let mut counts = [0usize; NAMES.len()];
            for seed in 1..=runs {
                for (i, x) in run(variant, k, seed).into_iter().enumerate() {
                    if !x.is_nan() {
                        sums[i] += x;
                        counts[i] += 1;
                    }
                }
            }
            print!("| {number} | {k} | {t_ave} |");
            for (sum, count) in sums.iter().zip(counts) {
                print!(" {:.3} |", sum / count as f64);
            }
            println!();
        }
    }
}
