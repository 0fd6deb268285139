//! The writer's redo journal. Every SAD change is recorded here before it is applied, so that a
//! writer killed half-way through (SIGKILL, a crash) is finished by the next writer on attach:
//! no SA is half-installed, no record stays write-locked, and no index entry points at the wrong
//! record. Applying a journaled change twice is harmless, so replaying it is always safe.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sa::{SaRecord, SA_WORDS};

#[repr(C, align(64))]
#[derive(Debug)]
pub struct Journal {
    op: AtomicU64,
    slot: AtomicU64,
    record: [AtomicU64; SA_WORDS],
}

/// A change to one SAD slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Make the slot hold this record (add, update, or reserve an SPI). `fresh` says the slot
    /// held no live SA before, so its runtime state (sequence numbers, counters) starts anew.
    Upsert { slot: u32, record: SaRecord, fresh: bool },
    /// Delete the SA with this record's key from the slot.
    Remove { slot: u32, record: SaRecord },
}

const IDLE: u64 = 0;
const UPSERT: u64 = 1;
const REMOVE: u64 = 2;
const UPSERT_FRESH: u64 = 3;

impl Journal {
    /// Records `change` as pending.
    pub(crate) fn begin(&self, change: &Change) {
        let (op, slot, record) = match change {
            Change::Upsert { slot, record, fresh: false } => (UPSERT, slot, record),
            Change::Upsert { slot, record, fresh: true } => (UPSERT_FRESH, slot, record),
            Change::Remove { slot, record } => (REMOVE, slot, record),
        };
        for (w, v) in self.record.iter().zip(record.to_words()) {
            w.store(v, Ordering::Relaxed);
        }
        self.slot.store(*slot as u64, Ordering::Relaxed);
        self.op.store(op, Ordering::Release);
    }

    /// Marks the pending change done and wipes the record (it may hold keys).
    pub(crate) fn commit(&self) {
        self.op.store(IDLE, Ordering::Release);
        for w in &self.record {
            w.store(0, Ordering::Relaxed);
        }
    }

    /// The change a dead writer left pending.
    pub(crate) fn pending(&self) -> Option<Change> {
        let op = self.op.load(Ordering::Acquire);
        let slot = self.slot.load(Ordering::Relaxed) as u32;
        let record = SaRecord::from_words(std::array::from_fn(|i| self.record[i].load(Ordering::Relaxed)));
        match op {
            UPSERT => Some(Change::Upsert { slot, record, fresh: false }),
            UPSERT_FRESH => Some(Change::Upsert { slot, record, fresh: true }),
            REMOVE => Some(Change::Remove { slot, record }),
            _ => None,
        }
    }
}

pub(crate) const fn shape(fp: crate::layout::Fingerprint) -> crate::layout::Fingerprint {
    crate::shape!(fp, Journal { op, slot, record })
}
