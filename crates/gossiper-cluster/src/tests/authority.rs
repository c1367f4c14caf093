//! Forged claims about a node: counters at their maximum, newer generations, another address.
//! Each scenario sends the forged datagram an outsider could send to an unkeyed cluster and
//! checks that nothing acknowledged is lost and that the node itself has the last word.

use gossiper_types::codec::{put_bytes, put_varint};
use gossiper_types::{MessageKind, State};

use super::*;
use crate::state::MAX_VERSION;

/// A Push carrying one delta block about `id`, as a forger would encode it.
fn forged_push(id: NodeId, generation: u64, upto: u64, entries: &[(&str, u64, &[u8])]) -> Vec<u8> {
    let mut p = vec![MessageKind::Push as u8];
    p.extend_from_slice(&id.0.to_le_bytes());
    p.push(0); // flags
    put_varint(&mut p, generation);
    put_varint(&mut p, 1); // heartbeat
    put_varint(&mut p, 0); // from
    put_varint(&mut p, upto);
    put_varint(&mut p, entries.len() as u64);
    for &(key, version, value) in entries {
        put_bytes(&mut p, key.as_bytes());
        put_varint(&mut p, version);
        p.push(0); // not deleted
        put_bytes(&mut p, value);
    }
    p
}

/// Seals `payload` as if `sender` (at `generation`) sent it, and hands it to node `to`.
fn inject(
    net: &mut Net,
    to: usize,
    sender: NodeId,
    generation: u64,
    kind: EnvelopeKind,
    payload: &[u8],
) -> Result<(), DropReason> {
    let mut codec = Codec::new("default", None);
    let mut out = Vec::new();
    codec.seal(kind, sender, generation, payload, &mut out);
    let now = net.now;
    net.node_mut(to).handle_datagram(now, addr(9), &mut out)
}

fn id(i: usize) -> NodeId {
    NodeId::from_name(&format!("n{i}"))
}

both_detectors!(
    a_version_beyond_the_maximum_is_dropped_and_later_writes_reach_everyone,
    a_node_refutes_a_forged_newer_copy_of_its_own_record,
);

fn a_version_beyond_the_maximum_is_dropped_and_later_writes_reach_everyone() {
    let mut net = Net::new(3, |_| {});
    net.run(1_000);
    let now = net.now;
    net.node_mut(0).set(now, "k", b"v1", None).unwrap();
    net.run(500);
    let g0 = net.node(0).generation();
    let garbage = net.node(1).stats().dropped(DropReason::Garbage);
    // The attack of the report: one delta giving n0 version 2^64 − 1.
    let forged = forged_push(id(0), g0, u64::MAX, &[("k", u64::MAX, b"evil")]);
    let sent = inject(&mut net, 1, id(2), 1, EnvelopeKind::Gossip, &forged);
    assert_eq!(sent, Err(DropReason::Garbage));
    assert_eq!(
        net.node(1).stats().dropped(DropReason::Garbage),
        garbage + 1
    );
    assert_eq!(net.value(1, 0, "k").as_deref(), Some(&b"v1"[..]));
    // Every later write still gets a higher version and reaches every peer.
    let now = net.now;
    let version = net.node_mut(0).set(now, "k", b"v2", None).unwrap();
    assert!(version > 1 && version < MAX_VERSION);
    net.run(1_000);
    for i in 1..3 {
        assert_eq!(net.value(i, 0, "k").as_deref(), Some(&b"v2"[..]), "at n{i}");
    }
}

fn a_node_refutes_a_forged_newer_copy_of_its_own_record() {
    let mut net = Net::new(3, |_| {});
    net.run(1_000);
    let now = net.now;
    net.node_mut(1).set(now, "k", b"real", None).unwrap();
    net.run(500);
    let g1 = net.node(1).generation();
    // A forged n1 at the next generation, wiping its keys, to n1 itself and to n2.
    let forged = forged_push(id(1), g1 + 1, 1, &[("k", 1, b"forged")]);
    let _ = inject(&mut net, 1, id(0), 1, EnvelopeKind::Gossip, &forged);
    assert_eq!(
        net.value(1, 1, "k").as_deref(),
        Some(&b"real"[..]),
        "a node's own record is never replaced by a peer's copy"
    );
    let _ = inject(&mut net, 2, id(0), 1, EnvelopeKind::Gossip, &forged);
    net.run(2_000);
    assert!(
        net.node(1).generation() > g1 + 1,
        "refuted with a newer generation"
    );
    assert_eq!(net.node(1).stats().claims_refuted, 1);
    for i in 0..3 {
        assert_eq!(
            net.value(i, 1, "k").as_deref(),
            Some(&b"real"[..]),
            "at n{i}"
        );
    }
    // A flood of the same forgery costs one refutation a second, not one per datagram.
    for _ in 0..100 {
        let g = net.node(1).generation();
        let forged = forged_push(id(1), g, 5, &[("k", 5, b"forged")]);
        let _ = inject(&mut net, 1, id(0), 1, EnvelopeKind::Gossip, &forged);
    }
    net.run(300);
    assert_eq!(net.node(1).stats().claims_refuted, 2);
    assert_eq!(net.value(1, 1, "k").as_deref(), Some(&b"real"[..]));
}

/// A SWIM Gossip payload carrying one Alive about n1.
fn forged_alive(generation: u64, at: SocketAddr) -> Vec<u8> {
    use crate::swim::wire::{self, Header, Kind, Update};
    let mut p = Vec::new();
    wire::put_header(&mut p, &Header::Gossip);
    wire::put_count(&mut p, 1);
    wire::put_update(
        &mut p,
        &Update {
            kind: Kind::Alive,
            id: id(1),
            generation,
            incarnation: 0,
            from: id(1),
            name: "n1",
            addr: Some(at),
        },
    );
    p
}

#[test]
fn a_forged_alive_elsewhere_is_ignored_and_one_at_a_newer_generation_refuted() {
    DETECTOR.set(Detector::Swim);
    let mut net = Net::new(3, |_| {});
    net.run(1_000);
    let g1 = net.node(1).generation();
    let n1_as_seen = |net: &Net, i: usize| {
        let m = net.node(i).members(net.now);
        let n1 = m.into_iter().find(|m| m.name == "n1").unwrap();
        (n1.addr, n1.generation, n1.status)
    };
    // "n1 restarted at 127.0.0.1:7009", gossiped to n2: a live member does not move on
    // hearsay, so n1's traffic is not redirected to the forger.
    inject(
        &mut net,
        2,
        id(0),
        1,
        EnvelopeKind::Swim,
        &forged_alive(g1 + 1, addr(9)),
    )
    .unwrap();
    net.run(2_000);
    let conflicts = net.node(2).swim_stats().unwrap().address_conflicts;
    assert_eq!(conflicts, 1);
    for i in [0, 2] {
        assert_eq!(
            n1_as_seen(&net, i),
            (Some(addr(1)), g1, MemberStatus::Alive)
        );
    }
    // At its own address but a newer generation: believed by n2 and spread, until n1 hears
    // of it and answers with a newer generation still.
    inject(
        &mut net,
        2,
        id(0),
        1,
        EnvelopeKind::Swim,
        &forged_alive(g1 + 5, addr(1)),
    )
    .unwrap();
    net.run(3_000);
    let g = net.node(1).generation();
    assert!(g > g1 + 5, "refuted: generation {g}");
    for i in [0, 2] {
        assert_eq!(n1_as_seen(&net, i), (Some(addr(1)), g, MemberStatus::Alive));
    }
    assert_eq!(net.verdicts(), 0, "nobody was suspected meanwhile");
}

#[test]
fn a_write_with_no_version_left_fails_instead_of_wrapping() {
    let mut s = ClusterState::new();
    s.set_owner(NodeId(1));
    s.start_node(NodeId(2), 1);
    // A peer at the largest plausible version (its own business: it can still be read).
    let mut p = forged_push(NodeId(2), 1, MAX_VERSION, &[("k", MAX_VERSION, b"v")]);
    p.remove(0);
    assert!(s.apply_delta(&p).is_ok());
    assert!(!s.can_write(NodeId(2)));
    assert_eq!(
        s.set(NodeId(2), "k", b"w".to_vec()),
        MAX_VERSION,
        "nothing written"
    );
    assert_eq!(s.node(NodeId(2)).unwrap().get("k").unwrap().value, b"v");
    let mut beyond = forged_push(NodeId(3), 1, MAX_VERSION + 1, &[]);
    beyond.remove(0);
    assert!(
        s.apply_delta(&beyond).is_err(),
        "beyond the maximum: refused whole"
    );
    assert!(s.node(NodeId(3)).is_none());
    assert_eq!(
        WriteError::VersionsExhausted.to_string(),
        format!("no version above {MAX_VERSION} left in this generation: restart the node")
    );
}

#[test]
fn under_phi_a_datagram_in_a_live_members_name_from_elsewhere_does_not_move_it() {
    DETECTOR.set(Detector::Phi);
    let mut net = Net::new(4, |_| {});
    net.run(2_000);
    let g3 = net.node(3).generation();
    // "n3, restarted": a well-formed push in n3's name at the next generation, from the
    // forger's address, to n0.
    let forged = forged_push(id(3), g3 + 1, 1, &[("k", 1, b"forged")]);
    inject(&mut net, 0, id(3), g3 + 1, EnvelopeKind::Gossip, &forged).unwrap();
    assert_eq!(net.node(0).stats().address_conflicts, 1);
    net.run(3_000);
    assert!(
        net.node(3).generation() > g3 + 1,
        "n3 refuted the forged generation"
    );
    for i in 0..3 {
        let m = net.node(i).members(net.now);
        let n3 = m.iter().find(|m| m.name == "n3").unwrap();
        assert_eq!(n3.addr, Some(addr(3)), "at n{i}");
        assert_eq!(n3.status, MemberStatus::Alive, "at n{i}");
        assert_eq!(net.value(i, 3, "k"), None, "the forged key is gone at n{i}");
    }
}

both_detectors!(a_restart_with_the_clock_behind_still_supersedes_the_old_process);

fn a_restart_with_the_clock_behind_still_supersedes_the_old_process() {
    let mut net = Net::new(3, |c| c.generation = if c.name == "n1" { 1_000 } else { 1 });
    net.run(1_000);
    let now = net.now;
    net.node_mut(1).set(now, "k", b"old", None).unwrap();
    net.run(1_000);
    assert_eq!(net.value(0, 1, "k").as_deref(), Some(&b"old"[..]));
    // n1 restarts with a generation from a clock an hour behind: 5 < 1,000.
    net.nodes[1] = Some(ClusterNode::new(config(1, 5), net.now, 99).unwrap());
    net.run(3_000);
    let g = net.node(1).generation();
    assert!(g > 1_000, "raised past what peers hold: generation {g}");
    for i in 0..3 {
        assert_eq!(
            net.value(i, 1, "k"),
            None,
            "n{i} still serves the dead process's key"
        );
        let m = net.node(i).members(net.now);
        let n1 = m.iter().find(|m| m.name == "n1").unwrap();
        assert_eq!(
            (n1.generation, n1.status),
            (g, MemberStatus::Alive),
            "at n{i}"
        );
    }
    assert!(
        net.node(1).stats().claims_refuted <= 2,
        "refuted once or twice, not per datagram"
    );
}
