//! The inbound anti-replay window (RFC 4303 section 3.4.3), lock-free so that several lcores can
//! process one inbound SA at once.
//!
//! The bitmap follows RFC 6479: sequence numbers map to bits of a ring of words, and the words are
//! reused as the window slides, so sliding never shifts the bitmap. Each 64-bit slot holds a 32-bit
//! bitmap of one block of 32 sequence numbers and, in its high half, the number of that block. A
//! slot whose tag names an older block is stale and counts as empty, so the window slides with one
//! compare-and-swap per packet and no separate clearing step that could race with other cores.
//!
//! A packet is first [`check`](ReplayWindow::check)ed (before decryption) and then
//! [`commit`](ReplayWindow::commit)ted once its ICV has verified; the commit repeats the check
//! atomically, so of two copies of one packet processed at once on two cores only one commits.
//!
//! Lcores receiving one SA share this state, so it is laid out for them not to take cache lines
//! from each other on every packet: every slot sits on a cache line of its own, and the top is
//! written only by a packet that opens a newer block, so it may lag the highest committed number
//! by up to 31. That lag only sends more packets to the slot test, which decides
//! duplicates exactly (a slot's tag never moves back), and lets up to 31 numbers older than the
//! window through it (RFC 4303 3.4.3 leaves the window's size to the receiver, from 32 up); the
//! ESN inference (appendix A2) works from the top it sees, which is still inside the window.
//! With the SA's `replay_top` recorded once per burst (`gateway::round_traffic`), two threads
//! decrypting one SA from alternating bursts went from 6.7-7.0 to 22.2-22.8 Mpps, against
//! 24-29 for two SAs that share nothing (`cargo run --release -p bench --bin replay`,
//! BENCHMARKS.md, "Ninth session").

use std::sync::atomic::{AtomicU64, Ordering};

use shared::sa::MAX_REPLAY_WINDOW;

const BLOCK_BITS: u64 = 32;

/// The packet is a duplicate or older than the window (RFC 4303 3.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed;

#[derive(Debug)]
pub struct ReplayWindow {
    /// Window size in packets; 0 disables the duplicate check (the highest number is still tracked
    /// for ESN inference).
    size: u64,
    /// The highest number committed, as of the first one in its block (64-bit, as in RFC 4303
    /// appendix A): raised only by a number in a newer block, so at most 31 below the highest
    /// committed (and 0 while all are below 32). Written once per block, it may share its cache
    /// line with the fields every packet reads.
    top: AtomicU64,
    slot_mask: usize,
    slots: Box<[OwnLine]>,
}

impl ReplayWindow {
    /// A window of `size` packets (0 = anti-replay disabled), at most [`MAX_REPLAY_WINDOW`].
    pub fn new(size: u32) -> ReplayWindow {
        let size = u64::from(size.min(MAX_REPLAY_WINDOW));
        // A slot is reused one ring later; that must put every number it held out of the window.
        let slots = (size.div_ceil(BLOCK_BITS) as usize + 1).next_power_of_two();
        ReplayWindow {
            size,
            top: AtomicU64::new(0),
            slot_mask: slots - 1,
            slots: (0..slots).map(|_| OwnLine(AtomicU64::new(0))).collect(),
        }
    }

    /// Continues the window of an SA that an earlier process received on, of which only the
    /// highest accepted number survives (`shared::counters::SaRuntime::replay_top`): every number
    /// up to `top` counts as already received. Delayed packets still in flight at the restart are
    /// dropped as replays, which is the safe side. Call before the window is in use.
    pub fn resume_above(&self, top: u64) {
        if top <= self.top() {
            return;
        }
        let top_block = top / BLOCK_BITS;
        for back in 0..=self.slot_mask as u64 {
            let Some(block) = top_block.checked_sub(back) else { break };
            let seen = if back == 0 { u64::MAX >> (63 - top % BLOCK_BITS) } else { 0xffff_ffff };
            let first = block * BLOCK_BITS;
            self.slots[self.slot_index(first)].0.store(((first / BLOCK_BITS) & 0xffff_ffff) << 32 | seen, Ordering::Release);
        }
        self.top.store(top, Ordering::Release);
    }

    /// Continues the window of the SA's previous generation (the SA was updated): the same
    /// numbers count as received. Call before the window is in use. Returns false, changing
    /// nothing, if the two windows differ in size.
    pub fn continue_from(&self, previous: &ReplayWindow) -> bool {
        if previous.size != self.size {
            return false;
        }
        for (slot, old) in self.slots.iter().zip(previous.slots.iter()) {
            slot.0.store(old.0.load(Ordering::Acquire), Ordering::Release);
        }
        self.top.store(previous.top(), Ordering::Release);
        true
    }

    /// The highest sequence number committed so far, or up to 31 below it (see the module).
    pub fn top(&self) -> u64 {
        self.top.load(Ordering::Acquire)
    }

    /// The full 64-bit sequence number of a packet carrying the low 32 bits `seq_lo`, as RFC 4303
    /// appendix A2.2 infers it from the window: within the window, or just above it in the next
    /// 2^32 subspace. `None` if the number would lie before the first subspace (no valid packet).
    pub fn infer_esn(&self, seq_lo: u32) -> Option<u64> {
        let top = self.top();
        // With the check disabled the window is still needed to place packets: RFC 4303 A2 uses
        // the receiver's window, so assume the largest one.
        let w = if self.size == 0 { u64::from(MAX_REPLAY_WINDOW) } else { self.size };
        let (th, tl) = (top >> 32, top as u32);
        let bottom = tl.wrapping_sub(w as u32 - 1);
        let hi = if u64::from(tl) >= w - 1 {
            // Case A: the window lies within one subspace.
            if seq_lo >= bottom {
                th
            } else {
                th + 1
            }
        } else if seq_lo >= bottom {
            // Case B: the window spans two subspaces and the packet is in the lower one.
            th.checked_sub(1)?
        } else {
            th
        };
        Some(hi << 32 | u64::from(seq_lo))
    }

    /// Whether `seq` may be new: not older than the window and not already committed.
    pub fn check(&self, seq: u64) -> Result<(), Replayed> {
        if seq == 0 {
            // RFC 4303 3.3.3: the first packet sent has number 1; 0 is never valid.
            return Err(Replayed);
        }
        if self.size == 0 {
            return Ok(());
        }
        let top = self.top();
        if seq > top {
            return Ok(());
        }
        if top - seq >= self.size {
            return Err(Replayed);
        }
        let slot = self.slots[self.slot_index(seq)].0.load(Ordering::Acquire);
        match Self::slot_state(slot, seq) {
            SlotState::Older => Ok(()),
            SlotState::Same if slot & Self::bit(seq) == 0 => Ok(()),
            _ => Err(Replayed),
        }
    }

    /// Records `seq` after its ICV verified, and slides the window if it is the new highest.
    /// Fails if another core committed the same number first, or the window moved past it.
    pub fn commit(&self, seq: u64) -> Result<(), Replayed> {
        self.check(seq)?;
        if self.size != 0 {
            let slot = &self.slots[self.slot_index(seq)].0;
            let mut current = slot.load(Ordering::Acquire);
            loop {
                let next = match Self::slot_state(current, seq) {
                    SlotState::Older => Self::block_tag(seq) << 32 | Self::bit(seq),
                    SlotState::Same if current & Self::bit(seq) == 0 => current | Self::bit(seq),
                    _ => return Err(Replayed),
                };
                match slot.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => break,
                    Err(actual) => current = actual,
                }
            }
        }
        // Only a number in a newer block writes the shared top: a locked read-modify-write, even
        // one that changes nothing, takes the line from the other lcores receiving on the SA.
        if seq / BLOCK_BITS > self.top.load(Ordering::Acquire) / BLOCK_BITS {
            self.top.fetch_max(seq, Ordering::AcqRel);
        }
        Ok(())
    }

    fn slot_index(&self, seq: u64) -> usize {
        (seq / BLOCK_BITS) as usize & self.slot_mask
    }

    fn bit(seq: u64) -> u64 {
        1 << (seq % BLOCK_BITS)
    }

    /// The low 32 bits of the block number of `seq`: the tag stored in the slot's high half.
    fn block_tag(seq: u64) -> u64 {
        (seq / BLOCK_BITS) & 0xffff_ffff
    }

    /// How the block in `slot` relates to the block of `seq`. Tags compare in serial-number
    /// arithmetic (RFC 1982): live blocks are at most a few windows apart.
    fn slot_state(slot: u64, seq: u64) -> SlotState {
        let diff = ((slot >> 32) as u32).wrapping_sub(Self::block_tag(seq) as u32) as i32;
        match diff {
            0 => SlotState::Same,
            d if d < 0 => SlotState::Older,
            _ => SlotState::Newer,
        }
    }
}

/// An atomic on a cache line of its own.
#[derive(Debug)]
#[repr(align(64))]
struct OwnLine(AtomicU64);

#[derive(Debug, PartialEq, Eq)]
enum SlotState {
    /// The slot holds an older block: stale, counts as empty.
    Older,
    Same,
    /// The slot was already reused for a newer block: `seq` has left the window.
    Newer,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// The reference model, without a bitmap: the set of accepted numbers, the top as the module
    /// defines it (the first number accepted in the newest block), and the RFC 4303 rule.
    #[derive(Default)]
    struct Model {
        seen: BTreeSet<u64>,
        top: u64,
    }

    impl Model {
        fn accepts(&self, size: u64, seq: u64) -> bool {
            seq != 0 && !self.seen.contains(&seq) && (seq > self.top || self.top - seq < size)
        }

        fn accept(&mut self, seq: u64) {
            self.seen.insert(seq);
            if seq / BLOCK_BITS > self.top / BLOCK_BITS {
                self.top = seq;
            }
        }
    }

    fn run_against_model(size: u32, arrivals: &[u64]) {
        let w = ReplayWindow::new(size);
        let mut model = Model::default();
        for &seq in arrivals {
            let expected = model.accepts(u64::from(size), seq);
            let accepted = w.check(seq).is_ok() && w.commit(seq).is_ok();
            assert_eq!(accepted, expected, "seq {seq} window {size} top {}", w.top());
            if accepted {
                model.accept(seq);
            }
            assert_eq!(w.top(), model.top);
            let highest = model.seen.last().copied().unwrap_or(0);
            assert!(highest - w.top() < BLOCK_BITS, "the top lags {highest} by at most 31: {}", w.top());
        }
    }

    #[test]
    fn window_edges() {
        let w = ReplayWindow::new(64);
        assert!(w.commit(100).is_ok());
        assert!(w.check(37).is_ok(), "100 - 37 = 63 is the oldest number inside the window");
        assert_eq!(w.check(36), Err(Replayed));
        assert_eq!(w.check(100), Err(Replayed));
        assert!(w.commit(37).is_ok());
        assert_eq!(w.commit(37), Err(Replayed));
        assert_eq!(w.check(0), Err(Replayed));
    }

    #[test]
    fn a_resumed_window_rejects_everything_up_to_the_saved_top() {
        for (size, top) in [(64, 1_000), (4096, 77_777), (64, 5), (1024, (3 << 32) + 31), (128, 64)] {
            let w = ReplayWindow::new(size);
            w.resume_above(top);
            assert_eq!(w.top(), top);
            let oldest = top.saturating_sub(u64::from(size) + 40).max(1);
            for seq in oldest..=top {
                assert_eq!(w.check(seq), Err(Replayed), "window {size}: {seq} <= saved top {top}");
            }
            for seq in top + 1..top + 70 {
                assert!(w.commit(seq).is_ok(), "window {size}: {seq} above the saved top {top} is new");
            }
            assert_eq!(w.commit(top + 1), Err(Replayed));
        }
    }

    #[test]
    fn a_continued_window_has_the_same_numbers_received() {
        let old = ReplayWindow::new(64);
        for seq in [3, 40, 41, 45] {
            old.commit(seq).unwrap();
        }
        let new = ReplayWindow::new(64);
        assert!(new.continue_from(&old));
        for seq in 1..=100 {
            assert_eq!(new.check(seq), old.check(seq), "{seq}");
        }
        assert!(new.check(46).is_ok() && new.check(42).is_ok(), "numbers not received stay open");
        assert!(!ReplayWindow::new(128).continue_from(&old), "another size");
    }

    #[test]
    fn check_then_commit_lets_only_one_copy_through() {
        let w = ReplayWindow::new(128);
        assert!(w.check(5).is_ok() && w.check(5).is_ok());
        assert!(w.commit(5).is_ok());
        assert_eq!(w.commit(5), Err(Replayed));
    }

    #[test]
    fn a_big_jump_invalidates_reused_slots() {
        let w = ReplayWindow::new(64);
        for s in 1..=64 {
            w.commit(s).unwrap();
        }
        // Block 5 reuses the slot of block 1; numbers 32..63 are then out of the window.
        w.commit(5 * 32 + 3).unwrap();
        assert_eq!(w.check(40), Err(Replayed));
        assert!(w.check(5 * 32 + 2).is_ok());
        assert!(w.check(5 * 32 - 20).is_ok());
    }

    #[test]
    fn concurrent_duplicates_commit_once() {
        let w = std::sync::Arc::new(ReplayWindow::new(4096));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let w = w.clone();
                std::thread::spawn(move || (1..=20_000u64).filter(|&s| w.commit(s).is_ok()).collect::<Vec<_>>())
            })
            .collect();
        let mut accepted: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let total = accepted.len();
        accepted.sort_unstable();
        accepted.dedup();
        // No number is accepted twice; every number is accepted once unless the other core slid
        // the window past it first (rare with a 4096 window), and the top reaches the last block.
        assert_eq!(accepted.len(), total);
        assert!(total > 19_000, "{total}");
        assert_eq!(w.top() / BLOCK_BITS, 20_000 / BLOCK_BITS);
    }

    #[test]
    fn esn_inference_follows_rfc4303_appendix_a() {
        let w = ReplayWindow::new(64);
        assert_eq!(w.infer_esn(5), Some(5));
        w.commit(0xffff_fff0).unwrap();
        // Still in the window below top, and past the 2^32 wrap.
        assert_eq!(w.infer_esn(0xffff_ffe0), Some(0xffff_ffe0));
        assert_eq!(w.infer_esn(3), Some(0x1_0000_0003));
        w.commit(0x1_0000_0003).unwrap();
        // Case B: the window spans the wrap; a late packet from before it keeps the old high bits.
        assert_eq!(w.infer_esn(0xffff_fff5), Some(0xffff_fff5));
        assert!(w.check(0xffff_fff5).is_ok());
        assert_eq!(w.check(0xffff_fff0), Err(Replayed));
        assert_eq!(w.infer_esn(10), Some(0x1_0000_000a));
        // A fresh window spans the start: the numbers just below 2^32 would lie before the first
        // subspace (RFC 4303 A2.2 case B with Th = 0), and there is no valid packet there.
        let fresh = ReplayWindow::new(64);
        assert_eq!(fresh.infer_esn(0xffff_ffff), None);
        assert_eq!(fresh.infer_esn(0xffff_0000), Some(0xffff_0000));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random arrival orders with duplicates and reordering near the top of the window.
        #[test]
        fn matches_the_model_on_random_arrivals(
            size in prop::sample::select(vec![32u32, 64, 100, 1024, 4096]),
            arrivals in prop::collection::vec(1u64..6000, 1..400),
        ) {
            run_against_model(size, &arrivals);
        }

        /// A mostly increasing stream with jitter, duplicates and jumps, as a lossy path produces.
        #[test]
        fn matches_the_model_on_jittered_streams(
            size in prop::sample::select(vec![64u32, 4096]),
            steps in prop::collection::vec(-80i64..200, 1..600),
        ) {
            let mut seq = 1i64;
            let arrivals: Vec<u64> = steps.iter().map(|d| { seq = (seq + d).max(1); seq as u64 }).collect();
            run_against_model(size, &arrivals);
        }

        /// Across the 2^32 boundary with ESN: low halves only on the wire, the window infers the
        /// high half, and the result matches the model on the full numbers.
        #[test]
        fn esn_wrap_matches_the_model(
            size in prop::sample::select(vec![64u32, 4096]),
            steps in prop::collection::vec(-60i64..120, 1..400),
        ) {
            let w = ReplayWindow::new(size);
            let mut model = Model::default();
            let mut seq = (1u64 << 32) - 3000;
            w.commit(seq).unwrap();
            model.accept(seq);
            for d in steps {
                seq = seq.saturating_add_signed(d);
                let inferred = w.infer_esn(seq as u32);
                if seq + u64::from(size) > model.top {
                    // Inside or above the window, the inference must be exact.
                    prop_assert_eq!(inferred, Some(seq));
                }
                let expected = model.accepts(u64::from(size), seq);
                let accepted = inferred == Some(seq) && w.check(seq).is_ok() && w.commit(seq).is_ok();
                prop_assert_eq!(accepted, expected);
                if accepted {
                    model.accept(seq);
                }
            }
        }
    }
}
