//! The inbound selector check (RFC 4301 5.2): a decapsulated packet must match the traffic
//! selectors the SA was negotiated for (IKEv2 traffic selectors, RFC 7296 3.13.1).

use std::net::IpAddr;

use shared::sa::TrafficSelector;

use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::{proto, WireError};

/// What selectors look at in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// Source and destination port; for ICMP, type and code both as type * 256 + code (RFC 7296
    /// 3.13.1). `None` when the packet carries none (or is a non-first fragment): OPAQUE.
    pub ports: Option<(u16, u16)>,
}

impl Flow {
    /// The flow of a valid IP packet. Always inlined: returned through memory, the 40-byte
    /// result is written in pieces and read back whole, a store-forwarding stall on every packet.
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
                let ul = p.upper_layer()?;
                let l4 = if ul.fragment { &[][..] } else { &pkt[ul.offset..p.total_len()] };
                (p.src().into(), p.dst().into(), ul.protocol, l4)
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

    /// An inbound packet comes from the remote selector and goes to the local one.
    pub fn inbound_allowed(&self, local: &TrafficSelector, remote: &TrafficSelector) -> bool {
        let ports = self.ports.map(|(s, d)| (Some(s), Some(d))).unwrap_or((None, None));
        matches(remote, self.src, self.proto, ports.0) && matches(local, self.dst, self.proto, ports.1)
    }
}

fn matches(ts: &TrafficSelector, addr: IpAddr, proto: u8, port: Option<u16>) -> bool {
    let in_range = match (ts.start, ts.end, addr) {
        (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(a)) => s <= a && a <= e,
        (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(a)) => s <= a && a <= e,
        _ => false,
    };
    let any_port = ts.start_port == 0 && ts.end_port == u16::MAX;
    let port_ok = match port {
        Some(p) => ts.start_port <= p && p <= ts.end_port,
        None => any_port,
    };
    in_range && (ts.proto == 0 || ts.proto == proto) && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(start: &str, end: &str, proto: u8, ports: (u16, u16)) -> TrafficSelector {
        TrafficSelector { start: start.parse().unwrap(), end: end.parse().unwrap(), proto, start_port: ports.0, end_port: ports.1 }
    }

    #[test]
    fn checks_addresses_protocol_and_ports() {
        let f = Flow { src: "198.18.1.5".parse().unwrap(), dst: "198.18.0.1".parse().unwrap(), proto: 17, ports: Some((5000, 53)) };
        let local = ts("198.18.0.0", "198.18.0.255", 17, (53, 53));
        let remote = ts("198.18.1.0", "198.18.1.255", 0, (0, u16::MAX));
        assert!(f.inbound_allowed(&local, &remote));
        assert!(!f.inbound_allowed(&remote, &local), "direction matters");
        assert!(!f.inbound_allowed(&ts("198.18.0.0", "198.18.0.255", 6, (0, u16::MAX)), &remote));
        assert!(!f.inbound_allowed(&ts("198.18.0.0", "198.18.0.255", 17, (54, 60)), &remote));
        assert!(!f.inbound_allowed(&ts("::", "ffff::", 0, (0, u16::MAX)), &remote), "family mismatch");
        let opaque = Flow { ports: None, ..f };
        assert!(!opaque.inbound_allowed(&local, &remote), "no ports only match any-port selectors");
    }

    #[test]
    fn reads_ports_from_packets() {
        let mut udp = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 1, 5, 198, 18, 0, 1];
        udp.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
        let f = Flow::of(&udp).unwrap();
        assert_eq!((f.proto, f.ports), (17, Some((5000, 53))));
        assert_eq!(Flow::of(&udp[..10]), Err(WireError::Truncated));
    }
}
