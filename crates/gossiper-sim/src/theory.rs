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

use gossiper_node::Mode;

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
