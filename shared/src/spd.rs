//! SPD snapshots. The control plane publishes a whole new rule list at once: it writes the list
//! into the buffer readers are not using, then switches the active buffer with one atomic store.
//! A buffer is written again only after every reader has passed a quiescent state since it was
//! retired (QSBR, see `rcu.rs`), so a reader always sees one complete snapshot.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::policy::PolicyRecord;

pub const POLICY_WORDS: usize = std::mem::size_of::<PolicyRecord>() / 8;
const _: () = assert!(std::mem::size_of::<PolicyRecord>().is_multiple_of(8));

/// One rule in a snapshot buffer, as atomic words so that no access is a data race.
#[repr(C)]
#[derive(Debug)]
pub struct PolicySlot {
    words: [AtomicU64; POLICY_WORDS],
}

#[repr(C, align(64))]
#[derive(Debug)]
pub struct SpdControl {
    /// `version << 1 | buffer`: the published snapshot.
    active: AtomicU64,
    /// Rules in each buffer.
    lens: [AtomicU32; 2],
    /// QSBR token at which each buffer was retired (0: never published or already reclaimed).
    retired_at: [AtomicU64; 2],
    /// Next policy id the writer hands out.
    next_policy_id: AtomicU32,
}

/// The rules of one published snapshot, borrowed for a reader's critical section.
#[derive(Debug, Clone, Copy)]
pub struct SpdView<'a> {
    pub version: u64,
    rules: &'a [PolicySlot],
}

impl<'a> SpdView<'a> {
    /// The published snapshot in `buffers`.
    pub fn active(control: &SpdControl, buffers: [&'a [PolicySlot]; 2]) -> SpdView<'a> {
        let active = control.active.load(Ordering::Acquire);
        let buf = (active & 1) as usize;
        let len = (control.lens[buf].load(Ordering::Relaxed) as usize).min(buffers[buf].len());
        SpdView { version: active >> 1, rules: &buffers[buf][..len] }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<PolicyRecord> {
        let slot = self.rules.get(i)?;
        let words: [u64; POLICY_WORDS] = std::array::from_fn(|w| slot.words[w].load(Ordering::Relaxed));
        Some(bytemuck::cast(words))
    }

    pub fn iter(&self) -> impl Iterator<Item = PolicyRecord> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl SpdControl {
    pub(crate) fn initialise(&self) {
        self.next_policy_id.store(1, Ordering::Relaxed);
        self.active.store(0, Ordering::Release);
    }

    pub(crate) fn take_policy_id(&self) -> u32 {
        self.next_policy_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The buffer the next publish writes, and the token readers must have passed first.
    pub(crate) fn next_buffer(&self) -> (usize, u64) {
        let next = 1 - (self.active.load(Ordering::Relaxed) & 1) as usize;
        (next, self.retired_at[next].load(Ordering::Relaxed))
    }

    /// Writes `rules` into `buffer` (which no reader may be using) and publishes it. Returns the
    /// new version; the caller then retires the old buffer with [`SpdControl::retire`].
    pub(crate) fn publish(&self, buffers: [&[PolicySlot]; 2], buffer: usize, rules: &[PolicyRecord]) -> (u64, usize) {
        for (slot, rule) in buffers[buffer].iter().zip(rules) {
            let words: [u64; POLICY_WORDS] = bytemuck::cast(*rule);
            for (w, v) in slot.words.iter().zip(words) {
                w.store(v, Ordering::Relaxed);
            }
        }
        self.lens[buffer].store(rules.len() as u32, Ordering::Relaxed);
        self.retired_at[buffer].store(0, Ordering::Relaxed);
        let old = self.active.load(Ordering::Relaxed);
        let version = (old >> 1) + 1;
        self.active.store(version << 1 | buffer as u64, Ordering::Release);
        (version, (old & 1) as usize)
    }

    pub(crate) fn retire(&self, buffer: usize, token: u64) {
        self.retired_at[buffer].store(token, Ordering::Relaxed);
    }
}

pub(crate) const fn shape(fp: crate::layout::Fingerprint) -> crate::layout::Fingerprint {
    let fp = crate::shape!(fp, PolicySlot { words });
    crate::shape!(fp, SpdControl { active, lens, retired_at, next_policy_id })
}
