//! Pools of packet buffers (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::burst::MbufBurst;
use crate::eal::Eal;
use crate::error::Error;
use crate::mbuf::Mbuf;

/// Sizing of a packet-buffer pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Number of mbufs; 2^n - 1 uses the underlying ring best.
    pub mbufs: u32,
    /// Per-lcore cache of free mbufs (at most 512, and at most mbufs / 1.5).
    pub cache_size: u32,
    /// Bytes of buffer per mbuf, headroom included.
    pub data_room: u16,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            mbufs: 8191,
            cache_size: 256,
            data_room: dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
        }
    }
}

/// A pool of packet buffers in EAL memory. Mbufs borrow their pool. If mbufs are still held
/// elsewhere when it is dropped (a port's RX ring, an `rte_ring`), its memory is left to the EAL
/// rather than freed under them.
#[derive(Debug)]
pub struct Mempool<'eal> {
    raw: NonNull<dpdk_sys::rte_mempool>,
    _eal: PhantomData<&'eal Eal>,
}

// SAFETY: the pool uses the default multi-producer/multi-consumer ring ops, so any thread may
// allocate and free concurrently; non-EAL threads simply bypass the per-lcore cache.
unsafe impl Send for Mempool<'_> {}
// SAFETY: as above.
unsafe impl Sync for Mempool<'_> {}

impl<'eal> Mempool<'eal> {
    /// Creates a pool named `name` (unique in the process) on any NUMA socket.
    pub fn new(_eal: &'eal Eal, name: &str, config: MempoolConfig) -> Result<Self, Error> {
        let c_name = CString::new(name).map_err(|_| Error::InvalidName(name.to_owned()))?;
        // SAFETY: the EAL is initialised (borrowed) and c_name is a valid C string; DPDK copies it.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                c_name.as_ptr(),
                config.mbufs,
                config.cache_size,
                0,
                config.data_room,
                dpdk_sys::SOCKET_ID_ANY,
            )
        };
        NonNull::new(raw)
            .map(|raw| Mempool {
                raw,
                _eal: PhantomData,
            })
            .ok_or_else(|| Error::from_rte_errno("rte_pktmbuf_pool_create"))
    }

    /// Takes one mbuf from the pool, empty and with the default headroom.
    pub fn alloc(&self) -> Result<Mbuf<'_>, Error> {
        // SAFETY: self.raw is a live pktmbuf pool.
        let raw = unsafe { dpdk_sys::shim_rte_pktmbuf_alloc(self.raw.as_ptr()) };
        NonNull::new(raw)
            // SAFETY: a freshly allocated mbuf of this pool, owned by nobody else.
            .map(|raw| unsafe { Mbuf::from_raw(raw) })
            .ok_or(Error::PoolExhausted)
    }

    /// Fills the free slots of `burst` with new empty mbufs: all of them, or none.
    pub fn alloc_burst<'p>(&'p self, burst: &mut MbufBurst<'p>) -> Result<(), Error> {
        let (slots, count) = burst.spare_slots();
        // SAFETY: `slots` has room for `count` pointers; on success all are written.
        let ret = unsafe {
            dpdk_sys::shim_rte_pktmbuf_alloc_bulk(self.raw.as_ptr(), slots, count as u32)
        };
        if ret != 0 {
            return Err(Error::PoolExhausted);
        }
        // SAFETY: the `count` spare slots now hold mbufs owned by the burst.
        unsafe { burst.added(count) };
        Ok(())
    }

    /// Mbufs currently free in the pool (including per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: self.raw is a live pool.
        unsafe { dpdk_sys::shim_rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently taken from the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: self.raw is a live pool.
        unsafe { dpdk_sys::shim_rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool<'_> {
    fn drop(&mut self) {
        if self.in_use() == 0 {
            // SAFETY: no mbuf of the pool is held anywhere, and the pool is not used again.
            unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) };
        }
    }
}
