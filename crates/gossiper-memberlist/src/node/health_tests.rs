//! Lifeguard's local health on hand-driven nodes: what raises the score, what lowers it, and
//! how it stretches the probe period (memberlist 0.2.2 `state.go` `probeNode`, `refute`).

use super::tests::{deliver, node, run_stream};
use super::*;

/// Fails every stream the node asks for (a silent peer's TCP, or push-pulls we do not run).
fn refuse_streams(n: &mut Node, now: Time) {
    while let Some(s) = n.poll_stream() {
        n.handle_stream_reply(now, s.id, Err("refused".into()));
    }
}

/// Whether `bytes` (plaintext) carries a ping for `target`.
fn pings(bytes: &[u8], target: &str) -> bool {
    decode_datagram(bytes)
        .messages
        .iter()
        .any(|m| matches!(m, Message::Ping(p) if p.node == target))
}

fn accuse(a: &mut Node, incarnation: u32, now: Time) {
    let mut w = Writer::default();
    Accusation {
        incarnation,
        node: a.name().to_owned(),
        from: "b".into(),
    }
    .encode(MessageType::Suspect, &mut w);
    let from = SocketAddr::from(([127, 0, 0, 1], 1002));
    a.handle_datagram(now, from, &w.buf);
}

#[test]
fn missed_probes_without_helpers_raise_the_score_and_stretch_the_probe_period() {
    let (mut a, mut b) = (node("a", 1001), node("b", 1002));
    a.join(Time::ZERO, &[b.config.addr]);
    assert!(run_stream(&mut a, &mut b, Time::ZERO));
    assert_eq!(
        (a.health_score(), a.probe_period()),
        (0, Duration::from_secs(1))
    );
    // b is silent from here; a alone is driven, in 10 ms steps for 7 s.
    let mut now = Time::ZERO;
    let mut sent = Vec::new();
    let mut scores = Vec::new();
    for _ in 0..700 {
        now = now + Duration::from_millis(10);
        a.handle_timeout(now);
        while let Some(t) = a.poll_transmit() {
            if t.to == b.config.addr && pings(&t.bytes, "b") {
                sent.push(now);
            }
        }
        refuse_streams(&mut a, now);
        if scores.last() != Some(&a.health_score()) {
            scores.push(a.health_score());
        }
    }
    // No other member can be asked to help, so each failed probe costs 1: the first probe
    // waits 1 s, the second 2 s, the third 3 s (b is declared dead meanwhile, after the
    // 4 s suspicion of a two-node cluster, and not probed again).
    assert_eq!(scores, [0, 1, 2, 3], "score after each failed probe");
    assert!(sent.len() >= 3, "{sent:?}");
    let gap = |i: usize| sent[i + 1].saturating_since(sent[i]);
    let near =
        |d: Duration, s: u64| d.abs_diff(Duration::from_secs(s)) <= Duration::from_millis(20);
    assert!(
        near(gap(0), 1) && near(gap(1), 2),
        "probe gaps {:?}",
        (gap(0), gap(1))
    );
    assert_eq!(a.probe_period(), Duration::from_secs(4));
    assert_eq!(a.stats().degraded_probes, 2);
}

#[test]
fn refutations_raise_the_score_and_answered_probes_lower_it() {
    let (mut a, mut b) = (node("a", 1001), node("b", 1002));
    a.join(Time::ZERO, &[b.config.addr]);
    assert!(run_stream(&mut a, &mut b, Time::ZERO));
    for inc in 1..=3 {
        let inc = a.incarnation().max(inc);
        accuse(&mut a, inc, Time::ZERO);
    }
    assert_eq!(a.stats().refutes, 3);
    assert_eq!(a.health_score(), 3);
    assert_eq!(a.probe_period(), Duration::from_secs(4));
    // Both answer now: each completed probe takes 1 off, down to 0.
    let mut now = Time::ZERO;
    let mut scores = vec![a.health_score()];
    for _ in 0..200 {
        now = now + Duration::from_millis(50);
        a.handle_timeout(now);
        b.handle_timeout(now);
        deliver(&mut [&mut a, &mut b], now);
        refuse_streams(&mut a, now);
        refuse_streams(&mut b, now);
        if scores.last() != Some(&a.health_score()) {
            scores.push(a.health_score());
        }
    }
    assert_eq!(scores, [3, 2, 1, 0]);
    assert_eq!(a.probe_period(), Duration::from_secs(1));
}

/// a, b and c joined; c goes silent. Returns a's highest score over 6 s and its nack count,
/// with b answering (`b_answers`) or silent too.
fn probe_a_silent_c(b_answers: bool) -> (u32, u64) {
    let (mut a, mut b, mut c) = (node("a", 1001), node("b", 1002), node("c", 1003));
    a.join(Time::ZERO, &[b.config.addr]);
    assert!(run_stream(&mut a, &mut b, Time::ZERO));
    c.join(Time::ZERO, &[b.config.addr]);
    assert!(run_stream(&mut c, &mut b, Time::ZERO));
    let mut now = Time::ZERO;
    // Everyone learns of everyone first.
    for _ in 0..20 {
        now = now + Duration::from_millis(50);
        for n in [&mut a, &mut b, &mut c] {
            n.handle_timeout(now);
        }
        deliver(&mut [&mut a, &mut b, &mut c], now);
        for n in [&mut a, &mut b, &mut c] {
            refuse_streams(n, now);
        }
    }
    assert_eq!(a.members().len(), 3);
    let (nacks_before, mut worst) = (a.stats().nacks, a.health_score());
    for _ in 0..600 {
        now = now + Duration::from_millis(10);
        if b_answers {
            // b's timers first, so that a nack due at a's probe deadline arrives before it.
            b.handle_timeout(now);
            deliver(&mut [&mut a, &mut b], now);
        }
        a.handle_timeout(now);
        if b_answers {
            deliver(&mut [&mut a, &mut b], now);
        } else {
            while a.poll_transmit().is_some() {}
        }
        refuse_streams(&mut a, now);
        refuse_streams(&mut b, now);
        worst = worst.max(a.health_score());
    }
    (worst, a.stats().nacks - nacks_before)
}

#[test]
fn a_helpers_nack_spares_the_score_and_a_missing_nack_costs_one() {
    // b cannot reach c either and says so: the fault is c's, a's health stays at 0.
    let (worst, nacks) = probe_a_silent_c(true);
    assert!(nacks >= 1, "b nacked a's indirect probes of c");
    assert_eq!(worst, 0, "a nacked failure costs nothing");
    // b silent as well: a hears nothing back from the helper it asked, so it is likely the
    // one at fault, and every failed probe costs one per missing nack.
    let (worst, nacks) = probe_a_silent_c(false);
    assert_eq!(nacks, 0);
    assert!(worst >= 2, "score only reached {worst}");
}

#[test]
fn nacks_for_another_probe_or_past_the_cap_are_not_counted() {
    let (mut a, mut b) = (node("a", 1001), node("b", 1002));
    a.join(Time::ZERO, &[b.config.addr]);
    assert!(run_stream(&mut a, &mut b, Time::ZERO));
    let mut now = Time::ZERO;
    while a.probe.is_none() {
        now = now + Duration::from_millis(10);
        a.handle_timeout(now);
    }
    let seq = a.probe.as_ref().map(|p| p.seq).unwrap();
    let nack = |seq_no| {
        let mut w = Writer::default();
        NackResp { seq_no }.encode(&mut w);
        w.buf
    };
    a.handle_datagram(now, b.config.addr, &nack(seq.wrapping_add(1)));
    assert_eq!(a.stats().nacks, 0, "another probe's nack");
    for _ in 0..10 {
        a.handle_datagram(now, b.config.addr, &nack(seq));
    }
    assert_eq!(a.stats().nacks, 4, "at most indirect_checks + 1");
}
