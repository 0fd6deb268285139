//! Negotiation discovery per packet: the flow table ([`super::table`]) plus the 3.7.4.1 and
//! 3.7.4.2 decisions, flag updates and ACQUIRE events, for one lcore at a time.
//!
//! A decision is made on a snapshot of the flow's flags. Setting flags returns the flags the entry
//! had; if they differ from the snapshot (another lcore set Secure meanwhile) the decision is made
//! again with them, so a packet whose flags update observes Secure never goes out in cleartext.

use shared::event::{Event, ExchangeInfoFlags};
use shared::policy::PolicyFlags;
use shared::reader::Reader;

use super::flags::FlowFlags;
use super::flow_key::FlowKey;
use super::inbound::{inbound, Arrival, InboundFlow, InboundVerdict};
use super::outbound::{outbound, Acquire, FlowView, OutboundVerdict, SaMatch};
use super::report::{Board, NdReport};
use super::stats::NdStats;
use super::table::{Entry, FlowHash, FlowRef, FlowTable, FlowTableConfig, TableFull};

/// Where ACQUIRE events go: the shared event ring (`Reader::emit`) in the dataplane.
pub trait EventSink {
    /// Queues an event; false if it was lost (ring full).
    fn emit_event(&self, event: &Event) -> bool;
}

impl EventSink for Reader {
    fn emit_event(&self, event: &Event) -> bool {
        self.emit(event).is_ok()
    }
}

/// An outbound packet after the SPD and SA lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundPacket {
    pub key: FlowKey,
    pub policy_id: u32,
    pub rule: PolicyFlags,
    pub sa: Option<SaMatch>,
}

/// An inbound packet after decapsulation and the inbound SPD lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundPacket {
    pub key: FlowKey,
    pub arrival: Arrival,
    pub rule: PolicyFlags,
    /// An SA matches the packet and has the Guaranteed Encryption flag.
    pub sa_guaranteed_encryption: bool,
}

/// Flows an lcore sent an unconditional ACQUIRE for recently: at most one per flow per tick.
#[derive(Debug)]
struct RecentAcquires([(u64, u32); 64]);

impl RecentAcquires {
    fn admit(&mut self, hash: u64, now: u32) -> bool {
        let cell = &mut self.0[(hash % 64) as usize];
        let fresh = *cell != (hash, now);
        *cell = (hash, now);
        fresh
    }
}

/// Flows this lcore saw Secure, direct-mapped. Secure is never cleared and a Secure entry never
/// leaves the table, so a cached Secure snapshot stays true; its other flags may have been set
/// since, and deciding on the snapshot is deciding at the instant it was taken.
#[derive(Debug)]
struct SecureFlows(Box<[Option<(FlowKey, FlowFlags)>]>);

const SECURE_FLOWS_CACHED: usize = 4096;

impl SecureFlows {
    fn slot(key: &FlowKey) -> usize {
        (key.words[1] ^ key.words[3] ^ key.words[4]) as usize % SECURE_FLOWS_CACHED
    }

    fn get(&self, key: &FlowKey) -> Option<FlowFlags> {
        match &self.0[Self::slot(key)] {
            Some((k, flags)) if k == key => Some(*flags),
            _ => None,
        }
    }

    fn put(&mut self, key: &FlowKey, flags: FlowFlags) {
        if flags.secure() {
            self.0[Self::slot(key)] = Some((*key, flags));
        }
    }
}

/// One lcore's negotiation discovery state: its statistics, ACQUIRE rate limit and the Secure
/// flows it sends most (so that their packets skip the shared table).
#[derive(Debug)]
pub struct NdLcore {
    pub stats: NdStats,
    recent: RecentAcquires,
    secure: SecureFlows,
}

impl Default for NdLcore {
    fn default() -> Self {
        NdLcore {
            stats: NdStats::default(),
            recent: RecentAcquires([(0, u32::MAX); 64]),
            secure: SecureFlows(vec![None; SECURE_FLOWS_CACHED].into_boxed_slice()),
        }
    }
}

/// The negotiation discovery engine all lcores share.
#[derive(Debug)]
pub struct NegotiationDiscovery {
    table: FlowTable,
    capacity: usize,
    /// The lcores' published statistics.
    board: Board,
}

fn recorded(e: Entry) -> Option<FlowRef> {
    match e {
        Entry::Found(r) | Entry::Inserted(r) => Some(r),
        Entry::Full => None,
    }
}

/// Burst size the burst functions stage hashing and loads by.
const BURST: usize = 32;

impl NegotiationDiscovery {
    pub fn new(config: FlowTableConfig) -> NegotiationDiscovery {
        NegotiationDiscovery { table: FlowTable::new(config), capacity: config.capacity, board: Board::default() }
    }

    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    pub fn board(&self) -> &Board {
        &self.board
    }

    /// The table's counters and the lcores' last published ones.
    pub fn report(&self) -> NdReport {
        NdReport { table: self.table.stats(), capacity: self.capacity, memory_bytes: self.table.memory_bytes(), counts: self.board.sum() }
    }

    /// ORs `set` into the flow and returns its flags before. `known` are flags the flow is known
    /// to have (they only go from clear to set); if they include `set` the table is not touched.
    fn set(&self, key: &FlowKey, entry: Option<FlowRef>, known: FlowFlags, set: FlowFlags, now: u32) -> Result<FlowFlags, TableFull> {
        match entry {
            Some(_) if known.contains(set) => Ok(known),
            Some(r) => self.table.set_flags(key, r, set, now).map(|(_, before)| before),
            None => Err(TableFull),
        }
    }

    /// [MS-IKEE] 3.7.4.1 for one packet; emits the ACQUIRE it calls for.
    pub fn outbound(&self, lcore: &mut NdLcore, sink: &impl EventSink, pkt: &OutboundPacket, now: u32) -> OutboundVerdict {
        match self.outbound_secure_cached(lcore, &pkt.key, pkt.rule, pkt.sa) {
            Some(verdict) => verdict,
            None => self.outbound_uncached(lcore, sink, pkt, now),
        }
    }

    /// [`Self::outbound`] for a flow this lcore knows Secure, when that needs no flag update and
    /// no ACQUIRE; `None` otherwise (then [`Self::outbound_uncached`]). The rule and SA flags come
    /// by value: a caller that has just built them should not store them to read them back (a
    /// wider load of bytes just stored stalls on store forwarding).
    #[inline]
    pub fn outbound_secure_cached(&self, lcore: &mut NdLcore, key: &FlowKey, rule: PolicyFlags, sa: Option<SaMatch>) -> Option<OutboundVerdict> {
        let flags = lcore.secure.get(key).filter(|_| rule.nd_outbound)?;
        let d = outbound(rule, sa, FlowView::Recorded(flags));
        (flags.contains(d.set) && d.acquire == Acquire::None).then(|| {
            lcore.stats.outbound[d.branch.index()] += 1;
            d.verdict
        })
    }

    /// [`Self::outbound`] through the shared table. Out of line: the pipeline inlines the cached
    /// path around it.
    #[inline(never)]
    pub fn outbound_uncached(&self, lcore: &mut NdLcore, sink: &impl EventSink, pkt: &OutboundPacket, now: u32) -> OutboundVerdict {
        self.outbound_hashed(lcore, sink, pkt, &self.table.hash(&pkt.key), now)
    }

    /// [`Self::outbound`] over a burst: hashes and starts every packet's table loads first.
    pub fn outbound_burst(&self, lcore: &mut NdLcore, sink: &impl EventSink, pkts: &[OutboundPacket], verdicts: &mut [OutboundVerdict], now: u32) {
        for (chunk, out) in pkts.chunks(BURST).zip(verdicts.chunks_mut(BURST)) {
            let mut hashes = [FlowHash::default(); BURST];
            self.warm(chunk.iter().map(|p| (p.rule.nd_outbound, &p.key)), &mut hashes);
            for ((p, h), v) in chunk.iter().zip(&hashes).zip(out) {
                *v = match self.outbound_secure_cached(lcore, &p.key, p.rule, p.sa) {
                    Some(verdict) => verdict,
                    None => self.outbound_hashed(lcore, sink, p, h, now),
                };
            }
        }
    }

    /// Hashes a burst's keys into `hashes` and issues the table loads of those that use it.
    fn warm<'k>(&self, keys: impl Iterator<Item = (bool, &'k FlowKey)>, hashes: &mut [FlowHash; BURST]) {
        let mut loaded = 0;
        for ((uses_table, k), h) in keys.zip(hashes.iter_mut()) {
            *h = self.table.hash(k);
            if uses_table {
                loaded ^= self.table.warm(h);
            }
        }
        std::hint::black_box(loaded);
    }

    fn outbound_hashed(&self, lcore: &mut NdLcore, sink: &impl EventSink, pkt: &OutboundPacket, h: &FlowHash, now: u32) -> OutboundVerdict {
        if !pkt.rule.nd_outbound {
            let d = outbound(pkt.rule, pkt.sa, FlowView::Unrecorded);
            lcore.stats.outbound[d.branch.index()] += 1;
            return d.verdict;
        }
        let mut entry = recorded(self.table.lookup_or_insert_hashed(&pkt.key, h, now));
        let mut view = entry.map_or(FlowView::Unrecorded, |r| FlowView::Recorded(r.flags));
        let (d, first_acquire) = loop {
            let d = outbound(pkt.rule, pkt.sa, view);
            match self.set(&pkt.key, entry, view.flags(), d.set, now) {
                Ok(before) if FlowView::Recorded(before) != view => view = FlowView::Recorded(before),
                Ok(before) => break (d, d.set.acquire() && !before.acquire()),
                Err(TableFull) if view != FlowView::Unrecorded => {
                    view = FlowView::Unrecorded;
                    entry = None;
                }
                Err(TableFull) => break (d, false),
            }
        };
        match view {
            FlowView::Recorded(flags) => lcore.secure.put(&pkt.key, flags | d.set),
            FlowView::Unrecorded => lcore.stats.unrecorded += 1,
        }
        lcore.stats.outbound[d.branch.index()] += 1;
        let info = match d.acquire {
            Acquire::None => None,
            Acquire::IfAcquireFlagClear(info) if first_acquire => Some(info),
            Acquire::Always(info) if lcore.recent.admit(h.full, now) => Some(info),
            Acquire::IfAcquireFlagClear(_) | Acquire::Always(_) => {
                lcore.stats.acquire_suppressed += 1;
                None
            }
        };
        if let Some(flags) = info {
            self.acquire(lcore, sink, pkt, flags);
        }
        d.verdict
    }

    fn acquire(&self, lcore: &mut NdLcore, sink: &impl EventSink, pkt: &OutboundPacket, flags: ExchangeInfoFlags) {
        let event = Event::Acquire { policy_id: pkt.policy_id, flow: pkt.key.outbound_tuple(), flags };
        if sink.emit_event(&event) {
            lcore.stats.acquire_sent += 1;
        } else {
            lcore.stats.acquire_ring_full += 1;
        }
    }

    /// [MS-IKEE] 3.7.4.2 for one packet.
    pub fn inbound(&self, lcore: &mut NdLcore, pkt: &InboundPacket, now: u32) -> InboundVerdict {
        match self.inbound_secure_cached(lcore, pkt) {
            Some(verdict) => verdict,
            None => self.inbound_hashed(lcore, pkt, &self.table.hash(&pkt.key), now),
        }
    }

    /// The decision for a flow this lcore knows Secure, when it needs no flag update (a packet
    /// that arrived in ESP, or cleartext to discard).
    fn inbound_secure_cached(&self, lcore: &mut NdLcore, pkt: &InboundPacket) -> Option<InboundVerdict> {
        let flags = lcore.secure.get(&pkt.key)?;
        let d = inbound(pkt.arrival, pkt.rule, pkt.sa_guaranteed_encryption, InboundFlow::Existing(flags));
        flags.contains(d.set).then(|| {
            lcore.stats.inbound[d.branch.index()] += 1;
            d.verdict
        })
    }

    /// [`Self::inbound`] over a burst: hashes and starts every packet's table loads first.
    pub fn inbound_burst(&self, lcore: &mut NdLcore, pkts: &[InboundPacket], verdicts: &mut [InboundVerdict], now: u32) {
        for (chunk, out) in pkts.chunks(BURST).zip(verdicts.chunks_mut(BURST)) {
            let mut hashes = [FlowHash::default(); BURST];
            self.warm(chunk.iter().map(|p| (true, &p.key)), &mut hashes);
            for ((p, h), v) in chunk.iter().zip(&hashes).zip(out) {
                *v = match self.inbound_secure_cached(lcore, p) {
                    Some(verdict) => verdict,
                    None => self.inbound_hashed(lcore, p, h, now),
                };
            }
        }
    }

    fn inbound_hashed(&self, lcore: &mut NdLcore, pkt: &InboundPacket, h: &FlowHash, now: u32) -> InboundVerdict {
        let mut entry = self.table.lookup_hashed(&pkt.key, h, now);
        let mut view = entry.map_or(InboundFlow::New, |r| InboundFlow::Existing(r.flags));
        // The decision, and the flags the flow is known to have after it (if recorded).
        let (d, known) = loop {
            let d = inbound(pkt.arrival, pkt.rule, pkt.sa_guaranteed_encryption, view);
            // Only an accepted packet creates an entry: discarded packets must not fill the table.
            if d.verdict == InboundVerdict::Discard || (entry.is_some() && d.set == FlowFlags::NONE) {
                break (d, entry.and(match view {
                    InboundFlow::Existing(f) => Some(f),
                    _ => None,
                }));
            }
            if entry.is_none() && view != InboundFlow::Unrecorded {
                match self.table.lookup_or_insert_hashed(&pkt.key, h, now) {
                    Entry::Inserted(r) => entry = Some(r),
                    // Another lcore entered the flow meanwhile: decide as an existing flow.
                    Entry::Found(r) => {
                        entry = Some(r);
                        view = InboundFlow::Existing(r.flags);
                        continue;
                    }
                    Entry::Full => {
                        view = InboundFlow::Unrecorded;
                        continue;
                    }
                }
            }
            let current = match view {
                InboundFlow::Existing(f) => f,
                _ => FlowFlags::NONE,
            };
            match self.set(&pkt.key, entry, current, d.set, now) {
                Ok(before) if before != current && view != InboundFlow::New => view = InboundFlow::Existing(before),
                Ok(before) => break (d, Some(before | d.set)),
                Err(TableFull) if view != InboundFlow::Unrecorded => {
                    view = InboundFlow::Unrecorded;
                    entry = None;
                }
                Err(TableFull) => break (d, None),
            }
        };
        match known {
            Some(flags) => lcore.secure.put(&pkt.key, flags),
            None if view == InboundFlow::Unrecorded => lcore.stats.unrecorded += 1,
            None => {}
        }
        lcore.stats.inbound[d.branch.index()] += 1;
        d.verdict
    }
}
