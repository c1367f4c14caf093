//! From the flags to a `ClusterSimConfig`, and back to the command that replays one run.

use gossiper_sim::cluster::ClusterSimConfig;

use super::args::SimulateClusterArgs;
use crate::sim_flags::{Format, RunArgs, parse_duration_us};

/// Turns the arguments into a cluster simulation; errors are one-line reasons.
pub fn to_config(args: &SimulateClusterArgs) -> Result<ClusterSimConfig, String> {
    let ms = |s: &str, what: &str| {
        parse_duration_us(s)
            .map(|us| us / 1_000)
            .map_err(|e| format!("--{what}: {e}"))
    };
    let latency = args.faults.latency()?;
    let mut config = ClusterSimConfig {
        nodes: args.nodes,
        seeds: args.seeds,
        interval_ms: args.interval_ms,
        fanout: args.fanout,
        phi_threshold: args.phi_threshold,
        detector: args.detector.detector(),
        latency,
        write_at_ms: ms(&args.write_at, "write-at")?,
        join_at_ms: match args.join_at.as_str() {
            "off" => None,
            j => Some(ms(j, "join-at")?),
        },
        idle_window_ms: ms(&args.idle_window, "idle-window")?,
        start_over_ms: ms(&args.start_over, "start-over")?,
        formed: args.formed,
        duration_ms: ms(&args.duration, "duration")?,
        sample_ms: ms(&args.sample, "sample")?,
        series_ms: if args.run.format == Format::Csv
            || args.plot.is_some()
            || args.html.html.is_some()
        {
            match ms(&args.step, "step")? {
                0 => return Err("--step must be at least 1ms".into()),
                step => step,
            }
        } else {
            0
        },
        ..ClusterSimConfig::default()
    };
    config.faults = args.faults.faults()?;
    for (crash, spec) in config.faults.crashes.iter_mut().zip(&args.faults.crash) {
        if spec.ends_with(":keep") {
            return Err(format!(
                "bad crash '{spec}': a cluster restart always loses its state (no :keep)"
            ));
        }
        crash.keep_state = false;
        if crash.restart.is_none() {
            crash.restart = args.restart_after.map(|r| crash.at.saturating_add(r));
        }
    }
    if args.html.html.is_some() {
        config.views = Some(super::heatmap::recording(&config, ms(&args.step, "step")?));
    }
    Ok(config)
}

/// The command line that replays the single run with `seed`.
pub fn rerun_command(args: &SimulateClusterArgs, seed: u64) -> String {
    let mut c = format!(
        "gossiper simulate-cluster --nodes {} --seeds {} --interval-ms {} --fanout {} \
         --detector {} --phi-threshold {} --write-at {} --join-at {} \
         --idle-window {} --start-over {} --duration {} --sample {}",
        args.nodes,
        args.seeds,
        args.interval_ms,
        args.fanout,
        args.detector.detector().name(),
        args.phi_threshold,
        args.write_at,
        args.join_at,
        args.idle_window,
        args.start_over,
        args.duration,
        args.sample
    );
    if args.formed {
        c.push_str(" --formed");
    }
    args.faults.push_flags(&mut c);
    if let Some(r) = args.restart_after {
        c.push_str(&format!(" --restart-after {r}"));
    }
    RunArgs::push_rerun(&mut c, seed);
    c
}
