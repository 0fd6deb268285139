//! Which copy of the library a thread calls: the one the process linked, or a private copy.
//!
//! intel-ipsec-mb before 1.4 resets one process-wide error variable at the start of every call,
//! the direct GCM calls included (intel/intel-ipsec-mb#112, fixed in 1.4). Threads that encrypt
//! side by side then all write one cache line for every packet and wait for it in turn: one SA
//! on two gateway lcores ran at 12.5-14.8 Mpps with 64-byte frames, where two gateway processes
//! of one lcore each ran at 8.41-8.51 Mpps apiece (BENCHMARKS.md, seventh session). [`use_private_copy`] gives the
//! calling thread a copy of the library with its own variable: the library's file is copied into
//! a memfd, which the dynamic loader maps anew instead of handing back the copy it has loaded.
//! Keys are plain data, so a key expanded by one copy works with every other.

use std::cell::OnceCell;
use std::ffi::{c_void, CStr, CString};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::sys;

type AllocFn = unsafe extern "C" fn(u64) -> *mut sys::IMB_MGR;
type FreeFn = unsafe extern "C" fn(*mut sys::IMB_MGR);
type InitAutoFn = unsafe extern "C" fn(*mut sys::IMB_MGR, *mut sys::IMB_ARCH);
type InitFn = unsafe extern "C" fn(*mut sys::IMB_MGR);

/// The first version whose calls no longer all write one process-wide variable.
const FIXED_VERSION: u32 = 0x01_04_00;

/// The entry points managers are made with; every other call goes through a manager's table,
/// and so into the copy that made it.
#[derive(Debug)]
pub(crate) struct Library {
    pub(crate) alloc_mb_mgr: AllocFn,
    pub(crate) free_mb_mgr: FreeFn,
    pub(crate) init_mb_mgr_auto: InitAutoFn,
    pub(crate) init_mb_mgr_sse: InitFn,
    /// Whether this is a private copy (never unloaded: its managers live as long as the thread).
    pub(crate) private: bool,
}

/// The library the process linked.
pub(crate) static LINKED: Library = Library {
    alloc_mb_mgr: sys::alloc_mb_mgr,
    free_mb_mgr: sys::free_mb_mgr,
    init_mb_mgr_auto: sys::init_mb_mgr_auto,
    init_mb_mgr_sse: sys::init_mb_mgr_sse,
    private: false,
};

thread_local! {
    static THREAD_LIBRARY: OnceCell<&'static Library> = const { OnceCell::new() };
}

/// The library this thread calls: the linked one unless the thread asked for a private copy
/// before its first call.
pub(crate) fn for_this_thread() -> &'static Library {
    THREAD_LIBRARY.with(|l| *l.get_or_init(|| &LINKED))
}

/// Why the calling thread could not get a private copy of the library; it goes on with the
/// linked one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateCopyError(String);

impl std::fmt::Display for PrivateCopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no private copy of intel-ipsec-mb for this thread: {}", self.0)
    }
}

impl std::error::Error for PrivateCopyError {}

/// Gives the calling thread its own copy of the library if the linked version needs it (before
/// 1.4): true if it did, false if the version does not need one. Call it before the thread's
/// first cryptographic call; the copy stays loaded until the process exits.
pub fn use_private_copy() -> Result<bool, PrivateCopyError> {
    // SAFETY: imb_get_version takes no argument and returns a constant.
    if unsafe { sys::imb_get_version() } >= FIXED_VERSION {
        return Ok(false);
    }
    if THREAD_LIBRARY.with(|l| l.get().is_some()) {
        return Err(PrivateCopyError("the thread has already called the linked library".into()));
    }
    let library: &'static Library = Box::leak(Box::new(load_private()?));
    THREAD_LIBRARY.with(|l| l.set(library)).map_err(|_| PrivateCopyError("the thread already has a library".into()))?;
    Ok(true)
}

/// The path of the file the linked library was loaded from.
fn linked_path() -> Result<String, PrivateCopyError> {
    // SAFETY: Dl_info is plain pointers; all zeroes is a valid value for dladdr to fill.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let symbol = sys::imb_get_version as *const c_void;
    // SAFETY: `symbol` is an address inside the linked library; `info` is a valid out-pointer.
    if unsafe { libc::dladdr(symbol, &mut info) } == 0 || info.dli_fname.is_null() {
        return Err(PrivateCopyError("dladdr did not find the linked library".into()));
    }
    // SAFETY: dladdr set dli_fname to the loader's NUL-terminated name of the object, which lives
    // as long as the object stays loaded (the linked library is never unloaded).
    Ok(unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned())
}

fn load_private() -> Result<Library, PrivateCopyError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| PrivateCopyError(format!("{what}: {e}"));
    let path = linked_path()?;
    let image = std::fs::read(&path).map_err(|e| fail(&path, &e))?;
    // SAFETY: the name is a NUL-terminated string; the flags are valid.
    let fd = unsafe { libc::memfd_create(c"intel-ipsec-mb".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(fail("memfd_create", &std::io::Error::last_os_error()));
    }
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    std::fs::File::from(memfd.try_clone().map_err(|e| fail("memfd", &e))?).write_all(&image).map_err(|e| fail("memfd", &e))?;
    let copy = CString::new(format!("/proc/self/fd/{}", memfd.as_raw_fd())).map_err(|e| fail("memfd path", &e))?;
    // RTLD_DEEPBIND: the copy's calls to its own exported functions (the ones its managers'
    // tables are filled with) bind to the copy, not to the linked library that comes first in
    // the global scope.
    // SAFETY: `copy` names a complete copy of the linked library's file; loading it runs the
    // same initialisers as loading the library did.
    let handle = unsafe { libc::dlopen(copy.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_DEEPBIND) };
    if handle.is_null() {
        // SAFETY: dlerror takes no argument; it returns NULL or the message of the failed call.
        let message = unsafe { libc::dlerror() };
        let message = if message.is_null() {
            "dlopen failed".into()
        } else {
            // SAFETY: a non-null dlerror result is a NUL-terminated string, valid until the next
            // dl call on this thread.
            unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
        };
        return Err(PrivateCopyError(format!("{path}: {message}")));
    }
    // The mapping keeps the file alive; the descriptor is no longer needed.
    drop(memfd);
    let symbol = |name: &CStr| {
        // SAFETY: `handle` is a live handle from dlopen (never closed); `name` is NUL-terminated.
        let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if address.is_null() {
            Err(PrivateCopyError(format!("{path}: no {}", name.to_string_lossy())))
        } else {
            Ok(address)
        }
    };
    // SAFETY: each symbol is the copy's definition of the function the bindings declare with this
    // signature (the same file as the linked library).
    unsafe {
        Ok(Library {
            alloc_mb_mgr: std::mem::transmute::<*mut c_void, AllocFn>(symbol(c"alloc_mb_mgr")?),
            free_mb_mgr: std::mem::transmute::<*mut c_void, FreeFn>(symbol(c"free_mb_mgr")?),
            init_mb_mgr_auto: std::mem::transmute::<*mut c_void, InitAutoFn>(symbol(c"init_mb_mgr_auto")?),
            init_mb_mgr_sse: std::mem::transmute::<*mut c_void, InitFn>(symbol(c"init_mb_mgr_sse")?),
            private: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{manager, Aad, CbcHmacKey, GcmKey, Hmac, Nonce};

    /// The start of the loaded object that holds `address`.
    fn object_of(address: *const c_void) -> usize {
        // SAFETY: Dl_info is plain pointers; all zeroes is a valid value for dladdr to fill.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer; dladdr only reads the loader's tables.
        assert_ne!(unsafe { libc::dladdr(address, &mut info) }, 0, "{address:?} is in no loaded object");
        info.dli_fbase as usize
    }

    /// What one thread computes with GCM and HMAC, and which objects its GCM, one-job and burst
    /// calls went into.
    fn crypto_on_this_thread(gcm: &GcmKey, hmac: &CbcHmacKey) -> ([u8; 16], Vec<u8>, Vec<u8>, [usize; 3]) {
        let mut data = vec![7u8; 300];
        let tag = gcm.seal(Nonce::from([1; 12]), Aad::bytes(b"aad"), &mut data);
        let mac = hmac.mac(&data, 0..data.len()).unwrap()[..16].to_vec();
        let gcm_fn = gcm.encrypt_function();
        let job_fn = manager::with_job_manager(|m| m.raw().submit_job.unwrap()).unwrap();
        let burst_fn = manager::with_burst_manager(|m| m.raw().submit_job.unwrap()).unwrap();
        let objects = [object_of(gcm_fn as *const c_void), object_of(job_fn as *const c_void), object_of(burst_fn as *const c_void)];
        (tag, data, mac, objects)
    }

    #[test]
    fn a_thread_with_a_private_copy_computes_the_same_in_its_own_copy() {
        let gcm = std::sync::Arc::new(GcmKey::new(&[3; 32]).unwrap());
        let hmac = std::sync::Arc::new(CbcHmacKey::new(&[4; 32], Hmac::Sha256, &[5; 32], 16).unwrap());
        let linked_base = object_of(sys::imb_get_version as *const c_void);
        let (g, h) = (gcm.clone(), hmac.clone());
        let linked = std::thread::spawn(move || crypto_on_this_thread(&g, &h)).join().unwrap();
        let private = std::thread::spawn(move || {
            assert_eq!(use_private_copy(), Ok(true), "intel-ipsec-mb 1.3 needs the copy");
            crypto_on_this_thread(&gcm, &hmac)
        })
        .join()
        .unwrap();
        assert_eq!(linked.3, [linked_base; 3], "a thread without a copy calls the linked library");
        for (object, call) in private.3.iter().zip(["GCM", "one job", "burst"]) {
            assert_ne!(*object, linked_base, "{call} went into the linked library");
        }
        assert_eq!((&linked.0, &linked.1, &linked.2), (&private.0, &private.1, &private.2));
    }

    #[test]
    fn a_thread_that_called_the_linked_library_keeps_it() {
        std::thread::spawn(|| {
            GcmKey::new(&[3; 16]).unwrap().seal(Nonce::from([0; 12]), Aad::bytes(b""), &mut [0u8; 16]);
            assert!(use_private_copy().is_err());
            assert!(!for_this_thread().private);
        })
        .join()
        .unwrap();
    }
}
