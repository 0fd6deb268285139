//! Atomics used by the lock-free cores (`seqlock`, `rcu`, `ring`).
//!
//! Built with `RUSTFLAGS="--cfg loom"`, these are loom's model-checked atomics and only those
//! cores are compiled (see `tests/loom.rs`); otherwise they are the standard library's, which
//! have the same layout as the integers they wrap and so can live in the shared mapping.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Spin-wait hint; under loom a yield so the model explores the other threads.
#[inline]
pub(crate) fn spin() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
