//! Sealed datagrams replayed by an on-path observer: each is refused once seen, counted, and
//! answered with nothing.

use super::*;

both_detectors!(replayed_sealed_datagrams_are_refused_counted_and_unanswered);

fn replayed_sealed_datagrams_are_refused_counted_and_unanswered() {
    let mut net = Net::new(3, |c| c.keyring = Some(Keyring::new(&[[9; 32]]).unwrap()));
    net.run(1_000);
    net.tap.clear();
    net.run(500);
    let to_n0: Vec<(SocketAddr, Vec<u8>)> = net
        .tap
        .iter()
        .filter(|(_, to, _)| *to == addr(0))
        .map(|(from, _, b)| (*from, b.clone()))
        .collect();
    assert!(to_n0.len() > 5, "{} datagrams recorded", to_n0.len());
    while net.node_mut(0).poll_transmit().is_some() {}
    let now = net.now;
    for (from, bytes) in &to_n0 {
        let mut b = bytes.clone();
        assert_eq!(
            net.node_mut(0).handle_datagram(now, *from, &mut b),
            Err(DropReason::Replayed)
        );
    }
    assert_eq!(
        net.node(0).stats().dropped(DropReason::Replayed),
        to_n0.len() as u64
    );
    assert!(
        net.node_mut(0).poll_transmit().is_none(),
        "nothing answered"
    );
    // The cluster goes on as before.
    net.run(1_000);
    assert_eq!(net.verdicts(), 0);
}
