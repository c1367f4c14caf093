//! The measures of one run, and their mean, spread and range across runs.
//!
//! Demers et al. (1987) measure an epidemic by its *residue* s (the fraction of sites that never
//! received the update), its *traffic* m (update-carrying messages sent, per site), *t_ave* (the
//! mean delay from injection to arrival over the sites that received it) and *t_last* (the delay
//! to the last such site). We add the rounds to full convergence, every message and byte, and
//! deliveries of the update to nodes that already had it.

use std::fmt;

/// The measures of one simulated run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// The seed that reproduces this run exactly.
    pub seed: u64,
    /// Every live node held the update at the end (and after the last scheduled fault).
    pub converged: bool,
    /// Rounds until convergence; for rumor mongering without anti-entropy, rounds until the last
    /// node lost interest (the epidemic's end); `max_rounds` if neither happened. Fractional
    /// under the asynchronous model (virtual time / mean interval).
    pub rounds: f64,
    /// Demers' residue s: fraction of live nodes without the update at the end.
    pub residue: f64,
    /// Demers' traffic m: update-carrying messages sent, per node.
    pub traffic: f64,
    /// Demers' t_ave: mean round at which nodes other than the writer learned the update, over
    /// those that did.
    pub t_ave: f64,
    /// Demers' t_last: the round at which the last of them learned it.
    pub t_last: f64,
    /// Messages sent (of every kind), per node.
    pub messages_per_node: f64,
    /// Bytes sent, per node.
    pub bytes_per_node: f64,
    /// Deliveries of the update to a node that already held it, per node.
    pub duplicates_per_node: f64,
    /// Messages lost to loss, partitions or crashed receivers.
    pub dropped: u64,
    /// Extra copies the network made.
    pub network_duplicates: u64,
    /// Fraction of live nodes holding the update after each round (index 0: after injection).
    pub curve: Vec<f64>,
}

/// Mean, sample standard deviation, minimum and maximum of one measure across runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stat {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (0 for a single run).
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Stat {
    /// Summarises `values` (in the order given, so the floating-point sums are reproducible).
    /// NaN values (a measure undefined for a run) are skipped; all-NaN gives NaN everywhere.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Stat {
        let v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Stat {
                mean: f64::NAN,
                std: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = if v.len() > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Stat {
            mean,
            std,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ± {} [{} .. {}]",
            fmt_num(self.mean),
            fmt_num(self.std),
            fmt_num(self.min),
            fmt_num(self.max)
        )
    }
}

/// Formats a measure with about four significant digits.
pub fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e5 || x.abs() < 1e-3 {
        format!("{x:.3e}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

/// Every measure summarised across runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Number of runs.
    pub runs: usize,
    /// Runs that converged.
    pub converged: usize,
    /// Rounds to convergence (or to the epidemic's end).
    pub rounds: Stat,
    /// Residue s.
    pub residue: Stat,
    /// Traffic m.
    pub traffic: Stat,
    /// t_ave.
    pub t_ave: Stat,
    /// t_last.
    pub t_last: Stat,
    /// Messages per node.
    pub messages_per_node: Stat,
    /// Bytes per node.
    pub bytes_per_node: Stat,
    /// Duplicate deliveries of the update, per node.
    pub duplicates_per_node: Stat,
    /// Mean informed fraction per round across runs (a run that ended early counts with its
    /// final value).
    pub mean_curve: Vec<f64>,
}

impl Summary {
    /// Summarises runs, in the given order.
    pub fn of(reports: &[RunReport]) -> Summary {
        let stat = |f: fn(&RunReport) -> f64| Stat::of(reports.iter().map(f));
        let len = reports.iter().map(|r| r.curve.len()).max().unwrap_or(0);
        let mean_curve = (0..len)
            .map(|i| {
                let sum: f64 = reports
                    .iter()
                    .map(|r| r.curve.get(i).or(r.curve.last()).copied().unwrap_or(0.0))
                    .sum();
                sum / reports.len().max(1) as f64
            })
            .collect();
        Summary {
            runs: reports.len(),
            converged: reports.iter().filter(|r| r.converged).count(),
            rounds: stat(|r| r.rounds),
            residue: stat(|r| r.residue),
            traffic: stat(|r| r.traffic),
            t_ave: stat(|r| r.t_ave),
            t_last: stat(|r| r.t_last),
            messages_per_node: stat(|r| r.messages_per_node),
            bytes_per_node: stat(|r| r.bytes_per_node),
            duplicates_per_node: stat(|r| r.duplicates_per_node),
            mean_curve,
        }
    }

    /// The measures by their report keys, in report order.
    pub fn measures(&self) -> [(&'static str, Stat); 8] {
        [
            ("rounds", self.rounds),
            ("residue", self.residue),
            ("traffic", self.traffic),
            ("t_ave", self.t_ave),
            ("t_last", self.t_last),
            ("messages_per_node", self.messages_per_node),
            ("bytes_per_node", self.bytes_per_node),
            ("duplicates_per_node", self.duplicates_per_node),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_uses_the_sample_standard_deviation_and_skips_nan() {
        let s = Stat::of([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0, f64::NAN]);
        assert_eq!(s.mean, 5.0);
        assert!((s.std - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!((s.min, s.max), (2.0, 9.0));
        assert_eq!(Stat::of([3.0]).std, 0.0);
        assert!(Stat::of([]).mean.is_nan());
        assert_eq!(fmt_num(0.000_12), "1.200e-4");
        assert_eq!(fmt_num(12.345_67), "12.3457");
    }
}
