//! The one error type of the crate, with DPDK's errno turned into readable text.

use std::ffi::CStr;

/// What went wrong in a DPDK call, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("EAL argument {0:?} contains a NUL byte")]
    ArgumentHasNul(String),
    #[error("name {0:?} is empty, too long or contains a NUL byte")]
    InvalidName(String),
    #[error(
        "EAL is already initialised in this process (DPDK allows one initialisation per process)"
    )]
    EalAlreadyInitialized,
    #[error("EAL initialisation failed with arguments {args:?}: {reason} (rte_errno {errno})")]
    EalInit {
        args: Vec<String>,
        errno: i32,
        reason: String,
    },
    #[error("{call} failed: {reason} (errno {errno})")]
    Dpdk {
        call: &'static str,
        errno: i32,
        reason: String,
    },
    #[error("no ethdev port named {0:?} (is the --vdev/-a argument given to the EAL?)")]
    PortNotFound(String),
    #[error("{what} is {value}, which is outside 1..={max}")]
    OutOfRange {
        what: &'static str,
        value: usize,
        max: usize,
    },
    #[error("queue {queue} of port {port} is not configured or already taken")]
    QueueUnavailable { port: u16, queue: u16 },
    #[error("the mempool has no free mbuf")]
    PoolExhausted,
    #[error("the mbuf has no room: {needed} bytes needed, {available} available")]
    NoRoom { needed: usize, available: usize },
    #[error("lcore {0} cannot take a job (not an enabled worker lcore, or busy)")]
    LcoreUnavailable(u32),
    #[error("the job on lcore {0} panicked")]
    JobPanicked(u32),
}

/// Linux's ENOTSUP, which DPDK returns negated for an operation the driver does not implement.
const ENOTSUP: i32 = 95;

impl Error {
    /// Whether a DPDK call failed because the driver does not implement the operation.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Dpdk { errno, .. } if *errno == ENOTSUP)
    }

    /// An error for a DPDK call that returned `-errno` (or -1 and set `rte_errno`).
    pub(crate) fn from_ret(call: &'static str, ret: i32) -> Self {
        let errno = if ret < -1 { -ret } else { rte_errno() };
        Error::Dpdk {
            call,
            errno,
            reason: strerror(errno),
        }
    }

    /// An error for a DPDK call that returned NULL and set `rte_errno`.
    pub(crate) fn from_rte_errno(call: &'static str) -> Self {
        let errno = rte_errno();
        Error::Dpdk {
            call,
            errno,
            reason: strerror(errno),
        }
    }
}

/// DPDK's per-thread errno.
pub(crate) fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local integer; no preconditions.
    unsafe { dpdk_sys::shim_rte_errno() }
}

/// DPDK's text for an errno value (covers the rte-specific codes as well as libc's).
pub(crate) fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a pointer to a NUL-terminated string
    // (static or thread-local) that stays valid until the next call on this thread; we copy it.
    unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(errno)) }
        .to_string_lossy()
        .into_owned()
}
