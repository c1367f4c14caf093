//! The closed forms and mean-field recursions the simulator's measures are compared against.
//!
//! - Push anti-entropy on the complete graph, one contact per round: Pittel (1987) shows the
//!   rounds until everyone knows are `log2 n + ln n + O(1)`.
//! - Push-pull: Karp, Schindelhauer, Shenker and Vöcking (FOCS 2000) give `log3 n + O(ln ln n)`
//!   rounds; we print `log3 n + ln ln n` as the reference value.
//! - Pull: the same analysis gives `log2 n + O(ln ln n)` (once half know, the uninformed
//!   fraction squares every round).
//! - Rumor mongering, push, feedback, coin with parameter k (Demers et al. 1987, §1.4): the
//!   residue s solves `s = e^{-(k+1)(1-s)}`; and for any push variant a site misses all of the
//!   `m·n` update messages with probability about `e^{-m}`, so `s ≈ e^{-m}`.
//!
//! Which of them applies to a given experiment is domain knowledge too, so it lives here as
//! well ([`expected`]): the command line only prints what it returns.

use gossiper_network::Topology;
use gossiper_node::{
    Feedback, LossOfInterest, Mode, Protocol, RumorConfig, RumorDirection, RumorReading,
};

use crate::config::{Faults, SimConfig, Timing};
use crate::paper::{DemersTable, PaperRow};

/// What theory and the literature say an experiment should measure, where they say anything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expected {
    /// Rounds to full spread: the closed form's text and its value (anti-entropy, complete
    /// graph, fanout 1, synchronous rounds, no faults).
    pub rounds: Option<(&'static str, f64)>,
    /// An informed fraction per round from a mean-field recursion applies ([`curve`]):
    /// anti-entropy on the complete graph ([`informed_curve`]), or push rumor mongering with
    /// feedback and a coin on the complete graph with fanout 1 under the instant reading
    /// ([`rumor_curve`]); synchronous rounds, no faults.
    pub curve: bool,
    /// The residue `s = e^{-(k+1)(1-s)}` (push, feedback, coin, complete graph, fanout 1, the
    /// instant reading).
    pub residue: Option<f64>,
    /// The row of Demers et al.'s Table 1 or 2 this experiment re-runs (n = 1000, push,
    /// feedback + counter or blind + coin, k = 1..5, complete graph, fanout 1, synchronous
    /// cycles, no faults).
    pub paper: Option<(DemersTable, PaperRow)>,
}

/// What applies to `config` (see [`Expected`]'s fields for the conditions).
pub fn expected(config: &SimConfig) -> Expected {
    let plain = config.topology == Topology::Complete && config.fanout == 1;
    let sync = config.timing == Timing::Sync;
    let no_faults = config.faults == Faults::default();
    let mut e = Expected::default();
    match config.protocol {
        Protocol::AntiEntropy => {
            e.curve = config.topology == Topology::Complete && sync && no_faults;
            if plain && sync && no_faults {
                e.rounds = Some((
                    rounds_formula(config.mode),
                    rounds(config.mode, config.nodes as f64),
                ));
            }
        }
        Protocol::Rumor(rc) => {
            if plain
                && rc.direction == RumorDirection::Push
                && rc.feedback == Feedback::Feedback
                && rc.reading == RumorReading::Instant
                && rc.anti_entropy_every == 0
                && let LossOfInterest::Coin(k) = rc.loss
            {
                e.residue = Some(rumor_residue(k));
            }
            if plain && sync && no_faults && config.nodes == DemersTable::NODES {
                e.paper = paper_row(rc);
            }
            e.curve = plain && sync && no_faults && rumor_coin_k(rc).is_some();
        }
    }
    e
}

/// The expected informed fraction after each of `rounds` rounds (`rounds + 1` points, from
/// round 0), where [`Expected::curve`] says a recursion applies.
pub fn curve(config: &SimConfig, rounds: usize) -> Option<Vec<f64>> {
    if !expected(config).curve {
        return None;
    }
    Some(match config.protocol {
        Protocol::AntiEntropy => informed_curve(config.mode, config.fanout, config.nodes, rounds),
        Protocol::Rumor(rc) => rumor_curve(rumor_coin_k(rc)?, config.nodes, rounds),
    })
}

/// The `k` of push, feedback, coin(k) rumor mongering under the instant reading with no
/// backing anti-entropy: the variant [`rumor_curve`] and [`rumor_residue`] describe.
fn rumor_coin_k(rc: RumorConfig) -> Option<u32> {
    let applies = rc.direction == RumorDirection::Push
        && rc.feedback == Feedback::Feedback
        && rc.reading == RumorReading::Instant
        && rc.anti_entropy_every == 0;
    match rc.loss {
        LossOfInterest::Coin(k) if applies => Some(k),
        _ => None,
    }
}

/// The expected informed fraction per round of push, feedback, coin(k) rumor mongering on the
/// complete graph (fanout 1, synchronous rounds, one update at one node), from the recursion on
/// the uninformed count `U` and the infective count `H` out of `n`: an uninformed node escapes
/// all `H` pushes with probability `(1 - 1/(n-1))^H`, so `new = U (1 - (1 - 1/(n-1))^H)` learn
/// it; each new node was reached by exactly one necessary contact and the other `H - new`
/// contacts were unnecessary (a second copy in the same round counts as known), each costing
/// interest with probability `1/k`: `H' = H + new - (H - new)/k`, `U' = U - new`. Its limit is
/// the residue `s = e^{-(k+1)(1-s)}` ([`rumor_residue`]) for large `n`. Returns `rounds + 1`
/// points, from round 0.
pub fn rumor_curve(k: u32, n: usize, rounds: usize) -> Vec<f64> {
    let n_f = n as f64;
    let k = f64::from(k.max(1));
    let (mut u, mut h) = (n_f - 1.0, 1.0f64);
    let mut curve = vec![1.0 - u / n_f];
    for _ in 0..rounds {
        let new = u * (1.0 - (1.0 - 1.0 / (n_f - 1.0)).max(0.0).powf(h));
        h = (h + new - (h - new) / k).max(0.0);
        u -= new;
        curve.push(1.0 - u / n_f);
    }
    curve
}

/// The published row `rc` re-runs, under either reading.
fn paper_row(rc: RumorConfig) -> Option<(DemersTable, PaperRow)> {
    let k = rc.loss.k();
    DemersTable::ALL.into_iter().find_map(|t| {
        let same = t.rumor(k, rc.reading) == rc;
        let row = t.rows().iter().find(|r| r.k == k)?;
        same.then_some((t, *row))
    })
}

/// Reference rounds to full spread on the complete graph with fanout 1, or `None` where we know
/// no closed form.
pub fn rounds(mode: Mode, n: f64) -> f64 {
    match mode {
        Mode::Push => n.log2() + n.ln(),
        Mode::PushPull => n.ln() / 3f64.ln() + n.ln().ln(),
        Mode::Pull => n.log2() + n.ln().ln(),
    }
}

/// The closed form's text, for tables.
pub fn rounds_formula(mode: Mode) -> &'static str {
    match mode {
        Mode::Push => "log2 n + ln n",
        Mode::PushPull => "log3 n + ln ln n",
        Mode::Pull => "log2 n + ln ln n",
    }
}

/// The expected informed fraction after each round on the complete graph, from the mean-field
/// recursion on the uninformed count `U` out of `n` with `I = n - U` informed and fanout `f`:
/// an uninformed node stays so if no informed node pushes to it, probability
/// `(1 - f/(n-1))^I` (push, push-pull), and if none of its `f` pulls reaches an informed node,
/// probability `((U-1)/(n-1))^f` (pull, push-pull). Returns `rounds + 1` points, from round 0.
pub fn informed_curve(mode: Mode, fanout: u32, n: usize, rounds: usize) -> Vec<f64> {
    let n_f = n as f64;
    let f = f64::from(fanout.max(1));
    let mut u = n_f - 1.0;
    let mut curve = vec![1.0 - u / n_f];
    for _ in 0..rounds {
        let informed = n_f - u;
        let not_pushed = (1.0 - f / (n_f - 1.0)).max(0.0).powf(informed);
        let not_pulled = ((u - 1.0).max(0.0) / (n_f - 1.0)).powf(f);
        let stay = match mode {
            Mode::Push => not_pushed,
            Mode::Pull => not_pulled,
            Mode::PushPull => not_pushed * not_pulled,
        };
        u *= stay;
        curve.push(1.0 - u / n_f);
    }
    curve
}

/// The residue of push rumor mongering with feedback and coin parameter `k`: the root in
/// `(0, 1)` of `s = e^{-(k+1)(1-s)}`.
pub fn rumor_residue(k: u32) -> f64 {
    let c = f64::from(k) + 1.0;
    let mut s = 0.0f64;
    for _ in 0..10_000 {
        let next = (-c * (1.0 - s)).exp();
        if (next - s).abs() < 1e-15 {
            return next;
        }
        s = next;
    }
    s
}

/// The residue a push epidemic with traffic `m` leaves: `e^{-m}`.
pub fn residue_from_traffic(m: f64) -> f64 {
    (-m).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms_have_their_textbook_values() {
        assert!((rounds(Mode::Push, 1_000.0) - (9.9658 + 6.9078)).abs() < 1e-3);
        assert!((rounds(Mode::PushPull, 1_000.0) - (6.2877 + 1.9326)).abs() < 1e-3);
        // Demers et al. quote s ≈ 0.20 for k = 1 and 0.06 for k = 2.
        assert!((rumor_residue(1) - 0.2032).abs() < 1e-3);
        assert!((rumor_residue(2) - 0.0595).abs() < 1e-3);
        let s = rumor_residue(3);
        assert!((s - (-4.0 * (1.0 - s)).exp()).abs() < 1e-12);
    }

    #[test]
    fn expected_names_what_applies_and_nothing_else() {
        let ae = SimConfig::default();
        let e = expected(&ae);
        assert_eq!(e.rounds.map(|r| r.0), Some("log3 n + ln ln n"));
        assert!(e.curve && e.residue.is_none() && e.paper.is_none());
        let mut lossy = SimConfig::default();
        lossy.faults.loss = 0.1;
        assert_eq!(expected(&lossy), Expected::default());

        let t1 = DemersTable::FeedbackCounter.config(2, RumorReading::Demers87);
        let (table, row) = expected(&t1).paper.unwrap();
        assert_eq!(
            (table, row.k, row.residue),
            (DemersTable::FeedbackCounter, 2, 0.037)
        );
        let coin = DemersTable::BlindCoin.config(3, RumorReading::Instant);
        assert_eq!(expected(&coin).paper.unwrap().1.residue, 0.060);
        assert!(expected(&coin).residue.is_none(), "blind: no formula");
        let big = SimConfig {
            nodes: 2_000,
            ..t1.clone()
        };
        assert!(
            expected(&big).paper.is_none(),
            "the tables are for n = 1000"
        );
        let Protocol::Rumor(mut rc) = t1.protocol else {
            unreachable!()
        };
        rc.loss = LossOfInterest::Coin(2);
        rc.reading = RumorReading::Instant;
        let fc = SimConfig {
            protocol: Protocol::Rumor(rc),
            ..t1
        };
        let e = expected(&fc);
        assert!(e.paper.is_none(), "feedback + coin is in neither table");
        assert!((e.residue.unwrap() - 0.0595).abs() < 1e-3);
    }

    #[test]
    fn the_rumor_recursion_ends_at_the_papers_residue() {
        for k in 1..=3 {
            let c = rumor_curve(k, 100_000, 200);
            let s = 1.0 - c[c.len() - 1];
            assert!((s - rumor_residue(k)).abs() < 0.01, "k {k}: {s}");
            assert!(c.windows(2).all(|w| w[1] >= w[0]));
        }
        let coin = |k| {
            let mut rc = DemersTable::FeedbackCounter.rumor(k, RumorReading::Instant);
            rc.loss = LossOfInterest::Coin(k);
            SimConfig {
                protocol: Protocol::Rumor(rc),
                ..SimConfig::default()
            }
        };
        assert_eq!(curve(&coin(2), 10), Some(rumor_curve(2, 1_000, 10)));
        let counter = DemersTable::FeedbackCounter.config(2, RumorReading::Instant);
        assert_eq!(curve(&counter, 10), None, "no recursion for counters");
    }

    #[test]
    fn mean_field_curves_rise_to_one_faster_with_push_pull() {
        let push = informed_curve(Mode::Push, 1, 10_000, 40);
        let pp = informed_curve(Mode::PushPull, 1, 10_000, 40);
        assert!((push[0] - 1e-4).abs() < 1e-12);
        assert!(push.windows(2).all(|w| w[1] >= w[0]));
        let first = |c: &[f64]| c.iter().position(|&x| x > 1.0 - 0.5e-4).unwrap();
        assert!(first(&pp) < first(&push));
        // Mean-field push reaches all but half a node near log2 n + ln n ≈ 22.5.
        assert!((18..=26).contains(&first(&push)), "{}", first(&push));
    }
}
