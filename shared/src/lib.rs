//! The contract between the control plane (one writer) and the dataplane (many lock-free
//! readers): one versioned shared-memory region holding the SAD, SPD snapshots, per-SA runtime
//! state and the event ring. See README.md ("Shared region") for the tour.
//!
//! - [`region`]: the mapping and its header; attaching to another ABI or layout fails clearly.
//! - [`ops::Writer`]: the control plane's kernel-IPsec-like API (get_spi, add_sa, ...).
//! - [`reader::Reader`]: a dataplane lcore's lock-free view.
//!
//! Built with `--cfg loom`, only the lock-free cores (`seqlock`, `rcu`, `ring`) are compiled, for
//! model checking (tests/loom.rs).

mod sync;

pub mod rcu;
pub mod ring;
pub mod seqlock;

#[cfg(not(loom))]
pub mod addr;
#[cfg(not(loom))]
pub mod counters;
#[cfg(not(loom))]
pub mod event;
#[cfg(not(loom))]
pub mod inspect;
#[cfg(not(loom))]
pub mod journal;
#[cfg(not(loom))]
pub mod layout;
#[cfg(not(loom))]
pub mod ops;
#[cfg(not(loom))]
pub mod policy;
#[cfg(not(loom))]
pub mod reader;
#[cfg(not(loom))]
pub mod region;
#[cfg(not(loom))]
pub mod sa;
#[cfg(not(loom))]
pub mod sad;
#[cfg(not(loom))]
pub mod spd;
#[cfg(not(loom))]
pub mod synthetic;
