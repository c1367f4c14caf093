//! Cluster scenarios: several `ClusterNode`s on a virtual network with virtual time, each test
//! named after the behaviour it checks.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use gossiper_types::{NodeId, Time};
use proptest::prelude::*;

use crate::wire::EnvelopeKind;
use crate::*;

/// A virtual LAN: nodes by address, a clock, a set of cut links, a wiretap.
struct Net {
    nodes: Vec<Option<ClusterNode>>,
    addrs: Vec<SocketAddr>,
    now: Time,
    cut: BTreeSet<(usize, usize)>,
    tap: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    max_datagram: usize,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7_000 + i as u16))
}

thread_local! {
    /// The detector this test thread's configurations use (see `both_detectors!`).
    static DETECTOR: std::cell::Cell<Detector> = const { std::cell::Cell::new(Detector::Swim) };
}

/// Runs a scenario `fn(Detector)` once per detector, as two tests named `swim` and `phi`.
macro_rules! both_detectors {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[test]
            fn swim() {
                DETECTOR.set(Detector::Swim);
                super::$name();
            }
            #[test]
            fn phi() {
                DETECTOR.set(Detector::Phi);
                super::$name();
            }
        }
    )*};
}

fn config(i: usize, generation: u64) -> ClusterConfig {
    let mut c = ClusterConfig::new(format!("n{i}"), addr(i), generation);
    c.detector = DETECTOR.get();
    c.interval_ms = 100;
    c.dead_grace_ms = 30_000;
    c.tombstone_grace_ms = 30_000;
    if i > 0 {
        c.seeds = vec![addr(0)];
    }
    c
}

impl Net {
    fn new(n: usize, tweak: impl Fn(&mut ClusterConfig)) -> Net {
        let mut net = Net {
            nodes: Vec::new(),
            addrs: (0..n).map(addr).collect(),
            now: Time::ZERO,
            cut: BTreeSet::new(),
            tap: Vec::new(),
            max_datagram: 0,
        };
        for i in 0..n {
            let mut c = config(i, 1);
            tweak(&mut c);
            net.nodes
                .push(Some(ClusterNode::new(c, Time::ZERO, i as u64).unwrap()));
        }
        net
    }

    fn node(&self, i: usize) -> &ClusterNode {
        self.nodes[i].as_ref().unwrap()
    }

    fn node_mut(&mut self, i: usize) -> &mut ClusterNode {
        self.nodes[i].as_mut().unwrap()
    }

    /// Runs for `ms` of virtual time in 5 ms steps, delivering datagrams within a step.
    fn run(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while self.now < end {
            self.now = self.now + Duration::from_millis(5);
            for i in 0..self.nodes.len() {
                if let Some(n) = self.nodes[i].as_mut() {
                    n.handle_timeout(self.now);
                }
            }
            self.deliver();
        }
    }

    fn deliver(&mut self) {
        for _ in 0..50 {
            let mut pending = Vec::new();
            for i in 0..self.nodes.len() {
                if let Some(n) = self.nodes[i].as_mut() {
                    while let Some(t) = n.poll_transmit() {
                        pending.push((i, t));
                    }
                }
            }
            if pending.is_empty() {
                return;
            }
            for (from, t) in pending {
                self.max_datagram = self.max_datagram.max(t.bytes.len());
                self.tap.push((self.addrs[from], t.to, t.bytes.clone()));
                let Some(to) = self.addrs.iter().position(|&a| a == t.to) else {
                    continue;
                };
                if self.cut.contains(&(from, to)) || self.cut.contains(&(to, from)) {
                    continue;
                }
                let mut bytes = t.bytes;
                let now = self.now;
                if let Some(n) = self.nodes[to].as_mut() {
                    let _ = n.handle_datagram(now, self.addrs[from], &mut bytes);
                }
            }
        }
    }

    fn status(&self, observer: usize, of: usize) -> Option<MemberStatus> {
        let name = format!("n{of}");
        self.node(observer)
            .members(self.now)
            .into_iter()
            .find(|m| m.name == name)
            .map(|m| m.status)
    }

    fn value(&self, observer: usize, owner: usize, key: &str) -> Option<Vec<u8>> {
        let id = NodeId::from_name(&format!("n{owner}"));
        Some(
            self.node(observer)
                .state()
                .node(id)?
                .get(key)?
                .value
                .clone(),
        )
    }

    /// Drains every node's events; returns how many were suspect or down verdicts.
    fn verdicts(&mut self) -> usize {
        let mut verdicts = 0;
        for node in self.nodes.iter_mut().flatten() {
            while let Some(e) = node.poll_event() {
                if matches!(
                    e,
                    ClusterEvent::MemberSuspect(_) | ClusterEvent::MemberDown(_)
                ) {
                    verdicts += 1;
                }
            }
        }
        verdicts
    }

    /// Stops node `victim`; returns how long until every other node marks it dead (at most
    /// 10 s), checked every `step_ms`.
    fn crash_and_detect(&mut self, victim: usize, step_ms: u64) -> Duration {
        self.nodes[victim] = None;
        let killed = self.now;
        while !self.all_see(victim, MemberStatus::Dead)
            && self.now - killed < Duration::from_secs(10)
        {
            self.run(step_ms);
        }
        self.now - killed
    }

    fn all_see(&self, of: usize, status: MemberStatus) -> bool {
        (0..self.nodes.len())
            .filter(|&i| i != of && self.nodes[i].is_some())
            .all(|i| self.status(i, of) == Some(status))
    }
}

fn nodes_join_through_a_seed_and_converge_on_keys() {
    let mut net = Net::new(8, |_| {});
    net.run(2_000);
    for i in 0..8 {
        assert_eq!(net.node(i).members(net.now).len(), 8, "n{i} knows everyone");
        assert!(
            net.node(i)
                .members(net.now)
                .iter()
                .all(|m| m.status == MemberStatus::Alive)
        );
    }
    let now = net.now;
    net.node_mut(3).set(now, "colour", b"blue", None).unwrap();
    // Pushed and forwarded at once: no round needed.
    net.deliver();
    for i in 0..8 {
        assert_eq!(
            net.value(i, 3, "colour").as_deref(),
            Some(&b"blue"[..]),
            "n{i}"
        );
    }
    assert!(net.max_datagram <= 1_400);
}

fn a_stopped_node_is_declared_dead_and_a_restart_supersedes_it() {
    let mut net = Net::new(5, |_| {});
    net.run(2_000);
    let now = net.now;
    net.node_mut(2).set(now, "old", b"1", None).unwrap();
    net.node_mut(2).set(now, "k", b"old", None).unwrap();
    net.run(500);
    net.nodes[2] = None;
    let stopped = net.now;
    while !net.all_see(2, MemberStatus::Dead) {
        net.run(100);
        assert!(
            net.now - stopped < Duration::from_secs(5),
            "detected within 5 s"
        );
    }
    let detection = net.now - stopped;
    assert!(
        detection > Duration::from_millis(300),
        "no instant verdict: {detection:?}"
    );
    // Restart with the same name and a new generation, on another port.
    let mut c = config(2, 2);
    c.addr = addr(50);
    net.addrs[2] = addr(50);
    let mut restarted = ClusterNode::new(c, net.now, 99).unwrap();
    restarted.set(net.now, "k", b"new", None).unwrap();
    net.nodes[2] = Some(restarted);
    net.run(2_000);
    assert!(net.all_see(2, MemberStatus::Alive));
    for i in [0, 1, 3, 4] {
        assert_eq!(net.value(i, 2, "k").as_deref(), Some(&b"new"[..]));
        assert_eq!(net.value(i, 2, "old"), None, "no zombie key on n{i}");
        assert_eq!(net.node(i).members(net.now).len(), 5, "one entry per name");
    }
}

fn a_joiner_is_known_everywhere_and_knows_everyone_within_a_few_rounds() {
    let mut net = Net::new(60, |_| {});
    net.run(3_000);
    let mut c = config(60, 1);
    c.seeds = vec![addr(0)];
    net.addrs.push(addr(60));
    net.nodes
        .push(Some(ClusterNode::new(c, net.now, 60).unwrap()));
    let start = net.now;
    while !(0..61).all(|i| net.node(i).members(net.now).len() == 61) {
        net.run(5);
        assert!(
            net.now - start < Duration::from_secs(5),
            "join never settled"
        );
    }
    let took = net.now - start;
    assert!(
        took <= Duration::from_millis(300),
        "settled in {took:?}, want ≤ 3 rounds"
    );
}

fn a_graceful_leave_is_recorded_as_left_then_forgotten() {
    let mut net = Net::new(4, |c| c.dead_grace_ms = 3_000);
    net.run(2_000);
    let now = net.now;
    net.node_mut(1).leave(now);
    net.deliver();
    net.nodes[1] = None;
    net.run(200);
    assert!(net.all_see(1, MemberStatus::Left));
    net.run(5_000);
    for i in [0, 2, 3] {
        assert_eq!(net.status(i, 1), None, "n{i} forgot n1");
        assert_eq!(net.node(i).members(net.now).len(), 3);
    }
}

fn a_partition_heals_through_gossip_to_dead_nodes() {
    let mut net = Net::new(6, |_| {});
    net.run(2_000);
    for a in 0..3 {
        for b in 3..6 {
            net.cut.insert((a, b));
        }
    }
    net.run(4_000);
    assert_eq!(net.status(0, 4), Some(MemberStatus::Dead));
    assert_eq!(net.status(4, 0), Some(MemberStatus::Dead));
    let now = net.now;
    net.node_mut(4).set(now, "during", b"split", None).unwrap();
    net.cut.clear();
    net.run(4_000);
    for i in 0..6 {
        for j in 0..6 {
            if i != j {
                assert_eq!(
                    net.status(i, j),
                    Some(MemberStatus::Alive),
                    "n{i} sees n{j}"
                );
            }
        }
        assert_eq!(net.value(i, 4, "during").as_deref(), Some(&b"split"[..]));
    }
}

#[test]
fn a_node_forgotten_during_a_long_partition_comes_back_with_a_new_generation() {
    DETECTOR.set(Detector::Phi);
    let mut net = Net::new(3, |c| c.dead_grace_ms = 2_000);
    net.run(2_000);
    net.cut.insert((0, 2));
    net.cut.insert((1, 2));
    net.run(5_000);
    assert_eq!(net.status(0, 2), None, "n2 was forgotten");
    net.cut.clear();
    net.run(6_000);
    assert_eq!(net.status(0, 2), Some(MemberStatus::Alive));
    assert_eq!(net.status(2, 0), Some(MemberStatus::Alive));
    assert!(
        net.node(2).generation() > 1,
        "n2 came back as a new generation"
    );
    assert!(net.node(0).stats().dropped(DropReason::Forgotten) > 0);
}

fn other_clusters_and_wrong_keys_are_never_admitted() {
    let key = |b: u8| Some(Keyring::new(&[[b; 32]]).unwrap());
    let ring = Keyring::new(&[[1; 32], [9; 32]]).unwrap();
    let mut net = Net::new(4, |c| c.keyring = Some(ring.clone()));
    // n3 has the wrong key; n2 is in another cluster (same key).
    net.nodes[3] = Some({
        let mut c = config(3, 1);
        c.keyring = key(2);
        ClusterNode::new(c, Time::ZERO, 3).unwrap()
    });
    net.nodes[2] = Some({
        let mut c = config(2, 1);
        c.keyring = key(1);
        c.cluster = "other".into();
        ClusterNode::new(c, Time::ZERO, 2).unwrap()
    });
    net.run(3_000);
    let names: Vec<String> = net
        .node(0)
        .members(net.now)
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["n0", "n1"]);
    let s = net.node(0).stats();
    assert!(s.dropped(DropReason::AuthFailure) > 0);
    assert!(s.dropped(DropReason::ForeignCluster) > 0);
    assert_eq!(
        net.node(3).members(net.now).len(),
        1,
        "the stranger learned nothing"
    );
    // Key rotation: everyone holds [old, new]; n1 now seals with new; n0 still with old.
    let mut c = config(1, 2);
    c.keyring = Some(Keyring::new(&[[9; 32], [1; 32]]).unwrap());
    net.nodes[1] = Some(ClusterNode::new(c, net.now, 11).unwrap());
    net.run(2_000);
    assert_eq!(net.status(0, 1), Some(MemberStatus::Alive));
}

fn replayed_datagrams_do_not_roll_state_back() {
    let mut net = Net::new(2, |c| c.keyring = Some(Keyring::new(&[[5; 32]]).unwrap()));
    net.run(1_000);
    let now = net.now;
    net.node_mut(1).set(now, "k", b"v1", None).unwrap();
    net.tap.clear();
    net.deliver();
    let old: Vec<_> = net.tap.clone();
    net.run(300);
    let now = net.now;
    net.node_mut(1).set(now, "k", b"v2", None).unwrap();
    net.run(300);
    assert_eq!(net.value(0, 1, "k").as_deref(), Some(&b"v2"[..]));
    for (from, _, mut bytes) in old {
        let now = net.now;
        let _ = net.node_mut(0).handle_datagram(now, from, &mut bytes);
    }
    assert_eq!(net.value(0, 1, "k").as_deref(), Some(&b"v2"[..]));
}

fn datagrams_fit_the_mtu_at_a_hundred_nodes_with_big_values() {
    let mut net = Net::new(100, |c| c.mtu = 512);
    net.run(3_000);
    let now = net.now;
    for i in 0..10 {
        let max = net.node(i).max_value_len("big");
        net.node_mut(i)
            .set(now, "big", &vec![7; max], None)
            .unwrap();
        assert!(
            net.node_mut(i)
                .set(now, "big", &vec![7; max + 1], None)
                .is_err()
        );
    }
    net.run(3_000);
    assert!(
        net.max_datagram <= 512,
        "largest datagram {}",
        net.max_datagram
    );
    for i in 0..100 {
        assert_eq!(net.node(i).members(net.now).len(), 100, "n{i}");
        assert!(net.value(i, 9, "big").is_some());
    }
}

fn ttl_keys_expire_and_tombstones_are_collected() {
    let mut net = Net::new(3, |c| c.tombstone_grace_ms = 1_000);
    net.run(1_000);
    let now = net.now;
    net.node_mut(0)
        .set(now, "lease", b"x", Some(Duration::from_millis(500)))
        .unwrap();
    net.run(200);
    assert!(net.value(2, 0, "lease").is_some());
    net.run(600);
    assert_eq!(net.value(2, 0, "lease"), None, "expired everywhere");
    net.run(2_000);
    let id = net.node(0).id();
    for i in 0..3 {
        let rec = net.node(i).state().node(id).unwrap();
        assert!(rec.entry("lease").is_none(), "tombstone collected on n{i}");
        assert!(rec.last_gc_version > 0);
    }
}

fn reserved_and_oversized_keys_are_refused() {
    let mut net = Net::new(1, |_| {});
    let now = net.now;
    let n = net.node_mut(0);
    assert!(n.set(now, "__left", b"1", None).is_err());
    assert!(n.set(now, "", b"1", None).is_err());
    assert!(n.set(now, &"k".repeat(300), b"1", None).is_err());
    assert_eq!(n.delete(now, "absent").unwrap(), None);
}

both_detectors!(
    nodes_join_through_a_seed_and_converge_on_keys,
    a_stopped_node_is_declared_dead_and_a_restart_supersedes_it,
    a_joiner_is_known_everywhere_and_knows_everyone_within_a_few_rounds,
    a_graceful_leave_is_recorded_as_left_then_forgotten,
    a_partition_heals_through_gossip_to_dead_nodes,
    other_clusters_and_wrong_keys_are_never_admitted,
    replayed_datagrams_do_not_roll_state_back,
    datagrams_fit_the_mtu_at_a_hundred_nodes_with_big_values,
    ttl_keys_expire_and_tombstones_are_collected,
    reserved_and_oversized_keys_are_refused,
    a_staggered_start_of_a_hundred_settles_within_250_ms
);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes, and real datagrams with bytes flipped or cut, never panic and never
    /// change the state.
    #[test]
    fn junk_never_panics_nor_changes_state(
        junk in proptest::collection::vec(any::<u8>(), 0..1_500),
        flip in any::<usize>(),
        cut in any::<usize>(),
        keyed in any::<bool>(),
    ) {
        let ring = keyed.then(|| Keyring::new(&[[1; 32]]).unwrap());
        let mut net = Net::new(2, |c| c.keyring = ring.clone());
        net.run(600);
        let before = net.node(0).state().clone();
        let mut bytes = junk.clone();
        prop_assert!(net.node_mut(0).handle_datagram(Time::ZERO, addr(9), &mut bytes).is_err());
        prop_assert_eq!(net.node(0).state(), &before);
        if let Some((_, _, real)) = net.tap.iter().rev().find(|(_, to, _)| *to == addr(0)) {
            let mut flipped = real.clone();
            let i = flip % flipped.len();
            flipped[i] ^= 0x5a;
            let mut truncated = real[..cut % real.len()].to_vec();
            for bad in [&mut flipped, &mut truncated] {
                let r = net.node_mut(0).handle_datagram(Time::ZERO, addr(1), bad);
                if keyed {
                    prop_assert!(r.is_err());
                    prop_assert_eq!(net.node(0).state(), &before);
                }
            }
        }
    }
}

/// At 100 nodes with the default settings (interval 100 ms), an idle cluster sends under the
/// 30 KB/s per node the issue allows, never suspects a live node, and every survivor declares a
/// stopped node dead within 2 s. Virtual time, so the figures are exact for this seed; print them
/// with `cargo test --release -p gossiper-node idle_hundred -- --nocapture`.
#[test]
fn an_idle_hundred_stays_quiet_and_detects_a_crash_within_two_seconds() {
    DETECTOR.set(Detector::Phi);
    let mut net = Net::new(100, |_| {});
    net.run(3_000);
    let before = net.verdicts();
    net.tap.clear();
    net.run(5_000);
    let verdicts = before + net.verdicts();
    let total: u64 = net.tap.iter().map(|t| t.2.len() as u64).sum();
    let kb_per_node_s = total as f64 / 100.0 / 5.0 / 1e3;
    let detection = net.crash_and_detect(99, 50);
    println!(
        "idle {kb_per_node_s:.1} KB/s per node, {verdicts} false verdicts, all detected in {detection:?}"
    );
    assert!(
        kb_per_node_s < 30.0,
        "idle traffic {kb_per_node_s:.1} KB/s per node"
    );
    assert_eq!(verdicts, 0, "live nodes were suspected or declared dead");
    assert!(
        detection < Duration::from_secs(2),
        "detection took {detection:?}"
    );
}

/// 100 nodes started 10 ms apart, each joining through the first: within 250 ms of the last
/// start (φ) or 1 s (SWIM, whose last gaps gossip missed wait for a node's list to be still
/// for 300 ms before a whole-table exchange repairs them: 435 ms here) every node lists all 100. Prints the progress with
/// `cargo test --release -p gossiper-cluster staggered -- --nocapture`.
fn a_staggered_start_of_a_hundred_settles_within_250_ms() {
    let mut net = Net::new(1, |_| {});
    for i in 1..100 {
        net.run(10);
        net.addrs.push(addr(i));
        let now = net.now;
        net.nodes
            .push(Some(ClusterNode::new(config(i, 1), now, i as u64).unwrap()));
    }
    let start = net.now;
    let mut last_report = Duration::ZERO;
    while !(0..100).all(|i| net.node(i).members(net.now).len() == 100) {
        net.run(5);
        let t = net.now - start;
        if t - last_report >= Duration::from_millis(100) {
            last_report = t;
            let behind: Vec<usize> = (0..100)
                .map(|i| net.node(i).members(net.now).len())
                .filter(|&m| m < 100)
                .collect();
            println!(
                "{t:?}: {} nodes behind, views {:?}",
                behind.len(),
                &behind[..behind.len().min(10)]
            );
        }
        assert!(
            t < Duration::from_millis(if DETECTOR.get() == Detector::Phi {
                250
            } else {
                1_000
            }),
            "not settled {t:?} after the last start"
        );
    }
    println!("settled {:?} after the last start", net.now - start);
}

/// SWIM's promise at N = 100: idle, a node sends one ping, a few acks and a fingerprint per
/// period (under 2 KB/s, whatever N), no live node is ever suspected, replicas in sync stop at
/// the 16-byte fingerprints, and a crash is known to every live node within 1.5 s.
#[test]
fn an_idle_hundred_under_swim_costs_under_2_kb_per_node_and_detects_a_crash_in_1_5_s() {
    DETECTOR.set(Detector::Swim);
    let mut net = Net::new(100, |_| {});
    net.run(3_000);
    for i in 0..10 {
        let now = net.now;
        net.node_mut(i * 7).set(now, "k", b"v", None).unwrap();
    }
    net.run(2_000);
    let before = net.verdicts();
    let mismatched =
        |net: &Net| -> u64 { (0..100).map(|i| net.node(i).stats().syncs_mismatched).sum() };
    let (mismatched_before, syncs_before): (u64, u64) = (
        mismatched(&net),
        (0..100).map(|i| net.node(i).stats().syncs_received).sum(),
    );
    net.tap.clear();
    net.run(5_000);
    let verdicts = before + net.verdicts();
    let total: u64 = net.tap.iter().map(|t| t.2.len() as u64).sum();
    let bytes_per_node_s = total as f64 / 100.0 / 5.0;
    let syncs: u64 = (0..100).map(|i| net.node(i).stats().syncs_received).sum();
    assert!(syncs - syncs_before > 1_000, "fingerprints kept flowing");
    assert_eq!(
        mismatched(&net),
        mismatched_before,
        "replicas in sync never went past the fingerprint"
    );
    for i in 0..100 {
        assert_eq!(net.value(i, 7, "k").as_deref(), Some(&b"v"[..]), "n{i}");
    }
    let detection = net.crash_and_detect(99, 10);
    println!(
        "swim idle {bytes_per_node_s:.0} B/s per node, {verdicts} false verdicts, all detected in {detection:?}"
    );
    assert!(
        bytes_per_node_s < 2_000.0,
        "idle traffic {bytes_per_node_s:.0} B/s per node"
    );
    assert_eq!(verdicts, 0, "live nodes were suspected or declared dead");
    assert!(
        detection < Duration::from_millis(1_500),
        "detection took {detection:?}"
    );
}

/// A Sync datagram is two fingerprints and nothing else: 16 bytes of payload at any N (checked
/// here against a 1,000-node state, which an exchange in sync never sends a digest of).
#[test]
fn an_in_sync_exchange_stays_under_the_byte_bound_at_a_thousand_nodes() {
    let mut a = ClusterState::new();
    for i in 0..1_000u64 {
        a.start_node(NodeId(i), 1);
        a.set(NodeId(i), "k", vec![1; 16]);
    }
    let b = a.clone();
    assert_eq!(a.fingerprint(), b.fingerprint());
    let payload = a.fingerprint().to_le_bytes();
    assert!(payload.len() <= 64);
    // The whole datagram, envelope included, of a node that holds that state.
    DETECTOR.set(Detector::Swim);
    let mut net = Net::new(2, |_| {});
    net.run(1_000);
    net.tap.clear();
    net.run(1_000);
    let codec = crate::Codec::new("default", None);
    let sync_sizes: Vec<usize> = net
        .tap
        .iter()
        .filter_map(|(_, _, bytes)| {
            let mut bytes = bytes.clone();
            let env = codec.open(&mut bytes, 1_400).ok()?;
            (env.kind == EnvelopeKind::Sync).then_some(env.payload.len())
        })
        .collect();
    assert!(!sync_sizes.is_empty());
    assert!(sync_sizes.iter().all(|&n| n == 16), "{sync_sizes:?}");
}

/// A write whose pushes are all lost is still everywhere within a few seconds under SWIM: the
/// fingerprint exchanges (every 200 ms per node) find the difference and open digest
/// exchanges, each followed at once by another comparison while it brings news.
#[test]
fn a_write_whose_pushes_are_lost_is_repaired_by_fingerprints_within_two_seconds() {
    DETECTOR.set(Detector::Swim);
    let mut net = Net::new(30, |_| {});
    net.run(2_000);
    let now = net.now;
    net.node_mut(7).set(now, "k", b"v", None).unwrap();
    // Lose every datagram the write produced (the pushes).
    while net.node_mut(7).poll_transmit().is_some() {}
    let written = net.now;
    while !(0..30).all(|i| net.value(i, 7, "k").is_some()) {
        net.run(10);
        assert!(
            net.now - written < Duration::from_secs(2),
            "not repaired within 2 s"
        );
    }
    println!("repaired everywhere in {:?}", net.now - written);
}

/// Hostile input on the SWIM-era envelopes: Syncs of the wrong size are dropped and counted;
/// a flood of unknown senders gets at most one small Whois each (64 outstanding at most) and
/// nothing bigger; an accusation at the largest incarnation neither panics nor wraps.
#[test]
fn bad_syncs_whois_floods_and_maximal_incarnations_are_harmless() {
    DETECTOR.set(Detector::Swim);
    let mut net = Net::new(3, |_| {});
    net.run(1_000);
    let now = net.now;
    let mut codec = crate::Codec::new("default", None);
    let victim = addr(0);
    let before = net.node(0).stats().dropped(DropReason::Garbage);
    for len in [0usize, 8, 15, 17, 1_000] {
        let mut out = Vec::new();
        codec.seal(EnvelopeKind::Sync, NodeId(77), 1, &vec![0; len], &mut out);
        assert!(
            net.node_mut(0)
                .handle_datagram(now, addr(9), &mut out)
                .is_err()
        );
    }
    assert_eq!(net.node(0).stats().dropped(DropReason::Garbage), before + 5);
    // 1,000 forged senders, each pinging once: at most one small reply datagram each.
    while net.node_mut(0).poll_transmit().is_some() {}
    let mut ping = Vec::new();
    crate::swim::wire::put_header(
        &mut ping,
        &crate::swim::wire::Header::Ping {
            seq: 1,
            target: net.node(0).id(),
        },
    );
    crate::swim::wire::put_count(&mut ping, 0);
    let mut bytes_in = 0;
    for i in 0..1_000u64 {
        let mut out = Vec::new();
        codec.seal(EnvelopeKind::Swim, NodeId(1_000 + i), 1, &ping, &mut out);
        bytes_in += out.len();
        let _ = net.node_mut(0).handle_datagram(now, victim, &mut out);
    }
    let mut bytes_out = 0;
    while let Some(t) = net.node_mut(0).poll_transmit() {
        bytes_out += t.bytes.len();
    }
    assert!(
        bytes_out <= 3 * bytes_in,
        "{bytes_out} bytes out for {bytes_in} in"
    );
    // An accusation of n1 at u64::MAX: n1 refutes without wrapping, nobody panics.
    let mut p = Vec::new();
    crate::swim::wire::put_header(&mut p, &crate::swim::wire::Header::Gossip);
    crate::swim::wire::put_count(&mut p, 1);
    crate::swim::wire::put_update(
        &mut p,
        &crate::swim::wire::Update {
            kind: crate::swim::wire::Kind::Suspect,
            id: net.node(1).id(),
            generation: 1,
            incarnation: u64::MAX,
            from: NodeId(5),
            name: "",
            addr: None,
        },
    );
    let mut out = Vec::new();
    codec.seal(EnvelopeKind::Swim, net.node(2).id(), 1, &p, &mut out);
    net.node_mut(1)
        .handle_datagram(now, addr(2), &mut out)
        .unwrap();
    net.run(500);
    let inc = net.node(1).members(net.now)[0].incarnation;
    assert_eq!(inc, u64::MAX, "saturated, not wrapped");
}

mod authority;
mod broadcast;
mod ghosts;
mod reflection;
mod replay;
mod runtime_changes;
mod table_bound;
