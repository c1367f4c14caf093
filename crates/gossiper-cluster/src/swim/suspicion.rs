//! Lifeguard's suspicion timer: it starts long and shrinks as independent members confirm
//! the suspicion (memberlist's `suspicion.go`).

use std::time::Duration;

use gossiper_types::{NodeId, Time};

/// The timeout after `c` confirmations, between `min` and `max`, with `k` confirmations
/// expected: `max(min, max − (max − min) × ln(c + 1) / ln(k + 1))`. With `k < 1` it is `min`.
pub(crate) fn timeout(min: Duration, max: Duration, k: u32, c: u32) -> Duration {
    if k < 1 || max <= min {
        return min;
    }
    let c = c.min(k);
    let frac = (f64::from(c) + 1.0).ln() / (f64::from(k) + 1.0).ln();
    let span = (max - min).as_secs_f64();
    let t = max.as_secs_f64() - span * frac;
    // Whole milliseconds, as memberlist does, never below min.
    let t = Duration::from_millis((t * 1_000.0).floor() as u64);
    t.max(min)
}

/// The bounds of a suspicion timer for a cluster of `n` members (self included).
pub(crate) fn bounds(
    n: usize,
    suspicion_mult: u32,
    max_mult: u32,
    interval: Duration,
) -> (Duration, Duration, u32) {
    let n = n.max(1) as f64;
    let scale = n.log10().max(1.0);
    let min_ms = (f64::from(suspicion_mult) * scale * interval.as_secs_f64() * 1_000.0) as u64;
    let min = Duration::from_millis(min_ms.max(1));
    let max = min * max_mult;
    let mut k = suspicion_mult.saturating_sub(2);
    if (n as u32).saturating_sub(2) < k {
        k = 0;
    }
    (min, max, k)
}

/// A running suspicion of one member at one incarnation.
#[derive(Debug, Clone)]
pub(crate) struct Suspicion {
    pub id: NodeId,
    pub generation: u64,
    pub incarnation: u64,
    pub start: Time,
    pub min: Duration,
    pub max: Duration,
    pub k: u32,
    /// Who raised the suspicion here first (never counted again).
    pub accuser: NodeId,
    /// Distinct later accusers (this node's own failed probes included, unless it was the
    /// first accuser); the first `k` count as confirmations.
    pub confirmers: Vec<NodeId>,
    pub deadline: Time,
    /// Final pings sent to the member of an unconfirmed suspicion (see `Swim::handle_timeout`).
    pub last_chances: u8,
}

impl Suspicion {
    /// Starts a timer at the longest timeout; later distinct accusers shorten it.
    pub fn new(
        id: NodeId,
        generation: u64,
        incarnation: u64,
        from: NodeId,
        local: NodeId,
        now: Time,
        bounds: (Duration, Duration, u32),
    ) -> Suspicion {
        let (min, max, k) = bounds;
        let mut s = Suspicion {
            id,
            generation,
            incarnation,
            start: now,
            min,
            max,
            k,
            accuser: from,
            confirmers: Vec::new(),
            deadline: now,
            last_chances: 0,
        };
        // As in memberlist, the first accuser is not a confirmation, whoever it is: one lossy
        // path must not shorten the time the accused has to refute.
        let _ = local;
        s.deadline = now + s.current();
        s
    }

    /// The timeout with the confirmations seen so far.
    pub fn current(&self) -> Duration {
        timeout(self.min, self.max, self.k, self.confirmers.len() as u32)
    }

    /// Counts `from` as a confirmation; true if it was new and counted. As in memberlist,
    /// this node's own failed probe of a member others accused is independent evidence too.
    pub fn confirm(&mut self, from: NodeId) -> bool {
        if from == self.accuser
            || from == self.id
            || self.confirmers.len() as u32 >= self.k
            || self.confirmers.contains(&from)
        {
            return false;
        }
        self.confirmers.push(from);
        self.deadline = self.start + self.current();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_shrinks_from_max_to_min_with_confirmations() {
        let min = Duration::from_millis(400);
        let max = Duration::from_millis(2_400);
        assert_eq!(timeout(min, max, 2, 0), max);
        // ln 2 / ln 3 = 0.6309 of the span: 2400 - 1261.8 = 1138.
        assert_eq!(timeout(min, max, 2, 1), Duration::from_millis(1_138));
        assert_eq!(timeout(min, max, 2, 2), min);
        assert_eq!(timeout(min, max, 2, 9), min);
        assert_eq!(timeout(min, max, 0, 0), min);
    }

    #[test]
    fn bounds_follow_memberlist() {
        let i = Duration::from_millis(100);
        // Below 10 members log10 is floored at 1; k = 0 when n - 2 < mult - 2.
        assert_eq!(
            bounds(3, 4, 6, i),
            (Duration::from_millis(400), Duration::from_millis(2_400), 0)
        );
        assert_eq!(
            bounds(9, 4, 6, i),
            (Duration::from_millis(400), Duration::from_millis(2_400), 2)
        );
        let (min, max, k) = bounds(100, 4, 6, i);
        assert_eq!(
            (min, max, k),
            (Duration::from_millis(800), Duration::from_millis(4_800), 2)
        );
    }

    #[test]
    fn only_distinct_foreign_accusers_confirm() {
        let (a, b, c, me, t) = (NodeId(1), NodeId(2), NodeId(3), NodeId(9), NodeId(7));
        let i = Duration::from_millis(100);
        let mut s = Suspicion::new(t, 1, 0, me, me, Time::ZERO, bounds(9, 4, 6, i));
        assert_eq!(s.deadline, Time::from_millis(2_400));
        assert!(!s.confirm(me), "the first accuser does not confirm itself");
        assert!(!s.confirm(t));
        assert!(s.confirm(a));
        assert!(!s.confirm(a));
        assert_eq!(s.deadline, Time::from_millis(1_138));
        assert!(s.confirm(b));
        assert!(!s.confirm(c), "only k confirmations count");
        // Accused by another first, this node's own failed probe confirms.
        // Accused by another first: that accusation alone leaves the longest timeout, and
        // this node's own failed probe confirms.
        let mut s = Suspicion::new(t, 1, 0, a, me, Time::ZERO, bounds(9, 4, 6, i));
        assert_eq!(s.deadline, Time::from_millis(2_400));
        assert!(!s.confirm(a));
        assert!(s.confirm(me));
        assert_eq!(s.deadline, Time::from_millis(1_138));
    }
}
