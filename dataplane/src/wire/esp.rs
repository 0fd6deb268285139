//! The ESP header and trailer (RFC 4303 section 2).

use super::WireError;

/// SPI and sequence number (RFC 4303 2.1, 2.2).
pub const HEADER_LEN: usize = 8;
/// Pad length and next header (RFC 4303 2.4, 2.6).
pub const TRAILER_LEN: usize = 2;

/// A view of an ESP packet: at least the 8-byte header.
#[derive(Debug)]
pub struct EspPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> EspPacket<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(EspPacket { buf })
    }
    pub fn spi(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// The low 32 bits of the sequence number (all of it without ESN).
    pub fn seq(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }
}

/// Writes the header.
pub fn emit_header(out: &mut [u8], spi: u32, seq_lo: u32) {
    out[..4].copy_from_slice(&spi.to_be_bytes());
    out[4..8].copy_from_slice(&seq_lo.to_be_bytes());
}

/// The padding RFC 4303 2.4 asks for: payload, padding and trailer end on a multiple of `align`.
pub fn pad_len(payload_len: usize, align: usize) -> usize {
    (align - (payload_len + TRAILER_LEN) % align) % align
}

/// The default padding of every length (RFC 4303 2.4: 1, 2, 3, ...), copied and compared whole
/// rather than a byte at a time.
static PADDING: [u8; 255] = {
    let mut bytes = [0u8; 255];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = i as u8 + 1;
        i += 1;
    }
    bytes
};

/// Writes the padding (1, 2, 3, ..., RFC 4303 2.4) and the trailer into `out`, which is exactly
/// padding plus trailer long (at most 255 bytes of padding).
pub fn emit_trailer(out: &mut [u8], next_header: u8) {
    let pad = out.len() - TRAILER_LEN;
    out[..pad].copy_from_slice(&PADDING[..pad]);
    out[pad] = pad as u8;
    out[pad + 1] = next_header;
}

/// The decrypted trailer at the end of `plaintext`: (pad length, next header), after checking
/// that the padding fits and holds the default 1, 2, 3, ... sequence (RFC 4303 2.4).
pub fn parse_trailer(plaintext: &[u8]) -> Result<(usize, u8), WireError> {
    let n = plaintext.len();
    if n < TRAILER_LEN {
        return Err(WireError::Truncated);
    }
    let (pad, next) = (usize::from(plaintext[n - 2]), plaintext[n - 1]);
    let before_trailer = &plaintext[..n - TRAILER_LEN];
    if pad <= before_trailer.len() && ends_in_default_padding(before_trailer, pad) {
        Ok((pad, next))
    } else {
        Err(WireError::Malformed)
    }
}

/// The default padding's first bytes, 1 to 16, as a big-endian number.
const WINDOW_PADDING: u128 = {
    let mut v = 0u128;
    let mut i = 1;
    while i <= 16 {
        v = (v << 8) | i;
        i += 1;
    }
    v
};

/// Whether the last `pad` bytes of `bytes` (at least that long) are 1, 2, ..., `pad`. Padding
/// that fits in the last 16 bytes (all a sender pads to a 4- or 16-byte boundary) is compared in
/// one masked 128-bit operation: a call to memcmp for those few bytes cost 2.7% of CBC
/// decryption at 64 B (BENCHMARKS.md, "Twelfth session").
fn ends_in_default_padding(bytes: &[u8], pad: usize) -> bool {
    let last_16 = bytes.len().checked_sub(16).and_then(|at| <[u8; 16]>::try_from(&bytes[at..]).ok());
    match last_16 {
        Some(window) if pad <= 16 => {
            // The bytes before the padding shift out of both the mask and the expected value.
            let others = (8 * (16 - pad)) as u32;
            let mask = u128::MAX.checked_shr(others).unwrap_or(0);
            let expected = WINDOW_PADDING.checked_shr(others).unwrap_or(0);
            (u128::from_be_bytes(window) ^ expected) & mask == 0
        }
        _ => bytes[bytes.len() - pad..] == PADDING[..pad],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut b = [0u8; 8];
        emit_header(&mut b, 0x1234_5678, 9);
        let e = EspPacket::new_checked(&b[..]).unwrap();
        assert_eq!((e.spi(), e.seq()), (0x1234_5678, 9));
        assert_eq!(EspPacket::new_checked(&b[..7]).unwrap_err(), WireError::Truncated);
    }

    #[test]
    fn padding_aligns_and_checks() {
        assert_eq!(pad_len(14, 4), 0);
        assert_eq!(pad_len(13, 16), 1);
        assert_eq!(pad_len(16, 16), 14);
        let mut t = [0u8; 5];
        emit_trailer(&mut t, 4);
        assert_eq!(t, [1, 2, 3, 3, 4]);
        let mut p = vec![0xaa, 0xbb];
        p.extend_from_slice(&t);
        assert_eq!(parse_trailer(&p), Ok((3, 4)));
        p[3] = 9;
        assert_eq!(parse_trailer(&p), Err(WireError::Malformed));
        assert_eq!(parse_trailer(&[1, 2, 9, 4]), Err(WireError::Malformed), "pad longer than data");
        assert_eq!(parse_trailer(&[0, 4]), Ok((0, 4)));
        assert_eq!(parse_trailer(&[4]), Err(WireError::Truncated));
    }

    /// Every pad length, before as many bytes as fit in the 16-byte window and more: the default
    /// padding is accepted, and a change to any of its bytes is refused.
    #[test]
    fn padding_is_checked_in_and_beyond_one_window() {
        for pad in 0..=255usize {
            for before in [0, 1, 15 - pad.min(15), 16, 40] {
                let mut p = vec![0x5a; before];
                let mut t = vec![0u8; pad + TRAILER_LEN];
                emit_trailer(&mut t, 17);
                p.extend_from_slice(&t);
                assert_eq!(parse_trailer(&p), Ok((pad, 17)), "pad {pad} after {before} bytes");
                for i in before..before + pad {
                    p[i] ^= 0x40;
                    assert_eq!(parse_trailer(&p), Err(WireError::Malformed), "pad {pad}, byte {i} changed");
                    p[i] ^= 0x40;
                }
            }
        }
    }
}
