//! UDP encapsulation of ESP (RFC 3948): the UDP header, and what a datagram on the NAT-T port is.

use super::WireError;

pub const UDP_HEADER_LEN: usize = 8;
/// The IKE and ESP-in-UDP port once NAT is detected (RFC 3948 section 1).
pub const NAT_T_PORT: u16 = 4500;
/// RFC 3948 2.2: four zero bytes in place of an SPI mark an IKE message on the same port.
pub const NON_ESP_MARKER_LEN: usize = 4;

/// What a UDP datagram addressed to an encapsulation port carries (RFC 3948 section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapPayload {
    /// A single 0xFF byte (RFC 3948 2.3): keeps the NAT mapping alive; discarded.
    Keepalive,
    /// Starts with the non-ESP marker (RFC 3948 2.2): an IKE message for the control plane.
    Ike,
    /// ESP: the payload starts with a non-zero SPI.
    Esp,
}

/// A view of a UDP header: 8 bytes at least, length field consistent with the buffer.
#[derive(Debug)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < UDP_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(u16::from_be_bytes([b[4], b[5]]));
        if len < UDP_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(UdpPacket { buf })
    }
    pub fn src_port(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }
    pub fn dst_port(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        &b[UDP_HEADER_LEN..usize::from(u16::from_be_bytes([b[4], b[5]]))]
    }

    /// Classifies the payload (RFC 3948 2.2, 2.3). The checksum is not checked: RFC 3948 3.1.1
    /// lets the sender put zero there, and the ESP ICV protects the payload anyway.
    pub fn encap_payload(&self) -> Result<EncapPayload, WireError> {
        match self.payload() {
            [0xff] => Ok(EncapPayload::Keepalive),
            [0, 0, 0, 0, ..] => Ok(EncapPayload::Ike),
            p if p.len() < super::esp::HEADER_LEN => Err(WireError::Truncated),
            _ => Ok(EncapPayload::Esp),
        }
    }
}

/// Writes a UDP header. The checksum is left zero (RFC 3948 3.1.1 for IPv4); IPv6 callers fill it.
pub fn emit_header(out: &mut [u8], src_port: u16, dst_port: u16, len: u16) {
    out[0..2].copy_from_slice(&src_port.to_be_bytes());
    out[2..4].copy_from_slice(&dst_port.to_be_bytes());
    out[4..6].copy_from_slice(&len.to_be_bytes());
    out[6..8].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(payload: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; UDP_HEADER_LEN];
        emit_header(&mut d, 4500, 4500, (UDP_HEADER_LEN + payload.len()) as u16);
        d.extend_from_slice(payload);
        d
    }

    #[test]
    fn classifies_keepalive_ike_and_esp() {
        let k = datagram(&[0xff]);
        assert_eq!(UdpPacket::new_checked(&k[..]).unwrap().encap_payload(), Ok(EncapPayload::Keepalive));
        let ike = datagram(&[0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44]);
        assert_eq!(UdpPacket::new_checked(&ike[..]).unwrap().encap_payload(), Ok(EncapPayload::Ike));
        let esp = datagram(&[0, 0, 1, 0, 0, 0, 0, 1, 0xaa]);
        let u = UdpPacket::new_checked(&esp[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (4500, 4500));
        assert_eq!(u.encap_payload(), Ok(EncapPayload::Esp));
        let short = datagram(&[0, 0, 1]);
        assert_eq!(UdpPacket::new_checked(&short[..]).unwrap().encap_payload(), Err(WireError::Truncated));
    }

    #[test]
    fn rejects_inconsistent_lengths() {
        let mut d = datagram(&[1, 2, 3, 4, 5, 6, 7, 8]);
        d[5] = 7;
        assert_eq!(UdpPacket::new_checked(&d[..]).unwrap_err(), WireError::Malformed);
        d[5] = 40;
        assert_eq!(UdpPacket::new_checked(&d[..]).unwrap_err(), WireError::Truncated);
    }
}
