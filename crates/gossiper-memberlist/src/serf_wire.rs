//! Serf's messages over memberlist (memberlist-wire.md §6.2-6.7): the tags in a node's meta,
//! and the bodies of `[8 userMsg][serf type][msgpack]`: join and leave intents, user events,
//! the push-pull user state, and of a query what it takes to keep its clock, ack and answer it.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::msgpack::{DecodeError, Writer, decode};

/// A field Go may send as nil (a nil slice or map): read as its empty value.
mod nil_default {
    use serde::{Deserialize, Deserializer};
    pub(super) fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
        d: D,
    ) -> Result<T, D::Error> {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }
}

/// `[]byte` Go may send as nil: read as empty.
mod nil_bytes {
    use serde::{Deserialize, Deserializer};
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(Option::<serde_bytes::ByteBuf>::deserialize(d)?.map_or_else(Vec::new, |b| b.into_vec()))
    }
}

/// Serf's message type byte (after memberlist's `8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerfType {
    /// A leave intent.
    Leave = 0,
    /// A join intent.
    Join = 1,
    /// The push-pull user state.
    PushPull = 2,
    /// A user event.
    UserEvent = 3,
    /// A query.
    Query = 4,
    /// A query's response.
    QueryResponse = 5,
    /// A message to pass on to the address in its header (a relayed query response).
    Relay = 9,
}

/// Serf's magic byte in front of msgpack tags (protocol ≥ 3).
pub const TAG_MAGIC: u8 = 0xff;
/// memberlist's `MetaMaxSize`.
pub const META_MAX: usize = 512;

/// Tags as node meta: `0xff` then a msgpack `map[string]string` (keys in Go's sorted order).
pub fn encode_tags(tags: &BTreeMap<String, String>) -> Vec<u8> {
    let mut w = Writer::new(vec![TAG_MAGIC]);
    w.map(tags.len() as u32);
    for (k, v) in tags {
        w.str(k).str(v);
    }
    w.buf
}

/// Tags from node meta; the legacy form (no magic) is `{"role": meta}`, as Serf reads it.
pub fn decode_tags(meta: &[u8]) -> BTreeMap<String, String> {
    match meta.split_first() {
        Some((&TAG_MAGIC, rest)) => decode::<BTreeMap<String, String>>(rest)
            .map(|(t, _)| t)
            .unwrap_or_default(),
        _ => BTreeMap::from([(
            "role".to_owned(),
            String::from_utf8_lossy(meta).into_owned(),
        )]),
    }
}

/// `messageJoin`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JoinIntent {
    /// Serf's member clock.
    #[serde(rename = "LTime")]
    pub ltime: u64,
    /// Who joins.
    pub node: String,
}

/// `messageLeave`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LeaveIntent {
    /// Serf's member clock.
    #[serde(rename = "LTime")]
    pub ltime: u64,
    /// Who leaves.
    pub node: String,
    /// Erase it (force-leave -prune).
    pub prune: bool,
}

/// `messageUserEvent`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UserEventMsg {
    /// The event clock.
    #[serde(rename = "LTime")]
    pub ltime: u64,
    /// The event's name.
    pub name: String,
    /// Its payload.
    #[serde(with = "nil_bytes")]
    pub payload: Vec<u8>,
    /// May be coalesced with others of its name.
    #[serde(rename = "CC")]
    pub cc: bool,
}

/// One event of the push-pull ring.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RingEvent {
    /// Name.
    pub name: String,
    /// Payload.
    #[serde(with = "nil_bytes")]
    pub payload: Vec<u8>,
}

/// The events of one event-clock slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RingSlot {
    /// Their clock.
    #[serde(rename = "LTime")]
    pub ltime: u64,
    /// The events.
    #[serde(deserialize_with = "nil_default::deserialize")]
    pub events: Vec<RingEvent>,
}

/// `messagePushPull`: Serf's user state in a push-pull.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SerfPushPull {
    /// The member clock.
    #[serde(rename = "LTime")]
    pub ltime: u64,
    /// Every member's status time.
    #[serde(rename = "StatusLTimes", deserialize_with = "nil_default::deserialize")]
    pub status_ltimes: BTreeMap<String, u64>,
    /// Names of members that left.
    #[serde(deserialize_with = "nil_default::deserialize")]
    pub left_members: Vec<String>,
    /// The event clock.
    #[serde(rename = "EventLTime")]
    pub event_ltime: u64,
    /// The event ring (mostly nil slots).
    #[serde(deserialize_with = "nil_default::deserialize")]
    pub events: Vec<Option<RingSlot>>,
    /// The query clock.
    #[serde(rename = "QueryLTime")]
    pub query_ltime: u64,
}

/// Query flag: the sender wants an ack.
pub const QUERY_FLAG_ACK: u32 = 1;
/// Query flag: do not re-broadcast.
pub const QUERY_FLAG_NO_BROADCAST: u32 = 2;

/// `messageQuery`: what a node needs to dedupe, filter, ack, answer and pass on a query, and
/// what it sends when it asks one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Query {
    /// The query clock.
    #[serde(rename = "LTime")]
    pub ltime: u64,
    /// With `ltime`, names the query.
    #[serde(rename = "ID")]
    pub id: u32,
    /// Where acks and responses go (IP bytes).
    #[serde(with = "nil_bytes")]
    pub addr: Vec<u8>,
    /// With `addr`.
    pub port: u16,
    /// [`QUERY_FLAG_ACK`], [`QUERY_FLAG_NO_BROADCAST`].
    pub flags: u32,
    /// Its name (`_serf_ping` for `serf reachability`).
    pub name: String,
    /// What it asks (for `_serf_conflict`, a node name).
    #[serde(with = "nil_bytes")]
    pub payload: Vec<u8>,
    /// `[u8 type][msgpack]` each: 0 = node names, 1 = a tag regexp (see [`crate::filter`]).
    #[serde(deserialize_with = "nil_default::deserialize")]
    pub filters: Vec<serde_bytes::ByteBuf>,
    /// Who asks (the name for `addr`).
    pub source_node: String,
    /// Through how many other members each answer is also relayed.
    pub relay_factor: u8,
    /// How long the asker waits for answers, in nanoseconds (Go's `time.Duration`).
    pub timeout: i64,
}

impl Query {
    /// `[4][messageQuery]`, keys in Go's sorted order; no filters is Go's nil slice.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(vec![SerfType::Query as u8]);
        w.map(11).key("Addr").raw(&self.addr).key("Filters");
        if self.filters.is_empty() {
            w.nil();
        } else {
            w.array(self.filters.len() as u32);
            for f in &self.filters {
                w.raw(f);
            }
        }
        w.key("Flags")
            .uint(self.flags.into())
            .key("ID")
            .uint(self.id.into())
            .key("LTime")
            .uint(self.ltime)
            .key("Name")
            .str(&self.name)
            .key("Payload")
            .raw(&self.payload)
            .key("Port")
            .uint(self.port.into())
            .key("RelayFactor")
            .uint(self.relay_factor.into())
            .key("SourceNode")
            .str(&self.source_node)
            .key("Timeout");
        // go-msgpack writes a non-negative int as an unsigned one.
        match u64::try_from(self.timeout) {
            Ok(t) => w.uint(t),
            Err(_) => w.int(self.timeout),
        };
        w.buf
    }
}

/// `messageQueryResponse`: an ack (flags [`QUERY_FLAG_ACK`]) or an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryResponse {
    /// The query's clock.
    #[serde(rename = "LTime")]
    pub ltime: u64,
    /// The query's id.
    #[serde(rename = "ID")]
    pub id: u32,
    /// Who answers.
    pub from: String,
    /// [`QUERY_FLAG_ACK`] for an ack.
    pub flags: u32,
    /// The answer.
    #[serde(with = "nil_bytes")]
    pub payload: Vec<u8>,
}

/// Go's `net.UDPAddr` as go-msgpack writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UdpAddr {
    /// 4 or 16 bytes.
    #[serde(rename = "IP", with = "nil_bytes")]
    pub ip: Vec<u8>,
    /// The port (Go's `int`).
    pub port: i64,
    /// The IPv6 zone.
    pub zone: String,
}

/// `relayHeader`: where a relayed message goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RelayHeader {
    /// Its final address.
    pub dest_addr: UdpAddr,
    /// Its final node's name.
    pub dest_name: String,
}

/// A relayed message: the header, and the Serf message to send on as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// Where it goes.
    pub header: RelayHeader,
    /// `[serf type][msgpack]` to pass on (Serf relays query responses only).
    pub message: Vec<u8>,
}

/// `[9][relayHeader][5][messageQueryResponse]`, as Serf's `encodeRelayMessage` writes it.
pub fn encode_relay(dest_ip: &[u8], dest_port: u16, dest_name: &str, response: &[u8]) -> Vec<u8> {
    let mut w = Writer::new(vec![SerfType::Relay as u8]);
    w.map(2)
        .key("DestAddr")
        .map(3)
        .key("IP")
        .raw(dest_ip)
        .key("Port")
        .uint(dest_port.into())
        .key("Zone")
        .str("")
        .key("DestName")
        .str(dest_name);
    w.extend(response);
    w.buf
}

/// Largest query response Serf accepts, encoded (`QueryResponseSizeLimit`, 1,024).
pub const QUERY_RESPONSE_SIZE_LIMIT: usize = 1024;

/// `[5][messageQueryResponse]` acknowledging query `(ltime, id)` from `from`.
pub fn encode_query_ack(ltime: u64, id: u32, from: &str) -> Vec<u8> {
    encode_query_response(ltime, id, from, QUERY_FLAG_ACK, None)
}

/// `[5][messageQueryResponse]` for query `(ltime, id)` from `from`: an ack (flags
/// [`QUERY_FLAG_ACK`], no payload) or an answer (flags 0, `payload`).
pub fn encode_query_response(
    ltime: u64,
    id: u32,
    from: &str,
    flags: u32,
    payload: Option<&[u8]>,
) -> Vec<u8> {
    let mut w = Writer::new(vec![SerfType::QueryResponse as u8]);
    w.map(5)
        .key("Flags")
        .uint(flags.into())
        .key("From")
        .str(from)
        .key("ID")
        .uint(id.into())
        .key("LTime")
        .uint(ltime)
        .key("Payload")
        .bytes_or_nil(payload);
    w.buf
}

/// A Serf message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerfMessage {
    /// A leave intent.
    Leave(LeaveIntent),
    /// A join intent.
    Join(JoinIntent),
    /// A user event.
    UserEvent(UserEventMsg),
    /// A query (acknowledged when asked; answered as `query::answer` says).
    Query(Query),
    /// An ack or answer to a query.
    QueryResponse(QueryResponse),
    /// A message to pass on.
    Relay(Relay),
    /// A type this node does not act on.
    Other(u8),
}

/// Decodes Serf's bytes (what follows memberlist's `8`).
pub fn decode_serf(buf: &[u8]) -> Result<SerfMessage, DecodeError> {
    let (&t, body) = buf.split_first().ok_or(DecodeError::Truncated)?;
    Ok(match t {
        0 => SerfMessage::Leave(decode(body)?.0),
        1 => SerfMessage::Join(decode(body)?.0),
        3 => SerfMessage::UserEvent(decode(body)?.0),
        4 => SerfMessage::Query(decode(body)?.0),
        5 => SerfMessage::QueryResponse(decode(body)?.0),
        9 => {
            let (header, used) = decode::<RelayHeader>(body)?;
            let message = body.get(used..).unwrap_or_default().to_vec();
            if message.is_empty() {
                return Err(DecodeError::Truncated);
            }
            SerfMessage::Relay(Relay { header, message })
        }
        t => SerfMessage::Other(t),
    })
}

/// Decodes the push-pull user state (`[2][messagePushPull]`).
pub fn decode_serf_push_pull(buf: &[u8]) -> Result<SerfPushPull, DecodeError> {
    match buf.split_first() {
        Some((&2, body)) => Ok(decode(body)?.0),
        Some((t, _)) => Err(DecodeError::Invalid(format!("serf push-pull type {t}"))),
        None => Err(DecodeError::Truncated),
    }
}

/// `[1][messageJoin]`.
pub fn encode_join(ltime: u64, node: &str) -> Vec<u8> {
    let mut w = Writer::new(vec![SerfType::Join as u8]);
    w.map(2).key("LTime").uint(ltime).key("Node").str(node);
    w.buf
}

/// `[0][messageLeave]`.
pub fn encode_leave(ltime: u64, node: &str) -> Vec<u8> {
    let mut w = Writer::new(vec![SerfType::Leave as u8]);
    w.map(3)
        .key("LTime")
        .uint(ltime)
        .key("Node")
        .str(node)
        .key("Prune")
        .bool(false);
    w.buf
}

/// `[3][messageUserEvent]`.
pub fn encode_user_event(ltime: u64, name: &str, payload: &[u8], cc: bool) -> Vec<u8> {
    let mut w = Writer::new(vec![SerfType::UserEvent as u8]);
    w.map(4)
        .key("CC")
        .bool(cc)
        .key("LTime")
        .uint(ltime)
        .key("Name")
        .str(name)
        .key("Payload")
        .raw(payload);
    w.buf
}

/// `[2][messagePushPull]` with our clocks, our own status time and no events.
pub fn encode_serf_push_pull(
    ltime: u64,
    event_ltime: u64,
    query_ltime: u64,
    status: &BTreeMap<String, u64>,
    left: &[String],
) -> Vec<u8> {
    let mut w = Writer::new(vec![SerfType::PushPull as u8]);
    w.map(6)
        .key("EventLTime")
        .uint(event_ltime)
        .key("Events")
        .array(0)
        .key("LTime")
        .uint(ltime);
    w.key("LeftMembers").array(left.len() as u32);
    for l in left {
        w.str(l);
    }
    w.key("QueryLTime")
        .uint(query_ltime)
        .key("StatusLTimes")
        .map(status.len() as u32);
    for (k, v) in status {
        w.str(k).uint(*v);
    }
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_the_docs_example() {
        let tags = BTreeMap::from([("role".to_owned(), "web".to_owned())]);
        let meta = encode_tags(&tags);
        assert_eq!(
            meta,
            [
                0xff, 0x81, 0xa4, b'r', b'o', b'l', b'e', 0xa3, b'w', b'e', b'b'
            ]
        );
        assert_eq!(decode_tags(&meta), tags);
        assert_eq!(encode_tags(&BTreeMap::new()), [0xff, 0x80]);
        assert_eq!(
            decode_tags(b""),
            BTreeMap::from([("role".into(), String::new())])
        );
    }

    #[test]
    fn the_docs_intent_and_event_examples() {
        let hex = |s: &str| -> Vec<u8> {
            let s: String = s.split_whitespace().collect();
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let join = hex("01 82 a5 4c 54 69 6d 65 03 a4 4e 6f 64 65 a5 72 75 73 74 31");
        assert_eq!(encode_join(3, "rust1"), join);
        assert_eq!(
            decode_serf(&join),
            Ok(SerfMessage::Join(JoinIntent {
                ltime: 3,
                node: "rust1".into()
            }))
        );
        let ev = hex(
            "03 84 a2 43 43 c2 a5 4c 54 69 6d 65 05 a4 4e 61 6d 65 a5 68 65 6c 6c 6f a7 50 61 79 6c 6f 61 64 a5 77 6f 72 6c 64",
        );
        assert_eq!(encode_user_event(5, "hello", b"world", false), ev);
        assert_eq!(
            decode_serf(&ev),
            Ok(SerfMessage::UserEvent(UserEventMsg {
                ltime: 5,
                name: "hello".into(),
                payload: b"world".to_vec(),
                cc: false
            }))
        );
    }

    #[test]
    fn queries_responses_and_relays_round_trip() {
        let q = Query {
            ltime: 7,
            id: 0x7fff_0001,
            addr: vec![127, 0, 0, 1],
            port: 7950,
            flags: QUERY_FLAG_ACK,
            name: "uptime".into(),
            payload: b"now".to_vec(),
            filters: vec![serde_bytes::ByteBuf::from(vec![0, 0x91, 0xa2, b'g', b'1'])],
            source_node: "g1".into(),
            relay_factor: 2,
            timeout: 3_200_000_000,
        };
        let bytes = q.encode();
        assert_eq!(bytes[0], SerfType::Query as u8);
        assert_eq!(decode_serf(&bytes), Ok(SerfMessage::Query(q.clone())));
        // Go's nil Filters.
        let plain = Query {
            filters: vec![],
            ..q
        };
        assert_eq!(decode_serf(&plain.encode()), Ok(SerfMessage::Query(plain)));

        let answer = encode_query_response(7, 9, "s1", 0, Some(b"42"));
        let Ok(SerfMessage::QueryResponse(r)) = decode_serf(&answer) else {
            panic!()
        };
        assert_eq!((r.ltime, r.id, r.from.as_str(), r.flags), (7, 9, "s1", 0));
        assert_eq!(r.payload, b"42");

        let relay = encode_relay(&[127, 0, 0, 1], 7946, "s1", &answer);
        assert_eq!(relay[0], SerfType::Relay as u8);
        let Ok(SerfMessage::Relay(m)) = decode_serf(&relay) else {
            panic!()
        };
        assert_eq!(m.header.dest_addr.ip, [127, 0, 0, 1]);
        assert_eq!(
            (m.header.dest_addr.port, m.header.dest_name.as_str()),
            (7946, "s1")
        );
        assert_eq!(
            m.message, answer,
            "the inner message is passed on byte for byte"
        );
        // A header with nothing after it is no relay.
        let bare = encode_relay(&[127, 0, 0, 1], 7946, "s1", &[]);
        assert!(decode_serf(&bare).is_err());
    }

    #[test]
    fn our_push_pull_state_decodes() {
        let status = BTreeMap::from([("g1".to_owned(), 4)]);
        let pp =
            decode_serf_push_pull(&encode_serf_push_pull(5, 6, 7, &status, &["x".into()])).unwrap();
        assert_eq!((pp.ltime, pp.event_ltime, pp.query_ltime), (5, 6, 7));
        assert_eq!(pp.status_ltimes, status);
        assert_eq!(pp.left_members, vec!["x".to_owned()]);
    }
}

#[cfg(test)]
mod nil_tests {
    use super::*;

    #[test]
    fn go_nil_slices_read_as_empty() {
        let mut w = Writer::new(vec![4]);
        w.map(6)
            .key("LTime")
            .uint(3)
            .key("ID")
            .uint(9)
            .key("Addr")
            .raw(&[127, 0, 0, 1]);
        w.key("Port")
            .uint(7946)
            .key("Flags")
            .uint(1)
            .key("Filters")
            .nil();
        let SerfMessage::Query(q) = decode_serf(&w.buf).unwrap() else {
            panic!()
        };
        assert!(q.filters.is_empty() && q.source_node.is_empty() && q.relay_factor == 0);
        let mut w = Writer::new(vec![3]);
        w.map(3)
            .key("LTime")
            .uint(3)
            .key("Name")
            .str("e")
            .key("Payload")
            .nil();
        assert!(
            matches!(decode_serf(&w.buf), Ok(SerfMessage::UserEvent(e)) if e.payload.is_empty())
        );
        assert_eq!(
            encode_query_ack(3, 9, "g1")[0],
            SerfType::QueryResponse as u8
        );
    }
}
