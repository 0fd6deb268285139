//! Ethernet II frames with an optional 802.1Q tag, and ARP for IPv4 over Ethernet (RFC 826).

use std::net::Ipv4Addr;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const HEADER_LEN: usize = 14;
pub const VLAN_TAG_LEN: usize = 4;

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl std::str::FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        let bytes: Vec<u8> = s
            .split(':')
            .map(|p| u8::from_str_radix(p, 16))
            .collect::<Result<_, _>>()
            .map_err(|_| format!("'{s}' is not a MAC address (aa:bb:cc:dd:ee:ff)"))?;
        let octets: [u8; 6] = bytes.try_into().map_err(|_| format!("'{s}' is not a MAC address (aa:bb:cc:dd:ee:ff)"))?;
        Ok(Mac(octets))
    }
}

/// The link-layer header of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub dst: Mac,
    pub src: Mac,
    /// The 802.1Q VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
    /// The ethertype of the payload (after the tag).
    pub ethertype: u16,
    /// Length of the link-layer header (14, or 18 with a tag).
    pub header_len: usize,
}

impl Frame {
    /// Parses the Ethernet header (and one 802.1Q tag); `None` if the frame is too short.
    pub fn parse(b: &[u8]) -> Option<Frame> {
        let mac = |at: usize| Mac(b[at..at + 6].try_into().unwrap_or_default());
        if b.len() < HEADER_LEN {
            return None;
        }
        let outer_type = u16::from_be_bytes([b[12], b[13]]);
        let (vlan, ethertype, header_len) = if outer_type == ETHERTYPE_VLAN {
            let tag = b.get(14..18)?;
            (Some(u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff), u16::from_be_bytes([tag[2], tag[3]]), HEADER_LEN + VLAN_TAG_LEN)
        } else {
            (None, outer_type, HEADER_LEN)
        };
        Some(Frame { dst: mac(0), src: mac(6), vlan, ethertype, header_len })
    }

    /// Length of the header [`Frame::emit`] writes.
    pub fn len_for(vlan: Option<u16>) -> usize {
        HEADER_LEN + if vlan.is_some() { VLAN_TAG_LEN } else { 0 }
    }

    /// Writes the header into `out` (exactly [`Frame::len_for`] bytes).
    pub fn emit(out: &mut [u8], dst: Mac, src: Mac, vlan: Option<u16>, ethertype: u16) {
        out[0..6].copy_from_slice(&dst.0);
        out[6..12].copy_from_slice(&src.0);
        match vlan {
            Some(id) => {
                out[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
                out[14..16].copy_from_slice(&(id & 0x0fff).to_be_bytes());
                out[16..18].copy_from_slice(&ethertype.to_be_bytes());
            }
            None => out[12..14].copy_from_slice(&ethertype.to_be_bytes()),
        }
    }
}

pub const ARP_LEN: usize = 28;
pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

/// An ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// Parses the ARP payload of a frame; `None` unless it is Ethernet/IPv4 ARP.
    pub fn parse(b: &[u8]) -> Option<Arp> {
        let b = b.get(..ARP_LEN)?;
        if b[0..6] != [0, 1, 8, 0, 6, 4] {
            return None;
        }
        let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        Some(Arp {
            op: u16::from_be_bytes([b[6], b[7]]),
            sender_mac: Mac(b[8..14].try_into().ok()?),
            sender_ip: ip(14),
            target_mac: Mac(b[18..24].try_into().ok()?),
            target_ip: ip(24),
        })
    }

    pub fn emit(&self, out: &mut [u8]) {
        out[0..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
        out[6..8].copy_from_slice(&self.op.to_be_bytes());
        out[8..14].copy_from_slice(&self.sender_mac.0);
        out[14..18].copy_from_slice(&self.sender_ip.octets());
        out[18..24].copy_from_slice(&self.target_mac.0);
        out[24..28].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_and_untagged_headers_round_trip() {
        let (a, b) = (Mac([2, 0, 0, 0, 0, 1]), Mac([2, 0, 0, 0, 0, 2]));
        for vlan in [None, Some(100)] {
            let mut buf = vec![0u8; Frame::len_for(vlan) + 4];
            Frame::emit(&mut buf, a, b, vlan, ETHERTYPE_IPV6);
            let f = Frame::parse(&buf).unwrap();
            assert_eq!((f.dst, f.src, f.vlan, f.ethertype, f.header_len), (a, b, vlan, ETHERTYPE_IPV6, Frame::len_for(vlan)));
        }
        assert_eq!(Frame::parse(&[0u8; 13]), None);
        let mut tagged_short = [0u8; 16];
        tagged_short[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        assert_eq!(Frame::parse(&tagged_short), None);
    }

    #[test]
    fn arp_round_trips_and_rejects_other_hardware() {
        let arp = Arp {
            op: ARP_REQUEST,
            sender_mac: Mac([2, 0, 0, 0, 0, 1]),
            sender_ip: Ipv4Addr::new(198, 18, 0, 1),
            target_mac: Mac::default(),
            target_ip: Ipv4Addr::new(198, 18, 0, 2),
        };
        let mut buf = [0u8; ARP_LEN];
        arp.emit(&mut buf);
        assert_eq!(Arp::parse(&buf), Some(arp));
        buf[1] = 6;
        assert_eq!(Arp::parse(&buf), None);
        assert_eq!("02:00:00:00:00:01".parse::<Mac>(), Ok(Mac([2, 0, 0, 0, 0, 1])));
        assert!("02:00:00:00:01".parse::<Mac>().is_err());
    }
}
