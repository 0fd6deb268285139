//! The Environment Abstraction Layer: initialised once per process, cleaned up on drop.

use std::ffi::{c_char, CStr, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{rte_errno, strerror, Error};

/// DPDK supports one EAL initialisation per process, even after `rte_eal_cleanup`.
static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised EAL. The thread that creates it becomes the main lcore; `Eal` is neither
/// `Send` nor `Sync`, so launching and waiting for jobs and the cleanup stay on that thread.
#[derive(Debug)]
pub struct Eal {
    /// Arguments after the ones the EAL consumed (those after `--`).
    remaining: Vec<String>,
    /// The argument strings handed to `rte_eal_init`; dropped after the cleanup in `drop`.
    _argv: OwnedArgv,
    _main_thread_only: PhantomData<*const ()>,
}

impl Eal {
    /// Initialises the EAL with `args` exactly as on a DPDK command line, without the program
    /// name (this function supplies it), e.g. `["-l", "0", "--no-huge", "--vdev=net_ring0"]`.
    /// Arguments after a `--` are not parsed; they are returned by [`Eal::remaining_args`].
    pub fn init(args: Vec<String>) -> Result<Eal, Error> {
        let program = std::env::args().next().unwrap_or_else(|| "dpdk".to_owned());
        let argv = OwnedArgv::new(std::iter::once(program).chain(args.iter().cloned()))?;
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::EalAlreadyInitialized);
        }
        // getopt permutes the pointer array, so EAL gets a copy; the strings stay in `argv`.
        let mut permuted = argv.0.clone();
        let argc = i32::try_from(permuted.len()).map_err(|_| Error::OutOfRange {
            what: "the number of EAL arguments",
            value: permuted.len(),
            max: i32::MAX as usize,
        })?;
        // SAFETY: `permuted` holds argc valid, NUL-terminated, writable strings that outlive the
        // EAL (`argv` moves into the Eal and is freed after rte_eal_cleanup); INITIALISED
        // guarantees a single successful call.
        let parsed = unsafe { dpdk_sys::rte_eal_init(argc, permuted.as_mut_ptr()) };
        if parsed < 0 {
            let errno = rte_errno();
            // A failed init leaves the EAL uninitialised (DPDK allows another attempt) and
            // nothing to clean up.
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(Error::EalInit {
                args,
                errno,
                reason: strerror(errno),
            });
        }
        // The EAL leaves argv[parsed] pointing at the program name, followed by the rest.
        let first_unparsed = parsed as usize + 1;
        let remaining = permuted
            .get(first_unparsed..)
            .unwrap_or_default()
            .iter()
            // SAFETY: every entry is one of our NUL-terminated strings, merely reordered.
            .map(|&a| unsafe { CStr::from_ptr(a) }.to_string_lossy().into_owned())
            .collect();
        Ok(Eal {
            remaining,
            _argv: argv,
            _main_thread_only: PhantomData,
        })
    }

    /// The arguments after `--`, which the EAL left to the application.
    pub fn remaining_args(&self) -> &[String] {
        &self.remaining
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: the EAL was initialised by this value on this thread (Eal is !Send); every
        // object borrowing it (pools, ports, mbufs, rings, scoped jobs) is gone by now.
        let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
        if ret != 0 {
            eprintln!(
                "dpdk: rte_eal_cleanup failed: {}",
                Error::from_ret("rte_eal_cleanup", ret)
            );
        }
    }
}

/// NUL-terminated copies of the arguments, in the writable form `rte_eal_init` wants.
#[derive(Debug)]
struct OwnedArgv(Vec<*mut c_char>);

impl OwnedArgv {
    fn new(args: impl Iterator<Item = String>) -> Result<Self, Error> {
        let mut argv = OwnedArgv(Vec::new());
        for arg in args {
            let c = CString::new(arg.as_str()).map_err(|_| Error::ArgumentHasNul(arg))?;
            argv.0.push(c.into_raw());
        }
        Ok(argv)
    }
}

impl Drop for OwnedArgv {
    fn drop(&mut self) {
        for &arg in &self.0 {
            // SAFETY: `arg` came from CString::into_raw in OwnedArgv::new and is freed once.
            drop(unsafe { CString::from_raw(arg) });
        }
    }
}
