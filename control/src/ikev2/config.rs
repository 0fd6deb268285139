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
    /// Perfect forward secrecy for child SAs made by CREATE_CHILD_SA (RFC 7296 1.3.1, 1.3.2):
    /// their D-H groups in order of preference, the first one's KE payload is sent; empty for
    /// none. The child SA of IKE_AUTH takes its keys from the IKE SA whatever this says.
    pub pfs_groups: Vec<DhGroup>,
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
    /// Certificate authentication instead of `psk` (RFC 7296 2.15 signatures).
    pub pubkey: Option<std::sync::Arc<super::certificate::PubkeyAuth>>,
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
    /// RFC 7383: announce fragmentation, and fragment encrypted messages longer than this many
    /// bytes (IKE header included, UDP and IP headers not); `None` disables it.
    pub fragment_size: Option<usize>,
    /// Wall-clock time for certificate validity periods, as seen from the engine's clock.
    pub wall_clock: WallClock,
    /// Rekey every IKE SA after about this long, less up to a tenth at random so that both ends
    /// rarely start together (RFC 7296 2.8); `None` never rekeys on time.
    pub ike_lifetime: Option<Duration>,
    /// At most one INVALID_SPI notification per peer in this interval (RFC 7296 2.21.4).
    pub invalid_spi_interval: Duration,
    /// Which of several engines this is (see [`SpiShard`]).
    pub spi_shard: SpiShard,
}

/// Our IKE SPIs are `index` modulo `count`, so that a daemon running `count` engines in parallel
/// routes each message to the engine that holds its IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiShard {
    pub index: u64,
    pub count: u64,
}

impl EngineConfig {
    pub fn new(peers: Vec<PeerConfig>) -> EngineConfig {
        EngineConfig {
            peers,
            cookie_threshold: 1000,
            retransmit: RetransmitPolicy::default(),
            half_open_timeout: Duration::from_secs(30),
            // 1280-byte IPv6 datagrams (RFC 7383 2.5.1) less IPv6, UDP and the non-ESP marker.
            fragment_size: Some(1280 - 40 - 8 - 4),
            wall_clock: WallClock::system(),
            ike_lifetime: None,
            invalid_spi_interval: Duration::from_secs(1),
            spi_shard: SpiShard { index: 0, count: 1 },
        }
    }
}

/// Maps the engine's monotonic clock to UNIX time: `unix_secs` at `at`. Tests move it to check
/// certificates outside their validity period without waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    pub at: std::time::Instant,
    pub unix_secs: i64,
}

impl WallClock {
    /// The system's clocks now (read once, when the configuration is built).
    pub fn system() -> WallClock {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        WallClock {
            at: std::time::Instant::now(),
            unix_secs: unix,
        }
    }

    pub fn unix_at(&self, now: std::time::Instant) -> i64 {
        let delta =
            |a: std::time::Instant, b: std::time::Instant| a.duration_since(b).as_secs() as i64;
        if now >= self.at {
            self.unix_secs + delta(now, self.at)
        } else {
            self.unix_secs - delta(self.at, now)
        }
    }
}
