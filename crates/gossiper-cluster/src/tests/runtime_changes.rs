//! What a runtime may change while a node runs: its keyring (a rotation without a restart)
//! and its seeds (what their names resolve to now).

use super::*;

both_detectors!(
    a_keyring_swapped_at_run_time_lets_a_node_talk_with_peers_of_the_new_key,
    new_seeds_are_tried_at_once_and_a_node_with_members_is_not_joining
);

fn a_keyring_swapped_at_run_time_lets_a_node_talk_with_peers_of_the_new_key() {
    let old = Keyring::new(&[[1; 32]]).unwrap();
    let new = Keyring::new(&[[2; 32]]).unwrap();
    let mut net = Net::new(2, |c| {
        c.keyring = Some(if c.name == "n0" {
            new.clone()
        } else {
            old.clone()
        });
    });
    net.run(1_500);
    assert_eq!(net.status(0, 1), None, "different keys never talk");
    assert!(net.node(0).stats().dropped(DropReason::AuthFailure) > 0);
    // n1 gets [new, old]: it seals with the new key and still opens the old.
    let rotated = Keyring::new(&[[2; 32], [1; 32]]).unwrap();
    net.node_mut(1).set_keyring(rotated).unwrap();
    assert_eq!(
        net.node(1).config().keyring.as_ref().map(Keyring::len),
        Some(2)
    );
    net.run(2_000);
    assert_eq!(net.status(0, 1), Some(MemberStatus::Alive));
    assert_eq!(net.status(1, 0), Some(MemberStatus::Alive));
    // A node without a keyring cannot start sealing at run time: nothing changes.
    let mut plain = ClusterNode::new(config(5, 1), Time::ZERO, 5).unwrap();
    assert!(plain.set_keyring(new.clone()).is_err());
    assert!(plain.config().keyring.is_none());
}

fn new_seeds_are_tried_at_once_and_a_node_with_members_is_not_joining() {
    // n1 starts with a seed where nobody is; its back-off grows.
    let mut net = Net::new(2, |c| {
        if c.name == "n1" {
            c.seeds = vec![addr(9)];
            c.join_backoff_max_ms = 60_000;
        }
    });
    net.run(3_000);
    assert_eq!(net.status(1, 0), None);
    let waiting = net
        .node(1)
        .next_join()
        .expect("alone: a join is due some time");
    assert!(waiting > net.now, "backing off");
    // The seed's name now resolves to n0 too (and to n1 itself, which is skipped).
    let now = net.now;
    net.node_mut(1).set_seeds(now, [addr(9), addr(0), addr(1)]);
    assert_eq!(net.node(1).config().seeds, [addr(9), addr(0)]);
    assert_eq!(
        net.node(1).next_join(),
        Some(now),
        "a new address is tried at once"
    );
    net.run(1_000);
    assert_eq!(net.status(1, 0), Some(MemberStatus::Alive));
    assert_eq!(
        net.node(1).next_join(),
        None,
        "with members, no join is due"
    );
    // The same seeds again change nothing.
    let before = net.node(1).config().seeds.clone();
    let now = net.now;
    net.node_mut(1).set_seeds(now, before.clone());
    assert_eq!(net.node(1).config().seeds, before);
}
