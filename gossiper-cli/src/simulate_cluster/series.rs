//! The runs' time series: as CSV rows (`--format csv`), and as the chart `--plot` draws.

use gossiper_sim::cluster::{ClusterReport, ClusterSimConfig, ClusterStep, mean_series};

use super::args::SimulateClusterArgs;
use crate::sim_flags::csv_num;
use crate::sim_flags::plot::{Chart, Line};

/// One row per run and time step, runs in order.
pub(super) fn csv(reports: &[ClusterReport]) -> String {
    let mut out = String::from(
        "run,seed,t_ms,live,alive,suspect,dead,bytes_per_s,crashed_dead_fraction,write_fraction\n",
    );
    for (run, r) in reports.iter().enumerate() {
        for s in &r.series {
            out.push_str(&format!(
                "{run},{},{},{},{},{},{},{},{},{}\n",
                r.seed,
                s.at_ms,
                s.live,
                s.alive,
                s.suspect,
                s.dead,
                csv_num(s.bytes_per_s),
                csv_num(s.crashed_dead_fraction),
                csv_num(s.write_fraction)
            ));
        }
    }
    out
}

/// With crashes: the fraction of live nodes that mark the crashed nodes dead (each run faint,
/// the mean bold) and the write's spread (dashed). Without: the write's spread, bold.
pub(super) fn chart(
    args: &SimulateClusterArgs,
    config: &ClusterSimConfig,
    reports: &[ClusterReport],
) -> Chart {
    let runs: Vec<&[ClusterStep]> = reports.iter().map(|r| r.series.as_slice()).collect();
    let seconds = |series: Vec<(u64, f64)>| -> Line {
        series
            .into_iter()
            .map(|(ms, y)| (ms as f64 / 1e3, y))
            .collect()
    };
    let each = |pick: fn(&ClusterStep) -> f64| -> Vec<Line> {
        runs.iter()
            .map(|r| seconds(r.iter().map(|s| (s.at_ms, pick(s))).collect()))
            .collect()
    };
    let dead: fn(&ClusterStep) -> f64 = |s| s.crashed_dead_fraction;
    let write: fn(&ClusterStep) -> f64 = |s| s.write_fraction;
    let spread = format!("holding the write (written at {} ms)", config.write_at_ms);
    let (runs_drawn, mean, reference) = if config.faults.crashes.is_empty() {
        let mean = (
            format!("{spread}, mean of {} run(s)", reports.len()),
            seconds(mean_series(&runs, write)),
        );
        (each(write), mean, None)
    } else {
        let mean = (
            format!(
                "marking the crashed nodes dead, mean of {} run(s)",
                reports.len()
            ),
            seconds(mean_series(&runs, dead)),
        );
        let reference = Some((spread, seconds(mean_series(&runs, write))));
        (each(dead), mean, reference)
    };
    Chart {
        caption: format!(
            "simulate-cluster: {} nodes, detector {}, loss {}",
            config.nodes,
            config.detector.name(),
            args.faults.loss
        ),
        x_desc: "virtual time (s)".into(),
        y_desc: "fraction of live nodes".into(),
        x_max: config.duration_ms as f64 / 1e3,
        y_max: 1.02,
        runs: runs_drawn,
        mean,
        reference,
    }
}
