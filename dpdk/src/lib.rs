//! Safe interface to DPDK for the gateway: EAL, pktmbuf pools, mbufs, burst I/O on ethdev ports,
//! mbuf rings and lcore launch. Together with `dpdk-sys` this crate is the only place where
//! `unsafe` code is allowed; every block states why it is sound in a `// SAFETY:` comment.
//!
//! Lifetimes carry DPDK's ownership rules: pools borrow the [`Eal`], ports and mbufs borrow the
//! pool their buffers come from, queues borrow their port, and jobs launched on worker lcores are
//! scoped ([`Eal::scope`]) so they may borrow all of these.

mod burst;
mod cycles;
mod eal;
mod error;
mod lcore;
mod mbuf;
mod mempool;
mod port;
mod queue;
mod ring;
mod stats;

pub use burst::{Drain, MbufBurst, BURST_SIZE};
pub use cycles::{tsc, tsc_hz};
pub use eal::Eal;
pub use error::Error;
pub use lcore::{Lcore, LcoreJob, Scope};
pub use mbuf::Mbuf;
pub use mempool::{Mempool, MempoolConfig};
pub use port::{Link, MacAddr, Port, PortConfig, PortId};
pub use queue::{RxQueue, TxQueue};
pub use ring::MbufRing;
pub use stats::{PortStats, QueueStats};
