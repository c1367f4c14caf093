//! The little binary codec every gossiper message is built from.
//!
//! Unsigned LEB128 varints, length-prefixed byte strings, and a [`Reader`] that never reads past
//! its input and never allocates: decoding borrows from the received buffer. Anything malformed
//! is a [`DecodeError`], never a panic.

use crate::DecodeError;

/// Largest length prefix a reader accepts for one byte string (64 KiB): no datagram is larger.
pub const MAX_BYTES_LEN: usize = 64 * 1024;

/// Appends `v` as an unsigned LEB128 varint (1 to 10 bytes).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// How many bytes [`put_varint`] writes for `v`.
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends a varint length followed by the bytes.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// How many bytes [`put_bytes`] writes for a string of `len` bytes.
pub fn bytes_len(len: usize) -> usize {
    varint_len(len as u64) + len
}

/// A cursor over received bytes. Every method either consumes a whole field or fails.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `input`.
    pub fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { input }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> &'a [u8] {
        self.input
    }

    /// True when everything has been consumed.
    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything has been consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.input.split_first().ok_or(DecodeError::Truncated)?;
        self.input = rest;
        Ok(b)
    }

    /// Reads an unsigned LEB128 varint.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            let low = u64::from(b & 0x7f);
            if i == 9 && low > 1 {
                return Err(DecodeError::BadVarint);
            }
            value |= low << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    /// Reads a varint that must fit `usize` and be at most `max`.
    pub fn len(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let v = self.varint()?;
        usize::try_from(v)
            .ok()
            .filter(|&n| n <= max)
            .ok_or(DecodeError::Invalid(what))
    }

    /// Reads exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.input.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len(MAX_BYTES_LEN, "byte string length")?;
        self.take(n)
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::Invalid("utf-8 string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varint_edges() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "len of {v}");
            let mut r = Reader::new(&out);
            assert_eq!(r.varint(), Ok(v));
            assert!(r.finish().is_ok());
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        let eleven = [0xffu8; 11];
        assert_eq!(Reader::new(&eleven).varint(), Err(DecodeError::BadVarint));
        // Tenth byte carrying more than the one bit u64 has left.
        let mut overflow = [0xffu8; 10];
        overflow[9] = 0x02;
        assert_eq!(Reader::new(&overflow).varint(), Err(DecodeError::BadVarint));
        assert_eq!(Reader::new(&[0x80]).varint(), Err(DecodeError::Truncated));
    }

    #[test]
    fn byte_strings_check_their_length() {
        let mut out = Vec::new();
        put_varint(&mut out, 5);
        out.extend_from_slice(b"abc");
        assert_eq!(Reader::new(&out).bytes(), Err(DecodeError::Truncated));
        let mut huge = Vec::new();
        put_varint(&mut huge, u64::MAX);
        assert!(matches!(
            Reader::new(&huge).bytes(),
            Err(DecodeError::Invalid(_))
        ));
    }

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<u64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
            prop_assert_eq!(Reader::new(&out).varint(), Ok(v));
        }

        #[test]
        fn bytes_round_trip(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = Vec::new();
            put_bytes(&mut out, &b);
            prop_assert_eq!(out.len(), bytes_len(b.len()));
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.bytes(), Ok(&b[..]));
            prop_assert!(r.is_empty());
        }

        #[test]
        fn arbitrary_input_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&b);
            while r.bytes().is_ok() {}
            let mut r = Reader::new(&b);
            while r.varint().is_ok() {}
        }
    }
}
