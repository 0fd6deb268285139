//! The IPv4 header (RFC 791).

use std::net::Ipv4Addr;

use super::{checksum, WireError};

pub const HEADER_LEN: usize = 20;
pub(crate) const FLAG_DF: u8 = 0x40;
/// The flags and fragment offset word (bytes 6-7) of an unfragmented packet with DF set.
pub const FLAG_DF_WORD: u16 = (FLAG_DF as u16) << 8;
pub(crate) const FLAG_MF: u8 = 0x20;

/// A view of an IPv4 packet whose header and total length were checked against the buffer.
#[derive(Debug)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Checks version, header length and total length; the buffer may be longer than the packet
    /// (link-layer padding), never shorter.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = usize::from(b[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        if b[0] >> 4 != 4 || header_len < HEADER_LEN || total_len < header_len {
            return Err(WireError::Malformed);
        }
        if total_len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Ipv4Packet { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[0] & 0x0f) * 4
    }
    pub fn total_len(&self) -> usize {
        usize::from(u16::from_be_bytes([self.b()[2], self.b()[3]]))
    }
    /// The DSCP and ECN byte (RFC 2474, RFC 3168).
    pub fn tos(&self) -> u8 {
        self.b()[1]
    }
    pub fn dont_fragment(&self) -> bool {
        self.b()[6] & FLAG_DF != 0
    }
    /// More-fragments set or a non-zero offset.
    pub fn is_fragment(&self) -> bool {
        self.b()[6] & FLAG_MF != 0 || u16::from_be_bytes([self.b()[6], self.b()[7]]) & 0x1fff != 0
    }
    pub fn protocol(&self) -> u8 {
        self.b()[9]
    }
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(<[u8; 4]>::try_from(&self.b()[12..16]).unwrap_or_default())
    }
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(<[u8; 4]>::try_from(&self.b()[16..20]).unwrap_or_default())
    }
    pub fn checksum_ok(&self) -> bool {
        checksum::checksum(&self.b()[..self.header_len()]) == 0
    }
    /// The bytes after the header, up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn m(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }
    pub fn set_total_len(&mut self, len: u16) {
        self.m()[2..4].copy_from_slice(&len.to_be_bytes());
    }
    pub fn set_tos(&mut self, tos: u8) {
        self.m()[1] = tos;
    }
    pub fn set_ident(&mut self, ident: u16) {
        self.m()[4..6].copy_from_slice(&ident.to_be_bytes());
    }
    /// Sets or clears DF, clearing the rest of the flags and offset (the packet is whole).
    pub fn set_dont_fragment(&mut self, df: bool) {
        self.m()[6] = if df { FLAG_DF } else { 0 };
        self.m()[7] = 0;
    }
    pub fn set_protocol(&mut self, proto: u8) {
        self.m()[9] = proto;
    }
    /// Recomputes the header checksum.
    pub fn fill_checksum(&mut self) {
        let len = self.header_len();
        self.m()[10..12].fill(0);
        let sum = checksum::checksum(&self.m()[..len]);
        self.m()[10..12].copy_from_slice(&sum.to_be_bytes());
    }
}

/// Writes a 20-byte header with no options: the outer header of a tunnel-mode packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Fields {
    pub tos: u8,
    pub total_len: u16,
    pub ident: u16,
    pub dont_fragment: bool,
    pub ttl: u8,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

impl Ipv4Fields {
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        out[0] = 0x45;
        out[1] = self.tos;
        out[2..4].copy_from_slice(&self.total_len.to_be_bytes());
        out[4..6].copy_from_slice(&self.ident.to_be_bytes());
        out[6] = if self.dont_fragment { FLAG_DF } else { 0 };
        out[7] = 0;
        out[8] = self.ttl;
        out[9] = self.protocol;
        out[10..12].fill(0);
        out[12..16].copy_from_slice(&self.src.octets());
        out[16..20].copy_from_slice(&self.dst.octets());
        let sum = checksum::checksum(&out[..]);
        out[10..12].copy_from_slice(&sum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An ICMP echo request from 198.18.0.1 to 198.18.0.2, checksum valid.
    pub(crate) const PING: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x40, 0x00, 0x40, 0x01, 0xae, 0xb8, 198, 18, 0, 1, 198,
        18, 0, 2, 0x08, 0x00, 0xf7, 0xfe, 0x00, 0x01, 0x00, 0x00,
    ];

    #[test]
    fn parses_a_fixture() {
        let p = Ipv4Packet::new_checked(&PING[..]).unwrap();
        assert_eq!((p.header_len(), p.total_len(), p.protocol()), (20, 28, 1));
        assert!(p.dont_fragment() && !p.is_fragment() && p.checksum_ok());
        assert_eq!(p.src(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(Ipv4Packet::new_checked(&PING[..19]).unwrap_err(), WireError::Truncated);
        assert_eq!(Ipv4Packet::new_checked(&PING[..27]).unwrap_err(), WireError::Truncated);
        let mut p = PING;
        p[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&p[..]).unwrap_err(), WireError::Malformed);
        p = PING;
        p[3] = 10;
        assert_eq!(Ipv4Packet::new_checked(&p[..]).unwrap_err(), WireError::Malformed);
    }

    #[test]
    fn emit_writes_a_valid_checksum() {
        let mut out = [0u8; HEADER_LEN];
        Ipv4Fields {
            tos: 0,
            total_len: 28,
            ident: 1,
            dont_fragment: true,
            ttl: 64,
            protocol: 1,
            src: Ipv4Addr::new(198, 18, 0, 1),
            dst: Ipv4Addr::new(198, 18, 0, 2),
        }
        .emit(&mut out);
        assert_eq!(out[..], PING[..20]);
    }
}
