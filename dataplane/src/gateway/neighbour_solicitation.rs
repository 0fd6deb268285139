//! IPv6 Neighbor Solicitation (RFC 4861 4.3, 7.2.2): how the gateway asks for the link-layer
//! address of an IPv6 next hop. The Neighbor Advertisement that answers it is learned like any
//! neighbour discovery message from an on-link sender (the pipeline).

use std::net::Ipv6Addr;

use super::ether::Mac;
use crate::wire::{checksum, ipv6, proto};

/// ICMPv6 type of a Neighbor Solicitation.
const NEIGHBOR_SOLICITATION: u8 = 135;
/// ICMPv6 header (type, code, checksum, reserved), target address, and the Source Link-Layer
/// Address option (type 1, length 1 in units of 8 bytes, the MAC).
const ICMP_LEN: usize = 8 + 16 + 8;
/// Length of the IPv6 packet this module writes.
pub const PACKET_LEN: usize = ipv6::HEADER_LEN + ICMP_LEN;
/// RFC 4861 7.1.1: neighbour discovery messages are sent, and only accepted, with hop limit 255.
const HOP_LIMIT: u8 = 255;

/// The solicited-node multicast address of `target` (RFC 4291 2.7.1): ff02::1:ff00:0/104 plus
/// the target's low 24 bits.
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let t = target.octets();
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(t[13]), u16::from_be_bytes([t[14], t[15]]))
}

/// The Ethernet address of an IPv6 multicast group (RFC 2464 7): 33:33 plus its low 32 bits.
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let g = group.octets();
    Mac([0x33, 0x33, g[12], g[13], g[14], g[15]])
}

/// Writes into `out` the IPv6 packet soliciting `target` from `source` (an address of the
/// gateway on the link), announcing `source_mac`.
pub fn emit(out: &mut [u8; PACKET_LEN], source: Ipv6Addr, source_mac: Mac, target: Ipv6Addr) {
    let group = solicited_node(target);
    let mut header = [0u8; ipv6::HEADER_LEN];
    ipv6::emit(&mut header, 0, ICMP_LEN as u16, proto::ICMPV6, HOP_LIMIT, &source, &group);
    out[..ipv6::HEADER_LEN].copy_from_slice(&header);
    let icmp = &mut out[ipv6::HEADER_LEN..];
    icmp.fill(0);
    icmp[0] = NEIGHBOR_SOLICITATION;
    icmp[8..24].copy_from_slice(&target.octets());
    icmp[24] = 1;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&source_mac.0);
    let pseudo = checksum::pseudo_header(&source.octets(), &group.octets(), proto::ICMPV6, ICMP_LEN);
    let sum = !checksum::fold(checksum::accumulate(pseudo, icmp));
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicited_node_group_and_its_mac() {
        // RFC 4291 2.7.1's example form: 4037::01:800:200e:8c6c -> ff02::1:ff0e:8c6c.
        let target: Ipv6Addr = "4037::1:800:200e:8c6c".parse().unwrap();
        assert_eq!(solicited_node(target), "ff02::1:ff0e:8c6c".parse::<Ipv6Addr>().unwrap());
        assert_eq!(multicast_mac(solicited_node(target)), Mac([0x33, 0x33, 0xff, 0x0e, 0x8c, 0x6c]));
    }

    #[test]
    fn the_solicitation_checksums_to_zero_with_its_pseudo_header() {
        let (source, target): (Ipv6Addr, Ipv6Addr) = ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
        let mut out = [0u8; PACKET_LEN];
        emit(&mut out, source, Mac([2, 0, 0, 0, 0, 1]), target);
        let pseudo = checksum::pseudo_header(&out[8..24], &out[24..40], proto::ICMPV6, ICMP_LEN);
        assert_eq!(checksum::fold(checksum::accumulate(pseudo, &out[40..])), 0xffff);
        assert_eq!((out[6], out[7], out[40]), (proto::ICMPV6, 255, 135));
        assert_eq!(&out[48..64], &target.octets());
    }
}
