//! The codec against bytes captured from a real Serf 0.9.4 agent (Debian's `serf`, built on
//! memberlist 0.2.2), made by `testdata/capture.py` (see `testdata/README.md`).

use gossiper_memberlist::Keyring;
use gossiper_memberlist::messages::{Accusation, Alive, Message, MessageType, Ping};
use gossiper_memberlist::msgpack::Writer;
use gossiper_memberlist::packet::{StreamMessage, decode_datagram, decode_stream};
use gossiper_memberlist::serf_wire::{
    SerfMessage, decode_serf, decode_serf_push_pull, decode_tags, encode_user_event,
};

fn lines(file: &str) -> Vec<(String, Vec<u8>)> {
    let path = format!("{}/testdata/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(what, hex)| {
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (what.to_owned(), bytes)
        })
        .collect()
}

#[test]
fn serfs_push_pull_reply_is_lzw_compressed_and_decodes() {
    let caps = lines("serf-pushpull.hex");
    let reply = &caps.iter().find(|(w, _)| w == "reply").unwrap().1;
    assert_eq!(
        reply[0],
        MessageType::Compress as u8,
        "a stock agent compresses every stream"
    );
    let (msg, used) = decode_stream(reply).unwrap();
    assert_eq!(used, reply.len());
    let StreamMessage::PushPull {
        join,
        nodes,
        user_state,
    } = msg
    else {
        panic!("{msg:?}")
    };
    assert!(
        join,
        "the seed echoes the request's Join flag in its answer"
    );
    assert_eq!(nodes.len(), 1);
    let s1 = &nodes[0];
    assert_eq!(s1.name, "s1");
    assert_eq!(s1.addr, [127, 0, 0, 1], "a bound IPv4 address is 4 bytes");
    assert_eq!(s1.vsn, [1, 5, 2, 2, 5, 5], "Serf 0.9.4's version vector");
    assert_eq!(s1.state, 0);
    assert_eq!(
        decode_tags(&s1.meta).get("role").map(String::as_str),
        Some("web")
    );
    let serf = decode_serf_push_pull(&user_state).unwrap();
    assert_eq!(serf.events.len(), 512, "the whole event ring, mostly nil");
    assert!(serf.events.iter().all(Option::is_none));
    assert!(serf.status_ltimes.contains_key("s1"));
}

#[test]
fn our_join_request_is_what_serf_accepted() {
    // The request bytes were written by hand from the doc; Serf took them (it answered and
    // then gossiped our alive). Our encoder must produce exactly them.
    let caps = lines("serf-pushpull.hex");
    let req = &caps.iter().find(|(w, _)| w == "request").unwrap().1;
    let (msg, used) = decode_stream(req).unwrap();
    assert_eq!(used, req.len());
    let StreamMessage::PushPull {
        join,
        nodes,
        user_state,
    } = msg
    else {
        panic!()
    };
    assert!(join && user_state.is_empty());
    let again = gossiper_memberlist::packet::encode_push_pull(true, &nodes, &[]);
    assert_eq!(&again, req);
}

#[test]
fn serfs_datagrams_decode_and_reencode_byte_for_byte() {
    let caps = lines("serf-udp.hex");
    assert!(!caps.is_empty());
    let (mut pings, mut alives, mut suspects, mut events) = (0, 0, 0, 0);
    for (_, d) in &caps {
        let decoded = decode_datagram(d);
        assert_eq!(decoded.bad, 0, "{:?} in {d:02x?}", decoded.first_error);
        for m in decoded.messages {
            let mut w = Writer::default();
            match &m {
                Message::Ping(p) => {
                    pings += 1;
                    assert_eq!(p.node, "rust1");
                    assert_eq!(p.source_node, "s1");
                    assert_eq!(p.source_addr, [127, 0, 0, 1]);
                    Ping::encode(p, &mut w);
                }
                Message::Alive(a) => {
                    alives += 1;
                    Alive::encode(a, &mut w);
                }
                Message::Suspect(s) => {
                    suspects += 1;
                    Accusation::encode(s, MessageType::Suspect, &mut w);
                }
                Message::User(bytes) => {
                    // Serf's user event, gossiped with its Lamport time.
                    let SerfMessage::UserEvent(e) = decode_serf(bytes).unwrap() else {
                        panic!("{bytes:02x?}")
                    };
                    assert_eq!(
                        (e.name.as_str(), &e.payload[..], e.cc),
                        ("deploy", &b"v42"[..], true)
                    );
                    assert_eq!(
                        encode_user_event(e.ltime, &e.name, &e.payload, e.cc),
                        *bytes
                    );
                    events += 1;
                    w.buf = [&[8u8][..], bytes].concat();
                }
                other => panic!("unexpected {other:?}"),
            }
            assert!(
                contains(d, &w.buf),
                "re-encoded {m:?} is not in the datagram {d:02x?}"
            );
        }
    }
    assert!(
        pings > 0 && alives > 0 && suspects > 0 && events > 0,
        "{pings} {alives} {suspects} {events}"
    );
    // Gossip to a peer advertising protocol 5 carries a CRC; a ping (sent by address, with
    // broadcasts piggybacked in a compound) does not.
    assert!(caps.iter().any(|(_, d)| d[0] == MessageType::HasCrc as u8));
    assert!(caps.iter().any(|(_, d)| d[0] == MessageType::Compound as u8
        && matches!(decode_datagram(d).messages.first(), Some(Message::Ping(_)))));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn serfs_encrypted_stream_and_datagrams_open_with_the_key() {
    let caps = lines("serf-encrypted.hex");
    let key = &caps.iter().find(|(w, _)| w == "key").unwrap().1;
    let ring = Keyring::new(std::slice::from_ref(key)).unwrap();
    // The stream: [10][u32 len][1][nonce][sealed], the 5-byte header as associated data.
    let reply = &caps.iter().find(|(w, _)| w == "reply").unwrap().1;
    assert_eq!(reply[0], MessageType::Encrypt as u8);
    let len = u32::from_be_bytes([reply[1], reply[2], reply[3], reply[4]]) as usize;
    assert_eq!(len + 5, reply.len());
    assert_eq!(
        reply[5], 1,
        "encryption version 1: memberlist protocol 2 and up"
    );
    assert!(
        ring.decrypt(&reply[5..], &[]).is_err(),
        "the header is authenticated"
    );
    let plain = ring.decrypt(&reply[5..], &reply[..5]).unwrap();
    let (msg, _) = decode_stream(&plain).unwrap();
    let StreamMessage::PushPull { nodes, .. } = msg else {
        panic!("{msg:?}")
    };
    assert_eq!(nodes[0].name, "s1");
    // Datagrams: the whole datagram is one blob, no type byte, no associated data.
    let mut messages = 0;
    for (_, d) in caps.iter().filter(|(w, _)| w == "datagram") {
        assert_eq!(d[0], 1);
        let plain = ring.decrypt(d, &[]).unwrap();
        let decoded = decode_datagram(&plain);
        assert_eq!(decoded.bad, 0);
        messages += decoded.messages.len();
    }
    assert!(messages > 0);
    let wrong = Keyring::new(&[vec![9; 32]]).unwrap();
    assert!(
        caps.iter()
            .filter(|(w, _)| w == "datagram")
            .all(|(_, d)| wrong.decrypt(d, &[]).is_err())
    );
}
