//! A lock-free ring of mbufs (`rte_ring`), to pass packets between lcores in a pipeline.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::burst::MbufBurst;
use crate::eal::Eal;
use crate::error::Error;
use crate::mbuf::Mbuf;

/// A multi-producer, multi-consumer ring carrying owned mbufs of pools living for `'pool`.
/// Mbufs still queued when it is dropped are freed.
#[derive(Debug)]
pub struct MbufRing<'pool> {
    raw: NonNull<dpdk_sys::rte_ring>,
    _mbufs: PhantomData<Mbuf<'pool>>,
}

// SAFETY: the ring is created without RING_F_SP_ENQ/RING_F_SC_DEQ, so enqueue and dequeue are
// safe from any number of threads, and the mbufs it carries are Send.
unsafe impl Send for MbufRing<'_> {}
// SAFETY: as above.
unsafe impl Sync for MbufRing<'_> {}

impl<'pool> MbufRing<'pool> {
    /// Creates a ring named `name` (unique in the process) holding at least `capacity` mbufs.
    pub fn new(_eal: &'pool Eal, name: &str, capacity: u32) -> Result<Self, Error> {
        let c_name = CString::new(name).map_err(|_| Error::InvalidName(name.to_owned()))?;
        // SAFETY: the EAL is initialised; c_name is a valid C string that DPDK copies.
        let raw = unsafe {
            dpdk_sys::rte_ring_create(
                c_name.as_ptr(),
                capacity,
                dpdk_sys::SOCKET_ID_ANY,
                dpdk_sys::RING_F_EXACT_SZ,
            )
        };
        NonNull::new(raw)
            .map(|raw| MbufRing {
                raw,
                _mbufs: PhantomData,
            })
            .ok_or_else(|| Error::from_rte_errno("rte_ring_create"))
    }

    /// Moves as many mbufs as fit from the front of `burst` into the ring; returns the count.
    pub fn enqueue_burst(&self, burst: &mut MbufBurst<'pool>) -> usize {
        let (slots, count) = burst.occupied_slots();
        // SAFETY: `slots` holds `count` owned mbufs; the ring takes the first `queued`.
        let queued = unsafe {
            dpdk_sys::shim_rte_ring_enqueue_burst(self.raw.as_ptr(), slots.cast(), count as u32)
        } as usize;
        // SAFETY: the first `queued` mbufs now belong to the ring.
        unsafe { burst.taken_from_front(queued) };
        queued
    }

    /// Moves up to the burst's free capacity from the ring into `burst`; returns the count.
    pub fn dequeue_burst(&self, burst: &mut MbufBurst<'pool>) -> usize {
        let (slots, room) = burst.spare_slots();
        // SAFETY: `slots` has room for `room` pointers; the ring only holds owned mbufs put
        // there by enqueue_burst.
        let taken = unsafe {
            dpdk_sys::shim_rte_ring_dequeue_burst(self.raw.as_ptr(), slots.cast(), room as u32)
        } as usize;
        // SAFETY: `taken` owned mbufs were written into the spare slots.
        unsafe { burst.added(taken) };
        taken
    }

    /// Mbufs currently queued.
    pub fn len(&self) -> usize {
        // SAFETY: self.raw is a live ring.
        unsafe { dpdk_sys::shim_rte_ring_count(self.raw.as_ptr()) as usize }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for MbufRing<'_> {
    fn drop(&mut self) {
        let mut burst = MbufBurst::new();
        while self.dequeue_burst(&mut burst) > 0 {
            burst.clear();
        }
        // SAFETY: the ring is empty and not used again.
        unsafe { dpdk_sys::rte_ring_free(self.raw.as_ptr()) };
    }
}
