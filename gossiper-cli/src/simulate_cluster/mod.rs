//! `gossiper simulate-cluster`: the cluster protocol (the agent's `ClusterNode`: membership,
//! failure detection by SWIM or φ-accrual, generations, scuttlebutt key-value state) on
//! simulated nodes, over the simulator's faulty network, on virtual time.
//!
//! ```text
//! gossiper simulate-cluster --nodes 100 --runs 8
//! gossiper simulate-cluster --nodes 50 --loss 0.1 --crash 40..80:3-4 --format json
//! gossiper simulate-cluster --nodes 30 --partition 30..80:0-14 --duration 20s
//! gossiper simulate-cluster --nodes 1000 --detector phi --write-at 8s --join-at 8s --duration 15s
//! gossiper simulate-cluster --nodes 100 --crash 30:5 --duration 8s --runs 4 --plot -
//! gossiper simulate-cluster --nodes 100 --crash 30:5 --duration 8s --format csv > series.csv
//! gossiper simulate-cluster --nodes 100 --crash 30:5 --duration 8s --html report.html
//! ```
//!
//! Every fault time is counted in rounds of `--interval-ms`; `--write-at`, `--join-at`,
//! `--idle-window`, `--start-over`, `--duration` and `--step` are durations. Run `i` uses seed
//! `--seed + i`; a failed run prints its seed and the command that replays it. `--format csv`
//! prints each run's time series (one row every `--step`), `--plot` draws it, and `--html`
//! writes a web page with it and a heat map of the membership views. On a terminal, one line on stderr shows
//! the runs done and the virtual time reached; it never changes the results.

use std::io::{IsTerminal, Write};
use std::sync::mpsc;

use gossiper_sim::Stat;
use gossiper_sim::cluster::{ClusterSummary, run_cluster_many};

use crate::CliError;
use crate::sim_flags::{Format, failure_with, plot as draw};

mod args;
mod config;
mod heatmap;
mod html;
mod progress;
mod report;
mod series;

pub use args::SimulateClusterArgs;
pub use config::{rerun_command, to_config};
pub use progress::peak_rss_bytes;

use progress::RunWatch;
use report::{Converged, json_report, text_report};

/// What the process measured of itself (not of the simulated cluster): these vary from one
/// invocation to the next, every other figure is fixed by the seed.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Wall-clock ms each run took per second of virtual time.
    pub wall_ms_per_virtual_s: Stat,
    /// The process's peak resident set (VmHWM), bytes; `None` where unavailable.
    pub peak_rss_bytes: Option<u64>,
}

/// Runs `gossiper simulate-cluster`.
pub fn run(args: &SimulateClusterArgs) -> Result<(), CliError> {
    let config = to_config(args).map_err(CliError::usage)?;
    config
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    args.run.check()?;
    if let Some(p) = &args.plot {
        draw::check_target(p, args.run.format)?;
    }
    args.html.check(args.plot.as_deref())?;
    let threads = args.run.threads().min(args.run.runs);
    let watch = RunWatch::new(args.run.runs, config.duration_ms);
    let (stop, ticks) = mpsc::channel::<()>();
    let reports = std::thread::scope(|s| {
        if std::io::stderr().is_terminal() {
            let watch = &watch;
            s.spawn(move || watch.show(&ticks));
        }
        let r = run_cluster_many(&config, args.run.seed, args.run.runs, threads, &|t| {
            watch.tick(t)
        });
        drop(stop);
        r
    })
    .map_err(|e| failure_with(&e, |seed| rerun_command(args, seed)))?;
    let cost = Cost {
        wall_ms_per_virtual_s: watch.wall_ms_per_virtual_s(),
        peak_rss_bytes: peak_rss_bytes(),
    };
    let summary = ClusterSummary::of(&reports);
    let converged = Converged::of(&reports);
    let mut text = match args.run.format {
        Format::Text => text_report(args, &summary, converged, &cost),
        Format::Json => json_report(args, &summary, converged, &cost),
        Format::Csv => series::csv(&reports),
    };
    if let Some(path) = &args.plot {
        let chart = series::chart(args, &config, &reports);
        if draw::is_terminal_target(path) {
            text.push('\n');
            text.push_str(&draw::draw_text(&chart));
        } else {
            draw::draw_svg(path, &chart)
                .map_err(|e| CliError::failure(format!("cannot draw {}: {e}", path.display())))?;
        }
    }
    if args.html.html.is_some() {
        let page = html::page(args, &config, &reports, &summary, &cost)?;
        args.html.write_file(&page)?;
        if args.html.to_stdout() {
            text = page;
        }
    }
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| CliError::from_output(&e))
}
