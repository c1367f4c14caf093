//! `FaultArgs`: the network and node faults, spelled once for both simulators. `simulate` and
//! `simulate-cluster` flatten the same struct, so a flag, its grammar, its help text and its
//! place in a rerun command cannot drift apart between them.

use clap::Args;
use gossiper_sim::{Faults, Latency};
use serde::Serialize;

use super::parse::{parse_churn, parse_crash, parse_latency, parse_partition};

/// The fault flags. Fault times are counted in rounds: synchronous rounds, or mean gossip
/// intervals on timers (`simulate --timing async`, and `simulate-cluster`, whose round is
/// `--interval-ms`).
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct FaultArgs {
    /// One-way message latency: 0, fixed:10ms, uniform:5ms..20ms or exp:10ms (default 0; in
    /// `simulate`, only with --timing async: synchronous rounds have no latency).
    #[arg(long, value_name = "SPEC")]
    pub latency: Option<String>,
    /// Probability that a message is lost, in [0, 1).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub loss: f64,
    /// Probability that a message is delivered twice, in [0, 1].
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub duplicate: f64,
    /// Reordering: in synchronous rounds, shuffle each delivery phase (any value > 0); on
    /// timers, the probability that a message is held back by up to one round.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub reorder: f64,
    /// A partition FROM..UNTIL:GROUPS, rounds FROM (inclusive) to UNTIL (exclusive), groups split
    /// by '/', each a list of ids and ranges (0-99,200); unnamed nodes form one more group.
    /// Repeatable. Example: 5..20:0-499.
    #[arg(long, value_name = "SPEC")]
    pub partition: Vec<String>,
    /// A crash AT[..RESTART]:NODES[:keep|lose]: the nodes stop at round AT and come back at
    /// RESTART with their state kept or lost. `simulate` keeps it by default; a
    /// `simulate-cluster` restart is a new generation and always loses it (`:keep` is refused
    /// there). Repeatable. Example: 5..15:0-99:lose.
    #[arg(long, value_name = "SPEC")]
    pub crash: Vec<String>,
    /// Churn RATE:FROM..UNTIL: each round from FROM to UNTIL, each live node is replaced by an
    /// empty one (state lost) with probability RATE. Example: 0.01:0..20.
    #[arg(long, value_name = "SPEC")]
    pub churn: Option<String>,
}

impl FaultArgs {
    /// The latency the flags name (zero when none is given).
    pub fn latency(&self) -> Result<Latency, String> {
        self.latency
            .as_deref()
            .map_or(Ok(Latency::Zero), parse_latency)
    }

    /// The loss, duplication, reordering, partitions, crashes and churn; each crash as written
    /// (its `keep_state` from `:keep|lose`, keep by default). The caller applies its own rules
    /// (a cluster restart loses its state).
    pub fn faults(&self) -> Result<Faults, String> {
        Ok(Faults {
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            partitions: self
                .partition
                .iter()
                .map(|p| parse_partition(p))
                .collect::<Result<_, _>>()?,
            crashes: self
                .crash
                .iter()
                .map(|c| parse_crash(c))
                .collect::<Result<_, _>>()?,
            churn: self.churn.as_deref().map(parse_churn).transpose()?,
        })
    }

    /// Appends the flags of a rerun command: `--latency` when given, `--loss`, `--duplicate`
    /// and `--reorder` when not 0, every `--partition` and `--crash`, and `--churn`.
    pub fn push_flags(&self, c: &mut String) {
        if let Some(l) = &self.latency {
            c.push_str(&format!(" --latency {l}"));
        }
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if p != 0.0 {
                c.push_str(&format!(" --{name} {p}"));
            }
        }
        for p in &self.partition {
            c.push_str(&format!(" --partition {p}"));
        }
        for p in &self.crash {
            c.push_str(&format!(" --crash {p}"));
        }
        if let Some(p) = &self.churn {
            c.push_str(&format!(" --churn {p}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        f: FaultArgs,
    }

    fn parse(words: &[&str]) -> FaultArgs {
        T::try_parse_from(std::iter::once("t").chain(words.iter().copied()))
            .unwrap()
            .f
    }

    #[test]
    fn the_rerun_flags_parse_back_to_the_same_faults() {
        let f = parse(&[
            "--latency",
            "exp:10ms",
            "--loss",
            "0.25",
            "--reorder",
            "0.5",
            "--partition",
            "5..20:0-49/60,70",
            "--crash",
            "3..9:1-3:lose",
            "--crash",
            "4:7",
            "--churn",
            "0.01:0..10",
        ]);
        let mut line = String::new();
        f.push_flags(&mut line);
        let words: Vec<&str> = line.split_whitespace().collect();
        let again = parse(&words);
        assert_eq!(again.faults(), f.faults());
        assert_eq!(again.latency(), Ok(Latency::Exp { mean_us: 10_000 }));
        let faults = f.faults().unwrap();
        assert_eq!(faults.duplicate, 0.0);
        assert_eq!(faults.crashes.len(), 2);
        assert!(!faults.crashes[0].keep_state && faults.crashes[1].keep_state);
        assert!(!line.contains("--duplicate"), "{line}");
    }

    #[test]
    fn no_latency_flag_is_zero_latency_and_a_bad_spec_names_itself() {
        assert_eq!(parse(&[]).latency(), Ok(Latency::Zero));
        assert!(
            parse(&["--latency", "soon"])
                .latency()
                .unwrap_err()
                .contains("bad latency 'soon'")
        );
        assert!(
            parse(&["--crash", "3:1:maybe"])
                .faults()
                .unwrap_err()
                .contains("not keep or lose")
        );
    }
}
