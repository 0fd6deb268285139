//! What one lcore did with each SA over one or more rounds of bursts, added to the SA's shared
//! state in the region now and then rather than per packet, because lcores that use one SA would
//! otherwise take its cache lines from each other on every packet: packets and bytes (within
//! `SA_FLUSH_NS`) and, for an inbound SA, the highest sequence number accepted (`replay_top`),
//! which must be in the region before any frame that carried it leaves: a restarted dataplane
//! starts the SA's anti-replay window there. The first inbound packet of an SA between two TX
//! flushes records its number at once ([`RoundTraffic::count`] says so); later ones wait for
//! the flush ([`RoundTraffic::take_replay_tops`]). So an SA with one packet a burst, as many SAs
//! have, is recorded as before, and one with a burst of packets once or twice a burst.
//! Indexed by SAD slot (dense small numbers), so counting a packet is O(1) however many SAs a
//! round touches.

use shared::sad::SaHandle;

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    generation: u64,
    packets: u64,
    bytes: u64,
    /// One more than the flush period of the SA's last inbound packet (0: none yet).
    next_period: u64,
    /// The highest inbound sequence number of this period not yet recorded (0: none).
    unrecorded: u64,
}

/// One lcore's traffic of the current round.
#[derive(Debug, Default)]
pub struct RoundTraffic {
    by_slot: Vec<Entry>,
    /// Slots with traffic this round, in first-use order.
    touched: Vec<u32>,
    /// Slots with an unrecorded sequence number.
    unrecorded: Vec<u32>,
    /// Counts TX flushes ([`RoundTraffic::take_replay_tops`]).
    period: u64,
}

impl RoundTraffic {
    /// Counts one packet of `bytes` for the SA behind `h`. If the slot already counted traffic of
    /// an earlier generation this round (the SA was replaced), that traffic is handed to `flush`
    /// first, so no packet is counted for the wrong SA. For an inbound packet (`seq`), returns
    /// whether the caller must record `seq` in the region now (the SA's first since the last
    /// [`take_replay_tops`](Self::take_replay_tops)); if not, that call hands it over.
    #[inline(always)]
    pub fn count(&mut self, h: SaHandle, bytes: u64, seq: Option<u64>, flush: impl FnOnce(SaHandle, u64, u64)) -> bool {
        let i = h.slot as usize;
        if i >= self.by_slot.len() {
            self.by_slot.resize(i + 1, Entry::default());
        }
        let e = &mut self.by_slot[i];
        if e.generation != h.generation {
            if e.packets > 0 {
                flush(SaHandle { slot: h.slot, generation: e.generation }, e.packets, e.bytes);
            }
            // The previous generation's unrecorded number goes with it: the slot may hold a new
            // SA, whose window must not start above it. (An updated SA's window goes on in this
            // process, `SaCache::inbound`; only a restart within this flush period could then
            // take that one number as new again.)
            *e = Entry { generation: h.generation, ..Entry::default() };
        }
        if e.packets == 0 {
            self.touched.push(h.slot);
            e.generation = h.generation;
        }
        e.packets += 1;
        e.bytes += bytes;
        let Some(seq) = seq else { return false };
        if e.next_period != self.period + 1 {
            e.next_period = self.period + 1;
            return true;
        }
        if e.unrecorded == 0 {
            self.unrecorded.push(h.slot);
        }
        e.unrecorded = e.unrecorded.max(seq);
        false
    }

    /// Hands every SA's highest inbound sequence number not yet recorded to `record`, and starts
    /// a new flush period. Call before every TX flush.
    pub fn take_replay_tops(&mut self, mut record: impl FnMut(SaHandle, u64)) {
        self.period += 1;
        for slot in self.unrecorded.drain(..) {
            let e = &mut self.by_slot[slot as usize];
            if e.unrecorded > 0 {
                record(SaHandle { slot, generation: e.generation }, std::mem::take(&mut e.unrecorded));
            }
        }
    }

    /// Hands every SA's traffic of the round to `flush` and starts a new round. Call after
    /// [`take_replay_tops`](Self::take_replay_tops), which it does not replace.
    pub fn drain(&mut self, mut flush: impl FnMut(SaHandle, u64, u64)) {
        for slot in self.touched.drain(..) {
            let e = &mut self.by_slot[slot as usize];
            if e.packets > 0 {
                flush(SaHandle { slot, generation: e.generation }, e.packets, e.bytes);
            }
            (e.packets, e.bytes) = (0, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_is_summed_per_sa_and_a_replaced_sa_is_flushed_apart() {
        let (a, b) = (SaHandle { slot: 3, generation: 1 }, SaHandle { slot: 40, generation: 7 });
        let mut t = RoundTraffic::default();
        let mut flushed = Vec::new();
        t.count(a, 100, None, |h, p, n| flushed.push((h, p, n)));
        t.count(b, 10, None, |h, p, n| flushed.push((h, p, n)));
        t.count(a, 50, None, |h, p, n| flushed.push((h, p, n)));
        assert!(flushed.is_empty());
        let a2 = SaHandle { slot: 3, generation: 2 };
        t.count(a2, 1, None, |h, p, n| flushed.push((h, p, n)));
        assert_eq!(flushed, vec![(a, 2, 150)]);
        t.drain(|h, p, n| flushed.push((h, p, n)));
        assert_eq!(flushed, vec![(a, 2, 150), (a2, 1, 1), (b, 1, 10)]);
        flushed.clear();
        t.drain(|h, p, n| flushed.push((h, p, n)));
        assert!(flushed.is_empty(), "a drained round starts empty");
    }

    /// Of an SA's inbound packets between two flushes the first is recorded at once, the highest
    /// of the others at the flush; none is lost, across rounds and a replaced SA.
    #[test]
    fn every_inbound_number_is_recorded_by_the_next_flush() {
        let (a, b) = (SaHandle { slot: 3, generation: 1 }, SaHandle { slot: 40, generation: 7 });
        let mut t = RoundTraffic::default();
        let no_flush = |_, _, _| {};
        assert!(t.count(a, 1, Some(10), no_flush), "the first packet records at once");
        assert!(!t.count(a, 1, Some(12), no_flush));
        assert!(!t.count(a, 1, Some(11), no_flush));
        assert!(t.count(b, 1, Some(5), no_flush));
        assert!(!t.count(b, 1, None, no_flush), "an outbound packet records nothing");
        let mut recorded = Vec::new();
        t.take_replay_tops(|h, seq| recorded.push((h, seq)));
        assert_eq!(recorded, vec![(a, 12)]);
        t.take_replay_tops(|h, seq| recorded.push((h, seq)));
        assert_eq!(recorded.len(), 1, "handed over once");

        t.drain(|_, _, _| {});
        assert!(t.count(a, 1, Some(13), no_flush), "a new period records at once again");
        assert!(!t.count(a, 1, Some(14), no_flush));
        // The SA is replaced in its slot: the old one's unrecorded 14 is not recorded for the
        // new one, whose first packet records at once.
        let a2 = SaHandle { slot: 3, generation: 2 };
        assert!(t.count(a2, 1, Some(2), no_flush));
        assert!(!t.count(a2, 1, Some(3), no_flush));
        t.take_replay_tops(|h, seq| recorded.push((h, seq)));
        assert_eq!(recorded, vec![(a, 12), (a2, 3)]);
    }
}
