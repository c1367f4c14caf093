//! The member table's bound: configured, checked, and held (the defence against forged
//! member records that still needs finishing is on the `ghosts-wip` branch; docs/security.md).

use super::*;

#[test]
fn the_member_table_bound_is_configured_and_checked() {
    let mut c = config(0, 1);
    c.max_members = 0;
    let Err(e) = ClusterNode::new(c, Time::ZERO, 1) else {
        panic!("a bound of 0 was accepted");
    };
    assert!(e.to_string().contains("max members"), "{e}");
    // A bound of 2 at node 0: of three joiners, one is refused and counted.
    DETECTOR.set(Detector::Swim);
    let mut net = Net::new(4, |c| {
        if c.name == "n0" {
            c.max_members = 2;
        }
    });
    net.run(3_000);
    assert_eq!(
        net.node(0).members(net.now).len(),
        3,
        "itself and two others"
    );
    assert!(net.node(0).swim_stats().unwrap().members_refused >= 1);
}
