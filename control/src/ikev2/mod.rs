//! The IKEv2 protocol engine (RFC 7296), sans-IO.
//!
//! Implemented: IKE_SA_INIT (COOKIE, INVALID_KE_PAYLOAD retry, NAT detection and the float to
//! port 4500), IKE_AUTH with pre-shared keys or X.509 certificates (RSA, ECDSA, RFC 7427
//! signatures) and the first child SA (traffic selector narrowing), RFC 7383 fragmentation,
//! INFORMATIONAL (delete of IKE and child SAs, liveness checks), retransmission with exponential
//! backoff and a message ID window of one; from [MS-IKEE], IKE SA correlation (3.10), the
//! INTERNAL_IP4/6_SERVER configuration attributes (3.11) and recognition of Windows vendor IDs
//! (1.7).
//! CREATE_CHILD_SA creates and rekeys child SAs (make before break, no PFS) and rekeys the IKE SA
//! (2.18: new keys from the old SK_d, children moved, old SA deleted; on a lifetime timer or on
//! demand), with the simultaneous-rekey rules of 2.8.1/2.8.2. INVALID_SPI (2.21.4) is sent on the
//! dataplane's report of ESP on an unknown SPI, rate-limited per peer. PFS is not implemented.
mod auth;
pub mod certificate;
pub mod config;
mod correlation;
mod engine;
pub mod error;
mod fragmentation;
mod nat;
mod payloads;
mod proposal;
mod rekey;
mod sa;
mod server_addresses;
pub mod signature;
mod tasks;
mod timer;
mod ts;
mod vendor;

pub use config::{
    ChildConfig, EngineConfig, IkeProposal, PeerConfig, RetransmitPolicy, SpiShard, WallClock,
};
pub use engine::{
    Engine, Event, IkeSaInfo, InitialContact, RandomSpis, SpiSource, Stats, Transmit, NAT_KEEPALIVE,
};
pub use error::Failure;
pub use sa::{ChildSa, DirectionKeys};
pub use vendor::{KnownVendor, Vendor};
