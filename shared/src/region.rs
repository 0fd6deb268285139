//! The shared region: one file-backed mapping (under /dev/shm by default, or on hugetlbfs) that
//! holds every table of the contract. This is the only module with `unsafe`: it maps the file and
//! hands out typed references to its sections.
//!
//! Every type placed in the region consists only of atomics (valid when zero-filled, which a new
//! file is) except the [`Identity`], which is written once before any other process attaches and
//! read by value.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytemuck::Zeroable;
use rustix::fs::FlockOperation;
use rustix::mm::{Advice, MapFlags, ProtFlags};

use crate::counters::SaRuntime;
use crate::journal::Journal;
use crate::layout::{Capacities, CapacityError, Identity, Layout, ABI_VERSION, LAYOUT_HASH, MAGIC};
use crate::rcu::{Qsbr, QsbrToken, ReaderSlot};
use crate::ring::{EventCell, Ring, RingControl};
use crate::sad::{Sad, SaSlot};
use crate::spd::{PolicySlot, SpdControl, SpdView};

/// Where a region lives unless configured otherwise.
pub const DEFAULT_PATH: &str = "/dev/shm/ipsec-gw.region";

/// Region-wide state after the identity.
#[repr(C)]
#[derive(Debug)]
pub struct Control {
    pub(crate) writer: WriterState,
    pub(crate) journal: Journal,
    pub(crate) spd: SpdControl,
    pub(crate) qsbr: QsbrToken,
    pub(crate) ring: RingControl,
}

#[repr(C, align(64))]
#[derive(Debug)]
pub struct WriterState {
    /// Incremented each time a writer attaches.
    pub(crate) generation: AtomicU64,
    pub(crate) pid: AtomicU32,
}

pub(crate) const fn control_shape(fp: crate::layout::Fingerprint) -> crate::layout::Fingerprint {
    let fp = crate::shape!(fp, Control { writer, journal, spd, qsbr, ring });
    let fp = crate::shape!(fp, WriterState { generation, pid });
    crate::journal::shape(fp)
}

#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}: not an IPsec gateway region (bad magic)")]
    NotARegion(PathBuf),
    #[error("{path}: region has ABI version {found}, this program speaks ABI version {expected}")]
    AbiMismatch { path: PathBuf, found: u32, expected: u32 },
    #[error(
        "{path}: region layout hash {found:#018x} differs from this program's {expected:#018x} \
         (both ABI version {abi}); rebuild both processes from the same source"
    )]
    LayoutMismatch { path: PathBuf, found: u64, expected: u64, abi: u32 },
    #[error("{path}: region file is {found} bytes, its header says {expected}")]
    Truncated { path: PathBuf, found: u64, expected: u64 },
    #[error("{path}: {source}")]
    Capacity { path: PathBuf, source: CapacityError },
    #[error("{0}: another writer holds this region")]
    WriterBusy(PathBuf),
}

/// A mapped region.
#[derive(Debug)]
pub struct Region {
    base: NonNull<u8>,
    len: usize,
    layout: Layout,
    file: File,
    path: PathBuf,
}

// SAFETY: the mapping is shared memory; everything reachable through `Region`'s methods is either
// atomics or copied out by value, so sharing a `Region` between threads is as safe as sharing the
// atomics themselves.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RegionError + '_ {
    move |source| RegionError::Io { path: path.to_owned(), source }
}

/// CLOCK_MONOTONIC in nanoseconds: the region's clock, the same in every process.
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Hints the CPU to fetch the cache line holding `r`.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch has no architectural effect and cannot fault; the pointer comes from a
    // reference, so it is valid anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(r as *const T as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

impl Region {
    /// Creates a new region file (mode 0600; fails if it exists) sized for `caps`.
    pub fn create(path: impl AsRef<Path>, caps: Capacities) -> Result<Region, RegionError> {
        let path = path.as_ref();
        let layout = Layout::new(caps).map_err(|source| RegionError::Capacity { path: path.to_owned(), source })?;
        let file = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(path).map_err(io(path))?;
        // Whole pages of the file system (2 MiB or 1 GiB on hugetlbfs).
        let page = rustix::fs::fstatfs(&file).map_err(|e| io(path)(e.into()))?.f_bsize as usize;
        let len = layout.size.div_ceil(page.max(4096)) * page.max(4096);
        file.set_len(len as u64).map_err(io(path))?;
        let region = Region::map(file, path, layout, len)?;
        region.initialise(caps, len);
        Ok(region)
    }

    /// Attaches to an existing region, checking its magic, ABI version and layout.
    pub fn open(path: impl AsRef<Path>) -> Result<Region, RegionError> {
        let path = path.as_ref();
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(io(path))?;
        let found = file.metadata().map_err(io(path))?.len();
        let mut id = Identity::zeroed();
        if found < std::mem::size_of::<Identity>() as u64 {
            return Err(RegionError::NotARegion(path.to_owned()));
        }
        std::os::unix::fs::FileExt::read_exact_at(&file, bytemuck::bytes_of_mut(&mut id), 0).map_err(io(path))?;
        if id.magic != MAGIC {
            return Err(RegionError::NotARegion(path.to_owned()));
        }
        if id.abi_version != ABI_VERSION {
            return Err(RegionError::AbiMismatch { path: path.to_owned(), found: id.abi_version, expected: ABI_VERSION });
        }
        if id.layout_hash != LAYOUT_HASH {
            return Err(RegionError::LayoutMismatch {
                path: path.to_owned(),
                found: id.layout_hash,
                expected: LAYOUT_HASH,
                abi: ABI_VERSION,
            });
        }
        let layout = Layout::new(id.capacities).map_err(|source| RegionError::Capacity { path: path.to_owned(), source })?;
        if found != id.region_size || (found as usize) < layout.size {
            return Err(RegionError::Truncated { path: path.to_owned(), found, expected: id.region_size });
        }
        Region::map(file, path, layout, found as usize)
    }

    /// Opens the region at `path`, creating it with `caps` if there is none.
    pub fn open_or_create(path: impl AsRef<Path>, caps: Capacities) -> Result<Region, RegionError> {
        match Region::create(path.as_ref(), caps) {
            Err(RegionError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                Region::open(path)
            }
            other => other,
        }
    }

    fn map(file: File, path: &Path, layout: Layout, len: usize) -> Result<Region, RegionError> {
        // SAFETY: a fresh shared mapping of `len` bytes of our own file; no existing memory is
        // affected. The kernel picks the address.
        let ptr = unsafe {
            rustix::mm::mmap(std::ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, &file, 0)
        }
        .map_err(|e| io(path)(e.into()))?;
        // Keys live here: keep the mapping out of core dumps.
        // SAFETY: `ptr..ptr+len` is the mapping just created; the advice changes no contents.
        unsafe { rustix::mm::madvise(ptr, len, Advice::LinuxDontDump) }.map_err(|e| io(path)(e.into()))?;
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| RegionError::NotARegion(path.to_owned()))?;
        Ok(Region { base, len, layout, file, path: path.to_owned() })
    }

    fn initialise(&self, caps: Capacities, len: usize) {
        self.ring().initialise();
        self.control().qsbr.initialise();
        self.control().spd.initialise();
        let id = Identity {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            _pad: 0,
            layout_hash: LAYOUT_HASH,
            region_size: len as u64,
            capacities: caps,
            created_at_ns: now_ns(),
        };
        std::sync::atomic::fence(Ordering::Release);
        // SAFETY: offset 0 of the mapping is reserved for the identity (Layout::new) and nothing
        // else refers to those bytes; no other process attaches before the magic is written.
        unsafe { self.base.as_ptr().cast::<Identity>().write(id) };
    }

    /// A typed slice of `len` elements at byte `offset`.
    fn slice<T>(&self, offset: usize, len: usize) -> &[T] {
        assert!(offset.is_multiple_of(std::mem::align_of::<T>()) && offset + len * std::mem::size_of::<T>() <= self.len);
        // SAFETY: in bounds and aligned (checked above; Layout places sections so); `T` is one of
        // the region types made only of atomics, for which any bit pattern written by the region's
        // own code, including all zeros, is valid; the memory lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(offset).cast::<T>(), len) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    pub fn capacities(&self) -> Capacities {
        self.layout.capacities
    }

    pub(crate) fn control(&self) -> &Control {
        &self.slice::<Control>(self.layout.control, 1)[0]
    }

    pub fn sad(&self) -> Sad<'_> {
        let c = self.layout.capacities;
        Sad {
            slots: self.slice::<SaSlot>(self.layout.sa_slots, c.sas as usize),
            index: self.slice::<AtomicU64>(self.layout.sa_index, self.layout.sa_index_len),
            reqid_links: self.slice::<AtomicU32>(self.layout.reqid_links, c.reqids as usize),
        }
    }

    pub fn sa_runtime(&self) -> &[SaRuntime] {
        self.slice(self.layout.sa_runtime, self.layout.capacities.sas as usize)
    }

    pub(crate) fn spd_buffers(&self) -> [&[PolicySlot]; 2] {
        let n = self.layout.capacities.policies as usize;
        self.layout.spd_buffers.map(|off| self.slice::<PolicySlot>(off, n))
    }

    /// The published SPD snapshot. Readers hold it only inside a QSBR critical section.
    pub(crate) fn spd_view(&self) -> SpdView<'_> {
        SpdView::active(&self.control().spd, self.spd_buffers())
    }

    pub fn qsbr(&self) -> Qsbr<'_> {
        Qsbr {
            token: &self.control().qsbr,
            readers: self.slice::<ReaderSlot>(self.layout.readers, self.layout.capacities.readers as usize),
        }
    }

    pub fn ring(&self) -> Ring<'_> {
        Ring {
            control: &self.control().ring,
            cells: self.slice::<EventCell>(self.layout.events, self.layout.capacities.events as usize),
        }
    }

    /// How many writers have attached over the region's life.
    pub fn writer_generation(&self) -> u64 {
        self.control().writer.generation.load(Ordering::Acquire)
    }

    /// Takes the exclusive writer lock (released by the kernel if the writer dies).
    pub(crate) fn lock_writer(&self) -> Result<(), RegionError> {
        rustix::fs::flock(&self.file, FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| RegionError::WriterBusy(self.path.clone()))
    }

    /// Deletes a region file (processes that have it mapped keep their mapping).
    pub fn remove(path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::remove_file(path)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; every reference into it borrows `self`,
        // so none outlives this.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.len) };
    }
}
