//! The connection entries of [MS-IKEE] 3.1.1, as one fixed-size key.
//!
//! 3.1.1 lists V4/V6 TCP/UDP entries {source, destination, protocol, source port, destination
//! port}, V4/V6 ICMP entries {source, destination, protocol, type, code} and V4/V6 protocol-only
//! entries {source, destination, protocol}. The inbound and outbound packets of one connection
//! must reach the same flow state (3.7.4.1 sets Secure on the way out, 3.7.4.2 reads it on the way
//! in), so a key is stored oriented as (local, remote): an outbound packet's source is local, an
//! inbound packet's destination is local.

use std::net::IpAddr;

use shared::event::FlowTuple;
use shared::sa::Direction;

use crate::esp::flow::{Flow, FlowAddr};
use crate::wire::proto;

/// What identifies a connection beyond the addresses and protocol (3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP, UDP (and SCTP): local and remote port.
    Ports { local: u16, remote: u16 },
    /// ICMP and ICMPv6: type and code.
    Icmp { ty: u8, code: u8 },
    /// Any other protocol, or a packet whose ports are not visible (a non-first fragment).
    ProtocolOnly,
}

const KIND_PORTS: u64 = 1;
const KIND_ICMP: u64 = 2;
const KIND_PROTOCOL_ONLY: u64 = 3;

/// ICMP echo request and reply are one exchange; both are keyed by the request type so the reply
/// finds the state the request created (3.1.1 keys ICMP by type and code; without this an echo
/// reply to a secured echo request would be a new, unsecured flow).
fn icmp_exchange_type(proto: u8, ty: u8) -> u8 {
    match (proto, ty) {
        (proto::ICMP, 0) => 8,
        (proto::ICMPV6, 129) => 128,
        _ => ty,
    }
}

/// A connection entry. Addresses are stored IPv4-mapped, so IPv4 and IPv6 entries share a layout;
/// the last word holds ports (or ICMP type and code), protocol and the entry kind, and is never 0.
#[derive(Debug, Clone, Copy, Eq)]
pub struct FlowKey {
    pub(crate) words: [u64; KEY_WORDS],
}

impl PartialEq for FlowKey {
    /// Word by word, folded: the derived comparison of the array is a call to memcmp per packet.
    #[inline]
    fn eq(&self, other: &FlowKey) -> bool {
        self.words.iter().zip(&other.words).fold(0, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.words.hash(state);
    }
}

pub(crate) const KEY_WORDS: usize = 5;

fn addr_words(a: FlowAddr) -> [u64; 2] {
    [(a.0 >> 64) as u64, a.0 as u64]
}

fn words_addr(hi: u64, lo: u64) -> IpAddr {
    FlowAddr(u128::from(hi) << 64 | u128::from(lo)).ip()
}

impl FlowKey {
    /// The entry of a connection between `local` and `remote` (of one address family).
    pub fn new(local: IpAddr, remote: IpAddr, proto: u8, transport: Transport) -> FlowKey {
        FlowKey::of_addresses(local.into(), remote.into(), proto, transport)
    }

    #[inline]
    fn of_addresses(local: FlowAddr, remote: FlowAddr, proto: u8, transport: Transport) -> FlowKey {
        let (kind, a, b) = match transport {
            Transport::Ports { local, remote } => (KIND_PORTS, local, remote),
            Transport::Icmp { ty, code } => (KIND_ICMP, u16::from(icmp_exchange_type(proto, ty)), u16::from(code)),
            Transport::ProtocolOnly => (KIND_PROTOCOL_ONLY, 0, 0),
        };
        let [l0, l1] = addr_words(local);
        let [r0, r1] = addr_words(remote);
        let last = u64::from(a) | u64::from(b) << 16 | u64::from(proto) << 32 | kind << 40;
        FlowKey { words: [l0, l1, r0, r1, last] }
    }

    /// The entry of a packet travelling in `direction`, from the fields the SPD looks at.
    #[inline]
    pub fn of_flow(direction: Direction, flow: &Flow) -> FlowKey {
        let (local, remote) = match direction {
            Direction::Out => (flow.src, flow.dst),
            Direction::In => (flow.dst, flow.src),
        };
        let transport = match (flow.proto, flow.ports) {
            // `Flow` carries ICMP type and code as type * 256 + code in both fields.
            (proto::ICMP | proto::ICMPV6, Some((tc, _))) => Transport::Icmp { ty: (tc >> 8) as u8, code: tc as u8 },
            (_, Some((s, d))) => match direction {
                Direction::Out => Transport::Ports { local: s, remote: d },
                Direction::In => Transport::Ports { local: d, remote: s },
            },
            (_, None) => Transport::ProtocolOnly,
        };
        FlowKey::of_addresses(local, remote, flow.proto, transport)
    }

    pub fn local(&self) -> IpAddr {
        words_addr(self.words[0], self.words[1])
    }

    pub fn remote(&self) -> IpAddr {
        words_addr(self.words[2], self.words[3])
    }

    pub fn proto(&self) -> u8 {
        (self.words[4] >> 32) as u8
    }

    pub fn transport(&self) -> Transport {
        let (a, b) = (self.words[4] as u16, (self.words[4] >> 16) as u16);
        match self.words[4] >> 40 {
            KIND_PORTS => Transport::Ports { local: a, remote: b },
            KIND_ICMP => Transport::Icmp { ty: a as u8, code: b as u8 },
            _ => Transport::ProtocolOnly,
        }
    }

    /// The flow as an outbound packet carries it, for the ACQUIRE event (its ports carry ICMP
    /// type and code, as `shared::event::FlowTuple` says).
    pub fn outbound_tuple(&self) -> FlowTuple {
        let (src_port, dst_port) = match self.transport() {
            Transport::Ports { local, remote } => (local, remote),
            Transport::Icmp { ty, code } => (u16::from(ty), u16::from(code)),
            Transport::ProtocolOnly => (0, 0),
        };
        FlowTuple { src: self.local(), dst: self.remote(), proto: self.proto(), src_port, dst_port }
    }

    /// A seeded 64-bit hash: the words folded pairwise by 128-bit multiplies (independent, so
    /// they run in parallel), then once more (wyhash's mixing step).
    #[inline]
    pub(crate) fn hash(&self, seed: u64) -> u64 {
        const K: [u64; 3] = [0xa076_1d64_78bd_642f, 0xe703_7ed1_a0b4_28db, 0x8ebc_6af0_9c88_c6e3];
        let fold = |a: u64, b: u64| {
            let m = u128::from(a) * u128::from(b);
            (m >> 64) as u64 ^ m as u64
        };
        let [w0, w1, w2, w3, w4] = self.words;
        let a = fold(w0 ^ seed ^ K[0], w1 ^ K[1]);
        let b = fold(w2 ^ seed ^ K[1], w3 ^ K[2]);
        let c = fold(w4 ^ seed ^ K[2], K[0]);
        fold(a ^ b.rotate_left(21) ^ K[1], c ^ K[2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, a))
    }

    #[test]
    fn both_directions_of_a_connection_share_a_key() {
        let out = Flow { src: v4(1).into(), dst: v4(2).into(), proto: proto::TCP, ports: Some((40000, 80)) };
        let back = Flow { src: v4(2).into(), dst: v4(1).into(), proto: proto::TCP, ports: Some((80, 40000)) };
        assert_eq!(FlowKey::of_flow(Direction::Out, &out), FlowKey::of_flow(Direction::In, &back));
        assert_ne!(FlowKey::of_flow(Direction::Out, &out), FlowKey::of_flow(Direction::Out, &back));
    }

    #[test]
    fn echo_reply_finds_the_echo_request_entry() {
        let req = Flow { src: v4(1).into(), dst: v4(2).into(), proto: proto::ICMP, ports: Some((8 << 8, 8 << 8)) };
        let rep = Flow { src: v4(2).into(), dst: v4(1).into(), proto: proto::ICMP, ports: Some((0, 0)) };
        assert_eq!(FlowKey::of_flow(Direction::Out, &req), FlowKey::of_flow(Direction::In, &rep));
        let unreachable = Flow { src: v4(2).into(), dst: v4(1).into(), proto: proto::ICMP, ports: Some((3 << 8 | 1, 3 << 8 | 1)) };
        assert_eq!(FlowKey::of_flow(Direction::In, &unreachable).transport(), Transport::Icmp { ty: 3, code: 1 });
    }

    #[test]
    fn fields_round_trip_for_every_entry_kind() {
        let six = IpAddr::V6(Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 1));
        for (local, remote) in [(v4(1), v4(2)), (six, six)] {
            for (p, t) in [
                (proto::UDP, Transport::Ports { local: 500, remote: 4500 }),
                (proto::ICMPV6, Transport::Icmp { ty: 1, code: 4 }),
                (47, Transport::ProtocolOnly),
            ] {
                let k = FlowKey::new(local, remote, p, t);
                assert_eq!((k.local(), k.remote(), k.proto(), k.transport()), (local, remote, p, t));
                assert_ne!(k.words[4], 0);
            }
        }
        let udp = FlowKey::new(v4(1), v4(2), proto::UDP, Transport::Ports { local: 1, remote: 2 });
        let t = udp.outbound_tuple();
        assert_eq!((t.src, t.dst, t.proto, t.src_port, t.dst_port), (v4(1), v4(2), proto::UDP, 1, 2));
    }
}
