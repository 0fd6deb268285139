//! What the SPD, the inbound selector check and the negotiation discovery table look at in a
//! packet: its addresses, protocol and ports (RFC 4301 4.4.1.1 selectors).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::{proto, WireError};

/// An address as one 128-bit number: IPv6 as is, IPv4 in its IPv4-mapped form (RFC 4291
/// 2.5.5.2). Every lookup keys on the number; keeping it whole (rather than an `IpAddr`, written
/// as a tag and four or sixteen bytes and read back in wider pieces) avoids a store-forwarding
/// stall on every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowAddr(pub u128);

/// ::ffff:0:0/96, the IPv4-mapped prefix.
const V4_MAPPED_PREFIX: u128 = 0xffff << 32;

impl FlowAddr {
    #[inline(always)]
    pub fn is_ipv4(self) -> bool {
        self.0 >> 32 == 0xffff
    }

    pub fn ip(self) -> IpAddr {
        if self.is_ipv4() {
            IpAddr::V4(Ipv4Addr::from(self.0 as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.0))
        }
    }
}

impl From<Ipv4Addr> for FlowAddr {
    fn from(a: Ipv4Addr) -> FlowAddr {
        FlowAddr(V4_MAPPED_PREFIX | u128::from(u32::from(a)))
    }
}

impl From<IpAddr> for FlowAddr {
    fn from(a: IpAddr) -> FlowAddr {
        match a {
            IpAddr::V4(v4) => v4.into(),
            IpAddr::V6(v6) => FlowAddr(u128::from(v6)),
        }
    }
}

impl std::str::FromStr for FlowAddr {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<FlowAddr, Self::Err> {
        s.parse::<IpAddr>().map(FlowAddr::from)
    }
}

/// The selector fields of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: FlowAddr,
    pub dst: FlowAddr,
    pub proto: u8,
    /// Source and destination port; for ICMP, type and code both as type * 256 + code (RFC 7296
    /// 3.13.1). `None` when the packet carries none (or is a non-first fragment): OPAQUE.
    pub ports: Option<(u16, u16)>,
}

impl Flow {
    /// The flow of a valid IP packet. An IPv6 packet with an IPv4-mapped address is refused
    /// (RFC 4942 2.2: such addresses do not belong on the wire), so that the two families
    /// never meet in one key. Always inlined: returned through memory, the result is written in
    /// pieces and read back whole, a store-forwarding stall on every packet.
    #[inline(always)]
    pub fn of(pkt: &[u8]) -> Result<Flow, WireError> {
        let (src, dst, proto, l4) = match pkt.first().map(|b| b >> 4) {
            Some(4) => {
                let p = Ipv4Packet::new_checked(pkt)?;
                let l4 = if p.is_fragment() { &[][..] } else { &pkt[p.header_len()..p.total_len()] };
                (p.src().into(), p.dst().into(), p.protocol(), l4)
            }
            Some(6) => {
                let p = Ipv6Packet::new_checked(pkt)?;
                let (src, dst) = (FlowAddr(u128::from(p.src())), FlowAddr(u128::from(p.dst())));
                if src.is_ipv4() || dst.is_ipv4() {
                    return Err(WireError::Malformed);
                }
                let ul = p.upper_layer()?;
                let l4 = if ul.fragment { &[][..] } else { &pkt[ul.offset..p.total_len()] };
                (src, dst, ul.protocol, l4)
            }
            _ => return Err(WireError::Malformed),
        };
        let ports = match (proto, l4) {
            (proto::TCP | proto::UDP | proto::SCTP, [a, b, c, d, ..]) => {
                Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])))
            }
            (proto::ICMP | proto::ICMPV6, [t, c, ..]) => {
                let tc = u16::from_be_bytes([*t, *c]);
                Some((tc, tc))
            }
            _ => None,
        };
        Ok(Flow { src, dst, proto, ports })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ports_from_packets() {
        let mut udp = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 1, 5, 198, 18, 0, 1];
        udp.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
        let f = Flow::of(&udp).unwrap();
        assert_eq!((f.src.ip(), f.dst, f.proto, f.ports), ("198.18.1.5".parse().unwrap(), "198.18.0.1".parse().unwrap(), 17, Some((5000, 53))));
        assert_eq!(Flow::of(&udp[..10]), Err(WireError::Truncated));
    }

    #[test]
    fn addresses_keep_their_family() {
        for text in ["198.18.0.1", "0.0.0.0", "255.255.255.255", "2001:2::1", "::", "::1", "::ffff:0:0:1"] {
            let ip: IpAddr = text.parse().unwrap();
            let a = FlowAddr::from(ip);
            assert_eq!((a.ip(), a.is_ipv4()), (ip, ip.is_ipv4()), "{text}");
        }
    }

    #[test]
    fn refuses_ipv4_mapped_addresses_in_ipv6() {
        let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        v6.extend_from_slice(&"::ffff:198.18.0.1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&"2001:2::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
        assert_eq!(Flow::of(&v6), Err(WireError::Malformed));
        v6[8..24].copy_from_slice(&"2001:2::2".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(Flow::of(&v6).unwrap().ports, Some((5000, 53)));
    }
}
