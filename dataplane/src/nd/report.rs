//! Negotiation discovery statistics for whoever reports them (the gateway's statistics file): each
//! lcore publishes its counters to a slot of the engine's board now and then (never waiting for a
//! reader), and [`Board::sum`] adds the slots up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::stats::{NdStats, RuleCounts};
use super::table::TableStats;

/// What one lcore counted: its [`NdStats`] and its cleartext decisions by SPD rule (policy id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LcoreCounts {
    pub stats: NdStats,
    pub rules: BTreeMap<u32, RuleCounts>,
}

impl LcoreCounts {
    pub fn add(&mut self, other: &LcoreCounts) {
        self.stats.add(&other.stats);
        for (id, counts) in &other.rules {
            self.rules.entry(*id).or_default().add(counts);
        }
    }
}

/// One lcore's published counts.
pub type Slot = Arc<Mutex<LcoreCounts>>;

/// The lcores' slots.
#[derive(Debug, Default)]
pub struct Board {
    slots: Mutex<Vec<Slot>>,
}

impl Board {
    /// A new lcore's slot (an lcore's counts stay on the board after it ends, so totals never drop).
    pub fn register(&self) -> Slot {
        let slot = Slot::default();
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).push(slot.clone());
        slot
    }

    /// Every lcore's last published counts, added up.
    pub fn sum(&self) -> LcoreCounts {
        let mut total = LcoreCounts::default();
        for slot in self.slots.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            total.add(&slot.lock().unwrap_or_else(PoisonError::into_inner));
        }
        total
    }
}

/// Publishes an lcore's counts into its `slot` unless a reader holds it (then a later call does).
pub fn publish(slot: &Slot, stats: &NdStats, rules: &BTreeMap<u32, RuleCounts>) -> bool {
    match slot.try_lock() {
        Ok(mut published) => {
            published.stats = *stats;
            published.rules.clone_from(rules);
            true
        }
        Err(_) => false,
    }
}

/// The engine's statistics: the table's and the lcores' counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NdReport {
    pub table: TableStats,
    /// Flows the table was sized for, and the bytes it holds.
    pub capacity: usize,
    pub memory_bytes: usize,
    pub counts: LcoreCounts,
}
