//! Go `compress/lzw` (LSB order, 8-bit literals), the only compression memberlist knows
//! (memberlist-wire.md §4), on the `weezl` crate: GIF's variant, which is Go's. Output is
//! bounded, so a small bomb cannot make a large allocation.

use weezl::{BitOrder, LzwStatus, decode::Decoder, encode::Encoder};

use crate::msgpack::DecodeError;

/// Decompresses `input`, refusing to produce more than `max` bytes or a stream without its
/// end code (Go's reader fails the same way).
pub fn decompress(input: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    let mut decoder = Decoder::new(BitOrder::Lsb, 8);
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut rest = input;
    loop {
        let r = decoder.decode_bytes(rest, &mut chunk);
        rest = &rest[r.consumed_in..];
        if out.len() + r.consumed_out > max {
            return Err(DecodeError::TooLarge);
        }
        out.extend_from_slice(&chunk[..r.consumed_out]);
        match r.status {
            Ok(LzwStatus::Done) => return Ok(out),
            Ok(LzwStatus::Ok) => {}
            Ok(LzwStatus::NoProgress) => return Err(DecodeError::Truncated),
            Err(e) => return Err(DecodeError::Invalid(format!("lzw: {e}"))),
        }
    }
}

/// Compresses `input` the way Go's reader reads it.
pub fn compress(input: &[u8]) -> Vec<u8> {
    // Encoding into a Vec cannot fail.
    Encoder::new(BitOrder::Lsb, 8)
        .encode(input)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data: Vec<u8> = (0..20_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
            .collect();
        assert_eq!(decompress(&compress(&data), 1 << 20).unwrap(), data);
    }

    #[test]
    fn go_vectors() {
        // Go's writer: no leading clear code; 9-bit codes, LSB first; EOF = 257.
        assert_eq!(decompress(&[0x41, 0x02, 0x02], 10).unwrap(), b"A");
        assert_eq!(decompress(&[0x41, 0x84, 0x04, 0x04], 10).unwrap(), b"AB");
    }

    #[test]
    fn bombs_and_cut_streams_are_refused() {
        let zeros = compress(&vec![0; 100_000]);
        assert_eq!(decompress(&zeros, 1000), Err(DecodeError::TooLarge));
        assert!(decompress(&zeros[..zeros.len() / 2], 1 << 20).is_err());
        assert!(decompress(&[0xff; 64], 1 << 20).is_err());
    }
}
