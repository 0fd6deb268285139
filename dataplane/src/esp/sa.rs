//! The runtime context of an SA, prepared once at install from its configuration: cipher contexts
//! with expanded keys, the outer header template, IV and ICV sizes, encapsulation ports and, for
//! inbound SAs, the anti-replay window and the selectors.

use std::net::IpAddr;

use shared::sa::{DfPolicy, Direction, Mode, SaConfig, SaConfigError, SaRecord, CorruptRecord, UdpEncap};

use super::replay::ReplayWindow;
use super::selector::InboundSelectors;
use super::suite::{BadKey, Transform};
use crate::wire::{ipv4, ipv6, proto, udp_encap::UDP_HEADER_LEN};

/// Why an SA cannot be installed in the dataplane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallError {
    Invalid(SaConfigError),
    Corrupt(CorruptRecord),
    /// An inbound SA given to the outbound constructor, or the reverse.
    WrongDirection,
    /// The crypto library refused the key.
    BadKey,
}

impl From<BadKey> for InstallError {
    fn from(_: BadKey) -> Self {
        InstallError::BadKey
    }
}

/// The original addresses of a transport-mode SA behind a NAT (NAT-OA, RFC 3947 5.2), which the
/// sender's TCP/UDP checksums cover (RFC 3948 3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatOa {
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// The outer header written in front of every tunnel-mode packet, filled at install; the per-packet
/// fields (length, DSCP/ECN, DF, identification, checksum) are patched in by the encapsulation.
#[derive(Debug, Clone)]
pub(crate) struct OuterTemplate {
    pub bytes: [u8; ipv6::HEADER_LEN + UDP_HEADER_LEN],
    /// IP header length: 20 or 40.
    pub ip_len: usize,
}

#[derive(Debug)]
pub struct OutboundSa {
    pub(crate) spi: u32,
    pub(crate) mode: Mode,
    pub(crate) esn: bool,
    pub(crate) transform: Transform,
    pub(crate) encap: Option<UdpEncap>,
    pub(crate) df: DfPolicy,
    /// Tunnel mode only.
    pub(crate) outer: Option<OuterTemplate>,
    /// The SA's destination: where its ESP packets go, in either mode (RFC 4301 4.1).
    pub(crate) dst: IpAddr,
}

#[derive(Debug)]
pub struct InboundSa {
    pub(crate) spi: u32,
    pub(crate) mode: Mode,
    pub(crate) esn: bool,
    pub(crate) transform: Transform,
    pub(crate) replay: ReplayWindow,
    pub(crate) selectors: InboundSelectors,
    pub(crate) nat_oa: Option<NatOa>,
}

fn checked(cfg: &SaConfig, direction: Direction) -> Result<Transform, InstallError> {
    cfg.validate().map_err(InstallError::Invalid)?;
    if cfg.direction != direction {
        return Err(InstallError::WrongDirection);
    }
    Ok(Transform::new(cfg.suite, &cfg.enc_key, &cfg.auth_key)?)
}

impl OutboundSa {
    pub fn new(cfg: &SaConfig) -> Result<OutboundSa, InstallError> {
        let transform = checked(cfg, Direction::Out)?;
        let outer = (cfg.mode == Mode::Tunnel).then(|| OuterTemplate::new(cfg.src, cfg.dst, cfg.encap));
        Ok(OutboundSa { spi: cfg.spi, mode: cfg.mode, esn: cfg.esn, transform, encap: cfg.encap, df: cfg.df, outer, dst: cfg.dst })
    }

    pub fn from_record(r: &SaRecord) -> Result<OutboundSa, InstallError> {
        OutboundSa::new(&r.to_config().map_err(InstallError::Corrupt)?)
    }

    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// The largest sequence number this SA may send (RFC 4303 3.3.3).
    pub fn seq_limit(&self) -> u64 {
        if self.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        }
    }
}

impl InboundSa {
    /// `nat_oa`: the original addresses, for a transport-mode SA whose peer is behind a NAT.
    pub fn new(cfg: &SaConfig, nat_oa: Option<NatOa>) -> Result<InboundSa, InstallError> {
        let transform = checked(cfg, Direction::In)?;
        Ok(InboundSa {
            spi: cfg.spi,
            mode: cfg.mode,
            esn: cfg.esn,
            transform,
            replay: ReplayWindow::new(cfg.replay_window),
            selectors: InboundSelectors::new(&cfg.ts_local, &cfg.ts_remote),
            nat_oa,
        })
    }

    pub fn from_record(r: &SaRecord, nat_oa: Option<NatOa>) -> Result<InboundSa, InstallError> {
        InboundSa::new(&r.to_config().map_err(InstallError::Corrupt)?, nat_oa)
    }

    pub fn spi(&self) -> u32 {
        self.spi
    }

    pub fn replay_window(&self) -> &ReplayWindow {
        &self.replay
    }
}

impl OuterTemplate {
    fn new(src: IpAddr, dst: IpAddr, encap: Option<UdpEncap>) -> OuterTemplate {
        let next = if encap.is_some() { proto::UDP } else { proto::ESP };
        let mut bytes = [0u8; ipv6::HEADER_LEN + UDP_HEADER_LEN];
        let ip_len = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let fields = ipv4::Ipv4Fields { tos: 0, total_len: 0, ident: 0, dont_fragment: false, ttl: 64, protocol: next, src: s, dst: d };
                let mut h = [0u8; ipv4::HEADER_LEN];
                fields.emit(&mut h);
                bytes[..ipv4::HEADER_LEN].copy_from_slice(&h);
                ipv4::HEADER_LEN
            }
            // Validation rejects mixed outer families, so this is IPv6 on both sides.
            _ => {
                let mut h = [0u8; ipv6::HEADER_LEN];
                let v6 = |a: IpAddr| match a {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                };
                ipv6::emit(&mut h, 0, 0, next, 64, &v6(src), &v6(dst));
                bytes[..ipv6::HEADER_LEN].copy_from_slice(&h);
                ipv6::HEADER_LEN
            }
        };
        if let Some(e) = encap {
            crate::wire::udp_encap::emit_header(&mut bytes[ip_len..], e.src_port, e.dst_port, 0);
        }
        OuterTemplate { bytes, ip_len }
    }
}
