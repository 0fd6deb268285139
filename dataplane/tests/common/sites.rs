//! The end-to-end tests' sites: the namespaces of scripts/topology.sh (PREFIX-ha, -ga, -gb, -hb;
//! 198.18.0.0/15 and 2001:2::/48 only), `gateway` processes on DPDK in them (net_af_packet on
//! the veths, no hugepages), captures with dumpcap and reading them with tshark, and a TCP
//! transfer between the hosts. Everything is removed on drop, also when a test fails.
//!
//! Standard library only: control's end-to-end test with strongSwan uses this file too (by
//! `#[path]`), handing in the path of the `gateway` binary.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const TOPOLOGY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/topology.sh");
/// Debian's Python, which has python3-scapy (another python3 may come first in PATH).
pub const PYTHON: &str = "/usr/bin/python3";

/// Runs `cmd`; fails the test with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends `signal` (INT, TERM, KILL) and waits up to 10 s for the process to end, then kills it.
pub fn signal_and_wait(child: &mut Child, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The frames of `pcap` that match `filter`, as `fields` joined by '|'; `options` are tshark
/// preferences (`-o`), e.g. ESP keys.
pub fn tshark(pcap: &Path, options: &[String], filter: &str, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(pcap);
    for o in options {
        cmd.args(["-o", o]);
    }
    cmd.args(["-Y", filter, "-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    text(&run(&mut cmd)).lines().map(str::to_owned).collect()
}

/// The four namespaces, the gateways (a: index 0, b: 1) and the captures.
#[derive(Debug)]
pub struct Sites {
    pub prefix: String,
    pub work: PathBuf,
    gateway: PathBuf,
    pub gateways: [Option<Child>; 2],
    captures: Vec<Child>,
}

impl Sites {
    /// Creates the namespaces, named `tag` + pid + a counter; `gateway` is the binary to run.
    pub fn up(tag: &str, gateway: &Path) -> Sites {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let prefix = format!(
            "{tag}{}{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let work = std::env::temp_dir().join(format!("{prefix}.work"));
        std::fs::create_dir_all(&work).unwrap();
        let sites = Sites {
            prefix,
            work,
            gateway: gateway.to_owned(),
            gateways: [None, None],
            captures: Vec::new(),
        };
        run(Command::new(TOPOLOGY).args(["up", &sites.prefix]));
        sites
    }

    pub fn ns(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }

    /// Gateway `g`'s ("a" or "b") configuration file.
    pub fn config(&self, g: &str) -> PathBuf {
        self.work.join(format!("g{g}.toml"))
    }

    /// topology.sh's configuration of gateway `g` with `suite`: ports, routes, neighbours, then
    /// its SPD rules and static SAs.
    pub fn topology_config(&self, g: &str, suite: &str) -> String {
        text(&run(Command::new(TOPOLOGY).args([
            "config",
            &self.prefix,
            g,
            suite,
        ])))
    }

    /// The part of topology.sh's configuration before the SPD rules and SAs.
    pub fn topology_config_head(&self, g: &str) -> String {
        let base = self.topology_config(g, "aes-gcm-256");
        base[..base
            .find("[[policies]]")
            .expect("topology.sh config has rules")]
            .to_owned()
    }

    /// Where topology.sh's configuration puts gateway `g`'s statistics and region.
    pub fn stats_path(&self, g: &str) -> PathBuf {
        PathBuf::from(format!("/tmp/{}-g{g}.stats", self.prefix))
    }

    pub fn region_path(&self, g: &str) -> PathBuf {
        PathBuf::from(format!("/dev/shm/{}-g{g}.region", self.prefix))
    }

    pub fn log_path(&self, g: &str) -> PathBuf {
        self.work.join(format!("g{g}.log"))
    }

    /// Starts gateway `i` (0: a, 1: b) with its configuration file and waits until it publishes
    /// statistics. A's worker runs on lcore 1, B's on lcore 0: one core each.
    pub fn start_gateway(&mut self, i: usize) {
        let main_lcore = ["0", "1"][i];
        self.start_gateway_on(i, &["-l", "0,1", "--main-lcore", main_lcore]);
    }

    /// Starts gateway `i` with `lcores`, the EAL's lcore arguments (e.g. `--lcores`).
    pub fn start_gateway_on(&mut self, i: usize, lcores: &[&str]) {
        let g = ["a", "b"][i];
        let _ = std::fs::remove_file(self.stats_path(g));
        let log = std::fs::File::create(self.log_path(g)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(&format!("g{g}"))])
            .arg(&self.gateway)
            .arg("run")
            .arg(self.config(g))
            .arg("--")
            .args(lcores)
            .args([
                "--no-huge",
                "--no-pci",
                "-m",
                "512",
                "--no-shconf",
                "--no-telemetry",
            ])
            .arg(format!("--file-prefix={}-{g}", self.prefix))
            .arg("--log-level=pmd.net.tap:error")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.gateways[i] = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.stats_path(g).exists() {
            if let Some(status) = self.gateways[i].as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "gateway {g} exited ({status}): {}",
                    std::fs::read_to_string(self.log_path(g)).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "gateway {g} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops gateway `i` with `signal` (INT: orderly; KILL: a crash).
    pub fn stop_gateway(&mut self, i: usize, signal: &str) {
        if let Some(mut child) = self.gateways[i].take() {
            signal_and_wait(&mut child, signal);
        }
    }

    /// `gateway load` of gateway `g`'s file; returns its report.
    pub fn load(&self, g: &str) -> String {
        text(&run(Command::new(&self.gateway)
            .arg("load")
            .arg(self.config(g))))
    }

    /// `gateway stats` of gateway `g`: its statistics and its SAs' counters.
    pub fn stats(&self, g: &str) -> String {
        text(&run(Command::new(&self.gateway)
            .arg("stats")
            .arg(self.config(g))))
    }

    /// Polls gateway `g`'s statistics until `done` holds (they are published every 250 ms).
    pub fn wait_for_stats(&self, g: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stats = self.stats(g);
            if done(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "gateway {g}: {what}:\n{stats}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn exec(&self, n: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(n)])
            .args(args)
            .output()
            .unwrap()
    }

    pub fn ping(&self, n: &str, dst: &str, count: u32) -> Output {
        let count = count.to_string();
        self.exec(
            n,
            &["ping", "-n", "-c", &count, "-i", "0.1", "-W", "2", dst],
        )
    }

    /// Three pings from namespace `n` to `dst`, all answered.
    pub fn assert_ping(&self, n: &str, dst: &str) {
        let out = self.ping(n, dst, 3);
        assert!(out.status.success(), "ping {dst} from {n}: {}", text(&out));
        assert!(text(&out).contains(" 0% packet loss"), "{}", text(&out));
    }

    /// Starts capturing what arrives on `iface` in namespace `n` into work/`name`.pcapng.
    pub fn capture(&mut self, n: &str, iface: &str, name: &str) -> PathBuf {
        let path = self.work.join(format!("{name}.pcapng"));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(n),
                "dumpcap",
                "-q",
                "-B",
                "16",
                "-i",
                iface,
                "-w",
            ])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dumpcap (tshark package) must be installed");
        self.captures.push(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < deadline, "dumpcap did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        path
    }

    pub fn stop_captures(&mut self) {
        std::thread::sleep(Duration::from_millis(300));
        for mut c in self.captures.drain(..) {
            signal_and_wait(&mut c, "INT");
        }
    }

    /// Sends `megabytes` over TCP from host A to host B (198.18.2.2 port 5001); returns what
    /// host B received.
    pub fn tcp_transfer(&self, megabytes: u32) -> u64 {
        let server = Command::new("ip")
            .args(["netns", "exec", &self.ns("hb"), PYTHON, "-c", TCP_SERVER])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let mb = megabytes.to_string();
        let client = self.exec("ha", &["timeout", "60", PYTHON, "-c", TCP_CLIENT, &mb]);
        assert!(
            client.status.success(),
            "TCP client: {}",
            String::from_utf8_lossy(&client.stderr)
        );
        let out = server.wait_with_output().unwrap();
        text(&out).trim().parse().unwrap_or(0)
    }
}

const TCP_SERVER: &str = r#"
import socket
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("198.18.2.2", 5001)); srv.listen(1); srv.settimeout(30)
conn, _ = srv.accept(); conn.settimeout(30)
total = 0
while True:
    data = conn.recv(1 << 16)
    if not data:
        break
    total += len(data)
print(total)
"#;

const TCP_CLIENT: &str = r#"
import socket, sys
s = socket.create_connection(("198.18.2.2", 5001), timeout=30)
chunk = bytes(range(256)) * 256
for _ in range(int(sys.argv[1]) * 16):
    s.sendall(chunk)
s.close()
"#;

impl Drop for Sites {
    fn drop(&mut self) {
        self.stop_captures();
        self.stop_gateway(0, "INT");
        self.stop_gateway(1, "INT");
        let _ = Command::new(TOPOLOGY).args(["down", &self.prefix]).status();
        for g in ["a", "b"] {
            let _ = std::fs::remove_file(self.region_path(g));
            let _ = std::fs::remove_file(self.stats_path(g));
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}
