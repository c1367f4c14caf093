//! `--plot`: the informed fraction per round, as the shared [`Chart`].

use gossiper_node::Protocol;
use gossiper_sim::{RunReport, SimConfig, Summary, Timing, theory};

use crate::sim_flags::plot::Chart;

/// The informed fraction per round: each run faint, the mean bold, the mean-field curve dashed
/// where one exists ([`theory::curve`]: anti-entropy, or push feedback coin rumor mongering, on
/// the complete graph in synchronous rounds).
pub(super) fn chart(config: &SimConfig, reports: &[RunReport], summary: &Summary) -> Chart {
    let len = summary.mean_curve.len().max(2);
    let points = |curve: &[f64]| -> Vec<(f64, f64)> {
        curve
            .iter()
            .enumerate()
            .map(|(i, &y)| (i as f64, y))
            .collect()
    };
    Chart {
        caption: format!(
            "{} nodes, {}",
            config.nodes,
            match config.protocol {
                Protocol::AntiEntropy => format!("anti-entropy {}", config.mode),
                Protocol::Rumor(rc) => format!("rumor {}", rc.describe()),
            }
        ),
        x_desc: if matches!(config.timing, Timing::Sync) {
            "round"
        } else {
            "round (mean gossip intervals)"
        }
        .into(),
        y_desc: "informed fraction".into(),
        x_max: (len - 1) as f64,
        y_max: 1.02,
        runs: reports.iter().map(|r| points(&r.curve)).collect(),
        mean: (
            format!("mean of {} run(s)", reports.len()),
            points(&summary.mean_curve),
        ),
        reference: theory::curve(config, len - 1)
            .map(|c| ("mean-field theory".to_owned(), points(&c))),
    }
}
