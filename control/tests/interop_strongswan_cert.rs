//! Certificate authentication and fragmented IKE_AUTH against strongSwan 5.9 (Debian's charon
//! with kernel-libipsec) in network namespaces (198.18.0.0/15 only), as in
//! interop_strongswan.rs: RSA and ECDSA certificates from one CA made at test time, our daemon
//! (`iked`) as initiator and as responder. With RSA the IKE_AUTH messages of both ends are larger
//! than the fragment sizes (ours 1228 bytes, charon's set to 600), so they go in RFC 7383
//! fragments both ways. Asserts the SA comes up, the child SPIs agree with `swanctl --list-sas`
//! and the child keys with those charon logs at level 4. Fails (does not skip) without charon.
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, RsaKeySize,
    SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHARON: &str = "/usr/lib/ipsec/charon";
const OURS: &str = "198.18.0.1";
const THEIRS: &str = "198.18.0.2";

fn sh(command: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(command).output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces ("ct" + pid + tag), a veth, charon and our daemon; all removed on drop.
struct Lab {
    name: String,
    dir: PathBuf,
    processes: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.processes {
            let _ = p.kill();
            let _ = p.wait();
        }
        for side in ["a", "b"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &format!("{}{side}", self.name)])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    if alg == &PKCS_RSA_SHA256 {
        KeyPair::generate_rsa_for(alg, RsaKeySize::_3072).unwrap()
    } else {
        KeyPair::generate_for(alg).unwrap()
    }
}

/// A CA and end-entity certificates for ours.example and charon.example, as PEM files in `dir`:
/// ca.pem, ours.pem, ours.key, swanctl/x509/charon.pem, swanctl/pkcs8/charon.key.
fn make_certificates(dir: &Path, alg: &'static SignatureAlgorithm) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "interop CA");
    let ca = CertifiedIssuer::self_signed(params, key(alg)).unwrap();
    let write = |path: &str, text: String| std::fs::write(dir.join(path), text).unwrap();
    write("ca.pem", ca.pem());
    write("swanctl/x509ca/ca.pem", ca.pem());
    for (name, cert_path, key_path) in [
        ("ours.example", "ours.pem", "ours.key"),
        (
            "charon.example",
            "swanctl/x509/charon.pem",
            "swanctl/pkcs8/charon.key",
        ),
    ] {
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = key(alg);
        let cert = params.signed_by(&key, &ca).unwrap();
        write(cert_path, cert.pem());
        write(key_path, key.serialize_pem());
    }
}

impl Lab {
    fn new(tag: &str) -> Lab {
        assert!(
            Path::new(CHARON).exists(),
            "{CHARON} is missing: scripts/setup.sh installs strongswan-charon"
        );
        let name = format!("ct{}{}", std::process::id() % 100000, tag);
        let dir = std::env::temp_dir().join(format!("cert-interop-{name}"));
        let lab = Lab {
            name,
            dir,
            processes: Vec::new(),
        };
        let _ = std::fs::remove_dir_all(&lab.dir);
        for sub in ["run", "swanctl/x509", "swanctl/x509ca", "swanctl/pkcs8"] {
            std::fs::create_dir_all(lab.dir.join(sub)).unwrap();
        }
        let (a, b) = (format!("{}a", lab.name), format!("{}b", lab.name));
        sh(&format!(
            "ip netns add {a} && ip netns add {b} && ip link add {a}v type veth peer name {b}v && \
             ip link set {a}v netns {a} && ip link set {b}v netns {b} && \
             ip -n {a} addr add {OURS}/24 dev {a}v && ip -n {b} addr add {THEIRS}/24 dev {b}v && \
             ip -n {a} link set {a}v up && ip -n {b} link set {b}v up && \
             ip -n {a} link set lo up && ip -n {b} link set lo up && \
             ip -n {a} addr add 198.18.1.1/32 dev lo && ip -n {b} addr add 198.18.2.1/32 dev lo"
        ));
        lab
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn vici(&self) -> String {
        format!("unix://{}", self.path("run/charon.vici").display())
    }

    fn swanctl(&self, args: &str) -> String {
        sh(&format!(
            "STRONGSWAN_CONF={conf} SWANCTL_DIR={dir} swanctl {args} --uri {uri}",
            conf = self.path("strongswan.conf").display(),
            dir = self.path("swanctl").display(),
            uri = self.vici()
        ))
    }

    fn start_charon(&mut self, we_initiate: bool) {
        let conf = format!(
            "charon {{\n load_modular = no\n load = random nonce openssl aes sha1 sha2 hmac gcm gmp curve25519 kdf mgf1 pem pkcs1 pkcs8 x509 pubkey constraints kernel-libipsec kernel-netlink socket-default vici\n \
             install_routes = no\n retransmit_tries = 3\n fragment_size = 600\n \
             filelog {{\n  interop {{\n   path = {log}\n   default = 1\n   chd = 4\n   flush_line = yes\n  }}\n }}\n \
             plugins {{\n  vici {{\n   socket = {vici}\n  }}\n }}\n}}\n",
            log = self.path("charon.log").display(),
            vici = self.vici()
        );
        std::fs::write(self.path("strongswan.conf"), conf).unwrap();
        let swanctl = format!(
            "connections {{\n ours {{\n  version = 2\n  local_addrs = {THEIRS}\n  remote_addrs = {OURS}\n  \
             proposals = aes256gcm16-prfsha256-ecp256\n  fragmentation = yes\n  send_certreq = yes\n  \
             local {{\n   auth = pubkey\n   certs = charon.pem\n   id = charon.example\n  }}\n  \
             remote {{\n   auth = pubkey\n   id = ours.example\n  }}\n  \
             dpd_delay = {dpd}\n  children {{\n   net {{\n    local_ts = 198.18.2.0/24\n    remote_ts = 198.18.1.0/24\n    esp_proposals = aes256gcm16\n    mode = tunnel\n   }}\n  }}\n }}\n}}\n",
            dpd = if we_initiate { "0s" } else { "30s" }
        );
        std::fs::write(self.path("swanctl/swanctl.conf"), swanctl).unwrap();
        let charon = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{}b", self.name),
                "unshare",
                "--mount",
                "sh",
                "-c",
            ])
            .arg(format!(
                "mount --bind {run} /run && exec {CHARON}",
                run = self.path("run").display()
            ))
            .env("STRONGSWAN_CONF", self.path("strongswan.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.processes.push(charon);
        self.wait_for("charon's vici socket", Duration::from_secs(10), || {
            self.path("run/charon.vici").exists()
        });
        self.swanctl(&format!(
            "--load-all --file {}",
            self.path("swanctl/swanctl.conf").display()
        ));
    }

    fn start_iked(&mut self, we_initiate: bool) {
        let config = format!(
            "[daemon]\nlisten = \"{OURS}\"\ncontrol_socket = \"{sock}\"\nlog_keys = true\n\n\
             [[peer]]\nname = \"charon\"\nremote = \"{THEIRS}\"\nlocal_id = \"fqdn:ours.example\"\nremote_id = \"fqdn:charon.example\"\n\
             auth = \"pubkey\"\ncert = \"{cert}\"\nkey = \"{key}\"\nca = \"{ca}\"\n\
             ike = [\"aes256gcm16-prfsha256-ecp256\"]\nesp = [\"aes256gcm16\"]\nlocal_ts = [\"198.18.1.0/24\"]\nremote_ts = [\"198.18.2.0/24\"]\ninitiate = {we_initiate}\n",
            sock = self.path("iked.sock").display(),
            cert = self.path("ours.pem").display(),
            key = self.path("ours.key").display(),
            ca = self.path("ca.pem").display(),
        );
        std::fs::write(self.path("iked.toml"), config).unwrap();
        let log = std::fs::File::create(self.path("iked.log")).unwrap();
        let iked = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{}a", self.name),
                env!("CARGO_BIN_EXE_iked"),
                "run",
            ])
            .arg(self.path("iked.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.processes.push(iked);
        self.wait_for("iked's control socket", Duration::from_secs(5), || {
            self.path("iked.sock").exists()
        });
    }

    fn ctl(&self, command: &str) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_iked"))
            .arg("ctl")
            .arg(self.path("iked.sock"))
            .args(command.split_whitespace())
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{command}: {e}: {}", self.logs()))
    }

    fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.path(f)).unwrap_or_default();
        let charon = read("charon.log");
        let tail: Vec<&str> = charon.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "--- iked.log\n{}\n--- charon.log (tail)\n{}",
            read("iked.log"),
            tail.join("\n")
        )
    }

    fn wait_for(&self, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
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
}

/// Every key charon dumped at log level 4: a "... key => N bytes @ ..." line followed by lines
/// "NN[CHD]    0: 0A 1B ...  ascii".
fn charon_keys(log: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut current: Option<String> = None;
    for line in log.lines() {
        if line.contains(" key => ") {
            keys.extend(current.take());
            current = Some(String::new());
            continue;
        }
        let Some(key) = current.as_mut() else {
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

fn run_case(tag: &str, alg: &'static SignatureAlgorithm, we_initiate: bool) {
    let mut lab = Lab::new(tag);
    make_certificates(&lab.dir, alg);
    lab.start_charon(we_initiate);
    lab.start_iked(we_initiate);
    if !we_initiate {
        lab.swanctl("--initiate --child net --ike ours --timeout 10");
    }
    lab.wait_for("a child SA in iked", Duration::from_secs(15), || {
        lab.ctl("list").as_array().is_some_and(|sas| {
            sas.iter()
                .any(|sa| sa["children"].as_array().is_some_and(|c| !c.is_empty()))
        })
    });
    let list = lab.ctl("list");
    let sa = &list[0];
    assert_eq!(sa["established"], true);
    assert_eq!(sa["initiator"], we_initiate);
    let child = &sa["children"][0];
    let ours_in = child["inbound_spi"].as_str().unwrap();
    let ours_out = child["outbound_spi"].as_str().unwrap();
    let charon_sas = lab.swanctl("--list-sas");
    assert!(charon_sas.contains("ESTABLISHED"), "{charon_sas}");
    assert!(
        charon_sas.contains(&format!("in  {ours_out}")),
        "{charon_sas}"
    );
    assert!(
        charon_sas.contains(&format!("out {ours_in}")),
        "{charon_sas}"
    );
    // charon authenticated us by our certificate, and we it by its.
    let charon_log = std::fs::read_to_string(lab.path("charon.log")).unwrap();
    assert!(
        charon_log.contains("authentication of 'ours.example' with")
            && charon_log.contains("successful"),
        "{}",
        lab.logs()
    );
    let iked_log = std::fs::read_to_string(lab.path("iked.log")).unwrap();
    let keys_line = iked_log
        .lines()
        .find(|l| l.contains("iked: keys"))
        .unwrap_or_else(|| panic!("no keys line\n{}", lab.logs()));
    let charon_keys = charon_keys(&charon_log);
    for word in keys_line.split_whitespace() {
        let Some(key) = word
            .strip_prefix("encr=")
            .or_else(|| word.strip_prefix("integ="))
        else {
            continue;
        };
        if !key.is_empty() {
            assert!(
                charon_keys.iter().any(|c| c == key),
                "key {key} not in charon's log\n{}",
                lab.logs()
            );
        }
    }
    if alg == &PKCS_RSA_SHA256 {
        // RFC 7383: charon split its IKE_AUTH message and reassembled ours.
        assert!(
            charon_log.contains("splitting IKE message"),
            "charon did not fragment\n{}",
            lab.logs()
        );
        assert!(
            charon_log.contains("reassembled fragmented IKE message"),
            "charon got no fragments from us\n{}",
            lab.logs()
        );
    }
}

#[test]
fn rsa_certificates_with_fragmented_ike_auth_we_initiate() {
    run_case("ri", &PKCS_RSA_SHA256, true);
}

#[test]
fn rsa_certificates_with_fragmented_ike_auth_charon_initiates() {
    run_case("rr", &PKCS_RSA_SHA256, false);
}

#[test]
fn ecdsa_certificates_we_initiate() {
    run_case("ei", &PKCS_ECDSA_P256_SHA256, true);
}

#[test]
fn ecdsa_certificates_charon_initiates() {
    run_case("er", &PKCS_ECDSA_P256_SHA256, false);
}
