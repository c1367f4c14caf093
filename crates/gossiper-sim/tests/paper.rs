//! Demers et al. (1987), Tables 1 and 2, number by number: k = 1..3 of both tables under the
//! `demers87` reading, and the default `instant` reading shown to miss Table 1.
//!
//! Tolerances: the run-to-run standard deviation σ of each measure is measured by the test
//! itself over its `RUNS` runs (seeds 1..=RUNS); our mean may sit up to 4 σ/√RUNS from the true
//! mean, and the paper printed two significant digits, so its value may sit up to half a unit of
//! its last digit from its own mean. The paper's own sampling error is unknown (it does not say
//! how many runs it averaged) and is not added. At RUNS = 100 the residue tolerance is, for
//! Table 1, about 0.011, 0.0031 and 0.0019 at k = 1, 2, 3 (σ measured over 300 runs: 0.016,
//! 0.0064, 0.0034).

use gossiper_node::RumorReading;
use gossiper_sim::paper::{DemersTable, PaperRow};
use gossiper_sim::{Stat, Summary, run_many};
use gossiper_types::Register;

const RUNS: usize = 100;

fn measure(table: DemersTable, k: u32, reading: RumorReading) -> Summary {
    let config = table.config(k, reading);
    Summary::of(&run_many::<Register<u64>>(&config, 1, RUNS, 2, &|| {}).unwrap())
}

/// Which of the paper's columns.
#[derive(Clone, Copy)]
enum Column {
    Residue,
    Traffic,
    TLast,
}

/// Half a unit of the last digit the paper printed: residues to two significant digits (0.18,
/// 0.037, 0.060), traffic to one decimal (two below 0.1: 0.04), t_last to one decimal in Table 1
/// and to whole cycles in Table 2.
fn half_unit(table: DemersTable, column: Column, value: f64) -> f64 {
    match column {
        Column::Residue => 0.5 * 10f64.powi(value.log10().floor() as i32 - 1),
        Column::Traffic if value < 0.1 => 0.005,
        Column::Traffic => 0.05,
        Column::TLast if table == DemersTable::BlindCoin => 0.5,
        Column::TLast => 0.05,
    }
}

fn tolerance(table: DemersTable, column: Column, ours: &Stat, paper: f64) -> f64 {
    4.0 * ours.std / (RUNS as f64).sqrt() + half_unit(table, column, paper)
}

fn check(table: DemersTable, column: Column, row: &PaperRow, ours: &Stat) -> bool {
    let (what, paper) = match column {
        Column::Residue => ("residue", row.residue),
        Column::Traffic => ("traffic", row.traffic),
        Column::TLast => ("t_last", row.t_last),
    };
    let tol = tolerance(table, column, ours, paper);
    let ok = (ours.mean - paper).abs() <= tol;
    if !ok {
        eprintln!(
            "table {} k {} {what}: ours {:.5} (σ {:.5}), paper {paper}, tolerance {tol:.5}",
            table.number(),
            row.k,
            ours.mean,
            ours.std
        );
    }
    ok
}

#[test]
fn the_demers87_reading_reproduces_tables_1_and_2() {
    let mut all = true;
    for table in DemersTable::ALL {
        for row in &table.rows()[..3] {
            let s = measure(table, row.k, RumorReading::Demers87);
            all &= check(table, Column::Residue, row, &s.residue);
            all &= check(table, Column::Traffic, row, &s.traffic);
            all &= check(table, Column::TLast, row, &s.t_last);
            all &= t_ave_gap_stands(table, row, &s.t_ave);
        }
    }
    assert!(all, "see the rows above");
}

/// t_ave is the one column no reading reproduces (`docs/theory.md` lists the readings tried and
/// what each gives): ours (mean cycle of first arrival over the sites that learned, the writer
/// excluded) is 1.2, 2.1 and 2.5 cycles below the paper's in Table 1 at k = 1, 2, 3, and 1.2 and
/// 1.6 below in Table 2 at k = 2, 3 (300 runs). This pins that gap, so a change that moves t_ave
/// shows, and so does a reading that closes the gap: between 0.8 and 3.0 cycles in Table 1 and
/// 0.5 and 2.5 in Table 2, widened by 4 σ/√RUNS and half a unit of the paper's last digit. Table
/// 2 at k = 1 is left out: most runs die at once, and σ is about 11 cycles.
fn t_ave_gap_stands(table: DemersTable, row: &PaperRow, ours: &Stat) -> bool {
    let (band, half_unit) = match table {
        DemersTable::FeedbackCounter => (0.8..=3.0, 0.05),
        DemersTable::BlindCoin if row.k == 1 => return true,
        DemersTable::BlindCoin => (0.5..=2.5, 0.5),
    };
    let slack = 4.0 * ours.std / (RUNS as f64).sqrt() + half_unit;
    let gap = row.t_ave - ours.mean;
    let ok = (band.start() - slack..=band.end() + slack).contains(&gap);
    if !ok {
        eprintln!(
            "table {} k {} t_ave: ours {:.3} (σ {:.3}), paper {}, gap {gap:.3} outside {band:?} ± {slack:.3}",
            table.number(),
            row.k,
            ours.mean,
            ours.std,
            row.t_ave
        );
    }
    ok
}

#[test]
fn the_instant_reading_misses_table_1() {
    // Under the default reading the residue follows the mean-field formula instead (0.20, 0.059,
    // 0.020 at k = 1, 2, 3): each k is outside the tolerance the paper's value allows.
    let table = DemersTable::FeedbackCounter;
    for row in &table.rows()[..3] {
        let s = measure(table, row.k, RumorReading::Instant);
        assert!(
            (s.residue.mean - row.residue).abs()
                > 2.0 * tolerance(table, Column::Residue, &s.residue, row.residue),
            "k {}: {:.4} against the paper's {}",
            row.k,
            s.residue.mean,
            row.residue
        );
    }
}

#[test]
fn half_units_follow_the_printed_digits() {
    let t1 = DemersTable::FeedbackCounter;
    let t2 = DemersTable::BlindCoin;
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(half_unit(t1, Column::Residue, 0.18), 0.005));
    assert!(close(half_unit(t1, Column::Residue, 0.037), 0.0005));
    assert!(close(half_unit(t2, Column::Residue, 0.060), 0.0005));
    assert!(close(half_unit(t2, Column::Residue, 0.96), 0.005));
    assert!(close(half_unit(t2, Column::Traffic, 0.04), 0.005));
    assert!(close(half_unit(t1, Column::Traffic, 1.7), 0.05));
    assert!(close(half_unit(t1, Column::TLast, 16.8), 0.05));
    assert!(close(half_unit(t2, Column::TLast, 38.0), 0.5));
}

/// The law behind the bound in `docs/theory.md` ("why no reading fits"): a larger counter never
/// slows the spread, since a site only stays infective longer. So at every cycle the share of
/// sites informed at k = 5 is at least the share at k = 1, and the first 82 % of sites reached
/// at k = 5 arrive no later on average than the 82 % reached at k = 1. Checked on the mean
/// curves over `RUNS` runs (seeds 1..=RUNS), within 4 σ/√RUNS of the difference.
#[test]
fn a_larger_counter_never_slows_the_spread() {
    let table = DemersTable::FeedbackCounter;
    let curves = |k: u32| -> Vec<Vec<f64>> {
        let config = table.config(k, RumorReading::Demers87);
        run_many::<Register<u64>>(&config, 1, RUNS, 2, &|| {})
            .unwrap()
            .into_iter()
            .map(|r| r.curve)
            .collect()
    };
    let (low, mid, high) = (curves(1), curves(3), curves(5));
    let at = |c: &[f64], r: usize| c.get(r).or(c.last()).copied().unwrap_or(0.0);
    let rounds = [&low, &mid, &high]
        .iter()
        .flat_map(|cs| cs.iter().map(Vec::len))
        .max()
        .unwrap();
    let mut checked = 0;
    for (slow, fast) in [(&low, &mid), (&mid, &high)] {
        for r in 0..rounds {
            // Same seeds: compare run by run, then the mean difference against its spread.
            let d: Vec<f64> = slow
                .iter()
                .zip(fast.iter())
                .map(|(s, f)| at(f, r) - at(s, r))
                .collect();
            let mean = d.iter().sum::<f64>() / d.len() as f64;
            let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (d.len() - 1) as f64;
            let tol = 4.0 * var.sqrt() / (RUNS as f64).sqrt();
            assert!(
                mean >= -tol,
                "cycle {r}: the larger counter informs {mean:.4} less (tolerance {tol:.4})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 2 * 15, "{checked} cycles compared");
}
