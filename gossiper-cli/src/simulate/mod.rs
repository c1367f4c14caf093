//! `gossiper simulate`: measure a gossip protocol on thousands to millions of simulated nodes.
//!
//! This is the command-line face of the `gossiper-sim` crate. It parses the experiment (cluster,
//! protocol, timing model, faults), runs `--runs` independent simulations of the real engine on
//! every core, and prints the measures' mean, spread and range as a text table, one JSON object
//! or CSV rows; `--plot` draws the informed fraction per round (an SVG file, or the terminal);
//! `--html` writes all of it as one self-contained web page.
//!
//! ```text
//! gossiper simulate --nodes 10000 --mode push-pull --runs 20 --seed 1
//! gossiper simulate --nodes 1000 --protocol rumor --mode push --feedback --coin 2 --runs 100
//! gossiper simulate --nodes 500 --timing async --latency exp:20ms --loss 0.3 --format json
//! gossiper simulate --nodes 400 --partition 0..25:0-199 --crash 5..15:0-49:lose --plot run.svg
//! ```
//!
//! Every run is reproducible: run `i` uses seed `--seed + i`. When a run fails (the invariant
//! checker fires, or a protocol that promises convergence does not converge) the error line
//! names its seed and the command that replays exactly that run.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use gossiper_sim::{RunReport, SimError, Summary, run_each_register};

use crate::CliError;

mod args;
mod config;
mod html;
mod memory;
mod plot;
mod report;
mod rerun;

pub use args::{ModeArg, ProtocolArg, ReadingArg, SimulateArgs, TimingArg};
pub use config::to_config;
pub use rerun::rerun_command;

use crate::sim_flags::{Format, plot as draw};
use memory::check_memory;
use report::{csv_report, json_report, text_report};
use rerun::failure;

/// Runs `gossiper simulate`.
pub fn run(args: &SimulateArgs) -> Result<(), CliError> {
    let config = to_config(args).map_err(CliError::usage)?;
    config
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    args.run.check()?;
    if let Some(p) = &args.plot {
        draw::check_target(p, args.run.format)?;
    }
    args.html.check(args.plot.as_deref())?;
    check_memory(&config, args.run.runs, args.run.threads)?;
    let outcomes = with_progress(args.run.runs, args.run.threads, |threads, tick| {
        run_each_register(&config, args.run.seed, args.run.runs, threads, tick)
    })
    .map_err(|e| failure(args, &e))?;
    // A topology that cannot be built (bad parameters, always disconnected, thinner than the
    // fanout) is a bad argument, not a result: one line, exit 2.
    if let Some(Err(e @ SimError::Topology { .. })) = outcomes.iter().find(|o| o.is_err()) {
        return Err(CliError::usage(e.to_string()));
    }
    // A failed run is reported, never dropped: its measures join the others when it ran to its
    // end (not converged), and every failure is listed with its seed and rerun command.
    let reports: Vec<RunReport> = outcomes
        .iter()
        .filter_map(|o| match o {
            Ok(r) => Some(r.clone()),
            Err(e) => e.report().cloned(),
        })
        .collect();
    let failures: Vec<Failed> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(run, o)| {
            let e = o.as_ref().err()?;
            let seed = e.seed().unwrap_or(args.run.seed);
            Some(Failed {
                run,
                seed,
                error: e.to_string(),
                rerun: rerun_command(args, seed),
                measured: e.report().is_some(),
            })
        })
        .collect();
    let summary = Summary::of(&reports);
    let text = match args.run.format {
        Format::Text => text_report(args, &config, &summary, &failures),
        Format::Json => json_report(args, &config, &summary, &failures),
        Format::Csv => csv_report(&outcomes, &summary),
    };
    let text = if args.html.html.is_some() {
        let page = html::page(args, &config, &reports, &summary, &failures)?;
        args.html.write_file(&page)?;
        if args.html.to_stdout() { page } else { text }
    } else {
        text
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .map_err(|e| CliError::from_output(&e))?;
    if let Some(path) = &args.plot
        && !reports.is_empty()
    {
        let chart = plot::chart(&config, &reports, &summary);
        if draw::is_terminal_target(path) {
            stdout
                .write_all(format!("\n{}", draw::draw_text(&chart)).as_bytes())
                .map_err(|e| CliError::from_output(&e))?;
        } else {
            draw::draw_svg(path, &chart)
                .map_err(|e| CliError::failure(format!("cannot draw {}: {e}", path.display())))?;
        }
    }
    match outcomes.iter().find_map(|o| o.as_ref().err()) {
        Some(first) => Err(failure(args, first)),
        None => Ok(()),
    }
}

/// A run that failed, as the reports list it.
struct Failed {
    run: usize,
    seed: u64,
    error: String,
    rerun: String,
    /// Whether its measures are in the summary (it ran to `--max-rounds`).
    measured: bool,
}

/// Runs a batch of `runs` runs on `threads` threads (default: all cores) with a progress bar:
/// `batch` gets the thread count and the callback to tick after each run. (The batch decides
/// what to do with more threads than runs: `run_each` gives them to the runs' rounds.)
fn with_progress<T>(
    runs: usize,
    threads: Option<usize>,
    batch: impl FnOnce(usize, &(dyn Fn() + Sync)) -> T,
) -> T {
    let threads = threads.unwrap_or_else(gossiper_sim::default_threads);
    let bar = progress_bar(runs);
    let tick = || {
        if let Some(b) = &bar {
            b.inc(1);
        }
    };
    let result = batch(threads, &tick);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    result
}

/// A progress bar on stderr, only when stderr is a terminal and there is more than one run.
fn progress_bar(runs: usize) -> Option<indicatif::ProgressBar> {
    if runs < 2 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(runs as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} runs")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use gossiper_node::{Protocol, RumorDirection};
    use gossiper_sim::{Latency, Timing};

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: SimulateArgs,
    }

    fn parse(extra: &[&str]) -> SimulateArgs {
        let mut v = vec!["t"];
        v.extend_from_slice(extra);
        T::try_parse_from(v).unwrap().a
    }

    #[test]
    fn specs_parse_into_the_simulator_config() {
        let a = parse(&[
            "--nodes",
            "100",
            "--partition",
            "5..20:0-49/60,70",
            "--crash",
            "3..9:1-3:lose",
            "--churn",
            "0.01:0..10",
            "--timing",
            "async",
            "--latency",
            "uniform:5ms..20ms",
        ]);
        let c = to_config(&a).unwrap();
        assert_eq!(c.faults.partitions[0].groups.len(), 2);
        assert_eq!(c.faults.partitions[0].group_of(70), 1);
        assert_eq!(c.faults.crashes[0].restart, Some(9));
        assert!(!c.faults.crashes[0].keep_state);
        assert!(matches!(
            c.timing,
            Timing::Async {
                latency: Latency::Uniform {
                    min_us: 5_000,
                    max_us: 20_000
                },
                ..
            }
        ));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn one_duration_grammar_with_minutes_hours_and_bare_seconds_for_the_demo() {
        use crate::sim_flags::{parse_duration_us, parse_seconds};
        assert_eq!(parse_duration_us("250us"), Ok(250));
        assert_eq!(parse_duration_us("1.5s"), Ok(1_500_000));
        assert_eq!(parse_duration_us("2m"), Ok(120_000_000));
        assert_eq!(parse_duration_us("1h"), Ok(3_600_000_000));
        assert!(
            parse_duration_us("10")
                .unwrap_err()
                .contains("needs a unit")
        );
        assert_eq!(parse_seconds("20"), Ok(20.0));
        assert_eq!(parse_seconds("500ms"), Ok(0.5));
        assert_eq!(parse_seconds("2m"), Ok(120.0));
        assert!(parse_seconds("soon").is_err());
        let a = parse(&["--timing", "async", "--interval", "jitter:50ms..150ms"]);
        assert_eq!(
            to_config(&a).unwrap().timing,
            Timing::Async {
                interval: gossiper_sim::SimInterval::Uniform {
                    min_us: 50_000,
                    max_us: 150_000
                },
                latency: Latency::Zero
            }
        );
    }

    #[test]
    fn rumor_options_need_the_rumor_protocol_and_k_at_least_one() {
        assert!(to_config(&parse(&["--coin", "2"])).is_err());
        let e = to_config(&parse(&[
            "--protocol",
            "rumor",
            "--mode",
            "push",
            "--coin",
            "0",
        ]));
        assert!(e.unwrap_err().contains("k must be at least 1"));
        let e = to_config(&parse(&["--protocol", "rumor", "--mode", "push-pull"]));
        assert!(e.unwrap_err().contains("push or --mode pull"));
        // Without --mode, rumor mongering pushes.
        let c = to_config(&parse(&["--protocol", "rumor"])).unwrap();
        let Protocol::Rumor(rc) = c.protocol else {
            panic!("rumor mongering expected");
        };
        assert_eq!(rc.direction, RumorDirection::Push);
    }

    #[test]
    fn the_rerun_command_replays_one_run() {
        let a = parse(&[
            "--protocol",
            "rumor",
            "--mode",
            "pull",
            "--blind",
            "--coin",
            "3",
        ]);
        let c = rerun_command(&a, 42);
        assert!(c.ends_with("--runs 1 --seed 42"), "{c}");
        assert!(c.contains("--blind --coin 3"), "{c}");
        // The command parses back to the same configuration.
        let words: Vec<&str> = c.split(' ').skip(2).collect();
        assert_eq!(to_config(&parse(&words)), to_config(&a));
    }
}
