//! The SWIM payload codec (see the table in the [module docs](super)). Encoding appends to a
//! caller's buffer; decoding borrows from the input and never allocates, so a message can be
//! fully validated in one pass and applied in a second.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use gossiper_types::codec::{Reader, put_bytes, put_varint};
use gossiper_types::{DecodeError, NodeId};

use crate::MemberStatus;

/// Longest member name accepted, bytes.
pub(crate) const MAX_NAME: usize = 128;
/// Most items one message may carry.
pub(crate) const MAX_ITEMS: usize = 8_192;
/// Bytes reserved for the item count varint (`MAX_ITEMS` fits in two).
pub(crate) const COUNT_RESERVE: usize = 2;
/// Buckets of the membership fingerprint (`2^BUCKET_BITS`).
pub(crate) const BUCKETS: usize = 64;
/// Bits of a bucket number.
pub(crate) const BUCKET_BITS: u8 = 6;

/// The bytes of a Buckets message of `2^bits` buckets, count included.
pub(crate) fn buckets_len(bits: u8) -> usize {
    3 + 8 * (1 << bits)
}

/// Folds per-bucket fingerprints to `2^bits` buckets: folded bucket `j` is the xor of the
/// buckets `b` with `b >> (6 - bits) == j`, so a bucket number's top bits pick its fold.
pub(crate) fn fold(fps: &[u64; BUCKETS], bits: u8) -> [u64; BUCKETS] {
    let shift = BUCKET_BITS - bits.min(BUCKET_BITS);
    let mut out = [0u64; BUCKETS];
    for (b, fp) in fps.iter().enumerate() {
        out[b >> shift] ^= fp;
    }
    out
}

/// The bucket of member `id`'s share of the membership fingerprint: the top 6 bits of the
/// id, mixed first (ids are FNV hashes of names, whose high bits barely differ between names
/// like `node-17` and `node-18`).
pub(crate) fn bucket(id: NodeId) -> usize {
    let mut x = id.0 ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((x ^ (x >> 31)) >> 58) as usize
}

/// The message type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MsgType {
    Ping = 1,
    Ack = 2,
    PingReq = 3,
    Nack = 4,
    PushPull = 5,
    Gossip = 6,
    Whois = 7,
    Buckets = 8,
}

/// The kind byte of a piggybacked update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Alive = 1,
    Suspect = 2,
    Dead = 3,
}

/// A piggybacked membership update. `from` is the member itself for Alive; a Dead whose
/// `from` is the member itself is a graceful leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Update<'a> {
    pub kind: Kind,
    pub id: NodeId,
    pub generation: u64,
    pub incarnation: u64,
    pub from: NodeId,
    pub name: &'a str,
    pub addr: Option<SocketAddr>,
}

/// One row of a push-pull table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub status: MemberStatus,
    pub id: NodeId,
    pub generation: u64,
    pub incarnation: u64,
    pub name: &'a str,
    pub addr: SocketAddr,
}

/// The fixed part of a message.
// Buckets is 520 bytes against 32 for the rest: a header lives on the stack for one datagram,
// and boxing the fingerprints would allocate for every one received.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    Ping {
        seq: u64,
        target: NodeId,
    },
    Ack {
        seq: u64,
        target: NodeId,
    },
    PingReq {
        seq: u64,
        target: NodeId,
        addr: SocketAddr,
    },
    Nack {
        seq: u64,
        target: NodeId,
    },
    PushPull {
        reply_wanted: bool,
        /// Only the records in these buckets (bit `b` for bucket `b`); `None`: the whole table.
        buckets: Option<u64>,
    },
    Gossip,
    /// "Who are you?": the receiver answers with a Gossip of its own Alive update.
    Whois,
    /// The sender's membership fingerprint per bucket, folded to `2^bits` buckets (so that
    /// the list fits a small MTU; [`fold`]): the receiver answers with a push-pull of the
    /// buckets that differ from its own.
    Buckets {
        bits: u8,
        fps: [u64; BUCKETS],
    },
}

/// Appends the fixed part of a message (everything before the count).
pub(crate) fn put_header(out: &mut Vec<u8>, h: &Header) {
    match *h {
        Header::Ping { seq, target } => put_seq_target(out, MsgType::Ping, seq, target),
        Header::Ack { seq, target } => put_seq_target(out, MsgType::Ack, seq, target),
        Header::Nack { seq, target } => put_seq_target(out, MsgType::Nack, seq, target),
        Header::PingReq { seq, target, addr } => {
            put_seq_target(out, MsgType::PingReq, seq, target);
            put_addr(out, addr);
        }
        Header::PushPull {
            reply_wanted,
            buckets,
        } => {
            out.push(MsgType::PushPull as u8);
            out.push(u8::from(reply_wanted) | (u8::from(buckets.is_some()) << 1));
            if let Some(mask) = buckets {
                out.extend_from_slice(&mask.to_le_bytes());
            }
        }
        Header::Gossip => out.push(MsgType::Gossip as u8),
        Header::Whois => out.push(MsgType::Whois as u8),
        Header::Buckets { bits, fps } => {
            out.push(MsgType::Buckets as u8);
            out.push(bits);
            for fp in &fps[..1 << bits.min(BUCKET_BITS)] {
                out.extend_from_slice(&fp.to_le_bytes());
            }
        }
    }
}

fn put_seq_target(out: &mut Vec<u8>, t: MsgType, seq: u64, target: NodeId) {
    out.push(t as u8);
    put_varint(out, seq);
    out.extend_from_slice(&target.0.to_le_bytes());
}

/// Appends a count varint.
pub(crate) fn put_count(out: &mut Vec<u8>, n: usize) {
    put_varint(out, n as u64);
}

/// Appends a socket address: family byte (4 or 6), the ip bytes, the port (2 bytes LE).
pub(crate) fn put_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_le_bytes());
}

/// Appends one update.
pub(crate) fn put_update(out: &mut Vec<u8>, u: &Update<'_>) {
    out.push(u.kind as u8);
    out.extend_from_slice(&u.id.0.to_le_bytes());
    put_varint(out, u.generation);
    put_varint(out, u.incarnation);
    match (u.kind, u.addr) {
        (Kind::Alive, Some(addr)) => {
            put_bytes(out, truncate(u.name).as_bytes());
            put_addr(out, addr);
        }
        (Kind::Alive, None) => {
            // Never built: Alive updates always carry an address. Encode the unspecified one.
            put_bytes(out, truncate(u.name).as_bytes());
            put_addr(out, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        }
        _ => out.extend_from_slice(&u.from.0.to_le_bytes()),
    }
}

/// Appends one push-pull record.
pub(crate) fn put_record(out: &mut Vec<u8>, r: &Record<'_>) {
    out.push(match r.status {
        MemberStatus::Alive => 0,
        MemberStatus::Suspect => 1,
        MemberStatus::Dead => 2,
        MemberStatus::Left => 3,
    });
    out.extend_from_slice(&r.id.0.to_le_bytes());
    put_varint(out, r.generation);
    put_varint(out, r.incarnation);
    put_bytes(out, truncate(r.name).as_bytes());
    put_addr(out, r.addr);
}

/// The longest prefix of `name` within [`MAX_NAME`] bytes, cut at a character boundary.
pub(crate) fn truncate(name: &str) -> &str {
    if name.len() <= MAX_NAME {
        return name;
    }
    let mut end = MAX_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Reads the fixed part and the item count; the reader is left at the first item.
pub(crate) fn read_header<'a>(
    payload: &'a [u8],
) -> Result<(Header, usize, Reader<'a>), DecodeError> {
    let mut r = Reader::new(payload);
    let t = r.u8()?;
    let h = match t {
        1 => Header::Ping {
            seq: r.varint()?,
            target: id(&mut r)?,
        },
        2 => Header::Ack {
            seq: r.varint()?,
            target: id(&mut r)?,
        },
        3 => Header::PingReq {
            seq: r.varint()?,
            target: id(&mut r)?,
            addr: addr(&mut r)?,
        },
        4 => Header::Nack {
            seq: r.varint()?,
            target: id(&mut r)?,
        },
        5 => {
            let flags = r.u8()?;
            if flags > 3 {
                return Err(DecodeError::Invalid("push-pull flags"));
            }
            let buckets = if flags & 2 != 0 {
                Some(u64_le(&mut r)?)
            } else {
                None
            };
            Header::PushPull {
                reply_wanted: flags & 1 != 0,
                buckets,
            }
        }
        6 => Header::Gossip,
        7 => Header::Whois,
        8 => {
            let bits = r.u8()?;
            if bits > BUCKET_BITS {
                return Err(DecodeError::Invalid("bucket bits"));
            }
            let mut fps = [0u64; BUCKETS];
            for fp in &mut fps[..1 << bits] {
                *fp = u64_le(&mut r)?;
            }
            Header::Buckets { bits, fps }
        }
        k => return Err(DecodeError::UnknownKind(k)),
    };
    // Every item is at least 12 bytes: a count beyond that is a lie.
    let max = MAX_ITEMS.min(r.remaining().len() / 12);
    let n = r.len(max, "item count")?;
    Ok((h, n, r))
}

fn u64_le(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    let b = r.take(8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

fn id(r: &mut Reader<'_>) -> Result<NodeId, DecodeError> {
    u64_le(r).map(NodeId)
}

fn addr(r: &mut Reader<'_>) -> Result<SocketAddr, DecodeError> {
    let ip = match r.u8()? {
        4 => {
            let b = r.take(4)?;
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        6 => {
            let b = r.take(16)?;
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return Err(DecodeError::Invalid("address family")),
    };
    let p = r.take(2)?;
    Ok(SocketAddr::new(ip, u16::from_le_bytes([p[0], p[1]])))
}

fn name<'a>(r: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    let n = r.len(MAX_NAME, "name length")?;
    std::str::from_utf8(r.take(n)?).map_err(|_| DecodeError::Invalid("utf-8 name"))
}

/// Reads one update.
pub(crate) fn read_update<'a>(r: &mut Reader<'a>) -> Result<Update<'a>, DecodeError> {
    let kind = match r.u8()? {
        1 => Kind::Alive,
        2 => Kind::Suspect,
        3 => Kind::Dead,
        _ => return Err(DecodeError::Invalid("update kind")),
    };
    let id = id(r)?;
    let generation = r.varint()?;
    let incarnation = r.varint()?;
    let (from, name, addr) = match kind {
        Kind::Alive => (id, name(r)?, Some(addr(r)?)),
        _ => (self::id(r)?, "", None),
    };
    Ok(Update {
        kind,
        id,
        generation,
        incarnation,
        from,
        name,
        addr,
    })
}

/// Reads one push-pull record.
pub(crate) fn read_record<'a>(r: &mut Reader<'a>) -> Result<Record<'a>, DecodeError> {
    let status = match r.u8()? {
        0 => MemberStatus::Alive,
        1 => MemberStatus::Suspect,
        2 => MemberStatus::Dead,
        3 => MemberStatus::Left,
        _ => return Err(DecodeError::Invalid("record status")),
    };
    Ok(Record {
        status,
        id: id(r)?,
        generation: r.varint()?,
        incarnation: r.varint()?,
        name: name(r)?,
        addr: addr(r)?,
    })
}

/// Validates a whole message without applying anything.
pub(crate) fn validate(payload: &[u8]) -> Result<Header, DecodeError> {
    let (h, n, mut r) = read_header(payload)?;
    for _ in 0..n {
        if matches!(h, Header::PushPull { .. }) {
            read_record(&mut r)?;
        } else {
            read_update(&mut r)?;
        }
    }
    r.finish()?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(kind: Kind) -> Update<'static> {
        Update {
            kind,
            id: NodeId(0x0102_0304_0506_0708),
            generation: 7,
            incarnation: 300,
            from: if kind == Kind::Alive {
                NodeId(0x0102_0304_0506_0708)
            } else {
                NodeId(5)
            },
            name: if kind == Kind::Alive { "node-a" } else { "" },
            addr: if kind == Kind::Alive {
                Some("[::1]:7000".parse().unwrap())
            } else {
                None
            },
        }
    }

    #[test]
    fn every_message_round_trips() {
        let headers = [
            Header::Ping {
                seq: 1,
                target: NodeId(2),
            },
            Header::Ack {
                seq: 300,
                target: NodeId(u64::MAX),
            },
            Header::PingReq {
                seq: 9,
                target: NodeId(3),
                addr: "10.0.0.1:99".parse().unwrap(),
            },
            Header::Nack {
                seq: 0,
                target: NodeId(0),
            },
            Header::Gossip,
        ];
        for h in headers {
            let mut out = Vec::new();
            put_header(&mut out, &h);
            put_count(&mut out, 3);
            for k in [Kind::Alive, Kind::Suspect, Kind::Dead] {
                put_update(&mut out, &sample(k));
            }
            assert_eq!(validate(&out), Ok(h));
            let (h2, n, mut r) = read_header(&out).unwrap();
            assert_eq!((h2, n), (h, 3));
            for k in [Kind::Alive, Kind::Suspect, Kind::Dead] {
                assert_eq!(read_update(&mut r).unwrap(), sample(k));
            }
            assert!(r.finish().is_ok());
        }
    }

    #[test]
    fn records_round_trip_and_an_idle_ping_is_small() {
        let rec = Record {
            status: MemberStatus::Left,
            id: NodeId(1),
            generation: 2,
            incarnation: 3,
            name: "x",
            addr: "1.2.3.4:5".parse().unwrap(),
        };
        let mut out = Vec::new();
        for buckets in [None, Some(0x8000_0000_0000_0001)] {
            out.clear();
            let h = Header::PushPull {
                reply_wanted: true,
                buckets,
            };
            put_header(&mut out, &h);
            put_count(&mut out, 1);
            put_record(&mut out, &rec);
            let (got, _, mut r) = read_header(&out).unwrap();
            assert_eq!(got, h);
            assert_eq!(read_record(&mut r).unwrap(), rec);
        }
        let mut fps = [0u64; BUCKETS];
        fps[3] = 7;
        fps[63] = u64::MAX;
        for bits in [0, 3, BUCKET_BITS] {
            let folded = fold(&fps, bits);
            let h = Header::Buckets { bits, fps: folded };
            out.clear();
            put_header(&mut out, &h);
            put_count(&mut out, 0);
            assert_eq!(out.len(), buckets_len(bits));
            assert_eq!(validate(&out).unwrap(), h);
            out.truncate(out.len() - 2);
            assert!(validate(&out).is_err(), "a short bucket list is refused");
        }
        assert_eq!(fold(&fps, 0)[0], 7 ^ u64::MAX);
        assert_eq!(fold(&fps, 1), {
            let mut f = [0; BUCKETS];
            f[0] = 7;
            f[1] = u64::MAX;
            f
        });
        assert!(
            validate(&[MsgType::Buckets as u8, 7, 0]).is_err(),
            "at most 64 buckets"
        );
        let mut ping = Vec::new();
        put_header(
            &mut ping,
            &Header::Ping {
                seq: 5,
                target: NodeId(9),
            },
        );
        put_count(&mut ping, 0);
        assert_eq!(ping.len(), 11);
    }

    #[test]
    fn lies_are_rejected() {
        let mut out = Vec::new();
        put_header(&mut out, &Header::Gossip);
        put_count(&mut out, 1_000);
        assert!(validate(&out).is_err());
        let mut long = vec![MsgType::Gossip as u8, 1, 1];
        long.extend_from_slice(&[0; 10]);
        put_varint(&mut long, 200);
        long.extend_from_slice(&[b'a'; 200]);
        assert!(validate(&long).is_err());
        assert_eq!(truncate(&"é".repeat(100)).len(), 128);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = validate(&b);
        }
    }
}
