//! The gateway pipeline without DPDK: frames in byte buffers through `Pipeline::from_port` and
//! `from_host`, with SAs and rules loaded from a configuration into a real region.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use dataplane::gateway::config::Config;
use dataplane::gateway::counters::{GatewayDrop, Reason};
use dataplane::gateway::ether::{Frame, Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use dataplane::gateway::pipeline::{Pipeline, Verdict};
use dataplane::gateway::Side;
use dataplane::wire::ipv4::{Ipv4Fields, Ipv4Packet};
use dataplane::SliceBuf;
use shared::reader::Reader;
use shared::region::Region;

use common::pipeline::{Fixture, GW_P, GW_U};

const CONFIG: &str = r#"
[ports.protected]
device = "net_null0"
exception = "net_tap0,iface=t0"
addresses = ["198.18.1.1/24"]

[ports.unprotected]
device = "net_null1"
exception = "net_tap1,iface=t1"
vlan = 7
addresses = ["198.18.0.1/30"]

[[routes]]
prefix = "198.18.2.0/24"
via = "198.18.0.2"

[[neighbours]]
address = "198.18.0.2"
mac = "02:00:00:00:00:02"

[[policies]]
direction = "out"
src = "198.18.1.0/24"
dst = "198.18.2.0/24"
proto = "tcp"
dst_ports = [22, 22]
action = "discard"
priority = 1

[[policies]]
direction = "out"
src = "198.18.1.0/24"
dst = "198.18.2.0/24"
action = "protect"
reqid = 1
tunnel = ["198.18.0.1", "198.18.0.2"]

[[policies]]
direction = "in"
src = "198.18.2.0/24"
dst = "198.18.1.0/24"
action = "protect"
reqid = 2
tunnel = ["198.18.0.2", "198.18.0.1"]

[[sas]]
direction = "out"
spi = 0x1001
mode = "tunnel"
src = "198.18.0.1"
dst = "198.18.0.2"
suite = "aes-gcm-256"
enc_key = "0101010101010101010101010101010101010101010101010101010101010101a0a1a2a3"
reqid = 1
"#;

const HOST: Mac = Mac([2, 0, 0, 0, 1, 2]);

/// An Ethernet frame with an IPv4 packet (protocol, 20-byte payload starting with the ports).
fn frame(vlan: Option<u16>, src: [u8; 4], dst: [u8; 4], protocol: u8, ttl: u8, dport: u16) -> Vec<u8> {
    long_frame(vlan, src, dst, protocol, ttl, dport, 40)
}

/// [`frame`] with an IPv4 packet of `len` bytes.
fn long_frame(vlan: Option<u16>, src: [u8; 4], dst: [u8; 4], protocol: u8, ttl: u8, dport: u16, len: u16) -> Vec<u8> {
    let mut ip = [0u8; 20];
    Ipv4Fields { tos: 0, total_len: len, ident: 1, dont_fragment: false, ttl, protocol, src: Ipv4Addr::from(src), dst: Ipv4Addr::from(dst) }.emit(&mut ip);
    let mut packet = ip.to_vec();
    packet.extend_from_slice(&[0x13, 0x88]);
    packet.extend_from_slice(&dport.to_be_bytes());
    packet.resize(usize::from(len), 0);
    Ipv4Packet::new_checked(&mut packet[..]).unwrap().fill_checksum();
    let mut out = vec![0u8; Frame::len_for(vlan)];
    Frame::emit(&mut out, GW_P, HOST, vlan, ETHERTYPE_IPV4);
    out.extend_from_slice(&packet);
    out
}

fn fixture(name: &str) -> Fixture {
    fixture_with(name, CONFIG)
}

fn fixture_with(name: &str, config: &str) -> Fixture {
    common::pipeline::fixture("gw-pipeline", name, config)
}

fn run(p: &mut Pipeline, side: Side, bytes: &[u8], from_host: bool) -> (Verdict, Vec<u8>) {
    let mut mem = vec![0u8; 2048];
    let mut buf = SliceBuf::with_packet(&mut mem, 128, bytes).unwrap();
    p.begin_round();
    let v = if from_host { p.from_host(side, &mut buf) } else { p.from_port(side, &mut buf) };
    p.end_round();
    (v, dataplane::PacketBuf::data(&buf).to_vec())
}

#[test]
fn outbound_traffic_is_classified_encrypted_routed_and_tagged() {
    let mut f = fixture("outbound");
    let p = &mut f.pipeline;
    // Protected traffic to the remote site: ESP to the peer, with its MAC and the port's VLAN.
    let (v, out) = run(p, Side::Protected, &frame(None, [198, 18, 1, 2], [198, 18, 2, 2], 17, 64, 53), false);
    assert_eq!(v, Verdict::Transmit(Side::Unprotected));
    let f_out = Frame::parse(&out).unwrap();
    assert_eq!((f_out.dst, f_out.src, f_out.vlan, f_out.ethertype), (Mac([2, 0, 0, 0, 0, 2]), GW_U, Some(7), ETHERTYPE_IPV4));
    let ip = Ipv4Packet::new_checked(&out[f_out.header_len..]).unwrap();
    assert_eq!((ip.protocol(), ip.src(), ip.dst()), (50, Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2)));
    assert_eq!(&out[f_out.header_len + 20..f_out.header_len + 28], &[0, 0, 0x10, 0x01, 0, 0, 0, 1], "SPI 0x1001, sequence number 1");

    // The discard rule comes first for TCP to port 22; no rule for another destination.
    let (v, _) = run(p, Side::Protected, &frame(None, [198, 18, 1, 2], [198, 18, 2, 2], 6, 64, 22), false);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::PolicyDiscard)));
    let (v, _) = run(p, Side::Protected, &frame(None, [198, 18, 1, 2], [198, 18, 3, 2], 17, 64, 53), false);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::NoPolicy)));
    // TTL 1 is not forwarded; its time-exceeded error (gateway_icmp.rs) waits for the host's MAC.
    let (v, _) = run(p, Side::Protected, &frame(None, [198, 18, 1, 2], [198, 18, 2, 2], 17, 1, 53), false);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::NoNeighbour)));
    assert_eq!(f.counters.dropped(GatewayDrop::TtlExpired.into()), 1);
    assert_eq!(f.counters.dropped(GatewayDrop::PolicyDiscard.into()), 1);
}

#[test]
fn local_and_cleartext_traffic_takes_the_exception_path_or_is_dropped() {
    let mut f = fixture("local");
    let p = &mut f.pipeline;
    // ICMP to the gateway's own protected address goes to the kernel, untagged, to the tap's MAC.
    let (v, out) = run(p, Side::Protected, &frame(None, [198, 18, 1, 2], [198, 18, 1, 1], 1, 64, 0), false);
    assert_eq!(v, Verdict::Exception(Side::Protected));
    assert_eq!(Frame::parse(&out).unwrap().dst, GW_P);
    // Cleartext from the peer's site, which an inbound protect rule covers (RFC 4301 5.2).
    let (v, _) = run(p, Side::Unprotected, &frame(Some(7), [198, 18, 2, 2], [198, 18, 1, 2], 17, 64, 53), false);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::CleartextForProtected)));
    // The unprotected port is tagged 7: untagged or otherwise tagged frames are dropped.
    let (v, _) = run(p, Side::Unprotected, &frame(None, [198, 18, 0, 2], [198, 18, 0, 1], 1, 64, 0), false);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::WrongVlan)));
    // ESP for an unknown SPI.
    let (v, _) = run(p, Side::Unprotected, &frame(Some(7), [198, 18, 0, 2], [198, 18, 0, 1], 50, 64, 0), false);
    assert_eq!(v, Verdict::Drop(Reason::Esp(dataplane::DropReason::UnknownSpi)));

    // ARP from the peer is learned and handed to the kernel.
    let mut arp = vec![0u8; 18 + 28];
    Frame::emit(&mut arp, Mac::BROADCAST, Mac([2, 0, 0, 0, 0, 9]), Some(7), ETHERTYPE_ARP);
    let request = dataplane::gateway::ether::Arp {
        op: 1,
        sender_mac: Mac([2, 0, 0, 0, 0, 9]),
        sender_ip: Ipv4Addr::new(198, 18, 0, 2),
        target_mac: Mac::default(),
        target_ip: Ipv4Addr::new(198, 18, 0, 1),
    };
    request.emit(&mut arp[18..]);
    let (v, out) = run(p, Side::Unprotected, &arp, false);
    assert_eq!(v, Verdict::Exception(Side::Unprotected));
    assert_eq!(Frame::parse(&out).unwrap().ethertype, ETHERTYPE_ARP);

    // What the kernel sends to the peer without a matching rule goes out as it is, tagged.
    let (v, out) = run(p, Side::Unprotected, &frame(None, [198, 18, 0, 1], [198, 18, 0, 2], 17, 64, 500), true);
    assert_eq!(v, Verdict::Transmit(Side::Unprotected));
    assert_eq!(Frame::parse(&out).unwrap().vlan, Some(7));
}

const CONFIG_V6: &str = r#"
[ports.protected]
device = "net_null0"
exception = "net_tap0,iface=t0"
addresses = ["2001:db8:1::1/64"]

[ports.unprotected]
device = "net_null1"
exception = "net_tap1,iface=t1"
addresses = ["198.18.0.1/30", "2001:db8::1/64"]

[[routes]]
prefix = "2001:db8:2::/48"
via = "2001:db8::2"

[[policies]]
direction = "out"
src = "2001:db8:1::/64"
dst = "2001:db8:2::/48"
action = "bypass"
"#;

const NS_CHECK: &str = r#"
import sys
from scapy.all import Ether, IPv6, ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6NDOptSrcLLAddr, ICMPv6NDOptDstLLAddr
frame = bytes.fromhex(sys.stdin.read().strip())
p = Ether(frame)
ns = p[ICMPv6ND_NS]
sent = ns.cksum
del p[ICMPv6ND_NS].cksum
assert Ether(bytes(p))[ICMPv6ND_NS].cksum == sent, "checksum"
assert p[IPv6].hlim == 255 and p[IPv6].dst == "ff02::1:ff00:2" and p.dst == "33:33:ff:00:00:02"
assert ns.tgt == "2001:db8::2" and p[ICMPv6NDOptSrcLLAddr].lladdr == p.src
na = Ether(src="02:00:00:00:00:09", dst=p.src) / IPv6(src="2001:db8::2", dst=p[IPv6].src, hlim=255) \
    / ICMPv6ND_NA(tgt="2001:db8::2", R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:09")
print(bytes(na).hex())
"#;

/// An IPv6 next hop nobody configured: the first packet is dropped and solicits it (RFC 4861
/// 7.2.2, checked by Scapy); the advertisement Scapy answers with is learned and the next
/// packet goes to the advertised MAC.
#[test]
fn ipv6_next_hops_are_solicited_and_learned_from_the_advertisement() {
    let mut f = fixture_with("ns", CONFIG_V6);
    let p = &mut f.pipeline;
    let mut packet = vec![0u8; 40 + 8];
    let (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr) = ("2001:db8:1::5".parse().unwrap(), "2001:db8:2::7".parse().unwrap());
    let mut header = [0u8; 40];
    dataplane::wire::ipv6::emit(&mut header, 0, 8, 17, 64, &src, &dst);
    packet[..40].copy_from_slice(&header);
    packet[40..44].copy_from_slice(&[0x13, 0x88, 0x00, 0x35]);
    packet[44..46].copy_from_slice(&8u16.to_be_bytes());
    let mut frame = vec![0u8; 14];
    Frame::emit(&mut frame, GW_P, HOST, None, ETHERTYPE_IPV6);
    frame.extend_from_slice(&packet);

    let (v, _) = run(p, Side::Protected, &frame, false);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::NoNeighbour)));
    let wanted = p.take_solicitations();
    assert_eq!(wanted, vec![(Side::Unprotected, "2001:db8::2".parse().unwrap())]);

    let mut mem = vec![0u8; 256];
    let mut ns = SliceBuf::with_packet(&mut mem, 64, &[]).unwrap();
    assert!(p.solicitation(Side::Unprotected, wanted[0].1, &mut ns));
    let advertisement = common::python(&["-c", NS_CHECK], &common::hex(dataplane::PacketBuf::data(&ns)));

    let (v, _) = run(p, Side::Unprotected, &common::unhex(advertisement.trim()), false);
    assert_eq!(v, Verdict::Exception(Side::Unprotected), "the kernel sees neighbour discovery too");
    let (v, out) = run(p, Side::Protected, &frame, false);
    assert_eq!(v, Verdict::Transmit(Side::Unprotected));
    assert_eq!(Frame::parse(&out).unwrap().dst, Mac([2, 0, 0, 0, 0, 9]));
    // An IPv4 next hop on a side without IPv4 addresses cannot be solicited.
    let mut mem = vec![0u8; 256];
    let mut none = SliceBuf::with_packet(&mut mem, 64, &[]).unwrap();
    assert!(!p.solicitation(Side::Protected, "198.18.1.9".parse().unwrap(), &mut none));
}

/// SA traffic is added to the region's counters now and then rather than every round (the
/// counters of a one-SA tunnel are shared by every lcore), but within a flush period.
#[test]
fn sa_traffic_reaches_the_region_within_a_flush_period() {
    let mut f = fixture("sa-traffic");
    let reader = Reader::attach(Arc::new(Region::open(&f.path).unwrap())).unwrap();
    let sa = reader.outbound(1).unwrap().expect("the outbound SA");
    let packet = frame(None, [198, 18, 1, 5], [198, 18, 2, 5], 17, 64, 53);
    for _ in 0..3 {
        assert_eq!(run(&mut f.pipeline, Side::Protected, &packet, false).0, Verdict::Transmit(Side::Unprotected));
    }
    std::thread::sleep(std::time::Duration::from_millis(1));
    f.pipeline.begin_round();
    f.pipeline.end_round();
    let counted = reader.runtime(sa).snapshot();
    assert_eq!(counted.packets, 3);
    assert!(counted.bytes > 3 * 40 && counted.last_use_ns > 0, "{counted:?}");
}

/// The peer's view of SA number `index` of the gateway's configuration: the other direction, its
/// selectors swapped.
fn peer_of(config: &str, index: usize) -> shared::sa::SaConfig {
    let mut sa = Config::parse(Path::new("test.toml"), config).unwrap().sas.remove(index);
    sa.direction = match sa.direction {
        shared::sa::Direction::In => shared::sa::Direction::Out,
        shared::sa::Direction::Out => shared::sa::Direction::In,
    };
    std::mem::swap(&mut sa.ts_local, &mut sa.ts_remote);
    sa
}

/// AES-CBC packets come out of the pipeline unsealed when it seals in bursts: routed and framed,
/// their payload still in clear, until `seal_burst` (one by one for a small burst, in the
/// multi-buffer lanes for a large one) encrypts them and writes their ICVs. Each then decrypts
/// under the peer's SA to the packet that went in, with its own sequence number.
#[test]
fn cbc_packets_are_sealed_in_bursts() {
    let config = CONFIG.replace(
        "suite = \"aes-gcm-256\"\nenc_key = \"0101010101010101010101010101010101010101010101010101010101010101a0a1a2a3\"",
        "suite = \"aes-cbc-256-hmac-sha256\"\nenc_key = \"0101010101010101010101010101010101010101010101010101010101010101\"\nauth_key = \"0202020202020202020202020202020202020202020202020202020202020202\"\nesn = true",
    );
    let mut f = fixture_with("burst-seal", &config);
    let p = &mut f.pipeline;
    p.crypto_in_bursts();
    let peer = dataplane::InboundSa::new(&peer_of(&config, 0), None).unwrap();

    let mut seqs = Vec::new();
    for burst in [2u16, 18] {
        let (mut frames, mut unsealed) = (Vec::new(), Vec::new());
        for port in 0..burst {
            let (v, frame_out) = run(p, Side::Protected, &long_frame(None, [198, 18, 1, 2], [198, 18, 2, 2], 17, 64, 1000 + port, 600), false);
            assert_eq!(v, Verdict::Transmit(Side::Unprotected));
            let u = p.take_unsealed().expect("left unsealed");
            assert_eq!(p.take_unsealed(), None, "taken once");
            // Ethernet with VLAN (18) + outer IPv4 (20) + ESP header (8) + IV (16): the inner
            // header, still in clear.
            assert_eq!(&frame_out[62..63], &[0x45]);
            frames.push(frame_out);
            unsealed.push(u);
        }
        let mut list: Vec<_> = frames.iter_mut().zip(&unsealed).map(|(f, u)| p.to_seal(f, u).expect("its SA")).collect();
        assert_eq!(p.seal_burst(&mut list).to_vec(), vec![true; usize::from(burst)]);
        for (port, frame_out) in (0..burst).zip(&frames) {
            let mut mem = vec![0u8; 2048];
            let mut buf = SliceBuf::with_packet(&mut mem, 128, &frame_out[18..]).unwrap();
            let Ok(dataplane::esp::decrypt::Inbound::Decapsulated(d)) = dataplane::esp::decrypt::inbound(&mut buf, &[], |_, _| Some(&peer)) else {
                panic!("packet {port} does not decrypt");
            };
            assert_eq!(d.flow.ports, Some((5000, 1000 + port)));
            seqs.push(d.seq);
        }
    }
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());

    // A frame that cannot be sealed (here: cut shorter than the ESP packet the pipeline left in
    // it) is reported unsealed, so that it is never sent, and counted as such.
    let (_, mut frame_out) = run(p, Side::Protected, &long_frame(None, [198, 18, 1, 2], [198, 18, 2, 2], 17, 64, 999, 600), false);
    let u = p.take_unsealed().expect("left unsealed");
    assert!(p.to_seal(&mut frame_out[..40], &u).is_none());
    assert_eq!(f.counters.dropped(dataplane::DropReason::SealFailed.into()), 1);
    assert_eq!(f.counters.dropped(dataplane::DropReason::TooBig.into()), 0);
}

/// With the AES-GCM multi-buffer lanes (`ipsec_mb::gcm_lanes`, on a CPU that has them), packets
/// whose ESP payload fits them (inner packets up to 62 bytes: 64 with the trailer) come out of
/// the pipeline unsealed when it seals in bursts, and longer ones sealed at once. A burst of both
/// is sealed (the short ones four at a time, the last alone) and each decrypts under the peer's SA
/// with its own sequence number; with ESN, so the AAD is 12 bytes.
#[test]
fn short_gcm_packets_are_sealed_in_bursts() {
    let config = CONFIG.replace("suite = \"aes-gcm-256\"\n", "suite = \"aes-gcm-256\"\nesn = true\n");
    let mut f = fixture_with("burst-seal-gcm", &config);
    let p = &mut f.pipeline;
    p.crypto_in_bursts();
    let peer = dataplane::InboundSa::new(&peer_of(&config, 0), None).unwrap();
    let lanes = ipsec_mb::gcm_lanes::available();
    if !lanes {
        eprintln!("short_gcm_packets_are_sealed_in_bursts: no AVX-512 VAES here: every packet must be sealed at once");
    }

    let lens = [28u16, 40, 50, 62, 63, 600, 33, 46, 61, 29, 62];
    let (mut frames, mut unsealed) = (Vec::new(), Vec::new());
    for (i, &len) in lens.iter().enumerate() {
        let (v, frame_out) = run(p, Side::Protected, &long_frame(None, [198, 18, 1, 2], [198, 18, 2, 2], 17, 64, 1000 + i as u16, len), false);
        assert_eq!(v, Verdict::Transmit(Side::Unprotected));
        let left = p.take_unsealed();
        assert_eq!(left.is_some(), lanes && len <= 62, "inner packet of {len} bytes");
        frames.push(frame_out);
        unsealed.push(left);
    }
    let mut list: Vec<_> = frames.iter_mut().zip(&unsealed).filter_map(|(f, u)| p.to_seal(f, u.as_ref()?)).collect();
    let waiting = list.len();
    assert_eq!(p.seal_burst(&mut list).to_vec(), vec![true; waiting]);
    for (i, frame_out) in frames.iter().enumerate() {
        let mut mem = vec![0u8; 2048];
        let mut buf = SliceBuf::with_packet(&mut mem, 128, &frame_out[18..]).unwrap();
        let Ok(dataplane::esp::decrypt::Inbound::Decapsulated(d)) = dataplane::esp::decrypt::inbound(&mut buf, &[], |_, _| Some(&peer)) else {
            panic!("packet {i} does not decrypt");
        };
        assert_eq!((d.flow.ports, d.seq), (Some((5000, 1000 + i as u16)), i as u64 + 1));
        assert_eq!(dataplane::PacketBuf::len(&buf), usize::from(lens[i]));
    }
}

/// Inbound, AES-CBC ESP packets (of 600-byte packets) wait at the cipher (`Verdict::Open`) until
/// `open_burst` opens their burst in the multi-buffer lanes; each then finishes like any inbound
/// packet: delivered to the protected side, a tampered one dropped as an ICV mismatch, a second
/// copy of one in the same burst dropped as a replay (the window is checked before and updated
/// after the cipher).
#[test]
fn cbc_packets_are_opened_in_bursts() {
    const CBC_KEYS: &str = "suite = \"aes-cbc-256-hmac-sha256\"\nenc_key = \"0303030303030303030303030303030303030303030303030303030303030303\"\nauth_key = \"0404040404040404040404040404040404040404040404040404040404040404\"\nesn = true\n";
    let config = format!(
        "{CONFIG}\n[[sas]]\ndirection = \"in\"\nspi = 0x2002\nmode = \"tunnel\"\nsrc = \"198.18.0.2\"\ndst = \"198.18.0.1\"\n{CBC_KEYS}reqid = 2\n\n[[neighbours]]\naddress = \"198.18.1.2\"\nmac = \"02:00:00:00:01:02\"\n"
    );
    let mut f = fixture_with("burst-open", &config);
    let p = &mut f.pipeline;
    p.crypto_in_bursts();
    let peer = dataplane::OutboundSa::new(&peer_of(&config, 1)).unwrap();

    // 18 packets from the peer with sequence numbers 1..=18; then a tampered copy of the 8th
    // (after the original, so the replay check does not decide it) and an intact copy of the 6th.
    // A frame from the peer: a `len`-byte UDP packet to `dport` under its SA with `seq`.
    let esp_frame = |seq: u16, dport: u16, len: u16| {
        let inner = long_frame(None, [198, 18, 2, 2], [198, 18, 1, 2], 17, 64, dport, len);
        let mut mem = vec![0u8; 2048];
        let mut buf = SliceBuf::with_packet(&mut mem, 128, &inner[14..]).unwrap();
        dataplane::encapsulate(&peer, u64::from(seq), &mut buf).unwrap();
        let mut l2 = vec![0u8; Frame::len_for(Some(7))];
        Frame::emit(&mut l2, GW_U, Mac([2, 0, 0, 0, 0, 2]), Some(7), ETHERTYPE_IPV4);
        [l2, dataplane::PacketBuf::data(&buf).to_vec()].concat()
    };
    let mut frames: Vec<Vec<u8>> = (1..=18u16).map(|seq| esp_frame(seq, 2000 + seq, 600)).collect();
    let mut tampered = frames[7].clone();
    tampered[80] ^= 1;
    frames.extend([tampered, frames[5].clone()]);

    let mut mems: Vec<Vec<u8>> = frames.iter().map(|_| vec![0u8; 2048]).collect();
    let mut bufs: Vec<SliceBuf<'_>> = mems.iter_mut().zip(&frames).map(|(mem, f)| SliceBuf::with_packet(mem, 128, f).unwrap()).collect();
    p.begin_round();
    let unopened: Vec<_> = bufs
        .iter_mut()
        .map(|buf| {
            assert_eq!(p.from_port(Side::Unprotected, buf), Verdict::Open);
            p.take_unopened().expect("waits to be opened")
        })
        .collect();
    let mut list: Vec<_> = bufs.iter_mut().zip(&unopened).map(|(buf, u)| p.to_open(dataplane::PacketBuf::data_mut(buf), u).expect("its SA")).collect();
    let opened = p.open_burst(&mut list);
    drop(list);
    let verdicts: Vec<Verdict> = bufs.iter_mut().zip(&unopened).zip(opened).map(|((buf, u), result)| p.resume_opened(buf, u, Some(result))).collect();
    // The SA's replay_top in the region: the burst's first number at once, the highest when
    // the I/O loop publishes it, before it sends the burst's frames.
    let reader = Reader::attach(Arc::new(Region::open(&f.path).unwrap())).unwrap();
    let inbound = reader.lookup(0x2002, &"198.18.0.1".parse::<std::net::IpAddr>().unwrap().into()).unwrap().expect("the inbound SA");
    assert_eq!(reader.runtime(inbound).replay_top(), 1);
    p.publish_replay_tops();
    assert_eq!(reader.runtime(inbound).replay_top(), 18);
    p.end_round();

    for (i, (v, buf)) in verdicts[..18].iter().zip(&bufs).enumerate() {
        assert_eq!(*v, Verdict::Transmit(Side::Protected), "packet {i}");
        let inner = &dataplane::PacketBuf::data(buf)[14..];
        assert_eq!((inner[9], &inner[22..24]), (17, &(2001 + i as u16).to_be_bytes()[..]), "packet {i}");
    }
    assert_eq!(verdicts[18], Verdict::Drop(Reason::Esp(dataplane::DropReason::IcvMismatch)));
    assert_eq!(verdicts[19], Verdict::Drop(Reason::Esp(dataplane::DropReason::Replay)));
    assert_eq!(f.counters.dropped(Reason::Esp(dataplane::DropReason::IcvMismatch)), 1);

    // A short packet waits too: the lanes pay at every size.
    let (v, _) = run(p, Side::Unprotected, &esp_frame(19, 3000, 40), false);
    assert_eq!(v, Verdict::Open);
    assert!(p.take_unopened().is_some());
}
