//! A failed run's one-line error, and the command that replays exactly that run.

use clap::ValueEnum;
use gossiper_sim::SimError;

use super::args::{ProtocolArg, SimulateArgs, TimingArg};
use super::config::mode_of;
use crate::CliError;

/// The error line for a failed run: what went wrong, its seed, and the command to replay it.
pub(super) fn failure(args: &SimulateArgs, e: &SimError) -> CliError {
    failure_with(e, |seed| rerun_command(args, seed))
}

/// A failed run's error: a configuration error is a usage error; otherwise the line names the
/// seed and the command `rerun` builds for it, with exit 3 when the run did not converge.
pub(crate) fn failure_with(e: &SimError, rerun: impl FnOnce(u64) -> String) -> CliError {
    let Some(seed) = e.seed() else {
        return CliError::usage(e.to_string());
    };
    let line = format!("{e}; rerun with: {}", rerun(seed));
    match e {
        SimError::NotConverged { .. } => CliError::not_converged(line),
        _ => CliError::failure(line),
    }
}

/// The command line that replays the single run with `seed`.
pub fn rerun_command(args: &SimulateArgs, seed: u64) -> String {
    let mut c = format!(
        "gossiper simulate --nodes {} --topology {} --protocol {} --mode {} --fanout {} --timing {}",
        args.nodes,
        args.topology,
        value_name(args.protocol),
        value_name(mode_of(args)),
        args.fanout,
        value_name(args.timing)
    );
    if args.protocol == ProtocolArg::Rumor {
        c.push_str(if args.blind {
            " --blind"
        } else {
            " --feedback"
        });
        match (args.counter, args.coin) {
            (_, Some(k)) => c.push_str(&format!(" --coin {k}")),
            (Some(k), None) => c.push_str(&format!(" --counter {k}")),
            (None, None) => {}
        }
        if let Some(r) = args.reading {
            c.push_str(&format!(" --reading {}", value_name(r)));
        }
        if args.anti_entropy_every > 0 {
            c.push_str(&format!(
                " --anti-entropy-every {}",
                args.anti_entropy_every
            ));
        }
    }
    if args.timing == TimingArg::Async {
        c.push_str(&format!(" --interval {}", args.interval));
        if let Some(l) = &args.latency {
            c.push_str(&format!(" --latency {l}"));
        }
    }
    push_fault_flags(
        &mut c,
        [args.loss, args.duplicate, args.reorder],
        &args.partition,
        &args.crash,
        args.churn.as_deref(),
    );
    if args.max_rounds != 10_000 {
        c.push_str(&format!(" --max-rounds {}", args.max_rounds));
    }
    if args.no_check {
        c.push_str(" --no-check");
    }
    c.push_str(&format!(" --runs 1 --seed {seed}"));
    c
}

/// Appends the fault flags of a rerun command: `--loss`, `--duplicate`, `--reorder` (when not
/// 0), every `--partition` and `--crash`, and `--churn`.
pub(crate) fn push_fault_flags(
    c: &mut String,
    [loss, duplicate, reorder]: [f64; 3],
    partitions: &[String],
    crashes: &[String],
    churn: Option<&str>,
) {
    for (name, p) in [
        ("loss", loss),
        ("duplicate", duplicate),
        ("reorder", reorder),
    ] {
        if p != 0.0 {
            c.push_str(&format!(" --{name} {p}"));
        }
    }
    for p in partitions {
        c.push_str(&format!(" --partition {p}"));
    }
    for p in crashes {
        c.push_str(&format!(" --crash {p}"));
    }
    if let Some(p) = churn {
        c.push_str(&format!(" --churn {p}"));
    }
}

fn value_name<T: ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}
