//! The flow state table of [MS-IKEE] 1.3.5 and 3.7.1, shared by every lcore.
//!
//! Memory is allocated once: buckets of [`SLOTS`] entries, each bucket one cache line of control
//! words followed by the keys (48 bytes a slot). A key may live in either of two buckets chosen by a
//! seeded hash (two-choice hashing keeps buckets from overflowing up to a high fill).
//!
//! A slot's control word holds, in one atomic `u64`, its state (empty, being written, ready), the
//! flags, a generation, a 16-bit fingerprint of the key and the last-seen time. So:
//! - a lookup reads one control line per candidate bucket and compares a key only on a
//!   fingerprint hit, validating the key against the generation (seqlock style); it never writes
//!   except to refresh the last-seen time, once per tick;
//! - a flag is set with a compare-and-swap that only ORs bits in and checks the generation, so a
//!   flag can never land on another flow that reused the slot, and flags only go from clear to set;
//! - inserts claim a slot with a compare-and-swap. Two lcores inserting the same new flow at the
//!   same instant (the only case in which anything waits) resolve to one entry: a claimer that sees
//!   another claim of the same fingerprint waits for its few stores; the later-ordered claim yields.
//!
//! Aging and eviction (what may be removed, [MS-IKEE] 1.3.5: "a once-secured flow can never
//! downgrade back to Cleartext"; 3.7.2: the extension defines no timers): an entry that is not
//! Secure may be removed when idle longer than the timeout, or evicted (oldest first) when its
//! buckets are full — losing it costs at most a repeated ACQUIRE or a re-evaluation of the
//! first-packet rule, never a downgrade, because only a Secure flow is barred from cleartext. A
//! Secure entry is never removed: were it dropped, the next packet would be a new flow and 3.7.4.1
//! would send it in cleartext — the downgrade an attacker gets by blocking IKE until the entry ages.
//! Its SAs' lifetimes do not bound the connection's life, so no safe earlier point exists.
//!
//! When both buckets of a new flow hold only Secure entries the flow cannot be recorded
//! ([`Entry::Full`], counted). That state is permanent for that key (Secure entries never leave),
//! so callers treat an unrecorded flow as Secure: never cleartext, always safe.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{fence, AtomicU64, Ordering};

use super::flags::FlowFlags;
use super::flow_key::{FlowKey, KEY_WORDS};

/// Entries per bucket: one cache line of control words.
pub const SLOTS: usize = 8;
/// The fill the table is sized for: capacity / slots.
const DESIGN_LOAD: f64 = 0.7;

const STATE_MASK: u64 = 0b11;
const EMPTY: u64 = 0;
const BUSY: u64 = 1;
const READY: u64 = 2;
const FLAGS_SHIFT: u32 = 2;
const GEN_SHIFT: u32 = FLAGS_SHIFT + FlowFlags::BITS;
const GEN_MASK: u64 = (1 << (16 - GEN_SHIFT)) - 1;
const FP_SHIFT: u32 = 16;
const TS_SHIFT: u32 = 32;
/// The bits that say which entry a slot holds; flags and time may change under a holder.
const IDENTITY: u64 = STATE_MASK | GEN_MASK << GEN_SHIFT | 0xffff << FP_SHIFT;

fn state(c: u64) -> u64 {
    c & STATE_MASK
}
fn flags(c: u64) -> FlowFlags {
    FlowFlags::from_bits((c >> FLAGS_SHIFT) as u8)
}
fn generation(c: u64) -> u64 {
    (c >> GEN_SHIFT) & GEN_MASK
}
fn fingerprint(c: u64) -> u16 {
    (c >> FP_SHIFT) as u16
}
fn last_seen(c: u64) -> u32 {
    (c >> TS_SHIFT) as u32
}
fn control(state: u64, flags: FlowFlags, gen: u64, fp: u16, ts: u32) -> u64 {
    state | u64::from(flags.bits()) << FLAGS_SHIFT | (gen & GEN_MASK) << GEN_SHIFT | u64::from(fp) << FP_SHIFT | u64::from(ts) << TS_SHIFT
}
/// Ticks since `ts`, negative when another lcore's clock ran ahead of ours.
fn idle(now: u32, ts: u32) -> i64 {
    i64::from(now.wrapping_sub(ts) as i32)
}

#[repr(C, align(64))]
#[derive(Debug, Default)]
struct Bucket {
    control: [AtomicU64; SLOTS],
    keys: [[AtomicU64; KEY_WORDS]; SLOTS],
}

/// Where a key may live, computed once per packet (see [`FlowTable::hash`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowHash {
    buckets: [usize; 2],
    fp: u16,
    /// The whole hash, for per-flow rate limits outside the table.
    pub(crate) full: u64,
}

impl FlowHash {
    fn candidates(&self) -> impl Iterator<Item = (usize, usize)> + Clone {
        let second = (self.buckets[1] != self.buckets[0]).then_some(self.buckets[1]);
        std::iter::once(self.buckets[0]).chain(second).flat_map(|b| (0..SLOTS).map(move |i| (b, i)))
    }
}

/// A found or inserted entry: where it is, which occupant it was, and its flags when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRef {
    bucket: usize,
    slot: usize,
    identity: u64,
    pub flags: FlowFlags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Found(FlowRef),
    Inserted(FlowRef),
    /// Both buckets hold only Secure entries: the flow cannot be recorded (counted).
    Full,
}

/// The key could not be recorded (see [`Entry::Full`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTableConfig {
    /// Flows the table is sized for (it has capacity / 0.7 slots: two-choice buckets of 8 then
    /// essentially never overflow, see BENCHMARKS.md).
    pub capacity: usize,
    /// Remove an entry that is not Secure after this many ticks without a packet.
    pub idle_timeout: u32,
}

/// Table-wide counters.
#[derive(Debug, Default)]
struct Counters {
    flows: AtomicU64,
    secure: AtomicU64,
    evicted: AtomicU64,
    aged: AtomicU64,
    full: AtomicU64,
}

/// A snapshot of the table's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableStats {
    /// Entries in the table.
    pub flows: u64,
    /// Flows that became Secure (they stay).
    pub secure_flows: u64,
    /// Entries that were not Secure, evicted to make room for a new flow.
    pub evicted: u64,
    /// Entries that were not Secure, removed after the idle timeout.
    pub aged: u64,
    /// New flows that could not be recorded (their buckets were all Secure).
    pub full: u64,
}

#[derive(Debug)]
pub struct FlowTable {
    buckets: Box<[Bucket]>,
    seed: u64,
    idle_timeout: u32,
    counters: Counters,
}

impl FlowTable {
    pub fn new(config: FlowTableConfig) -> FlowTable {
        let slots = (config.capacity as f64 / DESIGN_LOAD).ceil() as usize;
        let n = slots.div_ceil(SLOTS).max(2);
        // A per-table random seed, so a peer cannot aim flows at one bucket pair.
        let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
        FlowTable {
            buckets: (0..n).map(|_| Bucket::default()).collect(),
            seed,
            idle_timeout: config.idle_timeout,
            counters: Counters::default(),
        }
    }

    /// Slots in the table.
    pub fn slots(&self) -> usize {
        self.buckets.len() * SLOTS
    }

    /// Bytes the table holds (allocated once, in [`FlowTable::new`]).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    pub fn stats(&self) -> TableStats {
        let c = &self.counters;
        TableStats {
            flows: c.flows.load(Ordering::Relaxed),
            secure_flows: c.secure.load(Ordering::Relaxed),
            evicted: c.evicted.load(Ordering::Relaxed),
            aged: c.aged.load(Ordering::Relaxed),
            full: c.full.load(Ordering::Relaxed),
        }
    }

    #[inline]
    pub fn hash(&self, key: &FlowKey) -> FlowHash {
        let h = key.hash(self.seed);
        let n = self.buckets.len() as u128;
        let pick = |x: u64| ((u128::from(x) * n) >> 64) as usize;
        FlowHash { buckets: [pick(h), pick(h.rotate_left(32) ^ h >> 7)], fp: (h >> 48) as u16, full: h }
    }

    /// Starts the loads of a key's control lines, so that a burst's lookups overlap their cache
    /// misses: call for every packet of a burst, then look them up (safe Rust has no prefetch
    /// instruction; independent loads issued back to back do the same on an out-of-order core).
    #[inline]
    pub fn warm(&self, h: &FlowHash) -> u64 {
        h.buckets.iter().map(|&b| self.buckets[b].control[0].load(Ordering::Relaxed)).fold(0, |a, c| a ^ c)
    }

    fn control(&self, bucket: usize, slot: usize) -> &AtomicU64 {
        &self.buckets[bucket].control[slot]
    }

    fn key_matches(&self, bucket: usize, slot: usize, key: &FlowKey) -> bool {
        let stored = &self.buckets[bucket].keys[slot];
        stored.iter().zip(key.words).all(|(s, w)| s.load(Ordering::Relaxed) == w)
    }

    fn write_key(&self, bucket: usize, slot: usize, key: &FlowKey) {
        for (s, w) in self.buckets[bucket].keys[slot].iter().zip(key.words) {
            s.store(w, Ordering::Relaxed);
        }
    }

    /// Waits while a slot holding `fp` is being written, and returns its control word after.
    fn settled(&self, bucket: usize, slot: usize, fp: u16) -> u64 {
        loop {
            let c = self.control(bucket, slot).load(Ordering::SeqCst);
            if state(c) != BUSY || fingerprint(c) != fp {
                return c;
            }
            std::hint::spin_loop();
        }
    }

    /// The control word of a ready slot holding `key`, validated against concurrent reuse.
    fn read_entry(&self, bucket: usize, slot: usize, key: &FlowKey, fp: u16) -> Option<u64> {
        let c = self.settled(bucket, slot, fp);
        if state(c) != READY || fingerprint(c) != fp || !self.key_matches(bucket, slot, key) {
            return None;
        }
        // Seqlock read: the key belongs to this occupant only if the identity did not change.
        fence(Ordering::Acquire);
        let again = self.control(bucket, slot).load(Ordering::Relaxed);
        (again & IDENTITY == c & IDENTITY).then_some(again)
    }

    fn touch(&self, bucket: usize, slot: usize, c: u64, now: u32) {
        if last_seen(c) != now {
            let fresh = (c & !(u64::from(u32::MAX) << TS_SHIFT)) | u64::from(now) << TS_SHIFT;
            // Losing this race to a flag update or another lcore's touch is harmless.
            let _ = self.control(bucket, slot).compare_exchange(c, fresh, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn find(&self, key: &FlowKey, h: &FlowHash, now: u32) -> Option<FlowRef> {
        let second = (h.buckets[1] != h.buckets[0]).then_some(h.buckets[1]);
        for b in std::iter::once(h.buckets[0]).chain(second) {
            for (s, word) in self.buckets[b].control.iter().enumerate() {
                let c = word.load(Ordering::Acquire);
                if fingerprint(c) != h.fp || state(c) == EMPTY {
                    continue;
                }
                if let Some(c) = self.read_entry(b, s, key, h.fp) {
                    self.touch(b, s, c, now);
                    return Some(FlowRef { bucket: b, slot: s, identity: c & IDENTITY, flags: flags(c) });
                }
            }
        }
        None
    }

    /// The entry of `key`, if recorded; refreshes its last-seen time.
    pub fn lookup(&self, key: &FlowKey, now: u32) -> Option<FlowRef> {
        self.lookup_hashed(key, &self.hash(key), now)
    }

    #[inline]
    pub fn lookup_hashed(&self, key: &FlowKey, h: &FlowHash, now: u32) -> Option<FlowRef> {
        self.find(key, h, now)
    }

    pub fn lookup_or_insert(&self, key: &FlowKey, now: u32) -> Entry {
        self.lookup_or_insert_hashed(key, &self.hash(key), now)
    }

    /// Where a new entry goes: the first empty slot of the emptier bucket, else the oldest entry
    /// that is not Secure (evicted). `None` with `busy` when only in-flight claims stand in the way.
    fn victim(&self, h: &FlowHash, now: u32) -> (Option<(usize, usize, u64)>, bool) {
        let mut best_empty: Option<(usize, usize, u64, usize)> = None;
        let mut oldest: Option<(usize, usize, u64)> = None;
        let mut busy = false;
        for b in h.buckets {
            let mut empties = 0;
            let mut first_empty = None;
            for s in 0..SLOTS {
                let c = self.control(b, s).load(Ordering::SeqCst);
                match state(c) {
                    EMPTY => {
                        empties += 1;
                        first_empty.get_or_insert((b, s, c));
                    }
                    READY if !flags(c).secure() => {
                        if oldest.is_none_or(|(_, _, o)| idle(now, last_seen(c)) > idle(now, last_seen(o))) {
                            oldest = Some((b, s, c));
                        }
                    }
                    READY => {}
                    _ => busy = true,
                }
            }
            if let Some((b, s, c)) = first_empty {
                if best_empty.is_none_or(|(.., e)| empties > e) {
                    best_empty = Some((b, s, c, empties));
                }
            }
        }
        (best_empty.map(|(b, s, c, _)| (b, s, c)).or(oldest), busy)
    }

    pub fn lookup_or_insert_hashed(&self, key: &FlowKey, h: &FlowHash, now: u32) -> Entry {
        'retry: loop {
            if let Some(found) = self.find(key, h, now) {
                return Entry::Found(found);
            }
            let (b, s, old) = match self.victim(h, now) {
                (Some(v), _) => v,
                // A claim in flight resolves within a few stores; its flags are not yet known.
                (None, true) => {
                    std::hint::spin_loop();
                    continue;
                }
                (None, false) => {
                    self.counters.full.fetch_add(1, Ordering::Relaxed);
                    return Entry::Full;
                }
            };
            let gen = generation(old) + 1;
            let claim = control(BUSY, FlowFlags::NONE, gen, h.fp, now);
            if self.control(b, s).compare_exchange(old, claim, Ordering::SeqCst, Ordering::Relaxed).is_err() {
                continue;
            }
            if state(old) == READY {
                self.counters.flows.fetch_sub(1, Ordering::Relaxed);
                self.counters.evicted.fetch_add(1, Ordering::Relaxed);
            }
            fence(Ordering::Release);
            self.write_key(b, s, key);
            let release = || self.control(b, s).store(control(EMPTY, FlowFlags::NONE, gen, 0, 0), Ordering::Release);
            // Resolve a racing insert of the same key. A published entry wins; of two claims, the
            // one in the lower slot of the table wins (a global order, so claims of different keys
            // that share a fingerprint never wait for each other in a cycle). Every claim is SeqCst,
            // so of two racing claimers at least one sees the other.
            let mine = (b, s);
            for other in h.candidates().filter(|&o| o != mine) {
                let c = self.control(other.0, other.1).load(Ordering::SeqCst);
                if fingerprint(c) != h.fp {
                    continue;
                }
                if state(c) == BUSY && other < mine {
                    release();
                    self.settled(other.0, other.1, h.fp);
                    continue 'retry;
                }
                // Waits for a higher claim to publish or yield to ours.
                if let Some(c) = self.read_entry(other.0, other.1, key, h.fp) {
                    release();
                    self.touch(other.0, other.1, c, now);
                    return Entry::Found(FlowRef { bucket: other.0, slot: other.1, identity: c & IDENTITY, flags: flags(c) });
                }
            }
            let ready = control(READY, FlowFlags::NONE, gen, h.fp, now);
            self.control(b, s).store(ready, Ordering::Release);
            self.counters.flows.fetch_add(1, Ordering::Relaxed);
            return Entry::Inserted(FlowRef { bucket: b, slot: s, identity: ready & IDENTITY, flags: FlowFlags::NONE });
        }
    }

    /// ORs `add` into the flags of `key`'s entry and returns the entry with the flags it had
    /// before. If `entry` was removed meanwhile (it was not Secure then), the key is entered again.
    pub fn set_flags(&self, key: &FlowKey, mut entry: FlowRef, add: FlowFlags, now: u32) -> Result<(FlowRef, FlowFlags), TableFull> {
        loop {
            let word = self.control(entry.bucket, entry.slot);
            let c = word.load(Ordering::Acquire);
            if c & IDENTITY != entry.identity {
                entry = match self.lookup_or_insert(key, now) {
                    Entry::Found(e) | Entry::Inserted(e) => e,
                    Entry::Full => return Err(TableFull),
                };
                continue;
            }
            let before = flags(c);
            if before.contains(add) {
                return Ok((FlowRef { flags: before, ..entry }, before));
            }
            let after = before | add;
            let new = (c & !(0b111 << FLAGS_SHIFT)) | u64::from(after.bits()) << FLAGS_SHIFT;
            if word.compare_exchange(c, new, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                if after.secure() && !before.secure() {
                    self.counters.secure.fetch_add(1, Ordering::Relaxed);
                }
                return Ok((FlowRef { flags: after, ..entry }, before));
            }
        }
    }

    /// Removes the entries of buckets `range` (wrapping over the table) that are not Secure and
    /// have been idle longer than the timeout; returns how many. Meant to be called by one lcore a
    /// slice at a time.
    pub fn age(&self, now: u32, start: usize, buckets: usize) -> u64 {
        let n = self.buckets.len();
        let mut removed = 0;
        for b in (start..start + buckets.min(n)).map(|b| b % n) {
            for s in 0..SLOTS {
                let word = self.control(b, s);
                let c = word.load(Ordering::Acquire);
                let stale = state(c) == READY && !flags(c).secure() && idle(now, last_seen(c)) > i64::from(self.idle_timeout);
                let empty = control(EMPTY, FlowFlags::NONE, generation(c), 0, 0);
                // The swap fails if a flag was set or a packet was seen since the load.
                if stale && word.compare_exchange(c, empty, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    removed += 1;
                }
            }
        }
        self.counters.flows.fetch_sub(removed, Ordering::Relaxed);
        self.counters.aged.fetch_add(removed, Ordering::Relaxed);
        removed
    }

    /// Buckets in the table (the unit of [`FlowTable::age`]).
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Ticks without a packet after which [`FlowTable::age`] removes an entry that is not Secure.
    pub fn idle_timeout(&self) -> u32 {
        self.idle_timeout
    }
}
