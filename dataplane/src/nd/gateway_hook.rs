//! Negotiation discovery at the gateway pipeline's SPD decision points: one lcore's handle on the
//! shared engine, with the translation from what the pipeline has (the matched rule's record
//! flags, the packet's `Flow`, the SA handle) to the engine's inputs. It counts the cleartext
//! decisions by SPD rule, and publishes its counters to the engine's board now and then.

use std::collections::BTreeMap;
use std::sync::Arc;

use shared::policy::{PolicyFlags, PFLAG_BOUNDARY, PFLAG_GUARANTEED_ENCRYPTION, PFLAG_ND_INBOUND, PFLAG_ND_OUTBOUND};
use shared::reader::Reader;
use shared::sa::{Direction, FLAG_BOUNDARY, FLAG_GUARANTEED_ENCRYPTION, FLAG_UDP_ENCAP};
use shared::sad::SaHandle;

use super::engine::{InboundPacket, NdLcore, NegotiationDiscovery, OutboundPacket};
use super::flow_key::FlowKey;
use super::inbound::{Arrival, InboundVerdict};
use super::outbound::{OutboundVerdict, SaMatch};
use super::report::{publish, Slot};
use super::stats::RuleCounts;
use super::table::FlowTable;
use crate::esp::flow::Flow;

/// A policy record's PFLAG_* bits as [MS-IKEE] 3.7.1 policy flags.
pub fn policy_flags(bits: u8) -> PolicyFlags {
    PolicyFlags {
        nd_inbound: bits & PFLAG_ND_INBOUND != 0,
        nd_outbound: bits & PFLAG_ND_OUTBOUND != 0,
        boundary: bits & PFLAG_BOUNDARY != 0,
        guaranteed_encryption: bits & PFLAG_GUARANTEED_ENCRYPTION != 0,
        ..PolicyFlags::default()
    }
}

/// The 3.7.1 flags of the SAs an lcore met, by SAD slot and generation (direct-mapped), so a
/// packet does not copy the whole SA record to learn them.
#[derive(Debug)]
struct SaFlagsCache([(u32, u64, SaMatch); 64]);

impl SaFlagsCache {
    fn get(&mut self, reader: &Reader, h: SaHandle) -> Option<SaMatch> {
        let cell = &mut self.0[h.slot as usize % 64];
        if (cell.0, cell.1) != (h.slot, h.generation) {
            let record = reader.read_sa(h).ok()??;
            let sa = SaMatch {
                ms: shared::sa::MsSaFlags {
                    boundary: record.flags & FLAG_BOUNDARY != 0,
                    guaranteed_encryption: record.flags & FLAG_GUARANTEED_ENCRYPTION != 0,
                },
                udp_encap: record.flags & FLAG_UDP_ENCAP != 0,
            };
            *cell = (h.slot, h.generation, sa);
        }
        Some(cell.2)
    }
}

/// One lcore's negotiation discovery, as the gateway pipeline calls it.
#[derive(Debug)]
pub struct NdHook {
    engine: Arc<NegotiationDiscovery>,
    lcore: NdLcore,
    sa_flags: SaFlagsCache,
    /// The next bucket this lcore ages, and how many it ages each AGE_NS.
    age_cursor: usize,
    age_slice: usize,
    next_age_ns: u64,
    /// Cleartext decisions by SPD rule (policy id).
    rules: BTreeMap<u32, RuleCounts>,
    slot: Slot,
    next_publish_ns: u64,
}

/// How often an lcore ages a slice of the flow table (aging is safe from any number of lcores
/// at once). Not every round: a round is a few dozen packets, and aging reads table lines.
const AGE_NS: u64 = 1_000_000;

/// How often an lcore publishes its counters.
const PUBLISH_NS: u64 = 100_000_000;

/// Buckets to age each AGE_NS so that an lcore sweeps the whole table once per idle timeout: an
/// idle flow that is not Secure is removed between one and two timeouts after its last packet.
fn age_slice(table: &FlowTable) -> usize {
    let sweeps_per_timeout = u64::from(table.idle_timeout().max(1)) * (1_000_000_000 / AGE_NS);
    (table.buckets() as u64).div_ceil(sweeps_per_timeout) as usize
}

/// The table's tick: seconds.
fn tick(now_ns: u64) -> u32 {
    (now_ns / 1_000_000_000) as u32
}

impl NdHook {
    pub fn new(engine: Arc<NegotiationDiscovery>) -> NdHook {
        let slot = engine.board().register();
        let age_slice = age_slice(engine.table());
        NdHook {
            engine,
            lcore: NdLcore::default(),
            sa_flags: SaFlagsCache([(u32::MAX, u64::MAX, SaMatch::default()); 64]),
            age_cursor: 0,
            age_slice,
            next_age_ns: 0,
            rules: BTreeMap::new(),
            slot,
            next_publish_ns: 0,
        }
    }

    pub fn lcore(&self) -> &NdLcore {
        &self.lcore
    }

    /// Every AGE_NS, ages the next slice of the flow table; every PUBLISH_NS, publishes this
    /// lcore's counters. Call once per round of bursts.
    pub fn age_step(&mut self, now_ns: u64) {
        if now_ns < self.next_age_ns {
            return;
        }
        self.next_age_ns = now_ns + AGE_NS;
        let table = self.engine.table();
        table.age(tick(now_ns), self.age_cursor, self.age_slice);
        self.age_cursor = (self.age_cursor + self.age_slice) % table.buckets();
        if now_ns >= self.next_publish_ns && publish(&self.slot, &self.lcore.stats, &self.rules) {
            self.next_publish_ns = now_ns + PUBLISH_NS;
        }
    }

    /// 3.7.4.1 for a packet that matched outbound protect rule `policy_id` with record flags
    /// `rule_bits`; `sa` is the rule's outbound SA, if installed. ACQUIREs go to the event ring.
    pub fn outbound(&mut self, reader: &Reader, policy_id: u32, rule_bits: u8, flow: &Flow, sa: Option<SaHandle>, now_ns: u64) -> OutboundVerdict {
        let sa = sa.and_then(|h| self.sa_flags.get(reader, h));
        let (key, rule) = (FlowKey::of_flow(Direction::Out, flow), policy_flags(rule_bits));
        let verdict = match self.engine.outbound_secure_cached(&mut self.lcore, &key, rule, sa) {
            Some(verdict) => verdict,
            None => self.engine.outbound_uncached(&mut self.lcore, reader, &OutboundPacket { key, policy_id, rule, sa }, tick(now_ns)),
        };
        match verdict {
            OutboundVerdict::SendClear => self.rule(policy_id).cleartext_sent += 1,
            OutboundVerdict::Hold => self.rule(policy_id).held += 1,
            OutboundVerdict::Encapsulate | OutboundVerdict::Rfc4301 => {}
        }
        verdict
    }

    fn rule(&mut self, policy_id: u32) -> &mut RuleCounts {
        self.rules.entry(policy_id).or_default()
    }

    /// 3.7.4.2 for a cleartext packet that matched inbound protect rule `policy_id` with record
    /// flags `rule_bits`.
    pub fn inbound_cleartext(&mut self, policy_id: u32, rule_bits: u8, flow: &Flow, now_ns: u64) -> InboundVerdict {
        let pkt = InboundPacket { key: FlowKey::of_flow(Direction::In, flow), arrival: Arrival::Cleartext, rule: policy_flags(rule_bits), sa_guaranteed_encryption: false };
        let verdict = self.engine.inbound(&mut self.lcore, &pkt, tick(now_ns));
        let counts = self.rule(policy_id);
        match verdict {
            InboundVerdict::Accept => counts.cleartext_accepted += 1,
            InboundVerdict::Discard => counts.cleartext_dropped += 1,
        }
        verdict
    }

    /// 3.7.4.2 for a packet decapsulated with inbound SA `sa`: the flow becomes Secure.
    pub fn inbound_protected(&mut self, reader: &Reader, sa: SaHandle, flow: &Flow, now_ns: u64) {
        let ge = self.sa_flags.get(reader, sa).is_some_and(|s| s.ms.guaranteed_encryption);
        let pkt = InboundPacket { key: FlowKey::of_flow(Direction::In, flow), arrival: Arrival::Protected, rule: PolicyFlags::default(), sa_guaranteed_encryption: ge };
        self.engine.inbound(&mut self.lcore, &pkt, tick(now_ns));
    }
}
