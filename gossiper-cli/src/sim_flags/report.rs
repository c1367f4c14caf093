//! What both simulators print the same way: the table of measures, a measure as JSON, CSV
//! fields, and a failed run's error line with the command that replays it.

use gossiper_sim::{SimError, Stat, metrics::fmt_num};
use serde_json::{Value, json};

use crate::CliError;

/// Appends a table of measures: name, mean, std, min, max.
pub(crate) fn push_stat_table<'a>(
    out: &mut String,
    measures: impl IntoIterator<Item = (&'a str, Stat)>,
) {
    out.push_str(&format!(
        "{:<20} {:>12} {:>12} {:>12} {:>12}\n",
        "measure", "mean", "std", "min", "max"
    ));
    for (name, st) in measures {
        out.push_str(&format!(
            "{:<20} {:>12} {:>12} {:>12} {:>12}\n",
            name,
            fmt_num(st.mean),
            fmt_num(st.std),
            fmt_num(st.min),
            fmt_num(st.max)
        ));
    }
}

/// A measure as `{"mean", "std", "min", "max"}`.
pub(crate) fn stat_json(st: Stat) -> Value {
    json!({ "mean": st.mean, "std": st.std, "min": st.min, "max": st.max })
}

/// The head of a JSON report: the arguments as parsed (`args`), then `seed` and `runs` as
/// asked; the command adds its measures.
pub(crate) fn json_head(
    args: &impl serde::Serialize,
    run: &super::RunArgs,
) -> serde_json::Map<String, Value> {
    let mut obj = serde_json::Map::new();
    obj.insert(
        "args".into(),
        serde_json::to_value(args).unwrap_or(Value::Null),
    );
    obj.insert("seed".into(), json!(run.seed));
    obj.insert("runs".into(), json!(run.runs));
    obj
}

/// A CSV field: quoted, with inner quotes doubled.
pub(crate) fn csv_text(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A CSV number; NaN (not measured) is an empty field.
pub(crate) fn csv_num(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else {
        format!("{x}")
    }
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
