//! End to end with strongSwan: host A behind our gateway, host B behind strongSwan 5.9 (Debian's
//! charon with kernel-libipsec, which forces UDP encapsulation), in the namespaces of
//! scripts/topology.sh (198.18.0.0/15 only):
//!
//! ```text
//! host A ---- gateway A: `gateway run` (DPDK, af_packet) ==== charon (kernel-libipsec) ---- host B
//! 198.18.1.2  + `iked` on its exception interface   ESP-in-UDP   198.18.0.2, 198.18.2.1   198.18.2.2
//!             198.18.1.1 | 198.18.0.1
//! ```
//!
//! Our `iked` negotiates with charon (pre-shared keys, AES-256-GCM child SA) over the gateway's
//! exception path (IKE on 500, then on 4500 behind the non-ESP marker) and writes the child SAs
//! and their policies into the region the gateway reads; the gateway does the ESP, in UDP on
//! port 4500. `iked` initiates (`iked ctl initiate`), charon does (`swanctl --initiate`), or host
//! A's traffic does (an ACQUIRE on iked's trap rule). Asserts: nothing passes before the SA;
//! then ping both ways and a TCP transfer from host A to host B; the link carries only IKE and
//! ESP-in-UDP, which tshark decrypts (with the keys `iked` logs) to the hosts' ICMP and TCP; the
//! gateway's SA counters (`gateway stats`), charon's (`swanctl --list-sas`) and the capture agree
//! packet for packet; no SA dropped anything. When iked initiated, the child SA is then rekeyed
//! by iked and by charon while host A pings every 20 ms: no ping is lost. When traffic started
//! it, charon then deletes the child SA and host A's next packet makes iked add a new one to the
//! same IKE SA (CREATE_CHILD_SA), which carries the pings that follow. When charon started it,
//! iked is then killed and restarted under traffic: the gateway forwards on the dead iked's SAs
//! until the new iked has a new child SA with charon and removes them; no two pings in a row
//! are lost (at most two in all: a loaded machine's af_packet ports drop the odd frame, and CI
//! once lost one while iked was down, when nothing in the IKE plane changes).
//!
//! Needs root, DPDK, charon and tshark (scripts/setup.sh) and the dataplane's `gateway` binary
//! next to `iked` (`cargo test --workspace` builds both); fails, does not skip, without any.
mod common;
#[path = "../../dataplane/tests/common/sites.rs"]
mod sites;

use common::lab::{sh, Lab};
use sites::{tshark, Sites};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cases share the machine's two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const OURS: &str = "198.18.0.1";
const THEIRS: &str = "198.18.0.2";
const HOST_A: &str = "198.18.1.2";
const HOST_B: &str = "198.18.2.2";
const PSK: &str = "end-to-end pre-shared key 0123456789";
const MEGABYTES: u32 = 4;

/// The dataplane's `gateway` binary: built into the same directory as `iked`.
fn gateway_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_iked")).with_file_name("gateway");
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` builds it beside iked (scripts/test.sh: `--profile release-checked`)",
        path.display()
    );
    path
}

/// The lab: declared first, so that charon and `iked` stop before the sites (the gateway, the
/// namespaces) go.
struct EndToEnd {
    lab: Lab,
    sites: Sites,
}

impl EndToEnd {
    /// The namespaces, gateway A without any rule or SA, `iked` on its exception interface,
    /// charon in gateway B's namespace (which becomes a plain router with addresses).
    fn up(tag: &str, initiator: Initiator) -> EndToEnd {
        let lab = Lab::new("e2e", tag);
        let gateway = gateway_binary();
        let mut sites = Sites::up("e2e", &gateway);
        let gb = sites.ns("gb");
        sh(&format!(
            "ip netns exec {gb} sysctl -qw net.ipv4.ip_forward=1 \
               net.ipv4.conf.u0.rp_filter=0 net.ipv4.conf.u0.arp_ignore=0 \
               net.ipv4.conf.p0.rp_filter=0 net.ipv4.conf.p0.arp_ignore=0 && \
             ip -n {gb} addr add {THEIRS}/30 dev u0 && ip -n {gb} addr add 198.18.2.1/24 dev p0"
        ));
        // Ports, addresses, routes and neighbours only: the SPD and SAD are iked's to fill.
        std::fs::write(sites.config("a"), sites.topology_config_head("a")).unwrap();
        sites.start_gateway(0);
        let mut e2e = EndToEnd { lab, sites };
        e2e.start_iked(initiator == Initiator::Traffic);
        e2e.start_charon();
        e2e
    }

    /// `trap`: trap rules for charon's selectors, so that traffic starts the negotiation.
    fn start_iked(&mut self, trap: bool) {
        let config = format!(
            "[daemon]\nlisten = \"{OURS}\"\ncontrol_socket = \"{sock}\"\nregion = \"{region}\"\nlog_keys = true\n\n\
             [[peer]]\nname = \"charon\"\nremote = \"{THEIRS}\"\nlocal_id = \"fqdn:gateway-a.example\"\nremote_id = \"fqdn:charon.example\"\n\
             psk = \"{PSK}\"\nike = [\"aes256gcm16-prfsha256-ecp256\"]\nesp = [\"aes256gcm16\"]\n\
             local_ts = [\"198.18.1.0/24\"]\nremote_ts = [\"198.18.2.0/24\"]\ntrap = {trap}\n",
            sock = self.lab.iked_socket().display(),
            region = self.sites.region_path("a").display(),
        );
        let ga = self.sites.ns("ga");
        self.lab.start_iked(&ga, &config);
    }

    fn start_charon(&mut self) {
        let swanctl = format!(
            "connections {{\n gw {{\n  version = 2\n  local_addrs = {THEIRS}\n  remote_addrs = {OURS}\n  \
             proposals = aes256gcm16-prfsha256-ecp256\n  \
             local {{\n   auth = psk\n   id = charon.example\n  }}\n  remote {{\n   auth = psk\n   id = gateway-a.example\n  }}\n  \
             children {{\n   net {{\n    local_ts = 198.18.2.0/24\n    remote_ts = 198.18.1.0/24\n    esp_proposals = aes256gcm16\n    mode = tunnel\n   }}\n  }}\n }}\n}}\n\
             secrets {{\n ike-1 {{\n  id-1 = gateway-a.example\n  id-2 = charon.example\n  secret = \"{PSK}\"\n }}\n}}\n"
        );
        let gb = self.sites.ns("gb");
        self.lab.start_charon(&gb, "", &swanctl);
        // Host A's subnet through kernel-libipsec's TUN device, from charon's own address in
        // its protected subnet.
        sh(&format!(
            "ip -n {gb} route add 198.18.1.0/24 dev ipsec0 src 198.18.2.1"
        ));
    }

    /// The logs of iked, charon and the gateway.
    fn logs(&self) -> String {
        let gateway = std::fs::read_to_string(self.sites.log_path("a")).unwrap_or_default();
        format!("{}--- gateway a\n{gateway}", self.lab.logs())
    }
}

/// The packet count charon's `swanctl --list-sas` gives for SPI `spi` in `direction` ("in" or
/// "out"), from a line "in  877f5709,    252 bytes,     3 packets, ...".
fn charon_packets(list: &str, direction: &str, spi: &str) -> Option<u64> {
    let line = list
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(direction) && l.contains(&format!(" {spi},")))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with("packets"))?;
    words.get(at - 1)?.parse().ok()
}

/// The `packets` of SA `spi` (hex) in `gateway stats`.
fn gateway_packets(stats: &str, spi: &str) -> Option<u64> {
    let line = stats
        .lines()
        .find(|l| l.starts_with(&format!("sa spi 0x{spi} ")))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "packets")?;
    words.get(at + 1)?.parse().ok()
}

/// UDP datagrams dropped for a full socket receive buffer (RcvbufErrors in /proc/net/snmp).
fn udp_receive_buffer_errors(snmp: &std::process::Output) -> u64 {
    let text = String::from_utf8_lossy(&snmp.stdout);
    let mut udp = text.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        panic!("no Udp counters in /proc/net/snmp: {text}")
    };
    let at = names
        .split_whitespace()
        .position(|n| n == "RcvbufErrors")
        .unwrap();
    values.split_whitespace().nth(at).unwrap().parse().unwrap()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Initiator {
    /// `iked ctl initiate`.
    Ours,
    /// `swanctl --initiate`.
    Charon,
    /// Host A's traffic: gateway A raises an ACQUIRE on iked's trap rule.
    Traffic,
}

fn host_to_host(initiator: Initiator, tag: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut e = EndToEnd::up(tag, initiator);
    let link = e.sites.capture("gb", "u0", "link");

    // No SA: gateway A forwards nothing. Without a rule (RFC 4301 4.4.1: the SPD's default is
    // discard); with iked's trap rule, the packet makes gateway A raise an ACQUIRE, and iked
    // initiates.
    let out = e.sites.ping("ha", HOST_B, 1);
    assert!(!out.status.success(), "a ping passed before any SA");
    let dropped = if initiator == Initiator::Traffic {
        "drop no_sa "
    } else {
        "drop no_policy "
    };
    e.sites.wait_for_stats("a", "the ping dropped", |s| {
        s.lines()
            .any(|l| l.starts_with(dropped) && !l.ends_with(" 0"))
    });
    match initiator {
        Initiator::Ours => {
            let answer = e.lab.ctl("initiate charon");
            assert!(answer.get("error").is_none(), "{answer}");
        }
        Initiator::Charon => {
            e.lab
                .swanctl("--initiate --child net --ike gw --timeout 10");
        }
        Initiator::Traffic => {}
    }
    e.lab
        .wait_for("a child SA in iked", Duration::from_secs(15), || {
            e.lab.ctl("list").as_array().is_some_and(|sas| {
                sas.iter()
                    .any(|sa| sa["children"].as_array().is_some_and(|c| !c.is_empty()))
            })
        });
    let list = e.lab.ctl("list");
    let sa = &list[0];
    assert_eq!(list.as_array().map(Vec::len), Some(1), "one IKE SA: {list}");
    assert_eq!(sa["initiator"], initiator != Initiator::Charon, "{list}");
    if initiator == Initiator::Traffic {
        let log = std::fs::read_to_string(e.lab.path("iked.log")).unwrap();
        let acquire = format!("iked: ACQUIRE for {THEIRS}: IKE SA ");
        assert!(log.contains(&acquire), "{log}");
    }
    assert_eq!(sa["nat"], true, "kernel-libipsec forces NAT-T: {list}");
    assert_eq!(sa["local"], format!("{OURS}:4500"), "IKE floated to 4500");
    let child = &sa["children"][0];
    assert_eq!(child["encap"], serde_json::json!([4500, 4500]), "{list}");
    let spi = |field: &str| child[field].as_str().unwrap().to_string();
    let (ours_in, ours_out) = (spi("inbound_spi"), spi("outbound_spi"));
    let charon_sas = e.lab.swanctl("--list-sas");
    assert!(
        charon_sas.contains("TUNNEL-in-UDP")
            && charon_sas.contains(&format!("in  {ours_out},"))
            && charon_sas.contains(&format!("out {ours_in},")),
        "{charon_sas}"
    );
    // The SAs iked installed are the gateway's.
    let stats = e.sites.stats("a");
    for spi in [&ours_in, &ours_out] {
        assert!(
            gateway_packets(&stats, spi).is_some(),
            "SA {spi} not in the gateway's region:\n{stats}\n{}",
            e.logs()
        );
    }

    // Traffic, both ways.
    e.sites.assert_ping("ha", HOST_B);
    e.sites.assert_ping("hb", HOST_A);
    assert_eq!(
        e.sites.tcp_transfer(MEGABYTES),
        u64::from(MEGABYTES) << 20,
        "TCP transfer incomplete\n{}",
        e.logs()
    );
    e.sites.stop_captures();

    // On the link: IKE (UDP 500, then 4500) and ESP in UDP 4500, nothing else in IP apart from
    // IPv6 neighbour discovery and MLD of gateway A's exception interface.
    let frames = tshark(
        &link,
        &[],
        "ip || ipv6",
        &[
            "frame.number",
            "ip.proto",
            "udp.srcport",
            "udp.dstport",
            "icmpv6.type",
        ],
    );
    let mut ike = 0;
    for line in &frames {
        let f: Vec<&str> = line.split('|').collect();
        let nd = f[4]
            .parse::<u8>()
            .is_ok_and(|t| (133..=137).contains(&t) || t == 143);
        let udp = f[1] == "17";
        let port = |p: &str| udp && f[2] == p && f[3] == p;
        assert!(
            port("500") || port("4500") || nd,
            "not IKE or ESP-in-UDP on the link: {line}"
        );
        ike += usize::from(port("500"));
    }
    let count = |filter: &str| tshark(&link, &[], filter, &["frame.number"]).len();
    let ike_4500 = count("udp.port == 4500 && isakmp");
    let esp_in_udp = count("udp.port == 4500 && esp");
    assert!(ike >= 2, "IKE_SA_INIT on port 500: {ike} frames");
    assert!(ike_4500 >= 2, "IKE_AUTH on 4500: {ike_4500} frames");
    assert!(
        esp_in_udp > 1000,
        "only {esp_in_udp} ESP-in-UDP frames for {MEGABYTES} MB"
    );

    // tshark decrypts every ESP packet, with iked's keys, to the hosts' ICMP and TCP.
    let keys = e.lab.iked_keys();
    assert_eq!(
        (keys[0].0.as_str(), keys[1].0.as_str()),
        (ours_in.as_str(), ours_out.as_str())
    );
    let mut uat = vec!["esp.enable_encryption_decode:TRUE".to_string()];
    for (spi, encr, _) in &keys {
        uat.push(format!(
            "uat:esp_sa:\"IPv4\",\"*\",\"*\",\"0x{spi}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{encr}\",\"NULL\",\"\""
        ));
    }
    let decrypted = |filter: &str| tshark(&link, &uat, filter, &["frame.number"]).len();
    assert_eq!(
        decrypted("esp && (icmp || tcp)"),
        esp_in_udp,
        "ESP packets tshark did not decrypt to ICMP or TCP"
    );
    let to_b = format!("esp.spi == 0x{ours_out} && ip.src == {HOST_A} && ip.dst == {HOST_B}");
    let to_a = format!("esp.spi == 0x{ours_in} && ip.src == {HOST_B} && ip.dst == {HOST_A}");
    assert!(
        decrypted(&format!("{to_b} && icmp")) >= 6,
        "pings and replies to host B"
    );
    assert!(
        decrypted(&format!("{to_a} && icmp")) >= 6,
        "pings and replies to host A"
    );
    assert!(
        decrypted(&format!("{to_b} && tcp.dstport == 5001")) > 1000,
        "the TCP transfer"
    );
    assert!(
        decrypted(&format!("{to_a} && tcp.srcport == 5001")) > 100,
        "its acknowledgements"
    );

    // The gateway's SA counters, charon's and the capture agree packet for packet. kernel-libipsec
    // reads its UDP socket in one thread: what the gateway sends faster than that overflows the
    // socket's receive buffer (TCP retransmits it), counted by charon's kernel.
    let captured = |spi: &str| count(&format!("esp.spi == 0x{spi}")) as u64;
    let (sent, received) = (captured(&ours_out), captured(&ours_in));
    let counters = || {
        let (stats, charon) = (e.sites.stats("a"), e.lab.swanctl("--list-sas"));
        let overflowed = udp_receive_buffer_errors(&e.sites.exec("gb", &["cat", "/proc/net/snmp"]));
        [
            gateway_packets(&stats, &ours_out),
            charon_packets(&charon, "in", &ours_out).map(|n| n + overflowed),
            gateway_packets(&stats, &ours_in),
            charon_packets(&charon, "out", &ours_in),
        ]
    };
    let expected = [Some(sent), Some(sent), Some(received), Some(received)];
    let deadline = Instant::now() + Duration::from_secs(5);
    while counters() != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        counters(),
        expected,
        "packets to host B (gateway; charon + its socket's overflows), to host A (gateway, charon)"
    );
    let stats = e.sites.stats("a");
    for line in stats.lines().filter(|l| l.starts_with("sa spi ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2).filter(|w| w[0].starts_with("drop_")) {
            assert_eq!(pair[1], "0", "an SA dropped packets: {line}");
        }
    }
    eprintln!(
        "{initiator:?} initiated: {ike} IKE frames on 500, {ike_4500} on 4500, {sent} ESP-in-UDP packets to host B, {received} back; {}",
        stats.lines().filter(|l| l.starts_with("sa spi ")).collect::<Vec<_>>().join("; ")
    );
    match initiator {
        Initiator::Ours => rekeys_under_traffic(&e),
        Initiator::Traffic => deleted_child_comes_back_on_traffic(&e),
        Initiator::Charon => iked_restarts_under_traffic(&mut e),
    }
}

/// Host A pings host B every 20 ms, 250 times, in the background.
fn pings_every_20_ms(e: &EndToEnd) -> std::process::Child {
    Command::new("ip")
        .args(["netns", "exec", &e.sites.ns("ha")])
        .args(["ping", "-n", "-c", "250", "-i", "0.02", "-W", "2", HOST_B])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The sequence numbers of the 250 pings that got no answer.
fn lost_pings(ping: std::process::Child) -> (Vec<u32>, String) {
    let out = ping.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let answered: Vec<u32> = text
        .lines()
        .filter_map(|l| l.split("icmp_seq=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    let lost = (1..=250).filter(|n| !answered.contains(n)).collect();
    (lost, text)
}

/// iked is killed under traffic and started again. The gateway goes on forwarding with the child
/// SA the dead iked installed (its SAs and rules stay in the region); the new iked keeps them
/// until charon has a new child SA with it (its new IKE SA's INITIAL_CONTACT makes charon drop
/// the old one, RFC 7296 2.4), then removes them; a `gateway load` while iked is down leaves
/// them alone. No outage: no two pings in a row are lost, at most two in all.
fn iked_restarts_under_traffic(e: &mut EndToEnd) {
    let ping = pings_every_20_ms(e);
    std::thread::sleep(Duration::from_millis(500));
    let list = e.lab.ctl("list");
    let spi = |field: &str| list[0]["children"][0][field].as_str().unwrap().to_string();
    let (old_in, old_out) = (spi("inbound_spi"), spi("outbound_spi"));
    e.lab.kill("iked");
    // The operator reloads the gateway's static configuration (it has none) while iked is down:
    // the dead iked's SAs and rules are not the file's, and stay for the next iked.
    let report = e.sites.load("a");
    assert!(
        report.contains("0 SAs added, 0 updated, 0 kept, 0 deleted; SPD unchanged; iked's 2 SAs and 2 rules left alone"),
        "{report}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    e.start_iked(false);
    let log = std::fs::read_to_string(e.lab.path("iked.log")).unwrap();
    assert!(
        log.contains("iked: 1 child SA(s) of a previous iked kept"),
        "{log}"
    );
    let answer = e.lab.ctl("initiate charon");
    assert!(answer.get("error").is_none(), "{answer}");
    e.lab.wait_for(
        "a new child SA, and the old SAs gone from the gateway",
        Duration::from_secs(15),
        || {
            let list = e.lab.ctl("list");
            let stats = e.sites.stats("a");
            list[0]["children"][0]["inbound_spi"]
                .as_str()
                .is_some_and(|spi| spi != old_in)
                && gateway_packets(&stats, &old_in).is_none()
                && gateway_packets(&stats, &old_out).is_none()
        },
    );
    let charon_sas = e.lab.swanctl("--list-sas");
    assert_eq!(
        charon_sas.matches("ESTABLISHED").count(),
        1,
        "charon dropped the old IKE SA: {charon_sas}"
    );
    let log = std::fs::read_to_string(e.lab.path("iked.log")).unwrap();
    assert!(
        log.contains(&format!(
            "iked: 1 child SA(s) of the previous iked with {THEIRS} removed"
        )),
        "{log}"
    );
    let (lost, text) = lost_pings(ping);
    assert!(
        lost.len() <= 2 && !lost.windows(2).any(|w| w[1] == w[0] + 1),
        "pings lost across the restart: {lost:?}\n{text}\n{}",
        e.logs()
    );
    let list = e.lab.ctl("list");
    let new_in = list[0]["children"][0]["inbound_spi"].as_str().unwrap();
    assert!(
        gateway_packets(&e.sites.stats("a"), new_in).is_some_and(|n| n > 0),
        "no traffic on the new SA {new_in}"
    );
}

/// Charon deletes the child SA and keeps the IKE SA: the gateway's trap rule stays, so host A's
/// next packet raises an ACQUIRE, and iked asks for a new child SA in the same IKE SA
/// (CREATE_CHILD_SA, RFC 7296 1.3.1) instead of a new IKE SA; traffic flows again on it.
fn deleted_child_comes_back_on_traffic(e: &EndToEnd) {
    let list = e.lab.ctl("list");
    let ike_spi = list[0]["spi_i"].as_str().unwrap().to_string();
    let old_in = list[0]["children"][0]["inbound_spi"]
        .as_str()
        .unwrap()
        .to_string();
    e.lab.swanctl("--terminate --child net --timeout 10");
    e.lab.wait_for(
        "the child SA deleted in iked",
        Duration::from_secs(10),
        || {
            let list = e.lab.ctl("list");
            list[0]["children"].as_array().is_some_and(Vec::is_empty)
        },
    );
    e.sites
        .wait_for_stats("a", "the old SAs to leave the gateway", |stats| {
            gateway_packets(stats, &old_in).is_none()
        });
    let out = e.sites.ping("ha", HOST_B, 1);
    assert!(!out.status.success(), "a ping passed without a child SA");
    e.lab
        .wait_for("a new child SA in iked", Duration::from_secs(15), || {
            let list = e.lab.ctl("list");
            list[0]["children"].as_array().is_some_and(|c| c.len() == 1)
        });
    let list = e.lab.ctl("list");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "one IKE SA: {list}");
    assert_eq!(
        list[0]["spi_i"],
        ike_spi.as_str(),
        "the same IKE SA: {list}"
    );
    let new_in = list[0]["children"][0]["inbound_spi"].as_str().unwrap();
    assert_ne!(new_in, old_in);
    let log = std::fs::read_to_string(e.lab.path("iked.log")).unwrap();
    let requested = format!("iked: ACQUIRE for {THEIRS}: child SA requested in IKE SA {ike_spi}");
    assert!(log.contains(&requested), "{log}");
    e.sites.assert_ping("ha", HOST_B);
    e.sites.assert_ping("hb", HOST_A);
    let stats = e.sites.stats("a");
    assert!(
        gateway_packets(&stats, new_in).is_some_and(|n| n >= 6),
        "the pings did not use the new SA {new_in}:\n{stats}"
    );
}

/// The child SA is rekeyed by iked, then by charon, while host A pings host B every 20 ms: no
/// ping is lost (make before break, RFC 7296 2.8), and the traffic moves to the new SAs, which
/// replace the old ones in the gateway's region.
fn rekeys_under_traffic(e: &EndToEnd) {
    let ping = pings_every_20_ms(e);
    let child = || {
        let list = e.lab.ctl("list");
        let spi = |field: &str| list[0]["children"][0][field].as_str().map(str::to_owned);
        (spi("inbound_spi"), spi("outbound_spi"), list)
    };
    for we_rekey in [true, false] {
        std::thread::sleep(Duration::from_millis(500));
        let (old_in, old_out, list) = child();
        let old_in = old_in.unwrap();
        if we_rekey {
            let spi = list[0]["spi_i"].as_str().unwrap();
            let answer = e.lab.ctl(&format!("rekey-child {spi} {old_in}"));
            assert!(answer.get("error").is_none(), "{answer}");
        } else {
            e.lab.swanctl("--rekey --child net");
        }
        e.lab.wait_for(
            "the old SAs to leave the gateway",
            Duration::from_secs(10),
            || {
                let (new_in, _, _) = child();
                let stats = e.sites.stats("a");
                new_in.is_some_and(|spi| spi != old_in)
                    && gateway_packets(&stats, &old_in).is_none()
                    && gateway_packets(&stats, old_out.as_deref().unwrap()).is_none()
            },
        );
    }
    let (lost, text) = lost_pings(ping);
    assert!(
        lost.is_empty(),
        "pings lost across the rekeys: {lost:?}\n{}\n{}\n{}",
        text.lines().rev().take(3).collect::<Vec<_>>().join("\n"),
        e.sites.stats("a"),
        e.logs()
    );
    let (new_in, new_out, _) = child();
    let stats = e.sites.stats("a");
    for spi in [new_in.unwrap(), new_out.unwrap()] {
        assert!(
            gateway_packets(&stats, &spi).is_some_and(|n| n > 0),
            "no traffic on the new SA {spi}:\n{stats}"
        );
    }
}

#[test]
fn iked_initiates_and_the_gateway_carries_ping_and_tcp() {
    host_to_host(Initiator::Ours, "i");
}

#[test]
fn charon_initiates_and_the_gateway_carries_ping_and_tcp() {
    host_to_host(Initiator::Charon, "r");
}

#[test]
fn traffic_makes_iked_initiate_and_the_gateway_carries_ping_and_tcp() {
    host_to_host(Initiator::Traffic, "t");
}
