//! A dataplane lcore's view of the region: lock-free SA lookups, the published SPD snapshot,
//! its SAs' runtime state and the event ring. Each lcore attaches its own [`Reader`], which owns a
//! QSBR slot; it must call [`Reader::quiescent`] between bursts.

use std::ops::Range;
use std::sync::Arc;

use crate::addr::RawAddr;
use crate::counters::{SaRuntime, SeqExhausted};
use crate::event::Event;
use crate::region::Region;
use crate::ring::RingFull;
use crate::sa::SaRecord;
use crate::sad::{Sad, SaHandle};
use crate::seqlock::Contended;
use crate::spd::SpdView;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReaderError {
    #[error("all {0} reader slots of the region are taken")]
    NoFreeSlot(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SeqError {
    #[error(transparent)]
    Exhausted(#[from] SeqExhausted),
    /// The SA was updated or deleted since it was looked up; look it up again.
    #[error("SA changed since lookup")]
    Stale,
}

#[derive(Debug)]
pub struct Reader {
    region: Arc<Region>,
    slot: usize,
}

impl Reader {
    pub fn attach(region: Arc<Region>) -> Result<Reader, ReaderError> {
        let qsbr = region.qsbr();
        let pid = std::process::id();
        let slot = qsbr.readers.iter().position(|s| s.try_claim(pid)).ok_or(ReaderError::NoFreeSlot(qsbr.readers.len()))?;
        qsbr.online(slot);
        Ok(Reader { region, slot })
    }

    pub fn region(&self) -> &Arc<Region> {
        &self.region
    }

    pub fn sad(&self) -> Sad<'_> {
        self.region.sad()
    }

    /// The live inbound SA for (SPI, destination).
    #[inline]
    pub fn lookup(&self, spi: u32, dst: &RawAddr) -> Result<Option<SaHandle>, Contended> {
        self.region.sad().lookup(spi, dst)
    }

    /// The live outbound SA linked to a protect rule's reqid.
    #[inline]
    pub fn outbound(&self, reqid: u32) -> Result<Option<SaHandle>, Contended> {
        self.region.sad().outbound(reqid)
    }

    /// The record behind a handle, or `None` if the SA changed since the lookup.
    pub fn read_sa(&self, h: SaHandle) -> Result<Option<SaRecord>, Contended> {
        Ok(self.region.sad().read(h.slot)?.filter(|(_, g)| *g == h.generation).map(|(r, _)| r))
    }

    /// The published SPD snapshot; valid until the next [`Reader::quiescent`].
    pub fn spd(&self) -> SpdView<'_> {
        self.region.spd_view()
    }

    /// Reports that this lcore holds nothing from before this call (call between bursts).
    #[inline]
    pub fn quiescent(&mut self) {
        self.region.qsbr().quiescent(self.slot);
    }

    /// The runtime state (counters, sequence allocator) of the SA behind `h`.
    pub fn runtime(&self, h: SaHandle) -> &SaRuntime {
        &self.region.sa_runtime()[h.slot as usize]
    }

    /// Reserves up to `n` outbound sequence numbers for the SA behind `h`.
    pub fn reserve_seq(&self, h: SaHandle, n: u64, esn: bool) -> Result<Range<u64>, SeqError> {
        let range = self.runtime(h).reserve_seq(n, esn)?;
        // Numbers reserved on a slot that was reused meanwhile are simply never sent.
        if !self.region.sad().is_current(h) {
            return Err(SeqError::Stale);
        }
        Ok(range)
    }

    /// Queues an event for the control plane; never blocks (overflow is counted).
    pub fn emit(&self, event: &Event) -> Result<(), RingFull> {
        self.region.ring().push(&bytemuck::cast(event.to_record()))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let qsbr = self.region.qsbr();
        qsbr.offline(self.slot);
        qsbr.readers[self.slot].release();
    }
}
