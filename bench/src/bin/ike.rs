//! IKE SAs established per second with a responder under load, and p50/p99 setup latency
//! (IKE_SA_INIT request to child SA up): our `iked` against strongSwan's charon, the same
//! initiator (this binary's load generator, the IKEv2 engine of `control`) for both, ECP-256 and
//! MODP-2048. Needs root (network namespaces), charon (scripts/setup.sh) and `iked` built next to
//! this binary (`cargo build --release -p control -p bench`).
//!
//! `cargo run --release -p bench --bin ike -- [COUNT] [CONCURRENCY]`
use control::crypto::{Prf, SkEncryption, SystemRng};
use control::ikev2::{
    ChildConfig, Engine, EngineConfig, Event, IkeProposal, PeerConfig, RandomSpis,
};
use control::wire::ikev2::{DhGroup, IdType, Identification, TrafficSelector};
use hdrhistogram::Histogram;
use rustix::time::{clock_gettime, ClockId};
use shared::sa::{AesKeySize, Suite};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const INITIATOR: &str = "198.18.0.1";
const RESPONDER: &str = "198.18.0.2";
const PSK: &str = "benchmark pre-shared key 0123456789";
const NON_ESP_MARKER: [u8; 4] = [0; 4];

fn sh(command: &str) {
    let status = Command::new("sh").arg("-c").arg(command).status().unwrap();
    assert!(status.success(), "{command}");
}

fn ts(net: u8) -> TrafficSelector {
    TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: u16::MAX,
        start: IpAddr::from([198, 18, net, 0]),
        end: IpAddr::from([198, 18, net, 255]),
    }
}

fn group(name: &str) -> DhGroup {
    if name == "modp2048" {
        DhGroup::Modp2048
    } else {
        DhGroup::Ecp256
    }
}

/// The load generator: run inside the initiator's namespace; prints "rate p50_ms p99_ms failed
/// cpu_ms_per_sa" (the last its own CPU time, all threads, per established SA).
fn load(group_name: &str, count: usize, concurrency: usize) {
    let peer = PeerConfig {
        name: "responder".into(),
        remote_addr: Some(RESPONDER.parse().unwrap()),
        local_id: Identification {
            kind: IdType::Fqdn,
            data: b"initiator.example".to_vec(),
        },
        remote_id: Identification {
            kind: IdType::Fqdn,
            data: b"responder.example".to_vec(),
        },
        psk: Zeroizing::new(PSK.as_bytes().to_vec()),
        pubkey: None,
        ike_proposals: vec![IkeProposal {
            encryption: SkEncryption::AesGcm16(16),
            integrity: None,
            prf: Prf::HmacSha256,
            groups: vec![group(group_name)],
        }],
        child: ChildConfig {
            suites: vec![Suite::AesGcm {
                key: AesKeySize::Aes128,
                icv_len: 16,
            }],
            pfs_groups: Vec::new(),
            local_ts: vec![ts(1)],
            remote_ts: vec![ts(2)],
        },
        dpd_interval: Duration::from_secs(3600),
        request_server_addresses: false,
        server_addresses: Vec::new(),
    };
    let mut engine = Engine::new(
        EngineConfig::new(vec![peer]),
        Box::new(SystemRng),
        Box::new(RandomSpis),
    );
    let ike = UdpSocket::bind((INITIATOR, 500)).unwrap();
    let nat_t = UdpSocket::bind((INITIATOR, 4500)).unwrap();
    for s in [&ike, &nat_t] {
        s.set_nonblocking(true).unwrap();
    }
    let local: SocketAddr = format!("{INITIATOR}:500").parse().unwrap();
    let remote: SocketAddr = format!("{RESPONDER}:500").parse().unwrap();
    let mut started: HashMap<u64, Instant> = HashMap::new();
    let mut latency = Histogram::<u64>::new(3).unwrap();
    let (mut launched, mut done, mut failed) = (0usize, 0usize, 0usize);
    let mut buf = vec![0u8; 65536];
    let begin = Instant::now();
    let deadline = begin + Duration::from_secs(120);
    while done + failed < count && Instant::now() < deadline {
        while launched < count && started.len() < concurrency {
            let spi = engine
                .initiate(Instant::now(), "responder", local, remote)
                .unwrap();
            started.insert(spi, Instant::now());
            launched += 1;
        }
        let mut idle = true;
        for (socket, marker) in [(&ike, false), (&nat_t, true)] {
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                idle = false;
                let port = if marker { 4500 } else { 500 };
                let body = if marker {
                    if len < 4 || buf[..4] != NON_ESP_MARKER {
                        continue;
                    }
                    &buf[4..len]
                } else {
                    &buf[..len]
                };
                engine.handle_datagram(
                    Instant::now(),
                    SocketAddr::new(local.ip(), port),
                    from,
                    body,
                );
            }
        }
        engine.handle_timeout(Instant::now());
        while let Some(t) = engine.poll_transmit() {
            idle = false;
            if t.local.port() == 4500 {
                let _ = nat_t.send_to(&[&NON_ESP_MARKER[..], &t.bytes].concat(), t.remote);
            } else {
                let _ = ike.send_to(&t.bytes, t.remote);
            }
        }
        while let Some(event) = engine.poll_event() {
            match event {
                Event::ChildSaEstablished(child) => {
                    if let Some(start) = started.remove(&child.ike_spi) {
                        latency.record(start.elapsed().as_micros() as u64).unwrap();
                        done += 1;
                    }
                }
                Event::IkeSaFailed { spi, .. } if started.remove(&spi).is_some() => failed += 1,
                _ => {}
            }
        }
        if idle {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    let elapsed = begin.elapsed().as_secs_f64();
    let cpu = clock_gettime(ClockId::ProcessCPUTime);
    let cpu_seconds = cpu.tv_sec as f64 + cpu.tv_nsec as f64 * 1e-9;
    println!(
        "{:.1} {:.2} {:.2} {} {:.3}",
        done as f64 / elapsed,
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        failed + (count - done - failed),
        cpu_seconds * 1000.0 / done.max(1) as f64
    );
}

/// Namespaces, a veth and a responder; removed on drop.
struct Lab {
    name: String,
    dir: PathBuf,
    responder: Option<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut p) = self.responder.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &format!("{}i", self.name)])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &format!("{}r", self.name)])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    fn new() -> Lab {
        let name = format!("ikb{}", std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("ike-bench-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let (i, r) = (format!("{name}i"), format!("{name}r"));
        sh(&format!(
            "ip netns add {i} && ip netns add {r} && ip link add {i}v type veth peer name {r}v && \
             ip link set {i}v netns {i} && ip link set {r}v netns {r} && \
             ip -n {i} addr add {INITIATOR}/24 dev {i}v && ip -n {r} addr add {RESPONDER}/24 dev {r}v && \
             ip -n {i} link set {i}v up && ip -n {r} link set {r}v up && ip -n {i} link set lo up && \
             ip -n {r} link set lo up && ip -n {r} addr add 198.18.2.1/32 dev lo"
        ));
        Lab {
            name,
            dir,
            responder: None,
        }
    }

    fn start_iked(&mut self, iked: &Path, group_name: &str) {
        let ike = if group_name == "modp2048" {
            "aes128gcm16-prfsha256-modp2048"
        } else {
            "aes128gcm16-prfsha256-ecp256"
        };
        let config = format!(
            "[daemon]\nlisten = \"{RESPONDER}\"\ncontrol_socket = \"{sock}\"\n\n[[peer]]\nname = \"initiators\"\n\
             local_id = \"fqdn:responder.example\"\nremote_id = \"fqdn:initiator.example\"\npsk = \"{PSK}\"\n\
             ike = [\"{ike}\"]\nesp = [\"aes128gcm16\"]\nlocal_ts = [\"198.18.2.0/24\"]\nremote_ts = [\"198.18.1.0/24\"]\n",
            sock = self.dir.join("iked.sock").display()
        );
        std::fs::write(self.dir.join("iked.toml"), config).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &format!("{}r", self.name)])
            .arg(iked)
            .arg("run")
            .arg(self.dir.join("iked.toml"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.responder = Some(child);
        self.wait_for(&self.dir.join("iked.sock"));
    }

    fn start_charon(&mut self, group_name: &str) {
        let vici = format!("unix://{}", self.dir.join("run/charon.vici").display());
        let conf = format!(
            "charon {{\n load_modular = no\n load = random nonce openssl aes sha1 sha2 hmac gcm gmp curve25519 kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici\n \
             install_routes = no\n threads = 16\n block_threshold = 100000\n cookie_threshold = 100000\n init_limit_half_open = 0\n plugins {{\n  vici {{\n   socket = {vici}\n  }}\n }}\n}}\n"
        );
        std::fs::write(self.dir.join("strongswan.conf"), conf).unwrap();
        let swanctl = format!(
            "connections {{\n bench {{\n  version = 2\n  local_addrs = {RESPONDER}\n  proposals = aes128gcm16-prfsha256-{group_name}\n  \
             local {{\n   auth = psk\n   id = responder.example\n  }}\n  remote {{\n   auth = psk\n   id = initiator.example\n  }}\n  \
             children {{\n   net {{\n    local_ts = 198.18.2.0/24\n    remote_ts = 198.18.1.0/24\n    esp_proposals = aes128gcm16\n   }}\n  }}\n }}\n}}\n\
             secrets {{\n ike-1 {{\n  id-1 = initiator.example\n  secret = \"{PSK}\"\n }}\n}}\n"
        );
        std::fs::write(self.dir.join("swanctl.conf"), swanctl).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{}r", self.name),
                "unshare",
                "--mount",
                "sh",
                "-c",
            ])
            .arg(format!(
                "mount --bind {} /run && exec /usr/lib/ipsec/charon",
                self.dir.join("run").display()
            ))
            .env("STRONGSWAN_CONF", self.dir.join("strongswan.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.responder = Some(child);
        self.wait_for(&self.dir.join("run/charon.vici"));
        sh(&format!(
            "STRONGSWAN_CONF={} swanctl --load-all --file {} --uri {vici} >/dev/null 2>&1",
            self.dir.join("strongswan.conf").display(),
            self.dir.join("swanctl.conf").display()
        ));
    }

    /// The responder's CPU time so far (user + system, all threads), from /proc. `ip netns exec`,
    /// `unshare` and `sh -c "exec ..."` all exec, so the child's pid is the responder's.
    fn responder_cpu_seconds(&self) -> f64 {
        let pid = self.responder.as_ref().map_or(0, Child::id);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields 14 and 15 (utime, stime), counted after the parenthesised command name.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ticks: u64 = after_name
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|field| field.parse::<u64>().ok())
            .sum();
        ticks as f64 / rustix::param::clock_ticks_per_second() as f64
    }

    fn wait_for(&self, path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "responder did not start ({})",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn run_load(&self, group_name: &str, count: usize, concurrency: usize) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &format!("{}i", self.name)])
            .arg(std::env::current_exe().unwrap())
            .args([
                "load",
                group_name,
                &count.to_string(),
                &concurrency.to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "load generator: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("load") {
        load(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap());
        return;
    }
    let count: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(300);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let iked = std::env::current_exe().unwrap().with_file_name("iked");
    assert!(
        iked.exists(),
        "build iked first: cargo build --release -p control"
    );
    println!("IKE SAs per second with a responder under load: {count} SAs, {concurrency} in flight, PSK, AES-128-GCM");
    println!(
        "{:<10} {:<8} {:>10} {:>9} {:>9} {:>7} {:>14} {:>14}",
        "group",
        "responder",
        "SAs/s",
        "p50 ms",
        "p99 ms",
        "failed",
        "init CPU ms/SA",
        "resp CPU ms/SA"
    );
    for group_name in ["ecp256", "modp2048"] {
        let mut rates = Vec::new();
        for responder in ["iked", "charon"] {
            let mut lab = Lab::new();
            if responder == "iked" {
                lab.start_iked(&iked, group_name);
            } else {
                lab.start_charon(group_name);
            }
            let responder_cpu_before = lab.responder_cpu_seconds();
            let result = lab.run_load(group_name, count, concurrency);
            let responder_cpu = lab.responder_cpu_seconds() - responder_cpu_before;
            let fields: Vec<&str> = result.split_whitespace().collect();
            let established = count
                .saturating_sub(fields[3].parse().unwrap_or(count))
                .max(1);
            println!(
                "{:<10} {:<8} {:>10} {:>9} {:>9} {:>7} {:>14} {:>14.3}",
                group_name,
                responder,
                fields[0],
                fields[1],
                fields[2],
                fields[3],
                fields[4],
                responder_cpu * 1000.0 / established as f64
            );
            rates.push(fields[0].parse::<f64>().unwrap_or(0.0));
        }
        println!(
            "{group_name}: iked / charon = {:.2}",
            rates[0] / rates[1].max(f64::MIN_POSITIVE)
        );
    }
}
