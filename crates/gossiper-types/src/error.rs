//! Why a received byte string could not be decoded.

use std::fmt;

/// A decoding failure. Whatever returned it changed no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    Truncated,
    /// A varint ran longer than 10 bytes or overflowed 64 bits.
    BadVarint,
    /// A length, count or tag had a value the format does not allow.
    Invalid(&'static str),
    /// Bytes were left over after a complete value.
    TrailingBytes,
    /// The message kind byte is not one this version knows.
    UnknownKind(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("input truncated"),
            DecodeError::BadVarint => f.write_str("malformed varint"),
            DecodeError::Invalid(what) => write!(f, "invalid {what}"),
            DecodeError::TrailingBytes => f.write_str("trailing bytes after value"),
            DecodeError::UnknownKind(k) => write!(f, "unknown message kind {k}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// A short, stable, snake_case label, suitable as a metrics label or a counter key.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Truncated => "truncated",
            DecodeError::BadVarint => "bad_varint",
            DecodeError::Invalid(_) => "invalid",
            DecodeError::TrailingBytes => "trailing_bytes",
            DecodeError::UnknownKind(_) => "unknown_kind",
        }
    }
}
