//! Lifeguard's local health, memberlist's "awareness" (memberlist 0.2.2 `awareness.go`): a score
//! from 0 (healthy) to `max − 1` that a node raises when it seems to be the one at fault (a
//! probe it could not complete without helpers vouching for the target, an accusation about
//! itself it had to refute) and lowers on every probe that completes. The score stretches the
//! probe period, so a slow or overloaded node accuses others less eagerly.

use std::time::Duration;

/// A node's health score, as memberlist keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Awareness {
    max: u32,
    score: u32,
}

impl Awareness {
    /// A healthy node whose score stays below `max` (memberlist's `AwarenessMaxMultiplier`,
    /// 8); a `max` of 0 or 1 keeps the score at 0, so timeouts never stretch.
    pub fn new(max: u32) -> Awareness {
        Awareness { max, score: 0 }
    }

    /// The score now: 0 is healthy, `max − 1` the worst.
    pub fn score(&self) -> u32 {
        self.score
    }

    /// Adds `delta`, kept within `0..max` (`ApplyDelta`); whether the score changed.
    pub fn apply_delta(&mut self, delta: i64) -> bool {
        let top = i64::from(self.max.saturating_sub(1));
        let next = (i64::from(self.score) + delta).clamp(0, top);
        let changed = next != i64::from(self.score);
        // `next` lies in 0..=top, and top fits a u32.
        self.score = u32::try_from(next).unwrap_or(0);
        changed
    }

    /// `timeout × (score + 1)` (`ScaleTimeout`).
    pub fn scale(&self, timeout: Duration) -> Duration {
        timeout.saturating_mul(self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_stays_within_zero_and_max_minus_one() {
        let mut a = Awareness::new(8);
        assert!(!a.apply_delta(-1), "already at the floor");
        assert_eq!(a.score(), 0);
        assert!(a.apply_delta(3));
        assert_eq!(a.score(), 3);
        assert!(a.apply_delta(100));
        assert_eq!(a.score(), 7);
        assert!(!a.apply_delta(1), "railed at max − 1");
        assert!(a.apply_delta(i64::MIN / 2));
        assert_eq!(a.score(), 0);
        let mut off = Awareness::new(0);
        assert!(!off.apply_delta(5));
        assert_eq!(off.score(), 0);
    }

    #[test]
    fn timeouts_scale_by_score_plus_one() {
        let mut a = Awareness::new(8);
        let s = Duration::from_secs(1);
        assert_eq!(a.scale(s), s);
        a.apply_delta(2);
        assert_eq!(a.scale(s), Duration::from_secs(3));
        a.apply_delta(10);
        assert_eq!(a.scale(s), Duration::from_secs(8));
    }
}
