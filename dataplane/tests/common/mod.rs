//! Test helpers: SA configurations for every suite and mode, plain packets of every family;
//! `pipeline`: a pipeline over a configured region; `sites`: the end-to-end tests' namespaces,
//! gateway processes and captures.
#![allow(dead_code)] // each test binary uses its own subset

pub mod pipeline;
pub mod sites;

use std::net::IpAddr;

use dataplane::{InboundSa, OutboundSa, PacketBuf, SliceBuf};
use shared::sa::{AesKeySize, DfPolicy, Direction, Integrity, Limits, Mode, MsSaFlags, SaConfig, Suite, TrafficSelector, UdpEncap};
use zeroize::Zeroizing;

pub const HEADROOM: usize = 128;
pub const BUF_LEN: usize = 4096;

pub fn all_suites() -> Vec<Suite> {
    use AesKeySize::*;
    vec![
        Suite::AesGcm { key: Aes128, icv_len: 16 },
        Suite::AesGcm { key: Aes256, icv_len: 16 },
        Suite::AesGcm { key: Aes256, icv_len: 12 },
        Suite::AesGcm { key: Aes128, icv_len: 8 },
        Suite::AesCbc { key: Aes128, integrity: Integrity::HmacSha1_96 },
        Suite::AesCbc { key: Aes256, integrity: Integrity::HmacSha256_128 },
        Suite::AesGmac { key: Aes128 },
        Suite::AesGmac { key: Aes256 },
    ]
}

/// The outer and inner address families of a test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub mode: Mode,
    pub outer_v6: bool,
    pub inner_v6: bool,
}

pub fn all_shapes() -> Vec<Shape> {
    let mut v = Vec::new();
    for (outer_v6, inner_v6) in [(false, false), (true, true), (true, false), (false, true)] {
        v.push(Shape { mode: Mode::Tunnel, outer_v6, inner_v6 });
    }
    for v6 in [false, true] {
        v.push(Shape { mode: Mode::Transport, outer_v6: v6, inner_v6: v6 });
    }
    v
}

pub fn addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
    } else {
        ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap())
    }
}

pub fn inner_addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        ("2001:db8:1::10".parse().unwrap(), "2001:db8:2::20".parse().unwrap())
    } else {
        ("198.18.1.10".parse().unwrap(), "198.18.2.20".parse().unwrap())
    }
}

/// Deterministic key bytes.
pub fn key(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7)).collect()
}

pub fn config(suite: Suite, shape: Shape, esn: bool, encap: Option<u16>, direction: Direction) -> SaConfig {
    let (src, dst) = addrs(shape.outer_v6);
    let (isrc, idst) = if shape.mode == Mode::Tunnel { inner_addrs(shape.inner_v6) } else { (src, dst) };
    SaConfig {
        spi: 0x1000_0001,
        direction,
        mode: shape.mode,
        src,
        dst,
        encap: encap.map(|p| UdpEncap { src_port: p, dst_port: p }),
        suite,
        enc_key: Zeroizing::new(key(suite.enc_key_len(), 1)),
        auth_key: Zeroizing::new(key(suite.auth_key_len(), 2)),
        esn,
        replay_window: 128,
        df: DfPolicy::Copy,
        // Outbound view: local = inner source side. The inbound SA of the peer swaps them.
        ts_local: TrafficSelector::any_of_family(if direction == Direction::Out { isrc } else { idst }),
        ts_remote: TrafficSelector::any_of_family(if direction == Direction::Out { idst } else { isrc }),
        soft: Limits::default(),
        hard: Limits::default(),
        idle_timeout_secs: 0,
        ms_flags: MsSaFlags::default(),
        reqid: 1,
        policy_id: 1,
    }
}

pub fn pair(suite: Suite, shape: Shape, esn: bool, encap: Option<u16>) -> (OutboundSa, InboundSa) {
    (
        OutboundSa::new(&config(suite, shape, esn, encap, Direction::Out)).unwrap(),
        InboundSa::new(&config(suite, shape, esn, encap, Direction::In), None).unwrap(),
    )
}

/// A UDP datagram 12345 -> 40000 (ports no dissector claims) with `payload_len` bytes of payload (valid IPv4 header checksum; UDP checksum 0
/// over IPv4, computed over IPv6).
pub fn udp_packet(v6: bool, src: IpAddr, dst: IpAddr, payload_len: usize, tos: u8) -> Vec<u8> {
    let udp_len = 8 + payload_len;
    let mut udp = vec![0x30, 0x39, 0x9c, 0x40, (udp_len >> 8) as u8, udp_len as u8, 0, 0];
    udp.extend((0..payload_len).map(|i| i as u8));
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) if !v6 => {
            let total = 20 + udp_len;
            p.extend_from_slice(&[0x45, tos, (total >> 8) as u8, total as u8, 0, 7, 0x40, 0, 64, 17, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let c = dataplane::wire::checksum::checksum(&p);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[0x60 | tos >> 4, tos << 4, 0, 0, (udp_len >> 8) as u8, udp_len as u8, 17, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let ck = dataplane::wire::checksum::pseudo_header(&s.octets(), &d.octets(), 17, udp_len);
            let c = !dataplane::wire::checksum::fold(dataplane::wire::checksum::accumulate(ck, &udp));
            udp[6..8].copy_from_slice(&c.to_be_bytes());
        }
        _ => panic!("address family mismatch"),
    }
    p.extend_from_slice(&udp);
    p
}

/// The plain packet of a test case: what enters the outbound SA and leaves the inbound one.
pub fn plain_packet(shape: Shape, payload_len: usize) -> Vec<u8> {
    let v6 = shape.inner_v6;
    let (src, dst) = if shape.mode == Mode::Tunnel { inner_addrs(v6) } else { addrs(v6) };
    udp_packet(v6, src, dst, payload_len, 0)
}

/// Runs `f` on `packet` in a buffer with headroom and tailroom; returns the result and the bytes.
pub fn with_buf<R>(packet: &[u8], f: impl FnOnce(&mut SliceBuf) -> R) -> (R, Vec<u8>) {
    let mut mem = vec![0u8; BUF_LEN];
    let mut b = SliceBuf::with_packet(&mut mem, HEADROOM, packet).unwrap();
    let r = f(&mut b);
    let out = b.data().to_vec();
    (r, out)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Runs Debian's Python (where scripts/setup.sh installs Scapy) with `args`, `input` on its
/// standard input, and returns its standard output; fails the test if Python fails.
pub fn python(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 must exist (scripts/setup.sh installs python3-scapy)");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 {args:?} failed (is python3-scapy installed?): {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Scapy / tshark names of a suite.
pub fn suite_label(s: Suite) -> String {
    match s {
        Suite::AesGcm { key, icv_len } => format!("gcm{}-{icv_len}", key.bytes() * 8),
        Suite::AesCbc { key, integrity } => format!(
            "cbc{}-{}",
            key.bytes() * 8,
            match integrity {
                Integrity::HmacSha1_96 => "sha1",
                Integrity::HmacSha256_128 => "sha256",
            }
        ),
        Suite::AesGmac { key } => format!("gmac{}", key.bytes() * 8),
    }
}
