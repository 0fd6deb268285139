//! Inbound ESP processing (RFC 4303 3.4): classify the outer packet, then, with the SA the caller
//! looked up by SPI and destination, check replay, verify and decrypt, check the trailer, strip the
//! headers and check the inner packet against the SA's selectors. Every failure is a
//! [`DropReason`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use shared::sa::Mode;

use super::ecn;
use super::natt;
use super::sa::InboundSa;
use super::flow::Flow;
use super::suite::OpenError;
use crate::buf::PacketBuf;
use crate::drop::DropReason;
use crate::wire::esp::{self, EspPacket};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::udp_encap::{EncapPayload, UdpPacket, UDP_HEADER_LEN};
use crate::wire::{proto, WireError};

/// What an inbound packet addressed to the gateway is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    Esp(EspLocation),
    /// A NAT-keepalive (RFC 3948 2.3): discard.
    Keepalive,
    /// IKE behind the non-ESP marker (RFC 3948 2.2): punt to the control plane.
    Ike,
}

/// Where the ESP packet is inside an outer IP packet, and what the SA lookup needs. The outer
/// addresses stay in the packet ([`EspLocation::dst`]): an `IpAddr` copied with this soon after
/// it was written (tag and address by separate stores, read back by wider loads) stalls on store
/// forwarding, about 10 ns a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspLocation {
    pub spi: u32,
    /// The outer header is IPv6.
    v6: bool,
    /// Carried in UDP (RFC 3948).
    pub udp_encap: bool,
    /// Outer TOS / traffic class, for the ECN decapsulation rule.
    tos: u8,
    /// Length of the outer IP header with its extension headers.
    ip_header_len: usize,
    /// Offset of the byte that names the protocol after the IP header.
    next_header_at: usize,
    esp_at: usize,
    /// End of the ESP packet (the IP or UDP length; link padding follows).
    esp_end: usize,
}

impl EspLocation {
    /// Where the ESP header starts in the outer packet.
    pub fn esp_at(&self) -> usize {
        self.esp_at
    }

    /// The outer source address, in `pkt`, the packet [`classify`] saw (its outer addresses
    /// where they were).
    pub fn src(&self, pkt: &[u8]) -> IpAddr {
        self.address(pkt, if self.v6 { 8 } else { 12 })
    }

    /// The outer destination address, in `pkt` as for [`src`](Self::src).
    pub fn dst(&self, pkt: &[u8]) -> IpAddr {
        self.address(pkt, if self.v6 { 24 } else { 16 })
    }

    fn address(&self, pkt: &[u8], at: usize) -> IpAddr {
        // `classify` checked that the header is there; unspecified only if `pkt` is another packet.
        if self.v6 {
            pkt.get(at..at + 16).and_then(|b| <[u8; 16]>::try_from(b).ok()).map_or(Ipv6Addr::UNSPECIFIED, Ipv6Addr::from).into()
        } else {
            pkt.get(at..at + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map_or(Ipv4Addr::UNSPECIFIED, Ipv4Addr::from).into()
        }
    }
}

/// The result of a successful decapsulation: `pkt` now holds the inner packet (tunnel mode) or the
/// original transport-mode packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated {
    /// The full (ESN-inferred) sequence number.
    pub seq: u64,
    pub next_header: u8,
    /// The inner packet's flow, as checked against the SA's selectors.
    pub flow: Flow,
}

fn outer_error(e: WireError) -> DropReason {
    match e {
        WireError::Truncated | WireError::Malformed => DropReason::MalformedOuter,
    }
}

/// Classifies an IP packet addressed to the gateway: ESP (raw, or in UDP to one of
/// `encap_ports`, RFC 3948), a NAT-keepalive, or IKE on the NAT-T port.
pub fn classify(pkt: &[u8], encap_ports: &[u16]) -> Result<Classified, DropReason> {
    let (v6, tos, l4_at, protocol, next_header_at, ip_end) = match pkt.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = Ipv4Packet::new_checked(pkt).map_err(outer_error)?;
            if ip.is_fragment() {
                return Err(DropReason::OuterFragment);
            }
            (false, ip.tos(), ip.header_len(), ip.protocol(), 9, ip.total_len())
        }
        Some(6) => {
            let ip = Ipv6Packet::new_checked(pkt).map_err(outer_error)?;
            let ul = ip.upper_layer().map_err(outer_error)?;
            if ul.fragment {
                return Err(DropReason::OuterFragment);
            }
            (true, ip.traffic_class(), ul.offset, ul.protocol, ul.next_header_at, ip.total_len())
        }
        _ => return Err(DropReason::NotIp),
    };
    let (esp_at, esp_end, udp_encap) = match protocol {
        proto::ESP => (l4_at, ip_end, false),
        proto::UDP => {
            let udp = UdpPacket::new_checked(&pkt[l4_at..ip_end]).map_err(outer_error)?;
            if !encap_ports.contains(&udp.dst_port()) {
                return Err(DropReason::NotEsp);
            }
            match udp.encap_payload() {
                Ok(EncapPayload::Keepalive) => return Ok(Classified::Keepalive),
                Ok(EncapPayload::Ike) => return Ok(Classified::Ike),
                Ok(EncapPayload::Esp) => {}
                Err(_) => return Err(DropReason::ShortEsp),
            }
            (l4_at + UDP_HEADER_LEN, l4_at + UDP_HEADER_LEN + udp.payload().len(), true)
        }
        _ => return Err(DropReason::NotEsp),
    };
    let esp = EspPacket::new_checked(&pkt[esp_at..esp_end]).map_err(|_| DropReason::ShortEsp)?;
    Ok(Classified::Esp(EspLocation {
        spi: esp.spi(),
        v6,
        udp_encap,
        tos,
        ip_header_len: l4_at,
        next_header_at,
        esp_at,
        esp_end,
    }))
}

/// Decapsulates the ESP packet at `loc` (from [`classify`] on the same bytes) with `sa`.
pub fn decapsulate<B: PacketBuf>(sa: &InboundSa, loc: &EspLocation, pkt: &mut B) -> Result<Decapsulated, DropReason> {
    let seq = check_sequence(sa, loc, pkt)?;
    sa.transform.open(pkt.data_mut(), loc.esp_at, seq, sa.esn).map_err(open_error)?;
    finish_opened(sa, loc, pkt, seq)
}

/// Why a packet that did not open is dropped.
pub fn open_error(e: OpenError) -> DropReason {
    match e {
        OpenError::Truncated => DropReason::TruncatedPayload,
        OpenError::IcvMismatch => DropReason::IcvMismatch,
    }
}

/// The part of [`decapsulate`] before the cipher: trims the packet to its ESP and returns its full
/// sequence number, which `sa`'s window accepts. RFC 4303 3.4.3: the window is checked before the
/// ICV, and only updated after it verified ([`finish_opened`]).
pub fn check_sequence<B: PacketBuf>(sa: &InboundSa, loc: &EspLocation, pkt: &mut B) -> Result<u64, DropReason> {
    if !pkt.trim(pkt.len().saturating_sub(loc.esp_end)) || pkt.len() != loc.esp_end {
        return Err(DropReason::MalformedOuter);
    }
    let seq_lo = EspPacket::new_checked(&pkt.data()[loc.esp_at..]).map_err(|_| DropReason::ShortEsp)?.seq();
    let seq = if sa.esn { sa.replay.infer_esn(seq_lo).ok_or(DropReason::Replay)? } else { u64::from(seq_lo) };
    sa.replay.check(seq).map_err(|_| DropReason::Replay)?;
    Ok(seq)
}

/// The part of [`decapsulate`] after the packet opened under `sa` with sequence number `seq`: the
/// window update, the trailer, the inner packet and the selector check.
pub fn finish_opened<B: PacketBuf>(sa: &InboundSa, loc: &EspLocation, pkt: &mut B, seq: u64) -> Result<Decapsulated, DropReason> {
    sa.replay.commit(seq).map_err(|_| DropReason::Replay)?;
    let data = pkt.data();
    let payload_at = loc.esp_at + esp::HEADER_LEN + sa.transform.iv_len();
    let icv_at = data.len() - sa.transform.icv_len();
    let (pad, next_header) = esp::parse_trailer(&data[payload_at..icv_at]).map_err(|_| DropReason::BadPadding)?;
    if next_header == proto::NO_NEXT_HEADER {
        return Err(DropReason::DummyPacket);
    }
    pkt.trim(sa.transform.icv_len() + pad + esp::TRAILER_LEN);
    match sa.mode {
        Mode::Tunnel => strip_tunnel(loc, pkt, payload_at, next_header)?,
        Mode::Transport => strip_transport(sa, loc, pkt, payload_at, next_header)?,
    }
    let flow = Flow::of(pkt.data()).map_err(|_| DropReason::MalformedInner)?;
    if !sa.selectors.allow(&flow) {
        return Err(DropReason::SelectorMismatch);
    }
    Ok(Decapsulated { seq, next_header, flow })
}

/// Tunnel mode: the payload is an IP packet of the family the next header names.
fn strip_tunnel<B: PacketBuf>(loc: &EspLocation, pkt: &mut B, payload_at: usize, next_header: u8) -> Result<(), DropReason> {
    pkt.adj(payload_at);
    let version = pkt.data().first().map(|b| b >> 4);
    let inner_len = match (next_header, version) {
        (proto::IPV4, Some(4)) => {
            let ip = Ipv4Packet::new_checked(pkt.data()).map_err(|_| DropReason::MalformedInner)?;
            if !ip.checksum_ok() {
                return Err(DropReason::MalformedInner);
            }
            ip.total_len()
        }
        (proto::IPV6, Some(6)) => Ipv6Packet::new_checked(pkt.data()).map_err(|_| DropReason::MalformedInner)?.total_len(),
        _ => return Err(DropReason::BadNextHeader),
    };
    // Whatever follows the inner packet is traffic flow confidentiality padding (RFC 4303 2.7).
    pkt.trim(pkt.len() - inner_len);
    let data = pkt.data_mut();
    if next_header == proto::IPV4 {
        let mut ip = Ipv4Packet::new_checked(data).map_err(|_| DropReason::MalformedInner)?;
        let tos = ecn::decapsulate(loc.tos, ip.tos()).ok_or(DropReason::EcnCeOnNotEct)?;
        if tos != ip.tos() {
            ip.set_tos(tos);
            ip.fill_checksum();
        }
    } else {
        let mut ip = Ipv6Packet::new_checked(data).map_err(|_| DropReason::MalformedInner)?;
        let tc = ecn::decapsulate(loc.tos, ip.traffic_class()).ok_or(DropReason::EcnCeOnNotEct)?;
        ip.set_traffic_class(tc);
    }
    Ok(())
}

/// Transport mode: the IP header moves back over the ESP (and UDP) header and names the payload.
fn strip_transport<B: PacketBuf>(
    sa: &InboundSa,
    loc: &EspLocation,
    pkt: &mut B,
    payload_at: usize,
    next_header: u8,
) -> Result<(), DropReason> {
    let header_len = loc.ip_header_len;
    let shift = payload_at - header_len;
    let data = pkt.data_mut();
    data.copy_within(..header_len, shift);
    pkt.adj(shift);
    let new_len = pkt.len();
    let data = pkt.data_mut();
    data[loc.next_header_at] = next_header;
    // The lengths shrink by the ESP overhead; write them before a checked view reads them.
    if data[0] >> 4 == 4 {
        data[2..4].copy_from_slice(&(new_len as u16).to_be_bytes());
        Ipv4Packet::new_checked(&mut data[..]).map_err(|_| DropReason::MalformedOuter)?.fill_checksum();
    } else {
        data[4..6].copy_from_slice(&((new_len - ipv6::HEADER_LEN) as u16).to_be_bytes());
    }
    if let (true, Some(oa)) = (loc.udp_encap, &sa.nat_oa) {
        // The outer header, moved to the front, still has its addresses where they were.
        let (src, dst) = (loc.src(data), loc.dst(data));
        natt::fix_checksum(&mut data[header_len..], next_header, oa, src, dst);
    }
    Ok(())
}

/// What [`inbound`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    Decapsulated(Decapsulated),
    Keepalive,
    Ike,
}

/// Classification, SA lookup by (SPI, destination) through `lookup`, and decapsulation in one call.
pub fn inbound<'a, B: PacketBuf>(
    pkt: &mut B,
    encap_ports: &[u16],
    lookup: impl FnOnce(u32, IpAddr) -> Option<&'a InboundSa>,
) -> Result<Inbound, DropReason> {
    match classify(pkt.data(), encap_ports)? {
        Classified::Keepalive => Ok(Inbound::Keepalive),
        Classified::Ike => Ok(Inbound::Ike),
        Classified::Esp(loc) => {
            let sa = lookup(loc.spi, loc.dst(pkt.data())).ok_or(DropReason::UnknownSpi)?;
            decapsulate(sa, &loc, pkt).map(Inbound::Decapsulated)
        }
    }
}
