//! A last-writer-wins register: the simplest state, and the one epidemic theory talks about.

use std::cmp::Ordering;
use std::fmt;

use crate::codec::{Reader, put_bytes, put_varint};
use crate::{DecodeError, NodeId, State};

/// A value a [`Register`] can hold: anything with a total order (for tie-breaks) and a codec.
pub trait RegisterValue: Clone + fmt::Debug + Ord + Send + 'static {
    /// Appends the value's wire form.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads a value written by `encode`.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl RegisterValue for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, *self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.varint()
    }
}

impl RegisterValue for String {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.str().map(str::to_owned)
    }
}

impl RegisterValue for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.bytes().map(<[u8]>::to_vec)
    }
}

/// A versioned register: the write with the highest version wins; equal versions are ordered by
/// the writer's id, then by value, so every replica picks the same winner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register<V> {
    version: u64,
    origin: NodeId,
    value: Option<V>,
}

/// A register's digest: the version and writer of the value it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct RegisterDigest {
    /// Version of the held value (0 = never written).
    pub version: u64,
    /// Who wrote it.
    pub origin: NodeId,
}

impl<V> Default for Register<V> {
    fn default() -> Self {
        Register {
            version: 0,
            origin: NodeId(0),
            value: None,
        }
    }
}

impl<V: RegisterValue> Register<V> {
    /// An empty register (version 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// A register holding `value`, written by `origin` at `version`.
    pub fn with(version: u64, origin: NodeId, value: V) -> Self {
        Register {
            version,
            origin,
            value: Some(value),
        }
    }

    /// Writes `value` as `origin`, one version above the current one.
    pub fn set(&mut self, origin: NodeId, value: V) {
        self.version += 1;
        self.origin = origin;
        self.value = Some(value);
    }

    /// The current value, if ever written.
    pub fn value(&self) -> Option<&V> {
        self.value.as_ref()
    }

    /// The current version (0 = never written).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Who wrote the current value.
    pub fn origin(&self) -> NodeId {
        self.origin
    }

    fn rank(&self) -> (u64, NodeId, Option<&V>) {
        (self.version, self.origin, self.value.as_ref())
    }
}

impl<V: RegisterValue> State for Register<V> {
    type Digest = RegisterDigest;

    fn merge(&mut self, other: &Self) -> bool {
        if other.rank().cmp(&self.rank()) == Ordering::Greater {
            *self = other.clone();
            true
        } else {
            false
        }
    }

    fn digest_into(&self, out: &mut RegisterDigest) {
        *out = RegisterDigest {
            version: self.version,
            origin: self.origin,
        };
    }

    fn encode_digest(digest: &RegisterDigest, _budget: usize, _rotation: u64, out: &mut Vec<u8>) {
        put_varint(out, digest.version);
        put_varint(out, digest.origin.0);
    }

    fn decode_digest_into(input: &[u8], out: &mut RegisterDigest) -> Result<(), DecodeError> {
        let mut r = Reader::new(input);
        let version = r.varint()?;
        let origin = NodeId(r.varint()?);
        r.finish()?;
        *out = RegisterDigest { version, origin };
        Ok(())
    }

    fn write_delta(
        &self,
        peer: &RegisterDigest,
        budget: usize,
        _rotation: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        let Some(value) = &self.value else { return 0 };
        if (self.version, self.origin) <= (peer.version, peer.origin) {
            return 0;
        }
        let start = out.len();
        put_varint(out, self.version);
        put_varint(out, self.origin.0);
        value.encode(out);
        if out.len() - start > budget {
            out.truncate(start);
            return 0;
        }
        1
    }

    fn apply_delta(&mut self, delta: &[u8]) -> Result<bool, DecodeError> {
        if delta.is_empty() {
            return Ok(false);
        }
        let mut r = Reader::new(delta);
        let version = r.varint()?;
        let origin = NodeId(r.varint()?);
        let value = V::decode(&mut r)?;
        r.finish()?;
        if version == 0 {
            return Err(DecodeError::Invalid("register version 0"));
        }
        Ok(self.merge(&Register::with(version, origin, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reg() -> impl Strategy<Value = Register<u64>> {
        prop_oneof![
            Just(Register::new()),
            (1u64..5, 0u64..3, 0u64..4).prop_map(|(v, o, x)| Register::with(v, NodeId(o), x)),
        ]
    }

    proptest! {
        #[test]
        fn merge_is_commutative(a in reg(), b in reg()) {
            let mut ab = a.clone(); ab.merge(&b);
            let mut ba = b.clone(); ba.merge(&a);
            prop_assert_eq!(ab, ba);
        }

        #[test]
        fn merge_is_associative(a in reg(), b in reg(), c in reg()) {
            let mut left = a.clone(); left.merge(&b); left.merge(&c);
            let mut bc = b.clone(); bc.merge(&c);
            let mut right = a.clone(); right.merge(&bc);
            prop_assert_eq!(left, right);
        }

        #[test]
        fn merge_is_idempotent_and_reports_change(a in reg(), b in reg()) {
            let mut m = a.clone();
            let changed = m.merge(&b);
            prop_assert_eq!(changed, m != a);
            let again = m.clone();
            prop_assert!(!m.merge(&b));
            prop_assert_eq!(m, again);
        }

        #[test]
        fn delta_brings_peer_up_to_date(a in reg(), b in reg()) {
            // One writer never writes two values under one version.
            prop_assume!((a.version, a.origin) != (b.version, b.origin) || a == b);
            let mut digest = RegisterDigest::default();
            b.digest_into(&mut digest);
            let mut delta = Vec::new();
            a.write_delta(&digest, 1_400, 0, &mut delta);
            let mut synced = b.clone();
            synced.apply_delta(&delta).unwrap();
            let mut merged = b.clone();
            merged.merge(&a);
            prop_assert_eq!(synced, merged);
        }

        #[test]
        fn garbage_deltas_change_nothing(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut r: Register<String> = Register::with(3, NodeId(1), "x".into());
            let before = r.clone();
            if r.apply_delta(&bytes).is_err() {
                prop_assert_eq!(r, before);
            }
        }
    }

    #[test]
    fn ties_break_by_origin() {
        let mut a = Register::with(2, NodeId(1), 10u64);
        assert!(a.merge(&Register::with(2, NodeId(2), 5)));
        assert_eq!(a.value(), Some(&5));
        assert!(!a.merge(&Register::with(1, NodeId(9), 99)));
    }

    #[test]
    fn delta_respects_budget() {
        let r = Register::with(1, NodeId(1), "a long value".to_string());
        let mut out = Vec::new();
        assert_eq!(r.write_delta(&RegisterDigest::default(), 4, 0, &mut out), 0);
        assert!(out.is_empty());
        assert_eq!(
            r.write_delta(&RegisterDigest::default(), 64, 0, &mut out),
            1
        );
    }
}
