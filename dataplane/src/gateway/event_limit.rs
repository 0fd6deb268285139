//! How often one lcore reports packets for unknown SPIs to the control plane (which may answer
//! with INVALID_SPI, RFC 7296 2.21.4): once per SPI per interval, and at most a budget of events
//! per interval in all, so that a flood of random SPIs can neither fill the shared event ring
//! (crowding out ACQUIRE and expiry events) nor cost more than a counter per packet.

/// SPIs remembered (direct-mapped by their low bits).
const REMEMBERED: usize = 64;
/// Events per lcore per interval, whatever the SPIs.
const BUDGET: u32 = 16;

#[derive(Debug)]
pub struct UnknownSpiLimit {
    interval_ns: u64,
    recent: [(u32, u64); REMEMBERED],
    window_start: u64,
    spent: u32,
}

impl UnknownSpiLimit {
    pub fn new(interval_ns: u64) -> UnknownSpiLimit {
        UnknownSpiLimit { interval_ns, recent: [(0, 0); REMEMBERED], window_start: 0, spent: 0 }
    }

    /// Whether a packet for unknown `spi` seen at `now_ns` should be reported.
    pub fn allow(&mut self, spi: u32, now_ns: u64) -> bool {
        if now_ns.saturating_sub(self.window_start) >= self.interval_ns {
            self.window_start = now_ns;
            self.spent = 0;
        }
        let slot = &mut self.recent[spi as usize % REMEMBERED];
        let seen_lately = slot.0 == spi && slot.1 != 0 && now_ns.saturating_sub(slot.1) < self.interval_ns;
        if seen_lately || self.spent >= BUDGET {
            return false;
        }
        *slot = (spi, now_ns.max(1));
        self.spent += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_report_per_spi_per_interval_and_a_budget_in_all() {
        let mut l = UnknownSpiLimit::new(1_000);
        assert!(l.allow(7, 10));
        assert!(!l.allow(7, 500), "the same SPI again within the interval");
        assert!(l.allow(7, 1_200), "again after the interval");
        // A flood of distinct SPIs: only the budget gets through in one interval.
        let reported = (100..1_100).filter(|&spi| l.allow(spi, 1_300)).count();
        assert_eq!(reported, BUDGET as usize - 1);
        assert!(l.allow(5_000, 2_300), "a new interval has a new budget");
    }
}
