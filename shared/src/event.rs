//! Events from the dataplane to the control plane, and their fixed-size record in the ring.

use std::net::IpAddr;

use bytemuck::{Pod, Zeroable};

use crate::addr::RawAddr;

/// A flow as the dataplane saw it. For ICMP the ports carry type and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

/// Identifies an SA: its SPI and destination address (RFC 4301 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SaKey {
    pub spi: u32,
    pub dst: IpAddr,
}

/// The EXCHANGE_INFO flags of [MS-IKEE] 2.2.6 an ACQUIRE asks the control plane to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ExchangeInfoFlags {
    /// IKE_EXCHANGE_INFO_ND_BOUNDARY (0x00000001).
    pub nd_boundary: bool,
    /// IKE_EXCHANGE_INFO_GUARANTEE_ENCRYPTION (0x00000002).
    pub guarantee_encryption: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Outbound traffic matched a protect rule with no usable SA: negotiate one.
    Acquire { policy_id: u32, flow: FlowTuple, flags: ExchangeInfoFlags },
    /// A soft lifetime was reached: rekey.
    SoftExpire { sa: SaKey },
    /// A hard lifetime was reached: the dataplane stopped using the SA; delete it.
    HardExpire { sa: SaKey },
    /// No traffic for the SA's idle timeout.
    IdleExpire { sa: SaKey },
    /// ESP arrived for an SPI with no SA (RFC 7296 2.21.4 allows an INVALID_SPI notify).
    UnknownSpi { sa: SaKey, src: IpAddr },
    /// The outbound sequence number is close to its limit: rekey now.
    SeqNearExhaustion { sa: SaKey, seq: u64 },
}

const KIND_ACQUIRE: u8 = 1;
const KIND_SOFT: u8 = 2;
const KIND_HARD: u8 = 3;
const KIND_IDLE: u8 = 4;
const KIND_UNKNOWN_SPI: u8 = 5;
const KIND_SEQ: u8 = 6;

/// An event as stored in a ring cell.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct EventRecord {
    pub kind: u8,
    pub ms_flags: u8,
    pub proto: u8,
    pub _pad: u8,
    pub spi: u32,
    pub policy_id: u32,
    pub _pad2: u32,
    pub src: RawAddr,
    pub dst: RawAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub _pad3: u32,
    pub value: u64,
}

pub const EVENT_WORDS: usize = std::mem::size_of::<EventRecord>() / 8;
const _: () = assert!(std::mem::size_of::<EventRecord>().is_multiple_of(8));

impl Event {
    pub fn to_record(&self) -> EventRecord {
        let mut r = EventRecord::zeroed();
        let sa = |r: &mut EventRecord, kind: u8, sa: &SaKey| {
            r.kind = kind;
            r.spi = sa.spi;
            r.dst = sa.dst.into();
        };
        match self {
            Event::Acquire { policy_id, flow, flags } => {
                r.kind = KIND_ACQUIRE;
                r.policy_id = *policy_id;
                r.src = flow.src.into();
                r.dst = flow.dst.into();
                r.proto = flow.proto;
                r.src_port = flow.src_port;
                r.dst_port = flow.dst_port;
                r.ms_flags = flags.nd_boundary as u8 | (flags.guarantee_encryption as u8) << 1;
            }
            Event::SoftExpire { sa: k } => sa(&mut r, KIND_SOFT, k),
            Event::HardExpire { sa: k } => sa(&mut r, KIND_HARD, k),
            Event::IdleExpire { sa: k } => sa(&mut r, KIND_IDLE, k),
            Event::UnknownSpi { sa: k, src } => {
                sa(&mut r, KIND_UNKNOWN_SPI, k);
                r.src = (*src).into();
            }
            Event::SeqNearExhaustion { sa: k, seq } => {
                sa(&mut r, KIND_SEQ, k);
                r.value = *seq;
            }
        }
        r
    }

    /// The event a record holds, or `None` for an unknown kind (a newer producer).
    pub fn from_record(r: &EventRecord) -> Option<Event> {
        let sa = SaKey { spi: r.spi, dst: r.dst.into() };
        Some(match r.kind {
            KIND_ACQUIRE => Event::Acquire {
                policy_id: r.policy_id,
                flow: FlowTuple {
                    src: r.src.into(),
                    dst: r.dst.into(),
                    proto: r.proto,
                    src_port: r.src_port,
                    dst_port: r.dst_port,
                },
                flags: ExchangeInfoFlags {
                    nd_boundary: r.ms_flags & 1 != 0,
                    guarantee_encryption: r.ms_flags & 2 != 0,
                },
            },
            KIND_SOFT => Event::SoftExpire { sa },
            KIND_HARD => Event::HardExpire { sa },
            KIND_IDLE => Event::IdleExpire { sa },
            KIND_UNKNOWN_SPI => Event::UnknownSpi { sa, src: r.src.into() },
            KIND_SEQ => Event::SeqNearExhaustion { sa, seq: r.value },
            _ => return None,
        })
    }
}

const _: () = assert!(EVENT_WORDS == crate::ring::MSG_WORDS);
