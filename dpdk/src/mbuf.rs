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

    #[inline]
    fn header(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: raw is valid while self exists, and only &mut self methods write the header.
        unsafe { self.raw.as_ref() }
    }

    /// Total packet length over all segments.
    #[inline]
    pub fn len(&self) -> usize {
        self.header().pkt_len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the whole packet is in this first segment (always so for mbufs built here or
    /// received with a data room larger than the frame).
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        // rte_pktmbuf_is_contiguous: one segment.
        self.header().nb_segs == 1
    }

    /// The address of the first data byte (`rte_pktmbuf_mtod`).
    #[inline]
    fn data_ptr(&self) -> *mut u8 {
        let h = self.header();
        // SAFETY: data_off is within the buffer at buf_addr (an mbuf invariant DPDK keeps).
        unsafe { h.buf_addr.cast::<u8>().add(usize::from(h.data_off)) }
    }

    /// The bytes of the first segment (the whole packet when [`Mbuf::is_contiguous`]).
    #[inline]
    pub fn data(&self) -> &[u8] {
        let len = usize::from(self.header().data_len);
        // SAFETY: the first segment's data_len bytes from data_off are initialised packet bytes
        // inside the buffer, which self owns.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), len) }
    }

    /// The bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.header().data_len);
        // SAFETY: as in data(); &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), len) }
    }

    /// Asks the CPU to start loading the first cache line of the data (what parsing reads
    /// first), so that a burst's packets arrive in cache while earlier ones are processed.
    #[inline]
    pub fn prefetch_data(&self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults, whatever the address; SSE is part of
        // the x86_64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(self.data_ptr().cast::<i8>())
        };
    }

    /// Free bytes before the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.header().data_off)
    }

    /// Free bytes after the data of the last segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        if self.is_contiguous() {
            let h = self.header();
            return usize::from(h.buf_len) - usize::from(h.data_off) - usize::from(h.data_len);
        }
        // SAFETY: raw is a valid mbuf.
        usize::from(unsafe { dpdk_sys::shim_rte_pktmbuf_tailroom(self.raw.as_ptr()) })
    }

    /// The ethdev port the packet was received on.
    pub fn port(&self) -> u16 {
        self.header().port
    }

    /// Grows the packet at the front by `len` bytes taken from the headroom and returns them
    /// (their content is whatever the buffer held).
    #[inline]
    pub fn prepend(&mut self, len: usize) -> Result<&mut [u8], Error> {
        let n = checked_len(len, self.headroom())?;
        let h = self.header_mut();
        // rte_pktmbuf_prepend: the first segment grows into its headroom.
        h.data_off -= n;
        h.data_len += n;
        h.pkt_len += u32::from(n);
        // SAFETY: the n bytes at the new data start now belong to the packet and to self.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), len) })
    }

    /// Grows the packet at the end by `len` bytes taken from the tailroom and returns them.
    #[inline]
    pub fn append(&mut self, len: usize) -> Result<&mut [u8], Error> {
        let room = self.tailroom();
        let n = checked_len(len, room)?;
        if !self.is_contiguous() {
            // SAFETY: raw is a valid mbuf we own exclusively; n <= tailroom, so DPDK succeeds.
            let start = unsafe { dpdk_sys::shim_rte_pktmbuf_append(self.raw.as_ptr(), n) };
            let start = NonNull::new(start.cast::<u8>()).ok_or_else(|| no_room(len, room))?;
            // SAFETY: the n bytes at `start` now belong to the packet and to self exclusively.
            return Ok(unsafe { std::slice::from_raw_parts_mut(start.as_ptr(), len) });
        }
        let old_len = usize::from(self.header().data_len);
        let h = self.header_mut();
        h.data_len += n;
        h.pkt_len += u32::from(n);
        // SAFETY: the n bytes after the old end were tailroom of this buffer and are now packet
        // bytes owned by self.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.data_ptr().add(old_len), len) })
    }

    /// Removes `len` bytes from the front of the packet (they return to the headroom).
    #[inline]
    pub fn adj(&mut self, len: usize) -> Result<(), Error> {
        let n = checked_len(len, usize::from(self.header().data_len))?;
        // rte_pktmbuf_adj: the first segment shrinks from the front.
        let h = self.header_mut();
        h.data_off += n;
        h.data_len -= n;
        h.pkt_len -= u32::from(n);
        Ok(())
    }

    /// Removes `len` bytes from the end of the packet (they return to the tailroom).
    #[inline]
    pub fn trim(&mut self, len: usize) -> Result<(), Error> {
        if self.is_contiguous() {
            let n = checked_len(len, usize::from(self.header().data_len))?;
            let h = self.header_mut();
            h.data_len -= n;
            h.pkt_len -= u32::from(n);
            return Ok(());
        }
        // SAFETY: raw is a valid mbuf, so its last segment is one too; trim works on that one.
        let available = usize::from(unsafe {
            (*dpdk_sys::shim_rte_pktmbuf_lastseg(self.raw.as_ptr())).data_len
        });
        let n = checked_len(len, available)?;
        // SAFETY: raw is a valid mbuf we own exclusively; n <= the last segment's length.
        if unsafe { dpdk_sys::shim_rte_pktmbuf_trim(self.raw.as_ptr(), n) } != 0 {
            return Err(no_room(len, available));
        }
        Ok(())
    }

    fn header_mut(&mut self) -> &mut dpdk_sys::rte_mbuf {
        // SAFETY: raw is valid while self exists and &mut self makes the access exclusive.
        unsafe { self.raw.as_mut() }
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and give it back exactly once.
        unsafe { dpdk_sys::shim_rte_pktmbuf_free(self.raw.as_ptr()) };
    }
}

/// `len` as the u16 DPDK wants, if it fits in `available` bytes.
#[inline]
fn checked_len(len: usize, available: usize) -> Result<u16, Error> {
    match u16::try_from(len) {
        Ok(n) if len <= available => Ok(n),
        _ => Err(no_room(len, available)),
    }
}

#[cold]
fn no_room(needed: usize, available: usize) -> Error {
    Error::NoRoom { needed, available }
}
