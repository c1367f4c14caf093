//! The φ accrual failure detector (Hayashibara et al., 2004): a suspicion level that grows with
//! the time since a peer's heartbeat last advanced, scaled by how regular its heartbeats were.
//!
//! Inter-arrival times are modelled as a normal distribution over a sliding window, with a
//! floor on the standard deviation (heartbeats relayed by gossip arrive in bursts, and a tiny
//! deviation would make φ jump on the first late beat). φ = −log10(P(a beat arrives later than
//! now)); at φ = 8 the chance of a false suspicion is about 10⁻⁸ under the model.

use std::collections::VecDeque;

use gossiper_types::Time;

/// A heartbeat gap longer than this many mean intervals restarts the window
/// ([`PhiDetector::heartbeat`]).
pub const SILENCE_FACTOR: f64 = 10.0;

/// Heartbeat arrival history for one peer.
#[derive(Debug, Clone)]
pub struct PhiDetector {
    intervals_us: VecDeque<u64>,
    sum: f64,
    sum_sq: f64,
    last: Time,
    window: usize,
    min_std_us: f64,
}

impl PhiDetector {
    /// A detector that saw a first heartbeat at `now`, assuming `initial_interval_us` between
    /// beats until real samples arrive; keeps `window` samples; standard deviation at least
    /// `min_std_us`.
    pub fn new(now: Time, initial_interval_us: u64, window: usize, min_std_us: u64) -> Self {
        let mut d = PhiDetector {
            intervals_us: VecDeque::with_capacity(window.max(2)),
            sum: 0.0,
            sum_sq: 0.0,
            last: now,
            window: window.max(2),
            min_std_us: min_std_us.max(1) as f64,
        };
        // Two prior samples, so the first real gaps do not dominate.
        d.push(initial_interval_us);
        d.push(initial_interval_us);
        d
    }

    fn push(&mut self, us: u64) {
        if self.intervals_us.len() == self.window
            && let Some(old) = self.intervals_us.pop_front()
        {
            self.sum -= old as f64;
            self.sum_sq -= (old as f64) * (old as f64);
        }
        self.intervals_us.push_back(us);
        self.sum += us as f64;
        self.sum_sq += (us as f64) * (us as f64);
    }

    /// Records that the peer's heartbeat advanced at `now`. A gap of more than
    /// [`SILENCE_FACTOR`] mean intervals is a silence (a partition, a paused process), not a
    /// sample: the window starts afresh from the mean it had, or the one long gap would keep φ
    /// near zero for as long as it stays in the window (a crash right after a partition heals
    /// went undetected for 16 s).
    pub fn heartbeat(&mut self, now: Time) {
        let gap = now.as_micros().saturating_sub(self.last.as_micros());
        self.last = now;
        let mean = self.mean_us();
        if gap as f64 > SILENCE_FACTOR * mean {
            self.intervals_us.clear();
            self.sum = 0.0;
            self.sum_sq = 0.0;
            self.push(mean as u64);
            self.push(mean as u64);
            return;
        }
        self.push(gap);
    }

    /// When the heartbeat last advanced.
    pub fn last_heartbeat(&self) -> Time {
        self.last
    }

    /// Mean inter-arrival time in microseconds.
    pub fn mean_us(&self) -> f64 {
        self.sum / self.intervals_us.len() as f64
    }

    fn std_us(&self) -> f64 {
        let n = self.intervals_us.len() as f64;
        let mean = self.sum / n;
        let var = (self.sum_sq / n - mean * mean).max(0.0);
        var.sqrt().max(self.min_std_us)
    }

    /// The suspicion level at `now` (0 = just heard, grows without bound).
    pub fn phi(&self, now: Time) -> f64 {
        let elapsed = now.as_micros().saturating_sub(self.last.as_micros()) as f64;
        let z = (elapsed - self.mean_us()) / self.std_us();
        // Logistic approximation of the normal tail (as in Akka): P(X > elapsed).
        let e = (-z * (1.5976 + 0.070_566 * z * z)).exp();
        let p_later = if elapsed > self.mean_us() {
            e / (1.0 + e)
        } else {
            1.0 - 1.0 / (1.0 + e)
        };
        -p_later.max(1e-300).log10()
    }

    /// How long after the last heartbeat φ reaches `threshold` (for reporting).
    pub fn time_to_threshold_us(&self, threshold: f64) -> u64 {
        let (mut lo, mut hi) = (0u64, 3_600_000_000u64);
        while hi - lo > 1_000 {
            let mid = lo + (hi - lo) / 2;
            if self.phi(self.last + std::time::Duration::from_micros(mid)) >= threshold {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_long_silence_does_not_blind_the_detector_afterwards() {
        let ms = |m: u64| Duration::from_millis(m);
        let mut d = PhiDetector::new(Time::ZERO, 100_000, 100, 20_000);
        let mut now = Time::ZERO;
        for _ in 0..100 {
            now = now + ms(100);
            d.heartbeat(now);
        }
        let before = d.time_to_threshold_us(8.0);
        // A 30 s partition, then it heals and beats resume.
        now = now + ms(30_000);
        d.heartbeat(now);
        for _ in 0..10 {
            now = now + ms(100);
            d.heartbeat(now);
        }
        let after = d.time_to_threshold_us(8.0);
        assert!(
            (after as f64) < before as f64 * 1.2,
            "{after} µs to φ = 8 after the heal, {before} µs before"
        );
    }

    #[test]
    fn phi_grows_with_silence_and_resets_on_heartbeat() {
        let mut d = PhiDetector::new(Time::ZERO, 100_000, 100, 50_000);
        for i in 1..=50 {
            d.heartbeat(Time::from_millis(i * 100));
        }
        let last = Time::from_millis(5_000);
        assert!(d.phi(last) < 0.5);
        let p1 = d.phi(Time::from_millis(5_200));
        let p2 = d.phi(Time::from_millis(5_400));
        assert!(p1 < p2, "{p1} < {p2}");
        assert!(d.phi(Time::from_millis(6_000)) > 8.0);
        d.heartbeat(Time::from_millis(6_000));
        assert!(d.phi(Time::from_millis(6_000)) < 1.0);
    }

    #[test]
    fn irregular_heartbeats_are_given_more_slack() {
        let mut steady = PhiDetector::new(Time::ZERO, 100_000, 100, 10_000);
        let mut bursty = PhiDetector::new(Time::ZERO, 100_000, 100, 10_000);
        let mut t = 0;
        for i in 0..60u64 {
            t += 100;
            steady.heartbeat(Time::from_millis(t));
            bursty.heartbeat(Time::from_millis(i * 100 + if i % 2 == 0 { 80 } else { 0 }));
        }
        let th = 8.0;
        assert!(steady.time_to_threshold_us(th) < bursty.time_to_threshold_us(th));
    }
}
