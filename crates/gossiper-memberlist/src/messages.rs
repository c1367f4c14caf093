//! memberlist's message bodies (memberlist-wire.md §2.2): one struct per Go struct, read with
//! serde (field names as Go spells them) and written by hand in Go's sorted key order, with
//! Go's `omitempty` on the ping's source fields.

use serde::Deserialize;

use crate::msgpack::{DecodeError, Writer, decode};

/// The first byte of every memberlist message (`net.go`'s `iota` order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// A probe.
    Ping = 0,
    /// A request to probe someone for us.
    IndirectPing = 1,
    /// A probe's answer.
    Ack = 2,
    /// An accusation.
    Suspect = 3,
    /// A node's claim to be alive.
    Alive = 4,
    /// A death (or, `From == Node`, a leave).
    Dead = 5,
    /// Full state sync (TCP only).
    PushPull = 6,
    /// Several messages in one datagram.
    Compound = 7,
    /// The delegate's (Serf's) bytes.
    User = 8,
    /// An LZW-compressed message.
    Compress = 9,
    /// An encrypted stream.
    Encrypt = 10,
    /// An indirect probe that got no answer.
    Nack = 11,
    /// A CRC-32 in front of a datagram.
    HasCrc = 12,
    /// A stream reader's error reply.
    Err = 13,
}

impl MessageType {
    /// The type of a first byte, if memberlist 0.2.2 has one.
    pub fn from_byte(b: u8) -> Option<MessageType> {
        use MessageType::*;
        Some(match b {
            0 => Ping,
            1 => IndirectPing,
            2 => Ack,
            3 => Suspect,
            4 => Alive,
            5 => Dead,
            6 => PushPull,
            7 => Compound,
            8 => User,
            9 => Compress,
            10 => Encrypt,
            11 => Nack,
            12 => HasCrc,
            13 => Err,
            _ => return None,
        })
    }
}

/// `[]byte` that Go may send as nil: read as empty.
mod nil_bytes {
    use serde::{Deserialize, Deserializer};
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(Option::<serde_bytes::ByteBuf>::deserialize(d)?.map_or_else(Vec::new, |b| b.into_vec()))
    }
}

/// A string Go may send as nil: read as empty.
mod nil_string {
    use serde::{Deserialize, Deserializer};
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
    }
}

/// `ping`: a probe of `node` (empty: whoever receives it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ping {
    /// Echoed in the ack.
    pub seq_no: u32,
    /// The target's name.
    #[serde(with = "nil_string")]
    pub node: String,
    /// Where the ack goes (4 or 16 bytes), with `source_port`; else to the UDP source.
    #[serde(with = "nil_bytes")]
    pub source_addr: Vec<u8>,
    /// See `source_addr`.
    pub source_port: u16,
    /// The prober's name.
    #[serde(with = "nil_string")]
    pub source_node: String,
}

impl Ping {
    /// The message, type byte first.
    pub fn encode(&self, w: &mut Writer) {
        w.buf.push(MessageType::Ping as u8);
        let n = 2
            + u32::from(!self.source_addr.is_empty())
            + u32::from(!self.source_node.is_empty())
            + u32::from(self.source_port != 0);
        w.map(n)
            .key("Node")
            .str(&self.node)
            .key("SeqNo")
            .uint(self.seq_no.into());
        if !self.source_addr.is_empty() {
            w.key("SourceAddr").raw(&self.source_addr);
        }
        if !self.source_node.is_empty() {
            w.key("SourceNode").str(&self.source_node);
        }
        if self.source_port != 0 {
            w.key("SourcePort").uint(self.source_port.into());
        }
    }
}

/// `indirectPingReq`: probe `node` at `target:port` for the sender.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IndirectPingReq {
    /// The requester's sequence number, echoed in the relayed ack or nack.
    pub seq_no: u32,
    /// The target's IP (4 or 16 bytes).
    #[serde(with = "nil_bytes")]
    pub target: Vec<u8>,
    /// The target's port (0: ours).
    pub port: u16,
    /// The target's name.
    #[serde(with = "nil_string")]
    pub node: String,
    /// Whether a nack is wanted when the target stays silent.
    pub nack: bool,
    /// Where the answer goes, with `source_port`; else to the UDP source.
    #[serde(with = "nil_bytes")]
    pub source_addr: Vec<u8>,
    /// See `source_addr`.
    pub source_port: u16,
    /// The requester's name.
    #[serde(with = "nil_string")]
    pub source_node: String,
}

impl IndirectPingReq {
    /// The message, type byte first.
    pub fn encode(&self, w: &mut Writer) {
        w.buf.push(MessageType::IndirectPing as u8);
        let n = 5
            + u32::from(!self.source_addr.is_empty())
            + u32::from(!self.source_node.is_empty())
            + u32::from(self.source_port != 0);
        w.map(n)
            .key("Nack")
            .bool(self.nack)
            .key("Node")
            .str(&self.node)
            .key("Port")
            .uint(self.port.into())
            .key("SeqNo")
            .uint(self.seq_no.into());
        if !self.source_addr.is_empty() {
            w.key("SourceAddr").raw(&self.source_addr);
        }
        if !self.source_node.is_empty() {
            w.key("SourceNode").str(&self.source_node);
        }
        if self.source_port != 0 {
            w.key("SourcePort").uint(self.source_port.into());
        }
        w.key("Target").raw(&self.target);
    }
}

/// `ackResp`: the answer to a ping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AckResp {
    /// The ping's sequence number.
    pub seq_no: u32,
    /// The ping delegate's bytes (Serf: its network coordinate); empty is nil.
    #[serde(with = "nil_bytes")]
    pub payload: Vec<u8>,
}

impl AckResp {
    /// The message, type byte first.
    pub fn encode(&self, w: &mut Writer) {
        w.buf.push(MessageType::Ack as u8);
        let payload = (!self.payload.is_empty()).then_some(&self.payload[..]);
        w.map(2)
            .key("Payload")
            .bytes_or_nil(payload)
            .key("SeqNo")
            .uint(self.seq_no.into());
    }
}

/// `nackResp`: an indirect probe's target stayed silent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NackResp {
    /// The requester's sequence number.
    pub seq_no: u32,
}

impl NackResp {
    /// The message, type byte first.
    pub fn encode(&self, w: &mut Writer) {
        w.buf.push(MessageType::Nack as u8);
        w.map(1).key("SeqNo").uint(self.seq_no.into());
    }
}

/// `suspect` and `dead` share a shape: `from` accuses `node` at `incarnation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Accusation {
    /// The accused's incarnation.
    pub incarnation: u32,
    /// The accused.
    #[serde(with = "nil_string")]
    pub node: String,
    /// The accuser (for a dead, `from == node` is a graceful leave).
    #[serde(with = "nil_string")]
    pub from: String,
}

impl Accusation {
    /// The message with type byte `t` (suspect or dead) first.
    pub fn encode(&self, t: MessageType, w: &mut Writer) {
        w.buf.push(t as u8);
        w.map(3)
            .key("From")
            .str(&self.from)
            .key("Incarnation")
            .uint(self.incarnation.into())
            .key("Node")
            .str(&self.node);
    }
}

/// `alive`: a node's claim about itself (gossiped by others too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Alive {
    /// Its incarnation.
    pub incarnation: u32,
    /// Its name.
    #[serde(with = "nil_string")]
    pub node: String,
    /// Its IP, 4 or 16 bytes, kept as sent.
    #[serde(with = "nil_bytes")]
    pub addr: Vec<u8>,
    /// Its port.
    pub port: u16,
    /// The delegate's meta (Serf: its tags).
    #[serde(with = "nil_bytes")]
    pub meta: Vec<u8>,
    /// `[PMin, PMax, PCur, DMin, DMax, DCur]`.
    #[serde(with = "nil_bytes")]
    pub vsn: Vec<u8>,
}

impl Alive {
    /// The message, type byte first.
    pub fn encode(&self, w: &mut Writer) {
        w.buf.push(MessageType::Alive as u8);
        let meta = (!self.meta.is_empty()).then_some(&self.meta[..]);
        w.map(6)
            .key("Addr")
            .raw(&self.addr)
            .key("Incarnation")
            .uint(self.incarnation.into())
            .key("Meta")
            .bytes_or_nil(meta)
            .key("Node")
            .str(&self.node)
            .key("Port")
            .uint(self.port.into())
            .key("Vsn")
            .raw(&self.vsn);
    }
}

/// `pushPullHeader`: starts a push-pull stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PushPullHeader {
    /// Node states that follow.
    pub nodes: i64,
    /// Raw delegate bytes after them.
    pub user_state_len: i64,
    /// Whether this is a join (else a periodic sync).
    pub join: bool,
}

impl PushPullHeader {
    /// The header, type byte first.
    pub fn encode(&self, w: &mut Writer) {
        w.buf.push(MessageType::PushPull as u8);
        w.map(3)
            .key("Join")
            .bool(self.join)
            .key("Nodes")
            .int(self.nodes)
            .key("UserStateLen")
            .int(self.user_state_len);
    }
}

/// The state of a node as memberlist knows it (`NodeStateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeState {
    /// Answers probes.
    Alive = 0,
    /// Missed a probe; may refute.
    Suspect = 1,
    /// Declared dead.
    Dead = 2,
    /// Left gracefully.
    Left = 3,
}

impl NodeState {
    /// The state of a wire value (unknown values read as dead, the safe side).
    pub fn from_wire(v: i64) -> NodeState {
        match v {
            0 => NodeState::Alive,
            1 => NodeState::Suspect,
            3 => NodeState::Left,
            _ => NodeState::Dead,
        }
    }
}

/// `pushNodeState`: one node of a push-pull.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PushNodeState {
    /// Its name (`Name` here, `Node` in an alive).
    #[serde(with = "nil_string")]
    pub name: String,
    /// Its IP.
    #[serde(with = "nil_bytes")]
    pub addr: Vec<u8>,
    /// Its port.
    pub port: u16,
    /// Its meta.
    #[serde(with = "nil_bytes")]
    pub meta: Vec<u8>,
    /// Its incarnation.
    pub incarnation: u32,
    /// 0 alive, 1 suspect, 2 dead, 3 left.
    pub state: i64,
    /// Its version vector.
    #[serde(with = "nil_bytes")]
    pub vsn: Vec<u8>,
}

impl PushNodeState {
    /// The map (no type byte: it follows a header).
    pub fn encode(&self, w: &mut Writer) {
        let meta = (!self.meta.is_empty()).then_some(&self.meta[..]);
        w.map(7)
            .key("Addr")
            .raw(&self.addr)
            .key("Incarnation")
            .uint(self.incarnation.into())
            .key("Meta")
            .bytes_or_nil(meta)
            .key("Name")
            .str(&self.name)
            .key("Port")
            .uint(self.port.into())
            .key("State")
            .int(self.state)
            .key("Vsn")
            .raw(&self.vsn);
    }
}

/// `compress`: an LZW-compressed message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Compress {
    /// 0 = LZW, the only one.
    pub algo: u8,
    /// The compressed bytes.
    #[serde(with = "nil_bytes")]
    pub buf: Vec<u8>,
}

impl Compress {
    /// The message, type byte first.
    pub fn encode(&self, w: &mut Writer) {
        w.buf.push(MessageType::Compress as u8);
        w.map(2)
            .key("Algo")
            .uint(self.algo.into())
            .key("Buf")
            .raw(&self.buf);
    }
}

/// `errResp`: a stream reader could not read our request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ErrResp {
    /// Why.
    #[serde(with = "nil_string")]
    pub error: String,
}

impl ErrResp {
    /// The message, type byte first.
    pub fn encode(&self, w: &mut Writer) {
        w.buf.push(MessageType::Err as u8);
        w.map(1).key("Error").str(&self.error);
    }
}

/// `userMsgHeader`: a user message on a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UserMsgHeader {
    /// Raw bytes that follow.
    pub user_msg_len: i64,
}

/// One message of a datagram, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A probe.
    Ping(Ping),
    /// Probe someone for the sender.
    IndirectPing(IndirectPingReq),
    /// A probe's answer.
    Ack(AckResp),
    /// An indirect probe's target stayed silent.
    Nack(NackResp),
    /// An accusation.
    Suspect(Accusation),
    /// A claim to be alive.
    Alive(Alive),
    /// A death or a leave.
    Dead(Accusation),
    /// Serf's bytes (after the type byte).
    User(Vec<u8>),
}

/// Decodes one message (type byte first) that is not a wrapper (compound, compress, crc).
pub fn decode_message(buf: &[u8]) -> Result<Message, DecodeError> {
    let (&t, body) = buf.split_first().ok_or(DecodeError::Truncated)?;
    let t = MessageType::from_byte(t)
        .ok_or_else(|| DecodeError::Invalid(format!("message type {t}")))?;
    Ok(match t {
        MessageType::Ping => Message::Ping(decode(body)?.0),
        MessageType::IndirectPing => Message::IndirectPing(decode(body)?.0),
        MessageType::Ack => Message::Ack(decode(body)?.0),
        MessageType::Nack => Message::Nack(decode(body)?.0),
        MessageType::Suspect => Message::Suspect(decode(body)?.0),
        MessageType::Alive => Message::Alive(decode(body)?.0),
        MessageType::Dead => Message::Dead(decode(body)?.0),
        MessageType::User => Message::User(body.to_vec()),
        other => {
            return Err(DecodeError::Invalid(format!(
                "{other:?} is not a datagram message"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_docs_ping_example_is_gos_bytes() {
        let ping = Ping {
            seq_no: 7,
            node: "serf1".into(),
            source_addr: vec![192, 0, 2, 10],
            source_port: 7946,
            source_node: "rust1".into(),
        };
        let mut w = Writer::default();
        ping.encode(&mut w);
        let doc = hex("00 85 a4 4e 6f 64 65 a5 73 65 72 66 31 a5 53 65 71 4e 6f 07
            aa 53 6f 75 72 63 65 41 64 64 72 a4 c0 00 02 0a
            aa 53 6f 75 72 63 65 4e 6f 64 65 a5 72 75 73 74 31
            aa 53 6f 75 72 63 65 50 6f 72 74 cd 1f 0a");
        assert_eq!(w.buf, doc);
        assert_eq!(decode_message(&doc), Ok(Message::Ping(ping)));
    }

    #[test]
    fn the_docs_ack_and_alive_examples_are_gos_bytes() {
        let mut w = Writer::default();
        AckResp {
            seq_no: 7,
            payload: vec![],
        }
        .encode(&mut w);
        assert_eq!(
            w.buf,
            hex("02 82 a7 50 61 79 6c 6f 61 64 c0 a5 53 65 71 4e 6f 07")
        );
        let alive = Alive {
            incarnation: 1,
            node: "rust1".into(),
            addr: vec![192, 0, 2, 10],
            port: 7946,
            meta: vec![0xff, 0x80],
            vsn: vec![1, 5, 2, 2, 5, 5],
        };
        let mut w = Writer::default();
        alive.encode(&mut w);
        let doc = hex(
            "04 86 a4 41 64 64 72 a4 c0 00 02 0a ab 49 6e 63 61 72 6e 61 74 69 6f 6e 01
            a4 4d 65 74 61 a2 ff 80 a4 4e 6f 64 65 a5 72 75 73 74 31 a4 50 6f 72 74 cd 1f 0a
            a3 56 73 6e a6 01 05 02 02 05 05",
        );
        assert_eq!(w.buf, doc);
        assert_eq!(decode_message(&doc), Ok(Message::Alive(alive)));
    }

    #[test]
    fn unknown_keys_are_ignored_and_missing_keys_are_zero() {
        let mut w = Writer::default();
        w.buf.push(2);
        w.map(2).key("Other").array(1).nil().key("SeqNo").uint(9);
        assert_eq!(
            decode_message(&w.buf),
            Ok(Message::Ack(AckResp {
                seq_no: 9,
                payload: vec![]
            }))
        );
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        for bad in [
            &[][..],
            &[0],
            &[0, 0xc1],
            &[4, 0x91, 0xc0],
            &[99, 0x80],
            &[0, 0x81, 0xa5],
        ] {
            assert!(decode_message(bad).is_err(), "{bad:?}");
        }
    }
}
