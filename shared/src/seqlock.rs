//! A single-writer sequence lock over an array of 64-bit words.
//!
//! The protocol is the one from Boehm, "Can seqlocks get along with programming language memory
//! models?" (MSPC 2012), expressed only with atomics so that it is free of data races under the
//! Rust memory model and can be model-checked with loom:
//!
//! - writer: `seq = s+1` (odd: write in progress), release fence, relaxed word stores,
//!   `seq = s+2` with release;
//! - reader: `s1 = seq` with acquire (retry while odd), relaxed word loads, acquire fence,
//!   `s2 = seq`; the copy is consistent iff `s1 == s2`.
//!
//! The even sequence value also serves as the record's *generation*: it changes on every write,
//! so a reader can cache something derived from the record and revalidate it with one load.
//!
//! A writer that dies in the middle of a write leaves the sequence odd; readers then give up after
//! a bounded number of attempts ([`Contended`]) instead of spinning forever, and the restarted
//! writer repairs the record from its journal (see `journal.rs`).

use crate::sync::{fence, spin, AtomicU64, Ordering};

/// How many times a reader retries before reporting the record as contended.
pub const READ_ATTEMPTS: u32 = 64;

/// The record was being written during every attempt (or its writer died mid-write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record is being written (sequence lock held)")]
pub struct Contended;

/// `W` words guarded by one sequence counter.
#[repr(C)]
#[derive(Debug)]
pub struct SeqLock<const W: usize> {
    seq: AtomicU64,
    words: [AtomicU64; W],
}

impl<const W: usize> SeqLock<W> {
    /// A zeroed lock (sequence 0, all words 0), as found in fresh zero-filled shared memory.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        SeqLock { seq: AtomicU64::new(0), words: std::array::from_fn(|_| AtomicU64::new(0)) }
    }

    /// The current generation if no write is in progress.
    #[inline]
    pub fn generation(&self) -> Option<u64> {
        let s = self.seq.load(Ordering::Acquire);
        (s & 1 == 0).then_some(s)
    }

    /// Reads a consistent view with `f`, which must only load words (relaxed) and must not act on
    /// what it reads until this returns: the closure may observe a torn state that is then
    /// discarded. Returns `f`'s result and the generation it was read at.
    #[inline]
    pub fn read_with<R>(&self, f: impl Fn(&[AtomicU64; W]) -> R) -> Result<(R, u64), Contended> {
        for _ in 0..READ_ATTEMPTS {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                spin();
                continue;
            }
            let r = f(&self.words);
            fence(Ordering::Acquire);
            let s2 = self.seq.load(Ordering::Relaxed);
            if s1 == s2 {
                return Ok((r, s1));
            }
            spin();
        }
        Err(Contended)
    }

    /// Copies all words out consistently.
    #[inline]
    pub fn read(&self) -> Result<([u64; W], u64), Contended> {
        self.read_with(|w| std::array::from_fn(|i| w[i].load(Ordering::Relaxed)))
    }

    /// Replaces all words. Only the single writer may call this. Returns the new generation.
    pub fn write(&self, value: &[u64; W]) -> u64 {
        let s = self.seq.load(Ordering::Relaxed);
        // A crashed writer may have left the sequence odd: continue from the next odd value so
        // that readers keep seeing "write in progress" until this write completes.
        let odd = s | 1;
        self.seq.store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        for (w, v) in self.words.iter().zip(value) {
            w.store(*v, Ordering::Relaxed);
        }
        let even = odd + 1;
        self.seq.store(even, Ordering::Release);
        even
    }

    /// True if the last write did not complete (its writer died while holding the lock).
    pub fn write_interrupted(&self) -> bool {
        self.seq.load(Ordering::Acquire) & 1 == 1
    }
}
