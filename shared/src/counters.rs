//! Per-SA state that only the dataplane writes: the outbound sequence number allocator, the
//! highest inbound sequence number accepted, traffic counters, drops by reason and the time of
//! last use. The control plane reads it for lifetimes
//! and `show` commands, and resets it only when it installs a new SA in the slot, before the SA
//! becomes visible.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the dataplane dropped a packet of an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum SaDrop {
    /// RFC 4303 3.4.3: duplicate or too old for the anti-replay window.
    Replay,
    /// RFC 4303 3.4.4: integrity check failed.
    IcvMismatch,
    /// RFC 4303 2.4: padding or pad length invalid.
    BadPadding,
    /// RFC 4301 5.2: the inner packet does not match the SA's selectors.
    SelectorMismatch,
    /// RFC 4303 3.3.3: the sequence number would cycle.
    SeqExhausted,
    /// A hard lifetime was reached.
    Expired,
    /// Too short or otherwise unparseable.
    Malformed,
}

pub const SA_DROP_REASONS: usize = 7;

impl SaDrop {
    pub const ALL: [SaDrop; SA_DROP_REASONS] = [
        SaDrop::Replay,
        SaDrop::IcvMismatch,
        SaDrop::BadPadding,
        SaDrop::SelectorMismatch,
        SaDrop::SeqExhausted,
        SaDrop::Expired,
        SaDrop::Malformed,
    ];
    pub fn name(self) -> &'static str {
        match self {
            SaDrop::Replay => "replay",
            SaDrop::IcvMismatch => "icv_mismatch",
            SaDrop::BadPadding => "bad_padding",
            SaDrop::SelectorMismatch => "selector_mismatch",
            SaDrop::SeqExhausted => "seq_exhausted",
            SaDrop::Expired => "expired",
            SaDrop::Malformed => "malformed",
        }
    }
}

/// One SA's runtime state, in two cache lines. The first holds `next_seq`, which every lcore
/// sending on the SA reads for every packet, with the drop counters, which change rarely; the
/// second the traffic counters, which every lcore adds to every 100 µs, so that those additions
/// do not take the first line away from the lcores reading it.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct SaRuntime {
    /// The lowest outbound sequence number not yet handed out.
    next_seq: AtomicU64,
    drops: [AtomicU64; SA_DROP_REASONS],
    packets: AtomicU64,
    bytes: AtomicU64,
    last_use_ns: AtomicU64,
    /// The highest inbound sequence number whose ICV verified. A restarted dataplane starts the
    /// SA's anti-replay window here, so a packet it accepted before cannot be replayed to it.
    replay_top: AtomicU64,
}

const _: () = assert!(std::mem::offset_of!(SaRuntime, packets) >= 64, "next_seq shares its cache line with the counters");

/// A snapshot of an SA's runtime state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaCounters {
    pub next_seq: u64,
    pub packets: u64,
    pub bytes: u64,
    pub last_use_ns: u64,
    pub drops: [u64; SA_DROP_REASONS],
    pub replay_top: u64,
}

/// The SA has used up its sequence number space (RFC 4303 3.3.3: it must be rekeyed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sequence numbers exhausted")]
pub struct SeqExhausted;

impl SaRuntime {
    /// Reserves up to `n` consecutive outbound sequence numbers. The allocator lives in the
    /// region, so a restarted dataplane continues above every number it handed out before.
    /// Numbers past the limit (2^32 - 1, or 2^64 - 1 with ESN) are never returned.
    #[inline]
    pub fn reserve_seq(&self, n: u64, esn: bool) -> Result<Range<u64>, SeqExhausted> {
        let limit = if esn { u64::MAX } else { u32::MAX as u64 };
        let start = self.next_seq.fetch_add(n, Ordering::Relaxed);
        // 0 means the slot was never initialised: sequence number 0 is never sent.
        if start == 0 || start > limit {
            return Err(SeqExhausted);
        }
        Ok(start..start.saturating_add(n).min(limit.saturating_add(1)))
    }

    #[inline]
    pub fn count(&self, packets: u64, bytes: u64, now_ns: u64) {
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        // Read first: a locked fetch_max takes the line even when it changes nothing.
        if now_ns > self.last_use_ns.load(Ordering::Relaxed) {
            self.last_use_ns.fetch_max(now_ns, Ordering::Relaxed);
        }
    }

    /// Records that inbound sequence number `seq` passed its ICV check and the replay window.
    #[inline]
    pub fn raise_replay_top(&self, seq: u64) {
        if seq > self.replay_top.load(Ordering::Relaxed) {
            self.replay_top.fetch_max(seq, Ordering::Relaxed);
        }
    }

    /// The next outbound sequence number no one has reserved yet.
    #[inline]
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed)
    }

    /// The highest inbound sequence number accepted so far (0: none).
    #[inline]
    pub fn replay_top(&self) -> u64 {
        self.replay_top.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn count_drops(&self, reason: SaDrop, n: u64) {
        self.drops[reason as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> SaCounters {
        SaCounters {
            next_seq: self.next_seq.load(Ordering::Relaxed),
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            last_use_ns: self.last_use_ns.load(Ordering::Relaxed),
            drops: std::array::from_fn(|i| self.drops[i].load(Ordering::Relaxed)),
            replay_top: self.replay_top.load(Ordering::Relaxed),
        }
    }

    /// Fresh state for a newly installed SA: sequence numbers start at 1 (RFC 4303 3.3.3).
    pub(crate) fn reset(&self) {
        self.packets.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
        self.last_use_ns.store(0, Ordering::Relaxed);
        self.replay_top.store(0, Ordering::Relaxed);
        for d in &self.drops {
            d.store(0, Ordering::Relaxed);
        }
        self.next_seq.store(1, Ordering::Release);
    }
}

pub(crate) const fn shape(fp: crate::layout::Fingerprint) -> crate::layout::Fingerprint {
    crate::shape!(fp, SaRuntime { next_seq, drops, packets, bytes, last_use_ns, replay_top })
}
