//! msgpack in go-msgpack 0.5.5's shapes (memberlist-wire.md §2.1). Writing is by hand on
//! `rmp`'s primitives so the bytes are Go's own: structs as maps keyed by field name in
//! sorted order, `[]byte` and `string` both in the old "raw" family (fixstr, `0xda`, `0xdb`;
//! never `0xd9` or bin), integers in their smallest form. Reading goes through `rmp-serde`
//! into typed structs (it accepts a raw string holding non-UTF-8 bytes for a byte field),
//! after [`value_len`] has found where one value ends without allocating anything.

use serde::de::DeserializeOwned;

/// Deepest nesting accepted in a value from a peer (Serf's deepest message nests 4).
pub const MAX_DEPTH: usize = 16;

/// Why bytes from a peer were not a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end inside a value: more may come (on a stream) or it was cut.
    Truncated,
    /// Not a message of the expected shape (the reason, for the log).
    Invalid(String),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Larger than the limit for its kind.
    TooLarge,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("truncated"),
            DecodeError::Invalid(why) => write!(f, "invalid: {why}"),
            DecodeError::TooDeep => f.write_str("nested too deep"),
            DecodeError::TooLarge => f.write_str("too large"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The length in bytes of the one msgpack value at the start of `buf`, checking every
/// length prefix against what is there (so a huge prefix costs nothing) and nesting against
/// [`MAX_DEPTH`].
pub fn value_len(buf: &[u8]) -> Result<usize, DecodeError> {
    let mut pos = 0;
    // Values still to skip at each open level; one at the top.
    let mut pending: Vec<u64> = vec![1];
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let marker = *buf.get(pos).ok_or(DecodeError::Truncated)?;
        pos += 1;
        let need = |n: usize, pos: usize| -> Result<u64, DecodeError> {
            let b = buf.get(pos..pos + n).ok_or(DecodeError::Truncated)?;
            Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
        };
        // (bytes to skip, items to descend into)
        let (skip, items): (u64, u64) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, u64::from(marker & 0x0f) * 2),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (1 + need(1, pos)?, 0),
            0xc5 | 0xda => (2 + need(2, pos)?, 0),
            0xc6 | 0xdb => (4 + need(4, pos)?, 0),
            0xc7 => (1 + 1 + need(1, pos)?, 0),
            0xc8 => (2 + 1 + need(2, pos)?, 0),
            0xc9 => (4 + 1 + need(4, pos)?, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => {
                pos += 2;
                (0, need(2, pos - 2)?)
            }
            0xdd => {
                pos += 4;
                (0, need(4, pos - 4)?)
            }
            0xde => {
                pos += 2;
                (0, need(2, pos - 2)? * 2)
            }
            0xdf => {
                pos += 4;
                (0, need(4, pos - 4)? * 2)
            }
            0xc1 => return Err(DecodeError::Invalid("reserved marker 0xc1".into())),
        };
        let end = (pos as u64).saturating_add(skip);
        if end > buf.len() as u64 {
            return Err(DecodeError::Truncated);
        }
        pos = end as usize;
        if items > 0 {
            // Every item takes at least one byte: a count past the buffer is cut short.
            if items > (buf.len() - pos) as u64 {
                return Err(DecodeError::Truncated);
            }
            if pending.len() > MAX_DEPTH {
                return Err(DecodeError::TooDeep);
            }
            pending.push(items);
        }
    }
    Ok(pos)
}

/// Decodes the one value at the start of `buf`; returns it and the bytes it took.
pub fn decode<T: DeserializeOwned>(buf: &[u8]) -> Result<(T, usize), DecodeError> {
    let len = value_len(buf)?;
    let mut de = rmp_serde::Deserializer::from_read_ref(&buf[..len]);
    de.set_max_depth(MAX_DEPTH);
    let value = serde::Deserialize::deserialize(&mut de)
        .map_err(|e| DecodeError::Invalid(e.to_string()))?;
    Ok((value, len))
}

/// A msgpack writer producing go-msgpack's bytes.
#[derive(Debug, Default)]
pub struct Writer {
    /// What was written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// A writer appending to `buf`.
    pub fn new(buf: Vec<u8>) -> Writer {
        Writer { buf }
    }

    /// A map header of `len` entries.
    pub fn map(&mut self, len: u32) -> &mut Self {
        // Writing to a Vec cannot fail.
        let _ = rmp::encode::write_map_len(&mut self.buf, len);
        self
    }

    /// An array header of `len` items.
    pub fn array(&mut self, len: u32) -> &mut Self {
        let _ = rmp::encode::write_array_len(&mut self.buf, len);
        self
    }

    /// Bytes as Go writes both `string` and `[]byte`: fixstr, else `0xda` u16, else `0xdb` u32.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        let len = bytes.len();
        if len < 32 {
            self.buf.push(0xa0 | len as u8);
        } else if len <= usize::from(u16::MAX) {
            self.buf.push(0xda);
            self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.buf.push(0xdb);
            self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
        self.buf.extend_from_slice(bytes);
        self
    }

    /// A string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.raw(s.as_bytes())
    }

    /// A field name, then the caller writes its value.
    pub fn key(&mut self, name: &str) -> &mut Self {
        self.str(name)
    }

    /// `[]byte` that may be nil: Go writes a nil slice as `0xc0`.
    pub fn bytes_or_nil(&mut self, bytes: Option<&[u8]>) -> &mut Self {
        match bytes {
            Some(b) => self.raw(b),
            None => self.nil(),
        }
    }

    /// An unsigned integer in its smallest form.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        let _ = rmp::encode::write_uint(&mut self.buf, v);
        self
    }

    /// A signed integer in its smallest form (Go's `int`).
    pub fn int(&mut self, v: i64) -> &mut Self {
        let _ = rmp::encode::write_sint(&mut self.buf, v);
        self
    }

    /// A bool.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        let _ = rmp::encode::write_bool(&mut self.buf, v);
        self
    }

    /// nil.
    pub fn nil(&mut self) -> &mut Self {
        self.buf.push(0xc0);
        self
    }

    /// Bytes already encoded.
    pub fn extend(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_len_finds_the_end_of_nested_values() {
        let mut w = Writer::default();
        w.map(2)
            .key("a")
            .array(2)
            .uint(300)
            .nil()
            .key("b")
            .raw(&[0xff; 40]);
        let mut bytes = w.buf.clone();
        bytes.extend_from_slice(b"rest");
        assert_eq!(value_len(&bytes), Ok(w.buf.len()));
        for cut in 0..w.buf.len() {
            assert_eq!(
                value_len(&w.buf[..cut]),
                Err(DecodeError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn huge_length_prefixes_are_truncations_not_allocations() {
        assert_eq!(
            value_len(&[0xdb, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            value_len(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            value_len(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = vec![0x91; 10_000];
        assert_eq!(
            value_len(&deep),
            Err(DecodeError::Truncated).or(Err(DecodeError::TooDeep))
        );
        let mut deep = vec![0x91; 100];
        deep.push(0xc0);
        assert_eq!(value_len(&deep), Err(DecodeError::TooDeep));
    }

    #[test]
    fn raw_uses_gos_families() {
        let mut w = Writer::default();
        w.raw(&[0; 31]);
        assert_eq!(w.buf[0], 0xbf);
        let mut w = Writer::default();
        w.raw(&[0; 32]);
        assert_eq!(&w.buf[..3], &[0xda, 0x00, 0x20]);
        let mut w = Writer::default();
        w.uint(7946).int(-1).bool(true);
        assert_eq!(w.buf, [0xcd, 0x1f, 0x0a, 0xff, 0xc3]);
    }
}
