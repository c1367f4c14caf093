//! Lifeguard's local health of `gossiper agent --protocol memberlist` among real Serf agents
//! (Debian's `serf` 0.9.4): when every peer stops answering (both Serf agents `SIGSTOP`ped),
//! gossiper's probes fail with no helper nacking, so its health score climbs and its probe
//! period stretches; once they answer again the score falls back to 0 and the cluster is
//! whole. Every wait is bounded; every child is killed when its guard drops.

use std::process::Command;
use std::time::Duration;

mod serf_support;
use serf_support::*;

fn signal(s: &Serf, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &s._child.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

#[test]
fn a_cut_off_gossiper_raises_its_health_score_and_recovers() {
    let s1 = Serf::start("s1", None, &[]);
    let s2 = Serf::start("s2", Some(&s1), &[]);
    let g1 = Gossiper::start("g1", &s1, &[]);
    let score = || g1.metric("gossiper_memberlist_health_score");
    wait_until(Duration::from_secs(10), "g1 lists both alive", || {
        g1.status_of("s1").as_deref() == Some("alive")
            && g1.status_of("s2").as_deref() == Some("alive")
    });
    assert_eq!(score(), Some(0.0));

    signal(&s1, "-STOP");
    signal(&s2, "-STOP");
    // Each failed probe costs one (its helper's nack never comes): 1 after the first 1 s
    // probe, 2 after the next (2 s), 3 after the one after (3 s).
    let t = wait_until(Duration::from_secs(15), "g1's score reaches 3", || {
        score() >= Some(3.0)
    });
    eprintln!("health score 3 after {t:?} cut off");
    // After the first failure the next two probes take 2 s and 3 s: at least 5 s in all, where
    // probes that did not stretch would take 2 s more (about 3 s).
    assert!(
        t >= Duration::from_millis(4500),
        "the probe period stretched: 1 + 2 + 3 s of probes, not 3 × 1 s ({t:?})"
    );
    assert!(g1.metric("gossiper_memberlist_degraded_probes_total") >= Some(2.0));

    signal(&s1, "-CONT");
    signal(&s2, "-CONT");
    let t = wait_until(Duration::from_secs(20), "g1's score is back to 0", || {
        score() == Some(0.0)
    });
    eprintln!("health score back to 0 after {t:?}");
    wait_until(Duration::from_secs(20), "all alive again", || {
        ["s1", "s2", "g1"].iter().all(|n| {
            s1.status(n).as_deref() == Some("alive") && g1.status_of(n).as_deref() == Some("alive")
        })
    });
}
