//! Negotiation discovery end to end ([MS-IKEE] 4.1): two `gateway` processes on DPDK
//! (net_af_packet on veths, no hugepages) between host A (the clients, behind gateway A, which has
//! outbound negotiation discovery rules) and host B (the server, behind gateway B), in the
//! namespaces of scripts/topology.sh (198.18.0.0/15 only). The test installs the SAs with
//! `gateway load`, standing in for the Quick Mode negotiation the ACQUIRE asks for.
//!
//! - Figure 15: gateway B is in boundary mode. A TCP connection from host A flows in cleartext,
//!   then, once the SAs exist, under ESP: the same connection, no reset; on the link no cleartext
//!   packet of it follows the first ESP one. A host without IPsec (host A's second address, which
//!   gateway A bypasses) keeps talking in cleartext to the boundary-mode server meanwhile.
//! - Figure 16: gateway B requires protection. The cleartext SYNs are dropped (counted by the
//!   rule) until the SAs exist; then the connection is set up under ESP.
//!
//! Needs root, DPDK and tshark (scripts/setup.sh); fails if any is missing. One scenario at a time.

mod common;

use common::sites::{run, signal_and_wait, text, Sites, PYTHON};
use std::io::{BufRead, BufReader, Write};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway");

/// Host A's address with IPsec (gateway A applies negotiation discovery to it) and without.
const CLIENT: &str = "198.18.1.2";
const PLAIN_CLIENT: &str = "198.18.1.3";
const SERVER: &str = "198.18.2.2";
const MAC_HOST_A: &str = "02:00:00:01:00:02";

/// The keys of the test's SAs: bytes (seed * 17 + i) mod 256, AES-256-GCM key and salt.
fn key(seed: u32) -> String {
    (0..36).map(|i| format!("{:02x}", (seed * 17 + i) % 256)).collect()
}

/// Gateway B's inbound rule for host A's traffic.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    /// Boundary mode: cleartext connections are accepted (figure 15).
    Boundary,
    /// All inbound traffic protected (figure 16).
    RequiresProtection,
}

/// Which SAs a configuration holds: none, the inbound one (installed first on both sides, so
/// that no ESP packet arrives before its SA), or both.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sas {
    None,
    Inbound,
    Both,
}

/// A rule; rules of one priority are evaluated in the file's order.
fn policy(direction: &str, src: &str, dst: &str, action: &str, extra: &str) -> String {
    format!("[[policies]]\ndirection = \"{direction}\"\nsrc = \"{src}\"\ndst = \"{dst}\"\naction = \"{action}\"\n{extra}\n")
}

fn tunnel_rule(direction: &str, src: &str, dst: &str, reqid: u32, tunnel: [&str; 2], flags: &str) -> String {
    let extra = format!("reqid = {reqid}\nmode = \"tunnel\"\ntunnel = [\"{}\", \"{}\"]\n{flags}", tunnel[0], tunnel[1]);
    policy(direction, src, dst, "protect", &extra)
}

/// A tunnel-mode AES-256-GCM SA with its local and remote traffic selectors.
fn sa(direction: &str, spi: u32, src: &str, dst: &str, reqid: u32, [local, remote]: [&str; 2], seed: u32) -> String {
    format!(
        "[[sas]]\ndirection = \"{direction}\"\nspi = {spi}\nmode = \"tunnel\"\nsrc = \"{src}\"\ndst = \"{dst}\"\nreqid = {reqid}\n\
         local = \"{local}\"\nremote = \"{remote}\"\nsuite = \"aes-gcm-256\"\nenc_key = \"{}\"\n",
        key(seed)
    )
}

/// The rules and SAs of gateway `g` ("a" or "b"), after the ports, routes and neighbours of
/// scripts/topology.sh.
fn nd_config(g: &str, server: Server, sas: Sas) -> String {
    const A: &str = "198.18.0.1";
    const B: &str = "198.18.0.2";
    let nd = "negotiation_discovery = true";
    let mut c = String::from("[negotiation_discovery]\nenabled = true\nflows = 10000\nidle_timeout_secs = 60\n\n");
    let (out_sa, in_sa);
    if g == "a" {
        c += &format!("[[neighbours]]\naddress = \"{PLAIN_CLIENT}\"\nmac = \"{MAC_HOST_A}\"\n\n");
        // The host without IPsec: gateway A forwards its traffic as it is.
        c += &policy("out", PLAIN_CLIENT, "198.18.2.0/24", "bypass", "");
        c += &policy("in", "198.18.2.0/24", PLAIN_CLIENT, "bypass", "");
        // The negotiation discovery client (3.7.4.1), and its answers (3.7.4.2).
        c += &tunnel_rule("out", CLIENT, "198.18.2.0/24", 1, [A, B], nd);
        c += &tunnel_rule("in", "198.18.2.0/24", CLIENT, 2, [B, A], nd);
        out_sa = sa("out", 0x2001, A, B, 1, [CLIENT, "198.18.2.0/24"], 1);
        in_sa = sa("in", 0x2002, B, A, 2, [CLIENT, "198.18.2.0/24"], 2);
    } else {
        let inbound = match server {
            Server::Boundary => format!("{nd}\nboundary = true"),
            Server::RequiresProtection => nd.to_owned(),
        };
        c += &tunnel_rule("in", "198.18.1.0/24", "198.18.2.0/24", 2, [A, B], &inbound);
        // Answers to the IPsec client use the SA negotiated with it; other peers have none and
        // stay in cleartext (their ACQUIREs go unanswered).
        c += &tunnel_rule("out", "198.18.2.0/24", CLIENT, 1, [B, A], nd);
        c += &tunnel_rule("out", "198.18.2.0/24", "198.18.1.0/24", 3, [B, A], nd);
        out_sa = sa("out", 0x2002, B, A, 1, ["198.18.2.0/24", CLIENT], 2);
        in_sa = sa("in", 0x2001, A, B, 2, ["198.18.2.0/24", CLIENT], 1);
    }
    if sas != Sas::None {
        c += &in_sa;
    }
    if sas == Sas::Both {
        c += &out_sa;
    }
    c
}

/// A line-oriented TCP client in host A's namespace (see CLIENT_SCRIPT).
struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    /// Lets the client send its second batch of messages.
    fn resume(&mut self) {
        self.stdin.write_all(b"go\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for the client to exit; returns its last line.
    fn finish(mut self) -> String {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "TCP client failed ({status}): {rest}");
        rest.lines().last().unwrap_or_default().to_owned()
    }
}

/// Echo server: accepts `count` connections one after the other and echoes lines; prints each
/// connection's peer and message count. A reset connection makes it fail.
const SERVER_SCRIPT: &str = r#"
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(4); srv.settimeout(40)
for _ in range(int(sys.argv[3])):
    conn, peer = srv.accept(); conn.settimeout(40)
    n = 0
    for line in conn.makefile("rb"):
        conn.sendall(line); n += 1
    print("connection %s:%d messages %d" % (peer[0], peer[1], n), flush=True)
    conn.close()
"#;

/// Client: one connection; sends `first` lines (each echoed), prints its local port, and with
/// `second` > 0 waits for a line on stdin and sends `second` more on the same connection.
const CLIENT_SCRIPT: &str = r#"
import socket, sys, time
src, dst, port, first, second = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.create_connection((dst, port), timeout=30, source_address=(src, 0))
r = s.makefile("rb")
def exchange(i):
    msg = b"message %d %s\n" % (i, b"x" * 100)
    s.sendall(msg)
    assert r.readline() == msg, "echo %d" % i
    time.sleep(0.01)
for i in range(first):
    exchange(i)
print("local port %d" % s.getsockname()[1], flush=True)
if second:
    sys.stdin.readline()
    for i in range(first, first + second):
        exchange(i)
s.close()
print("done %d" % (first + second), flush=True)
"#;

/// The sites (common::sites: namespaces, gateways, captures; all torn down on drop) and gateway
/// B's inbound rule.
struct NdSites {
    sites: Sites,
    server: Server,
}

impl Deref for NdSites {
    type Target = Sites;
    fn deref(&self) -> &Sites {
        &self.sites
    }
}

impl DerefMut for NdSites {
    fn deref_mut(&mut self) -> &mut Sites {
        &mut self.sites
    }
}

impl NdSites {
    fn up(server: Server) -> NdSites {
        let sites = Sites::up("nd", Path::new(GATEWAY));
        let mut sites = NdSites { sites, server };
        run(Command::new("ip").args(["netns", "exec", &sites.ns("ha"), "ip", "addr", "add", &format!("{PLAIN_CLIENT}/24"), "dev", "eth0"]));
        sites.configure(Sas::None);
        for (i, g) in ["a", "b"].into_iter().enumerate() {
            sites.start_gateway(i);
            sites.load(g);
        }
        sites
    }

    /// Writes both gateways' configurations with `sas`: topology.sh's ports, routes and
    /// neighbours, and this test's rules and SAs.
    fn configure(&self, sas: Sas) {
        for g in ["a", "b"] {
            let head = self.topology_config_head(g);
            std::fs::write(self.config(g), format!("{head}\n{}", nd_config(g, self.server, sas))).unwrap();
        }
    }

    /// Installs the SAs as a completed negotiation would: inbound on both sides, then outbound.
    /// Gateway A's inbound SA is loaded by a writer that holds on and prints the events the
    /// dataplane queued: returns those lines.
    fn install_sas(&self) -> Vec<String> {
        self.configure(Sas::Inbound);
        let events = self.load_printing_events("a");
        self.load("b");
        self.configure(Sas::Both);
        for g in ["a", "b"] {
            let report = self.load(g);
            assert!(report.contains("1 SAs added, 0 updated, 1 kept, 0 deleted; SPD unchanged"), "{report}");
        }
        events
    }

    /// `gateway load --hold`: loads gateway `g`'s file, then prints the event ring's contents.
    fn load_printing_events(&self, g: &str) -> Vec<String> {
        let mut writer = Command::new(GATEWAY).arg("load").arg(self.config(g)).arg("--hold").stdout(Stdio::piped()).spawn().unwrap();
        let stdout = BufReader::new(writer.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut lines = Vec::new();
        // The events already queued are printed within the writer's first poll (100 ms).
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(1500)) {
            lines.push(line);
        }
        signal_and_wait(&mut writer, "INT");
        lines
    }

    /// Starts an echo server on host B for `connections` connections to `port`.
    fn server(&self, port: u16, connections: u32) -> Child {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("hb"), "timeout", "60", PYTHON, "-c", SERVER_SCRIPT, SERVER, &port.to_string(), &connections.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        child
    }

    fn client(&self, src: &str, port: u16, first: u32, second: u32) -> Client {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns("ha"), "timeout", "60", PYTHON, "-c", CLIENT_SCRIPT, src, SERVER])
            .args([port.to_string(), first.to_string(), second.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Client { child, stdin, stdout }
    }

    /// Captures what arrives at each end of the link between the gateways (DPDK's af_packet
    /// transmits past the capture hooks): gateway B's file holds A to B, gateway A's B to A.
    fn capture_link(&mut self) -> [PathBuf; 2] {
        ["gb", "ga"].map(|n| self.capture(n, "u0", &format!("link-{n}")))
    }
}

/// The value after `key` on the first line starting with `prefix` (0 if absent).
fn field(stats: &str, prefix: &str, key: &str) -> u64 {
    let Some(line) = stats.lines().find(|l| l.starts_with(prefix)) else { return 0 };
    let words: Vec<&str> = line.split_whitespace().collect();
    words.iter().position(|w| *w == key).and_then(|i| words.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The counters line of the rule described as `rule` (e.g. `in 198.18.1.0/24 -> 198.18.2.0/24`).
fn rule_count(stats: &str, rule: &str, key: &str) -> u64 {
    stats.lines().find(|l| l.starts_with("nd rule ") && l.contains(rule)).map_or(0, |l| field(l, "nd rule", key))
}

const A_OUT: &str = "out 198.18.1.2/32 -> 198.18.2.0/24";
const B_IN: &str = "in 198.18.1.0/24 -> 198.18.2.0/24";
const B_OUT_CLIENT: &str = "out 198.18.2.0/24 -> 198.18.1.2/32";
const B_OUT_OTHERS: &str = "out 198.18.2.0/24 -> 198.18.1.0/24";

/// The frames of `pcap` matching `filter`, as `fields` joined by '|'.
fn tshark(pcap: &Path, decrypt: bool, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut options = Vec::new();
    if decrypt {
        options.push("esp.enable_encryption_decode:TRUE".to_string());
        for (spi, seed) in [(0x2001, 1), (0x2002, 2)] {
            options.push(format!("uat:esp_sa:\"IPv4\",\"*\",\"*\",\"{spi:#010x}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{}\",\"NULL\",\"\"", key(seed)));
        }
    }
    common::sites::tshark(pcap, &options, filter, fields)
}

/// In one direction of the link: the connection on `port` was first in cleartext, then in ESP
/// (which tshark decrypts to that connection), never in cleartext after the first ESP packet, and
/// never reset. Returns (cleartext, ESP) packet counts.
fn assert_cleartext_then_esp(pcap: &Path, port: u16) -> (usize, usize) {
    let frames = tshark(pcap, false, &format!("esp || tcp.port == {port}"), &["frame.number", "esp.spi"]);
    let is_esp: Vec<bool> = frames.iter().map(|l| !l.split('|').nth(1).unwrap_or("").is_empty()).collect();
    let first_esp = is_esp.iter().position(|e| *e).unwrap_or_else(|| panic!("{}: no ESP: {frames:?}", pcap.display()));
    assert!(first_esp > 0, "{}: no cleartext before ESP: {frames:?}", pcap.display());
    let late = frames.iter().zip(&is_esp).skip(first_esp).filter(|(_, e)| !**e).map(|(f, _)| f.clone()).collect::<Vec<_>>();
    assert!(late.is_empty(), "{}: cleartext after the first ESP packet (frame|spi): {late:?}", pcap.display());
    let inner = tshark(pcap, true, &format!("esp && tcp.port == {port}"), &["frame.number"]).len();
    let esp = is_esp.iter().filter(|e| **e).count();
    assert_eq!(inner, esp, "{}: ESP packets that are not the connection", pcap.display());
    let resets = tshark(pcap, true, &format!("tcp.port == {port} && tcp.flags.reset == 1"), &["frame.number"]);
    assert!(resets.is_empty(), "{}: connection reset: {resets:?}", pcap.display());
    (first_esp, esp)
}

/// [MS-IKEE] 4.1, figure 15, and a host without IPsec next to it.
#[test]
fn figure_15_cleartext_until_the_sa_then_esp_on_the_same_connection() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = NdSites::up(Server::Boundary);
    let pcaps = s.capture_link();
    let server = s.server(5001, 1);
    let mut client = s.client(CLIENT, 5001, 20, 50);
    let port_line = client.line();
    assert!(port_line.starts_with("local port "), "client: {port_line}");

    // Before the SAs: gateway A sent cleartext and triggered IKE once for the flow; gateway B (in
    // boundary mode) accepted the cleartext connection.
    let a = s.wait_for_stats("a", "cleartext sent and an ACQUIRE", |t| rule_count(t, A_OUT, "cleartext_sent") >= 20 && field(t, "nd cleartext_sent", "acquire_sent") >= 1);
    assert_eq!(field(&a, "nd cleartext_sent", "acquire_sent"), 1, "one ACQUIRE for the one flow:\n{a}");
    assert!(field(&a, "nd cleartext_sent", "acquire_suppressed") >= 19, "{a}");
    assert_eq!(field(&a, "nd flows", "secure_flows"), 0, "{a}");
    let b = s.wait_for_stats("b", "cleartext accepted and answered", |t| rule_count(t, B_IN, "cleartext_accepted") >= 20 && rule_count(t, B_OUT_CLIENT, "cleartext_sent") >= 20);
    assert_eq!(rule_count(&b, B_IN, "cleartext_dropped"), 0, "{b}");

    // The negotiation completes (the test installs its SAs); the ACQUIRE was in gateway A's event
    // ring, for this flow.
    let events = s.install_sas();
    let local_port = port_line.trim_start_matches("local port ");
    let rule_id = a.lines().find(|l| l.starts_with("nd rule ") && l.contains(A_OUT)).and_then(|l| l.split_whitespace().nth(2)).unwrap();
    let acquire = format!(
        "Acquire {{ policy_id: {rule_id}, flow: FlowTuple {{ src: {CLIENT}, dst: {SERVER}, proto: 6, src_port: {local_port}, dst_port: 5001 }}, \
         flags: ExchangeInfoFlags {{ nd_boundary: false, guarantee_encryption: false }} }}"
    );
    assert!(events.iter().any(|e| e.ends_with(&acquire)), "no {acquire} in {events:?}");

    // The same connection continues under ESP.
    client.resume();
    assert_eq!(client.finish(), "done 70");
    let served = text(&server.wait_with_output().unwrap());
    assert_eq!(served.trim(), format!("connection {CLIENT}:{local_port} messages 70"), "one connection, all messages");
    let a = s.wait_for_stats("a", "a Secure flow", |t| field(t, "nd flows", "secure_flows") >= 1);
    assert_eq!(rule_count(&a, A_OUT, "held"), 0, "{a}");

    // A host without IPsec keeps talking in cleartext to the boundary-mode server meanwhile.
    let server = s.server(5003, 1);
    let plain = s.client(PLAIN_CLIENT, 5003, 20, 0);
    assert_eq!(plain.finish(), "done 20");
    assert!(text(&server.wait_with_output().unwrap()).starts_with(&format!("connection {PLAIN_CLIENT}:")));
    let b = s.wait_for_stats("b", "cleartext to the host without IPsec", |t| rule_count(t, B_OUT_OTHERS, "cleartext_sent") >= 20);
    assert!(field(&b, "nd flows", "secure_flows") >= 1, "{b}");
    s.stop_captures();

    // On the link, in each direction: cleartext, then ESP, never cleartext again.
    for pcap in &pcaps {
        let (clear, esp) = assert_cleartext_then_esp(pcap, 5001);
        eprintln!("{}: {clear} cleartext packets of the connection, then {esp} ESP", pcap.display());
        assert!(clear >= 20 && esp >= 50, "{}: {clear} cleartext, {esp} ESP packets", pcap.display());
        let plain = tshark(pcap, false, "tcp.port == 5003 && !esp", &["frame.number"]).len();
        assert!(plain >= 20, "{}: {plain} cleartext packets of the host without IPsec", pcap.display());
    }
}

/// [MS-IKEE] 4.1, figure 16: the server side requires protection.
#[test]
fn figure_16_cleartext_syns_are_dropped_until_the_sa_exists() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = NdSites::up(Server::RequiresProtection);
    let server = s.server(5002, 1);
    let client = s.client(CLIENT, 5002, 10, 0);
    // The SYN goes out in cleartext (and triggers IKE); gateway B discards it, by its rule.
    let b = s.wait_for_stats("b", "a cleartext SYN dropped by the rule", |t| rule_count(t, B_IN, "cleartext_dropped") >= 1);
    assert_eq!(rule_count(&b, B_IN, "cleartext_accepted"), 0, "{b}");
    assert!(b.lines().any(|l| l.starts_with("drop cleartext_for_protected ")), "{b}");
    let a = s.wait_for_stats("a", "the cleartext SYN and its ACQUIRE", |t| rule_count(t, A_OUT, "cleartext_sent") >= 1 && field(t, "nd cleartext_sent", "acquire_sent") >= 1);
    assert_eq!(field(&a, "nd cleartext_sent", "acquire_sent"), 1, "{a}");
    // The SAs exist: the retransmitted SYN goes under ESP and the connection is set up.
    s.install_sas();
    assert_eq!(client.finish(), "done 10");
    assert!(text(&server.wait_with_output().unwrap()).contains(&format!("connection {CLIENT}:")));
    let b = s.wait_for_stats("b", "a Secure flow", |t| field(t, "nd flows", "secure_flows") >= 1);
    assert_eq!(rule_count(&b, B_IN, "cleartext_accepted"), 0, "no cleartext was ever accepted:\n{b}");
}
