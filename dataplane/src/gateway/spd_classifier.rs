//! The SPD compiled for the packet path: the rules of one published snapshot (shared::spd) in
//! evaluation order, split by direction, with addresses as 128-bit masks (IPv4 mapped into IPv6)
//! so that a match is a few integer comparisons. First match wins (RFC 4301 4.4.1).

use std::net::IpAddr;

use shared::policy::{
    PolicyRecord, ACTION_BYPASS, ACTION_DISCARD, ACTION_PROTECT, PFLAG_BOUNDARY, PFLAG_GUARANTEED_ENCRYPTION, PFLAG_ND_INBOUND,
    PFLAG_ND_OUTBOUND, SEL_HAS_ICMP_CODE, SEL_HAS_ICMP_TYPE, SEL_HAS_PROTO,
};
use shared::sa::Direction;
use shared::spd::SpdView;

use crate::esp::selector::Flow;
use crate::wire::proto;

/// What a rule says to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Bypass,
    Discard,
    /// Protect with the outbound SA linked to `reqid`.
    Protect {
        reqid: u32,
    },
}

/// A matched rule: its decision and what the negotiation-discovery hook ([MS-IKEE] 3.7) and the
/// ACQUIRE event need to know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub policy_id: u32,
    pub decision: Decision,
    /// The record's PFLAG_* bits (negotiation discovery, boundary, guaranteed encryption).
    pub flags: u8,
}

impl Matched {
    pub fn nd_inbound(&self) -> bool {
        self.flags & PFLAG_ND_INBOUND != 0
    }
    pub fn nd_outbound(&self) -> bool {
        self.flags & PFLAG_ND_OUTBOUND != 0
    }
    pub fn boundary(&self) -> bool {
        self.flags & PFLAG_BOUNDARY != 0
    }
    pub fn guaranteed_encryption(&self) -> bool {
        self.flags & PFLAG_GUARANTEED_ENCRYPTION != 0
    }
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    src: u128,
    src_mask: u128,
    dst: u128,
    dst_mask: u128,
    v4: bool,
    proto: Option<u8>,
    src_ports: (u16, u16),
    dst_ports: (u16, u16),
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    matched: Matched,
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

fn key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Rule {
    fn compile(r: &PolicyRecord) -> Rule {
        let has = |b: u8| r.selector_flags & b != 0;
        let decision = match r.action {
            ACTION_PROTECT => Decision::Protect { reqid: r.reqid },
            ACTION_DISCARD => Decision::Discard,
            // Unknown actions from a newer writer are not guessed at.
            ACTION_BYPASS => Decision::Bypass,
            _ => Decision::Discard,
        };
        let (src_mask, dst_mask) = (mask(r.src_len), mask(r.dst_len));
        Rule {
            src: u128::from_be_bytes(r.src.0) & src_mask,
            src_mask,
            dst: u128::from_be_bytes(r.dst.0) & dst_mask,
            dst_mask,
            v4: r.src.is_ipv4(),
            proto: has(SEL_HAS_PROTO).then_some(r.proto),
            src_ports: (r.src_port_lo, r.src_port_hi),
            dst_ports: (r.dst_port_lo, r.dst_port_hi),
            icmp_type: has(SEL_HAS_ICMP_TYPE).then_some(r.icmp_type),
            icmp_code: has(SEL_HAS_ICMP_CODE).then_some(r.icmp_code),
            matched: Matched { policy_id: r.id, decision, flags: r.flags },
        }
    }

    #[inline]
    fn matches(&self, v4: bool, src: u128, dst: u128, f: &Flow) -> bool {
        if self.v4 != v4 || src & self.src_mask != self.src || dst & self.dst_mask != self.dst {
            return false;
        }
        if self.proto.is_some_and(|p| p != f.proto) {
            return false;
        }
        let icmp = matches!(f.proto, proto::ICMP | proto::ICMPV6);
        match f.ports {
            // ICMP: Flow carries type * 256 + code; the rule's type and code select (RFC 4301 4.4.1.1).
            Some((tc, _)) if icmp => {
                let (t, c) = ((tc >> 8) as u8, tc as u8);
                self.icmp_type.is_none_or(|x| x == t) && self.icmp_code.is_none_or(|x| x == c)
            }
            Some((s, d)) => (self.src_ports.0..=self.src_ports.1).contains(&s) && (self.dst_ports.0..=self.dst_ports.1).contains(&d),
            // No ports visible (OPAQUE): only rules that ask for none match.
            None => {
                self.src_ports == (0, u16::MAX) && self.dst_ports == (0, u16::MAX) && self.icmp_type.is_none() && self.icmp_code.is_none()
            }
        }
    }
}

/// One SPD snapshot, compiled.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    version: u64,
    outbound: Vec<Rule>,
    inbound: Vec<Rule>,
}

impl Classifier {
    pub fn compile(view: &SpdView<'_>) -> Classifier {
        Classifier::from_records(view.version, view.iter())
    }

    pub fn from_records(version: u64, records: impl IntoIterator<Item = PolicyRecord>) -> Classifier {
        let mut c = Classifier { version, ..Classifier::default() };
        for r in records {
            let rule = Rule::compile(&r);
            // PolicyRecord.direction: 1 is outbound (shared::policy).
            if r.direction == 1 {
                c.outbound.push(rule);
            } else {
                c.inbound.push(rule);
            }
        }
        c
    }

    /// The snapshot version this was compiled from.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The first rule of `direction` that matches `flow`.
    #[inline]
    pub fn classify(&self, direction: Direction, flow: &Flow) -> Option<Matched> {
        let rules = match direction {
            Direction::Out => &self.outbound,
            Direction::In => &self.inbound,
        };
        let (src, dst, v4) = (key(flow.src), key(flow.dst), flow.src.is_ipv4());
        rules.iter().find(|r| r.matches(v4, src, dst, flow)).map(|r| r.matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::policy::{Action, Policy, PolicyFlags, Prefix, SaTemplate, Selector};
    use shared::sa::Mode;

    fn policy(priority: u32, direction: Direction, src: &str, dst: &str, proto: Option<u8>, dport: (u16, u16), action: Action) -> Policy {
        let p = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            Prefix::new(a.parse().unwrap(), l.parse().unwrap())
        };
        Policy {
            priority,
            direction,
            selector: Selector {
                src: p(src),
                dst: p(dst),
                proto,
                src_ports: (0, u16::MAX),
                dst_ports: dport,
                icmp_type: None,
                icmp_code: None,
            },
            action,
            flags: PolicyFlags::default(),
        }
    }

    fn flow(src: &str, dst: &str, proto: u8, ports: Option<(u16, u16)>) -> Flow {
        Flow { src: src.parse().unwrap(), dst: dst.parse().unwrap(), proto, ports }
    }

    #[test]
    fn first_match_in_priority_order_per_direction_and_family() {
        let template = SaTemplate { mode: Mode::Tunnel, src: "198.18.0.1".parse().unwrap(), dst: "198.18.0.2".parse().unwrap() };
        let rules = [
            policy(1, Direction::Out, "198.18.1.0/24", "198.18.2.0/24", Some(6), (22, 22), Action::Discard),
            policy(2, Direction::Out, "198.18.1.0/24", "198.18.2.0/24", None, (0, u16::MAX), Action::Protect { reqid: 7, template }),
            policy(3, Direction::In, "198.18.2.0/24", "198.18.1.0/24", None, (0, u16::MAX), Action::Bypass),
            policy(4, Direction::Out, "2001:2::/48", "2001:2:1::/48", None, (0, u16::MAX), Action::Bypass),
        ];
        let records: Vec<PolicyRecord> = rules.iter().enumerate().map(|(i, p)| PolicyRecord::new(i as u32 + 1, p)).collect();
        let c = Classifier::from_records(9, records);
        let out = |f: &Flow| c.classify(Direction::Out, f).map(|m| (m.policy_id, m.decision));
        assert_eq!(out(&flow("198.18.1.5", "198.18.2.5", 6, Some((4000, 22)))), Some((1, Decision::Discard)));
        assert_eq!(out(&flow("198.18.1.5", "198.18.2.5", 6, Some((4000, 80)))), Some((2, Decision::Protect { reqid: 7 })));
        assert_eq!(out(&flow("198.18.1.5", "198.18.3.5", 6, Some((4000, 80)))), None);
        assert_eq!(out(&flow("2001:2::5", "2001:2:1::5", 17, Some((1, 2)))), Some((4, Decision::Bypass)));
        assert_eq!(out(&flow("::ffff:198.18.1.5", "::ffff:198.18.2.5", 17, Some((1, 2)))), None, "IPv4-mapped IPv6 is not IPv4");
        assert_eq!(c.classify(Direction::In, &flow("198.18.2.5", "198.18.1.5", 1, Some((0x800, 0x800)))).map(|m| m.policy_id), Some(3));
        assert_eq!(c.classify(Direction::In, &flow("198.18.1.5", "198.18.2.5", 1, None)), None);
        // A port-restricted rule never matches a packet whose ports are not visible.
        assert_eq!(out(&flow("198.18.1.5", "198.18.2.5", 6, None)).map(|m| m.0), Some(2));
    }
}
