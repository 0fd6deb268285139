//! tshark (Debian's Wireshark 4.0) dissects our ESP packets without errors, and decrypts them with
//! the keys: the inner packets' addresses and ports must appear. Fails if tshark is missing.
//!
//! Wireshark 4.0's ESP SA table has no ESN field and no ENCR_NULL_AUTH_AES_GMAC, so ESN packets
//! and GMAC packets are checked for clean dissection only; the others are decrypted.

mod common;

use std::process::Command;

use common::*;
use dataplane::{encapsulate, OutboundSa};
use shared::sa::{Direction, Integrity, Mode, Suite};

/// A pcap file of raw IP packets (LINKTYPE_RAW).
fn pcap(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    for v in [0xa1b2_c3d4u32.to_le_bytes().to_vec(), 2u16.to_le_bytes().to_vec(), 4u16.to_le_bytes().to_vec()] {
        f.extend(v);
    }
    for v in [0u32, 0, 65535, 101] {
        f.extend(v.to_le_bytes());
    }
    for (i, p) in packets.iter().enumerate() {
        for v in [i as u32, 0, p.len() as u32, p.len() as u32] {
            f.extend(v.to_le_bytes());
        }
        f.extend_from_slice(p);
    }
    f
}

fn wireshark_names(suite: Suite) -> Option<(&'static str, &'static str)> {
    match suite {
        Suite::AesGcm { icv_len: 16, .. } => Some(("AES-GCM with 16 octet ICV [RFC4106]", "NULL")),
        Suite::AesGcm { icv_len: 12, .. } => Some(("AES-GCM with 12 octet ICV [RFC4106]", "NULL")),
        Suite::AesGcm { .. } => Some(("AES-GCM with 8 octet ICV [RFC4106]", "NULL")),
        Suite::AesCbc { integrity: Integrity::HmacSha1_96, .. } => Some(("AES-CBC [RFC3602]", "HMAC-SHA-1-96 [RFC2404]")),
        Suite::AesCbc { .. } => Some(("AES-CBC [RFC3602]", "HMAC-SHA-256-128 [RFC4868]")),
        Suite::AesGmac { .. } => None,
    }
}

fn tshark(pcap_path: &std::path::Path, uat: &[String], fields: &[&str], filter: Option<&str>) -> String {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(pcap_path).args(["-o", "esp.enable_encryption_decode:TRUE"]);
    for u in uat {
        cmd.args(["-o", u]);
    }
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    cmd.args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark must be installed (scripts/setup.sh installs it)");
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn tshark_dissects_and_decrypts_our_packets() {
    let mut packets = Vec::new();
    let mut uat = Vec::new();
    // (frame, decryptable, inner destination address)
    let mut expect = Vec::new();
    for suite in all_suites() {
        for shape in all_shapes() {
            for esn in [false, true] {
                for encap in [None, Some(4500)] {
                    let spi = 0x2000_0000 + packets.len() as u32;
                    let mut cfg = config(suite, shape, esn, encap, Direction::Out);
                    cfg.spi = spi;
                    let out = OutboundSa::new(&cfg).unwrap();
                    let plain = plain_packet(shape, 20);
                    let (r, wire) = with_buf(&plain, |b| encapsulate(&out, 3, b));
                    r.unwrap();
                    let names = wireshark_names(suite).filter(|_| !esn);
                    if let Some((enc, auth)) = names {
                        let family = if shape.outer_v6 { "IPv6" } else { "IPv4" };
                        let auth_key = if cfg.auth_key.is_empty() { String::new() } else { format!("0x{}", hex(&cfg.auth_key)) };
                        uat.push(format!(
                            "uat:esp_sa:\"{family}\",\"*\",\"*\",\"{spi:#010x}\",\"{enc}\",\"0x{}\",\"{auth}\",\"{auth_key}\"",
                            hex(&cfg.enc_key)
                        ));
                    }
                    let inner_dst = if shape.mode == Mode::Tunnel { inner_addrs(shape.inner_v6).1 } else { cfg.dst };
                    expect.push((spi, names.is_some(), inner_dst, shape.mode));
                    packets.push(wire);
                }
            }
        }
    }
    let path = std::env::temp_dir().join(format!("esp-tshark-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap(&packets)).unwrap();

    // No malformed packets and no expert errors anywhere.
    let bad = tshark(&path, &uat, &["frame.number", "_ws.expert.message"], Some("_ws.malformed || _ws.expert.severity == error"));
    assert_eq!(bad.trim(), "", "frames with dissection errors");

    let lines = tshark(&path, &uat, &["esp.spi", "ip.dst", "ipv6.dst", "udp.dstport", "esp.decrypted_data"], None);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), packets.len());
    let mut decrypted = 0;
    for (line, (spi, decryptable, inner_dst, mode)) in lines.iter().zip(&expect) {
        let cols: Vec<&str> = line.split('|').collect();
        assert!(cols[0].contains(&format!("{spi:#010x}")) || cols[0].contains(&spi.to_string()), "{line}");
        if *decryptable {
            // The decrypted inner packet is dissected: its UDP port 40000 and (tunnel) its address.
            assert!(cols[3].split(',').any(|p| p == "40000"), "inner UDP not decrypted: {line}");
            if *mode == Mode::Tunnel {
                let addrs = format!("{},{}", cols[1], cols[2]);
                assert!(addrs.split(',').any(|a| a == inner_dst.to_string()), "inner address missing: {line}");
            }
            decrypted += 1;
        }
    }
    std::fs::remove_file(&path).ok();
    assert_eq!(decrypted, 6 * 6 * 2, "every non-ESN, non-GMAC case decrypted");
}
