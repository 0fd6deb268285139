//! A fixed-capacity burst of owned mbufs, laid out as the pointer array DPDK's burst calls use.

use std::mem::MaybeUninit;

use crate::mbuf::Mbuf;

/// Packets per burst, as in DPDK's examples and the gateway's hot path.
pub const BURST_SIZE: usize = 32;

/// Up to [`BURST_SIZE`] mbufs; the first `len` slots are initialised. Mbufs left in the burst
/// are freed when it is dropped or cleared.
#[derive(Debug)]
pub struct MbufBurst<'pool> {
    slots: [MaybeUninit<Mbuf<'pool>>; BURST_SIZE],
    len: usize,
}

impl Default for MbufBurst<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'pool> MbufBurst<'pool> {
    pub fn new() -> Self {
        MbufBurst {
            slots: [const { MaybeUninit::uninit() }; BURST_SIZE],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// Adds `mbuf` at the end, or gives it back if the burst is full.
    pub fn push(&mut self, mbuf: Mbuf<'pool>) -> Result<(), Mbuf<'pool>> {
        match self.slots.get_mut(self.len) {
            Some(slot) => {
                slot.write(mbuf);
                self.len += 1;
                Ok(())
            }
            None => Err(mbuf),
        }
    }

    /// Removes and returns the last mbuf.
    pub fn pop(&mut self) -> Option<Mbuf<'pool>> {
        let last = self.len.checked_sub(1)?;
        self.len = last;
        // SAFETY: slot `last` was initialised and, with len lowered, is no longer owned here.
        Some(unsafe { self.slots[last].assume_init_read() })
    }

    pub fn as_slice(&self) -> &[Mbuf<'pool>] {
        // SAFETY: the first len slots are initialised; MaybeUninit<T> has T's layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [Mbuf<'pool>] {
        // SAFETY: as in as_slice, with exclusive access through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast(), self.len) }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Mbuf<'pool>> {
        self.as_slice().iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Mbuf<'pool>> {
        self.as_mut_slice().iter_mut()
    }

    /// Takes the mbufs out of the burst in order, front first; those the iterator does not
    /// yield are freed when it is dropped.
    pub fn drain(&mut self) -> Drain<'_, 'pool> {
        let end = self.len;
        // The burst no longer owns the mbufs: the iterator does.
        self.len = 0;
        Drain { burst: self, next: 0, end }
    }

    /// Frees every mbuf in the burst.
    pub fn clear(&mut self) {
        let count = self.len;
        self.len = 0;
        // SAFETY: the first `count` slots held owned mbufs, which are no longer reachable
        // (len is 0); Mbuf is a transparent rte_mbuf pointer.
        unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr().cast(), count as u32) };
    }

    /// The free slots, as (pointer to the first, count), for DPDK to fill.
    pub(crate) fn spare_slots(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, usize) {
        // SAFETY: len <= BURST_SIZE, so the offset stays inside (or one past) the array.
        let first = unsafe { self.slots.as_mut_ptr().add(self.len) };
        (first.cast(), BURST_SIZE - self.len)
    }

    /// # Safety
    /// DPDK wrote `count` owned mbufs (of this burst's pool) into the spare slots.
    pub(crate) unsafe fn added(&mut self, count: usize) {
        debug_assert!(self.len + count <= BURST_SIZE);
        self.len += count;
    }

    /// The occupied slots as (pointer to the first, count), for DPDK to take mbufs from.
    pub(crate) fn occupied_slots(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, usize) {
        (self.slots.as_mut_ptr().cast(), self.len)
    }

    /// # Safety
    /// DPDK took ownership of the first `count` mbufs; the rest move to the front.
    pub(crate) unsafe fn taken_from_front(&mut self, count: usize) {
        debug_assert!(count <= self.len);
        let remaining = self.len - count;
        let base = self.slots.as_mut_ptr();
        // SAFETY: both ranges lie within the array (count + remaining = len <= BURST_SIZE);
        // `copy` allows overlap; the moved-from slots are no longer counted as initialised.
        unsafe { std::ptr::copy(base.add(count), base, remaining) };
        self.len = remaining;
    }
}

impl Drop for MbufBurst<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The iterator of [`MbufBurst::drain`].
#[derive(Debug)]
pub struct Drain<'b, 'pool> {
    burst: &'b mut MbufBurst<'pool>,
    next: usize,
    end: usize,
}

impl<'pool> Iterator for Drain<'_, 'pool> {
    type Item = Mbuf<'pool>;

    fn next(&mut self) -> Option<Mbuf<'pool>> {
        if self.next == self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        // SAFETY: slots next..end held owned mbufs when the drain began (the burst's len was
        // set to 0, so nothing else reads them) and each is read exactly once.
        Some(unsafe { self.burst.slots[i].assume_init_read() })
    }
}

impl Drop for Drain<'_, '_> {
    fn drop(&mut self) {
        for mbuf in self.by_ref() {
            drop(mbuf);
        }
    }
}
