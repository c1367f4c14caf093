//! `GossipInterval`: the Go demo's interval function, as a trait with built-ins.

use std::fmt;
use std::time::Duration;

use rand::{Rng, RngExt};

/// Decides how long a node waits before its next gossip round.
///
/// Draw randomness only from `rng` (the node's seeded RNG) so runs are reproducible.
pub trait GossipInterval: Send {
    /// The delay before the next round.
    fn next_delay(&mut self, rng: &mut dyn Rng) -> Duration;

    /// The mean delay, used to express times in rounds.
    fn mean(&self) -> Duration;

    /// A short description for logs and reports, such as `jitter(100..300ms)`.
    fn describe(&self) -> String;
}

impl<T: GossipInterval + ?Sized> GossipInterval for Box<T> {
    fn next_delay(&mut self, rng: &mut dyn Rng) -> Duration {
        (**self).next_delay(rng)
    }
    fn mean(&self) -> Duration {
        (**self).mean()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Why an interval could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalError(pub String);

impl fmt::Display for IntervalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IntervalError {}

/// The same delay every time: rounds in lock-step, like the Go demo's `time.Sleep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedInterval(Duration);

impl FixedInterval {
    /// Every round `delay` apart; `delay` must be positive.
    pub fn new(delay: Duration) -> Result<Self, IntervalError> {
        if delay.is_zero() {
            return Err(IntervalError("interval must be positive".into()));
        }
        Ok(FixedInterval(delay))
    }
}

impl GossipInterval for FixedInterval {
    fn next_delay(&mut self, _rng: &mut dyn Rng) -> Duration {
        self.0
    }
    fn mean(&self) -> Duration {
        self.0
    }
    fn describe(&self) -> String {
        format!("fixed({}ms)", self.0.as_millis())
    }
}

/// A delay drawn uniformly from `[min, max]`: keeps nodes from synchronising their rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterInterval {
    min_us: u64,
    max_us: u64,
}

impl JitterInterval {
    /// Delays uniform in `[min, max]`; needs `0 < min <= max`.
    pub fn new(min: Duration, max: Duration) -> Result<Self, IntervalError> {
        if min.is_zero() || min > max {
            return Err(IntervalError(format!(
                "jitter needs 0 < min <= max, got {}..{} ms",
                min.as_millis(),
                max.as_millis()
            )));
        }
        Ok(JitterInterval {
            min_us: min.as_micros() as u64,
            max_us: max.as_micros() as u64,
        })
    }
}

impl GossipInterval for JitterInterval {
    fn next_delay(&mut self, rng: &mut dyn Rng) -> Duration {
        Duration::from_micros(rng.random_range(self.min_us..=self.max_us))
    }
    fn mean(&self) -> Duration {
        Duration::from_micros((self.min_us + self.max_us) / 2)
    }
    fn describe(&self) -> String {
        format!("jitter({}..{}ms)", self.min_us / 1_000, self.max_us / 1_000)
    }
}

/// Exponentially distributed delays: each node's rounds form a Poisson process, the
/// asynchronous model of the epidemic literature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialInterval {
    mean_us: f64,
}

impl ExponentialInterval {
    /// Delays with the given positive mean.
    pub fn new(mean: Duration) -> Result<Self, IntervalError> {
        if mean.is_zero() {
            return Err(IntervalError("exponential mean must be positive".into()));
        }
        Ok(ExponentialInterval {
            mean_us: mean.as_micros() as f64,
        })
    }
}

impl GossipInterval for ExponentialInterval {
    fn next_delay(&mut self, rng: &mut dyn Rng) -> Duration {
        // Inverse CDF; 1 - u lies in (0, 1], so ln never sees zero. At least 1 µs so time moves.
        let u: f64 = rng.random();
        let us = -self.mean_us * (1.0 - u).ln();
        Duration::from_micros((us as u64).max(1))
    }
    fn mean(&self) -> Duration {
        Duration::from_micros(self.mean_us as u64)
    }
    fn describe(&self) -> String {
        format!("exp(mean {}ms)", (self.mean_us / 1_000.0).round())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn sample(i: &mut dyn GossipInterval, n: usize) -> Vec<f64> {
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        (0..n)
            .map(|_| i.next_delay(&mut rng).as_micros() as f64)
            .collect()
    }

    #[test]
    fn fixed_is_fixed() {
        let mut f = FixedInterval::new(Duration::from_millis(200)).unwrap();
        assert!(sample(&mut f, 10).iter().all(|&d| d == 200_000.0));
        assert!(FixedInterval::new(Duration::ZERO).is_err());
    }

    #[test]
    fn jitter_stays_in_bounds_with_the_right_mean() {
        let mut j =
            JitterInterval::new(Duration::from_millis(100), Duration::from_millis(300)).unwrap();
        let s = sample(&mut j, 20_000);
        assert!(s.iter().all(|&d| (100_000.0..=300_000.0).contains(&d)));
        let mean = s.iter().sum::<f64>() / s.len() as f64;
        // Uniform std is 57.7 ms; the mean of 20,000 has std 0.41 ms: 2 ms is about 5 std.
        assert!((mean - 200_000.0).abs() < 2_000.0, "mean {mean}");
        assert_eq!(j.mean(), Duration::from_millis(200));
        assert!(JitterInterval::new(Duration::from_millis(5), Duration::from_millis(4)).is_err());
    }

    #[test]
    fn exponential_has_its_mean_and_spread() {
        let mut e = ExponentialInterval::new(Duration::from_millis(100)).unwrap();
        let s = sample(&mut e, 40_000);
        let mean = s.iter().sum::<f64>() / s.len() as f64;
        let var = s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / s.len() as f64;
        // Mean 100 ms with std 100 ms / sqrt(40,000) = 0.5 ms; allow 2 ms (4 std).
        assert!((mean - 100_000.0).abs() < 2_000.0, "mean {mean}");
        // An exponential's std equals its mean.
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.05,
            "cv {}",
            var.sqrt() / mean
        );
        assert!(s.iter().all(|&d| d >= 1.0));
    }

    #[test]
    fn same_seed_same_delays() {
        let mut a =
            JitterInterval::new(Duration::from_millis(1), Duration::from_millis(9)).unwrap();
        let mut b = a;
        assert_eq!(sample(&mut a, 50), sample(&mut b, 50));
    }
}
