//! The summary as a text table or one JSON object.

use gossiper_sim::cluster::ClusterSummary;
use serde_json::{Value, json};

use super::Cost;
use super::args::SimulateClusterArgs;
use crate::sim_flags::{json_head, push_stat_table, stat_json};

pub(super) fn describe(args: &SimulateClusterArgs) -> String {
    format!(
        "{} nodes ({} seed(s)), detector {}, interval {} ms, fanout {}, phi {}, latency {}, loss {}, {} run(s), seed {}",
        args.nodes,
        args.seeds,
        args.detector.detector().name(),
        args.interval_ms,
        args.fanout,
        args.phi_threshold,
        args.faults.latency.as_deref().unwrap_or("0"),
        args.faults.loss,
        args.run.runs,
        args.run.seed
    )
}

/// How many runs ended with the membership agreed, and how many with no node live at all.
#[derive(Debug, Clone, Copy)]
pub(super) struct Converged {
    pub members: usize,
    pub empty: usize,
}

impl Converged {
    pub(super) fn of(reports: &[gossiper_sim::cluster::ClusterReport]) -> Converged {
        Converged {
            members: reports.iter().filter(|r| r.members_converged).count(),
            empty: reports.iter().filter(|r| r.live_at_end == 0).count(),
        }
    }
}

pub(super) fn text_report(
    args: &SimulateClusterArgs,
    s: &ClusterSummary,
    converged: Converged,
    cost: &Cost,
) -> String {
    let mut out = format!("gossiper simulate-cluster: {}\n", describe(args));
    let Converged { members, empty } = converged;
    if empty == 0 {
        out.push_str(&format!(
            "membership converged at the end: {members}/{} runs; user state converged: all runs\n\n",
            s.runs
        ));
    } else {
        out.push_str(&format!(
            "membership converged at the end: {members}/{} runs; no node was live at the end of \
             {empty} run(s), so nothing there converged; user state converged in the others\n\n",
            s.runs
        ));
    }
    push_stat_table(
        &mut out,
        s.measures
            .iter()
            .copied()
            .chain([("wall_ms_per_virtual_s", cost.wall_ms_per_virtual_s)]),
    );
    out.push_str(&format!(
        "\npeak RSS: {}\n",
        cost.peak_rss_bytes
            .map_or("unavailable".into(), |b| format!(
                "{b} bytes ({:.1} MiB)",
                b as f64 / 1_048_576.0
            ))
    ));
    out.push_str(
        "\n(times in ms of virtual time; a blank mean: the event did not happen; idle_*: sent \
         per live node per second in the idle window, blank if not settled by then)\n",
    );
    out
}

pub(super) fn json_report(
    args: &SimulateClusterArgs,
    s: &ClusterSummary,
    converged: Converged,
    cost: &Cost,
) -> String {
    let mut obj = json_head(args, &args.run);
    obj.insert("detector".into(), json!(args.detector.detector().name()));
    obj.insert("members_converged_runs".into(), json!(converged.members));
    obj.insert("runs_without_live_nodes".into(), json!(converged.empty));
    for (name, st) in &s.measures {
        obj.insert((*name).into(), stat_json(*st));
    }
    obj.insert(
        "wall_ms_per_virtual_s".into(),
        stat_json(cost.wall_ms_per_virtual_s),
    );
    obj.insert("peak_rss_bytes".into(), json!(cost.peak_rss_bytes));
    let mut text = Value::Object(obj).to_string();
    text.push('\n');
    text
}
