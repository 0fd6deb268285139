//! Quiescent-state-based reclamation (QSBR), in the manner of DPDK's `rte_rcu_qsbr`.
//!
//! Readers (dataplane lcores) each own a [`ReaderSlot`] in the shared region. Between bursts a
//! reader reports a quiescent state: "I hold no reference to anything published before now". The
//! writer retires an object (an SPD snapshot) by first unpublishing it, then calling
//! [`Qsbr::start`] to get a token, and reuses the object's memory only once [`Qsbr::check`]
//! finds every online reader has reported a quiescent state at or after that token.
//!
//! Memory ordering: the writer's unpublish happens before its release increment of the token; a
//! reader that loads that token (acquire) and then starts a new critical section sees the new
//! publication. The reader's release store of its counter orders all reads of its previous
//! critical section before the writer's acquire load that observes the counter, hence before the
//! writer reuses the memory.

use crate::sync::{fence, AtomicU32, AtomicU64, Ordering};

/// Counter value of a reader that is offline (holds no references and need not be waited for).
pub const OFFLINE: u64 = 0;

/// The token shared by the writer and all readers.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct QsbrToken {
    token: AtomicU64,
}

/// One reader's registration.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct ReaderSlot {
    /// The last token this reader reported quiescent at, or [`OFFLINE`].
    counter: AtomicU64,
    /// Process that owns the slot (0 = free), so a writer can reclaim slots of dead readers.
    owner_pid: AtomicU32,
}

impl QsbrToken {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        QsbrToken { token: AtomicU64::new(1) }
    }
    /// Zero-filled memory holds token 0; the first token must be above [`OFFLINE`].
    pub fn initialise(&self) {
        self.token.store(1, Ordering::Release);
    }
}

impl ReaderSlot {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ReaderSlot { counter: AtomicU64::new(OFFLINE), owner_pid: AtomicU32::new(0) }
    }

    /// Claims a free slot for `pid`. Returns false if it is taken.
    pub fn try_claim(&self, pid: u32) -> bool {
        self.owner_pid.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// The owning process, or 0 if free.
    pub fn owner(&self) -> u32 {
        self.owner_pid.load(Ordering::Acquire)
    }

    /// Frees the slot (by its owner on detach, or by the writer when the owner is dead).
    pub fn release(&self) {
        self.counter.store(OFFLINE, Ordering::Release);
        self.owner_pid.store(0, Ordering::Release);
    }
}

/// The QSBR protocol over a token and a set of reader slots.
#[derive(Debug, Clone, Copy)]
pub struct Qsbr<'a> {
    pub token: &'a QsbrToken,
    pub readers: &'a [ReaderSlot],
}

/// A reader that has not yet passed a quiescent state since the token was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagging {
    pub slot: usize,
    pub pid: u32,
}

impl Qsbr<'_> {
    /// Writer: called after unpublishing; returns the token readers must reach.
    pub fn start(&self) -> u64 {
        self.token.token.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Writer: Ok once every online reader has reported quiescence at or after `token`.
    pub fn check(&self, token: u64) -> Result<(), Lagging> {
        for (slot, r) in self.readers.iter().enumerate() {
            let c = r.counter.load(Ordering::Acquire);
            if c != OFFLINE && c < token {
                return Err(Lagging { slot, pid: r.owner_pid.load(Ordering::Relaxed) });
            }
        }
        Ok(())
    }

    /// Reader: start taking part (after claiming `slot`). Must precede any read of shared data.
    pub fn online(&self, slot: usize) {
        let t = self.token.token.load(Ordering::Acquire);
        self.readers[slot].counter.store(t, Ordering::SeqCst);
        // Store-load order: either the writer's check sees us online, or our next reads see what
        // it published before taking its token (rte_rcu_qsbr_thread_online does the same).
        fence(Ordering::SeqCst);
    }

    /// Reader: report that no reference from before this call is held any more.
    #[inline]
    pub fn quiescent(&self, slot: usize) {
        let t = self.token.token.load(Ordering::Acquire);
        self.readers[slot].counter.store(t, Ordering::Release);
    }

    /// Reader: stop taking part; the writer no longer waits for this slot.
    pub fn offline(&self, slot: usize) {
        self.readers[slot].counter.store(OFFLINE, Ordering::Release);
    }
}

#[cfg(not(loom))]
pub(crate) const fn shape(fp: crate::layout::Fingerprint) -> crate::layout::Fingerprint {
    let fp = crate::shape!(fp, QsbrToken { token });
    crate::shape!(fp, ReaderSlot { counter, owner_pid })
}
