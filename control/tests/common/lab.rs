//! A lab for the tests that run real daemons (root): our `iked` and strongSwan's charon (Debian's
//! 5.9 with the kernel-libipsec plugin, which forces NAT-T: ARCHITECTURE.md section 6) in network
//! namespaces (198.18.0.0/15 only), their files in one directory. The namespaces, processes and
//! files are removed on drop, pass or fail.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHARON: &str = "/usr/lib/ipsec/charon";

/// Runs `command` with sh; fails the test with its output if it fails; returns its stdout.
pub fn sh(command: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(command).output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[derive(Debug)]
pub struct Lab {
    /// Unique per test (a prefix, the pid, a tag): names the lab's namespaces.
    pub name: String,
    pub dir: PathBuf,
    namespaces: Vec<String>,
    /// The processes started, by name ("charon", a daemon's name).
    processes: Vec<(String, Child)>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, p) in &mut self.processes {
            let _ = p.kill();
            let _ = p.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    /// An empty lab named `prefix` + pid + `tag`, with a fresh directory.
    pub fn new(prefix: &str, tag: &str) -> Lab {
        let name = format!("{prefix}{}{tag}", std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("lab-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["run", "swanctl/x509", "swanctl/x509ca", "swanctl/pkcs8"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        Lab {
            name,
            dir,
            namespaces: Vec::new(),
            processes: Vec::new(),
        }
    }

    /// Namespaces NAMEa (ours, `ours`/24) and NAMEb (charon's, `theirs`/24) joined by a veth.
    /// Each side also holds an address inside its protected subnet, 198.18.1.1 and 198.18.2.1:
    /// kernel-libipsec routes the remote subnet through its TUN device from such an address.
    pub fn two_namespaces(&mut self, ours: &str, theirs: &str) {
        let (a, b) = (format!("{}a", self.name), format!("{}b", self.name));
        self.namespaces.extend([a.clone(), b.clone()]);
        sh(&format!(
            "ip netns add {a} && ip netns add {b} && ip link add {a}v type veth peer name {b}v && \
             ip link set {a}v netns {a} && ip link set {b}v netns {b} && \
             ip -n {a} addr add {ours}/24 dev {a}v && ip -n {b} addr add {theirs}/24 dev {b}v && \
             ip -n {a} link set {a}v up && ip -n {b} link set {b}v up && \
             ip -n {a} link set lo up && ip -n {b} link set lo up && \
             ip -n {a} addr add 198.18.1.1/32 dev lo && ip -n {b} addr add 198.18.2.1/32 dev lo"
        ));
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn vici(&self) -> String {
        format!("unix://{}", self.path("run/charon.vici").display())
    }

    /// Starts charon in namespace `ns` (with its own /run, strongswan.conf and vici socket),
    /// `options` added to its `charon { }` section, and loads `swanctl_conf`. It logs at level 1,
    /// child and IKE SA details at 4 (the keys among them), to charon.log. Fails (does not skip)
    /// without charon.
    pub fn start_charon(&mut self, ns: &str, options: &str, swanctl_conf: &str) {
        assert!(
            Path::new(CHARON).exists(),
            "{CHARON} is missing: scripts/setup.sh installs strongswan-charon"
        );
        let conf = format!(
            "charon {{\n load_modular = no\n load = random nonce openssl aes sha1 sha2 hmac gcm gmp curve25519 kdf mgf1 pem pkcs1 pkcs8 x509 pubkey constraints kernel-libipsec kernel-netlink socket-default vici\n \
             install_routes = no\n retransmit_tries = 3\n {options}\n \
             filelog {{\n  lab {{\n   path = {log}\n   default = 1\n   chd = 4\n   ike = 4\n   flush_line = yes\n  }}\n }}\n \
             plugins {{\n  vici {{\n   socket = {vici}\n  }}\n }}\n}}\n",
            log = self.path("charon.log").display(),
            vici = self.vici()
        );
        std::fs::write(self.path("strongswan.conf"), conf).unwrap();
        std::fs::write(self.path("swanctl/swanctl.conf"), swanctl_conf).unwrap();
        let charon = Command::new("ip")
            .args(["netns", "exec", ns, "unshare", "--mount", "sh", "-c"])
            .arg(format!(
                "mount --bind {run} /run && exec {CHARON}",
                run = self.path("run").display()
            ))
            .env("STRONGSWAN_CONF", self.path("strongswan.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.processes.push(("charon".into(), charon));
        self.wait_for("charon's vici socket", Duration::from_secs(10), || {
            self.path("run/charon.vici").exists()
        });
        self.swanctl(&format!(
            "--load-all --file {}",
            self.path("swanctl/swanctl.conf").display()
        ));
    }

    /// `swanctl ARGS` against the lab's charon; fails the test if it fails.
    pub fn swanctl(&self, args: &str) -> String {
        sh(&format!(
            "STRONGSWAN_CONF={conf} SWANCTL_DIR={dir} swanctl {args} --uri {uri}",
            conf = self.path("strongswan.conf").display(),
            dir = self.path("swanctl").display(),
            uri = self.vici()
        ))
    }

    /// The control socket `start_iked` configurations name.
    pub fn iked_socket(&self) -> PathBuf {
        self.socket_of("iked")
    }

    /// The control socket of the daemon `start_iked_named` started as `name`.
    pub fn socket_of(&self, name: &str) -> PathBuf {
        self.path(&format!("{name}.sock"))
    }

    /// Starts `iked run` in namespace `ns` with `config` (whose control_socket must be
    /// `iked_socket()`), logging to iked.log.
    pub fn start_iked(&mut self, ns: &str, config: &str) {
        self.start_iked_named(ns, "iked", config);
    }

    /// Starts a daemon called `name` (files NAME.toml, NAME.log; its control_socket must be
    /// `socket_of(name)`).
    pub fn start_iked_named(&mut self, ns: &str, name: &str, config: &str) {
        let path = self.path(&format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        // Appended to: a restarted daemon's log follows its predecessor's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&format!("{name}.log")))
            .unwrap();
        let iked = Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_iked"), "run"])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.processes.push((name.to_string(), iked));
        self.wait_for("iked's control socket", Duration::from_secs(5), || {
            self.socket_of(name).exists()
        });
    }

    /// Kills the process called `name`, as a crash would: it says goodbye to no one. A daemon's
    /// control socket goes too, so that its successor's shows when it is up.
    pub fn kill(&mut self, name: &str) {
        if let Some(at) = self.processes.iter().position(|(n, _)| n == name) {
            let (_, mut process) = self.processes.remove(at);
            let _ = process.kill();
            let _ = process.wait();
        }
        let _ = std::fs::remove_file(self.socket_of(name));
    }

    /// `iked ctl` with `command`; its JSON answer.
    pub fn ctl(&self, command: &str) -> serde_json::Value {
        self.ctl_of("iked", command)
    }

    /// `iked ctl` of the daemon called `name`.
    pub fn ctl_of(&self, name: &str, command: &str) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_iked"))
            .arg("ctl")
            .arg(self.socket_of(name))
            .args(command.split_whitespace())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{command}: {e}: {}", self.logs()))
    }

    /// Every log in the lab's directory, charon's as its last 60 lines.
    pub fn logs(&self) -> String {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "log"));
        names.sort();
        let mut out = String::new();
        for path in names {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let shown = if path.ends_with("charon.log") {
                &lines[lines.len().saturating_sub(60)..]
            } else {
                &lines[..]
            };
            out += &format!("--- {}\n{}\n", path.display(), shown.join("\n"));
        }
        out
    }

    /// Polls `done` every 100 ms; fails the test with the logs after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The child SA keys `iked` logged (log_keys): (inbound SPI, encr, integ), then the same for
    /// outbound, of its first "iked: keys" line.
    pub fn iked_keys(&self) -> [(String, String, String); 2] {
        self.iked_keys_of("")
    }

    /// The same for the child SA whose inbound SPI is `inbound_spi` (hex).
    pub fn iked_keys_of(&self, inbound_spi: &str) -> [(String, String, String); 2] {
        let log = std::fs::read_to_string(self.path("iked.log")).unwrap_or_default();
        let line = log
            .lines()
            .find(|l| l.contains(&format!("iked: keys in {inbound_spi}")))
            .unwrap_or_else(|| panic!("no keys line for {inbound_spi:?}\n{}", self.logs()));
        // "iked: keys in SPI encr=K integ=K out SPI encr=K integ=K"
        let words: Vec<&str> = line.split_whitespace().collect();
        let value = |i: usize, name: &str| {
            words[i]
                .strip_prefix(name)
                .unwrap_or_else(|| panic!("{line}"))
                .to_string()
        };
        [
            (words[3].to_string(), value(4, "encr="), value(5, "integ=")),
            (words[7].to_string(), value(8, "encr="), value(9, "integ=")),
        ]
    }
}

/// Every key charon dumped at log level 4.
pub fn charon_keys(log: &str) -> Vec<String> {
    charon_labelled_keys(log)
        .into_iter()
        .map(|(_, key)| key)
        .collect()
}

/// The last child SA encryption keys charon derived: (initiator's, responder's), the roles
/// being those in the exchange that created the child SA.
pub fn charon_last_encryption_keys(log: &str) -> (String, String) {
    let keys = charon_labelled_keys(log);
    let last = |label: &str| {
        keys.iter()
            .rev()
            .find(|(l, _)| l == label)
            .map(|(_, k)| k.clone())
            .unwrap_or_else(|| panic!("no {label} in charon's log"))
    };
    (
        last("encryption initiator key"),
        last("encryption responder key"),
    )
}

/// Every key charon dumped at log level 4, with its label: a "... LABEL => N bytes @ ..." line
/// followed by lines "NN[CHD]    0: 0A 1B ...  ascii".
fn charon_labelled_keys(log: &str) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in log.lines() {
        if let Some((head, _)) = line.split_once(" => ") {
            if head.ends_with(" key") {
                keys.extend(current.take());
                let label = head.split_once(']').map_or(head, |(_, l)| l).trim();
                current = Some((label.to_string(), String::new()));
                continue;
            }
        }
        let Some((_, key)) = current.as_mut() else {
            continue;
        };
        let body = line
            .split_once(']')
            .map_or(line, |(_, rest)| rest)
            .trim_start();
        match body.split_once(": ") {
            Some((offset, bytes)) if offset.chars().all(|c| c.is_ascii_digit()) => {
                for byte in bytes
                    .split(' ')
                    .take_while(|w| w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit()))
                {
                    key.push_str(&byte.to_lowercase());
                }
            }
            _ => keys.extend(current.take()),
        }
    }
    keys.extend(current);
    keys
}
