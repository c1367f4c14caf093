//! Reflection: datagrams whose source address is forged (a victim's) must not make a node
//! send the victim much more than the forger sent — QUIC's 3× until the address has proven it
//! receives. The forged datagrams here are a real joiner's first ones, replayed from the
//! victim's address by someone who never receives the answers.
//!
//! Under φ the replies to an address that has not answered us there total at most 3× what it
//! sent (`node/credit.rs`, through the engine's `handle_message_limited`), and the
//! multi-datagram snapshot goes to verified peers only.

use super::*;
use crate::node::REFLECTION_FACTOR;

both_detectors!(
    a_joiners_first_datagrams_from_a_forged_source_get_at_most_3x_back,
    a_joiners_first_datagrams_without_their_padding_get_at_most_3x_back,
);

fn a_joiners_first_datagrams_from_a_forged_source_get_at_most_3x_back() {
    reflect(true);
}

/// The forger keeps only the small datagrams (the φ joiner's Syn and own record, not the
/// padding before them): it earns less, and gets less.
fn a_joiners_first_datagrams_without_their_padding_get_at_most_3x_back() {
    reflect(false);
}

fn reflect(with_padding: bool) {
    let codec = Codec::new("default", None);
    let mut net = Net::new(30, |_| {});
    net.run(3_000);
    let victim = addr(99);
    let (mut bytes_in, mut bytes_out, mut datagrams_in, mut datagrams_out) = (0, 0, 0, 0);
    for k in 0..50u64 {
        // A fresh "joiner" per round (a new id each time, as a flood of spoofed ids would be).
        let mut c = config(1_000 + k as usize, 1);
        c.seeds = vec![addr(0)];
        let mut joiner = ClusterNode::new(c, net.now, k).unwrap();
        joiner.handle_timeout(net.now);
        let now = net.now;
        while let Some(mut t) = joiner.poll_transmit() {
            let mut copy = t.bytes.clone();
            let padding = codec
                .open(&mut copy, 1_400)
                .is_ok_and(|e| e.kind == EnvelopeKind::Padding);
            if padding && !with_padding {
                continue;
            }
            bytes_in += t.bytes.len();
            datagrams_in += 1;
            let _ = net.node_mut(0).handle_datagram(now, victim, &mut t.bytes);
        }
        while let Some(t) = net.node_mut(0).poll_transmit() {
            if t.to == victim {
                bytes_out += t.bytes.len();
                datagrams_out += 1;
            }
        }
    }
    println!("{bytes_out} bytes to the victim for {bytes_in} forged");
    assert!(bytes_in > 0);
    assert!(
        bytes_out <= REFLECTION_FACTOR * bytes_in,
        "{bytes_out} bytes ({datagrams_out} datagrams) to the victim for {bytes_in} forged \
         ({datagrams_in} datagrams)"
    );
    // The cluster itself is unharmed: a real joiner still gets everything.
    let mut c = config(30, 1);
    c.seeds = vec![addr(0)];
    net.addrs.push(addr(30));
    net.nodes
        .push(Some(ClusterNode::new(c, net.now, 77).unwrap()));
    net.run(2_000);
    let known = net.node(30).members(net.now).len();
    assert!(known >= 30, "the real joiner knows {known} members");
}

both_detectors!(a_hundred_thousand_spoofed_sender_ids_leave_the_tables_bounded);

fn a_hundred_thousand_spoofed_sender_ids_leave_the_tables_bounded() {
    let mut net = Net::new(4, |_| {});
    net.run(2_000);
    let before = net.node(0).address_book_len();
    let mut codec = Codec::new("default", None);
    // A well-formed message per spoofed id: a SWIM ping, or under φ a push announcing nothing.
    let mut ping = Vec::new();
    crate::swim::wire::put_header(
        &mut ping,
        &crate::swim::wire::Header::Ping {
            seq: 1,
            target: net.node(0).id(),
        },
    );
    crate::swim::wire::put_count(&mut ping, 0);
    let empty_push = [gossiper_types::MessageKind::Push as u8];
    let (kind, payload) = match DETECTOR.get() {
        Detector::Swim => (EnvelopeKind::Swim, &ping[..]),
        Detector::Phi => (EnvelopeKind::Gossip, &empty_push[..]),
    };
    for i in 0..100_000u64 {
        let mut out = Vec::new();
        codec.seal(kind, NodeId(1 << 40 | i), 1, payload, &mut out);
        let now = net.now;
        let from = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 9));
        let _ = net.node_mut(0).handle_datagram(now, from, &mut out);
        while net.node_mut(0).poll_transmit().is_some() {}
    }
    let after = net.node(0).address_book_len();
    println!("address book: {before} before, {after} after 10^5 spoofed ids");
    assert!(after <= before + 1_100, "{after} entries");
    // And the real cluster still works.
    net.run(1_000);
    let now = net.now;
    net.node_mut(1).set(now, "k", b"v", None).unwrap();
    net.run(1_000);
    assert_eq!(net.value(0, 1, "k").as_deref(), Some(&b"v"[..]));
}
