//! Ghost members: an outsider floods an unkeyed cluster with thousands of forged member
//! records whose addresses never answer. The real members must not be accused, writes must
//! still reach every real member, and the ghosts must be gone within a few suspicion periods.

use crate::swim::wire::{self, Header, Kind, Update};

use super::*;

/// SWIM Gossip payloads announcing `count` ghosts (`ghost{i}` at an address nobody answers),
/// packed as a forger would, 20 to a datagram.
fn ghost_payloads(count: usize) -> Vec<Vec<u8>> {
    let names: Vec<String> = (0..count).map(|i| format!("ghost{i}")).collect();
    names
        .chunks(20)
        .enumerate()
        .map(|(c, chunk)| {
            let mut p = Vec::new();
            wire::put_header(&mut p, &Header::Gossip);
            wire::put_count(&mut p, chunk.len());
            for (j, name) in chunk.iter().enumerate() {
                let i = c * 20 + j;
                let id = NodeId::from_name(name);
                wire::put_update(
                    &mut p,
                    &Update {
                        kind: Kind::Alive,
                        id,
                        generation: 1,
                        incarnation: 0,
                        from: id,
                        name,
                        addr: Some(SocketAddr::from(([10, 9, (i >> 8) as u8, i as u8], 7946))),
                    },
                );
            }
            p
        })
        .collect()
}

fn ghosts_listed(net: &Net, observer: usize) -> usize {
    net.node(observer)
        .members(net.now)
        .iter()
        .filter(|m| m.name.starts_with("ghost"))
        .count()
}

#[test]
fn five_thousand_ghosts_harm_no_real_member_and_are_gone_within_a_few_suspicion_periods() {
    DETECTOR.set(Detector::Swim);
    let mut net = Net::new(4, |_| {});
    net.run(2_000);
    net.verdicts();
    let members_before = net.node(0).members(net.now).len();
    let mut codec = Codec::new("default", None);
    let forger = NodeId::from_name("forger");
    // 250 datagrams in 0.7 s, spread over the four members.
    for (k, p) in ghost_payloads(5_000).iter().enumerate() {
        let mut out = Vec::new();
        codec.seal(EnvelopeKind::Swim, forger, 1, p, &mut out);
        let now = net.now;
        let _ = net.node_mut(k % 4).handle_datagram(
            now,
            SocketAddr::from(([10, 8, 0, 1], 7946)),
            &mut out,
        );
        if k % 12 == 11 {
            net.run(35);
        }
    }
    let flood_end = net.now;
    // A write made in the aftermath reaches every real member.
    let now = net.now;
    net.node_mut(1).set(now, "fresh", b"v", None).unwrap();
    let (mut reached_at, mut gone_at, mut peak) = (None, None, 0);
    let mut real_verdicts = 0;
    let real: Vec<NodeId> = (0..4)
        .map(|i| NodeId::from_name(&format!("n{i}")))
        .collect();
    while net.now - flood_end < Duration::from_secs(60) {
        net.run(100);
        for node in net.nodes.iter_mut().flatten() {
            while let Some(e) = node.poll_event() {
                if let ClusterEvent::MemberSuspect(id) | ClusterEvent::MemberDown(id) = e
                    && real.contains(&id)
                {
                    real_verdicts += 1;
                }
            }
        }
        if reached_at.is_none() && (0..4).all(|i| net.value(i, 1, "fresh").is_some()) {
            reached_at = Some(net.now - flood_end);
        }
        let listed = (0..4).map(|i| ghosts_listed(&net, i)).max().unwrap_or(0);
        peak = peak.max(listed);
        if listed == 0 && (0..4).all(|i| net.node(i).members(net.now).len() == members_before) {
            gone_at = Some(net.now - flood_end);
            break;
        }
    }
    let stats = net.node(0).swim_stats().unwrap();
    println!(
        "peak {peak} ghosts listed at one member; write at all after {reached_at:?}; ghosts \
         gone after {gone_at:?}; {} verification pings, {} ghosts suspected by n0",
        stats.verifications_sent, stats.unheard_suspected
    );
    assert!(peak >= 1_000, "the flood landed ({peak} ghosts at most)");
    assert_eq!(
        real_verdicts, 0,
        "no real member suspected or declared dead"
    );
    let reached = reached_at.expect("the write reached every real member");
    assert!(reached <= Duration::from_secs(2), "{reached:?}");
    // The longest suspicion at this size is 6 × 4 × log10(5,004) × 100 ms ≈ 8.9 s.
    let gone = gone_at.expect("the ghosts left every table");
    assert!(gone <= Duration::from_secs(30), "{gone:?}");
}
