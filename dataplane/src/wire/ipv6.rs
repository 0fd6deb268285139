//! The IPv6 header (RFC 8200) and the walk over the extension headers that precede ESP.

use std::net::Ipv6Addr;

use super::{proto, WireError};

pub const HEADER_LEN: usize = 40;
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const DESTINATION_OPTIONS: u8 = 60;

/// A view of an IPv6 packet whose payload length was checked against the buffer.
#[derive(Debug)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buf: T,
}

/// Where the upper-layer header starts, after the extension headers that precede ESP in transport
/// mode (RFC 4303 3.1.1: hop-by-hop, routing and destination options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    pub protocol: u8,
    /// Offset of the Next Header byte that names `protocol`.
    pub next_header_at: usize,
    /// A fragment header was met: the walk stopped there.
    pub fragment: bool,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        let p = Ipv6Packet { buf };
        if p.total_len() > p.b().len() {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    pub fn payload_len(&self) -> usize {
        usize::from(u16::from_be_bytes([self.b()[4], self.b()[5]]))
    }
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }
    /// The traffic class: DSCP and ECN, as in IPv4's TOS byte.
    pub fn traffic_class(&self) -> u8 {
        (self.b()[0] << 4) | (self.b()[1] >> 4)
    }
    pub fn next_header(&self) -> u8 {
        self.b()[6]
    }
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(<[u8; 16]>::try_from(&self.b()[8..24]).unwrap_or_default())
    }
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(<[u8; 16]>::try_from(&self.b()[24..40]).unwrap_or_default())
    }

    /// Walks hop-by-hop, routing and destination options headers to the first other header.
    pub fn upper_layer(&self) -> Result<UpperLayer, WireError> {
        let b = &self.b()[..self.total_len()];
        let (mut offset, mut protocol, mut next_header_at) = (HEADER_LEN, self.next_header(), 6);
        while matches!(protocol, HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS) {
            let ext = b.get(offset..offset + 2).ok_or(WireError::Truncated)?;
            next_header_at = offset;
            protocol = ext[0];
            offset += (usize::from(ext[1]) + 1) * 8;
        }
        if offset > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(UpperLayer { offset, protocol, next_header_at, fragment: protocol == FRAGMENT })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    pub fn set_payload_len(&mut self, len: u16) {
        self.buf.as_mut()[4..6].copy_from_slice(&len.to_be_bytes());
    }
    pub fn set_traffic_class(&mut self, tc: u8) {
        let b = self.buf.as_mut();
        b[0] = 0x60 | tc >> 4;
        b[1] = (tc << 4) | (b[1] & 0x0f);
    }
}

/// Writes a 40-byte header with a zero flow label: the outer header of a tunnel-mode packet.
pub fn emit(out: &mut [u8; HEADER_LEN], traffic_class: u8, payload_len: u16, next: u8, hop_limit: u8, src: &Ipv6Addr, dst: &Ipv6Addr) {
    out[0] = 0x60 | traffic_class >> 4;
    out[1] = traffic_class << 4;
    out[2..4].fill(0);
    out[4..6].copy_from_slice(&payload_len.to_be_bytes());
    out[6] = next;
    out[7] = hop_limit;
    out[8..24].copy_from_slice(&src.octets());
    out[24..40].copy_from_slice(&dst.octets());
}

/// Whether `protocol` is an upper-layer protocol whose checksum covers the pseudo-header.
pub fn has_pseudo_header_checksum(protocol: u8) -> bool {
    matches!(protocol, proto::TCP | proto::UDP | proto::ICMPV6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(next: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        let src = "2001:db8::1".parse().unwrap();
        let dst = "2001:db8::2".parse().unwrap();
        emit(p.as_mut_slice().try_into().unwrap(), 0xb8, (ext.len() + payload.len()) as u16, next, 64, &src, &dst);
        p.extend_from_slice(ext);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn walks_extension_headers() {
        // Hop-by-hop (8 bytes) then destination options (16 bytes) then UDP.
        let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let p = packet(0, &ext, &[0; 8]);
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.traffic_class(), 0xb8);
        let ul = v.upper_layer().unwrap();
        assert_eq!(ul, UpperLayer { offset: 64, protocol: 17, next_header_at: 48, fragment: false });
    }

    #[test]
    fn rejects_truncated_chains_and_lengths() {
        let p = packet(0, &[17, 4], &[]);
        assert_eq!(Ipv6Packet::new_checked(&p[..]).unwrap().upper_layer(), Err(WireError::Truncated));
        let p = packet(17, &[], &[0; 8]);
        assert_eq!(Ipv6Packet::new_checked(&p[..47]).unwrap_err(), WireError::Truncated);
        assert_eq!(Ipv6Packet::new_checked(&p[..10]).unwrap_err(), WireError::Truncated);
        let frag = packet(44, &[17, 0, 0, 0, 0, 0, 0, 1], &[]);
        assert!(Ipv6Packet::new_checked(&frag[..]).unwrap().upper_layer().unwrap().fragment);
    }
}
