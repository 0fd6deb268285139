//! Negotiation discovery and boundary mode ([MS-IKEE] 1.3.5, 3.7) in the dataplane.
//!
//! Outbound traffic matching a negotiation discovery rule goes out in cleartext while IKE
//! negotiates (one ACQUIRE per flow), and under ESP once an SA exists; inbound, a boundary-mode
//! rule accepts cleartext from hosts without IPsec. A per-flow state table shared by every lcore
//! makes sure that a flow, once secured, is never sent or accepted in cleartext again.
//!
//! - [`flow_key`]: the 3.1.1 connection entries (TCP/UDP 5-tuples, ICMP type and code,
//!   protocol-only; IPv4 and IPv6), oriented so both directions share one entry.
//! - [`flags`]: the 3.7.1 Secure, Guaranteed Encryption and Acquire flags.
//! - [`table`]: the lock-free flow state table (bounded, allocated once, aging, full handling).
//! - [`outbound`] and [`inbound`]: 3.7.4.1 and 3.7.4.2 as pure functions.
//! - [`engine`]: both, per packet and per burst, with flag updates, ACQUIRE events to the control
//!   plane (`shared::event::Event::Acquire` with the EXCHANGE_INFO flags for Quick Mode message
//!   #5) and [`stats`].
//! - [`gateway_hook`]: one lcore's handle for the gateway pipeline's SPD decision points, which
//!   also counts cleartext decisions by SPD rule and publishes its counts to the engine's
//!   [`report`] board.

pub mod engine;
pub mod flags;
pub mod flow_key;
pub mod gateway_hook;
pub mod inbound;
pub mod outbound;
pub mod report;
pub mod stats;
pub mod table;

pub use engine::{EventSink, InboundPacket, NdLcore, NegotiationDiscovery, OutboundPacket};
pub use flags::FlowFlags;
pub use flow_key::{FlowKey, Transport};
pub use gateway_hook::NdHook;
pub use inbound::{Arrival, InboundBranch, InboundFlow, InboundVerdict};
pub use outbound::{Acquire, FlowView, OutboundBranch, OutboundVerdict, SaMatch};
pub use report::{LcoreCounts, NdReport};
pub use stats::{NdStats, RuleCounts};
pub use table::{Entry, FlowTable, FlowTableConfig, TableStats};
