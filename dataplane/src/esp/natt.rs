//! The transport-mode checksum fixup of RFC 3948 3.1.2: a peer behind a NAT computed its TCP/UDP
//! checksums over its original addresses (NAT-OA), which the NAT changed in the IP header. The
//! receiver updates the checksum incrementally from the original addresses to the ones in the
//! packet, so that the decapsulated packet is valid as received.

use std::net::IpAddr;

use super::sa::NatOa;
use crate::wire::{checksum, proto};

/// Offset of the checksum field in the TCP and UDP headers.
const TCP_CHECKSUM_AT: usize = 16;
const UDP_CHECKSUM_AT: usize = 6;

fn octets(a: IpAddr) -> ([u8; 16], usize) {
    match a {
        IpAddr::V4(a) => {
            let mut o = [0u8; 16];
            o[..4].copy_from_slice(&a.octets());
            (o, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

/// Fixes the checksum of the TCP or UDP header `l4` (other protocols are left alone) for a packet
/// whose IP header now carries `src` and `dst` instead of the original addresses.
pub fn fix_checksum(l4: &mut [u8], protocol: u8, original: &NatOa, src: IpAddr, dst: IpAddr) {
    let at = match protocol {
        proto::TCP => TCP_CHECKSUM_AT,
        proto::UDP => UDP_CHECKSUM_AT,
        _ => return,
    };
    let Some(field) = l4.get(at..at + 2) else { return };
    let old = u16::from_be_bytes([field[0], field[1]]);
    if protocol == proto::UDP && old == 0 {
        // A zero UDP checksum means none was computed (IPv4, RFC 768): nothing to fix.
        return;
    }
    let mut sum = old;
    for (from, to) in [(original.src, src), (original.dst, dst)] {
        let ((f, fl), (t, tl)) = (octets(from), octets(to));
        if fl == tl {
            sum = checksum::update(sum, &f[..fl], &t[..tl]);
        }
    }
    l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_checksum(src: [u8; 4], dst: [u8; 4], udp: &[u8]) -> u16 {
        let mut d = udp.to_vec();
        d[6..8].fill(0);
        !checksum::fold(checksum::accumulate(checksum::pseudo_header(&src, &dst, 17, d.len()), &d))
    }

    #[test]
    fn rewrites_a_udp_checksum_from_the_original_addresses() {
        let (orig_src, orig_dst) = ([10, 0, 0, 5], [198, 18, 0, 1]);
        let (nat_src, dst) = ([198, 18, 9, 9], [198, 18, 0, 1]);
        let mut udp = vec![0x13, 0x88, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4];
        let c = udp_checksum(orig_src, orig_dst, &udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        let oa = NatOa { src: IpAddr::from(orig_src), dst: IpAddr::from(orig_dst) };
        fix_checksum(&mut udp, proto::UDP, &oa, IpAddr::from(nat_src), IpAddr::from(dst));
        assert_eq!(u16::from_be_bytes([udp[6], udp[7]]), udp_checksum(nat_src, dst, &udp));
    }
}
