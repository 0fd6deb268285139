//! The gateway's configuration file (TOML): ports, addresses, routes, neighbours, SPD rules and
//! static SAs. Everything is checked when the file is read; an error names the entry and field
//! (`sas[1].enc_key: ...`). See `docs/gateway.toml` for an annotated example.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shared::policy::{Action, Policy, PolicyFlags, Prefix, SaTemplate, Selector};
use shared::sa::{AesKeySize, DfPolicy, Direction, Integrity, Limits, Mode, MsSaFlags, SaConfig, Suite, TrafficSelector, UdpEncap};
use zeroize::Zeroizing;

use super::ether::Mac;
use super::pipeline::{Setup, SideSetup};
use super::routing::{parse_ip, Net, Route, Routes};
use super::Side;
use crate::nd::FlowTableConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {at}: {message}")]
    Invalid { path: PathBuf, at: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    gateway: GatewaySection,
    ports: PortsSection,
    #[serde(default)]
    routes: Vec<RouteEntry>,
    #[serde(default)]
    neighbours: Vec<NeighbourEntry>,
    #[serde(default)]
    policies: Vec<PolicyEntry>,
    #[serde(default)]
    sas: Vec<SaEntry>,
    #[serde(default)]
    negotiation_discovery: NegotiationDiscoverySection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GatewaySection {
    region: PathBuf,
    stats_file: Option<PathBuf>,
    log_interval_secs: u64,
    encap_ports: Vec<u16>,
    idle_sleep_us: u64,
    queues: u16,
    icmp_errors_per_sec: u32,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            region: PathBuf::from(shared::region::DEFAULT_PATH),
            stats_file: None,
            log_interval_secs: 5,
            encap_ports: vec![4500],
            idle_sleep_us: 20,
            queues: 0,
            icmp_errors_per_sec: 100,
        }
    }
}

/// Negotiation discovery and boundary mode ([MS-IKEE] 3.7): the flow state table. Which rules it
/// applies to is said by the rules' own flags (`PolicyEntry`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct NegotiationDiscoverySection {
    enabled: bool,
    flows: u64,
    idle_timeout_secs: u64,
}

impl Default for NegotiationDiscoverySection {
    fn default() -> Self {
        NegotiationDiscoverySection { enabled: false, flows: 1_000_000, idle_timeout_secs: 300 }
    }
}

/// The most flows a table may be sized for (about 69 bytes each: 13.7 GB).
const MAX_ND_FLOWS: u64 = 200_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortsSection {
    protected: PortEntry,
    unprotected: PortEntry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortEntry {
    device: String,
    exception: String,
    #[serde(default)]
    vlan: Option<u16>,
    addresses: Vec<String>,
    #[serde(default = "default_mtu")]
    mtu: u16,
}

fn default_mtu() -> u16 {
    1500
}

/// The smallest MTU a port may have: IPv4's reassembly minimum (RFC 791, RFC 1122 3.3.2), and
/// IPv6's minimum link MTU (RFC 8200 5) on a port with an IPv6 address.
const MIN_MTU_V4: u16 = 576;
const MIN_MTU_V6: u16 = 1280;
/// The largest: a frame (with a VLAN tag) must fit one mbuf's 2048 bytes of data.
const MAX_MTU: u16 = 2048 - 18;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    prefix: String,
    #[serde(default)]
    via: Option<String>,
    #[serde(default)]
    side: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NeighbourEntry {
    address: String,
    mac: String,
    #[serde(default)]
    side: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyEntry {
    direction: String,
    src: String,
    dst: String,
    #[serde(default)]
    proto: Option<toml::Value>,
    #[serde(default)]
    src_ports: Option<[u16; 2]>,
    #[serde(default)]
    dst_ports: Option<[u16; 2]>,
    #[serde(default)]
    icmp_type: Option<u8>,
    #[serde(default)]
    icmp_code: Option<u8>,
    action: String,
    #[serde(default)]
    reqid: Option<u32>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    tunnel: Option<[String; 2]>,
    #[serde(default = "default_priority")]
    priority: u32,
    /// [MS-IKEE] 3.7.1: negotiation discovery applies to this rule (its direction says which).
    #[serde(default)]
    negotiation_discovery: bool,
    /// 3.7.1: the Boundary flag (inbound: cleartext is accepted; outbound: message #5 says so).
    #[serde(default)]
    boundary: bool,
    /// 3.7.1: encryption is guaranteed for this traffic (3.7.4.1; outbound rules).
    #[serde(default)]
    guaranteed_encryption: bool,
}

fn default_priority() -> u32 {
    100
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaEntry {
    direction: String,
    spi: u32,
    mode: String,
    src: String,
    dst: String,
    suite: String,
    enc_key: String,
    #[serde(default)]
    auth_key: Option<String>,
    #[serde(default)]
    reqid: u32,
    #[serde(default)]
    udp_encap: Option<[u16; 2]>,
    #[serde(default = "default_replay_window")]
    replay_window: u32,
    #[serde(default)]
    esn: bool,
    #[serde(default)]
    local: Option<String>,
    #[serde(default)]
    remote: Option<String>,
    /// [MS-IKEE] 3.7.1: the SA matches an inbound negotiation discovery rule on the peer (a
    /// UDP-ESP SA with this flag makes outbound negotiation discovery send cleartext, 3.7.4.1).
    #[serde(default)]
    boundary: bool,
    /// [MS-IKEE] 3.7.1: the SA encrypts and may carry flows with Guaranteed Encryption set.
    #[serde(default)]
    guaranteed_encryption: bool,
}

fn default_replay_window() -> u32 {
    1024
}

/// One port as the dataplane opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The device name the EAL knows (e.g. `net_af_packet0` or a PCI address).
    pub device: String,
    /// `--vdev` argument to create it, for a virtual device (`net_...,args`).
    pub vdev: Option<String>,
    /// The exception interface (a `net_tap` device) and its `--vdev` argument.
    pub exception_device: String,
    pub exception_vdev: String,
    /// The kernel name of the exception interface (`iface=` of the tap).
    pub exception_iface: String,
    pub vlan: Option<u16>,
    pub addresses: Vec<Net>,
    /// The largest IP packet the port sends (without the Ethernet header).
    pub mtu: u16,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub region: PathBuf,
    pub stats_file: Option<PathBuf>,
    pub log_interval_secs: u64,
    pub encap_ports: Vec<u16>,
    pub idle_sleep_us: u64,
    /// RX/TX queues per port (0: one per worker lcore).
    pub queues: u16,
    /// ICMP errors each lcore sends per second at most (0: none).
    pub icmp_errors_per_sec: u32,
    pub protected: PortSpec,
    pub unprotected: PortSpec,
    pub routes: Vec<Route>,
    pub neighbours: HashMap<(Side, IpAddr), Mac>,
    pub policies: Vec<Policy>,
    pub sas: Vec<SaConfig>,
    /// Negotiation discovery ([MS-IKEE] 3.7): its flow state table, when enabled.
    pub negotiation_discovery: Option<FlowTableConfig>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| ConfigError::Syntax { path: path.to_owned(), message: e.to_string() })?;
        let invalid = |at: String, message: String| ConfigError::Invalid { path: path.to_owned(), at, message };
        let protected = port(&file.ports.protected).map_err(|(f, m)| invalid(format!("ports.protected.{f}"), m))?;
        let unprotected = port(&file.ports.unprotected).map_err(|(f, m)| invalid(format!("ports.unprotected.{f}"), m))?;
        if file.gateway.encap_ports.contains(&0) {
            return Err(invalid("gateway.encap_ports".into(), "port 0 is not a UDP port".into()));
        }
        let side_of = |ip: IpAddr| -> Option<Side> {
            [(Side::Protected, &protected), (Side::Unprotected, &unprotected)]
                .into_iter()
                .find(|(_, p)| p.addresses.iter().any(|n| n.contains(ip)))
                .map(|(s, _)| s)
        };
        let mut routes: Vec<Route> = Vec::new();
        for (side, spec) in [(Side::Protected, &protected), (Side::Unprotected, &unprotected)] {
            routes.extend(spec.addresses.iter().map(|n| Route { net: *n, side, via: None }));
        }
        for (i, r) in file.routes.iter().enumerate() {
            let at = |f: &str| format!("routes[{i}].{f}");
            let net: Net = r.prefix.parse().map_err(|m| invalid(at("prefix"), m))?;
            let via = r
                .via
                .as_deref()
                .map(|v| parse_ip(v).map_err(|m| invalid(at("via"), m)))
                .transpose()?;
            let side = match (&r.side, via) {
                (Some(s), _) => parse_side(s).map_err(|m| invalid(at("side"), m))?,
                (None, Some(v)) => side_of(v).ok_or_else(|| invalid(at("via"), format!("{v} is on none of the ports' subnets")))?,
                (None, None) => return Err(invalid(at("via"), "a route needs a next hop ('via') or a 'side'".into())),
            };
            if via.is_some_and(|v| v.is_ipv4() != net.addr.is_ipv4()) {
                return Err(invalid(at("via"), "next hop and prefix are of different address families".into()));
            }
            routes.push(Route { net, side, via });
        }
        let mut neighbours = HashMap::new();
        for (i, n) in file.neighbours.iter().enumerate() {
            let at = |f: &str| format!("neighbours[{i}].{f}");
            let ip = parse_ip(&n.address).map_err(|m| invalid(at("address"), m))?;
            let mac: Mac = n.mac.parse().map_err(|m| invalid(at("mac"), m))?;
            let side = match &n.side {
                Some(s) => parse_side(s).map_err(|m| invalid(at("side"), m))?,
                None => side_of(ip).ok_or_else(|| invalid(at("address"), format!("{ip} is on none of the ports' subnets; give 'side'")))?,
            };
            neighbours.insert((side, ip), mac);
        }
        let policies = file
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| policy(p).map_err(|(f, m)| invalid(format!("policies[{i}].{f}"), m)))
            .collect::<Result<Vec<_>, _>>()?;
        let negotiation_discovery = negotiation_discovery(&file.negotiation_discovery).map_err(|(f, m)| invalid(format!("negotiation_discovery.{f}"), m))?;
        if negotiation_discovery.is_none() {
            if let Some(i) = file.policies.iter().position(|p| p.negotiation_discovery) {
                let message = "this rule needs negotiation discovery, which is off (negotiation_discovery.enabled = true)";
                return Err(invalid(format!("policies[{i}].negotiation_discovery"), message.into()));
            }
        }
        let sas = file
            .sas
            .iter()
            .enumerate()
            .map(|(i, s)| sa(s).map_err(|(f, m)| invalid(format!("sas[{i}].{f}"), m)))
            .collect::<Result<Vec<_>, _>>()?;
        let g = file.gateway;
        Ok(Config {
            region: g.region,
            stats_file: g.stats_file,
            log_interval_secs: g.log_interval_secs,
            encap_ports: g.encap_ports,
            idle_sleep_us: g.idle_sleep_us,
            queues: g.queues,
            icmp_errors_per_sec: g.icmp_errors_per_sec,
            protected,
            unprotected,
            routes,
            neighbours,
            policies,
            sas,
            negotiation_discovery,
        })
    }

    /// The pipeline's setup, once the ports' MAC addresses are known.
    pub fn setup(&self, protected_mac: Mac, unprotected_mac: Mac) -> Setup {
        let side = |spec: &PortSpec, mac| SideSetup { mac, vlan: spec.vlan, addresses: spec.addresses.clone(), mtu: spec.mtu };
        Setup {
            protected: side(&self.protected, protected_mac),
            unprotected: side(&self.unprotected, unprotected_mac),
            routes: Routes::new(self.routes.clone()),
            neighbours: self.neighbours.clone(),
            encap_ports: self.encap_ports.clone(),
            icmp_errors_per_sec: self.icmp_errors_per_sec,
        }
    }
}

type FieldError = (&'static str, String);

fn parse_side(s: &str) -> Result<Side, String> {
    match s {
        "protected" => Ok(Side::Protected),
        "unprotected" => Ok(Side::Unprotected),
        _ => Err(format!("'{s}' is not a side (protected, unprotected)")),
    }
}

fn port(p: &PortEntry) -> Result<PortSpec, FieldError> {
    let device_name = |spec: &str| spec.split(',').next().unwrap_or_default().to_owned();
    let vdev = p.device.starts_with("net_").then(|| p.device.clone());
    if !p.exception.starts_with("net_tap") {
        return Err(("exception", format!("'{}' is not a net_tap device (net_tapN,iface=NAME)", p.exception)));
    }
    let iface = p
        .exception
        .split(',')
        .find_map(|kv| kv.strip_prefix("iface="))
        .ok_or(("exception", format!("'{}' names no kernel interface (iface=NAME)", p.exception)))?;
    if p.vlan.is_some_and(|v| v == 0 || v > 4094) {
        return Err(("vlan", format!("{} is not a VLAN id (1..=4094)", p.vlan.unwrap_or(0))));
    }
    let addresses = p.addresses.iter().map(|a| a.parse::<Net>()).collect::<Result<Vec<_>, _>>().map_err(|m| ("addresses", m))?;
    if addresses.is_empty() {
        return Err(("addresses", "a port needs at least one address".into()));
    }
    let min_mtu = if addresses.iter().any(|n| n.addr.is_ipv6()) { MIN_MTU_V6 } else { MIN_MTU_V4 };
    if !(min_mtu..=MAX_MTU).contains(&p.mtu) {
        let why = if min_mtu == MIN_MTU_V6 { " (the port has an IPv6 address)" } else { "" };
        return Err(("mtu", format!("{} is not an MTU for this port: {min_mtu}..={MAX_MTU}{why}", p.mtu)));
    }
    Ok(PortSpec {
        device: device_name(&p.device),
        vdev,
        exception_device: device_name(&p.exception),
        exception_vdev: p.exception.clone(),
        exception_iface: iface.to_owned(),
        vlan: p.vlan,
        addresses,
        mtu: p.mtu,
    })
}

fn direction(s: &str) -> Result<Direction, FieldError> {
    match s {
        "in" => Ok(Direction::In),
        "out" => Ok(Direction::Out),
        _ => Err(("direction", format!("'{s}' is not a direction (in, out)"))),
    }
}

fn mode(s: &str) -> Result<Mode, FieldError> {
    match s {
        "tunnel" => Ok(Mode::Tunnel),
        "transport" => Ok(Mode::Transport),
        _ => Err(("mode", format!("'{s}' is not a mode (tunnel, transport)"))),
    }
}

fn ip(field: &'static str, s: &str) -> Result<IpAddr, FieldError> {
    parse_ip(s).map_err(|m| (field, m))
}

fn prefix(field: &'static str, s: &str) -> Result<Prefix, FieldError> {
    // A bare address is a host prefix.
    let net: Net = if s.contains('/') {
        s.parse().map_err(|m| (field, m))?
    } else {
        Net { addr: ip(field, s)?, len: if s.contains(':') { 128 } else { 32 } }
    };
    Ok(Prefix::new(net.addr, net.len))
}

fn protocol(v: &toml::Value) -> Result<Option<u8>, FieldError> {
    let named = |s: &str| match s {
        "any" => Ok(None),
        "icmp" => Ok(Some(1)),
        "tcp" => Ok(Some(6)),
        "udp" => Ok(Some(17)),
        "esp" => Ok(Some(50)),
        "icmpv6" => Ok(Some(58)),
        "sctp" => Ok(Some(132)),
        _ => Err(("proto", format!("'{s}' is not a protocol (any, icmp, tcp, udp, esp, icmpv6, sctp or a number)"))),
    };
    match v {
        toml::Value::String(s) => named(s),
        toml::Value::Integer(n) => u8::try_from(*n).map(Some).map_err(|_| ("proto", format!("{n} is not a protocol number"))),
        _ => Err(("proto", "expected a name or a number".into())),
    }
}

fn policy(p: &PolicyEntry) -> Result<Policy, FieldError> {
    let direction = direction(&p.direction)?;
    let src = prefix("src", &p.src)?;
    let dst = prefix("dst", &p.dst)?;
    let action = match p.action.as_str() {
        "bypass" => Action::Bypass,
        "discard" => Action::Discard,
        "protect" => {
            let reqid = p.reqid.ok_or(("reqid", "a protect rule needs the reqid of its SA".to_owned()))?;
            let mode = mode(p.mode.as_deref().unwrap_or("tunnel"))?;
            let (tsrc, tdst) = match (&p.tunnel, mode) {
                (Some([s, d]), _) => (ip("tunnel", s)?, ip("tunnel", d)?),
                (None, Mode::Transport) => (src.addr, dst.addr),
                (None, Mode::Tunnel) => return Err(("tunnel", "a tunnel-mode protect rule needs tunnel = [local, remote]".into())),
            };
            Action::Protect { reqid, template: SaTemplate { mode, src: tsrc, dst: tdst } }
        }
        other => return Err(("action", format!("'{other}' is not an action (bypass, discard, protect)"))),
    };
    let full = [0, u16::MAX];
    let policy = Policy {
        priority: p.priority,
        direction,
        selector: Selector {
            src,
            dst,
            proto: p.proto.as_ref().map(protocol).transpose()?.flatten(),
            src_ports: p.src_ports.unwrap_or(full).into(),
            dst_ports: p.dst_ports.unwrap_or(full).into(),
            icmp_type: p.icmp_type,
            icmp_code: p.icmp_code,
        },
        action,
        flags: nd_flags(p, direction)?,
    };
    policy.validate().map_err(|e| ("selector", e.to_string()))?;
    Ok(policy)
}

/// The table of an enabled `[negotiation_discovery]` section.
fn negotiation_discovery(nd: &NegotiationDiscoverySection) -> Result<Option<FlowTableConfig>, FieldError> {
    if !nd.enabled {
        return Ok(None);
    }
    if !(1..=MAX_ND_FLOWS).contains(&nd.flows) {
        return Err(("flows", format!("{} is not a table size (1..={MAX_ND_FLOWS} flows)", nd.flows)));
    }
    let idle_timeout = u32::try_from(nd.idle_timeout_secs)
        .ok()
        .filter(|t| *t > 0)
        .ok_or(("idle_timeout_secs", format!("{} is not a timeout (1..={} seconds)", nd.idle_timeout_secs, u32::MAX)))?;
    Ok(Some(FlowTableConfig { capacity: nd.flows as usize, idle_timeout }))
}

/// A rule's [MS-IKEE] 3.7.1 policy flags.
fn nd_flags(p: &PolicyEntry, direction: Direction) -> Result<PolicyFlags, FieldError> {
    if p.negotiation_discovery && p.action != "protect" {
        return Err(("negotiation_discovery", "negotiation discovery applies to protect rules only".into()));
    }
    if p.boundary && !p.negotiation_discovery {
        return Err(("boundary", "the Boundary flag is for negotiation discovery rules (negotiation_discovery = true)".into()));
    }
    if p.guaranteed_encryption && !(p.negotiation_discovery && direction == Direction::Out) {
        let message = "guaranteed encryption is for outbound negotiation discovery rules (3.7.4.1; inbound, the SA's flag applies)";
        return Err(("guaranteed_encryption", message.into()));
    }
    Ok(PolicyFlags {
        nd_inbound: p.negotiation_discovery && direction == Direction::In,
        nd_outbound: p.negotiation_discovery && direction == Direction::Out,
        boundary: p.boundary,
        guaranteed_encryption: p.guaranteed_encryption,
        negotiated: false,
    })
}

fn suite(s: &str) -> Result<Suite, FieldError> {
    use AesKeySize::*;
    Ok(match s {
        "aes-gcm-128" => Suite::AesGcm { key: Aes128, icv_len: 16 },
        "aes-gcm-256" => Suite::AesGcm { key: Aes256, icv_len: 16 },
        "aes-cbc-128-hmac-sha1" => Suite::AesCbc { key: Aes128, integrity: Integrity::HmacSha1_96 },
        "aes-cbc-128-hmac-sha256" => Suite::AesCbc { key: Aes128, integrity: Integrity::HmacSha256_128 },
        "aes-cbc-256-hmac-sha1" => Suite::AesCbc { key: Aes256, integrity: Integrity::HmacSha1_96 },
        "aes-cbc-256-hmac-sha256" => Suite::AesCbc { key: Aes256, integrity: Integrity::HmacSha256_128 },
        "aes-gmac-128" => Suite::AesGmac { key: Aes128 },
        "aes-gmac-256" => Suite::AesGmac { key: Aes256 },
        _ => {
            return Err((
                "suite",
                format!("'{s}' is not a suite (aes-gcm-128, aes-gcm-256, aes-cbc-{{128,256}}-hmac-{{sha1,sha256}}, aes-gmac-{{128,256}})"),
            ))
        }
    })
}

fn hex_key(field: &'static str, s: &str, expected: usize) -> Result<Zeroizing<Vec<u8>>, FieldError> {
    let digits: String = s.chars().filter(|c| *c != ':').collect();
    if digits.len() != expected * 2 {
        return Err((field, format!("expected {} hex digits ({expected} bytes), got {}", expected * 2, digits.len())));
    }
    let bytes = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| (field, "not hexadecimal".to_owned()))?;
    Ok(Zeroizing::new(bytes))
}

/// A traffic selector covering a prefix.
fn selector(field: &'static str, s: Option<&str>, family_of: IpAddr) -> Result<TrafficSelector, FieldError> {
    let Some(s) = s else { return Ok(TrafficSelector::any_of_family(family_of)) };
    let p = prefix(field, s)?;
    let (start, end) = match p.addr {
        IpAddr::V4(a) => {
            let mask = if p.len == 0 { 0 } else { u32::MAX << (32 - u32::from(p.len)) };
            (IpAddr::from((u32::from(a) & mask).to_be_bytes()), IpAddr::from((u32::from(a) | !mask).to_be_bytes()))
        }
        IpAddr::V6(a) => {
            let mask = if p.len == 0 { 0 } else { u128::MAX << (128 - u32::from(p.len)) };
            (IpAddr::from((u128::from(a) & mask).to_be_bytes()), IpAddr::from((u128::from(a) | !mask).to_be_bytes()))
        }
    };
    Ok(TrafficSelector { start, end, proto: 0, start_port: 0, end_port: u16::MAX })
}

fn sa(s: &SaEntry) -> Result<SaConfig, FieldError> {
    let suite = suite(&s.suite)?;
    let src = ip("src", &s.src)?;
    let dst = ip("dst", &s.dst)?;
    let auth_key = match (suite.auth_key_len(), &s.auth_key) {
        (0, None) => Zeroizing::new(Vec::new()),
        (0, Some(_)) => return Err(("auth_key", format!("{} has no separate integrity key", s.suite))),
        (n, Some(k)) => hex_key("auth_key", k, n)?,
        (n, None) => return Err(("auth_key", format!("{} needs a {n}-byte integrity key", s.suite))),
    };
    if s.guaranteed_encryption && matches!(suite, Suite::AesGmac { .. }) {
        // [MS-IKEE] 3.7.1: the flag is for encryption SAs.
        return Err(("guaranteed_encryption", format!("{} does not encrypt", s.suite)));
    }
    let config = SaConfig {
        spi: s.spi,
        direction: direction(&s.direction)?,
        mode: mode(&s.mode)?,
        src,
        dst,
        encap: s.udp_encap.map(|[src_port, dst_port]| UdpEncap { src_port, dst_port }),
        suite,
        enc_key: hex_key("enc_key", &s.enc_key, suite.enc_key_len())?,
        auth_key,
        esn: s.esn,
        replay_window: s.replay_window,
        df: DfPolicy::Copy,
        ts_local: selector("local", s.local.as_deref(), src)?,
        ts_remote: selector("remote", s.remote.as_deref(), src)?,
        soft: Limits::default(),
        hard: Limits::default(),
        idle_timeout_secs: 0,
        ms_flags: MsSaFlags { boundary: s.boundary, guaranteed_encryption: s.guaranteed_encryption },
        reqid: s.reqid,
        policy_id: 0,
    };
    config.validate().map_err(|e| ("sa", e.to_string()))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const EXAMPLE: &str = r#"
[gateway]
region = "/dev/shm/test.region"

[ports.protected]
device = "net_af_packet0,iface=p0"
exception = "net_tap0,iface=tp0"
addresses = ["198.18.1.1/24", "2001:2:0:1::1/64"]

[ports.unprotected]
device = "net_af_packet1,iface=u0"
exception = "net_tap1,iface=tu0"
addresses = ["198.18.0.1/30"]

[[routes]]
prefix = "198.18.2.0/24"
via = "198.18.0.2"

[[neighbours]]
address = "198.18.0.2"
mac = "02:00:00:00:0b:01"

[[policies]]
direction = "out"
src = "198.18.1.0/24"
dst = "198.18.2.0/24"
action = "protect"
reqid = 1
tunnel = ["198.18.0.1", "198.18.0.2"]

[[sas]]
direction = "out"
spi = 0x1001
mode = "tunnel"
src = "198.18.0.1"
dst = "198.18.0.2"
suite = "aes-gcm-256"
enc_key = "0101010101010101010101010101010101010101010101010101010101010101a0a1a2a3"
reqid = 1
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("gw.toml"), text)
    }

    #[test]
    fn reads_a_complete_file() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.protected.device, "net_af_packet0");
        assert_eq!(c.protected.vdev.as_deref(), Some("net_af_packet0,iface=p0"));
        assert_eq!(c.unprotected.exception_iface, "tu0");
        let r = Routes::new(c.routes.clone());
        assert_eq!(r.lookup("198.18.2.9".parse().unwrap()), Some((Side::Unprotected, "198.18.0.2".parse().unwrap())));
        assert_eq!(r.lookup("198.18.1.9".parse().unwrap()), Some((Side::Protected, "198.18.1.9".parse().unwrap())));
        assert_eq!(c.neighbours[&(Side::Unprotected, "198.18.0.2".parse().unwrap())], Mac([2, 0, 0, 0, 0x0b, 1]));
        assert_eq!(c.sas[0].spi, 0x1001);
        assert!(matches!(c.policies[0].action, Action::Protect { reqid: 1, .. }));
    }

    #[test]
    fn the_documented_example_is_valid() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/gateway.toml"));
        let c = Config::load(path).unwrap();
        assert_eq!((c.sas.len(), c.policies.len(), c.routes.len()), (2, 2, 5));
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let cases = [
            (EXAMPLE.replace("a0a1a2a3\"", "a0a1a2\""), "sas[0].enc_key: expected 72 hex digits"),
            (EXAMPLE.replace("aes-gcm-256", "aes-gcm-512"), "sas[0].suite: 'aes-gcm-512' is not a suite"),
            (EXAMPLE.replace("spi = 0x1001", "spi = 7"), "sas[0].sa: SPI 0x00000007 is reserved"),
            (EXAMPLE.replace("via = \"198.18.0.2\"", "via = \"198.19.0.2\""), "routes[0].via: 198.19.0.2 is on none of the ports' subnets"),
            (EXAMPLE.replace("mac = \"02:00:00:00:0b:01\"", "mac = \"02:00\""), "neighbours[0].mac: '02:00' is not a MAC address"),
            (EXAMPLE.replace("reqid = 1\ntunnel", "tunnel"), "policies[0].reqid: a protect rule needs the reqid"),
            (EXAMPLE.replace("\"198.18.0.1/30\"", "\"198.18.0.1/40\""), "ports.unprotected.addresses: prefix length '40' must be 0..=32"),
            (
                EXAMPLE.replace("exception = \"net_tap1,iface=tu0\"", "exception = \"net_tap1\""),
                "ports.unprotected.exception: 'net_tap1' names no kernel interface",
            ),
            (EXAMPLE.replace("[gateway]", "[gateway]\nbogus = 1"), "unknown field `bogus`"),
            (
                EXAMPLE.replace("addresses = [\"198.18.0.1/30\"]", "addresses = [\"198.18.0.1/30\"]\nmtu = 500"),
                "ports.unprotected.mtu: 500 is not an MTU for this port: 576..=2030",
            ),
            (
                EXAMPLE.replace("addresses = [\"198.18.1.1/24\", \"2001:2:0:1::1/64\"]", "addresses = [\"198.18.1.1/24\", \"2001:2:0:1::1/64\"]\nmtu = 1000"),
                "ports.protected.mtu: 1000 is not an MTU for this port: 1280..=2030 (the port has an IPv6 address)",
            ),
            (EXAMPLE.replace("[gateway]", "[gateway]\nicmp_errors_per_sec = -1"), "icmp_errors_per_sec"),
            // IPv4-mapped IPv6 addresses (RFC 4942 2.2), wherever an address goes.
            (EXAMPLE.replace("dst = \"198.18.0.2\"", "dst = \"::ffff:198.18.0.2\""), "sas[0].dst: '::ffff:198.18.0.2' is an IPv4-mapped IPv6 address"),
            (EXAMPLE.replace("\"198.18.0.1\", \"198.18.0.2\"]", "\"198.18.0.1\", \"::ffff:198.18.0.2\"]"), "policies[0].tunnel: '::ffff:198.18.0.2' is an IPv4-mapped"),
            (EXAMPLE.replace("dst = \"198.18.2.0/24\"", "dst = \"::ffff:198.18.2.0/120\""), "policies[0].dst: '::ffff:198.18.2.0' is an IPv4-mapped"),
            (EXAMPLE.replace("prefix = \"198.18.2.0/24\"", "prefix = \"::ffff:198.18.2.0/120\""), "routes[0].prefix: '::ffff:198.18.2.0' is an IPv4-mapped"),
            (EXAMPLE.replace("via = \"198.18.0.2\"", "via = \"::ffff:198.18.0.2\""), "routes[0].via: '::ffff:198.18.0.2' is an IPv4-mapped"),
            (EXAMPLE.replace("address = \"198.18.0.2\"", "address = \"::ffff:198.18.0.2\""), "neighbours[0].address: '::ffff:198.18.0.2' is an IPv4-mapped"),
            (EXAMPLE.replace("\"2001:2:0:1::1/64\"", "\"::ffff:198.18.1.1/120\""), "ports.protected.addresses: '::ffff:198.18.1.1' is an IPv4-mapped"),
        ];
        for (text, expected) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
            assert!(err.starts_with("gw.toml: "), "{err}");
        }
    }

    /// EXAMPLE with negotiation discovery on and `rule` appended to its outbound rule.
    fn with_nd(section: &str, rule: &str) -> String {
        EXAMPLE.replace("tunnel = [\"198.18.0.1\", \"198.18.0.2\"]", &format!("tunnel = [\"198.18.0.1\", \"198.18.0.2\"]\n{rule}"))
            + "\n[negotiation_discovery]\n"
            + section
    }

    #[test]
    fn the_documented_example_enables_negotiation_discovery() {
        let c = Config::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/gateway.toml"))).unwrap();
        assert_eq!(c.negotiation_discovery, Some(FlowTableConfig { capacity: 1_000_000, idle_timeout: 300 }));
        assert_eq!(c.policies[0].flags, PolicyFlags { nd_outbound: true, ..PolicyFlags::default() });
    }

    #[test]
    fn negotiation_discovery_is_off_unless_enabled() {
        assert_eq!(parse(EXAMPLE).unwrap().negotiation_discovery, None);
        assert_eq!(parse(&with_nd("enabled = false", "")).unwrap().negotiation_discovery, None);
        let c = parse(&with_nd("enabled = true\nflows = 5000\nidle_timeout_secs = 30", "negotiation_discovery = true\nguaranteed_encryption = true")).unwrap();
        assert_eq!(c.negotiation_discovery, Some(FlowTableConfig { capacity: 5000, idle_timeout: 30 }));
        let flags = PolicyFlags { nd_outbound: true, guaranteed_encryption: true, ..PolicyFlags::default() };
        assert_eq!(c.policies[0].flags, flags);
        let defaults = parse(&with_nd("enabled = true", "")).unwrap();
        assert_eq!(defaults.negotiation_discovery, Some(FlowTableConfig { capacity: 1_000_000, idle_timeout: 300 }));
        assert_eq!(defaults.policies[0].flags, PolicyFlags::default());
    }

    #[test]
    fn an_inbound_boundary_rule_has_the_inbound_flags() {
        let inbound = EXAMPLE.replace("direction = \"out\"\nsrc = \"198.18.1.0/24\"\ndst = \"198.18.2.0/24\"", "direction = \"in\"\nsrc = \"198.18.2.0/24\"\ndst = \"198.18.1.0/24\"");
        let text = inbound.replace("reqid = 1\ntunnel", "reqid = 1\nnegotiation_discovery = true\nboundary = true\ntunnel") + "\n[negotiation_discovery]\nenabled = true\n";
        let c = parse(&text).unwrap();
        assert_eq!(c.policies[0].flags, PolicyFlags { nd_inbound: true, boundary: true, ..PolicyFlags::default() });
    }

    #[test]
    fn static_sas_carry_the_ms_ikee_sa_flags() {
        assert_eq!(parse(EXAMPLE).unwrap().sas[0].ms_flags, MsSaFlags::default());
        // The example's last table is its one SA.
        let flagged = format!("{EXAMPLE}boundary = true\nguaranteed_encryption = true\n");
        assert_eq!(parse(&flagged).unwrap().sas[0].ms_flags, MsSaFlags { boundary: true, guaranteed_encryption: true });
        let gmac = flagged.replace("suite = \"aes-gcm-256\"", "suite = \"aes-gmac-256\"");
        let err = parse(&gmac).unwrap_err().to_string();
        assert!(err.contains("sas[0].guaranteed_encryption: aes-gmac-256 does not encrypt"), "{err}");
    }

    #[test]
    fn negotiation_discovery_errors_name_the_field() {
        let on = "enabled = true";
        let cases = [
            (with_nd("enabled = false", "negotiation_discovery = true"), "policies[0].negotiation_discovery: this rule needs negotiation discovery, which is off"),
            (with_nd(on, "boundary = true"), "policies[0].boundary: the Boundary flag is for negotiation discovery rules"),
            (with_nd(on, "guaranteed_encryption = true"), "policies[0].guaranteed_encryption: guaranteed encryption is for outbound negotiation discovery rules"),
            (
                with_nd(on, "negotiation_discovery = true").replace("action = \"protect\"", "action = \"bypass\""),
                "policies[0].negotiation_discovery: negotiation discovery applies to protect rules only",
            ),
            (with_nd("enabled = true\nflows = 0", ""), "negotiation_discovery.flows: 0 is not a table size"),
            (with_nd("enabled = true\nflows = 300000000", ""), "negotiation_discovery.flows: 300000000 is not a table size"),
            (with_nd("enabled = true\nidle_timeout_secs = 0", ""), "negotiation_discovery.idle_timeout_secs: 0 is not a timeout"),
            (with_nd("enabled = true\nidle = 5", ""), "unknown field `idle`"),
        ];
        for (text, expected) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
        }
    }
}
