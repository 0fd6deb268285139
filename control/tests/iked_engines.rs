//! Two `iked` daemons with three engine threads each, in two network namespaces joined by a veth
//! (198.18.0.0/15 only): several IKE SAs initiated one after the other land on different engines
//! at both ends (by round robin at the initiator, by the initiator's SPI at the responder) and
//! every message still reaches the engine that holds its SA: all come up, each is rekeyed, a
//! liveness check on each is answered, and both ends list the same SPIs. Needs root.
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const A: &str = "198.18.0.1";
const B: &str = "198.18.0.2";
const SAS: usize = 6;

fn sh(command: &str) {
    let out = Command::new("sh").arg("-c").arg(command).output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces, the daemons and their files; all removed on drop, pass or fail.
struct Lab {
    name: String,
    dir: PathBuf,
    daemons: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
        for side in ["a", "b"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &format!("{}{side}", self.name)])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    fn new() -> Lab {
        let name = format!("ik{}e", std::process::id() % 100000);
        let dir = std::env::temp_dir().join(format!("iked-engines-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            name,
            dir,
            daemons: Vec::new(),
        };
        let (a, b) = (format!("{}a", lab.name), format!("{}b", lab.name));
        sh(&format!(
            "ip netns add {a} && ip netns add {b} && ip link add {a}v type veth peer name {b}v && \
             ip link set {a}v netns {a} && ip link set {b}v netns {b} && \
             ip -n {a} addr add {A}/24 dev {a}v && ip -n {b} addr add {B}/24 dev {b}v && \
             ip -n {a} link set {a}v up && ip -n {b} link set {b}v up"
        ));
        lab
    }

    fn socket(&self, side: &str) -> PathBuf {
        self.dir.join(format!("{side}.sock"))
    }

    fn start(&mut self, side: &str, local: &str, remote: &str) {
        let config = format!(
            "[daemon]\nlisten = \"{local}\"\ncontrol_socket = \"{sock}\"\nworkers = 3\n\n\
             [[peer]]\nname = \"other\"\nremote = \"{remote}\"\nlocal_id = \"fqdn:{side}.example\"\n\
             remote_id = \"fqdn:{other}.example\"\npsk = \"a pre-shared key for the engines test\"\n\
             ike = [\"aes256gcm16-prfsha256-ecp256\"]\nesp = [\"aes256gcm16\"]\n\
             local_ts = [\"198.18.{mine}.0/24\"]\nremote_ts = [\"198.18.{theirs}.0/24\"]\n",
            sock = self.socket(side).display(),
            other = if side == "a" { "b" } else { "a" },
            mine = if side == "a" { 1 } else { 2 },
            theirs = if side == "a" { 2 } else { 1 },
        );
        let path = self.dir.join(format!("{side}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("{side}.log"))).unwrap();
        let daemon = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{}{side}", self.name),
                env!("CARGO_BIN_EXE_iked"),
                "run",
            ])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemons.push(daemon);
        self.wait_for("the control socket", || self.socket(side).exists());
    }

    fn ctl(&self, side: &str, command: &str) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_iked"))
            .arg("ctl")
            .arg(self.socket(side))
            .args(command.split_whitespace())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{command}: {e}\n{}", self.logs()))
    }

    fn logs(&self) -> String {
        ["a", "b"]
            .iter()
            .map(|s| {
                let log = std::fs::read_to_string(self.dir.join(format!("{s}.log")));
                format!("--- {s}.log\n{}", log.unwrap_or_default())
            })
            .collect()
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The (SPIi, SPIr) pairs of one side's established IKE SAs that carry a child SA.
    fn sas(&self, side: &str) -> BTreeSet<(String, String)> {
        self.ctl(side, "list")
            .as_array()
            .into_iter()
            .flatten()
            .filter(|sa| {
                sa["established"] == true && sa["children"].as_array().is_some_and(|c| c.len() == 1)
            })
            .map(|sa| {
                (
                    sa["spi_i"].as_str().unwrap().to_string(),
                    sa["spi_r"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn our_spi(sa: &Value) -> String {
    let field = if sa["initiator"] == true {
        "spi_i"
    } else {
        "spi_r"
    };
    sa[field].as_str().unwrap().to_string()
}

#[test]
fn ike_sas_spread_over_engine_threads_reach_their_engine() {
    let mut lab = Lab::new();
    lab.start("b", B, A);
    lab.start("a", A, B);
    for _ in 0..SAS {
        let answer = lab.ctl("a", "initiate other");
        assert!(answer.get("ike_spi").is_some(), "{answer}");
    }
    lab.wait_for("every IKE SA up at both ends", || {
        let (a, b) = (lab.sas("a"), lab.sas("b"));
        a.len() == SAS && a == b
    });
    // Our SPIs are the engine's index modulo 3: both ends used more than one engine.
    let engines = |side: &str| -> BTreeSet<u64> {
        lab.ctl(side, "list")
            .as_array()
            .unwrap()
            .iter()
            .map(|sa| u64::from_str_radix(&our_spi(sa), 16).unwrap() % 3)
            .collect()
    };
    assert!(engines("a").len() > 1, "A used one engine only");
    assert!(engines("b").len() > 1, "B used one engine only");

    // Rekey every IKE SA from B (the engine that holds it does it) and check each new one.
    let before = lab.sas("b");
    for sa in lab.ctl("b", "list").as_array().unwrap() {
        let answer = lab.ctl("b", &format!("rekey-ike {}", our_spi(sa)));
        assert!(answer.get("error").is_none(), "{answer}");
    }
    lab.wait_for("every IKE SA rekeyed at both ends", || {
        let (a, b) = (lab.sas("a"), lab.sas("b"));
        a.len() == SAS && a == b && a.is_disjoint(&before)
    });
    for sa in lab.ctl("a", "list").as_array().unwrap() {
        let answer = lab.ctl("a", &format!("liveness {}", our_spi(sa)));
        assert!(answer.get("error").is_none(), "{answer}");
    }
    lab.wait_for("every liveness check answered", || {
        lab.ctl("a", "stats")["liveness_answered_by_peer"].as_u64() >= Some(SAS as u64)
    });
    assert_eq!(lab.ctl("a", "stats")["integrity_failures"], 0);
    assert_eq!(lab.ctl("b", "stats")["ike_sas_established"], SAS);
}
