//! Outbound ESP processing (RFC 4303 3.3): tunnel mode (any inner family in any outer family) and
//! transport mode, optionally in UDP (RFC 3948), in place in a [`PacketBuf`].

use shared::sa::{DfPolicy, Mode};

use super::ecn;
use super::sa::OutboundSa;
use crate::buf::PacketBuf;
use crate::drop::DropReason;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::udp_encap::{self, UDP_HEADER_LEN};
use crate::wire::{checksum, esp, proto};

/// What encapsulation needs to know about the packet to protect.
struct Plain {
    v6: bool,
    total_len: usize,
    tos: u8,
    dont_fragment: bool,
    /// Transport mode: the IP header with the extension headers ESP goes after (RFC 4303 3.1.1).
    header_len: usize,
    protocol: u8,
    next_header_at: usize,
}

impl Plain {
    fn parse(pkt: &[u8]) -> Result<Plain, DropReason> {
        let bad = |_| DropReason::MalformedPlain;
        match pkt.first().map(|b| b >> 4) {
            Some(4) => {
                let p = Ipv4Packet::new_checked(pkt).map_err(bad)?;
                Ok(Plain {
                    v6: false,
                    total_len: p.total_len(),
                    tos: p.tos(),
                    dont_fragment: p.dont_fragment(),
                    header_len: p.header_len(),
                    protocol: p.protocol(),
                    next_header_at: 9,
                })
            }
            Some(6) => {
                let p = Ipv6Packet::new_checked(pkt).map_err(bad)?;
                let ul = p.upper_layer().map_err(bad)?;
                Ok(Plain {
                    v6: true,
                    total_len: p.total_len(),
                    tos: p.traffic_class(),
                    dont_fragment: false,
                    header_len: ul.offset,
                    protocol: ul.protocol,
                    next_header_at: ul.next_header_at,
                })
            }
            _ => Err(DropReason::MalformedPlain),
        }
    }
}

/// Protects the IP packet in `pkt` with sequence number `seq` (the full 64-bit number, which the
/// caller reserves, e.g. from `shared::counters::SaRuntime::reserve_seq`). On success `pkt` holds
/// the ESP packet with its outer IP header; on failure the packet is to be dropped.
pub fn encapsulate<B: PacketBuf>(sa: &OutboundSa, seq: u64, pkt: &mut B) -> Result<(), DropReason> {
    encapsulate_with(sa, seq, pkt, false).map(|_| ())
}

/// [`encapsulate`], except that a packet whose transform works `in_bursts` is left unsealed (its
/// payload in clear, its IV and ICV unwritten) when nothing else in it depends on the ciphertext;
/// then the offset of its ESP header is returned, and the packet must go through
/// `Transform::seal_burst` before it leaves. (IPv6 ESP-in-UDP is sealed at once: its UDP checksum
/// covers the ciphertext.)
pub fn encapsulate_unsealed<B: PacketBuf>(sa: &OutboundSa, seq: u64, pkt: &mut B) -> Result<Option<usize>, DropReason> {
    encapsulate_with(sa, seq, pkt, true)
}

fn encapsulate_with<B: PacketBuf>(sa: &OutboundSa, seq: u64, pkt: &mut B, defer: bool) -> Result<Option<usize>, DropReason> {
    if seq == 0 || seq > sa.seq_limit() {
        return Err(DropReason::SeqExhausted);
    }
    let plain = Plain::parse(pkt.data())?;
    // Anything after the IP packet is link-layer padding.
    pkt.trim(pkt.len() - plain.total_len);
    let t = &sa.transform;
    let udp_len = if sa.encap.is_some() { UDP_HEADER_LEN } else { 0 };
    let esp_front = esp::HEADER_LEN + t.iv_len();
    let (moved, payload_len) = match sa.mode {
        Mode::Tunnel => (0, plain.total_len),
        Mode::Transport => (plain.header_len, plain.total_len - plain.header_len),
    };
    let next_header = match (sa.mode, plain.v6) {
        (Mode::Tunnel, false) => proto::IPV4,
        (Mode::Tunnel, true) => proto::IPV6,
        (Mode::Transport, _) => plain.protocol,
    };
    let outer_ip_len = sa.outer.as_ref().map_or(0, |o| o.ip_len);
    let front = outer_ip_len + udp_len + esp_front;
    let pad = esp::pad_len(payload_len, t.align());
    let back = pad + esp::TRAILER_LEN + t.icv_len();
    if pkt.headroom() < front || pkt.tailroom() < back {
        return Err(DropReason::NoRoom);
    }
    let total = plain.total_len + front + back;
    let outer_v6 = sa.outer.as_ref().map_or(plain.v6, |o| o.ip_len == ipv6::HEADER_LEN);
    // IPv4 limits the total length, IPv6 the payload length, to 16 bits.
    if total - if outer_v6 { ipv6::HEADER_LEN } else { 0 } > usize::from(u16::MAX) {
        return Err(DropReason::TooBig);
    }

    pkt.append(back);
    pkt.prepend(front);
    let data = pkt.data_mut();
    let trailer_at = front + plain.total_len;
    esp::emit_trailer(&mut data[trailer_at..trailer_at + pad + esp::TRAILER_LEN], next_header);
    // Transport mode: the IP header moves to the front, ESP goes between it and its payload.
    data.copy_within(front..front + moved, outer_ip_len);
    let ip_len = outer_ip_len + moved;
    let esp_at = ip_len + udp_len;
    esp::emit_header(&mut data[esp_at..], sa.spi, seq as u32);
    let unsealed = (defer && sa.transform.seals_in_bursts(total - esp_at) && !(outer_v6 && udp_len > 0)).then_some(esp_at);
    if unsealed.is_none() {
        sa.transform.seal(data, esp_at, seq, sa.esn).map_err(|_| DropReason::SealFailed)?;
    }

    let carried = if udp_len > 0 { proto::UDP } else { proto::ESP };
    match &sa.outer {
        Some(outer) => data[..ip_len + udp_len].copy_from_slice(&outer.bytes[..ip_len + udp_len]),
        None => data[plain.next_header_at] = carried,
    }
    if let Some(e) = sa.encap {
        udp_encap::emit_header(&mut data[ip_len..], e.src_port, e.dst_port, (total - ip_len) as u16);
    }
    let tos = match sa.mode {
        Mode::Tunnel => Some(ecn::encapsulate(plain.tos)),
        Mode::Transport => None,
    };
    if data[0] >> 4 == 4 {
        let dont_fragment = match sa.df {
            DfPolicy::Copy => plain.dont_fragment,
            DfPolicy::Set => true,
            DfPolicy::Clear => false,
        };
        match (tos, &sa.outer) {
            // Tunnel mode: the template's TOS, length, identification and flags are zero, so
            // its checksum is updated with the new values (RFC 1624) from registers; summing
            // the bytes just written would read them back through a store-forwarding stall.
            (Some(tos), Some(outer)) => {
                // Unique per SA for 2^16 packets, as RFC 6864 asks of non-atomic datagrams.
                let ident = seq as u16;
                let flags = if dont_fragment { ipv4::FLAG_DF_WORD } else { 0 };
                let template_check = u16::from_be_bytes([outer.bytes[10], outer.bytes[11]]);
                let sum = u64::from(!template_check) + u64::from(tos) + total as u64 + u64::from(ident) + u64::from(flags);
                data[1] = tos;
                data[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                data[4..6].copy_from_slice(&ident.to_be_bytes());
                data[6..8].copy_from_slice(&flags.to_be_bytes());
                data[10..12].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
            }
            // Transport mode: the packet's own header, with a new length and protocol.
            _ => {
                data[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                let mut ip = Ipv4Packet::new_checked(&mut data[..]).map_err(|_| DropReason::MalformedPlain)?;
                ip.fill_checksum();
            }
        }
    } else {
        let mut ip = Ipv6Packet::new_checked(&mut data[..]).map_err(|_| DropReason::MalformedPlain)?;
        ip.set_payload_len((total - ipv6::HEADER_LEN) as u16);
        if let Some(tos) = tos {
            ip.set_traffic_class(tos);
        }
        if udp_len > 0 {
            fill_udp6_checksum(data, ip_len);
        }
    }
    Ok(unsealed)
}

/// Path MTU through an SA (RFC 4301 8.2.1): `None` if the IP packet `plain`, protected by `sa`,
/// fits in `mtu` bytes; otherwise the largest plain packet that would, the MTU an ICMP error
/// reports to its sender. Small packets are answered without parsing them.
pub fn exceeds_mtu(sa: &OutboundSa, plain: &[u8], mtu: usize) -> Option<usize> {
    let t = &sa.transform;
    let udp_len = if sa.encap.is_some() { UDP_HEADER_LEN } else { 0 };
    let outer_ip_len = sa.outer.as_ref().map_or(0, |o| o.ip_len);
    let fixed = outer_ip_len + udp_len + esp::HEADER_LEN + t.iv_len() + t.icv_len();
    // Padding is at most align - 1 bytes (RFC 4303 2.4), whatever the packet's length.
    if plain.len() + fixed + t.align() - 1 + esp::TRAILER_LEN <= mtu {
        return None;
    }
    let plain = Plain::parse(plain).ok()?;
    // Transport mode: the packet's own header stays in front of ESP, unencrypted.
    let moved = match sa.mode {
        Mode::Tunnel => 0,
        Mode::Transport => plain.header_len,
    };
    let room = mtu.saturating_sub(fixed + moved) / t.align() * t.align();
    let largest = moved + room.saturating_sub(esp::TRAILER_LEN);
    (plain.total_len > largest).then_some(largest)
}

/// IPv6 forbids a zero UDP checksum (RFC 8200 8.1), so ESP-in-UDP over IPv6 carries a real one.
fn fill_udp6_checksum(data: &mut [u8], udp_at: usize) {
    let udp_len = data.len() - udp_at;
    let pseudo = checksum::pseudo_header(&data[8..24], &data[24..40], proto::UDP, udp_len);
    let sum = !checksum::fold(checksum::accumulate(pseudo, &data[udp_at..]));
    let sum = if sum == 0 { 0xffff } else { sum };
    data[udp_at + 6..udp_at + 8].copy_from_slice(&sum.to_be_bytes());
}
