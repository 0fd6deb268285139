//! The ESP dataplane. It reads SAs and policies from the shared region (crate `shared`) and
//! transforms packets; the DPDK poll-mode loop that feeds it comes with the gateway issue.
#![forbid(unsafe_code)]

pub mod buf;
pub mod drop;
pub mod esp;
pub mod wire;

pub use buf::{PacketBuf, SliceBuf};
pub use drop::DropReason;
pub use esp::decrypt::{classify, decapsulate, inbound, Classified, Decapsulated, EspLocation, Inbound};
pub use esp::encrypt::encapsulate;
pub use esp::sa::{InboundSa, InstallError, NatOa, OutboundSa};
