//! Queries on hand-driven nodes: filters decide who acks and answers, answers are relayed
//! and relays passed on, our own queries collect what comes back, and key queries rotate the
//! keyring (serf 0.9.4 `serf/serf.go`, `serf/query.go`, `serf/internal_query.go`).

use super::tests::{deliver, node, run_stream};
use super::*;
use crate::Keyring;
use crate::filter::Filter;
use crate::outgoing::{QueryParams, QueryResult};
use crate::serf_wire::{QUERY_FLAG_ACK, Query, QueryResponse, Relay, SerfMessage};

const ASKER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9000);

fn query(id: u32, name: &str, filters: Vec<Vec<u8>>, relay_factor: u8) -> Query {
    Query {
        ltime: 5,
        id,
        addr: vec![127, 0, 0, 1],
        port: ASKER.port(),
        flags: QUERY_FLAG_ACK,
        name: name.into(),
        payload: vec![],
        filters: filters
            .into_iter()
            .map(serde_bytes::ByteBuf::from)
            .collect(),
        source_node: "s1".into(),
        relay_factor,
        timeout: 2_000_000_000,
    }
}

fn user_msg(serf: &[u8]) -> Vec<u8> {
    let mut m = vec![MessageType::User as u8];
    m.extend_from_slice(serf);
    m
}

/// The Serf messages in the datagrams `n` sends to `to` (opened with `ring` if given).
fn serf_to(n: &mut Node, to: SocketAddr, ring: Option<&Keyring>) -> Vec<SerfMessage> {
    let mut out = Vec::new();
    for t in std::iter::from_fn(|| n.poll_transmit()).filter(|t| t.to == to) {
        let plain = match ring {
            Some(k) => k.decrypt(&t.bytes, &[]).unwrap(),
            None => t.bytes,
        };
        for m in decode_datagram(&plain).messages {
            if let Message::User(b) = m {
                out.push(decode_serf(&b).unwrap());
            }
        }
    }
    out
}

fn responses(msgs: &[SerfMessage]) -> Vec<&QueryResponse> {
    msgs.iter()
        .filter_map(|m| match m {
            SerfMessage::QueryResponse(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn tag(tag: &str, expr: &str) -> Vec<u8> {
    Filter::Tag {
        tag: tag.into(),
        expr: expr.into(),
    }
    .encode()
}

/// Sends `g` query `id` for `uptime` with `filters`; returns its acks and answers.
fn ask(g: &mut Node, id: u32, filters: Vec<Vec<u8>>) -> (usize, Vec<Vec<u8>>) {
    let q = query(id, "uptime", filters, 0);
    g.handle_datagram(Time::ZERO, ASKER, &user_msg(&q.encode()));
    let msgs = serf_to(g, ASKER, None);
    let r = responses(&msgs);
    (
        r.iter().filter(|r| r.flags == QUERY_FLAG_ACK).count(),
        r.iter()
            .filter(|r| r.flags == 0)
            .map(|r| r.payload.clone())
            .collect(),
    )
}

#[test]
fn filters_decide_who_acks_and_answers() {
    let mut c = Config::new("g1", SocketAddr::from(([127, 0, 0, 1], 1001)));
    c.tags.insert("role".into(), "rust".into());
    c.query_responses.insert("uptime".into(), b"42 s".to_vec());
    let mut g = Node::new(c, Time::ZERO, 1, [1; 32]).unwrap();
    let nodes = |n: &[&str]| Filter::Nodes(n.iter().map(|s| (*s).to_owned()).collect()).encode();
    assert_eq!(ask(&mut g, 1, vec![]), (1, vec![b"42 s".to_vec()]));
    assert_eq!(
        ask(&mut g, 2, vec![nodes(&["g1"])]),
        (1, vec![b"42 s".to_vec()])
    );
    assert_eq!(ask(&mut g, 3, vec![nodes(&["s1", "s2"])]), (0, vec![]));
    assert_eq!(
        ask(&mut g, 4, vec![tag("role", "ru.t")]),
        (1, vec![b"42 s".to_vec()])
    );
    assert_eq!(ask(&mut g, 5, vec![tag("role", "nomatch")]), (0, vec![]));
    assert_eq!(
        ask(&mut g, 6, vec![nodes(&["g1"]), tag("role", "^web$")]),
        (0, vec![])
    );
    assert_eq!(g.stats().bad_filters, 0);
    // Hostile filters: not acted on, counted.
    assert_eq!(
        ask(&mut g, 7, vec![tag("role", &"(".repeat(300))]),
        (0, vec![])
    );
    assert_eq!(
        ask(&mut g, 8, vec![tag("role", "(((x{100}){100}){100})")]),
        (0, vec![])
    );
    assert_eq!(ask(&mut g, 9, vec![vec![7, 0x80]]), (0, vec![]));
    assert_eq!(ask(&mut g, 10, vec![vec![]]), (0, vec![]));
    assert_eq!(g.stats().bad_filters, 4);
    // Even a query not for us is passed on (once).
    assert!(g.queue.len() >= 10);
}

/// a, b and c, all joined and known to each other.
fn three() -> (Node, Node, Node, Time) {
    let (mut a, mut b, mut c) = (node("a", 1001), node("b", 1002), node("c", 1003));
    a.config
        .query_responses
        .insert("uptime".into(), b"42 s".to_vec());
    a.join(Time::ZERO, &[b.config.addr]);
    assert!(run_stream(&mut a, &mut b, Time::ZERO));
    c.join(Time::ZERO, &[b.config.addr]);
    assert!(run_stream(&mut c, &mut b, Time::ZERO));
    let mut now = Time::ZERO;
    for _ in 0..20 {
        now = now + Duration::from_millis(50);
        for n in [&mut a, &mut b, &mut c] {
            n.handle_timeout(now);
        }
        deliver(&mut [&mut a, &mut b, &mut c], now);
    }
    assert!([&a, &b, &c].iter().all(|n| n.members().len() == 3));
    (a, b, c, now)
}

fn finished(n: &mut Node) -> Vec<QueryResult> {
    std::iter::from_fn(|| n.poll_event())
        .filter_map(|e| match e {
            Event::QueryFinished(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn our_queries_collect_acks_and_relayed_answers_until_the_deadline() {
    let (mut a, mut b, mut c, mut now) = three();
    let _ = finished(&mut b);
    let mut p = QueryParams::new("uptime", b"".to_vec());
    p.relay_factor = 2;
    p.timeout = Some(Duration::from_secs(2));
    let (ltime, id) = b.query(now, &p).unwrap();
    let start = now;
    let mut done = Vec::new();
    while done.is_empty() {
        now = now + Duration::from_millis(50);
        assert!(
            now.saturating_since(start) < Duration::from_secs(3),
            "no result"
        );
        for n in [&mut a, &mut b, &mut c] {
            n.handle_timeout(now);
        }
        deliver(&mut [&mut a, &mut b, &mut c], now);
        done = finished(&mut b);
    }
    assert!(
        now.saturating_since(start) >= Duration::from_secs(2),
        "kept open to the deadline"
    );
    let r = &done[0];
    assert_eq!((r.name.as_str(), r.ltime, r.id), ("uptime", ltime, id));
    let mut acks = r.acks.clone();
    acks.sort();
    assert_eq!(acks, ["a", "b", "c"], "each once, ourselves included");
    assert_eq!(r.responses, [("a".to_owned(), b"42 s".to_vec())]);
    // a and c relayed their acks (and a its answer) through both others; the relays that
    // reached the third node were passed on to b, whose duplicates were dropped.
    assert_eq!(a.stats().relays_sent, 4);
    assert_eq!(c.stats().relays_sent, 2);
    assert!(a.stats().relays_forwarded + c.stats().relays_forwarded >= 2);
    assert_eq!(b.stats().query_acks, 3);
    assert_eq!(b.stats().query_responses, 1);

    // A node filter in our own query: only a acks, and b does not answer itself.
    p.nodes = vec!["a".into()];
    p.relay_factor = 0;
    b.query(now, &p).unwrap();
    let mut done = Vec::new();
    for _ in 0..60 {
        now = now + Duration::from_millis(50);
        for n in [&mut a, &mut b, &mut c] {
            n.handle_timeout(now);
        }
        deliver(&mut [&mut a, &mut b, &mut c], now);
        done.extend(finished(&mut b));
    }
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].acks, ["a"]);
    assert!(
        b.query(now, &QueryParams::new("_serf_ping", vec![]))
            .is_err()
    );
}

#[test]
fn a_huge_relay_factor_is_cut_and_counted() {
    let (mut a, _b, _c, now) = three();
    while a.poll_transmit().is_some() {}
    let q = query(1, "uptime", vec![], 255);
    a.handle_datagram(now, ASKER, &user_msg(&q.encode()));
    assert_eq!(a.stats().relay_factor_capped, 2, "the ack and the answer");
    // 3 members are fewer than 16 + 1: nothing relayed, as Serf skips a relay it cannot fill.
    assert_eq!(a.stats().relays_sent, 0);
    let sent: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
    assert!(sent.iter().all(|t| t.to == ASKER), "{sent:?}");
    assert_eq!(sent.len(), 2);
}

#[test]
fn relays_are_passed_on_only_to_members_and_only_as_query_responses() {
    let (mut a, b, _c, now) = three();
    while a.poll_transmit().is_some() {}
    let answer = encode_query_response(5, 1, "s1", 0, Some(b"x"));
    let relay = |ip: [u8; 4], port, inner: &[u8]| {
        user_msg(&crate::serf_wire::encode_relay(&ip, port, "b", inner))
    };
    a.handle_datagram(now, ASKER, &relay([127, 0, 0, 1], 1002, &answer));
    let out: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, b.config.addr);
    let d = decode_datagram(&out[0].bytes);
    assert!(
        matches!(&d.messages[0], Message::User(m) if *m == answer),
        "passed on as it is"
    );
    assert_eq!(a.stats().relays_forwarded, 1);
    // Not a member's address, not a response, too large: dropped, nothing sent.
    a.handle_datagram(now, ASKER, &relay([10, 9, 8, 7], 7946, &answer));
    a.handle_datagram(
        now,
        ASKER,
        &relay([127, 0, 0, 1], 1002, &encode_join(1, "x")),
    );
    let big = encode_query_response(5, 1, "s1", 0, Some(&[b'y'; 1100]));
    a.handle_datagram(now, ASKER, &relay([127, 0, 0, 1], 1002, &big));
    assert_eq!(a.stats().relays_refused, 3);
    assert!(a.poll_transmit().is_none());
    // Decodes as a relay for the record.
    assert!(matches!(
        decode_serf(&crate::serf_wire::encode_relay(
            &[127, 0, 0, 1],
            1,
            "b",
            &answer
        )),
        Ok(SerfMessage::Relay(Relay { .. }))
    ));
}

fn key_query(id: u32, op: &str, key: &[u8]) -> Vec<u8> {
    let mut w = Writer::new(vec![7]);
    w.map(1).key("Key").raw(key);
    let mut q = query(id, &format!("_serf_{op}"), vec![], 0);
    q.payload = w.buf;
    user_msg(&q.encode())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyResponse {
    message: String,
    result: bool,
}

/// The key-response answers `n` sent to the asker.
fn key_answers(n: &mut Node, ring: &Keyring) -> Vec<KeyResponse> {
    responses(&serf_to(n, ASKER, Some(ring)))
        .into_iter()
        .filter(|r| r.flags == 0)
        .map(|r| {
            assert_eq!(r.payload[0], 8, "a nodeKeyResponse");
            crate::msgpack::decode::<KeyResponse>(&r.payload[1..])
                .unwrap()
                .0
        })
        .collect()
}

#[test]
fn key_queries_rotate_the_keyring_and_the_nodes_keep_talking() {
    let (k1, k2) = (vec![1u8; 32], vec![2u8; 16]);
    let mk = |name: &str, port: u16| {
        let mut c = Config::new(name, SocketAddr::from(([127, 0, 0, 1], port)));
        c.keyring = Some(Keyring::new(std::slice::from_ref(&k1)).unwrap());
        Node::new(c, Time::ZERO, u64::from(port), [port as u8; 32]).unwrap()
    };
    let (mut a, mut b) = (mk("a", 1001), mk("b", 1002));
    a.join(Time::ZERO, &[b.config.addr]);
    assert!(run_stream(&mut a, &mut b, Time::ZERO));
    let old = Keyring::new(std::slice::from_ref(&k1)).unwrap();
    let both = Keyring::new(&[k1.clone(), k2.clone()]).unwrap();
    let mut nonce = 0u8;
    let mut send = |n: &mut Node, ring: &Keyring, plain: Vec<u8>| {
        nonce += 1;
        let sealed = ring.encrypt(&[nonce; 12], &plain, &[]);
        n.handle_datagram(Time::ZERO, ASKER, &sealed);
    };
    // serf keys -install K2, -use K2, -remove K1: to both nodes, as the gossip would.
    for n in [&mut a, &mut b] {
        send(n, &old, key_query(1, "install-key", &k2));
        let r = key_answers(n, &old);
        assert!(r.len() == 1 && r[0].result, "install answered");
        send(n, &old, key_query(2, "use-key", &k2));
        let r = key_answers(n, &both);
        assert!(r[0].result, "use answered");
        assert_eq!(n.config.keyring.as_ref().unwrap().primary(), &k2[..]);
        // The primary cannot go; a key not held, a bad size or a bad request are refused.
        send(n, &both, key_query(3, "remove-key", &k2));
        assert_eq!(
            key_answers(n, &both)[0].message,
            "Removing the primary key is not allowed"
        );
        send(n, &both, key_query(4, "use-key", &[3; 24]));
        assert_eq!(
            key_answers(n, &both)[0].message,
            "Requested key is not in the keyring"
        );
        send(n, &both, key_query(5, "install-key", &[3; 5]));
        assert_eq!(
            key_answers(n, &both)[0].message,
            "key size must be 16, 24 or 32 bytes"
        );
        let mut q = query(6, "_serf_install-key", vec![], 0);
        q.payload = vec![7, 0x81];
        send(n, &both, user_msg(&q.encode()));
        let r = key_answers(n, &both);
        assert!(!r[0].result && r[0].message.starts_with("Failed to decode key request"));
        send(n, &both, key_query(7, "remove-key", &k1));
        assert!(key_answers(n, &both)[0].result);
        assert_eq!(
            n.config.keyring.as_ref().unwrap().keys(),
            std::slice::from_ref(&k2)
        );
        assert_eq!(n.stats().key_changes, 3);
        assert_eq!(n.stats().key_changes_refused, 4);
        assert_eq!(n.stats().bad_key_queries, 1);
    }
    // Both on K2 alone: a user event still gets from a to b.
    while b.poll_event().is_some() {}
    a.user_event("deploy", b"v43", false).unwrap();
    let mut now = Time::ZERO;
    let mut got = false;
    for _ in 0..20 {
        now = now + Duration::from_millis(200);
        a.handle_timeout(now);
        b.handle_timeout(now);
        deliver(&mut [&mut a, &mut b], now);
        got |= std::iter::from_fn(|| b.poll_event())
            .any(|e| matches!(e, Event::User(u) if u.name == "deploy"));
    }
    assert!(got, "the event crossed on the new key");
    assert_eq!(b.stats().decrypt_failures, 0);
    // The old key alone opens nothing any more.
    send(&mut a, &old, key_query(8, "install-key", &k1));
    assert_eq!(a.stats().decrypt_failures, 1);
}

#[test]
fn with_a_keyring_file_the_answer_waits_for_the_runtime_to_save_it() {
    let k1 = vec![1u8; 32];
    let mut c = Config::new("g1", SocketAddr::from(([127, 0, 0, 1], 1001)));
    let ring = Keyring::new(std::slice::from_ref(&k1)).unwrap();
    c.keyring = Some(ring.clone());
    c.persist_keyring = true;
    let mut g = Node::new(c, Time::ZERO, 1, [1; 32]).unwrap();
    let sealed = |plain: Vec<u8>, n: u8| ring.encrypt(&[n; 12], &plain, &[]);
    g.handle_datagram(
        Time::ZERO,
        ASKER,
        &sealed(key_query(1, "install-key", &[2; 16]), 1),
    );
    assert!(
        key_answers(&mut g, &ring).is_empty(),
        "only the ack, until the file is saved"
    );
    let Some(Event::KeyringChanged { ticket, keys }) = g.poll_event() else {
        panic!("the runtime is told")
    };
    assert_eq!(keys, [k1.clone(), vec![2; 16]]);
    g.keyring_persisted(Time::from_millis(10), ticket, Ok(()));
    let r = key_answers(&mut g, &ring);
    assert!(r.len() == 1 && r[0].result);
    // A failed save is said in the answer (the keyring stays changed, as in Serf).
    g.handle_datagram(
        Time::ZERO,
        ASKER,
        &sealed(key_query(2, "use-key", &[2; 16]), 2),
    );
    let Some(Event::KeyringChanged { ticket, .. }) = g.poll_event() else {
        panic!()
    };
    g.keyring_persisted(Time::from_millis(10), ticket, Err("disk full".into()));
    let after = Keyring::new(&[vec![2; 16], k1.clone()]).unwrap();
    let r = key_answers(&mut g, &after);
    assert!(!r[0].result && r[0].message == "disk full");
    // Never reported: forgotten once the asker's timeout (2 s) is past, nothing sent.
    g.handle_datagram(
        Time::ZERO,
        ASKER,
        &after.encrypt(&[3; 12], &key_query(3, "install-key", &[4; 24]), &[]),
    );
    let Some(Event::KeyringChanged { ticket, .. }) = g.poll_event() else {
        panic!()
    };
    let _ = g.poll_transmit();
    g.handle_timeout(Time::from_millis(2_100));
    assert!(g.key_answers.is_empty());
    g.keyring_persisted(Time::from_millis(2_100), ticket, Ok(()));
    assert!(key_answers(&mut g, &after).is_empty());
}

/// Runs a, b and c for up to 3 s; returns the replies b's streamed queries got, stopping
/// once `enough` holds.
fn replies_at_b(
    nodes: &mut [&mut Node; 3],
    now: &mut Time,
    enough: impl Fn(&[crate::QueryReply]) -> bool,
) -> Vec<crate::QueryReply> {
    let mut got = Vec::new();
    let start = *now;
    while now.saturating_since(start) < Duration::from_secs(3) && !enough(&got) {
        *now = *now + Duration::from_millis(50);
        for n in nodes.iter_mut() {
            n.handle_timeout(*now);
        }
        let [a, b, c] = nodes;
        deliver(&mut [&mut **a, &mut **b, &mut **c], *now);
        got.extend(
            std::iter::from_fn(|| b.poll_event()).filter_map(|e| match e {
                Event::QueryReply(r) => Some(r),
                _ => None,
            }),
        );
    }
    got
}

#[test]
fn streamed_queries_hand_back_each_ack_and_answer_as_it_comes() {
    let (mut a, mut b, mut c, mut now) = three();
    while b.poll_event().is_some() {}
    let mut p = QueryParams::new("uptime", b"".to_vec());
    p.stream = true;
    p.timeout = Some(Duration::from_secs(2));
    let (ltime, id) = b.query(now, &p).unwrap();
    let got = replies_at_b(&mut [&mut a, &mut b, &mut c], &mut now, |r| r.len() >= 4);
    assert!(got.iter().all(|r| (r.ltime, r.id) == (ltime, id)));
    let mut acks: Vec<&str> = got
        .iter()
        .filter(|r| r.payload.is_none())
        .map(|r| r.from.as_str())
        .collect();
    acks.sort();
    assert_eq!(acks, ["a", "b", "c"]);
    let answers: Vec<_> = got.iter().filter(|r| r.payload.is_some()).collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(
        (answers[0].from.as_str(), answers[0].payload.as_deref()),
        ("a", Some(&b"42 s"[..]))
    );
    // Ended early: what it had, and no QueryFinished later.
    let r = b.end_query(ltime, id).unwrap();
    assert_eq!(r.acks.len(), 3);
    assert!(b.end_query(ltime, id).is_none());
    let later = replies_at_b(&mut [&mut a, &mut b, &mut c], &mut now, |_| false);
    assert!(later.is_empty());
    assert!(finished(&mut b).is_empty());
    // Not streamed: no replies, the result at the end only.
    p.stream = false;
    b.query(now, &p).unwrap();
    assert!(replies_at_b(&mut [&mut a, &mut b, &mut c], &mut now, |_| false).is_empty());
}

#[test]
fn key_queries_asked_here_rotate_every_keyring_ours_included() {
    use crate::key_query::{KeyCommand, KeyReport};
    let (k1, k2) = (vec![1u8; 32], vec![2u8; 16]);
    let mk = |name: &str, port: u16| {
        let mut c = Config::new(name, SocketAddr::from(([127, 0, 0, 1], port)));
        c.keyring = Some(Keyring::new(std::slice::from_ref(&k1)).unwrap());
        Node::new(c, Time::ZERO, u64::from(port), [port as u8; 32]).unwrap()
    };
    let (mut a, mut b, mut c) = (mk("a", 1001), mk("b", 1002), mk("c", 1003));
    a.join(Time::ZERO, &[b.config.addr]);
    assert!(run_stream(&mut a, &mut b, Time::ZERO));
    c.join(Time::ZERO, &[b.config.addr]);
    assert!(run_stream(&mut c, &mut b, Time::ZERO));
    let mut now = Time::ZERO;
    let _ = replies_at_b(&mut [&mut a, &mut b, &mut c], &mut now, |_| false);
    assert!([&a, &b, &c].iter().all(|n| n.members().len() == 3));
    let run = |cmd: KeyCommand, a: &mut Node, b: &mut Node, c: &mut Node, now: &mut Time| {
        let asked = b.key_query(*now, &cmd, 0, None).unwrap();
        assert_eq!(asked.members, 3);
        let mut report = KeyReport::new(asked.members);
        for r in replies_at_b(&mut [a, b, c], now, |r| r.len() >= 3) {
            assert!((r.ltime, r.id) == (asked.ltime, asked.id));
            report.add(&r.from, r.payload.as_deref().unwrap_or_default());
        }
        assert!(b.end_query(asked.ltime, asked.id).is_some());
        report
    };
    let r = run(
        KeyCommand::Install(k2.clone()),
        &mut a,
        &mut b,
        &mut c,
        &mut now,
    );
    assert_eq!(r.error(), None, "{r:?}");
    let r = run(
        KeyCommand::Use(k2.clone()),
        &mut a,
        &mut b,
        &mut c,
        &mut now,
    );
    assert_eq!(r.error(), None, "{r:?}");
    // Our own primary is not removed: refused before anything is sent.
    let e = b
        .key_query(now, &KeyCommand::Remove(k2.clone()), 0, None)
        .unwrap_err();
    assert!(e.contains("primary"), "{e}");
    assert!(
        b.key_query(now, &KeyCommand::Install(vec![1; 7]), 0, None)
            .unwrap_err()
            .contains("7 bytes")
    );
    let r = run(
        KeyCommand::Remove(k1.clone()),
        &mut a,
        &mut b,
        &mut c,
        &mut now,
    );
    assert_eq!(r.error(), None, "{r:?}");
    for n in [&a, &b, &c] {
        assert_eq!(
            n.config.keyring.as_ref().unwrap().keys(),
            std::slice::from_ref(&k2)
        );
    }
    let r = run(KeyCommand::List, &mut a, &mut b, &mut c, &mut now);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &k2);
    assert_eq!(r.keys, std::collections::BTreeMap::from([(b64.clone(), 3)]));
    assert_eq!(r.primary_keys[&b64], 3);
    // Removing a key nobody holds is no failure (memberlist's `RemoveKey`).
    let r = run(
        KeyCommand::Remove(vec![9; 24]),
        &mut a,
        &mut b,
        &mut c,
        &mut now,
    );
    assert_eq!((r.num_resp, r.num_err), (3, 0), "{r:?}");
    assert_eq!(b.stats().decrypt_failures, 0);
}
