//! The framing around messages (memberlist-wire.md §1.3-1.7): compound datagrams, the CRC
//! header, compression, and the TCP stream layout. Everything here takes bytes from a peer
//! and bounds what it does with them: parts per datagram, wrapper nesting, decompressed size.

use crate::lzw;
use crate::messages::{
    Compress, ErrResp, Message, MessageType, Ping, PushNodeState, PushPullHeader, UserMsgHeader,
    decode_message,
};
use crate::msgpack::{DecodeError, Writer, decode};

/// Most parts in a compound we send: memberlist 0.2.2 mis-slices 128 or more.
pub const MAX_COMPOUND_PARTS: usize = 127;
/// Largest decompressed datagram accepted.
pub const MAX_DATAGRAM_PLAIN: usize = 64 * 1024;
/// Largest stream accepted (memberlist caps encrypted streams at 20 MiB; we need far less).
pub const MAX_STREAM: usize = 8 * 1024 * 1024;
/// Most node states in one push-pull.
pub const MAX_PUSH_NODES: usize = 65_536;
/// Wrappers (compound, compress) nested in one datagram before it is refused.
const MAX_NESTING: usize = 3;

/// A compound of `parts`, each a complete non-empty message. At most
/// [`MAX_COMPOUND_PARTS`] parts, each under 64 KiB (the caller keeps to that).
pub fn compound(parts: &[&[u8]]) -> Vec<u8> {
    debug_assert!(parts.len() <= MAX_COMPOUND_PARTS);
    let mut out =
        Vec::with_capacity(2 + parts.len() * 2 + parts.iter().map(|p| p.len()).sum::<usize>());
    out.push(MessageType::Compound as u8);
    out.push(parts.len() as u8);
    for p in parts {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// Splits a compound's body (after the type byte) into its parts; the count of parts cut off
/// by a short buffer comes second, as memberlist counts them.
pub fn split_compound(body: &[u8]) -> Result<(Vec<&[u8]>, usize), DecodeError> {
    let (&n, rest) = body.split_first().ok_or(DecodeError::Truncated)?;
    let n = usize::from(n);
    if rest.len() < n * 2 {
        return Err(DecodeError::Truncated);
    }
    let (lens, mut data) = rest.split_at(n * 2);
    let mut parts = Vec::with_capacity(n);
    for (i, len) in lens.chunks_exact(2).enumerate() {
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len > data.len() {
            return Ok((parts, n - i));
        }
        let (part, tail) = data.split_at(len);
        parts.push(part);
        data = tail;
    }
    Ok((parts, 0))
}

/// `[12][crc32 BE][payload]`.
pub fn with_crc(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(MessageType::HasCrc as u8);
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of a datagram with its CRC checked and removed; a datagram without one as is.
pub fn strip_crc(datagram: &[u8]) -> Result<&[u8], DecodeError> {
    if datagram.len() >= 5 && datagram[0] == MessageType::HasCrc as u8 {
        let want = u32::from_be_bytes([datagram[1], datagram[2], datagram[3], datagram[4]]);
        let payload = &datagram[5..];
        if crc32fast::hash(payload) != want {
            return Err(DecodeError::Invalid("crc mismatch".into()));
        }
        return Ok(payload);
    }
    Ok(datagram)
}

/// `[9][compress{Algo: 0, Buf: lzw(msg)}]`.
pub fn compressed(msg: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    Compress {
        algo: 0,
        buf: lzw::compress(msg),
    }
    .encode(&mut w);
    w.buf
}

/// The message inside a compress body (after the type byte); the bytes it took come second.
fn decompress_body(body: &[u8], max: usize) -> Result<(Vec<u8>, usize), DecodeError> {
    let (c, used): (Compress, usize) = decode(body)?;
    if c.algo != 0 {
        return Err(DecodeError::Invalid(format!(
            "compression algorithm {}",
            c.algo
        )));
    }
    let plain = lzw::decompress(&c.buf, max)?;
    if plain.is_empty() {
        return Err(DecodeError::Invalid("empty decompressed message".into()));
    }
    Ok((plain, used))
}

/// What a datagram held: its messages, and how many parts were bad (dropped, counted).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Datagram {
    /// Every message that decoded, in order.
    pub messages: Vec<Message>,
    /// Parts that did not decode, or were cut off.
    pub bad: usize,
    /// Why the first bad part was bad.
    pub first_error: Option<DecodeError>,
}

impl Datagram {
    fn fail(&mut self, e: DecodeError) {
        self.bad += 1;
        self.first_error.get_or_insert(e);
    }
}

/// Decodes a plaintext datagram (already decrypted): CRC, compounds and compression unwrapped.
pub fn decode_datagram(datagram: &[u8]) -> Datagram {
    let mut out = Datagram::default();
    match strip_crc(datagram) {
        Ok(payload) => walk(payload, 0, &mut out),
        Err(e) => out.fail(e),
    }
    out
}

fn walk(buf: &[u8], depth: usize, out: &mut Datagram) {
    if depth > MAX_NESTING {
        return out.fail(DecodeError::TooDeep);
    }
    match buf.first().copied().and_then(MessageType::from_byte) {
        Some(MessageType::Compound) => match split_compound(&buf[1..]) {
            Ok((parts, cut)) => {
                for part in parts {
                    walk(part, depth + 1, out);
                }
                for _ in 0..cut {
                    out.fail(DecodeError::Truncated);
                }
            }
            Err(e) => out.fail(e),
        },
        Some(MessageType::Compress) => match decompress_body(&buf[1..], MAX_DATAGRAM_PLAIN) {
            Ok((plain, _)) => walk(&plain, depth + 1, out),
            Err(e) => out.fail(e),
        },
        _ => match decode_message(buf) {
            Ok(m) => out.messages.push(m),
            Err(e) => out.fail(e),
        },
    }
}

/// A complete stream request or reply, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMessage {
    /// State sync: header, node states, the delegate's raw state.
    PushPull {
        /// Whether it is a join.
        join: bool,
        /// The nodes.
        nodes: Vec<PushNodeState>,
        /// Serf's bytes (`[2][messagePushPull]`), possibly empty.
        user_state: Vec<u8>,
    },
    /// A TCP ping.
    Ping(Ping),
    /// A TCP ping's ack.
    Ack(crate::messages::AckResp),
    /// A user message.
    User(Vec<u8>),
    /// The peer could not read what we sent.
    Err(String),
}

/// Decodes one stream message (already decrypted): `Truncated` means "read more".
/// The second value is the number of bytes the message took.
pub fn decode_stream(buf: &[u8]) -> Result<(StreamMessage, usize), DecodeError> {
    let (&t, body) = buf.split_first().ok_or(DecodeError::Truncated)?;
    match MessageType::from_byte(t) {
        Some(MessageType::Compress) => {
            let (plain, used) = decompress_body(body, MAX_STREAM)?;
            // A compressed stream holds one whole message: a short one is bad, not partial.
            let (m, _) = decode_stream(&plain).map_err(|e| match e {
                DecodeError::Truncated => {
                    DecodeError::Invalid("truncated compressed stream".into())
                }
                e => e,
            })?;
            Ok((m, 1 + used))
        }
        Some(MessageType::PushPull) => {
            let (header, mut pos): (PushPullHeader, usize) = decode(body)?;
            let n = usize::try_from(header.nodes)
                .map_err(|_| DecodeError::Invalid("negative node count".into()))?;
            let user = usize::try_from(header.user_state_len)
                .map_err(|_| DecodeError::Invalid("negative user state length".into()))?;
            if n > MAX_PUSH_NODES || user > MAX_STREAM {
                return Err(DecodeError::TooLarge);
            }
            let mut nodes = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let (node, used) = decode(&body[pos..])?;
                nodes.push(node);
                pos += used;
            }
            let end = pos.checked_add(user).ok_or(DecodeError::TooLarge)?;
            let user_state = body.get(pos..end).ok_or(DecodeError::Truncated)?.to_vec();
            Ok((
                StreamMessage::PushPull {
                    join: header.join,
                    nodes,
                    user_state,
                },
                1 + end,
            ))
        }
        Some(MessageType::Ping) => {
            let (p, used) = decode(body)?;
            Ok((StreamMessage::Ping(p), 1 + used))
        }
        Some(MessageType::Ack) => {
            let (a, used) = decode(body)?;
            Ok((StreamMessage::Ack(a), 1 + used))
        }
        Some(MessageType::Err) => {
            let (e, used): (ErrResp, usize) = decode(body)?;
            Ok((StreamMessage::Err(e.error), 1 + used))
        }
        Some(MessageType::User) => {
            let (h, pos): (UserMsgHeader, usize) = decode(body)?;
            let len = usize::try_from(h.user_msg_len)
                .map_err(|_| DecodeError::Invalid("negative length".into()))?;
            if len > MAX_STREAM {
                return Err(DecodeError::TooLarge);
            }
            let data = body
                .get(pos..pos + len)
                .ok_or(DecodeError::Truncated)?
                .to_vec();
            Ok((StreamMessage::User(data), 1 + pos + len))
        }
        _ => Err(DecodeError::Invalid(format!("stream message type {t}"))),
    }
}

/// How long the stream frame at the start of `buf` is: `Ok(None)` while more bytes are
/// needed, an error when it can never be one (the reader then closes the stream). An
/// encrypted frame (`[10][u32 len]…`) is measured by its prefix, checked against
/// [`MAX_STREAM`] before anything is buffered for it.
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() > MAX_STREAM {
        return Err(DecodeError::TooLarge);
    }
    if buf.first() == Some(&(MessageType::Encrypt as u8)) {
        let Some(len) = buf.get(1..5) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_STREAM {
            return Err(DecodeError::TooLarge);
        }
        return Ok((buf.len() >= 5 + len).then_some(5 + len));
    }
    match decode_stream(buf) {
        Ok((_, n)) => Ok(Some(n)),
        Err(DecodeError::Truncated) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A push-pull message: header, node states, user state (no compression).
pub fn encode_push_pull(join: bool, nodes: &[PushNodeState], user_state: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    PushPullHeader {
        nodes: nodes.len() as i64,
        user_state_len: user_state.len() as i64,
        join,
    }
    .encode(&mut w);
    for n in nodes {
        n.encode(&mut w);
    }
    w.extend(user_state);
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_round_trip_and_cut_parts() {
        let c = compound(&[b"\x08ab", b"\x08c"]);
        assert_eq!(c, [7, 2, 0, 3, 0, 2, 8, b'a', b'b', 8, b'c']);
        let (parts, cut) = split_compound(&c[1..]).unwrap();
        assert_eq!((parts, cut), (vec![&b"\x08ab"[..], &b"\x08c"[..]], 0));
        let (parts, cut) = split_compound(&c[1..c.len() - 1]).unwrap();
        assert_eq!((parts.len(), cut), (1, 1));
        assert!(split_compound(&[200, 0]).is_err());
    }

    #[test]
    fn crc_is_ieee_and_checked() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        let d = with_crc(b"\x08x");
        assert_eq!(strip_crc(&d).unwrap(), b"\x08x");
        let mut bad = d.clone();
        bad[6] ^= 1;
        assert!(strip_crc(&bad).is_err());
    }

    #[test]
    fn nested_wrappers_are_bounded() {
        let mut m = b"\x08x".to_vec();
        for _ in 0..6 {
            m = compound(&[&m]);
        }
        let d = decode_datagram(&m);
        assert!(d.messages.is_empty());
        assert_eq!(d.first_error, Some(DecodeError::TooDeep));
    }

    #[test]
    fn compressed_datagrams_unwrap() {
        let d = decode_datagram(&compressed(b"\x08hello"));
        assert_eq!(d.messages, vec![Message::User(b"hello".to_vec())]);
    }
}
