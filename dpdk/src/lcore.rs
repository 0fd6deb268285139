//! Logical cores: their ids and scoped jobs launched on worker lcores.

use std::any::Any;
use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};

use crate::eal::Eal;
use crate::error::Error;

/// A logical core id as the EAL numbers them (`-l`/`--lcores`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lcore(u32);

impl Lcore {
    /// The lcore the calling thread is, or `None` on a thread the EAL did not create.
    pub fn current() -> Option<Lcore> {
        // SAFETY: reads a thread-local value; no preconditions.
        let id = unsafe { dpdk_sys::shim_rte_lcore_id() };
        (id != dpdk_sys::LCORE_ID_ANY).then_some(Lcore(id))
    }

    pub fn id(self) -> u32 {
        self.0
    }
}

impl Eal {
    /// The lcore running the thread that initialised the EAL.
    pub fn main_lcore(&self) -> Lcore {
        // SAFETY: the EAL is initialised (self exists).
        Lcore(unsafe { dpdk_sys::rte_get_main_lcore() })
    }

    /// The enabled lcores other than the main one, in id order.
    pub fn worker_lcores(&self) -> Vec<Lcore> {
        let mut lcores = Vec::new();
        let mut previous = u32::MAX; // rte_get_next_lcore starts from previous + 1 (wrapping)
        loop {
            // SAFETY: the EAL is initialised; skip_main = 1, wrap = 0.
            let next = unsafe { dpdk_sys::rte_get_next_lcore(previous, 1, 0) };
            if next >= dpdk_sys::RTE_MAX_LCORE {
                return lcores;
            }
            lcores.push(Lcore(next));
            previous = next;
        }
    }

    /// Runs `f` with a [`Scope`] on which jobs can be launched on worker lcores; like
    /// `std::thread::scope`, every job is waited for before this returns, so jobs may borrow
    /// anything that outlives the call (ports, queues, pools). A panic in `f` is re-raised after
    /// the jobs have finished; a panic in a job is reported by [`LcoreJob::join`].
    pub fn scope<'env, F, T>(&'env self, f: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        let scope = Scope {
            launched: Mutex::new(Vec::new()),
            _eal: PhantomData,
            _scope: PhantomData,
            _env: PhantomData,
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
        for lcore in scope
            .launched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            wait(lcore);
        }
        result.unwrap_or_else(|panic| resume_unwind(panic))
    }
}

/// Lets jobs be launched on worker lcores; see [`Eal::scope`].
#[derive(Debug)]
pub struct Scope<'scope, 'env: 'scope> {
    launched: Mutex<Vec<Lcore>>,
    /// Launching and waiting happen on the main lcore only.
    _eal: PhantomData<(&'env Eal, *const ())>,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

type JobResult<T> = Arc<Mutex<Option<Result<T, Box<dyn Any + Send>>>>>;
type ErasedJob = Box<dyn FnOnce() + Send>;

impl<'scope> Scope<'scope, '_> {
    /// Starts `f` on the worker lcore `lcore`, which must be enabled, not the main lcore, and
    /// idle.
    pub fn launch<F, T>(&'scope self, lcore: Lcore, f: F) -> Result<LcoreJob<'scope, T>, Error>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        if !is_worker(lcore) {
            return Err(Error::LcoreUnavailable(lcore.id()));
        }
        let result: JobResult<T> = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&result);
        let job: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(f));
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        });
        // SAFETY: only the lifetime is changed; the job cannot outlive 'scope because
        // Eal::scope waits for every launched lcore before 'scope ends.
        let job: ErasedJob = unsafe { std::mem::transmute(job) };
        let arg = Box::into_raw(Box::new(job));
        // SAFETY: run_job matches lcore_function_t and takes ownership of `arg` exactly once if
        // the launch succeeds; we are on the main lcore (Scope is !Send, created by the Eal).
        let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(run_job), arg.cast(), lcore.id()) };
        if ret != 0 {
            // SAFETY: the launch failed, so the lcore never saw `arg`; we still own it.
            drop(unsafe { Box::from_raw(arg) });
            return Err(Error::LcoreUnavailable(lcore.id()));
        }
        self.launched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(lcore);
        Ok(LcoreJob {
            lcore,
            result,
            _scope: PhantomData,
        })
    }
}

/// A job running on a worker lcore.
#[derive(Debug)]
pub struct LcoreJob<'scope, T> {
    lcore: Lcore,
    result: JobResult<T>,
    /// Joined on the main lcore only.
    _scope: PhantomData<(&'scope (), *const ())>,
}

impl<T> LcoreJob<'_, T> {
    pub fn lcore(&self) -> Lcore {
        self.lcore
    }

    /// Waits for the job and returns its value, or [`Error::JobPanicked`].
    pub fn join(self) -> Result<T, Error> {
        wait(self.lcore);
        let outcome = self
            .result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match outcome {
            Some(Ok(value)) => Ok(value),
            Some(Err(_)) | None => Err(Error::JobPanicked(self.lcore.id())),
        }
    }
}

fn is_worker(lcore: Lcore) -> bool {
    // SAFETY: the EAL is initialised (a Scope borrows it); rte_lcore_is_enabled checks the
    // range of any id itself.
    unsafe {
        dpdk_sys::rte_lcore_is_enabled(lcore.id()) != 0
            && lcore.id() != dpdk_sys::rte_get_main_lcore()
    }
}

fn wait(lcore: Lcore) {
    // SAFETY: called on the main lcore for a worker lcore id; returns at once if it is idle.
    unsafe { dpdk_sys::rte_eal_wait_lcore(lcore.id()) };
}

extern "C" fn run_job(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<ErasedJob> leaked by Scope::launch, handed over exactly once.
    let job = unsafe { Box::from_raw(arg.cast::<ErasedJob>()) };
    // The job catches its own panics, so nothing unwinds into C.
    job();
    0
}
