//! Reflection: datagrams whose source address is forged (a victim's) must not make a node
//! send the victim much more than the forger sent — QUIC's 3× until the address has proven it
//! receives. The forged datagrams here are a real joiner's first ones, replayed from the
//! victim's address by someone who never receives the answers.
//!
//! Under φ the bound is weaker and said so in docs/security.md: no multi-datagram snapshot to
//! an unverified address, but one SynAck (up to the MTU) per Syn.

use super::*;
use crate::node::REFLECTION_FACTOR;

both_detectors!(a_joiners_first_datagrams_from_a_forged_source_get_at_most_3x_back);

fn a_joiners_first_datagrams_from_a_forged_source_get_at_most_3x_back() {
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
    if DETECTOR.get() == Detector::Swim {
        assert!(
            bytes_out <= REFLECTION_FACTOR * bytes_in,
            "{bytes_out} bytes to the victim for {bytes_in} forged"
        );
    } else {
        assert!(
            datagrams_out <= datagrams_in,
            "{datagrams_out} datagrams to the victim for {datagrams_in}: no snapshot"
        );
    }
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
