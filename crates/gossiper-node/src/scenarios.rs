//! Engine scenarios: two and three engines driven by hand on virtual time, each test named
//! after the behaviour it checks.

use std::time::Duration;

use gossiper_network::{FixedInterval, UniformRandom};
use gossiper_types::{KvMap, Message, NodeId, Register, State, Time};

use crate::{DropReason, Event, Mode, Node, NodeConfig, Outbox, Peers};

type KvNode = Node<KvMap, UniformRandom, FixedInterval>;

fn every_100ms() -> FixedInterval {
    FixedInterval::new(Duration::from_millis(100)).unwrap()
}

fn kv_nodes(n: u64, mode: Mode) -> Vec<KvNode> {
    let config = NodeConfig {
        mode,
        push_on_write: false,
        emit_events: true,
        ..NodeConfig::default()
    };
    (0..n)
        .map(|i| {
            let mut node = Node::new(
                NodeId(i),
                config,
                KvMap::new(),
                UniformRandom,
                every_100ms(),
                i,
            );
            node.set_peers(Peers::Complete { n });
            node
        })
        .collect()
}

/// Delivers every queued datagram, and the answers they provoke, until the network is quiet.
/// Returns the number of datagrams delivered.
fn deliver_all<S: State>(
    nodes: &mut [Node<S, UniformRandom, FixedInterval>],
    mut pending: Vec<(NodeId, NodeId, Vec<u8>)>,
) -> usize {
    let mut delivered = 0;
    while !pending.is_empty() {
        let mut next = Vec::new();
        for (from, to, bytes) in pending {
            let mut out = Outbox::new();
            nodes[to.index()]
                .handle_message(Time::ZERO, from, &bytes, &mut out)
                .expect("engine-made datagram accepted");
            delivered += 1;
            next.extend(out.iter().map(|(dst, b)| (to, dst, b.to_vec())));
        }
        pending = next;
    }
    delivered
}

fn round<S: State>(nodes: &mut [Node<S, UniformRandom, FixedInterval>], who: usize) -> usize {
    let mut out = Outbox::new();
    nodes[who].gossip_now(Time::ZERO, &mut out);
    let from = nodes[who].id();
    let pending = out.iter().map(|(to, b)| (from, to, b.to_vec())).collect();
    deliver_all(nodes, pending)
}

fn local_write(node: &mut KvNode, key: &str, value: &[u8]) {
    let id = node.id();
    let mut out = Outbox::new();
    node.write(Time::ZERO, &mut out, |s| s.set(id, key, value.to_vec()));
    assert!(out.is_empty(), "push_on_write is off in these scenarios");
}

#[test]
fn push_pull_exchanges_both_ways_in_three_messages() {
    let mut nodes = kv_nodes(2, Mode::PushPull);
    local_write(&mut nodes[0], "a", b"1");
    local_write(&mut nodes[1], "b", b"2");
    let delivered = round(&mut nodes, 0);
    assert_eq!(delivered, 3, "syn, syn-ack, ack");
    assert_eq!(nodes[0].state(), nodes[1].state());
    assert_eq!(nodes[1].state().get(NodeId(0), "a").unwrap().value, b"1");
    assert_eq!(nodes[0].stats().messages_sent, 2);
    assert_eq!(nodes[1].stats().messages_sent, 1);
}

#[test]
fn push_only_moves_data_from_caller_to_callee() {
    let mut nodes = kv_nodes(2, Mode::Push);
    local_write(&mut nodes[0], "a", b"1");
    local_write(&mut nodes[1], "b", b"2");
    assert_eq!(round(&mut nodes, 0), 1);
    assert!(nodes[1].state().get(NodeId(0), "a").is_some());
    assert!(nodes[0].state().get(NodeId(1), "b").is_none());
}

#[test]
fn pull_only_moves_data_from_callee_to_caller() {
    let mut nodes = kv_nodes(2, Mode::Pull);
    local_write(&mut nodes[0], "a", b"1");
    local_write(&mut nodes[1], "b", b"2");
    assert_eq!(round(&mut nodes, 0), 2, "request and reply");
    assert!(nodes[0].state().get(NodeId(1), "b").is_some());
    assert!(nodes[1].state().get(NodeId(0), "a").is_none());
}

#[test]
fn pull_from_an_up_to_date_peer_gets_no_reply() {
    let mut nodes = kv_nodes(2, Mode::Pull);
    local_write(&mut nodes[0], "a", b"1");
    assert_eq!(
        round(&mut nodes, 0),
        1,
        "request only: the callee has nothing new"
    );
}

#[test]
fn three_nodes_converge_through_a_relay() {
    // A line a - b - c: c learns a's write only through b.
    let mut nodes = kv_nodes(3, Mode::PushPull);
    nodes[0].set_peers(Peers::List(vec![NodeId(1)]));
    nodes[1].set_peers(Peers::List(vec![NodeId(0), NodeId(2)]));
    nodes[2].set_peers(Peers::List(vec![NodeId(1)]));
    local_write(&mut nodes[0], "x", b"from a");
    round(&mut nodes, 0);
    assert!(nodes[2].state().get(NodeId(0), "x").is_none());
    round(&mut nodes, 2);
    assert_eq!(
        nodes[2].state().get(NodeId(0), "x").unwrap().value,
        b"from a"
    );
    assert!(nodes.iter().all(|n| n.state() == nodes[0].state()));
}

#[test]
fn large_states_arrive_over_several_rounds_within_the_datagram_limit() {
    let config = NodeConfig {
        max_message_bytes: 256,
        push_on_write: false,
        ..NodeConfig::default()
    };
    let mut nodes: Vec<KvNode> = (0..2)
        .map(|i| {
            let mut n = Node::new(
                NodeId(i),
                config,
                KvMap::new(),
                UniformRandom,
                every_100ms(),
                i,
            );
            n.set_peers(Peers::Complete { n: 2 });
            n
        })
        .collect();
    for k in 0..100 {
        local_write(&mut nodes[0], &format!("key-{k}"), &[k as u8; 16]);
    }
    let mut rounds = 0;
    while nodes[1].state() != nodes[0].state() {
        let mut out = Outbox::new();
        nodes[1].gossip_now(Time::ZERO, &mut out);
        let mut pending: Vec<_> = out
            .iter()
            .map(|(to, b)| (NodeId(1), to, b.to_vec()))
            .collect();
        while !pending.is_empty() {
            for (_, _, b) in &pending {
                assert!(b.len() <= 256, "datagram of {} bytes", b.len());
            }
            let mut next = Vec::new();
            for (from, to, bytes) in pending {
                let mut o = Outbox::new();
                nodes[to.index()]
                    .handle_message(Time::ZERO, from, &bytes, &mut o)
                    .unwrap();
                next.extend(o.iter().map(|(d, b)| (to, d, b.to_vec())));
            }
            pending = next;
        }
        rounds += 1;
        assert!(rounds < 100, "never converged");
    }
    assert!(
        rounds > 5,
        "100 entries cannot fit in a few 256-byte datagrams ({rounds} rounds)"
    );
}

#[test]
fn timers_fire_rounds_on_schedule() {
    let mut nodes = kv_nodes(2, Mode::PushPull);
    let node = &mut nodes[0];
    assert_eq!(node.poll_timeout(), Time::NEVER, "no round before start");
    node.start(Time::ZERO);
    assert_eq!(node.poll_timeout(), Time::from_millis(100));
    let mut out = Outbox::new();
    node.handle_timeout(Time::from_millis(99), &mut out);
    assert!(out.is_empty(), "not yet due");
    node.handle_timeout(Time::from_millis(100), &mut out);
    assert_eq!(out.len(), 1, "one syn to the one peer");
    assert_eq!(node.poll_timeout(), Time::from_millis(200));
    assert_eq!(node.stats().rounds, 1);
}

#[test]
fn push_on_write_sends_only_the_fresh_entry() {
    let config = NodeConfig {
        fanout: 2,
        ..NodeConfig::default()
    };
    let mut node: KvNode = Node::new(
        NodeId(0),
        config,
        KvMap::new(),
        UniformRandom,
        every_100ms(),
        0,
    );
    node.set_peers(Peers::Complete { n: 5 });
    let mut out = Outbox::new();
    node.write(Time::ZERO, &mut out, |s| {
        s.set(NodeId(0), "old", vec![0; 200])
    });
    out.clear();
    node.write(Time::ZERO, &mut out, |s| {
        s.set(NodeId(0), "new", b"v".to_vec())
    });
    assert_eq!(out.len(), 2, "fanout 2");
    for (to, bytes) in out.iter() {
        assert_ne!(to, NodeId(0));
        assert!(
            bytes.len() < 20,
            "only the fresh entry travels ({} bytes)",
            bytes.len()
        );
        assert!(matches!(Message::decode(bytes), Ok(Message::Push { .. })));
    }
}

#[test]
fn garbage_is_dropped_counted_and_changes_nothing() {
    let mut nodes = kv_nodes(2, Mode::PushPull);
    local_write(&mut nodes[1], "k", b"v");
    let before = nodes[1].state().clone();
    let mut out = Outbox::new();
    let node = &mut nodes[1];
    type Case<'a> = (&'a [u8], fn(DropReason) -> bool);
    let cases: [Case<'_>; 5] = [
        (&[], |r| matches!(r, DropReason::Malformed(_))),
        (&[42, 1, 2], |r| r == DropReason::UnknownKind(42)),
        (&[1, 0, 5, 0xff], |r| matches!(r, DropReason::Malformed(_))),
        (&[5, 0x7f], |r| matches!(r, DropReason::Malformed(_))),
        (&[4, 0xff, 0xff], |r| matches!(r, DropReason::Malformed(_))),
    ];
    for (bytes, expect) in cases {
        let r = node
            .handle_message(Time::ZERO, NodeId(0), bytes, &mut out)
            .unwrap_err();
        assert!(expect(r), "{bytes:?} gave {r:?}");
    }
    let r = node.handle_message(Time::ZERO, NodeId(1), &[4, 0], &mut out);
    assert_eq!(r, Err(DropReason::FromSelf));
    let big = vec![1u8; 5_000];
    assert_eq!(
        node.handle_message(Time::ZERO, NodeId(0), &big, &mut out),
        Err(DropReason::Oversized(5_000))
    );
    assert!(out.is_empty(), "no answer to garbage");
    assert_eq!(node.state(), &before);
    assert_eq!(node.stats().dropped.total(), 7);
    assert_eq!(node.stats().dropped.oversized, 1);
    assert_eq!(node.stats().dropped.from_self, 1);
    assert_eq!(node.stats().dropped.unknown_kind, 1);
}

#[test]
fn events_report_who_caused_each_change() {
    let mut nodes = kv_nodes(2, Mode::PushPull);
    local_write(&mut nodes[0], "a", b"1");
    assert_eq!(
        nodes[0].poll_event(),
        Some(Event::StateChanged { from: NodeId(0) })
    );
    round(&mut nodes, 1);
    assert_eq!(
        nodes[1].poll_event(),
        Some(Event::StateChanged { from: NodeId(0) })
    );
    assert_eq!(nodes[1].poll_event(), None);
}

#[test]
fn same_seed_same_conversation() {
    fn run(seed: u64) -> Vec<Vec<u8>> {
        let mut node = Node::new(
            NodeId(0),
            NodeConfig::default(),
            Register::<u64>::with(1, NodeId(0), 7),
            UniformRandom,
            every_100ms(),
            seed,
        );
        node.set_peers(Peers::Complete { n: 1_000 });
        let mut out = Outbox::new();
        let mut log = Vec::new();
        for _ in 0..20 {
            out.clear();
            node.gossip_now(Time::ZERO, &mut out);
            log.extend(out.iter().map(|(to, b)| {
                let mut v = to.0.to_le_bytes().to_vec();
                v.extend_from_slice(b);
                v
            }));
        }
        log
    }
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn a_limited_reply_stays_within_its_limit_and_still_answers() {
    // Node 0 knows 100 keys; node 1's Syn (it knows nothing) asks for all of them.
    let mut nodes = kv_nodes(2, Mode::PushPull);
    for k in 0..100 {
        local_write(&mut nodes[0], &format!("key-{k}"), &[k as u8; 16]);
    }
    let mut out = Outbox::new();
    nodes[1].gossip_now(Time::ZERO, &mut out);
    let (to, syn) = out
        .iter()
        .next()
        .map(|(t, b)| (t, b.to_vec()))
        .expect("a Syn");
    assert_eq!(to, NodeId(0));
    let reply = |nodes: &mut Vec<KvNode>, limit: Option<usize>| {
        let mut out = Outbox::new();
        match limit {
            Some(l) => nodes[0].handle_message_limited(Time::ZERO, NodeId(1), &syn, &mut out, l),
            None => nodes[0].handle_message(Time::ZERO, NodeId(1), &syn, &mut out),
        }
        .unwrap();
        out.iter().map(|(_, b)| b.to_vec()).collect::<Vec<_>>()
    };
    let full = reply(&mut nodes, None);
    let limit = 3 * syn.len();
    let cut = reply(&mut nodes, Some(limit));
    let full_bytes: usize = full.iter().map(Vec::len).sum();
    assert!(
        full_bytes > limit,
        "the full SynAck ({full_bytes} B) is over {limit} B"
    );
    assert_eq!(cut.len(), 1, "still one SynAck");
    assert!(
        cut[0].len() <= limit,
        "{} B over the limit of {limit}",
        cut[0].len()
    );
    assert!(matches!(
        Message::decode(&cut[0]),
        Ok(Message::SynAck { .. })
    ));
    // And the limit ends with the call: the next reply is whole again.
    assert_eq!(
        reply(&mut nodes, None).iter().map(Vec::len).sum::<usize>(),
        full_bytes
    );
}
