//! Log lines about what peers do (members joining, dying, leaving; datagrams refused) come at
//! the rate the peers choose: a flapping member, a cluster starting at once, or a flood of
//! datagrams under the wrong key must not flood the log or cost a write per datagram.
//!
//! Each kind of line has a token bucket: a burst of [`BURST`] lines, refilled at [`PER_SECOND`]
//! a second. A line over it is only counted; once the bucket has room again, one line says how
//! many of that kind were suppressed (the next line of the kind, or the summary that
//! [`RateLimiter::summaries`] returns when none comes). Time is a value passed in, so the
//! limiter is tested on a fake clock.

use std::collections::BTreeMap;
use std::time::Duration;

/// Lines of one kind let through at once.
pub(crate) const BURST: u32 = 5;
/// Lines of one kind let through a second, after the burst.
pub(crate) const PER_SECOND: f64 = 3.0;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Duration,
    suppressed: u64,
}

/// Token buckets by kind of line.
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    buckets: BTreeMap<K, Bucket>,
    burst: f64,
    per_second: f64,
}

impl<K: Ord + Copy> RateLimiter<K> {
    /// `burst` lines at once, `per_second` a second after that, for each kind.
    pub(crate) fn new(burst: u32, per_second: f64) -> RateLimiter<K> {
        RateLimiter {
            buckets: BTreeMap::new(),
            burst: f64::from(burst.max(1)),
            per_second,
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Duration) {
        let elapsed = now.saturating_sub(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.last = bucket.last.max(now);
    }

    /// Whether a line of `kind` may be written at `now`: `Some(n)` with the number of lines
    /// of that kind suppressed since the last one written (to be said with it), or `None` to
    /// suppress this one (it is counted).
    pub(crate) fn check(&mut self, kind: K, now: Duration) -> Option<u64> {
        let mut bucket = self.buckets.get(&kind).copied().unwrap_or(Bucket {
            tokens: self.burst,
            last: now,
            suppressed: 0,
        });
        self.refill(&mut bucket, now);
        let verdict = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Some(std::mem::take(&mut bucket.suppressed))
        } else {
            bucket.suppressed += 1;
            None
        };
        self.buckets.insert(kind, bucket);
        verdict
    }

    /// The kinds whose suppressed lines can be summarised at `now` (their bucket has room
    /// again), with how many there were; each summary takes a token. Kinds with nothing to say
    /// and a full bucket are forgotten, so the table holds only recent kinds.
    pub(crate) fn summaries(&mut self, now: Duration) -> Vec<(K, u64)> {
        let mut out = Vec::new();
        let (burst, per_second) = (self.burst, self.per_second);
        self.buckets.retain(|&kind, bucket| {
            let elapsed = now.saturating_sub(bucket.last).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
            bucket.last = bucket.last.max(now);
            if bucket.suppressed > 0 && bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                out.push((kind, std::mem::take(&mut bucket.suppressed)));
            }
            bucket.suppressed > 0 || bucket.tokens < burst
        });
        out
    }
}

/// The text added to a line that follows suppressed ones.
pub(crate) fn suffix(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} similar lines suppressed before this one)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_passes_then_lines_are_counted_and_the_next_one_says_how_many() {
        let mut r = RateLimiter::new(5, 3.0);
        for i in 0..5 {
            assert_eq!(r.check("up", ms(i)), Some(0), "line {i} of the burst");
        }
        for i in 0..100 {
            assert_eq!(r.check("up", ms(10 + i / 10)), None, "flood line {i}");
        }
        // A third of a second later there is room for one, which carries the count.
        assert_eq!(r.check("up", ms(350)), Some(100));
        assert_eq!(r.check("up", ms(351)), None);
    }

    #[test]
    fn no_kind_passes_more_than_the_rate_over_a_long_flood() {
        let mut r = RateLimiter::new(5, 3.0);
        let mut written = 0;
        // 10 seconds of a line every millisecond.
        for t in 0..10_000 {
            if r.check("refused", ms(t)).is_some() {
                written += 1;
            }
        }
        assert!(written <= 5 + 30 + 1, "{written} lines in 10 s");
        assert!(
            written >= 30,
            "{written}: the rate is let through, not everything cut"
        );
    }

    #[test]
    fn kinds_have_buckets_of_their_own() {
        let mut r = RateLimiter::new(2, 1.0);
        assert_eq!(r.check("dead", ms(0)), Some(0));
        assert_eq!(r.check("dead", ms(0)), Some(0));
        assert_eq!(r.check("dead", ms(0)), None);
        assert_eq!(
            r.check("left", ms(0)),
            Some(0),
            "another kind is not held back"
        );
    }

    #[test]
    fn suppressed_lines_are_summarised_once_the_flood_ends() {
        let mut r = RateLimiter::new(1, 2.0);
        assert_eq!(r.check("wrong key", ms(0)), Some(0));
        for _ in 0..7 {
            assert_eq!(r.check("wrong key", ms(100)), None);
        }
        assert!(r.summaries(ms(200)).is_empty(), "no room yet at 200 ms");
        assert_eq!(r.summaries(ms(600)), vec![("wrong key", 7)]);
        assert!(r.summaries(ms(700)).is_empty(), "said once");
        // Quiet and full again: the kind is forgotten.
        let _ = r.summaries(ms(5_000));
        assert!(r.buckets.is_empty());
    }

    #[test]
    fn a_clock_going_backwards_grants_nothing() {
        let mut r = RateLimiter::new(1, 1.0);
        assert_eq!(r.check("k", ms(10_000)), Some(0));
        assert_eq!(r.check("k", ms(0)), None);
        assert_eq!(r.check("k", ms(10_500)), None);
        assert_eq!(r.check("k", ms(11_000)), Some(2));
    }
}
