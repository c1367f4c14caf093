//! The datagram envelope: magic, protocol version, cluster identity, optional AEAD, message
//! type, sender, payload — and the keyring that seals it.
//!
//! ```text
//! plain:     "GS" | version u8 | flags u8 | cluster u64le | type u8 | sender u64le | gen varint | payload
//! encrypted: "GS" | version u8 | flags u8 | cluster u64le | nonce[24] | seal(type .. payload) | tag[16]
//! ```
//!
//! The first 12 bytes are the associated data of the seal, so the cluster identity is
//! authenticated too. The nonce is `sender id | generation | packet counter`: unique for as long
//! as a generation is never reused by the same node, which the protocol needs anyway.
//! XChaCha20-Poly1305 (RFC 8439 with a 192-bit nonce) from RustCrypto.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use gossiper_types::codec::{Reader, put_varint};
use gossiper_types::{DecodeError, NodeId};

/// The two bytes every gossiper datagram starts with.
pub const MAGIC: [u8; 2] = *b"GS";
/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;
const FLAG_ENCRYPTED: u8 = 1;
/// Bytes authenticated but not encrypted: magic, version, flags, cluster.
const AAD_LEN: usize = 2 + 1 + 1 + 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Largest header before the payload, unencrypted: AAD, type, sender id, generation varint.
const PLAIN_HEADER_MAX: usize = AAD_LEN + 1 + 8 + 10;

/// What a datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EnvelopeKind {
    /// An engine message (Syn, SynAck, Ack, Push, ...).
    Gossip = 1,
    /// "The cluster forgot your generation `payload`: come back with a newer one."
    Rebirth = 2,
    /// A SWIM membership message (probe, ack, indirect probe, join, piggybacked updates).
    Swim = 3,
    /// An anti-entropy opener: the 8-byte fingerprint of the sender's version vector and the
    /// 8-byte fingerprint of its live membership. A receiver whose own differ opens an engine
    /// exchange (or a membership table exchange) with the sender; one that agrees says
    /// nothing, so replicas in sync pay 16 bytes of payload per exchange.
    Sync = 4,
    /// An engine Push spread down the broadcast tree (`node/broadcast.rs`): the 8-byte id of
    /// the node the tree is rooted at, then the engine message.
    Broadcast = 5,
    /// Bytes that mean nothing: a φ joiner sends a full datagram of them before its first Syn
    /// to a seed, so that the seed may answer in full before the joiner has proven it receives
    /// (`node/credit.rs`; QUIC pads its first datagram for the same reason).
    Padding = 6,
}

/// A datagram opened by [`Codec::open`], borrowing its payload from the buffer it was opened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// What the payload is.
    pub kind: EnvelopeKind,
    /// Who sent it.
    pub sender: NodeId,
    /// The sender's generation.
    pub generation: u64,
    /// The sender's packet counter from the authenticated nonce (sealed datagrams; 0 when
    /// plain): with `sender` and `generation`, unique per datagram, so replays can be told.
    pub counter: u64,
    /// The message.
    pub payload: &'a [u8],
}

/// Why a datagram was refused. A refused datagram changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Not a gossiper datagram, or a malformed message inside one.
    Garbage,
    /// Ended in the middle of a field.
    Truncated,
    /// Larger than the configured MTU.
    Oversized,
    /// A protocol version this build does not speak.
    UnknownVersion,
    /// Another cluster's datagram.
    ForeignCluster,
    /// Failed authentication, or plain where a key is required (or sealed where none is).
    AuthFailure,
    /// Claims to come from this very node.
    FromSelf,
    /// From a node generation the cluster has forgotten.
    Forgotten,
    /// A sealed datagram already received (or older than the replay window).
    Replayed,
}

impl DropReason {
    /// Every reason, in a stable order (for metrics).
    pub const ALL: [DropReason; 9] = [
        DropReason::Garbage,
        DropReason::Truncated,
        DropReason::Oversized,
        DropReason::UnknownVersion,
        DropReason::ForeignCluster,
        DropReason::AuthFailure,
        DropReason::FromSelf,
        DropReason::Forgotten,
        DropReason::Replayed,
    ];

    /// A stable snake_case label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Garbage => "garbage",
            DropReason::Truncated => "truncated",
            DropReason::Oversized => "oversized",
            DropReason::UnknownVersion => "unknown_version",
            DropReason::ForeignCluster => "foreign_cluster",
            DropReason::AuthFailure => "auth_failure",
            DropReason::FromSelf => "from_self",
            DropReason::Forgotten => "forgotten",
            DropReason::Replayed => "replayed",
        }
    }

    pub(crate) fn from_decode(e: DecodeError) -> DropReason {
        match e {
            DecodeError::Truncated => DropReason::Truncated,
            _ => DropReason::Garbage,
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl std::error::Error for DropReason {}

/// Why a keyring could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// 256-bit keys: the first (primary) seals, every one opens, so keys rotate without downtime
/// (install the new key everywhere, make it primary everywhere, then remove the old one).
#[derive(Clone)]
pub struct Keyring {
    ciphers: Vec<XChaCha20Poly1305>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.ciphers.len())
    }
}

impl Keyring {
    /// A keyring from raw keys, primary first. At least one key.
    pub fn new(keys: &[[u8; 32]]) -> Result<Keyring, KeyError> {
        if keys.is_empty() {
            return Err(KeyError("a keyring needs at least one key".into()));
        }
        Ok(Keyring {
            ciphers: keys
                .iter()
                .map(|k| XChaCha20Poly1305::new(&Key::from(*k)))
                .collect(),
        })
    }

    /// Parses a key file: one key per line as 64 hex digits, primary first; blank lines and
    /// lines starting with `#` are ignored.
    pub fn parse(text: &str) -> Result<Keyring, KeyError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            keys.push(parse_hex_key(line).map_err(|e| KeyError(format!("line {}: {e}", i + 1)))?);
        }
        Keyring::new(&keys)
    }

    /// Number of installed keys.
    pub fn len(&self) -> usize {
        self.ciphers.len()
    }

    /// Always false: a keyring holds at least one key.
    pub fn is_empty(&self) -> bool {
        self.ciphers.is_empty()
    }
}

/// Parses 64 hex digits into a key.
pub fn parse_hex_key(s: &str) -> Result<[u8; 32], KeyError> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(KeyError(format!(
            "a key is 64 hex digits, got {} characters",
            s.len()
        )));
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
            .map_err(|_| KeyError("a key is 64 hex digits".into()))?;
    }
    Ok(key)
}

/// Seals and opens datagrams for one node of one cluster.
#[derive(Debug, Clone)]
pub struct Codec {
    cluster: u64,
    keyring: Option<Keyring>,
    counter: u64,
}

impl Codec {
    /// A codec for the cluster named `cluster`, sealing with `keyring` if given.
    pub fn new(cluster: &str, keyring: Option<Keyring>) -> Codec {
        Codec {
            cluster: NodeId::from_name(cluster).0,
            keyring,
            counter: 0,
        }
    }

    /// Bytes the envelope adds around a payload, at most.
    pub fn overhead(&self) -> usize {
        PLAIN_HEADER_MAX
            + if self.keyring.is_some() {
                NONCE_LEN + TAG_LEN
            } else {
                0
            }
    }

    /// True when datagrams are sealed.
    pub fn encrypted(&self) -> bool {
        self.keyring.is_some()
    }

    /// Seals with `keyring` from now on (its first key) and opens with any of its keys. The
    /// nonce counter goes on, so a key kept across the swap never sees a nonce twice.
    /// Sealing cannot be turned on or off this way (the overhead would change): a codec
    /// without a keyring keeps none, and false is returned.
    pub fn replace_keyring(&mut self, keyring: Keyring) -> bool {
        if self.keyring.is_none() {
            return false;
        }
        self.keyring = Some(keyring);
        true
    }

    /// Appends a whole datagram to `out`.
    pub fn seal(
        &mut self,
        kind: EnvelopeKind,
        sender: NodeId,
        generation: u64,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.extend_from_slice(&MAGIC);
        out.push(PROTOCOL_VERSION);
        out.push(if self.keyring.is_some() {
            FLAG_ENCRYPTED
        } else {
            0
        });
        out.extend_from_slice(&self.cluster.to_le_bytes());
        let Some(ring) = &self.keyring else {
            write_inner(kind, sender, generation, payload, out);
            return;
        };
        self.counter += 1;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&sender.0.to_le_bytes());
        nonce[8..16].copy_from_slice(&generation.to_le_bytes());
        nonce[16..].copy_from_slice(&self.counter.to_le_bytes());
        out.extend_from_slice(&nonce);
        let body = out.len();
        write_inner(kind, sender, generation, payload, out);
        let (head, rest) = out.split_at_mut(body);
        let aad = &head[start..start + AAD_LEN];
        // Encryption of an in-memory buffer of valid length cannot fail.
        if let Ok(tag) =
            ring.ciphers[0].encrypt_inout_detached(&XNonce::from(nonce), aad, rest.into())
        {
            out.extend_from_slice(tag.as_slice());
        }
    }

    /// Opens a datagram of at most `mtu` bytes. Decrypts in place, so `buf` is modified.
    pub fn open<'a>(&self, buf: &'a mut [u8], mtu: usize) -> Result<Envelope<'a>, DropReason> {
        if buf.len() > mtu {
            return Err(DropReason::Oversized);
        }
        if buf.len() < 3 {
            return Err(if buf.starts_with(&MAGIC[..buf.len().min(2)]) {
                DropReason::Truncated
            } else {
                DropReason::Garbage
            });
        }
        if buf[..2] != MAGIC {
            return Err(DropReason::Garbage);
        }
        if buf[2] != PROTOCOL_VERSION {
            return Err(DropReason::UnknownVersion);
        }
        if buf.len() < AAD_LEN {
            return Err(DropReason::Truncated);
        }
        let flags = buf[3];
        if flags & !FLAG_ENCRYPTED != 0 {
            return Err(DropReason::Garbage);
        }
        let mut cluster = [0u8; 8];
        cluster.copy_from_slice(&buf[4..12]);
        if u64::from_le_bytes(cluster) != self.cluster {
            return Err(DropReason::ForeignCluster);
        }
        let encrypted = flags & FLAG_ENCRYPTED != 0;
        let mut sealed_by = None;
        let inner: &'a [u8] = match (&self.keyring, encrypted) {
            (None, false) => &buf[AAD_LEN..],
            (Some(ring), true) => {
                if buf.len() < AAD_LEN + NONCE_LEN + TAG_LEN {
                    return Err(DropReason::Truncated);
                }
                let (aad, rest) = buf.split_at_mut(AAD_LEN);
                let (nonce, rest) = rest.split_at_mut(NONCE_LEN);
                let tag_at = rest.len() - TAG_LEN;
                let (body, tag) = rest.split_at_mut(tag_at);
                let mut nonce_arr = [0u8; NONCE_LEN];
                nonce_arr.copy_from_slice(nonce);
                let word = |i: usize| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&nonce_arr[i * 8..i * 8 + 8]);
                    u64::from_le_bytes(w)
                };
                sealed_by = Some((word(0), word(1), word(2)));
                let mut tag_arr = [0u8; TAG_LEN];
                tag_arr.copy_from_slice(tag);
                let (nonce, tag) = (XNonce::from(nonce_arr), Tag::from(tag_arr));
                let copy = body.to_vec();
                let mut opened = false;
                for cipher in &ring.ciphers {
                    if cipher
                        .decrypt_inout_detached(&nonce, aad, (&mut *body).into(), &tag)
                        .is_ok()
                    {
                        opened = true;
                        break;
                    }
                    body.copy_from_slice(&copy); // a failed attempt may leave garbage
                }
                if !opened {
                    return Err(DropReason::AuthFailure);
                }
                &*body
            }
            _ => return Err(DropReason::AuthFailure),
        };
        let mut r = Reader::new(inner);
        let kind = match r.u8().map_err(DropReason::from_decode)? {
            1 => EnvelopeKind::Gossip,
            2 => EnvelopeKind::Rebirth,
            3 => EnvelopeKind::Swim,
            4 => EnvelopeKind::Sync,
            5 => EnvelopeKind::Broadcast,
            6 => EnvelopeKind::Padding,
            _ => return Err(DropReason::Garbage),
        };
        let id = r.take(8).map_err(DropReason::from_decode)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(id);
        let generation = r.varint().map_err(DropReason::from_decode)?;
        let sender = NodeId(u64::from_le_bytes(a));
        let counter = match sealed_by {
            // The nonce names who sealed it: a member replaying another's datagram under its
            // own name, or mixing them, fails here.
            Some((id, g, c)) if id == sender.0 && g == generation => c,
            Some(_) => return Err(DropReason::AuthFailure),
            None => 0,
        };
        Ok(Envelope {
            kind,
            sender,
            generation,
            counter,
            payload: r.remaining(),
        })
    }
}

fn write_inner(
    kind: EnvelopeKind,
    sender: NodeId,
    generation: u64,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    out.push(kind as u8);
    out.extend_from_slice(&sender.0.to_le_bytes());
    put_varint(out, generation);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring(byte: u8) -> Keyring {
        Keyring::new(&[[byte; 32]]).unwrap()
    }

    fn seal(c: &mut Codec, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        c.seal(EnvelopeKind::Gossip, NodeId(7), 42, payload, &mut out);
        out
    }

    #[test]
    fn plain_and_sealed_round_trip_within_overhead() {
        for keyring in [None, Some(ring(1))] {
            let mut c = Codec::new("prod", keyring);
            let mut d = seal(&mut c, b"hello");
            assert!(d.len() <= 5 + c.overhead());
            let e = c.open(&mut d, 1_400).unwrap();
            assert_eq!(
                (e.kind, e.sender, e.generation, e.payload),
                (EnvelopeKind::Gossip, NodeId(7), 42, &b"hello"[..])
            );
        }
    }

    #[test]
    fn foreign_clusters_versions_and_keys_are_refused() {
        let mut prod = Codec::new("prod", None);
        let staging = Codec::new("staging", None);
        let mut d = seal(&mut prod, b"x");
        assert_eq!(
            staging.open(&mut d.clone(), 1_400),
            Err(DropReason::ForeignCluster)
        );
        d[2] = 9;
        assert_eq!(prod.open(&mut d, 1_400), Err(DropReason::UnknownVersion));
        let mut keyed = Codec::new("prod", Some(ring(1)));
        let wrong = Codec::new("prod", Some(ring(2)));
        let sealed = seal(&mut keyed, b"secret");
        assert_eq!(
            wrong.open(&mut sealed.clone(), 1_400),
            Err(DropReason::AuthFailure)
        );
        assert_eq!(
            prod.open(&mut sealed.clone(), 1_400),
            Err(DropReason::AuthFailure)
        );
        let plain = seal(&mut prod, b"x");
        assert_eq!(
            keyed.open(&mut plain.clone(), 1_400),
            Err(DropReason::AuthFailure)
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 20;
        tampered[last] ^= 1;
        assert_eq!(
            keyed.open(&mut tampered, 1_400),
            Err(DropReason::AuthFailure)
        );
        assert_eq!(
            keyed.open(&mut sealed.clone(), 10),
            Err(DropReason::Oversized)
        );
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "payload is encrypted"
        );
    }

    #[test]
    fn every_installed_key_opens_the_primary_seals() {
        let old = [1u8; 32];
        let new = [2u8; 32];
        let mut old_only = Codec::new("c", Some(Keyring::new(&[old]).unwrap()));
        let rotating = Codec::new("c", Some(Keyring::new(&[new, old]).unwrap()));
        let mut d = seal(&mut old_only, b"during rotation");
        assert_eq!(
            rotating.open(&mut d, 1_400).unwrap().payload,
            b"during rotation"
        );
        let text = format!("# primary\n{}\n\n{}\n", "02".repeat(32), "01".repeat(32));
        assert_eq!(Keyring::parse(&text).unwrap().len(), 2);
        assert!(Keyring::parse("zz").is_err());
        assert!(Keyring::parse("").is_err());
    }

    proptest! {
        #[test]
        fn envelopes_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..300),
                                keyed in any::<bool>(), id in any::<u64>(), generation in any::<u64>()) {
            let mut c = Codec::new("p", keyed.then(|| ring(3)));
            let mut out = Vec::new();
            c.seal(EnvelopeKind::Rebirth, NodeId(id), generation, &payload, &mut out);
            prop_assert!(out.len() <= payload.len() + c.overhead());
            let e = c.open(&mut out, 65_535).unwrap();
            prop_assert_eq!(e.sender, NodeId(id));
            prop_assert_eq!(e.generation, generation);
            prop_assert_eq!(e.payload, &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                       keyed in any::<bool>()) {
            let c = Codec::new("p", keyed.then(|| ring(3)));
            let _ = c.open(&mut bytes, 1_400);
        }
    }
}
