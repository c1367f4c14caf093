//! `--html`: the run as one web page: the informed fraction per round (the `--plot` chart,
//! with its theory curve), the measures table with what theory expects, failed runs with their
//! rerun commands, and the configuration and seed.

use gossiper_sim::{RunReport, SimConfig, Summary};

use super::Failed;
use super::args::SimulateArgs;
use super::plot;
use super::report::{describe, theory_lines};
use crate::CliError;
use crate::sim_flags::html::Page;
use crate::sim_flags::{json_head, plot as draw};

/// The page.
pub(super) fn page(
    args: &SimulateArgs,
    config: &SimConfig,
    reports: &[RunReport],
    summary: &Summary,
    failed: &[Failed],
) -> Result<String, CliError> {
    let title = "gossiper simulate";
    let mut page = Page::new(title, &describe(args, config));
    page.heading("Informed fraction per round");
    if reports.is_empty() {
        page.text("no run was measured: nothing to draw");
    } else {
        let chart = plot::chart(config, reports, summary);
        let svg = draw::render_svg(&chart)
            .map_err(|e| CliError::failure(format!("cannot draw the chart: {e}")))?;
        page.figure(
            &svg,
            "each run faint, their mean bold, the mean-field theory dashed where one exists",
        );
    }
    page.heading("Measures");
    page.text(&format!(
        "converged: {}/{} runs; {} measured",
        summary.converged, args.run.runs, summary.runs
    ));
    page.measures(summary.measures());
    for line in theory_lines(config) {
        page.text(&line);
    }
    if !failed.is_empty() {
        page.heading("Failed runs");
        for f in failed {
            page.text(&format!("run {} (seed {}): {}", f.run, f.seed, f.error));
            page.code(&f.rerun);
        }
    }
    page.heading("Configuration");
    page.config(&json_head(args, &args.run));
    Ok(page.finish(title))
}
