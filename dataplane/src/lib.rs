//! The ESP dataplane. It reads SAs and policies from the shared region (crate `shared`) and
//! transforms packets (`esp`, `wire`); `gateway` is the per-lcore pipeline around it (routing,
//! SPD, exception path), fed by the DPDK poll loops of the `gateway` binary.
#![forbid(unsafe_code)]

pub mod buf;
pub mod drop;
pub mod esp;
pub mod gateway;
pub mod nd;
pub mod wire;

pub use buf::{PacketBuf, SliceBuf};
pub use drop::DropReason;
pub use esp::decrypt::{classify, decapsulate, inbound, Classified, Decapsulated, EspLocation, Inbound};
pub use esp::encrypt::encapsulate;
pub use esp::sa::{InboundSa, InstallError, NatOa, OutboundSa};
