//! Fuzz target: arbitrary bytes into every decoder a datagram meets — the envelope (plain and
//! sealed), the cluster state's digest and delta decoders, and a whole `ClusterNode` — checking
//! that nothing panics and that a rejected input changes no state.
//!
//! Run: `cd fuzz && cargo +nightly fuzz run decode -- -max_total_time=300`
#![no_main]

use gossiper_cluster::wire::EnvelopeKind;
use gossiper_cluster::{
    ClusterConfig, ClusterDigest, ClusterNode, ClusterState, Codec, Detector, Keyring,
};
use gossiper_types::{NodeId, State, Time};
use libfuzzer_sys::fuzz_target;

/// A small state with live keys and a tombstone (built afresh: states cache their fingerprint
/// in a cell, so they are not shared between threads).
fn sample_state() -> ClusterState {
    {
        let mut s = ClusterState::new();
        for i in 0..4 {
            s.start_node(NodeId(i), 3);
            s.set(NodeId(i), "k", vec![i as u8; 4]);
            s.set(NodeId(i), "gone", vec![1]);
            s.delete(NodeId(i), "gone");
            s.beat(NodeId(i));
        }
        s
    }
}

fuzz_target!(|data: &[u8]| {
    // Envelope, plain and sealed.
    let plain = Codec::new("fuzz", None);
    let sealed = Codec::new("fuzz", Some(Keyring::new(&[[7; 32]]).expect("key")));
    let _ = plain.open(&mut data.to_vec(), 1_400);
    let _ = sealed.open(&mut data.to_vec(), 1_400);

    // Digest and delta decoders: an error leaves the state exactly as it was.
    let mut d = ClusterDigest::default();
    let _ = ClusterState::decode_digest_into(data, &mut d);
    let mut s = sample_state();
    if s.apply_delta(data).is_err() {
        assert_eq!(s, sample_state(), "a rejected delta changed the state");
    }

    // A whole node, under each detector: a rejected datagram changes nothing.
    let addr = "127.0.0.1:7000".parse().expect("addr");
    let from = "127.0.0.1:7001".parse().expect("addr");
    for detector in [Detector::Swim, Detector::Phi] {
        let mut config = ClusterConfig::new("n", addr, 1);
        config.detector = detector;
        let mut node = ClusterNode::new(config, Time::ZERO, 1).expect("node");
        let before = node.state().clone();
        if node
            .handle_datagram(Time::ZERO, from, &mut data.to_vec())
            .is_err()
        {
            assert_eq!(
                node.state(),
                &before,
                "a rejected datagram changed the state"
            );
        }
        // The same bytes dressed in a valid envelope of every kind reach the engine's, SWIM's
        // and the fingerprint decoders.
        let mut codec = Codec::new("default", None);
        for kind in [
            EnvelopeKind::Gossip,
            EnvelopeKind::Swim,
            EnvelopeKind::Sync,
            EnvelopeKind::Rebirth,
            EnvelopeKind::Broadcast,
            EnvelopeKind::Padding,
        ] {
            let before = node.state().clone();
            let mut wrapped = Vec::new();
            codec.seal(kind, NodeId(99), 1, data, &mut wrapped);
            if node
                .handle_datagram(Time::ZERO, from, &mut wrapped)
                .is_err()
            {
                assert_eq!(
                    node.state(),
                    &before,
                    "a rejected message changed the state"
                );
            }
        }
    }
});
