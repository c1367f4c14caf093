//! A failed run's one-line error, and the command that replays exactly that run.

use clap::ValueEnum;
use gossiper_sim::SimError;

use super::args::{ProtocolArg, SimulateArgs, TimingArg};
use super::config::mode_of;
use crate::CliError;
use crate::sim_flags::{RunArgs, failure_with};

/// The error line for a failed run: what went wrong, its seed, and the command to replay it.
pub(super) fn failure(args: &SimulateArgs, e: &SimError) -> CliError {
    failure_with(e, |seed| rerun_command(args, seed))
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
    }
    args.faults.push_flags(&mut c);
    if args.max_rounds != 10_000 {
        c.push_str(&format!(" --max-rounds {}", args.max_rounds));
    }
    if args.no_check {
        c.push_str(" --no-check");
    }
    RunArgs::push_rerun(&mut c, seed);
    c
}

fn value_name<T: ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}
