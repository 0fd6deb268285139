//! What the engine negotiates with each peer.
use crate::crypto::{Integ, Prf, SkEncryption};
use crate::wire::ikev2::{DhGroup, Identification, TrafficSelector};
use shared::sa::Suite;
use std::net::IpAddr;
use std::time::Duration;
use zeroize::Zeroizing;

/// One IKE SA proposal: its Diffie-Hellman groups are offered in order of preference, the first
/// one's KE payload is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeProposal {
    pub encryption: SkEncryption,
    /// Required unless `encryption` is an AEAD.
    pub integrity: Option<Integ>,
    pub prf: Prf,
    pub groups: Vec<DhGroup>,
}

/// The child SA: ESP suites in order of preference and the traffic selectors (RFC 7296 2.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildConfig {
    pub suites: Vec<Suite>,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
}

#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub name: String,
    /// The peer's address; `None` accepts any (responder only).
    pub remote_addr: Option<IpAddr>,
    pub local_id: Identification,
    pub remote_id: Identification,
    pub psk: Zeroizing<Vec<u8>>,
    pub ike_proposals: Vec<IkeProposal>,
    pub child: ChildConfig,
    /// Send a liveness check after this long without hearing from the peer (RFC 7296 2.4).
    pub dpd_interval: Duration,
    /// Initiator: ask for the server's internal addresses ([MS-IKEE] 3.11).
    pub request_server_addresses: bool,
    /// Responder: the internal addresses to give when asked ([MS-IKEE] 3.11).
    pub server_addresses: Vec<IpAddr>,
}

/// Retransmission of requests (RFC 7296 2.1): `base`, then doubling, `tries` sends in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmitPolicy {
    pub base: Duration,
    pub tries: u32,
}

impl Default for RetransmitPolicy {
    fn default() -> Self {
        RetransmitPolicy {
            base: Duration::from_secs(2),
            tries: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub peers: Vec<PeerConfig>,
    /// With this many half-open IKE SAs or more, IKE_SA_INIT requests need a COOKIE (RFC 7296 2.6).
    pub cookie_threshold: usize,
    pub retransmit: RetransmitPolicy,
    /// A half-open responder SA that gets no IKE_AUTH within this time is dropped.
    pub half_open_timeout: Duration,
}

impl EngineConfig {
    pub fn new(peers: Vec<PeerConfig>) -> EngineConfig {
        EngineConfig {
            peers,
            cookie_threshold: 1000,
            retransmit: RetransmitPolicy::default(),
            half_open_timeout: Duration::from_secs(30),
        }
    }
}
