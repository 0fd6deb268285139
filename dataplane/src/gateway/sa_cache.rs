//! Prepared SAs: cipher contexts are built once per SA (slot and generation in the region), never
//! per packet. The process keeps one prepared SA per (slot, generation), shared by its lcores, so
//! that an inbound SA's anti-replay window is one lock-free window for every lcore receiving it;
//! each lcore keeps its own map in front of that (no lock on the packet path) and its own block
//! of outbound sequence numbers, reserved from the region with one atomic add
//! (`Reader::reserve_seq`), so that one SA can send from several lcores at once and a restarted
//! dataplane never reuses a number.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use shared::reader::{Reader, SeqError};
use shared::sad::SaHandle;

use super::counters::{GatewayDrop, Reason};
use crate::drop::DropReason;
use crate::esp::sa::{InboundSa, OutboundSa};

/// Outbound sequence numbers an lcore reserves at a time.
pub const SEQ_BLOCK: u64 = 64;

/// How far the SA's other lcores may have gone past the next number of an lcore's block before
/// the lcore drops the rest of it: packets numbered that far behind fall out of the peer's
/// anti-replay window (RFC 4303 3.4.3) and are dropped as too old. An lcore that sends on the SA
/// only now and then (one slow TCP flow) kept its block for ever before, every retransmission
/// numbered out of the window. Four blocks: lcores taking turns never reach it.
const STALE_SEQ: u64 = 4 * SEQ_BLOCK;

/// A prepared SA with the generation and installation time of the record it was built from.
#[derive(Debug)]
struct PreparedSa<T> {
    generation: u64,
    installed_at_ns: u64,
    sa: Arc<T>,
}

type Prepared<T> = Mutex<HashMap<u32, PreparedSa<T>>>;

/// The prepared SAs of a process.
#[derive(Debug, Default)]
pub struct PreparedSas {
    inbound: Prepared<InboundSa>,
    outbound: Prepared<OutboundSa>,
}

/// The prepared SA for `h`, built on first use by whichever lcore gets there first. `build` gets
/// the record and, when the SA was updated (a new generation of the SA installed at the same
/// time), the SA prepared from its previous generation.
fn prepare<T>(
    table: &Prepared<T>,
    reader: &Reader,
    h: SaHandle,
    build: impl FnOnce(&shared::sa::SaRecord, Option<&T>) -> Option<T>,
) -> Result<Arc<T>, Reason> {
    let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(prepared) = table.get(&h.slot) {
        if prepared.generation == h.generation {
            return Ok(prepared.sa.clone());
        }
    }
    let record = reader.read_sa(h).map_err(|_| GatewayDrop::SaChanged)?.ok_or(GatewayDrop::SaChanged)?;
    let previous = table.get(&h.slot).filter(|p| p.installed_at_ns == record.installed_at_ns).map(|p| &*p.sa);
    let sa = Arc::new(build(&record, previous).ok_or(GatewayDrop::SaUnusable)?);
    table.insert(h.slot, PreparedSa { generation: h.generation, installed_at_ns: record.installed_at_ns, sa: sa.clone() });
    Ok(sa)
}

#[derive(Debug)]
struct OutboundEntry {
    generation: u64,
    sa: Arc<OutboundSa>,
    seq: Range<u64>,
}

/// One lcore's view of the prepared SAs, indexed by SAD slot (slots are dense small numbers, so
/// a vector is both the smallest and the fastest map).
#[derive(Debug)]
pub struct SaCache {
    shared: Arc<PreparedSas>,
    inbound: Vec<Option<(u64, Arc<InboundSa>)>>,
    outbound: Vec<Option<OutboundEntry>>,
    /// SAs replaced in their slot since the last `release_replaced`, with their slot and
    /// generation: packets of theirs may still await sealing or opening (`gateway::burst_crypto`).
    replaced_inbound: Vec<(u32, u64, Arc<InboundSa>)>,
    replaced_outbound: Vec<(u32, u64, Arc<OutboundSa>)>,
}

/// The SA replaced under handle `h`, if it is among `replaced`.
fn find_replaced<T>(replaced: &[(u32, u64, Arc<T>)], h: SaHandle) -> Option<&T> {
    replaced.iter().find(|(slot, generation, _)| (*slot, *generation) == (h.slot, h.generation)).map(|(_, _, sa)| &**sa)
}

/// The entry for `slot`, growing the vector to hold it.
fn entry<T>(v: &mut Vec<Option<T>>, slot: u32) -> &mut Option<T> {
    let i = slot as usize;
    if i >= v.len() {
        v.resize_with(i + 1, || None);
    }
    &mut v[i]
}

impl SaCache {
    pub fn new(shared: Arc<PreparedSas>) -> SaCache {
        SaCache { shared, inbound: Vec::new(), outbound: Vec::new(), replaced_inbound: Vec::new(), replaced_outbound: Vec::new() }
    }

    /// The inbound SA behind `h`.
    #[inline]
    pub fn inbound(&mut self, reader: &Reader, h: SaHandle) -> Result<&InboundSa, Reason> {
        let slot = entry(&mut self.inbound, h.slot);
        if !matches!(slot, Some((g, _)) if *g == h.generation) {
            // An update of the SA: the window goes on from the previous generation's, so no
            // packet accepted before can be replayed and none still to come is lost. A new
            // process: above the highest number accepted, recorded in the region (0 for a new SA).
            let replay_top = reader.runtime(h).replay_top();
            let sa = prepare(&self.shared.inbound, reader, h, |r, previous| {
                let sa = InboundSa::from_record(r, None).ok()?;
                if !previous.is_some_and(|p| sa.replay_window().continue_from(p.replay_window())) {
                    sa.replay_window().resume_above(replay_top);
                }
                Some(sa)
            })?;
            if let Some((generation, old)) = slot.replace((h.generation, sa)) {
                self.replaced_inbound.push((h.slot, generation, old));
            }
        }
        match slot {
            Some((_, sa)) => Ok(sa),
            None => Err(GatewayDrop::SaChanged.into()),
        }
    }

    /// The outbound SA behind `h` and the sequence number for the next packet it protects.
    #[inline]
    pub fn outbound(&mut self, reader: &Reader, h: SaHandle) -> Result<(&OutboundSa, u64), Reason> {
        let slot = entry(&mut self.outbound, h.slot);
        if !matches!(slot, Some(e) if e.generation == h.generation) {
            let sa = prepare(&self.shared.outbound, reader, h, |r, _| OutboundSa::from_record(r).ok())?;
            if let Some(old) = slot.replace(OutboundEntry { generation: h.generation, sa, seq: 0..0 }) {
                self.replaced_outbound.push((h.slot, old.generation, old.sa));
            }
        }
        let Some(entry) = slot else { return Err(GatewayDrop::SaChanged.into()) };
        // (A number left unused is a gap, which the peer's window accepts.)
        let seq = match entry.seq.next() {
            Some(seq) if reader.runtime(h).next_seq() <= seq + STALE_SEQ => seq,
            _ => {
                entry.seq = reader.reserve_seq(h, SEQ_BLOCK, entry.sa.esn).map_err(|e| match e {
                    SeqError::Exhausted(_) => Reason::Esp(DropReason::SeqExhausted),
                    SeqError::Stale => Reason::Gateway(GatewayDrop::SaChanged),
                })?;
                entry.seq.next().ok_or(Reason::Esp(DropReason::SeqExhausted))?
            }
        };
        Ok((&entry.sa, seq))
    }

    /// The inbound SA behind `h` as this cache prepared it: the current one of its slot, or one
    /// replaced there since the last `release_replaced`.
    pub fn prepared_inbound(&self, h: SaHandle) -> Option<&InboundSa> {
        match self.inbound.get(h.slot as usize) {
            Some(Some((generation, sa))) if *generation == h.generation => Some(sa),
            _ => find_replaced(&self.replaced_inbound, h),
        }
    }

    /// The outbound SA behind `h`, as [`prepared_inbound`](Self::prepared_inbound) for inbound.
    pub fn prepared_outbound(&self, h: SaHandle) -> Option<&OutboundSa> {
        match self.outbound.get(h.slot as usize) {
            Some(Some(e)) if e.generation == h.generation => Some(&e.sa),
            _ => find_replaced(&self.replaced_outbound, h),
        }
    }

    /// Lets the SAs replaced so far go (the caller holds no packet of theirs any more).
    pub fn release_replaced(&mut self) {
        self.replaced_inbound.clear();
        self.replaced_outbound.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::event::SaKey;
    use shared::layout::Capacities;
    use shared::ops::Writer;
    use shared::region::Region;
    use shared::synthetic::{synthetic_sa, SYNTHETIC_DST};

    /// Removes the region file however the test ends.
    struct RemoveOnDrop(std::path::PathBuf);

    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = Region::remove(&self.0);
        }
    }

    /// RFC 4303 3.4.3: an SA's anti-replay window must survive both a control-plane update of the
    /// SA (new generation, new prepared SA: the window goes on as it was) and a restart of the
    /// dataplane (new process: everything up to the recorded top counts as received).
    #[test]
    fn the_replay_window_survives_an_sa_update_and_a_dataplane_restart() {
        let path = RemoveOnDrop(std::env::temp_dir().join(format!("ipsec-gw-sa-cache-{}", std::process::id())));
        let region = Arc::new(Region::create(&path.0, Capacities { sas: 8, readers: 4, ..Capacities::default() }).unwrap());
        let mut writer = Writer::attach(region.clone()).unwrap();
        writer.add_sa(&synthetic_sa(0x4242, 0)).unwrap();
        let mut reader = Reader::attach(region.clone()).unwrap();
        let lookup = |reader: &Reader| reader.lookup(0x4242, &SYNTHETIC_DST.into()).unwrap().unwrap();

        let mut cache = SaCache::new(Arc::new(PreparedSas::default()));
        let h = lookup(&reader);
        for seq in [1, 2, 50] {
            cache.inbound(&reader, h).unwrap().replay_window().commit(seq).unwrap();
            reader.runtime(h).raise_replay_top(seq);
        }

        let mut updated = synthetic_sa(0x4242, 0);
        updated.hard.seconds += 1;
        writer.update_sa(&updated).unwrap();
        let after_update = lookup(&reader);
        assert_ne!(after_update.generation, h.generation);
        let window = cache.inbound(&reader, after_update).unwrap().replay_window();
        assert!(window.check(50).is_err() && window.check(2).is_err(), "accepted before the update");
        assert!(window.check(51).is_ok() && window.check(49).is_ok(), "the same window goes on");

        // A new process knows only the region's record: everything up to its top is received.
        let mut restarted = SaCache::new(Arc::new(PreparedSas::default()));
        let window = restarted.inbound(&reader, after_update).unwrap().replay_window();
        assert!(window.check(50).is_err() && window.check(49).is_err(), "accepted before the restart");
        assert!(window.check(51).is_ok());

        // Deleted and installed again (same SPI, same slot once the lcore has passed a quiescent
        // state): a new SA, whose window starts empty.
        writer.del_sa(SaKey { spi: 0x4242, dst: SYNTHETIC_DST }).unwrap();
        reader.quiescent();
        writer.add_sa(&synthetic_sa(0x4242, 0)).unwrap();
        let reinstalled = lookup(&reader);
        assert_eq!(reinstalled.slot, h.slot);
        assert!(cache.inbound(&reader, reinstalled).unwrap().replay_window().check(1).is_ok());
        writer.del_sa(SaKey { spi: 0x4242, dst: SYNTHETIC_DST }).unwrap();
    }

    /// A region with one outbound SA of SPI `spi` (returned), and a writer and a reader on it.
    fn one_outbound_sa(name: &str, spi: u32) -> (RemoveOnDrop, Writer, Reader, shared::sa::SaConfig) {
        let path = RemoveOnDrop(std::env::temp_dir().join(format!("ipsec-gw-{name}-{}", std::process::id())));
        let region = Arc::new(Region::create(&path.0, Capacities { sas: 8, readers: 4, ..Capacities::default() }).unwrap());
        let mut writer = Writer::attach(region.clone()).unwrap();
        let mut sa = synthetic_sa(spi, 0);
        sa.direction = shared::sa::Direction::Out;
        sa.reqid = 3;
        writer.add_sa(&sa).unwrap();
        let reader = Reader::attach(region).unwrap();
        (path, writer, reader, sa)
    }

    #[test]
    fn a_replaced_outbound_sa_stays_prepared_until_released() {
        let (_path, mut writer, reader, mut sa) = one_outbound_sa("replaced", 0x6161);
        let lookup = || reader.lookup(0x6161, &SYNTHETIC_DST.into()).unwrap().unwrap();
        let mut cache = SaCache::new(Arc::new(PreparedSas::default()));
        let before = lookup();
        cache.outbound(&reader, before).unwrap();

        sa.hard.seconds += 1;
        writer.update_sa(&sa).unwrap();
        let after = lookup();
        cache.outbound(&reader, after).unwrap();
        // A packet numbered under the SA before the update can still be sealed with it.
        assert!(cache.prepared_outbound(before).is_some() && cache.prepared_outbound(after).is_some());
        cache.release_replaced();
        assert!(cache.prepared_outbound(before).is_none() && cache.prepared_outbound(after).is_some());
        writer.del_sa(SaKey { spi: 0x6161, dst: SYNTHETIC_DST }).unwrap();
    }

    /// Two lcores on one outbound SA: while one sends a single packet, the other sends a
    /// thousand. The first does not go on with its old block, whose numbers the peer's window
    /// has left behind, but reserves a new one; lcores that take turns keep their blocks.
    #[test]
    fn an_lcore_drops_a_block_the_others_left_far_behind() {
        let (_path, _writer, reader, _) = one_outbound_sa("seq-blocks", 0x5151);
        let h = reader.lookup(0x5151, &SYNTHETIC_DST.into()).unwrap().unwrap();
        let prepared = Arc::new(PreparedSas::default());
        let (mut busy, mut quiet) = (SaCache::new(prepared.clone()), SaCache::new(prepared));
        let seq = |cache: &mut SaCache| cache.outbound(&reader, h).unwrap().1;

        assert_eq!(seq(&mut quiet), 1);
        // Taking turns: the quiet lcore's block (1..=64) stays in use.
        assert_eq!(seq(&mut busy), 65);
        assert_eq!(seq(&mut quiet), 2);
        let last = (0..1000).map(|_| seq(&mut busy)).last().unwrap();
        let next = seq(&mut quiet);
        assert!(next > last, "the quiet lcore went on with {next} after {last}");
        let mut seen: Vec<u64> = (0..200).map(|_| seq(&mut busy)).chain((0..200).map(|_| seq(&mut quiet))).collect();
        let count = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), count, "a sequence number used twice");
    }
}
