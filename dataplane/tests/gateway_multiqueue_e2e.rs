//! End to end with several queues: gateway A runs two worker lcores, each with its own RX/TX
//! queue on both ports (net_af_packet with qpairs=2, whose kernel fanout spreads flows by hash;
//! net_af_xdp cannot give a veth two queues, see dataplane/README.md). Host A opens parallel TCP
//! connections to host B through the tunnel: every byte arrives, both of gateway A's lcores
//! encrypted part of the traffic, and the link between the gateways carries only ESP. Needs root,
//! DPDK and tshark (scripts/setup.sh); fails if any is missing.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::sites::{run, text, tshark, Sites, PYTHON};

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway");
/// Flows are spread by hash: with 16 of them, all on one queue by chance is a 1 in 32768 event.
const CONNECTIONS: usize = 16;
const KILOBYTES_EACH: usize = 512;

/// Host B: accepts CONNECTIONS connections on port 5002 and prints the bytes each delivered. The
/// timeouts leave room for TCP's retransmission backoff: on a loaded machine the af_packet rings
/// drop bursts now and then, and three connections of 16 were once idle for 30 s.
const SERVER: &str = r#"
import socket, sys, threading
n = int(sys.argv[1])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("198.18.2.2", 5002)); srv.listen(n); srv.settimeout(60)
totals = []
def drain(conn):
    conn.settimeout(60)
    total = 0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        total += len(data)
    totals.append(total)
threads = []
for _ in range(n):
    conn, _ = srv.accept()
    t = threading.Thread(target=drain, args=(conn,)); t.start(); threads.append(t)
for t in threads:
    t.join()
print(" ".join(map(str, sorted(totals))))
"#;

/// Host A: CONNECTIONS connections at once (each from its own source port), KILOBYTES_EACH each.
const CLIENT: &str = r#"
import socket, sys, threading
n, kb = int(sys.argv[1]), int(sys.argv[2])
chunk = bytes(range(256)) * 256
def send():
    s = socket.create_connection(("198.18.2.2", 5002), timeout=60)
    for _ in range(kb // 64):
        s.sendall(chunk)
    s.close()
threads = [threading.Thread(target=send) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
"#;

/// The `counter` of each `lcore` line of `gateway stats`.
fn per_lcore(stats: &str, counter: &str) -> Vec<(u32, u64)> {
    stats
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let value = words.iter().position(|w| *w == counter).and_then(|i| words.get(i + 1)?.parse().ok())?;
            (words.first() == Some(&"lcore")).then(|| (words[1].parse().unwrap_or(u32::MAX), value))
        })
        .collect()
}

#[test]
fn two_lcores_with_a_queue_each_share_many_flows() {
    let mut s = Sites::up("icmpmq", Path::new(GATEWAY));
    for g in ["a", "b"] {
        let mut config = s.topology_config(g, "aes-gcm-256");
        if g == "a" {
            for port in ["net_af_packet0,iface=p0", "net_af_packet1,iface=u0"] {
                assert!(config.contains(port), "{config}");
                config = config.replace(port, &format!("{port},qpairs=2"));
            }
        }
        std::fs::write(s.config(g), config).unwrap();
    }
    // Gateway A: main lcore 0 and workers 1 and 2 over the machine's two CPUs (queues = 0 in the
    // configuration: one queue per worker).
    s.start_gateway_on(0, &["--lcores", "0@0,1@1,2@0", "--main-lcore", "0"]);
    s.start_gateway(1);
    for g in ["a", "b"] {
        assert!(s.load(g).contains("6 SAs added"));
    }
    let log = std::fs::read_to_string(s.log_path("a")).unwrap();
    assert!(log.contains("2 worker lcore(s), 2 queue(s) per port"), "{log}");
    // Both ends: DPDK's af_packet transmits past the capture hooks, so each end sees what arrives.
    let link = ["ga", "gb"].map(|n| s.capture(n, "u0", &format!("link-{n}")));
    s.assert_ping("ha", "198.18.2.2");

    let server = Command::new("ip")
        .args(["netns", "exec", &s.ns("hb"), PYTHON, "-c", SERVER, &CONNECTIONS.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    run(Command::new("ip").args(["netns", "exec", &s.ns("ha"), "timeout", "150", PYTHON, "-c", CLIENT]).args([
        CONNECTIONS.to_string(),
        KILOBYTES_EACH.to_string(),
    ]));
    let received = text(&server.wait_with_output().unwrap());
    let expected = vec![(KILOBYTES_EACH << 10).to_string(); CONNECTIONS].join(" ");
    assert_eq!(received.trim(), expected, "bytes per connection");

    // The statistics are published every 250 ms, and the transfer can be over in less: a
    // snapshot from its middle is passed over.
    let stats = s.wait_for_stats("a", "both lcores encrypted, more than 1000 packets in all", |stats| {
        let encrypted = per_lcore(stats, "encrypted");
        encrypted.len() == 2 && encrypted.iter().all(|(_, n)| *n > 0) && encrypted.iter().map(|(_, n)| n).sum::<u64>() > 1000
    });
    let encrypted = per_lcore(&stats, "encrypted");
    eprintln!("gateway A, packets encrypted per lcore: {encrypted:?}; received per lcore: {:?}", per_lcore(&stats, "rx"));

    s.stop_captures();
    let clear: Vec<String> = link.iter().flat_map(|p| tshark(p, &[], "(ip || ipv6) && !esp && !(icmpv6.type >= 133 && icmpv6.type <= 137) && !(icmpv6.type == 143)", &["frame.number"])).collect();
    assert!(clear.is_empty(), "cleartext on the link: {clear:?}");
}
