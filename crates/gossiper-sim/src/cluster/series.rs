//! A cluster run's time series: what the live nodes believe, step by step, for a CSV or a plot
//! of how membership and a write spread over time.
//!
//! The series is taken only when [`ClusterSimConfig::series_ms`](super::ClusterSimConfig) asks
//! for it, because a step reads every live node's member counts (O(N²) per step, where the
//! summary measures cost O(1) per event). Taking it reads state and draws no random number, so
//! it never changes a run's other measures.

/// One time step of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterStep {
    /// Virtual time of the step, ms.
    pub at_ms: u64,
    /// Live nodes.
    pub live: usize,
    /// Member records held as alive, summed over the live observers (each counts itself).
    pub alive: u64,
    /// Member records held as suspect, summed over the live observers.
    pub suspect: u64,
    /// Member records held as dead, summed over the live observers.
    pub dead: u64,
    /// Bytes every node sent since the last step, per second.
    pub bytes_per_s: f64,
    /// Among the nodes a crash spec names that are down now, the mean fraction of live nodes
    /// whose last word on them is "dead"; NaN when none is down.
    pub crashed_dead_fraction: f64,
    /// The fraction of live nodes that hold the measured write; NaN before it is written.
    pub write_fraction: f64,
}

/// Step by step, the mean over runs of `pick` (NaN values skipped; NaN where every run's is);
/// `(at_ms, mean)`. Runs of one configuration share their steps, so the `i`-th step of each run
/// is averaged with the others' `i`-th.
pub fn mean_series(runs: &[&[ClusterStep]], pick: fn(&ClusterStep) -> f64) -> Vec<(u64, f64)> {
    let steps = runs.iter().map(|r| r.len()).max().unwrap_or(0);
    (0..steps)
        .map(|i| {
            let at = runs.iter().find_map(|r| r.get(i)).map_or(0, |s| s.at_ms);
            let vals: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.get(i))
                .map(pick)
                .filter(|v| !v.is_nan())
                .collect();
            let mean = if vals.is_empty() {
                f64::NAN
            } else {
                vals.iter().sum::<f64>() / vals.len() as f64
            };
            (at, mean)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at_ms: u64, f: f64) -> ClusterStep {
        ClusterStep {
            at_ms,
            live: 2,
            alive: 4,
            suspect: 0,
            dead: 0,
            bytes_per_s: 1.0,
            crashed_dead_fraction: f,
            write_fraction: f64::NAN,
        }
    }

    #[test]
    fn the_mean_skips_what_a_run_did_not_measure() {
        let a = [step(10, 0.0), step(20, 0.5)];
        let b = [step(10, f64::NAN), step(20, 1.0)];
        let m = mean_series(&[&a, &b], |s| s.crashed_dead_fraction);
        assert_eq!(m, vec![(10, 0.0), (20, 0.75)]);
        let w = mean_series(&[&a, &b], |s| s.write_fraction);
        assert!(w.iter().all(|&(_, v)| v.is_nan()) && w.len() == 2);
    }
}
