//! End to end: two gateway processes on DPDK (net_af_packet on veths, no hugepages) between two
//! hosts, in network namespaces made by scripts/topology.sh (198.18.0.0/15 and 2001:2::/48 only).
//! Needs root, DPDK, python3-scapy and tshark (scripts/setup.sh); fails if any is missing. The
//! scenarios run one at a time (they share the machine's two cores).

mod common;

use common::sites::{run, signal_and_wait, text, Sites, PYTHON};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway");
const GCM: &str = "aes-gcm-256";
const CBC: &str = "aes-cbc-256-hmac-sha256";

/// The two sites with both gateways running and their static SAs and rules loaded.
fn two_sites(suite: &str) -> Sites {
    let mut s = Sites::up("gw", Path::new(GATEWAY));
    for g in ["a", "b"] {
        std::fs::write(s.config(g), s.topology_config(g, suite)).unwrap();
    }
    s.start_gateway(0);
    s.start_gateway(1);
    for g in ["a", "b"] {
        let out = s.load(g);
        assert!(out.contains("6 SAs added"), "{out}");
    }
    s
}

/// Starts capturing the link between the gateways, at both ends: a packet socket on a veth
/// sees what arrives there (DPDK's af_packet transmits past the capture hooks), so the two
/// files hold both directions.
fn capture_link(s: &mut Sites, name: &str) -> [PathBuf; 2] {
    ["ga", "gb"].map(|n| s.capture(n, "u0", &format!("{name}-{n}")))
}

/// The keys scripts/topology.sh gives an SA: bytes (seed * 17 + i) mod 256.
fn key(seed: u32, len: u32) -> String {
    (0..len).map(|i| format!("{:02x}", (seed * 17 + i) % 256)).collect()
}

/// tshark's ESP SA table for every SA of gateway A's configuration (suite names as Wireshark's).
fn esp_uat(suite: &str) -> Vec<String> {
    // (spi, IPv6 outer, seed) as in scripts/topology.sh.
    let sas = [(0x1001, false, 1), (0x1002, false, 2), (0x1601, true, 11), (0x1602, true, 12), (0x1501, false, 21), (0x1502, false, 22)];
    sas.iter()
        .map(|&(spi, v6, seed)| {
            let family = if v6 { "IPv6" } else { "IPv4" };
            let (enc, enc_key, auth, auth_key) = if suite == GCM {
                ("AES-GCM with 16 octet ICV [RFC4106]", key(seed, 36), "NULL", String::new())
            } else {
                ("AES-CBC [RFC3602]", key(seed, 32), "HMAC-SHA-256-128 [RFC4868]", format!("0x{}", key(seed + 100, 32)))
            };
            format!("uat:esp_sa:\"{family}\",\"*\",\"*\",\"{spi:#010x}\",\"{enc}\",\"0x{enc_key}\",\"{auth}\",\"{auth_key}\"")
        })
        .collect()
}

/// The `fields` of the frames of the captures that match `filter`.
fn tshark(pcaps: &[PathBuf], uat: &[String], filter: &str, fields: &[&str]) -> Vec<String> {
    let mut options = vec!["esp.enable_encryption_decode:TRUE".to_string()];
    options.extend(uat.iter().cloned());
    pcaps.iter().flat_map(|p| common::sites::tshark(p, &options, filter, fields)).collect()
}

/// Ping (IPv4 and IPv6, tunnel mode; the gateways' own ICMP in transport mode) and a TCP
/// transfer; the link between the gateways carries only ESP, which tshark decrypts.
fn site_to_site(suite: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = two_sites(suite);
    let pcap = capture_link(&mut s, "link");
    s.assert_ping("ha", "198.18.2.2");
    s.assert_ping("ha", "2001:2:0:2::2");
    s.assert_ping("hb", "198.18.1.2");
    s.assert_ping("ga", "198.18.0.2");
    // Host B reaches gateway A's own protected address through the tunnel, and back.
    s.assert_ping("hb", "198.18.1.1");
    let megabytes = 8;
    assert_eq!(s.tcp_transfer(megabytes), u64::from(megabytes) << 20, "TCP transfer incomplete");
    s.stop_captures();

    // Every IP packet on the link is ESP, apart from IPv6 neighbour discovery and MLD, which
    // RFC 4301 lets bypass IPsec. ARP is not IP.
    let ip = tshark(&pcap, &[], "ip || ipv6", &["frame.number", "ip.proto", "ipv6.nxt", "icmpv6.type"]);
    let mut esp = 0;
    for line in &ip {
        let f: Vec<&str> = line.split('|').collect();
        let nd = f[3].parse::<u8>().is_ok_and(|t| (133..=137).contains(&t) || t == 143);
        assert!(f[1] == "50" || f[2] == "50" || nd, "cleartext on the link: {line}");
        esp += usize::from(f[1] == "50" || f[2] == "50");
    }
    assert!(esp > 1000, "only {esp} ESP packets captured for an 8 MB transfer");

    // tshark decrypts every one of them with the configured keys.
    let uat = esp_uat(suite);
    let decrypted = tshark(&pcap, &uat, "esp && (icmp || icmpv6 || tcp)", &["frame.number"]).len();
    assert_eq!(decrypted, esp, "tshark decrypted {decrypted} of {esp} ESP packets");
    let inner = |filter: &str| tshark(&pcap, &uat, filter, &["frame.number"]).len();
    assert!(inner("esp.spi == 0x1001 && icmp && ip.dst == 198.18.2.2") >= 3, "IPv4 tunnel-mode ping");
    assert!(inner("esp.spi == 0x1002 && icmp && ip.src == 198.18.2.2") >= 6, "IPv4 tunnel-mode replies and pings from B");
    assert!(inner("esp.spi == 0x1601 && icmpv6 && ipv6.dst == 2001:2:0:2::2") >= 3, "IPv6 tunnel-mode ping");
    assert!(inner("esp.spi == 0x1501 && icmp && !(ip.dst == 198.18.2.2)") >= 3, "transport-mode ping");
    assert!(inner("esp.spi == 0x1001 && tcp.dstport == 5001") > 1000, "TCP through the tunnel");

    let stats = s.stats("a");
    assert!(stats.contains("sa spi 0x00001001 dst 198.18.0.2 direction Out mode Tunnel"), "{stats}");

    // Pings of 1500 bytes without DF, too large for the tunnel once under ESP: gateway A cuts
    // each into two fragments before encrypting them (RFC 4301 8.1), host B reassembles it, and
    // the same for the replies through gateway B. (The
    // hosts' links carry 1500 bytes for this; the topology gives them 1400.)
    for host in ["ha", "hb"] {
        s.exec(host, &["ip", "link", "set", "eth0", "mtu", "1500"]);
    }
    let big = s.exec("ha", &["ping", "-n", "-M", "dont", "-s", "1472", "-c", "3", "-i", "0.2", "-W", "2", "198.18.2.2"]);
    let text = String::from_utf8_lossy(&big.stdout);
    assert!(big.status.success() && text.contains(" 0% packet loss"), "{text}\n{}\n{}", s.stats("a"), s.stats("b"));
    let fragments = |stats: &str| -> u64 {
        stats.lines().filter_map(|l| l.split_once(" fragments ")?.1.split(' ').next()?.parse::<u64>().ok()).sum()
    };
    for g in ["a", "b"] {
        s.wait_for_stats(g, "6 fragments, 2 of each packet", |stats| fragments(stats) == 6);
    }
}

#[test]
fn site_to_site_aes_gcm() {
    site_to_site(GCM);
}

#[test]
fn site_to_site_aes_cbc_hmac_sha256() {
    site_to_site(CBC);
}

const INJECT: &str = r#"
import struct, sys
from scapy.all import Ether, IP, UDP, Raw, sendp
from scapy.layers.ipsec import ESP, SecurityAssociation
key = bytes.fromhex(sys.argv[1])
sa = SecurityAssociation(ESP, spi=0x1002, crypt_algo="AES-GCM", crypt_key=key, auth_algo="NULL",
                         tunnel_header=IP(src="198.18.0.2", dst="198.18.0.1"))
def esp(seq, marker):
    inner = IP(src="198.18.2.2", dst="198.18.1.2") / UDP(sport=40000, dport=9999) / Raw(marker.encode())
    return Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / sa.encrypt(inner, seq_num=seq)
natt = SecurityAssociation(ESP, spi=0x1702, crypt_algo="AES-GCM", crypt_key=bytes.fromhex(sys.argv[2]), auth_algo="NULL",
                           tunnel_header=IP(src="198.18.0.2", dst="198.18.0.1"), nat_t_header=UDP(sport=4500, dport=4500))
def esp_in_udp(seq, marker):
    inner = IP(src="198.18.2.2", dst="198.18.1.2") / UDP(sport=40000, dport=9999) / Raw(marker.encode())
    # This Scapy leaves the NAT-T UDP length at 8 (header only): set it (IPv4 header 20 B).
    raw = bytearray(bytes(natt.encrypt(inner, seq_num=seq)))
    struct.pack_into("!H", raw, 24, len(raw) - 20)
    return Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / IP(bytes(raw))
valid = [esp(100000 + i, "valid-%d" % i) for i in range(5)] + [esp_in_udp(1 + i, "natt-%d" % i) for i in range(3)]
tampered = esp(100010, "tampered")
raw = bytearray(bytes(tampered)); raw[-1] ^= 0x01
frames = valid + [Ether(bytes(raw)), valid[0], valid[3], esp(5, "too-old")]
sendp(frames, iface="u0", verbose=False, inter=0.05)
"#;

const RECEIVE: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.1.2", 9999)); s.settimeout(4)
try:
    while True:
        print(s.recv(2048).decode(), flush=True)
except socket.timeout:
    pass
"#;

/// An inbound SA for ESP in UDP (RFC 3948), added to gateway A's file after the fact.
const NATT_SA: &str = r#"
[[sas]]
direction = "in"
spi = 0x1702
mode = "tunnel"
src = "198.18.0.2"
dst = "198.18.0.1"
suite = "aes-gcm-256"
enc_key = "KEY"
udp_encap = [4500, 4500]
local = "198.18.1.0/24"
remote = "198.18.2.0/24"
"#;

/// ESP and ESP-in-UDP built by Scapy and sent onto the link are decrypted and delivered to host
/// A; a tampered packet, two replays and one older than the window are dropped and counted by
/// reason.
#[test]
fn scapy_esp_is_delivered_and_bad_esp_is_counted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = two_sites(GCM);
    // Loading the file again with one SA more adds it and keeps the others.
    let mut config = std::fs::read_to_string(s.config("a")).unwrap();
    config.push_str(&NATT_SA.replace("KEY", &key(30, 36)));
    std::fs::write(s.config("a"), config).unwrap();
    let out = run(Command::new(GATEWAY).arg("load").arg(s.config("a")));
    assert!(text(&out).contains("1 SAs added, 0 updated, 6 kept, 0 deleted; SPD unchanged"), "{}", text(&out));
    s.assert_ping("ha", "198.18.2.2");
    let receiver = Command::new("ip").args(["netns", "exec", &s.ns("ha"), PYTHON, "-c", RECEIVE]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Gateway B's outbound SA to A (seed 2): sent from B's end of the link, as B would.
    let inject = s.exec("gb", &[PYTHON, "-c", INJECT, &key(2, 36), &key(30, 36)]);
    assert!(inject.status.success(), "scapy: {}", String::from_utf8_lossy(&inject.stderr));
    let received: BTreeSet<String> = text(&receiver.wait_with_output().unwrap()).lines().map(str::to_owned).collect();
    let expected: BTreeSet<String> = (0..5).map(|i| format!("valid-{i}")).chain((0..3).map(|i| format!("natt-{i}"))).collect();
    assert_eq!(received, expected, "{}", s.stats("a"));

    std::thread::sleep(Duration::from_millis(400));
    let stats = s.stats("a");
    assert!(stats.lines().any(|l| l == "drop icv_mismatch 1"), "{stats}");
    assert!(stats.lines().any(|l| l == "drop replay 3"), "{stats}");
    let sa = stats.lines().find(|l| l.starts_with("sa spi 0x00001002 ")).unwrap();
    assert!(sa.contains(" drop_replay 3 ") && sa.contains(" drop_icv_mismatch 1 "), "{sa}");
    // The tampered packet (100010) failed its ICV, so it must not move the anti-replay top.
    assert!(sa.contains(" highest_seq 100004 "), "{sa}");
    let natt = stats.lines().find(|l| l.starts_with("sa spi 0x00001702 ")).unwrap();
    assert!(natt.contains(" packets 3 ") && natt.contains(" highest_seq 3 "), "{natt}");
}

/// The process that wrote the SAs dies and comes back: the dataplane forwards throughout, and
/// the restarted writer keeps the SAs (and so their sequence numbers) as they are.
#[test]
fn forwarding_survives_the_writer_being_killed_and_restarted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = two_sites(GCM);
    let hold = |s: &Sites| Command::new(GATEWAY).args(["load"]).arg(s.config("a")).arg("--hold").stdout(Stdio::piped()).spawn().unwrap();
    let mut writer = hold(&s);
    std::thread::sleep(Duration::from_millis(300));
    let ping = Command::new("ip")
        .args(["netns", "exec", &s.ns("ha"), "ping", "-n", "-c", "30", "-i", "0.1", "-W", "2", "198.18.2.2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    signal_and_wait(&mut writer, "KILL");
    std::thread::sleep(Duration::from_millis(800));
    let mut writer = hold(&s);
    std::thread::sleep(Duration::from_millis(500));
    let out = ping.wait_with_output().unwrap();
    assert!(text(&out).contains("30 received"), "{}", text(&out));
    signal_and_wait(&mut writer, "INT");
    let report = text(&writer.wait_with_output().unwrap());
    assert!(report.contains("0 SAs added, 0 updated, 6 kept, 0 deleted; SPD unchanged"), "{report}");
    s.assert_ping("ha", "198.18.2.2");
    s.stop_gateway(0, "INT");
}

/// A dataplane that crashes and restarts attaches to the region again and continues above every
/// sequence number it used before.
#[test]
fn restarted_dataplane_never_reuses_sequence_numbers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = two_sites(GCM);
    let pcap = capture_link(&mut s, "before");
    s.assert_ping("ha", "198.18.2.2");
    s.stop_captures();
    s.stop_gateway(0, "KILL");
    s.start_gateway(0);
    let pcap_after = capture_link(&mut s, "after");
    // The first ping may go unanswered while the kernel relearns the restarted exception path.
    let _ = s.ping("ha", "198.18.2.2", 1);
    s.assert_ping("ha", "198.18.2.2");
    s.stop_captures();
    let seqs = |p: &[PathBuf]| -> Vec<u64> { tshark(p, &[], "esp.spi == 0x1001", &["esp.sequence"]).iter().map(|l| l.parse().unwrap()).collect() };
    let (before, after) = (seqs(&pcap), seqs(&pcap_after));
    assert!(before.len() >= 3 && after.len() >= 3, "{before:?} {after:?}");
    let last = *before.iter().max().unwrap();
    assert!(after.iter().all(|&q| q > last), "sequence numbers reused: before {before:?}, after {after:?}");
}
