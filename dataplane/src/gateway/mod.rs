//! The gateway: the per-lcore packet pipeline between a protected and an unprotected port, its
//! configuration file, and the statistics. Nothing here depends on DPDK; the poll loops that feed
//! it with mbufs are in `src/bin/gateway`.

pub mod burst_crypto;
pub mod config;
pub mod counters;
pub mod ether;
pub mod event_limit;
pub mod icmp_error;
pub mod neighbour_solicitation;
pub mod pipeline;
pub mod provision;
pub mod round_traffic;
pub mod routing;
pub mod sa_cache;
pub mod spd_classifier;
pub mod spd_flow_cache;

/// The two sides of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// Towards the networks the gateway protects: cleartext.
    Protected,
    /// Towards the peers: ESP.
    Unprotected,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Protected, Side::Unprotected];

    pub fn name(self) -> &'static str {
        match self {
            Side::Protected => "protected",
            Side::Unprotected => "unprotected",
        }
    }
}
