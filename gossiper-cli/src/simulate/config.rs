//! From the flags to a `SimConfig`: which protocol, exchange, timing model and faults.

use gossiper_network::Topology;
use gossiper_node::{
    Feedback, LossOfInterest, Mode, Protocol, RumorConfig, RumorDirection, RumorReading,
};
use gossiper_sim::{SimConfig, Timing};

use super::args::{ModeArg, ProtocolArg, ReadingArg, SimulateArgs, TimingArg};
use crate::sim_flags::parse_interval;

/// The exchange `--mode` names, or the protocol's default: push-pull for anti-entropy (the
/// fastest), push for rumor mongering (the paper's default variant).
pub(super) fn mode_of(args: &SimulateArgs) -> ModeArg {
    args.mode.unwrap_or(match args.protocol {
        ProtocolArg::AntiEntropy => ModeArg::PushPull,
        ProtocolArg::Rumor => ModeArg::Push,
    })
}

/// Turns the arguments into a simulator configuration; errors are one-line reasons.
pub fn to_config(args: &SimulateArgs) -> Result<SimConfig, String> {
    let mode = match mode_of(args) {
        ModeArg::Push => Mode::Push,
        ModeArg::Pull => Mode::Pull,
        ModeArg::PushPull => Mode::PushPull,
    };
    let rumor_only = args.feedback
        || args.blind
        || args.counter.is_some()
        || args.coin.is_some()
        || args.reading.is_some()
        || args.anti_entropy_every > 0;
    let (protocol, mode) = match args.protocol {
        ProtocolArg::AntiEntropy => {
            if rumor_only {
                return Err("--feedback, --blind, --counter, --coin, --reading and \
                     --anti-entropy-every need --protocol rumor"
                    .into());
            }
            (Protocol::AntiEntropy, mode)
        }
        ProtocolArg::Rumor => {
            let direction = match mode_of(args) {
                ModeArg::Push => RumorDirection::Push,
                ModeArg::Pull => RumorDirection::Pull,
                ModeArg::PushPull => {
                    return Err("rumor mongering is --mode push or --mode pull".into());
                }
            };
            let loss = match (args.counter, args.coin) {
                (_, Some(0)) | (Some(0), _) => {
                    return Err("k must be at least 1 (--counter K / --coin K)".into());
                }
                (_, Some(k)) => LossOfInterest::Coin(k),
                (Some(k), None) => LossOfInterest::Counter(k),
                (None, None) => LossOfInterest::Counter(2),
            };
            let rc = RumorConfig {
                direction,
                feedback: if args.blind {
                    Feedback::Blind
                } else {
                    Feedback::Feedback
                },
                loss,
                anti_entropy_every: args.anti_entropy_every,
                reading: match args.reading {
                    Some(ReadingArg::Demers87) => RumorReading::Demers87,
                    Some(ReadingArg::Instant) | None => RumorReading::Instant,
                },
            };
            // The backing exchange is push-pull, the fastest anti-entropy.
            (Protocol::Rumor(rc), Mode::PushPull)
        }
    };
    let timing = match args.timing {
        TimingArg::Sync => {
            if args.faults.latency.is_some() {
                return Err("--latency needs --timing async (sync rounds have no latency)".into());
            }
            Timing::Sync
        }
        TimingArg::Async => Timing::Async {
            interval: parse_interval(&args.interval)?,
            latency: args.faults.latency()?,
        },
    };
    Ok(SimConfig {
        nodes: args.nodes,
        topology: args
            .topology
            .parse::<Topology>()
            .map_err(|e| e.to_string())?,
        protocol,
        mode,
        fanout: args.fanout,
        timing,
        max_rounds: args.max_rounds,
        check: !args.no_check,
        faults: args.faults.faults()?,
        ..SimConfig::default()
    })
}
