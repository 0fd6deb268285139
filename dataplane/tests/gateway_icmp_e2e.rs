//! End to end, the gateways' ICMP errors as hosts see them: in the two-site topology
//! (scripts/topology.sh, namespaces, both gateways on DPDK af_packet ports), Linux's ping on host
//! A gets "time exceeded" from gateway A (TTL 1) and from gateway B through the tunnel (TTL 2),
//! and "fragmentation needed" / "packet too big" with the path MTU through the SA when gateway
//! A's unprotected port has a small MTU (which the port itself takes); the kernel adopts that
//! MTU, a packet of that size then crosses, and the link between the gateways carries only ESP. Needs root, DPDK and tshark
//! (scripts/setup.sh); fails if any is missing.

mod common;

use std::path::Path;

use common::sites::{text, tshark, Sites};

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway");
/// Gateway A's unprotected port MTU in this test.
const MTU: usize = 1360;
/// The largest packets that fit through an AES-GCM tunnel-mode SA within MTU (RFC 4301 8.2.1):
/// MTU - outer header - ESP header (8) - IV (8) - ICV (16), to a multiple of 4, less the trailer (2).
const FITS_V4: usize = (MTU - 20 - 8 - 8 - 16) / 4 * 4 - 2;
const FITS_V6: usize = (MTU - 40 - 8 - 8 - 16) / 4 * 4 - 2;

fn ping(s: &Sites, args: &[&str]) -> String {
    let mut all = vec!["ping", "-n", "-c", "1", "-W", "2"];
    all.extend_from_slice(args);
    let out = s.exec("ha", &all);
    text(&out) + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn hosts_get_time_exceeded_and_path_mtu_errors_from_the_gateways() {
    let mut s = Sites::up("icmp", Path::new(GATEWAY));
    for g in ["a", "b"] {
        let mut config = s.topology_config(g, "aes-gcm-256");
        if g == "a" {
            config = config.replacen("[ports.unprotected]\n", &format!("[ports.unprotected]\nmtu = {MTU}\n"), 1);
        }
        std::fs::write(s.config(g), config).unwrap();
    }
    s.start_gateway(0);
    s.start_gateway(1);
    for g in ["a", "b"] {
        assert!(s.load(g).contains("6 SAs added"));
    }
    // The port took the configured MTU: af_packet sets it on the veth under it.
    let link = text(&s.exec("ga", &["ip", "-o", "link", "show", "u0"]));
    assert!(link.contains(&format!(" mtu {MTU} ")), "{link}");
    // Both ends: DPDK's af_packet transmits past the capture hooks, so each end sees what arrives.
    let link = ["ga", "gb"].map(|n| s.capture(n, "u0", &format!("link-{n}")));
    s.assert_ping("ha", "198.18.2.2");

    // RFC 1812 5.3.1 / RFC 4443 3.3: the first hop is gateway A, the second gateway B, whose
    // error comes back through the tunnel.
    let out = ping(&s, &["-t", "1", "198.18.2.2"]);
    assert!(out.contains("From 198.18.1.1 icmp_seq=1 Time to live exceeded"), "{out}");
    let out = ping(&s, &["-t", "2", "198.18.2.2"]);
    assert!(out.contains("From 198.18.2.1 icmp_seq=1 Time to live exceeded"), "{out}");
    let out = ping(&s, &["-6", "-t", "1", "2001:2:0:2::2"]);
    assert!(out.contains("From 2001:2:0:1::1 icmp_seq=1 Time exceeded: Hop limit"), "{out}");
    let out = ping(&s, &["-6", "-t", "2", "2001:2:0:2::2"]);
    assert!(out.contains("From 2001:2:0:2::1 icmp_seq=1 Time exceeded: Hop limit"), "{out}");

    // Host A's link MTU is 1400; 1368-byte packets with DF do not fit through the SA.
    let big = (1400 - 28 - 4).to_string();
    let out = ping(&s, &["-M", "do", "-s", &big, "198.18.2.2"]);
    assert!(out.contains(&format!("From 198.18.1.1 icmp_seq=1 Frag needed and DF set (mtu = {FITS_V4})")), "{out}");
    // The kernel took the path MTU (RFC 1191): it refuses to send the big packet again, and a
    // packet of exactly that size crosses the tunnel.
    let out = ping(&s, &["-M", "do", "-s", &big, "198.18.2.2"]);
    assert!(out.contains(&format!("mtu={FITS_V4}")), "{out}");
    let out = ping(&s, &["-M", "do", "-s", &(FITS_V4 - 28).to_string(), "198.18.2.2"]);
    assert!(out.contains(" 0% packet loss"), "{out}");

    let big6 = (1400 - 48 - 4).to_string();
    let out = ping(&s, &["-6", "-M", "do", "-s", &big6, "2001:2:0:2::2"]);
    assert!(out.contains(&format!("From 2001:2:0:1::1 icmp_seq=1 Packet too big: mtu={FITS_V6}")), "{out}");
    let out = ping(&s, &["-6", "-M", "do", "-s", &(FITS_V6 - 48).to_string(), "2001:2:0:2::2"]);
    assert!(out.contains(" 0% packet loss"), "{out}");

    // Two time-exceeded and two path MTU errors from A (the statistics follow within 250 ms).
    let icmp_errors = |stats: &str| -> u64 {
        let counter = |l: &str| l.split_whitespace().skip_while(|w| *w != "icmp_errors").nth(1)?.parse::<u64>().ok();
        stats.lines().filter(|l| l.starts_with("lcore ")).filter_map(counter).sum()
    };
    let stats = s.wait_for_stats("a", "four ICMP errors", |stats| icmp_errors(stats) == 4);
    assert!(stats.contains("drop ttl_expired 2\n") && stats.contains("drop mtu_exceeded 2\n"), "{stats}");
    s.wait_for_stats("b", "two ICMP errors", |stats| icmp_errors(stats) == 2 && stats.contains("drop ttl_expired 2\n"));

    // Gateway B's errors crossed the link under ESP, like everything else (ARP is not IP).
    s.stop_captures();
    let clear: Vec<String> = link.iter().flat_map(|p| tshark(p, &[], "(ip || ipv6) && !esp && !(icmpv6.type >= 133 && icmpv6.type <= 137) && !(icmpv6.type == 143)", &["frame.number"])).collect();
    assert!(clear.is_empty(), "cleartext on the link: {clear:?}");
    assert!(link.iter().map(|p| tshark(p, &[], "esp", &["frame.number"]).len()).sum::<usize>() >= 10);
}
