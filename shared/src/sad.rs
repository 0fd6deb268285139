//! The security association database: seqlocked SA records, a lock-free open-addressing index
//! from (SPI, destination) to record, and the reqid links that outbound lookups follow.
//!
//! Index entries are one atomic word each: the SPI in the high half and the slot number + 1 in the
//! low half (0 = empty, [`TOMBSTONE`] = deleted). A reader probes linearly until an empty entry and
//! confirms a candidate by reading the record's key under its seqlock, so an entry that is being
//! deleted or reused is never mistaken for a live SA.
//!
//! SPIs that the gateway chooses itself (`get_spi`, so every negotiated inbound SA) carry their
//! slot number in their low bits, as DPDK ipsec-secgw's `SPI2IDX` does: a lookup first reads the
//! record at [`Sad::spi_slot`] and, when its key matches, is done after one cache miss instead of
//! two. An SA whose SPI someone else chose (static configuration) goes into its SPI's slot too
//! when that slot is free (`Writer::add_sa`); otherwise it is found through the index.

use crate::addr::RawAddr;
use crate::sa::{SaRecord, SlotState, SA_WORDS};
use crate::seqlock::{Contended, SeqLock};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(target_endian = "big")]
compile_error!("the SA index decodes record words as little-endian");

/// One SA record in the region.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct SaSlot {
    pub(crate) lock: SeqLock<SA_WORDS>,
}

const EMPTY: u64 = 0;
/// Low half of a deleted entry.
const TOMBSTONE: u32 = u32::MAX;

/// A looked-up SA: its slot and the record generation it was found at. The generation changes on
/// every update or delete, so holders revalidate with [`Sad::is_current`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SaHandle {
    pub slot: u32,
    pub generation: u64,
}

/// The SAD over the region's sections.
#[derive(Debug, Clone, Copy)]
pub struct Sad<'a> {
    pub slots: &'a [SaSlot],
    pub index: &'a [AtomicU64],
    pub reqid_links: &'a [AtomicU32],
}

fn entry(spi: u32, slot: u32) -> u64 {
    (spi as u64) << 32 | (slot as u64 + 1)
}

/// The record words a lookup reads: SPI, state and direction (word 0) and the destination (1-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyWords([u64; 3]);

impl KeyWords {
    fn spi(&self) -> u32 {
        self.0[0] as u32
    }
    fn state(&self) -> u8 {
        (self.0[0] >> 32) as u8
    }
    fn outbound(&self) -> bool {
        (self.0[0] >> 40) as u8 == 1
    }
}

impl<'a> Sad<'a> {
    fn home(&self, spi: u32, dst: &RawAddr) -> usize {
        let [a, b] = dst.words();
        let h = (spi as u64 ^ a.rotate_left(23) ^ b.rotate_left(41)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 32) as usize & (self.index.len() - 1)
    }

    /// Reads a slot's key words under its seqlock (`None` for a slot number out of range).
    fn key_words(&self, slot: u32) -> Result<Option<(KeyWords, u64)>, Contended> {
        let Some(s) = self.slots.get(slot as usize) else { return Ok(None) };
        let (w, generation) = s.lock.read_with(|w| {
            KeyWords([w[0].load(Ordering::Relaxed), w[1].load(Ordering::Relaxed), w[2].load(Ordering::Relaxed)])
        })?;
        Ok(Some((w, generation)))
    }

    /// The slot whose number is the low bits of `spi`: where `get_spi` puts the SA it reserves.
    #[inline]
    pub fn spi_slot(&self, spi: u32) -> Option<u32> {
        let mask = self.slots.len().next_power_of_two() - 1;
        let slot = spi as usize & mask;
        (slot < self.slots.len()).then_some(slot as u32)
    }

    /// The bits of an SPI that [`Sad::spi_slot`] does not use.
    pub(crate) fn spi_free_bits(&self) -> u32 {
        !((self.slots.len().next_power_of_two() - 1) as u32)
    }

    /// The live SA with this SPI and destination if it sits in the SPI's own slot.
    #[inline]
    fn lookup_spi_slot(&self, spi: u32, want: [u64; 2]) -> Result<Option<SaHandle>, Contended> {
        let Some(slot) = self.spi_slot(spi) else { return Ok(None) };
        Ok(self.key_words(slot)?.and_then(|(k, generation)| {
            let hit = k.spi() == spi && k.state() == SlotState::Live as u8 && k.0[1..] == want;
            hit.then_some(SaHandle { slot, generation })
        }))
    }

    /// The live SA with this SPI and destination.
    #[inline]
    pub fn lookup(&self, spi: u32, dst: &RawAddr) -> Result<Option<SaHandle>, Contended> {
        if let Some(h) = self.lookup_spi_slot(spi, dst.words())? {
            return Ok(Some(h));
        }
        self.lookup_index(spi, dst)
    }

    /// The live SA with this SPI and destination, found through the index.
    fn lookup_index(&self, spi: u32, dst: &RawAddr) -> Result<Option<SaHandle>, Contended> {
        let mask = self.index.len() - 1;
        let want = dst.words();
        let mut i = self.home(spi, dst);
        for _ in 0..self.index.len() {
            let e = self.index[i].load(Ordering::Acquire);
            if e == EMPTY {
                return Ok(None);
            }
            let slot = e as u32;
            if (e >> 32) as u32 == spi && slot != TOMBSTONE {
                if let Some((k, generation)) = self.key_words(slot - 1)? {
                    if k.spi() == spi && k.state() == SlotState::Live as u8 && k.0[1..] == want {
                        return Ok(Some(SaHandle { slot: slot - 1, generation }));
                    }
                }
            }
            i = (i + 1) & mask;
        }
        Ok(None)
    }

    /// Looks up a burst of keys so that their cache misses overlap (as DPDK's
    /// `rte_hash_lookup_bulk` does): first the records in the SPIs' own slots are prefetched and
    /// checked; the keys not found there go through the index, whose entries are prefetched, then
    /// their records.
    pub fn lookup_burst(&self, keys: &[(u32, RawAddr)], out: &mut [Result<Option<SaHandle>, Contended>]) {
        const MAX: usize = 64;
        let n = keys.len().min(out.len()).min(MAX);
        for (spi, _) in &keys[..n] {
            if let Some(slot) = self.spi_slot(*spi) {
                crate::region::prefetch(&self.slots[slot as usize]);
            }
        }
        let mut misses = [0usize; MAX];
        let mut missed = 0;
        for (i, (o, (spi, dst))) in out[..n].iter_mut().zip(&keys[..n]).enumerate() {
            *o = self.lookup_spi_slot(*spi, dst.words());
            if matches!(o, Ok(None)) {
                misses[missed] = i;
                missed += 1;
            }
        }
        if missed == 0 {
            return;
        }
        let mut homes = [0usize; MAX];
        for (home, &i) in homes.iter_mut().zip(&misses[..missed]) {
            let (spi, dst) = &keys[i];
            *home = self.home(*spi, dst);
            crate::region::prefetch(&self.index[*home]);
        }
        for home in &homes[..missed] {
            let e = self.index[*home].load(Ordering::Relaxed) as u32;
            if e != 0 && e != TOMBSTONE {
                if let Some(s) = self.slots.get(e as usize - 1) {
                    crate::region::prefetch(s);
                }
            }
        }
        for &i in &misses[..missed] {
            let (spi, dst) = &keys[i];
            out[i] = self.lookup_index(*spi, dst);
        }
    }

    /// The outbound SA currently linked to `reqid`.
    #[inline]
    pub fn outbound(&self, reqid: u32) -> Result<Option<SaHandle>, Contended> {
        let Some(link) = self.reqid_links.get(reqid as usize) else { return Ok(None) };
        let slot = link.load(Ordering::Acquire);
        if slot == 0 || reqid == 0 {
            return Ok(None);
        }
        let Some(s) = self.slots.get(slot as usize - 1) else { return Ok(None) };
        // Word 5 holds the reqid in its low half (see SaRecord).
        let ((w0, w5), generation) = s.lock.read_with(|w| (w[0].load(Ordering::Relaxed), w[5].load(Ordering::Relaxed)))?;
        let k = KeyWords([w0, 0, 0]);
        let ok = k.state() == SlotState::Live as u8 && k.outbound() && w5 as u32 == reqid;
        Ok(ok.then_some(SaHandle { slot: slot - 1, generation }))
    }

    /// True if the SA behind `h` has not been updated or deleted since it was looked up.
    #[inline]
    pub fn is_current(&self, h: SaHandle) -> bool {
        self.slots.get(h.slot as usize).and_then(|s| s.lock.generation()) == Some(h.generation)
    }

    /// A consistent copy of a slot's record and its generation.
    pub fn read(&self, slot: u32) -> Result<Option<(SaRecord, u64)>, Contended> {
        let Some(s) = self.slots.get(slot as usize) else { return Ok(None) };
        let (words, generation) = s.lock.read()?;
        Ok(Some((SaRecord::from_words(words), generation)))
    }

    // ---- writer side (single writer: see ops.rs) ----

    /// Index position and slot of (spi, dst) regardless of the record's state.
    pub(crate) fn find(&self, spi: u32, dst: &RawAddr) -> Option<(usize, u32)> {
        let mask = self.index.len() - 1;
        let mut i = self.home(spi, dst);
        for _ in 0..self.index.len() {
            let e = self.index[i].load(Ordering::Relaxed);
            if e == EMPTY {
                return None;
            }
            let slot = e as u32;
            if (e >> 32) as u32 == spi && slot != TOMBSTONE {
                let rec = self.read(slot - 1).ok().flatten();
                if rec.is_some_and(|(r, _)| r.spi == spi && r.dst == *dst && r.state() != SlotState::Free) {
                    return Some((i, slot - 1));
                }
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Adds (spi, dst) -> slot; the caller has checked it is absent.
    pub(crate) fn index_insert(&self, spi: u32, dst: &RawAddr, slot: u32) {
        let mask = self.index.len() - 1;
        let mut i = self.home(spi, dst);
        // The index has twice as many entries as there are slots, so there is always room.
        loop {
            let e = self.index[i].load(Ordering::Relaxed);
            if e == EMPTY || e as u32 == TOMBSTONE {
                self.index[i].store(entry(spi, slot), Ordering::Release);
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Removes the entry at `pos`. If the next entry is empty, no probe sequence continues through
    /// this one, so it (and any tombstones just before it) can become empty instead of a tombstone;
    /// this keeps long-running churn from filling the index with tombstones.
    pub(crate) fn index_remove(&self, pos: usize) {
        let mask = self.index.len() - 1;
        if self.index[(pos + 1) & mask].load(Ordering::Relaxed) != EMPTY {
            let spi = self.index[pos].load(Ordering::Relaxed) >> 32;
            self.index[pos].store(spi << 32 | TOMBSTONE as u64, Ordering::Release);
            return;
        }
        self.index[pos].store(EMPTY, Ordering::Release);
        let mut i = pos.wrapping_sub(1) & mask;
        while self.index[i].load(Ordering::Relaxed) as u32 == TOMBSTONE {
            self.index[i].store(EMPTY, Ordering::Release);
            i = i.wrapping_sub(1) & mask;
        }
    }

    pub(crate) fn write(&self, slot: u32, rec: &SaRecord) {
        self.slots[slot as usize].lock.write(&rec.to_words());
    }
}

#[cfg(not(loom))]
pub(crate) const fn shape(fp: crate::layout::Fingerprint) -> crate::layout::Fingerprint {
    crate::shape!(fp, SaSlot { lock })
}
