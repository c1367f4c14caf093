//! A fresh write goes down the broadcast tree (`node/broadcast.rs`): every node has it after
//! one delivery of N − 1 datagrams, and the random copies a quarter interval later bring the
//! total to about (1 + RANDOM_COPIES) a node, not ln N + 2; a hole in the tree (a crashed
//! member still listed alive) is mended by the random copies and anti-entropy.

use super::*;
use crate::node::broadcast_copies_per_node;

/// Datagrams of `kind` in the wiretap.
fn count(net: &Net, kind: EnvelopeKind) -> usize {
    let codec = crate::Codec::new("default", None);
    net.tap
        .iter()
        .filter(|(_, _, bytes)| {
            let mut bytes = bytes.clone();
            codec.open(&mut bytes, 1_400).is_ok_and(|e| e.kind == kind)
        })
        .count()
}

fn a_write_reaches_all_sixty_nodes_in_one_delivery_for_three_datagrams_a_node() {
    let n = 60;
    let mut net = Net::new(n, |_| {});
    net.run(4_000);
    for i in 0..n {
        assert_eq!(net.node(i).members(net.now).len(), n, "n{i} knows everyone");
    }
    for writer in [7, 31] {
        net.tap.clear();
        let now = net.now;
        let key = format!("k{writer}");
        net.node_mut(writer).set(now, &key, b"v", None).unwrap();
        net.deliver();
        // The tree alone: N − 1 datagrams, and everyone has it.
        for i in 0..n {
            let value = net.value(i, writer, &key);
            assert_eq!(value.as_deref(), Some(&b"v"[..]), "n{i}");
        }
        assert_eq!(
            count(&net, EnvelopeKind::Broadcast),
            n - 1,
            "the tree first"
        );
        // Then the random copies, a quarter interval later.
        net.run(50);
        let sent = count(&net, EnvelopeKind::Broadcast);
        let most = broadcast_copies_per_node() * n;
        // Random forwarding, ln(60) + 2 = 7 copies a node, sent 420.
        assert!(
            (n..=most).contains(&sent),
            "{sent} broadcast datagrams for {n} nodes (at most {most})"
        );
    }
}

fn a_crashed_member_in_the_tree_does_not_keep_its_subtree_from_a_write() {
    let n = 60;
    let mut net = Net::new(n, |_| {});
    net.run(4_000);
    // The writer's first children are the members after it by id: crash one of them (it is
    // still listed alive), so a whole subtree loses its parent.
    let writer = 5;
    let mut ring: Vec<NodeId> = (0..n).map(|i| net.node(i).id()).collect();
    ring.sort_unstable();
    let at = ring.binary_search(&net.node(writer).id()).unwrap();
    let child = ring[(at + 1) % n];
    let victim = (0..n).find(|&i| net.node(i).id() == child).unwrap();
    net.nodes[victim] = None;
    let now = net.now;
    net.node_mut(writer).set(now, "k", b"v", None).unwrap();
    net.deliver();
    let missing = |net: &Net| {
        (0..n)
            .filter(|&i| i != victim && net.value(i, writer, "k").is_none())
            .count()
    };
    let through_the_tree = missing(&net);
    assert!(through_the_tree > 0, "the crashed child's subtree waits");
    // The random copies, a quarter interval later, mend most of the hole.
    net.run(50);
    let after_the_copies = missing(&net);
    assert!(
        after_the_copies <= n / 10,
        "{after_the_copies} of {n} missed the write after the random copies \
         ({through_the_tree} after the tree)"
    );
    net.run(1_000);
    assert_eq!(missing(&net), 0, "everyone has it within a second");
}

both_detectors!(
    a_write_reaches_all_sixty_nodes_in_one_delivery_for_three_datagrams_a_node,
    a_crashed_member_in_the_tree_does_not_keep_its_subtree_from_a_write,
);
