//! One owned packet buffer, edited in place: the ESP code prepends headers into the headroom,
//! appends trailers into the tailroom and trims or strips them again, without copying.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::error::Error;
use crate::mempool::Mempool;

/// An owned mbuf of the pool it borrows; returned to the pool on drop. `repr(transparent)` over
/// the `rte_mbuf` pointer so that bursts can be handed to DPDK as pointer arrays.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf<'pool> {
    raw: NonNull<dpdk_sys::rte_mbuf>,
    _pool: PhantomData<&'pool Mempool<'pool>>,
}

// SAFETY: an Mbuf is the only owner of its buffer; freeing it from another thread is allowed.
unsafe impl Send for Mbuf<'_> {}
// SAFETY: shared references only read the buffer.
unsafe impl Sync for Mbuf<'_> {}

impl Mbuf<'_> {
    /// # Safety
    /// `raw` is a valid mbuf, owned by nobody else, whose pool outlives `'pool`.
    pub(crate) unsafe fn from_raw(raw: NonNull<dpdk_sys::rte_mbuf>) -> Self {
        Mbuf {
            raw,
            _pool: PhantomData,
        }
    }

    fn header(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: raw is valid while self exists, and only &mut self methods write the header.
        unsafe { self.raw.as_ref() }
    }

    /// Total packet length over all segments.
    pub fn len(&self) -> usize {
        self.header().pkt_len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the whole packet is in this first segment (always so for mbufs built here or
    /// received with a data room larger than the frame).
    pub fn is_contiguous(&self) -> bool {
        // SAFETY: raw is a valid mbuf.
        unsafe { dpdk_sys::shim_rte_pktmbuf_is_contiguous(self.raw.as_ptr()) != 0 }
    }

    /// The bytes of the first segment (the whole packet when [`Mbuf::is_contiguous`]).
    pub fn data(&self) -> &[u8] {
        let len = usize::from(self.header().data_len);
        // SAFETY: mtod points at data_len initialised bytes inside the buffer, which self owns.
        unsafe {
            std::slice::from_raw_parts(
                dpdk_sys::shim_rte_pktmbuf_mtod(self.raw.as_ptr()).cast::<u8>(),
                len,
            )
        }
    }

    /// The bytes of the first segment, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.header().data_len);
        // SAFETY: as in data(); &mut self makes the access exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                dpdk_sys::shim_rte_pktmbuf_mtod(self.raw.as_ptr()).cast::<u8>(),
                len,
            )
        }
    }

    /// Free bytes before the data.
    pub fn headroom(&self) -> usize {
        // SAFETY: raw is a valid mbuf.
        usize::from(unsafe { dpdk_sys::shim_rte_pktmbuf_headroom(self.raw.as_ptr()) })
    }

    /// Free bytes after the data of the last segment.
    pub fn tailroom(&self) -> usize {
        // SAFETY: raw is a valid mbuf.
        usize::from(unsafe { dpdk_sys::shim_rte_pktmbuf_tailroom(self.raw.as_ptr()) })
    }

    /// The ethdev port the packet was received on.
    pub fn port(&self) -> u16 {
        self.header().port
    }

    /// Grows the packet at the front by `len` bytes taken from the headroom and returns them
    /// (their content is whatever the buffer held).
    pub fn prepend(&mut self, len: usize) -> Result<&mut [u8], Error> {
        let room = self.headroom();
        let n = checked_len(len, room)?;
        // SAFETY: raw is a valid mbuf we own exclusively; n <= headroom, so DPDK succeeds.
        let start = unsafe { dpdk_sys::shim_rte_pktmbuf_prepend(self.raw.as_ptr(), n) };
        let start = NonNull::new(start.cast::<u8>()).ok_or(Error::NoRoom {
            needed: len,
            available: room,
        })?;
        // SAFETY: the n bytes at `start` now belong to the packet and to self exclusively.
        Ok(unsafe { std::slice::from_raw_parts_mut(start.as_ptr(), len) })
    }

    /// Grows the packet at the end by `len` bytes taken from the tailroom and returns them.
    pub fn append(&mut self, len: usize) -> Result<&mut [u8], Error> {
        let room = self.tailroom();
        let n = checked_len(len, room)?;
        // SAFETY: raw is a valid mbuf we own exclusively; n <= tailroom, so DPDK succeeds.
        let start = unsafe { dpdk_sys::shim_rte_pktmbuf_append(self.raw.as_ptr(), n) };
        let start = NonNull::new(start.cast::<u8>()).ok_or(Error::NoRoom {
            needed: len,
            available: room,
        })?;
        // SAFETY: the n bytes at `start` now belong to the packet and to self exclusively.
        Ok(unsafe { std::slice::from_raw_parts_mut(start.as_ptr(), len) })
    }

    /// Removes `len` bytes from the front of the packet (they return to the headroom).
    pub fn adj(&mut self, len: usize) -> Result<(), Error> {
        let available = usize::from(self.header().data_len);
        let n = checked_len(len, available)?;
        // SAFETY: raw is a valid mbuf we own exclusively; n <= data_len, so DPDK succeeds.
        let start = unsafe { dpdk_sys::shim_rte_pktmbuf_adj(self.raw.as_ptr(), n) };
        if start.is_null() {
            return Err(Error::NoRoom {
                needed: len,
                available,
            });
        }
        Ok(())
    }

    /// Removes `len` bytes from the end of the packet (they return to the tailroom).
    pub fn trim(&mut self, len: usize) -> Result<(), Error> {
        // SAFETY: raw is a valid mbuf, so its last segment is one too; trim works on that one.
        let available = usize::from(unsafe {
            (*dpdk_sys::shim_rte_pktmbuf_lastseg(self.raw.as_ptr())).data_len
        });
        let n = checked_len(len, available)?;
        // SAFETY: raw is a valid mbuf we own exclusively; n <= the last segment's length.
        if unsafe { dpdk_sys::shim_rte_pktmbuf_trim(self.raw.as_ptr(), n) } != 0 {
            return Err(Error::NoRoom {
                needed: len,
                available,
            });
        }
        Ok(())
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and give it back exactly once.
        unsafe { dpdk_sys::shim_rte_pktmbuf_free(self.raw.as_ptr()) };
    }
}

/// `len` as the u16 DPDK wants, if it fits in `available` bytes.
fn checked_len(len: usize, available: usize) -> Result<u16, Error> {
    u16::try_from(len)
        .ok()
        .filter(|_| len <= available)
        .ok_or(Error::NoRoom {
            needed: len,
            available,
        })
}
