//! Arbitrary bytes into the memberlist + Serf decoders and into a node as a datagram and as a
//! stream frame: nothing may panic, allocate without bound or hang.
#![no_main]

use gossiper_memberlist::{Config, Node, filter, packet, serf_wire};
use gossiper_types::Time;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = packet::decode_datagram(data);
    let _ = packet::decode_stream(data);
    let _ = packet::stream_frame_len(data);
    let _ = serf_wire::decode_serf(data);
    let _ = serf_wire::decode_serf_push_pull(data);
    let _ = serf_wire::decode_tags(data);
    // Query filters: decoded, and tag expressions compiled within their bounds.
    let _ = filter::selects(&[data], "fuzz", &std::collections::BTreeMap::new());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 7946));
    if let Ok(mut node) = Node::new(Config::new("fuzz", addr), Time::ZERO, 1, [1; 32]) {
        node.handle_datagram(Time::ZERO, addr, data);
        if let Ok(Some(n)) = node.stream_frame_len(data) {
            let _ = node.handle_stream(Time::ZERO, addr, &data[..n]);
        }
        node.handle_timeout(Time::from_millis(10_000));
    }
});
