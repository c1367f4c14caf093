//! The measures as a text table, one JSON object or CSV rows, failed runs marked in each.

use gossiper_node::Protocol;
use gossiper_sim::{RunReport, SimConfig, SimError, Summary, Timing, theory};
use serde_json::{Value, json};

use crate::sim_flags::{csv_num, csv_text, json_head, push_stat_table, stat_json};

use super::Failed;
use super::args::SimulateArgs;

pub(super) fn describe(args: &SimulateArgs, config: &SimConfig) -> String {
    let protocol = match config.protocol {
        Protocol::AntiEntropy => format!("anti-entropy {}", config.mode),
        Protocol::Rumor(rc) => format!("rumor {}", rc.describe()),
    };
    let timing = match config.timing {
        Timing::Sync => "sync rounds".to_owned(),
        Timing::Async { .. } => format!(
            "async, interval {}, latency {}",
            args.interval,
            args.faults.latency.as_deref().unwrap_or("0")
        ),
    };
    format!(
        "{} nodes, {} topology, {protocol}, fanout {}, {timing}, {} run(s), seed {}",
        config.nodes, args.topology, config.fanout, args.run.runs, args.run.seed
    )
}

pub(super) fn text_report(
    args: &SimulateArgs,
    config: &SimConfig,
    s: &Summary,
    failed: &[Failed],
) -> String {
    let mut out = format!("gossiper simulate: {}\n", describe(args, config));
    out.push_str(&format!(
        "converged: {}/{} runs\n",
        s.converged, args.run.runs
    ));
    for f in failed {
        let counted = if f.measured {
            "measured to --max-rounds, included below"
        } else {
            "not included below"
        };
        out.push_str(&format!(
            "FAILED run {} (seed {}): {} [{counted}]\n",
            f.run, f.seed, f.error
        ));
    }
    out.push('\n');
    push_stat_table(&mut out, s.measures());
    for line in theory_lines(config) {
        out.push_str(&format!("\n{line}\n"));
    }
    out
}

/// What theory (and the paper, where it has a row) expects of `config`, a line each.
pub(super) fn theory_lines(config: &SimConfig) -> Vec<String> {
    let mut lines = Vec::new();
    let expected = theory::expected(config);
    if let Some((formula, value)) = expected.rounds {
        lines.push(format!("theory: rounds ≈ {formula} = {value:.2}"));
    }
    if let Some(r) = expected.residue {
        lines.push(format!("theory: residue s = e^-(k+1)(1-s) = {r:.4}"));
    }
    if let Some((table, row)) = expected.paper {
        lines.push(format!(
            "paper (Demers et al. 1987, Table {}, k = {}): s {}, m {}, t_ave {}, t_last {}",
            table.number(),
            row.k,
            row.residue,
            row.traffic,
            row.t_ave,
            row.t_last
        ));
    }
    lines
}

pub(super) fn json_report(
    args: &SimulateArgs,
    config: &SimConfig,
    s: &Summary,
    failed: &[Failed],
) -> String {
    let mut obj = json_head(args, &args.run);
    obj.insert("measured_runs".into(), json!(s.runs));
    obj.insert("converged_runs".into(), json!(s.converged));
    let failures: Vec<Value> = failed
        .iter()
        .map(|f| {
            json!({
                "run": f.run,
                "seed": f.seed,
                "error": f.error,
                "rerun": f.rerun,
                "measured": f.measured,
            })
        })
        .collect();
    obj.insert("failures".into(), Value::Array(failures));
    for (name, st) in s.measures() {
        obj.insert(name.into(), stat_json(st));
    }
    let mut theory = serde_json::Map::new();
    let expected = theory::expected(config);
    if let Some((formula, value)) = expected.rounds {
        theory.insert("rounds_formula".into(), json!(formula));
        theory.insert("rounds".into(), json!(value));
    }
    if let Some(r) = expected.residue {
        theory.insert("residue".into(), json!(r));
    }
    obj.insert("theory".into(), Value::Object(theory));
    if let Some((table, row)) = expected.paper {
        obj.insert(
            "paper".into(),
            json!({
                "source": "Demers et al. 1987",
                "table": table.number(),
                "k": row.k,
                "residue": row.residue,
                "traffic": row.traffic,
                "t_ave": row.t_ave,
                "t_last": row.t_last,
            }),
        );
    }
    obj.insert("mean_curve".into(), json!(s.mean_curve));
    let mut text = Value::Object(obj).to_string();
    text.push('\n');
    text
}

/// One row per run in run order (a failed run's row names its error in the last column, and has
/// its measures if it ran to its end), then the mean, std, min and max of the measured runs.
pub(super) fn csv_report(outcomes: &[Result<RunReport, SimError>], s: &Summary) -> String {
    let mut out = String::from(
        "run,seed,converged,rounds,residue,traffic,t_ave,t_last,messages_per_node,\
         bytes_per_node,duplicates_per_node,failure\n",
    );
    for (i, o) in outcomes.iter().enumerate() {
        let (r, failure) = match o {
            Ok(r) => (Some(r), String::new()),
            Err(e) => (e.report(), csv_text(&e.to_string())),
        };
        let Some(r) = r else {
            let seed = o
                .as_ref()
                .err()
                .and_then(SimError::seed)
                .unwrap_or_default();
            out.push_str(&format!("{i},{seed},false,,,,,,,,,{failure}\n"));
            continue;
        };
        let vals = [
            r.rounds,
            r.residue,
            r.traffic,
            r.t_ave,
            r.t_last,
            r.messages_per_node,
            r.bytes_per_node,
            r.duplicates_per_node,
        ];
        let vals: Vec<String> = vals.iter().map(|&v| csv_num(v)).collect();
        out.push_str(&format!(
            "{i},{},{},{},{failure}\n",
            r.seed,
            r.converged,
            vals.join(",")
        ));
    }
    let measures = s.measures();
    for (label, pick) in [
        (
            "mean",
            (|st: gossiper_sim::Stat| st.mean) as fn(gossiper_sim::Stat) -> f64,
        ),
        ("std", |st| st.std),
        ("min", |st| st.min),
        ("max", |st| st.max),
    ] {
        let vals: Vec<String> = measures.iter().map(|(_, st)| csv_num(pick(*st))).collect();
        out.push_str(&format!("{label},,,{},\n", vals.join(",")));
    }
    out
}
