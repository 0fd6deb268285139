//! The daemon's TOML configuration: peers, credentials, proposals, selectors. Everything is
//! checked when loaded; an error names the peer and field.
use crate::crypto::{Integ, Prf, SkEncryption};
use crate::ikev2::certificate::{self, PubkeyAuth};
use crate::ikev2::signature::RsaPadding;
use crate::ikev2::{ChildConfig, EngineConfig, IkeProposal, PeerConfig};
use crate::wire::ikev2::{DhGroup, IdType, Identification, TrafficSelector};
use serde::Deserialize;
use shared::sa::{AesKeySize, Integrity, Suite};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    daemon: DaemonSection,
    #[serde(default, rename = "peer")]
    peers: Vec<PeerSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DaemonSection {
    listen: IpAddr,
    #[serde(default = "default_ike_port")]
    ike_port: u16,
    #[serde(default = "default_nat_port")]
    nat_t_port: u16,
    control_socket: PathBuf,
    region: Option<PathBuf>,
    #[serde(default)]
    log_keys: bool,
    /// Engine threads (default: one per core).
    workers: Option<usize>,
    /// Rekey IKE SAs after this many seconds (RFC 7296 2.8); 0 never.
    #[serde(default = "default_ike_lifetime")]
    ike_lifetime_secs: u64,
}

/// strongSwan's default IKE SA rekey time, 4 hours.
fn default_ike_lifetime() -> u64 {
    4 * 3600
}

fn default_ike_port() -> u16 {
    500
}

fn default_nat_port() -> u16 {
    4500
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerSection {
    name: String,
    remote: Option<IpAddr>,
    local_id: String,
    remote_id: String,
    /// "psk" (the default) or "pubkey": X.509 certificates (RFC 7296 2.15 signatures).
    #[serde(default)]
    auth: AuthKind,
    #[serde(default)]
    psk: String,
    /// With auth = "pubkey": PEM files of our certificate (then any intermediates), our private
    /// key, and the CA certificates the peer's chain must end at.
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    /// With auth = "pubkey": a PEM file of CRLs ("X509 CRL" blocks) of the CA or of
    /// intermediates; a peer certificate one of them lists is refused. Optional.
    crl: Option<PathBuf>,
    /// RFC 7427 signatures with an RSA key: "pkcs1" (the default) or "pss".
    #[serde(default)]
    rsa_padding: RsaPaddingName,
    ike: Vec<String>,
    esp: Vec<String>,
    /// D-H groups for perfect forward secrecy of the child SAs made by CREATE_CHILD_SA (RFC 7296
    /// 1.3), in order of preference; none by default.
    #[serde(default)]
    pfs: Vec<String>,
    local_ts: Vec<String>,
    remote_ts: Vec<String>,
    #[serde(default = "default_dpd")]
    dpd_seconds: u64,
    #[serde(default)]
    initiate: bool,
    /// Install outbound protect rules for the selectors at start (strongSwan's trap policies):
    /// traffic they match makes the dataplane raise an ACQUIRE and the daemon initiate.
    #[serde(default)]
    trap: bool,
    /// Ask the responder for its internal server addresses ([MS-IKEE] 3.11).
    #[serde(default)]
    request_server_addresses: bool,
    /// Internal server addresses to give a peer that asks ([MS-IKEE] 3.11).
    #[serde(default)]
    server_addresses: Vec<IpAddr>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AuthKind {
    #[default]
    Psk,
    Pubkey,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RsaPaddingName {
    #[default]
    Pkcs1,
    Pss,
}

/// Reads and checks the certificate, key and CA files of an auth = "pubkey" peer.
fn pubkey_auth(section: &PeerSection) -> Result<PubkeyAuth, (&'static str, String)> {
    let read = |field: &'static str, path: &Option<PathBuf>| {
        let path = path
            .as_ref()
            .ok_or((field, "needed with auth = \"pubkey\"".to_string()))?;
        std::fs::read(path).map_err(|e| (field, format!("cannot read {}: {e}", path.display())))
    };
    let (cert, key, ca) = (
        read("cert", &section.cert)?,
        read("key", &section.key)?,
        read("ca", &section.ca)?,
    );
    let padding = match section.rsa_padding {
        RsaPaddingName::Pkcs1 => RsaPadding::Pkcs1,
        RsaPaddingName::Pss => RsaPadding::Pss,
    };
    let auth =
        PubkeyAuth::from_pem(&cert, &key, &ca, padding).map_err(|e| ("cert", e.to_string()))?;
    match &section.crl {
        None => Ok(auth),
        Some(_) => {
            let crls = certificate::pem_crls(&read("crl", &section.crl)?)
                .map_err(|e| ("crl", e.to_string()))?;
            auth.with_crls(crls).map_err(|e| ("crl", e.to_string()))
        }
    }
}

fn default_dpd() -> u64 {
    30
}

/// The loaded configuration.
#[derive(Debug)]
pub struct DaemonConfig {
    pub listen: IpAddr,
    pub ike_port: u16,
    pub nat_t_port: u16,
    pub control_socket: PathBuf,
    pub region: Option<PathBuf>,
    /// Print child SA keys (for interoperability tests only).
    pub log_keys: bool,
    /// Engine threads.
    pub workers: usize,
    pub engine: EngineConfig,
    /// Peers to start an IKE SA with at startup.
    pub initiate: Vec<String>,
    /// Peers whose selectors get trap rules in the region at startup.
    pub trap: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("peer {peer:?}: {field}: {problem}")]
    Peer {
        peer: String,
        field: &'static str,
        problem: String,
    },
}

fn ike_proposal(text: &str) -> Result<IkeProposal, String> {
    let mut encryption = None;
    let mut integrity = None;
    let mut prf = None;
    let mut groups = Vec::new();
    for token in text.split('-') {
        match token {
            "aes128" => encryption = Some(SkEncryption::AesCbc(16)),
            "aes256" => encryption = Some(SkEncryption::AesCbc(32)),
            "aes128gcm16" => encryption = Some(SkEncryption::AesGcm16(16)),
            "aes256gcm16" => encryption = Some(SkEncryption::AesGcm16(32)),
            "sha1" => integrity = Some(Integ::HmacSha1_96),
            "sha256" => integrity = Some(Integ::HmacSha256_128),
            "sha384" => integrity = Some(Integ::HmacSha384_192),
            "sha512" => integrity = Some(Integ::HmacSha512_256),
            "prfsha1" => prf = Some(Prf::HmacSha1),
            "prfsha256" => prf = Some(Prf::HmacSha256),
            "prfsha384" => prf = Some(Prf::HmacSha384),
            "prfsha512" => prf = Some(Prf::HmacSha512),
            other => groups.push(
                dh_group(other).map_err(|_| format!("unknown algorithm {other:?} in {text:?}"))?,
            ),
        }
    }
    let encryption = encryption.ok_or_else(|| format!("{text:?} names no encryption algorithm"))?;
    if encryption.is_aead() == integrity.is_some() {
        return Err(format!(
            "{text:?}: AES-CBC needs an integrity algorithm, AES-GCM takes none"
        ));
    }
    // Like strongSwan: without an explicit PRF, use the integrity algorithm's hash.
    let prf = prf
        .or(match integrity {
            Some(Integ::HmacSha1_96) => Some(Prf::HmacSha1),
            Some(Integ::HmacSha256_128) => Some(Prf::HmacSha256),
            Some(Integ::HmacSha384_192) => Some(Prf::HmacSha384),
            Some(Integ::HmacSha512_256) => Some(Prf::HmacSha512),
            None => None,
        })
        .ok_or_else(|| format!("{text:?} names no PRF"))?;
    if groups.is_empty() {
        return Err(format!("{text:?} names no Diffie-Hellman group"));
    }
    Ok(IkeProposal {
        encryption,
        integrity,
        prf,
        groups,
    })
}

fn dh_group(text: &str) -> Result<DhGroup, String> {
    Ok(match text {
        "modp2048" => DhGroup::Modp2048,
        "modp3072" => DhGroup::Modp3072,
        "ecp256" => DhGroup::Ecp256,
        "ecp384" => DhGroup::Ecp384,
        "ecp521" => DhGroup::Ecp521,
        "curve25519" | "x25519" => DhGroup::Curve25519,
        other => return Err(format!("unknown Diffie-Hellman group {other:?}")),
    })
}

fn esp_suite(text: &str) -> Result<Suite, String> {
    let key = |bits: &str| {
        if bits == "128" {
            AesKeySize::Aes128
        } else {
            AesKeySize::Aes256
        }
    };
    Ok(match text {
        "aes128gcm8" | "aes256gcm8" => Suite::AesGcm {
            key: key(&text[3..6]),
            icv_len: 8,
        },
        "aes128gcm12" | "aes256gcm12" => Suite::AesGcm {
            key: key(&text[3..6]),
            icv_len: 12,
        },
        "aes128gcm16" | "aes256gcm16" => Suite::AesGcm {
            key: key(&text[3..6]),
            icv_len: 16,
        },
        "aes128gmac" | "aes256gmac" => Suite::AesGmac {
            key: key(&text[3..6]),
        },
        "aes128-sha1" | "aes256-sha1" => Suite::AesCbc {
            key: key(&text[3..6]),
            integrity: Integrity::HmacSha1_96,
        },
        "aes128-sha256" | "aes256-sha256" => Suite::AesCbc {
            key: key(&text[3..6]),
            integrity: Integrity::HmacSha256_128,
        },
        other => return Err(format!("unknown ESP proposal {other:?}")),
    })
}

/// "198.18.1.0/24" or a single address.
fn traffic_selector(text: &str) -> Result<TrafficSelector, String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?} is not an address or prefix"))?;
    let bits: u32 = if addr.is_ipv4() { 32 } else { 128 };
    let len: u32 = match len {
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| *l <= bits)
            .ok_or_else(|| format!("bad prefix length in {text:?}"))?,
        None => bits,
    };
    let (start, end) = match addr {
        IpAddr::V4(a) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let v = u32::from(a) & mask;
            (
                IpAddr::from(v.to_be_bytes()),
                IpAddr::from((v | !mask).to_be_bytes()),
            )
        }
        IpAddr::V6(a) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            let v = u128::from(a) & mask;
            (
                IpAddr::from(v.to_be_bytes()),
                IpAddr::from((v | !mask).to_be_bytes()),
            )
        }
    };
    Ok(TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: u16::MAX,
        start,
        end,
    })
}

/// "fqdn:gw.example", "email:a@b", "ip:198.18.0.1", "keyid:abc".
fn identity(text: &str) -> Result<Identification, String> {
    let (kind, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} lacks a type prefix (fqdn:, email:, ip:, keyid:)"))?;
    Ok(match kind {
        "fqdn" => Identification {
            kind: IdType::Fqdn,
            data: value.as_bytes().to_vec(),
        },
        "email" => Identification {
            kind: IdType::Rfc822Addr,
            data: value.as_bytes().to_vec(),
        },
        "keyid" => Identification {
            kind: IdType::KeyId,
            data: value.as_bytes().to_vec(),
        },
        "ip" => match value
            .parse::<IpAddr>()
            .map_err(|_| format!("{value:?} is not an address"))?
        {
            IpAddr::V4(a) => Identification {
                kind: IdType::Ipv4Addr,
                data: a.octets().to_vec(),
            },
            IpAddr::V6(a) => Identification {
                kind: IdType::Ipv6Addr,
                data: a.octets().to_vec(),
            },
        },
        other => return Err(format!("unknown identity type {other:?}")),
    })
}

fn all<T>(items: &[String], parse: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    if items.is_empty() {
        return Err("must not be empty".into());
    }
    items.iter().map(|s| parse(s)).collect()
}

fn peer(section: PeerSection) -> Result<PeerConfig, ConfigError> {
    let name = section.name.clone();
    let err = |field: &'static str| {
        let peer = name.clone();
        move |problem: String| ConfigError::Peer {
            peer,
            field,
            problem,
        }
    };
    let pubkey = match section.auth {
        AuthKind::Psk if section.psk.len() < 16 => {
            return Err(err("psk")("must be at least 16 characters".into()));
        }
        AuthKind::Psk => None,
        AuthKind::Pubkey => Some(std::sync::Arc::new(
            pubkey_auth(&section).map_err(|(field, problem)| err(field)(problem))?,
        )),
    };
    Ok(PeerConfig {
        name: section.name.clone(),
        remote_addr: section.remote,
        local_id: identity(&section.local_id).map_err(err("local_id"))?,
        remote_id: identity(&section.remote_id).map_err(err("remote_id"))?,
        psk: Zeroizing::new(section.psk.into_bytes()),
        pubkey,
        ike_proposals: all(&section.ike, ike_proposal).map_err(err("ike"))?,
        child: ChildConfig {
            suites: all(&section.esp, esp_suite).map_err(err("esp"))?,
            pfs_groups: section
                .pfs
                .iter()
                .map(|g| dh_group(g))
                .collect::<Result<_, _>>()
                .map_err(err("pfs"))?,
            local_ts: all(&section.local_ts, traffic_selector).map_err(err("local_ts"))?,
            remote_ts: all(&section.remote_ts, traffic_selector).map_err(err("remote_ts"))?,
        },
        dpd_interval: Duration::from_secs(section.dpd_seconds.max(1)),
        request_server_addresses: section.request_server_addresses,
        server_addresses: section.server_addresses,
    })
}

impl DaemonConfig {
    pub fn parse(text: &str) -> Result<DaemonConfig, ConfigError> {
        let file: File = toml::from_str(text)?;
        let names = |selected: fn(&PeerSection) -> bool| {
            file.peers
                .iter()
                .filter(|p| selected(p))
                .map(|p| p.name.clone())
                .collect::<Vec<_>>()
        };
        let (initiate, trap) = (names(|p| p.initiate), names(|p| p.trap));
        if let Some(p) = file
            .peers
            .iter()
            .find(|p| (p.initiate || p.trap) && p.remote.is_none())
        {
            return Err(ConfigError::Peer {
                peer: p.name.clone(),
                field: "remote",
                problem: "needed to initiate".into(),
            });
        }
        if let Some(p) = file
            .peers
            .iter()
            .find(|p| p.trap && file.daemon.region.is_none())
        {
            return Err(ConfigError::Peer {
                peer: p.name.clone(),
                field: "trap",
                problem: "needs the daemon's region, where the rules go".into(),
            });
        }
        let peers = file
            .peers
            .into_iter()
            .map(peer)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DaemonConfig {
            listen: file.daemon.listen,
            ike_port: file.daemon.ike_port,
            nat_t_port: file.daemon.nat_t_port,
            control_socket: file.daemon.control_socket,
            region: file.daemon.region,
            log_keys: file.daemon.log_keys,
            workers: file
                .daemon
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            engine: EngineConfig {
                ike_lifetime: (file.daemon.ike_lifetime_secs > 0)
                    .then(|| std::time::Duration::from_secs(file.daemon.ike_lifetime_secs)),
                ..EngineConfig::new(peers)
            },
            initiate,
            trap,
        })
    }

    pub fn load(path: &std::path::Path) -> Result<DaemonConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        DaemonConfig::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [daemon]
        listen = "198.18.0.1"
        control_socket = "/tmp/iked.sock"

        [[peer]]
        name = "charon"
        remote = "198.18.0.2"
        local_id = "fqdn:ours.example"
        remote_id = "ip:198.18.0.2"
        psk = "sixteen chars at least"
        ike = ["aes256gcm16-prfsha256-ecp256", "aes128-sha256-modp2048"]
        esp = ["aes256gcm16", "aes128-sha256"]
        pfs = ["ecp256", "curve25519"]
        local_ts = ["198.18.1.0/24"]
        remote_ts = ["198.18.2.0/24", "198.18.3.7"]
        initiate = true
    "#;

    #[test]
    fn a_full_configuration_loads() {
        let config = DaemonConfig::parse(GOOD).unwrap();
        assert_eq!(config.initiate, vec!["charon".to_string()]);
        let peer = &config.engine.peers[0];
        assert_eq!(peer.ike_proposals[1].prf, Prf::HmacSha256);
        assert_eq!(peer.ike_proposals[1].groups, vec![DhGroup::Modp2048]);
        assert_eq!(
            peer.child.suites[1],
            Suite::AesCbc {
                key: AesKeySize::Aes128,
                integrity: Integrity::HmacSha256_128
            }
        );
        assert_eq!(
            peer.child.pfs_groups,
            vec![DhGroup::Ecp256, DhGroup::Curve25519]
        );
        assert_eq!(peer.child.remote_ts[1].start, peer.child.remote_ts[1].end);
        assert_eq!(peer.remote_id.data, vec![198, 18, 0, 2]);
        let without_pfs = GOOD.replace("pfs = [\"ecp256\", \"curve25519\"]", "");
        let config = DaemonConfig::parse(&without_pfs).unwrap();
        assert!(config.engine.peers[0].child.pfs_groups.is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                GOOD.replace("ecp256\"", "ecp257\""),
                "ike: unknown algorithm \"ecp257\"",
            ),
            (
                GOOD.replace("aes128-sha256-modp2048", "aes128-modp2048"),
                "AES-CBC needs an integrity algorithm",
            ),
            (
                GOOD.replace("\"aes128-sha256\"]", "\"des\"]"),
                "esp: unknown ESP proposal",
            ),
            (
                GOOD.replace("\"curve25519\"]", "\"modp1024\"]"),
                "pfs: unknown Diffie-Hellman group \"modp1024\"",
            ),
            (
                GOOD.replace("198.18.1.0/24", "198.18.1.0/33"),
                "local_ts: bad prefix length",
            ),
            (
                GOOD.replace("fqdn:ours.example", "ours.example"),
                "local_id",
            ),
            (
                GOOD.replace("sixteen chars at least", "short"),
                "psk: must be at least 16",
            ),
            (
                GOOD.replace("remote = \"198.18.0.2\"", ""),
                "remote: needed to initiate",
            ),
            (
                GOOD.replace("initiate = true", "trap = true"),
                "trap: needs the daemon's region",
            ),
            (
                GOOD.replace("remote = \"198.18.0.2\"", "")
                    .replace("initiate = true", "trap = true"),
                "remote: needed to initiate",
            ),
            (
                GOOD.replace("dpd", "x")
                    .replace("initiate = true", "bogus = 1"),
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            let error = DaemonConfig::parse(&text).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} should mention {expected:?}"
            );
        }
    }
}
