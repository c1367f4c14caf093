//! `RunArgs`: how many runs, from which seed, on how many threads, printed how. Both simulators
//! flatten it, so `--runs`, `--seed`, `--threads` and `--format` mean the same in each.

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::CliError;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A summary table (also spelled `table`).
    #[value(alias = "table")]
    Text,
    /// One JSON object.
    Json,
    /// CSV rows: `simulate`, one per run then mean, std, min and max; `simulate-cluster`, one
    /// per run and time step.
    Csv,
}

/// The runs and their output.
#[derive(Debug, Clone, Args, Serialize)]
pub struct RunArgs {
    /// Independent runs (spread over the cores).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Master seed; run i uses seed + i.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores). Runs are spread over them, each holding its nodes in
    /// memory; in `simulate` with fewer runs than threads, each run spreads its rounds over the
    /// rest (sync timing). Results are the same whatever the number, so it is left out of the
    /// JSON echo of the arguments, and the output is byte-identical.
    #[arg(long)]
    #[serde(skip)]
    pub threads: Option<usize>,
    /// Output format: text (or table), json or csv.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl RunArgs {
    /// Refuses zero runs or zero threads (a usage error).
    pub fn check(&self) -> Result<(), CliError> {
        if self.runs == 0 {
            return Err(CliError::usage("--runs must be at least 1"));
        }
        if self.threads == Some(0) {
            return Err(CliError::usage("--threads must be at least 1"));
        }
        Ok(())
    }

    /// The worker threads: `--threads`, or every core.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(gossiper_sim::default_threads)
    }

    /// The tail of a rerun command that replays run `seed` alone.
    pub fn push_rerun(c: &mut String, seed: u64) {
        c.push_str(&format!(" --runs 1 --seed {seed}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        r: RunArgs,
    }

    #[test]
    fn table_is_another_name_for_text_and_zero_runs_or_threads_are_refused() {
        let p = |w: &[&str]| T::try_parse_from(std::iter::once("t").chain(w.iter().copied()));
        assert_eq!(p(&["--format", "table"]).unwrap().r.format, Format::Text);
        assert_eq!(p(&["--format", "csv"]).unwrap().r.format, Format::Csv);
        assert!(p(&["--format", "yaml"]).is_err());
        assert!(p(&["--runs", "0"]).unwrap().r.check().is_err());
        assert!(p(&["--threads", "0"]).unwrap().r.check().is_err());
        let ok = p(&["--threads", "3", "--seed", "9"]).unwrap().r;
        assert!(ok.check().is_ok());
        assert_eq!((ok.threads(), ok.seed, ok.runs), (3, 9, 1));
        // The thread count is left out of the echo: it never changes a result.
        let echo = serde_json::to_value(&ok).unwrap();
        assert!(echo.get("threads").is_none(), "{echo}");
        assert_eq!(echo["format"], "text");
    }
}
