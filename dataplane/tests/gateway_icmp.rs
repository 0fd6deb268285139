//! ICMP errors the gateway pipeline sends (without DPDK): time exceeded, fragmentation needed and
//! packet too big, with the path MTU through the SA. The offending packets are built by Scapy and
//! the errors parsed and checked by Scapy (type, code, MTU, checksums, quoted bytes).

mod common;

use std::sync::atomic::Ordering;

use dataplane::esp::decrypt::inbound;
use dataplane::gateway::config::Config;
use dataplane::gateway::counters::{GatewayDrop, LcoreCounters, Reason};
use dataplane::gateway::ether::{Frame, Mac, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use dataplane::gateway::icmp_error::{reportable, IcmpError};
use dataplane::gateway::pipeline::{Pipeline, Verdict};
use dataplane::gateway::Side;
use dataplane::{encapsulate, Inbound, InboundSa, OutboundSa, PacketBuf, SliceBuf};
use shared::sa::Direction;

use common::pipeline::{Fixture, GW_P, GW_U};

const HOST: Mac = Mac([2, 0, 0, 0, 1, 2]);
const PEER: Mac = Mac([2, 0, 0, 0, 0, 2]);

/// Site A (198.18.1.0/24) behind this gateway, site B (198.18.2.0/24) through the tunnel, and
/// 198.18.3.0/24 reached in cleartext (bypass) over the unprotected side.
const CONFIG_V4: &str = r#"
[gateway]
icmp_errors_per_sec = 1000

[ports.protected]
device = "net_null0"
exception = "net_tap0,iface=t0"
addresses = ["198.18.1.1/24"]

[ports.unprotected]
device = "net_null1"
exception = "net_tap1,iface=t1"
addresses = ["198.18.0.1/30"]

[[routes]]
prefix = "198.18.2.0/24"
via = "198.18.0.2"

[[routes]]
prefix = "198.18.3.0/24"
via = "198.18.0.2"

[[neighbours]]
address = "198.18.0.2"
mac = "02:00:00:00:00:02"

[[neighbours]]
address = "198.18.1.2"
mac = "02:00:00:00:01:02"

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

[[policies]]
direction = "out"
src = "198.18.0.0/16"
dst = "198.18.3.0/24"
action = "bypass"

[[policies]]
direction = "in"
src = "198.18.3.0/24"
dst = "198.18.1.0/24"
action = "bypass"

[[sas]]
direction = "out"
spi = 0x1001
mode = "tunnel"
src = "198.18.0.1"
dst = "198.18.0.2"
suite = "aes-gcm-256"
enc_key = "0101010101010101010101010101010101010101010101010101010101010101a0a1a2a3"
reqid = 1
local = "198.18.1.0/24"
remote = "198.18.2.0/24"

[[sas]]
direction = "in"
spi = 0x2002
mode = "tunnel"
src = "198.18.0.2"
dst = "198.18.0.1"
suite = "aes-gcm-256"
enc_key = "0202020202020202020202020202020202020202020202020202020202020202b0b1b2b3"
reqid = 2
local = "198.18.1.0/24"
remote = "198.18.2.0/24"
"#;

/// The same two sites over IPv6.
const CONFIG_V6: &str = r#"
[gateway]
icmp_errors_per_sec = 1000

[ports.protected]
device = "net_null0"
exception = "net_tap0,iface=t0"
addresses = ["2001:db8:1::1/64"]

[ports.unprotected]
device = "net_null1"
exception = "net_tap1,iface=t1"
addresses = ["2001:db8::1/64"]

[[routes]]
prefix = "2001:db8:2::/48"
via = "2001:db8::2"

[[neighbours]]
address = "2001:db8::2"
mac = "02:00:00:00:00:02"

[[neighbours]]
address = "2001:db8:1::2"
mac = "02:00:00:00:01:02"

[[policies]]
direction = "out"
src = "2001:db8:1::/64"
dst = "2001:db8:2::/48"
action = "protect"
reqid = 1
tunnel = ["2001:db8::1", "2001:db8::2"]

[[sas]]
direction = "out"
spi = 0x1001
mode = "tunnel"
src = "2001:db8::1"
dst = "2001:db8::2"
suite = "aes-gcm-256"
enc_key = "0101010101010101010101010101010101010101010101010101010101010101a0a1a2a3"
reqid = 1
local = "2001:db8:1::/64"
remote = "2001:db8:2::/48"
"#;

fn fixture(name: &str, config: &str) -> Fixture {
    common::pipeline::fixture("gw-icmp", name, config)
}

/// `ip` in an Ethernet frame from `src` to the port of `side`.
fn framed(ip: &[u8], src: Mac, side: Side) -> Vec<u8> {
    let ethertype = if ip[0] >> 4 == 6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 };
    let mut out = vec![0u8; 14];
    Frame::emit(&mut out, if side == Side::Protected { GW_P } else { GW_U }, src, None, ethertype);
    out.extend_from_slice(ip);
    out
}

/// Runs one frame through the pipeline (in a buffer with mbuf-like headroom); the verdict and the
/// IP packet that leaves (without its Ethernet header), with the frame's destination MAC.
fn run(p: &mut Pipeline, side: Side, ip: &[u8]) -> (Verdict, Vec<u8>, Mac) {
    let src = if side == Side::Protected { HOST } else { PEER };
    let frame = framed(ip, src, side);
    let mut mem = vec![0u8; 4096];
    let mut buf = SliceBuf::with_packet(&mut mem, 128, &frame).unwrap();
    p.begin_round();
    let v = p.from_port(side, &mut buf);
    p.end_round();
    let out = buf.data().to_vec();
    match Frame::parse(&out) {
        Some(f) if !matches!(v, Verdict::Drop(_)) => (v, out[f.header_len..].to_vec(), f.dst),
        _ => (v, out, Mac::default()),
    }
}

/// Scapy builds each packet expression (one per element) and returns their bytes.
fn scapy(exprs: &[&str]) -> Vec<Vec<u8>> {
    const BUILD: &str = r#"
import sys
from scapy.all import *
for line in sys.stdin.read().splitlines():
    print(bytes(eval(line)).hex())
"#;
    let out = common::python(&["-c", BUILD], &(exprs.join("\n") + "\n"));
    out.lines().map(common::unhex).collect()
}

/// What an error must be.
struct Expected {
    /// The error (an IP packet) and the packet it is about.
    error: Vec<u8>,
    original: Vec<u8>,
    src: &'static str,
    dst: &'static str,
    icmp_type: u8,
    code: u8,
    mtu: Option<u32>,
    /// The quote shows the TTL or hop limit one lower than `original`'s.
    forwarded: bool,
}

impl Expected {
    fn time_exceeded(error: Vec<u8>, original: &[u8], src: &'static str, dst: &'static str) -> Expected {
        let icmp_type = if original[0] >> 4 == 4 { 11 } else { 3 };
        Expected { error, original: original.to_vec(), src, dst, icmp_type, code: 0, mtu: None, forwarded: false }
    }

    /// About a packet whose TTL the gateway had decremented: that is what it quotes.
    fn too_big(error: Vec<u8>, original: &[u8], src: &'static str, dst: &'static str, mtu: usize) -> Expected {
        let (icmp_type, code) = if original[0] >> 4 == 4 { (3, 4) } else { (2, 0) };
        Expected { error, original: original.to_vec(), src, dst, icmp_type, code, mtu: Some(mtu as u32), forwarded: true }
    }
}

/// Scapy parses each error and checks it: addresses, type, code, MTU, the IP and ICMP checksums
/// (ICMPv6 over the pseudo-header), the length limit (576 / 1280) and the quoted bytes.
fn scapy_checks(cases: &[Expected]) {
    const CHECK: &str = r#"
import sys, json
from scapy.all import IP, ICMP, IPv6, ICMPv6PacketTooBig, ICMPv6TimeExceeded, IPerror, IPerror6
from scapy.utils import checksum
for n, line in enumerate(sys.stdin.read().splitlines()):
    c = json.loads(line)
    error, original = bytes.fromhex(c["error"]), bytes.fromhex(c["original"])
    if c["forwarded"] and original[0] >> 4 == 4:
        o = IP(original)
        o.ttl -= 1
        del o.chksum
        original = bytes(o)
    elif c["forwarded"]:
        original = original[:7] + bytes([original[7] - 1]) + original[8:]
    if error[0] >> 4 == 4:
        p = IP(error)
        assert p.src == c["src"] and p.dst == c["dst"] and p.proto == 1, (n, p.src, p.dst)
        assert p.len == len(error) <= 576 and p.ttl > 1, (n, p.len)
        assert checksum(error[:p.ihl * 4]) == 0, (n, "IP checksum")
        icmp = error[p.ihl * 4:]
        assert checksum(icmp) == 0, (n, "ICMP checksum")
        assert p[ICMP].type == c["type"] and p[ICMP].code == c["code"], (n, p[ICMP].type, p[ICMP].code)
        if c["mtu"] is not None:
            assert p[ICMP].nexthopmtu == c["mtu"], (n, p[ICMP].nexthopmtu)
        assert p[IPerror].src == IP(original).src, n
        quoted, limit = icmp[8:], 576 - 28
    else:
        p = IPv6(error)
        assert p.src == c["src"] and p.dst == c["dst"] and p.nh == 58, (n, p.src, p.dst)
        assert len(error) == 40 + p.plen <= 1280 and p.hlim > 1, (n, len(error))
        icmp = error[40:]
        pseudo = error[8:40] + len(icmp).to_bytes(4, "big") + bytes([0, 0, 0, 58])
        assert checksum(pseudo + icmp) == 0, (n, "ICMPv6 checksum")
        assert icmp[0] == c["type"] and icmp[1] == c["code"], (n, icmp[0], icmp[1])
        if c["mtu"] is not None:
            assert p[ICMPv6PacketTooBig].mtu == c["mtu"], (n, p[ICMPv6PacketTooBig].mtu)
        else:
            assert ICMPv6TimeExceeded in p, n
        assert p[IPerror6].src == IPv6(original).src, n
        quoted, limit = icmp[8:], 1280 - 48
    # As much of the packet as fits (RFC 1812 4.3.2.3, RFC 4443 2.4(c)).
    assert quoted == original[:limit], (n, len(quoted), len(original))
print("ok")
"#;
    let input: String = cases
        .iter()
        .map(|c| {
            let mtu = c.mtu.map_or("null".to_owned(), |m| m.to_string());
            format!(
                "{{\"error\":\"{}\",\"original\":\"{}\",\"src\":\"{}\",\"dst\":\"{}\",\"type\":{},\"code\":{},\"mtu\":{mtu},\"forwarded\":{}}}\n",
                common::hex(&c.error),
                common::hex(&c.original),
                c.src,
                c.dst,
                c.icmp_type,
                c.code,
                c.forwarded
            )
        })
        .collect();
    assert_eq!(common::python(&["-c", CHECK], &input).trim(), "ok");
}

fn icmp_errors(c: &LcoreCounters) -> u64 {
    c.icmp_errors.load(Ordering::Relaxed)
}

/// A protected host's packet with TTL 1 (to the tunnel), and a cleartext packet from the
/// unprotected side with TTL 1 (bypass): time exceeded from the gateway's address on the side
/// each came from, back out of that side; the packet itself is counted as dropped.
#[test]
fn expired_ttl_gets_time_exceeded_from_the_side_it_came_from() {
    let mut f = fixture("ttl", CONFIG_V4);
    let packets = scapy(&[
        r#"IP(src="198.18.1.2", dst="198.18.2.2", ttl=1, id=7)/UDP(sport=5000, dport=53)/Raw(b"q" * 60)"#,
        r#"IP(src="198.18.3.5", dst="198.18.1.2", ttl=1)/TCP(sport=80, dport=40000, flags="SA")"#,
        r#"IP(src="198.18.1.2", dst="198.18.2.2", ttl=2)/UDP(sport=5000, dport=53)/Raw(b"q" * 60)"#,
    ]);
    let (v, err_a, mac) = run(&mut f.pipeline, Side::Protected, &packets[0]);
    assert_eq!((v, mac), (Verdict::Transmit(Side::Protected), HOST));
    let (v, err_b, mac) = run(&mut f.pipeline, Side::Unprotected, &packets[1]);
    assert_eq!((v, mac), (Verdict::Transmit(Side::Unprotected), PEER));
    // TTL 2 is forwarded (with TTL 1) into the tunnel.
    let (v, _, _) = run(&mut f.pipeline, Side::Protected, &packets[2]);
    assert_eq!(v, Verdict::Transmit(Side::Unprotected));
    assert_eq!(f.counters.dropped(GatewayDrop::TtlExpired.into()), 2);
    assert_eq!(icmp_errors(&f.counters), 2);
    scapy_checks(&[
        Expected::time_exceeded(err_a, &packets[0], "198.18.1.1", "198.18.1.2"),
        Expected::time_exceeded(err_b, &packets[1], "198.18.0.1", "198.18.3.5"),
    ]);
}

#[test]
fn expired_hop_limit_gets_icmpv6_time_exceeded() {
    let mut f = fixture("hlim", CONFIG_V6);
    let packets = scapy(&[r#"IPv6(src="2001:db8:1::2", dst="2001:db8:2::7", hlim=1)/UDP(sport=5000, dport=53)/Raw(b"q" * 1400)"#]);
    let (v, error, mac) = run(&mut f.pipeline, Side::Protected, &packets[0]);
    assert_eq!((v, mac), (Verdict::Transmit(Side::Protected), HOST));
    scapy_checks(&[Expected::time_exceeded(error, &packets[0], "2001:db8:1::1", "2001:db8:1::2")]);
}

/// The out SA of CONFIG_V4 with another suite, mode or encapsulation.
fn with_out_sa(suite: &str, mode: &str, extra: &str) -> String {
    let sa = "suite = \"aes-gcm-256\"\nenc_key = \"0101010101010101010101010101010101010101010101010101010101010101a0a1a2a3\"\nreqid = 1";
    let key = if suite.starts_with("aes-cbc") {
        "enc_key = \"0101010101010101010101010101010101010101010101010101010101010101\"\nauth_key = \"0303030303030303030303030303030303030303030303030303030303030303\""
    } else {
        "enc_key = \"0101010101010101010101010101010101010101010101010101010101010101a0a1a2a3\""
    };
    let text = CONFIG_V4.replacen(sa, &format!("suite = \"{suite}\"\n{key}\nreqid = 1\n{extra}"), 1);
    text.replacen("spi = 0x1001\nmode = \"tunnel\"", &format!("spi = 0x1001\nmode = \"{mode}\""), 1)
}

/// A DF packet that would exceed the unprotected port's MTU (1500) once under ESP gets
/// "fragmentation needed" with the largest size that fits through the SA (RFC 1191, RFC 4301
/// 8.2.1); a packet of exactly that size goes through and its ESP packet fills the MTU; one
/// byte more gets the error again. For GCM in tunnel mode, CBC+HMAC in UDP, GCM in transport mode.
#[test]
fn fragmentation_needed_reports_the_largest_packet_that_fits_through_the_sa() {
    // Worked by hand: 1500 - outer IP - UDP - ESP header - IV - ICV, down to the cipher's
    // alignment, less the 2-byte trailer (plus the packet's own header in transport mode).
    let cases = [
        ("aes-gcm-256", "tunnel", "", 1500 - 20 - 8 - 8 - 16 - 2),
        ("aes-cbc-256-hmac-sha256", "tunnel", "udp_encap = [4500, 4500]", (1500 - 20 - 8 - 8 - 16 - 16) / 16 * 16 - 2),
        ("aes-gcm-256", "transport", "", 20 + (1500 - 20 - 8 - 8 - 16) / 4 * 4 - 2),
    ];
    let sized = |len: usize| {
        format!(r#"IP(src="198.18.1.2", dst="198.18.2.2", flags="DF", id=9)/UDP(sport=5000, dport=53)/Raw(b"m" * {})"#, len - 28)
    };
    let mut checks = Vec::new();
    for (i, (suite, mode, extra, fits)) in cases.into_iter().enumerate() {
        let mut f = fixture(&format!("pmtu{i}"), &with_out_sa(suite, mode, extra));
        let packets = scapy(&[&sized(1500), &sized(fits), &sized(fits + 1)]);
        let (v, error, _) = run(&mut f.pipeline, Side::Protected, &packets[0]);
        assert_eq!(v, Verdict::Transmit(Side::Protected), "{suite} {mode}");
        let (v, esp, _) = run(&mut f.pipeline, Side::Protected, &packets[1]);
        assert_eq!(v, Verdict::Transmit(Side::Unprotected), "{suite} {mode}: {fits} bytes fit");
        assert!(esp.len() <= 1500 && esp.len() > 1500 - 16, "{suite} {mode}: {} bytes under ESP", esp.len());
        let (v, error2, _) = run(&mut f.pipeline, Side::Protected, &packets[2]);
        assert_eq!(v, Verdict::Transmit(Side::Protected), "{suite} {mode}: {} bytes do not fit", fits + 1);
        assert_eq!(f.counters.dropped(GatewayDrop::MtuExceeded.into()), 2);
        assert_eq!(f.counters.encrypted.load(Ordering::Relaxed), 1);
        checks.push(Expected::too_big(error, &packets[0], "198.18.1.1", "198.18.1.2", fits));
        checks.push(Expected::too_big(error2, &packets[2], "198.18.1.1", "198.18.1.2", fits));
    }
    scapy_checks(&checks);
}

/// Runs an IPv4 packet from host A through the pipeline into a tunnel too small for it: the
/// pipeline asks for fragments, and each step of [`Pipeline::next_fragment`] seals one. Returns
/// the ESP packets (IP, without Ethernet) that leave on the unprotected port.
fn fragmented(p: &mut Pipeline, ip: &[u8]) -> Vec<Vec<u8>> {
    let frame = framed(ip, HOST, Side::Protected);
    let mut mem = vec![0u8; 8192];
    let mut buf = SliceBuf::with_packet(&mut mem, 128, &frame).unwrap();
    p.begin_round();
    let verdict = p.from_port(Side::Protected, &mut buf);
    assert_eq!(verdict, Verdict::Fragment);
    let mut current = buf.data().to_vec();
    let mut sealed = Vec::new();
    loop {
        let mut mem = vec![0u8; 8192];
        let mut piece = SliceBuf::with_packet(&mut mem, 128, &current).unwrap();
        let mut rest_mem = vec![0u8; 8192];
        let mut rest = SliceBuf::with_packet(&mut rest_mem, 128, &[]).unwrap();
        let (verdict, more) = p.next_fragment(&mut piece, &mut rest);
        assert_eq!(verdict, Verdict::Transmit(Side::Unprotected));
        let header = Frame::parse(piece.data()).unwrap();
        assert_eq!(header.dst, PEER);
        sealed.push(piece.data()[header.header_len..].to_vec());
        if !more {
            break;
        }
        current = rest.data().to_vec();
    }
    p.end_round();
    sealed
}

/// Without DF, a packet too large for the tunnel is cut into fragments (RFC 791) before it is
/// encrypted (RFC 4301 8.1): each fragment under ESP within the port's MTU, with a sequence
/// number of its own. The peer decrypts them, and a reassembly in Python gives back the packet
/// (its TTL one lower), for GCM and for CBC+HMAC in UDP. In transport mode (the gateway's own
/// traffic) such a packet is still dropped and counted, and never sent in cleartext.
#[test]
fn an_oversized_packet_without_df_is_fragmented_before_encryption() {
    const REASSEMBLE: &str = r#"
import sys
from scapy.all import IP
from scapy.utils import checksum
original, *fragments = [IP(bytes.fromhex(l)) for l in sys.stdin.read().split()]
data = b""
for n, f in enumerate(sorted(fragments, key=lambda f: f.frag)):
    raw = bytes(f)
    assert checksum(raw[:f.ihl * 4]) == 0, (n, "IP checksum")
    assert (f.id, f.src, f.dst, f.proto, f.ttl) == (original.id, original.src, original.dst, original.proto, original.ttl - 1), n
    assert f.frag * 8 == len(data), (n, f.frag, len(data))
    assert bool(f.flags.MF) == (n + 1 < len(fragments)), (n, f.flags)
    data += raw[f.ihl * 4:f.len]
assert data == bytes(original.payload), (len(data), len(bytes(original.payload)))
print(len(fragments))
"#;
    let packet = scapy(&[r#"IP(src="198.18.1.2", dst="198.18.2.2", id=4242)/UDP(sport=5000, dport=53)/Raw(b"m" * 2972)"#]).remove(0);
    for (i, (suite, extra)) in [("aes-gcm-256", ""), ("aes-cbc-256-hmac-sha256", "udp_encap = [4500, 4500]")].into_iter().enumerate() {
        let mut f = fixture(&format!("frag{i}"), &with_out_sa(suite, "tunnel", extra));
        let sealed = fragmented(&mut f.pipeline, &packet);
        assert_eq!(sealed.len(), 3, "{suite}");
        let esp_at = 20 + if extra.is_empty() { 0 } else { 8 };
        let seqs: Vec<u32> = sealed.iter().map(|e| u32::from_be_bytes(e[esp_at + 4..esp_at + 8].try_into().unwrap())).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{suite}: sequence numbers {seqs:?}");
        assert!(sealed.iter().all(|e| e.len() <= 1500), "{suite}: {:?}", sealed.iter().map(Vec::len).collect::<Vec<_>>());
        assert_eq!(f.counters.fragments.load(Ordering::Relaxed), 3);
        assert_eq!(f.counters.encrypted.load(Ordering::Relaxed), 3);
        let mut hex = vec![common::hex(&packet)];
        hex.extend(sealed.iter().map(|esp| common::hex(&peer_reads(&f.config, esp))));
        let out = common::python(&["-c", REASSEMBLE], &(hex.join("\n") + "\n"));
        assert_eq!(out.trim(), "3", "{suite}");
    }
    let mut f = fixture("nodf", &with_out_sa("aes-gcm-256", "transport", ""));
    let (v, _, _) = run(&mut f.pipeline, Side::Protected, &packet);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::MtuExceeded)));
    assert_eq!((icmp_errors(&f.counters), f.counters.encrypted.load(Ordering::Relaxed)), (0, 0));
}

/// Cleartext forwarded onto a port with a smaller MTU (the protected port at 1280 here): the
/// error reports that port's MTU and goes back where the packet came from.
#[test]
fn a_bypassed_packet_larger_than_the_egress_port_gets_the_port_mtu() {
    let config = CONFIG_V4.replacen("addresses = [\"198.18.1.1/24\"]", "addresses = [\"198.18.1.1/24\"]\nmtu = 1280", 1);
    let mut f = fixture("egress", &config);
    let packets = scapy(&[r#"IP(src="198.18.3.5", dst="198.18.1.2", flags="DF")/TCP(sport=80, dport=40000, flags="A")/Raw(b"d" * 1360)"#]);
    let (v, error, mac) = run(&mut f.pipeline, Side::Unprotected, &packets[0]);
    assert_eq!((v, mac), (Verdict::Transmit(Side::Unprotected), PEER));
    scapy_checks(&[Expected::too_big(error, &packets[0], "198.18.0.1", "198.18.3.5", 1280)]);
}

/// IPv6 is never fragmented on the way: packet too big with the size that fits through the SA
/// (RFC 4443 3.2), quoting up to the 1280-byte minimum MTU. Below 1280 through the SA it cannot
/// be signalled (RFC 8200 5): dropped and counted.
#[test]
fn ipv6_gets_packet_too_big_down_to_the_minimum_mtu() {
    let mut f = fixture("ptb", CONFIG_V6);
    let packets = scapy(&[
        r#"IPv6(src="2001:db8:1::2", dst="2001:db8:2::7")/UDP(sport=5000, dport=53)/Raw(b"m" * 1452)"#,
        r#"IPv6(src="2001:db8:1::2", dst="2001:db8:2::7")/UDP(sport=5000, dport=53)/Raw(b"m" * 1378)"#,
    ]);
    let (v, error, _) = run(&mut f.pipeline, Side::Protected, &packets[0]);
    assert_eq!(v, Verdict::Transmit(Side::Protected));
    let fits = 1500 - 40 - 8 - 8 - 16 - 2;
    let (v, esp, _) = run(&mut f.pipeline, Side::Protected, &packets[1]);
    assert_eq!((v, esp.len(), packets[1].len()), (Verdict::Transmit(Side::Unprotected), 1500, fits));
    scapy_checks(&[Expected::too_big(error, &packets[0], "2001:db8:1::1", "2001:db8:1::2", fits)]);

    let small = CONFIG_V6.replacen("addresses = [\"2001:db8::1/64\"]", "addresses = [\"2001:db8::1/64\"]\nmtu = 1300", 1);
    let mut f = fixture("ptb-min", &small);
    let (v, _, _) = run(&mut f.pipeline, Side::Protected, &packets[1]);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::MtuExceeded)));
    assert_eq!(icmp_errors(&f.counters), 0);
}

/// ESP for the inbound SA of CONFIG_V4 carrying `inner`, as the peer would send it.
fn from_peer(config: &Config, inner: &[u8]) -> Vec<u8> {
    let mut sa = config.sas.iter().find(|s| s.direction == Direction::In).unwrap().clone();
    sa.direction = Direction::Out;
    let peer = OutboundSa::new(&sa).unwrap();
    let (r, esp) = common::with_buf(inner, |b| encapsulate(&peer, 1, b));
    r.unwrap();
    esp
}

/// What the peer reads out of ESP the gateway sent with its outbound SA.
fn peer_reads(config: &Config, esp: &[u8]) -> Vec<u8> {
    let mut sa = config.sas.iter().find(|s| s.direction == Direction::Out).unwrap().clone();
    sa.direction = Direction::In;
    std::mem::swap(&mut sa.ts_local, &mut sa.ts_remote);
    let peer = InboundSa::new(&sa, None).unwrap();
    let (r, inner) = common::with_buf(esp, |b| inbound(b, &[4500], |_, _| Some(&peer)));
    assert!(matches!(r, Ok(Inbound::Decapsulated(_))), "{r:?}");
    inner
}

/// A packet that came out of the tunnel and expires here: the error goes back into the tunnel,
/// from the gateway's protected-side address, under ESP. If no protect rule covers the error it
/// is not sent at all (the quoted packet belongs to a secured flow).
#[test]
fn errors_about_decrypted_packets_go_back_only_under_esp() {
    let mut f = fixture("decrypted", CONFIG_V4);
    let inner = scapy(&[r#"IP(src="198.18.2.2", dst="198.18.1.2", ttl=1)/UDP(sport=53, dport=5000)/Raw(b"r" * 40)"#]).remove(0);
    let esp = from_peer(&f.config, &inner);
    let (v, out, mac) = run(&mut f.pipeline, Side::Unprotected, &esp);
    assert_eq!((v, mac), (Verdict::Transmit(Side::Unprotected), PEER));
    assert_eq!(out[9], 50, "ESP");
    let error = peer_reads(&f.config, &out);
    scapy_checks(&[Expected::time_exceeded(error, &inner, "198.18.1.1", "198.18.2.2")]);

    // The gateway's protected address outside the outbound protect rule: no error.
    let uncovered = CONFIG_V4
        .replacen("addresses = [\"198.18.1.1/24\"]", "addresses = [\"198.18.1.200/24\"]", 1)
        .replacen("src = \"198.18.1.0/24\"\ndst = \"198.18.2.0/24\"", "src = \"198.18.1.0/25\"\ndst = \"198.18.2.0/24\"", 1);
    let mut f = fixture("uncovered", &uncovered);
    let (v, _, _) = run(&mut f.pipeline, Side::Unprotected, &esp);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::IcmpErrorUnprotected)));
    assert_eq!((f.counters.dropped(GatewayDrop::TtlExpired.into()), icmp_errors(&f.counters)), (1, 0));
}

/// With AES-CBC SAs the pipeline opens and seals in bursts (`gateway::burst_crypto`): a packet
/// that came out of the tunnel, opened with its burst, and expires here becomes an error that
/// waits to be sealed with the burst like any other frame, and leaves only under ESP.
#[test]
fn an_error_about_a_packet_opened_in_a_burst_waits_to_be_sealed() {
    let cbc = CONFIG_V4
        .replace(
            "suite = \"aes-gcm-256\"\nenc_key = \"0101010101010101010101010101010101010101010101010101010101010101a0a1a2a3\"",
            "suite = \"aes-cbc-256-hmac-sha256\"\nenc_key = \"0101010101010101010101010101010101010101010101010101010101010101\"\nauth_key = \"0303030303030303030303030303030303030303030303030303030303030303\"",
        )
        .replace(
            "suite = \"aes-gcm-256\"\nenc_key = \"0202020202020202020202020202020202020202020202020202020202020202b0b1b2b3\"",
            "suite = \"aes-cbc-256-hmac-sha256\"\nenc_key = \"0202020202020202020202020202020202020202020202020202020202020202\"\nauth_key = \"0404040404040404040404040404040404040404040404040404040404040404\"",
        );
    assert_eq!(cbc.matches("aes-cbc-256-hmac-sha256").count(), 2);
    let mut f = fixture("burst-error", &cbc);
    let p = &mut f.pipeline;
    p.crypto_in_bursts();
    // It waits for its burst, as every CBC packet does.
    let inner = scapy(&[r#"IP(src="198.18.2.2", dst="198.18.1.2", ttl=1)/UDP(sport=53, dport=5000)/Raw(b"r" * 400)"#]).remove(0);
    let frame = framed(&from_peer(&f.config, &inner), PEER, Side::Unprotected);
    let mut mem = vec![0u8; 4096];
    let mut buf = SliceBuf::with_packet(&mut mem, 128, &frame).unwrap();

    p.begin_round();
    assert_eq!(p.from_port(Side::Unprotected, &mut buf), Verdict::Open);
    let unopened = p.take_unopened().expect("waits to be opened");
    let opened = p.to_open(buf.data_mut(), &unopened).map(|packet| p.open_burst(&mut [packet])[0]);
    let verdict = p.resume_opened(&mut buf, &unopened, opened);
    assert_eq!(verdict, Verdict::Transmit(Side::Unprotected));
    let unsealed = p.take_unsealed().expect("the error waits to be sealed");
    // Until then its ESP payload is the error in clear: the peer cannot open it.
    let before = buf.data().to_vec();
    assert!(before.windows(8).any(|w| w == &inner[..8]), "the error quotes the expired packet");
    let packet = p.to_seal(buf.data_mut(), &unsealed).expect("its SA");
    assert_eq!(p.seal_burst(&mut [packet]).to_vec(), vec![true]);
    p.end_round();

    let out = buf.data().to_vec();
    let l2 = Frame::parse(&out).unwrap();
    assert_eq!((l2.dst, out[l2.header_len + 9]), (PEER, 50), "ESP to the peer");
    assert!(!out.windows(8).any(|w| w == &inner[..8]), "nothing of the expired packet in clear");
    let error = peer_reads(&f.config, &out[l2.header_len..]);
    scapy_checks(&[Expected::time_exceeded(error, &inner, "198.18.1.1", "198.18.2.2")]);
    assert_eq!((f.counters.dropped(GatewayDrop::TtlExpired.into()), icmp_errors(&f.counters)), (1, 1));
}

/// Negotiation discovery ([MS-IKEE] 3.7.4.1) sends a new flow of its rule in cleartext while
/// the rule has no outbound SA; an error about a packet that came out of an SA is not sent so.
#[test]
fn negotiation_discovery_never_sends_an_error_about_a_decrypted_packet_in_cleartext() {
    let out_sa = CONFIG_V4.find("[[sas]]\ndirection = \"out\"").unwrap();
    let in_sa = CONFIG_V4.find("[[sas]]\ndirection = \"in\"").unwrap();
    let config = format!("{}{}", &CONFIG_V4[..out_sa], &CONFIG_V4[in_sa..])
        .replacen("reqid = 1\ntunnel", "reqid = 1\nnegotiation_discovery = true\ntunnel", 1)
        + "\n[negotiation_discovery]\nenabled = true\nflows = 1000\n";
    let mut f = fixture("nd", &config);
    let packets = scapy(&[
        r#"IP(src="198.18.1.2", dst="198.18.2.2")/UDP(sport=5000, dport=53)"#,
        r#"IP(src="198.18.2.2", dst="198.18.1.2", ttl=1)/UDP(sport=53, dport=5000)/Raw(b"r" * 40)"#,
    ]);
    // The rule's own traffic goes out in cleartext while its SA is negotiated...
    let (v, out, _) = run(&mut f.pipeline, Side::Protected, &packets[0]);
    assert_eq!((v, out[9]), (Verdict::Transmit(Side::Unprotected), 17));
    // ...but not an error quoting a packet of a secured flow.
    let esp = from_peer(&f.config, &packets[1]);
    let (v, _, _) = run(&mut f.pipeline, Side::Unprotected, &esp);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::IcmpErrorUnprotected)));
    assert_eq!(icmp_errors(&f.counters), 0);
}

/// RFC 1812 4.3.2.7, RFC 4443 2.4(e): no error about an ICMP error, a non-first fragment, a
/// multicast or broadcast destination (IPv6 packet too big excepted), a source that is not a
/// unique host.
#[test]
fn no_error_about_errors_fragments_multicast_or_odd_sources() {
    let cases: [(&str, bool); 14] = [
        (r#"IP(src="198.18.1.2", dst="198.18.2.2", ttl=1)/ICMP(type=8)"#, true),
        (r#"IP(src="198.18.1.2", dst="198.18.2.2", ttl=1)/ICMP(type=3, code=1)/IPerror(dst="198.18.9.9")"#, false),
        (r#"IP(src="198.18.1.2", dst="198.18.2.2", ttl=1)/ICMP(type=11)/IPerror(dst="198.18.9.9")"#, false),
        (r#"IP(src="198.18.1.2", dst="198.18.2.2", ttl=1, flags="MF")/UDP()/Raw(b"f" * 64)"#, true),
        (r#"IP(src="198.18.1.2", dst="198.18.2.2", ttl=1, frag=10)/Raw(b"f" * 64)"#, false),
        (r#"IP(src="198.18.1.2", dst="224.0.0.9", ttl=1)/UDP()"#, false),
        (r#"IP(src="198.18.1.2", dst="255.255.255.255", ttl=1)/UDP()"#, false),
        (r#"IP(src="0.0.0.0", dst="198.18.2.2", ttl=1)/UDP()"#, false),
        (r#"IP(src="240.0.0.1", dst="198.18.2.2", ttl=1)/UDP()"#, false),
        (r#"IPv6(src="2001:db8:1::2", dst="2001:db8:2::7", hlim=1)/ICMPv6EchoRequest()"#, true),
        (r#"IPv6(src="2001:db8:1::2", dst="2001:db8:2::7", hlim=1)/ICMPv6DestUnreach()/IPerror6()"#, false),
        (r#"IPv6(src="2001:db8:1::2", dst="2001:db8:2::7", hlim=1)/IPv6ExtHdrFragment(offset=10)/Raw(b"f" * 64)"#, false),
        (r#"IPv6(src="2001:db8:1::2", dst="ff0e::9", hlim=1)/UDP()"#, false),
        (r#"IPv6(src="::", dst="2001:db8:2::7", hlim=1)/UDP()"#, false),
    ];
    let exprs: Vec<&str> = cases.iter().map(|(e, _)| *e).collect();
    for ((expr, allowed), packet) in cases.iter().zip(scapy(&exprs)) {
        assert_eq!(reportable(&packet, IcmpError::TimeExceeded).is_some(), *allowed, "{expr}");
    }
    // Packet too big may go to the source of multicast (RFC 4443 2.4(e.3)).
    let multicast = scapy(&[r#"IPv6(src="2001:db8:1::2", dst="ff0e::9")/UDP()"#]).remove(0);
    assert!(reportable(&multicast, IcmpError::TooBig { mtu: 1280 }).is_some());

    // Through the pipeline: an expiring ICMP error is dropped and counted, nothing sent.
    let mut f = fixture("noerr", CONFIG_V4);
    let (v, _, _) = run(&mut f.pipeline, Side::Protected, &scapy(&[exprs[1]])[0]);
    assert_eq!(v, Verdict::Drop(Reason::Gateway(GatewayDrop::TtlExpired)));
    assert_eq!(icmp_errors(&f.counters), 0);
}

/// RFC 1812 4.3.2.8: errors are rate-limited per lcore; those over the limit are counted.
#[test]
fn errors_are_rate_limited_per_lcore() {
    let config = CONFIG_V4.replacen("icmp_errors_per_sec = 1000", "icmp_errors_per_sec = 20", 1);
    let mut f = fixture("rate", &config);
    let packet = scapy(&[r#"IP(src="198.18.1.2", dst="198.18.2.2", ttl=1)/UDP(sport=5000, dport=53)"#]).remove(0);
    let frame = framed(&packet, HOST, Side::Protected);
    // One round: the clock does not move, so only the burst (a tenth of the rate) goes out.
    f.pipeline.begin_round();
    let verdicts: Vec<Verdict> = (0..10)
        .map(|_| {
            let mut mem = vec![0u8; 2048];
            let mut buf = SliceBuf::with_packet(&mut mem, 128, &frame).unwrap();
            f.pipeline.from_port(Side::Protected, &mut buf)
        })
        .collect();
    f.pipeline.end_round();
    let sent = verdicts.iter().filter(|v| **v == Verdict::Transmit(Side::Protected)).count();
    assert_eq!(sent, 2);
    assert_eq!((icmp_errors(&f.counters), f.counters.icmp_errors_limited.load(Ordering::Relaxed)), (2, 8));
    assert_eq!(f.counters.dropped(GatewayDrop::TtlExpired.into()), 10);
}
