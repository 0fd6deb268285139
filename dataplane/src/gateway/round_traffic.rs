//! Packets and bytes per SA over one or more rounds of bursts, added to the SA's shared counters
//! now and then rather than per packet: the counters of an SA that several lcores use share one
//! cache line. Indexed by SAD slot (dense small numbers), so counting a packet is O(1) however many SAs
//! a round touches.

use shared::sad::SaHandle;

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    generation: u64,
    packets: u64,
    bytes: u64,
}

/// One lcore's traffic of the current round.
#[derive(Debug, Default)]
pub struct RoundTraffic {
    by_slot: Vec<Entry>,
    /// Slots with traffic this round, in first-use order.
    touched: Vec<u32>,
}

impl RoundTraffic {
    /// Counts one packet of `bytes` for the SA behind `h`. If the slot already counted traffic of
    /// an earlier generation this round (the SA was replaced), that traffic is handed to `flush`
    /// first, so no packet is counted for the wrong SA.
    #[inline]
    pub fn count(&mut self, h: SaHandle, bytes: u64, flush: impl FnOnce(SaHandle, u64, u64)) {
        let i = h.slot as usize;
        if i >= self.by_slot.len() {
            self.by_slot.resize(i + 1, Entry::default());
        }
        let e = &mut self.by_slot[i];
        if e.packets > 0 && e.generation != h.generation {
            flush(SaHandle { slot: h.slot, generation: e.generation }, e.packets, e.bytes);
            *e = Entry::default();
        }
        if e.packets == 0 {
            self.touched.push(h.slot);
            e.generation = h.generation;
        }
        e.packets += 1;
        e.bytes += bytes;
    }

    /// Hands every SA's traffic of the round to `flush` and starts a new round.
    pub fn drain(&mut self, mut flush: impl FnMut(SaHandle, u64, u64)) {
        for slot in self.touched.drain(..) {
            let e = std::mem::take(&mut self.by_slot[slot as usize]);
            if e.packets > 0 {
                flush(SaHandle { slot, generation: e.generation }, e.packets, e.bytes);
            }
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
        t.count(a, 100, |h, p, n| flushed.push((h, p, n)));
        t.count(b, 10, |h, p, n| flushed.push((h, p, n)));
        t.count(a, 50, |h, p, n| flushed.push((h, p, n)));
        assert!(flushed.is_empty());
        let a2 = SaHandle { slot: 3, generation: 2 };
        t.count(a2, 1, |h, p, n| flushed.push((h, p, n)));
        assert_eq!(flushed, vec![(a, 2, 150)]);
        t.drain(|h, p, n| flushed.push((h, p, n)));
        assert_eq!(flushed, vec![(a, 2, 150), (a2, 1, 1), (b, 1, 10)]);
        flushed.clear();
        t.drain(|h, p, n| flushed.push((h, p, n)));
        assert!(flushed.is_empty(), "a drained round starts empty");
    }
}
