//! ICMP errors the gateway sends about packets it cannot forward: time exceeded (RFC 792; RFC 1812
//! 5.3.1; RFC 4443 3.3) and the path MTU messages, "fragmentation needed and DF set" (RFC 1191)
//! and "packet too big" (RFC 4443 3.2). The offending packet's buffer becomes the error in place:
//! the start of the packet is quoted, the new IP and ICMP headers go in front. How many errors an
//! lcore sends is limited by a token bucket (RFC 1812 4.3.2.8, RFC 4443 2.4(f)).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::buf::PacketBuf;
use crate::wire::ipv4::{self, Ipv4Fields, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::{checksum, proto};

/// Why a packet is answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// The TTL or hop limit reached zero in transit.
    TimeExceeded,
    /// Larger than the next hop can carry, `mtu` bytes: IPv4 "fragmentation needed and DF set"
    /// (type 3 code 4, RFC 1191 4), IPv6 "packet too big" (type 2, RFC 4443 3.2).
    TooBig { mtu: u16 },
}

const ICMP_HEADER_LEN: usize = 8;
/// RFC 1812 4.3.2.3: an ICMPv4 error quotes as much as fits in a 576-byte datagram.
const V4_ERROR_MAX: usize = 576;
/// The minimum IPv6 MTU (RFC 8200 5); RFC 4443 2.4(c): an ICMPv6 error quotes as much as fits in it.
pub const IPV6_MIN_MTU: usize = 1280;
/// TTL and hop limit of the errors (RFC 1812 4.2.2.9 asks for a sensible default; 64 as hosts).
const HOP_LIMIT: u8 = 64;
/// DSCP CS6, internetwork control (RFC 1812 4.3.2.5, RFC 4594).
const TRAFFIC_CLASS: u8 = 0xc0;

/// ICMPv4 types that are errors (RFC 1812 4.3.2.7 names these as the ones not to answer).
fn is_icmpv4_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

/// RFC 1812 4.3.2.7: a source that is not a unique host (zero, loopback, broadcast, multicast,
/// class E) gets no error.
fn unique_v4_host(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_broadcast() || a.is_multicast() || a.octets()[0] >= 240)
}

/// The address an error about the IP packet `ip` goes to (its source), if one may be sent.
/// Never about an ICMP error, a fragment other than the first, a packet to a multicast or
/// broadcast address (RFC 1812 4.3.2.7; RFC 4443 2.4(e), which allows "packet too big" for
/// multicast), or from a source that is not a unique host.
pub fn reportable(ip: &[u8], error: IcmpError) -> Option<IpAddr> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => {
            let p = Ipv4Packet::new_checked(ip).ok()?;
            let offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
            let (src, dst) = (p.src(), p.dst());
            if offset != 0 || dst.is_multicast() || dst.is_broadcast() || !unique_v4_host(src) {
                return None;
            }
            if p.protocol() == proto::ICMP && p.payload().first().is_none_or(|t| is_icmpv4_error(*t)) {
                return None;
            }
            Some(src.into())
        }
        Some(6) => {
            let p = Ipv6Packet::new_checked(ip).ok()?;
            let (src, dst) = (p.src(), p.dst());
            if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
                return None;
            }
            if dst.is_multicast() && !matches!(error, IcmpError::TooBig { .. }) {
                return None;
            }
            let ul = p.upper_layer().ok()?;
            let (protocol, l4) = if ul.fragment {
                // The fragment header (RFC 8200 4.5): the next header, then the offset.
                let header = ip.get(ul.offset..ul.offset + 8)?;
                if u16::from_be_bytes([header[2], header[3]]) & 0xfff8 != 0 {
                    return None;
                }
                (header[0], ul.offset + 8)
            } else {
                (ul.protocol, ul.offset)
            };
            // ICMPv6 types below 128 are errors (RFC 4443 2.1).
            if protocol == proto::ICMPV6 && ip[..p.total_len()].get(l4).is_none_or(|t| *t < 128) {
                return None;
            }
            Some(src.into())
        }
        _ => None,
    }
}

/// Turns the IP packet in `pkt` into `error` about it, from `source` (an address of the same
/// family) to the packet's source. False, leaving the packet to be dropped, if no error may be
/// sent about it or the buffer has no room.
pub fn build<B: PacketBuf>(pkt: &mut B, error: IcmpError, source: IpAddr) -> bool {
    let Some(to) = reportable(pkt.data(), error) else { return false };
    let data = pkt.data();
    let (total, header_len, max) = match to {
        IpAddr::V4(_) => (usize::from(u16::from_be_bytes([data[2], data[3]])), ipv4::HEADER_LEN, V4_ERROR_MAX),
        IpAddr::V6(_) => (ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([data[4], data[5]])), ipv6::HEADER_LEN, IPV6_MIN_MTU),
    };
    let quote = total.min(max - header_len - ICMP_HEADER_LEN);
    let front = header_len + ICMP_HEADER_LEN;
    if pkt.headroom() < front || !pkt.trim(pkt.len() - quote) {
        return false;
    }
    pkt.prepend(front);
    let data = pkt.data_mut();
    let icmp_len = ICMP_HEADER_LEN + quote;
    let (icmp_type, code, rest) = match (to, error) {
        (IpAddr::V4(_), IcmpError::TimeExceeded) => (11, 0, 0),
        (IpAddr::V4(_), IcmpError::TooBig { mtu }) => (3, 4, u32::from(mtu)),
        (IpAddr::V6(_), IcmpError::TimeExceeded) => (3, 0, 0),
        (IpAddr::V6(_), IcmpError::TooBig { mtu }) => (2, 0, u32::from(mtu)),
    };
    let icmp = &mut data[header_len..];
    icmp[..4].copy_from_slice(&[icmp_type, code, 0, 0]);
    icmp[4..8].copy_from_slice(&rest.to_be_bytes());
    match (source, to) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let sum = checksum::checksum(&data[header_len..]);
            data[header_len + 2..header_len + 4].copy_from_slice(&sum.to_be_bytes());
            // An atomic datagram (DF, no fragments): its identification may be any (RFC 6864 4.1).
            let fields = Ipv4Fields {
                tos: TRAFFIC_CLASS,
                total_len: (header_len + icmp_len) as u16,
                ident: 0,
                dont_fragment: true,
                ttl: HOP_LIMIT,
                protocol: proto::ICMP,
                src,
                dst,
            };
            let mut header = [0u8; ipv4::HEADER_LEN];
            fields.emit(&mut header);
            data[..header_len].copy_from_slice(&header);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            write_v6(data, icmp_len, &src, &dst);
        }
        _ => return false,
    }
    true
}

/// The IPv6 header and the ICMPv6 checksum, over the pseudo-header (RFC 4443 2.3).
fn write_v6(data: &mut [u8], icmp_len: usize, src: &Ipv6Addr, dst: &Ipv6Addr) {
    let mut header = [0u8; ipv6::HEADER_LEN];
    ipv6::emit(&mut header, TRAFFIC_CLASS, icmp_len as u16, proto::ICMPV6, HOP_LIMIT, src, dst);
    data[..ipv6::HEADER_LEN].copy_from_slice(&header);
    let pseudo = checksum::pseudo_header(&src.octets(), &dst.octets(), proto::ICMPV6, icmp_len);
    let sum = !checksum::fold(checksum::accumulate(pseudo, &data[ipv6::HEADER_LEN..]));
    data[ipv6::HEADER_LEN + 2..ipv6::HEADER_LEN + 4].copy_from_slice(&sum.to_be_bytes());
}

/// One lcore's budget of errors: a token bucket of `burst` errors refilled at `per_sec`.
#[derive(Debug)]
pub struct ErrorRateLimit {
    per_sec: u64,
    burst: u64,
    /// The tokens, as the nanoseconds of refill they took (a token takes 1e9 / `per_sec`).
    tokens_ns: u64,
    last_ns: u64,
}

impl ErrorRateLimit {
    /// `per_sec` errors per second (0: none at all), in bursts of up to a tenth of that (at least 1).
    pub fn new(per_sec: u32) -> ErrorRateLimit {
        let burst = u64::from(per_sec / 10).max(1);
        ErrorRateLimit { per_sec: u64::from(per_sec), burst, tokens_ns: 0, last_ns: 0 }
    }

    /// Whether an error may be sent at `now_ns`; takes a token if so.
    pub fn allow(&mut self, now_ns: u64) -> bool {
        if self.per_sec == 0 {
            return false;
        }
        // A token is worth 1e9 / per_sec nanoseconds of refill; the bucket holds `burst` of them.
        let token = 1_000_000_000 / self.per_sec;
        let full = token * self.burst;
        let elapsed = now_ns.saturating_sub(self.last_ns);
        self.last_ns = now_ns;
        self.tokens_ns = self.tokens_ns.saturating_add(elapsed).min(full);
        if self.tokens_ns < token {
            return false;
        }
        self.tokens_ns -= token;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_allows_a_burst_then_the_rate() {
        let mut limit = ErrorRateLimit::new(100);
        let start = 5_000_000_000;
        assert_eq!((0..50).filter(|_| limit.allow(start)).count(), 10, "a burst of a tenth of the rate");
        assert!(!limit.allow(start + 9_000_000));
        assert!(limit.allow(start + 10_000_000), "one token every 10 ms");
        let sent = (1..=100u64).filter(|i| limit.allow(start + 10_000_000 + i * 10_000_000)).count();
        assert_eq!(sent, 100, "100 per second when spread out");
        let mut never = ErrorRateLimit::new(0);
        assert!(!never.allow(start));
    }
}
