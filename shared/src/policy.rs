//! Security policies (RFC 4301 section 4.4.1) with the [MS-IKEE] 3.7.1 policy flags, and their
//! fixed-size record in an SPD snapshot.

use std::net::IpAddr;

use bytemuck::{Pod, Zeroable};

use crate::addr::RawAddr;
use crate::sa::{Direction, Mode};

/// An address prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn new(addr: IpAddr, len: u8) -> Prefix {
        Prefix { addr, len }
    }
    fn max_len(&self) -> u8 {
        if self.addr.is_ipv4() {
            32
        } else {
            128
        }
    }
}

/// What a rule matches. Ports and ICMP fields apply only when `proto` names TCP/UDP/SCTP or ICMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector {
    pub src: Prefix,
    pub dst: Prefix,
    /// IP protocol, or `None` for any.
    pub proto: Option<u8>,
    pub src_ports: (u16, u16),
    pub dst_ports: (u16, u16),
    /// ICMP or ICMPv6 type and code (RFC 4301 4.4.1.1), when `proto` is ICMP.
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
}

/// A template for the SA that protects traffic matched by a rule without an installed SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SaTemplate {
    pub mode: Mode,
    /// Tunnel endpoints (ignored in transport mode).
    pub src: IpAddr,
    pub dst: IpAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Bypass,
    Discard,
    /// Protect with the outbound SA linked to `reqid`, negotiating one from `template` if absent.
    /// A negotiation discovery rule is a protect rule with the negotiation discovery flags.
    Protect { reqid: u32, template: SaTemplate },
}

/// A rule's flags: the policy flags of [MS-IKEE] 3.7.1, and whether the IKE daemon installed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PolicyFlags {
    /// Negotiation discovery applies to inbound traffic.
    pub nd_inbound: bool,
    /// Negotiation discovery applies to outbound traffic.
    pub nd_outbound: bool,
    /// Plaintext is accepted for this (inbound negotiation discovery) rule.
    pub boundary: bool,
    /// Encryption is guaranteed for this traffic.
    pub guaranteed_encryption: bool,
    /// Installed by the IKE daemon for a negotiated child SA, or as a trap rule: a restarted
    /// daemon finds its predecessor's rules by this flag (the dataplane ignores it).
    pub negotiated: bool,
}

/// One SPD rule. Rules are evaluated in ascending `priority`; ties keep insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    pub priority: u32,
    pub direction: Direction,
    pub selector: Selector,
    pub action: Action,
    pub flags: PolicyFlags,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("prefix length {len} is too long for {addr}")]
    PrefixTooLong { addr: IpAddr, len: u8 },
    #[error("source and destination prefixes are of different address families")]
    MixedFamilies,
    #[error("port range {0}-{1} is empty")]
    EmptyPortRange(u16, u16),
    #[error("ICMP type/code given for protocol {0:?}, which is not ICMP")]
    IcmpWithoutIcmp(Option<u8>),
    #[error("negotiation discovery and boundary flags need a protect action")]
    FlagsWithoutProtect,
    #[error("reqid 0 is reserved for 'no SA'")]
    ZeroReqid,
}

const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;

impl Policy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        let s = &self.selector;
        for p in [s.src, s.dst] {
            if p.len > p.max_len() {
                return Err(PolicyError::PrefixTooLong { addr: p.addr, len: p.len });
            }
        }
        if s.src.addr.is_ipv4() != s.dst.addr.is_ipv4() {
            return Err(PolicyError::MixedFamilies);
        }
        for (lo, hi) in [s.src_ports, s.dst_ports] {
            if lo > hi {
                return Err(PolicyError::EmptyPortRange(lo, hi));
            }
        }
        let icmp = matches!(s.proto, Some(PROTO_ICMP | PROTO_ICMPV6));
        if (s.icmp_type.is_some() || s.icmp_code.is_some()) && !icmp {
            return Err(PolicyError::IcmpWithoutIcmp(s.proto));
        }
        let f = &self.flags;
        let nd = f.nd_inbound || f.nd_outbound || f.boundary;
        match self.action {
            Action::Protect { reqid: 0, .. } => Err(PolicyError::ZeroReqid),
            Action::Protect { .. } => Ok(()),
            _ if nd => Err(PolicyError::FlagsWithoutProtect),
            _ => Ok(()),
        }
    }
}

// Record encodings.
pub const ACTION_BYPASS: u8 = 0;
pub const ACTION_DISCARD: u8 = 1;
pub const ACTION_PROTECT: u8 = 2;

pub const PFLAG_ND_INBOUND: u8 = 1 << 0;
pub const PFLAG_ND_OUTBOUND: u8 = 1 << 1;
pub const PFLAG_BOUNDARY: u8 = 1 << 2;
pub const PFLAG_GUARANTEED_ENCRYPTION: u8 = 1 << 3;
pub const PFLAG_NEGOTIATED: u8 = 1 << 4;

pub const SEL_HAS_PROTO: u8 = 1 << 0;
pub const SEL_HAS_ICMP_TYPE: u8 = 1 << 1;
pub const SEL_HAS_ICMP_CODE: u8 = 1 << 2;

/// A rule as stored in an SPD snapshot.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct PolicyRecord {
    pub id: u32,
    pub priority: u32,
    pub direction: u8,
    pub action: u8,
    pub flags: u8,
    pub selector_flags: u8,
    pub proto: u8,
    pub src_len: u8,
    pub dst_len: u8,
    pub template_mode: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub _pad: [u8; 2],
    pub reqid: u32,
    pub src: RawAddr,
    pub dst: RawAddr,
    pub src_port_lo: u16,
    pub src_port_hi: u16,
    pub dst_port_lo: u16,
    pub dst_port_hi: u16,
    pub template_src: RawAddr,
    pub template_dst: RawAddr,
}

impl PolicyRecord {
    /// The record of a validated policy. IPv4 prefix lengths are stored as IPv4-mapped (+96).
    pub fn new(id: u32, p: &Policy) -> PolicyRecord {
        let s = &p.selector;
        let mapped_len = |pre: Prefix| if pre.addr.is_ipv4() { pre.len + 96 } else { pre.len };
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        let (action, reqid, template) = match p.action {
            Action::Bypass => (ACTION_BYPASS, 0, None),
            Action::Discard => (ACTION_DISCARD, 0, None),
            Action::Protect { reqid, template } => (ACTION_PROTECT, reqid, Some(template)),
        };
        PolicyRecord {
            id,
            priority: p.priority,
            direction: (p.direction == Direction::Out) as u8,
            action,
            flags: bit(p.flags.nd_inbound, PFLAG_ND_INBOUND)
                | bit(p.flags.nd_outbound, PFLAG_ND_OUTBOUND)
                | bit(p.flags.boundary, PFLAG_BOUNDARY)
                | bit(p.flags.guaranteed_encryption, PFLAG_GUARANTEED_ENCRYPTION)
                | bit(p.flags.negotiated, PFLAG_NEGOTIATED),
            selector_flags: bit(s.proto.is_some(), SEL_HAS_PROTO)
                | bit(s.icmp_type.is_some(), SEL_HAS_ICMP_TYPE)
                | bit(s.icmp_code.is_some(), SEL_HAS_ICMP_CODE),
            proto: s.proto.unwrap_or(0),
            src_len: mapped_len(s.src),
            dst_len: mapped_len(s.dst),
            template_mode: template.map_or(0, |t| (t.mode == Mode::Transport) as u8),
            icmp_type: s.icmp_type.unwrap_or(0),
            icmp_code: s.icmp_code.unwrap_or(0),
            _pad: [0; 2],
            reqid,
            src: s.src.addr.into(),
            dst: s.dst.addr.into(),
            src_port_lo: s.src_ports.0,
            src_port_hi: s.src_ports.1,
            dst_port_lo: s.dst_ports.0,
            dst_port_hi: s.dst_ports.1,
            template_src: template.map_or(RawAddr::default(), |t| t.src.into()),
            template_dst: template.map_or(RawAddr::default(), |t| t.dst.into()),
        }
    }

    /// The typed policy this record holds.
    pub fn to_policy(&self) -> Policy {
        let unmapped_len = |a: RawAddr, len: u8| if a.is_ipv4() { len.saturating_sub(96) } else { len };
        let has = |b: u8| self.selector_flags & b != 0;
        let flag = |b: u8| self.flags & b != 0;
        Policy {
            priority: self.priority,
            direction: if self.direction == 1 { Direction::Out } else { Direction::In },
            selector: Selector {
                src: Prefix::new(self.src.into(), unmapped_len(self.src, self.src_len)),
                dst: Prefix::new(self.dst.into(), unmapped_len(self.dst, self.dst_len)),
                proto: has(SEL_HAS_PROTO).then_some(self.proto),
                src_ports: (self.src_port_lo, self.src_port_hi),
                dst_ports: (self.dst_port_lo, self.dst_port_hi),
                icmp_type: has(SEL_HAS_ICMP_TYPE).then_some(self.icmp_type),
                icmp_code: has(SEL_HAS_ICMP_CODE).then_some(self.icmp_code),
            },
            action: match self.action {
                ACTION_PROTECT => Action::Protect {
                    reqid: self.reqid,
                    template: SaTemplate {
                        mode: if self.template_mode == 1 { Mode::Transport } else { Mode::Tunnel },
                        src: self.template_src.into(),
                        dst: self.template_dst.into(),
                    },
                },
                ACTION_DISCARD => Action::Discard,
                _ => Action::Bypass,
            },
            flags: PolicyFlags {
                nd_inbound: flag(PFLAG_ND_INBOUND),
                nd_outbound: flag(PFLAG_ND_OUTBOUND),
                boundary: flag(PFLAG_BOUNDARY),
                guaranteed_encryption: flag(PFLAG_GUARANTEED_ENCRYPTION),
                negotiated: flag(PFLAG_NEGOTIATED),
            },
        }
    }
}
