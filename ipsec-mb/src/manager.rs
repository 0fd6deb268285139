//! The library's manager (`IMB_MGR`): the table of function pointers chosen for this CPU
//! (`init_mb_mgr_auto`) plus the job queues of the job API. A manager made by a thread's private
//! copy of the library ([`crate::library`]) calls into that copy.
//!
//! The direct API (GCM) only reads the function table, so one process-wide manager serves every
//! thread that has no private copy. The job API keeps queued jobs in the manager, so each thread
//! gets its own: for one job at a time, one set up for SSE, where HMAC-SHA1/SHA-256 use the SHA-NI
//! instructions on one buffer, while the AVX2 and AVX-512 managers hash 8 or 16 buffers in SIMD
//! lanes and, with one job in flight, pay for all of them (3-6x slower per packet, measured in
//! BENCHMARKS.md); for bursts, which fill those lanes, one with the best implementations for this
//! CPU.

use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::library::{self, Library};
use crate::sys;

#[derive(Debug)]
pub(crate) struct Manager {
    mgr: NonNull<sys::IMB_MGR>,
    /// The library copy's `free_mb_mgr`.
    free: unsafe extern "C" fn(*mut sys::IMB_MGR),
}

// SAFETY: the manager is plain memory owned by this value; moving it to another thread is fine.
// Sharing it (`Sync`) is only done for the process-wide manager, whose function table is
// read-only after `init_mb_mgr_auto` and whose direct-API functions take no manager argument.
unsafe impl Send for Manager {}
// SAFETY: see above; the job and burst APIs (which mutate the manager) are only used through
// the thread-local managers of `with_job_manager` and `with_burst_manager`, never through
// `shared()`.
unsafe impl Sync for Manager {}

impl Manager {
    /// A manager of `lib` with the best implementations for this CPU.
    pub(crate) fn for_this_cpu(lib: &Library) -> Option<Manager> {
        let m = Manager::alloc(lib)?;
        let mut arch = 0;
        // SAFETY: `m` was just allocated by the same library; `arch` is a valid out-pointer.
        unsafe { (lib.init_mb_mgr_auto)(m.mgr.as_ptr(), &mut arch) };
        Some(m)
    }

    /// A manager of `lib` with the SSE implementations (SHA-NI where the CPU has it).
    fn sse(lib: &Library) -> Option<Manager> {
        let m = Manager::alloc(lib)?;
        // SAFETY: `m` was just allocated by the same library.
        unsafe { (lib.init_mb_mgr_sse)(m.mgr.as_ptr()) };
        Some(m)
    }

    fn alloc(lib: &Library) -> Option<Manager> {
        // SAFETY: alloc_mb_mgr(0) returns a zeroed, 64-byte-aligned manager or NULL.
        NonNull::new(unsafe { (lib.alloc_mb_mgr)(0) }).map(|mgr| Manager { mgr, free: lib.free_mb_mgr })
    }

    pub(crate) fn raw(&self) -> &sys::IMB_MGR {
        // SAFETY: the pointer is valid and initialised for the lifetime of `self`.
        unsafe { self.mgr.as_ref() }
    }

    pub(crate) fn raw_mut(&mut self) -> *mut sys::IMB_MGR {
        self.mgr.as_ptr()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // SAFETY: allocated by the same library's alloc_mb_mgr (a private copy is never unloaded)
        // and not used after this.
        unsafe { (self.free)(self.mgr.as_ptr()) }
    }
}

/// The process-wide manager for the direct API (key setup, GCM).
pub(crate) fn shared() -> Result<&'static Manager, crate::Error> {
    static SHARED: OnceLock<Option<Manager>> = OnceLock::new();
    SHARED.get_or_init(|| Manager::for_this_cpu(&library::LINKED)).as_ref().ok_or(crate::Error::NoManager)
}

thread_local! {
    static JOB_MANAGER: std::cell::RefCell<Option<Manager>> = std::cell::RefCell::new(Manager::sse(library::for_this_thread()));
}

thread_local! {
    static BURST_MANAGER: std::cell::RefCell<Option<Manager>> = std::cell::RefCell::new(Manager::for_this_cpu(library::for_this_thread()));
}

/// Runs `f` with this thread's manager for bursts of jobs: the best implementations for this
/// CPU, whose multi-buffer lanes a burst fills.
pub(crate) fn with_burst_manager<R>(f: impl FnOnce(&mut Manager) -> R) -> Result<R, crate::Error> {
    BURST_MANAGER.with(|m| m.borrow_mut().as_mut().map(f).ok_or(crate::Error::NoManager))
}

/// Runs `f` with this thread's manager for the job API.
pub(crate) fn with_job_manager<R>(f: impl FnOnce(&mut Manager) -> R) -> Result<R, crate::Error> {
    JOB_MANAGER.with(|m| m.borrow_mut().as_mut().map(f).ok_or(crate::Error::NoManager))
}

/// The library's version, e.g. "1.3.0".
pub fn version() -> &'static str {
    // SAFETY: the library returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::imb_get_version_str()) }.to_str().unwrap_or("?")
}
