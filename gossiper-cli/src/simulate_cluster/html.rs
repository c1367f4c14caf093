//! `--html`: the cluster run as one web page: the first run's heat map of who considers whom
//! alive, suspect or dead, the `--plot` chart over time, the measures table, and the
//! configuration and seed.

use gossiper_sim::cluster::{ClusterReport, ClusterSimConfig, ClusterSummary, name};

use super::args::SimulateClusterArgs;
use super::report::describe;
use super::{Cost, heatmap, series};
use crate::CliError;
use crate::sim_flags::html::Page;
use crate::sim_flags::{json_head, plot as draw};

/// The page.
pub(super) fn page(
    args: &SimulateClusterArgs,
    config: &ClusterSimConfig,
    reports: &[ClusterReport],
    summary: &ClusterSummary,
    cost: &Cost,
) -> Result<String, CliError> {
    let title = "gossiper simulate-cluster";
    let mut page = Page::new(title, &describe(args));
    if let (Some(recording), Some(first)) = (&config.views, reports.first()) {
        page.heading("Who considers whom alive, suspect or dead");
        page.text(&format!(
            "Run 0 (seed {}): a row per member ({} of {}: every crashed node, the late joiner \
             and an even sample of the rest), a column every {} ms.",
            first.seed,
            recording.members.len(),
            config.nodes,
            recording.every_ms
        ));
        let map = heatmap::svg(recording, &first.views, |i| row_label(config, i));
        page.figure(
            &map,
            "cell colour: the fraction of the other live nodes that hold the member alive, \
             suspect or dead",
        );
        page.raw(heatmap::legend());
    }
    page.heading("Over time");
    let chart = series::chart(args, config, reports);
    let svg = draw::render_svg(&chart)
        .map_err(|e| CliError::failure(format!("cannot draw the chart: {e}")))?;
    page.figure(&svg, &chart.caption);
    page.heading("Measures");
    let converged = reports.iter().filter(|r| r.members_converged).count();
    page.text(&format!(
        "membership converged at the end: {converged}/{} runs (times in ms of virtual time; a \
         blank mean: the event did not happen)",
        summary.runs
    ));
    page.measures(
        summary
            .measures
            .iter()
            .copied()
            .chain([("wall_ms_per_virtual_s", cost.wall_ms_per_virtual_s)]),
    );
    page.heading("Configuration");
    page.config(&json_head(args, &args.run));
    Ok(page.finish(title))
}

/// A row's name: the member, and when it crashes or joins.
fn row_label(config: &ClusterSimConfig, i: usize) -> String {
    let round_s = config.interval_ms as f64 / 1e3;
    let mut label = name(i);
    if let Some(c) = config
        .faults
        .crashes
        .iter()
        .find(|c| c.nodes.iter().any(|n| n as usize == i))
    {
        label.push_str(&format!(" · crash {:.1}s", f64::from(c.at) * round_s));
    } else if config.late_joiner() == Some(i) {
        let at = config.join_at_ms.unwrap_or(0) as f64 / 1e3;
        label.push_str(&format!(" · joins {at:.1}s"));
    }
    label
}
