//! How often an ACQUIRE may start a negotiation with the same peer. The dataplane repeats an
//! ACQUIRE every 200 ms while a protect rule has no SA; while a negotiation runs, the daemon
//! waits for it, but once it failed (a peer that refuses our proposals or selectors answers at
//! once) every repeat would start another. After starting one, the daemon lets ACQUIREs for that
//! peer start the next only after [`ACQUIRE_HOLD`], as Linux holds a larval SA after its ACQUIRE.
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The least time between two negotiations an ACQUIRE starts with one peer.
pub const ACQUIRE_HOLD: Duration = Duration::from_secs(2);

/// When each peer's last ACQUIRE-started negotiation began.
#[derive(Debug, Default)]
pub struct AcquireHold {
    started: HashMap<String, Instant>,
}

impl AcquireHold {
    /// Whether an ACQUIRE for `peer` may start a negotiation at `now`; if so, it counts as
    /// started.
    pub fn start(&mut self, peer: &str, now: Instant) -> bool {
        match self.started.get(peer) {
            Some(at) if now.saturating_duration_since(*at) < ACQUIRE_HOLD => false,
            _ => {
                self.started.insert(peer.to_string(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_negotiation_per_peer_per_hold() {
        let t0 = Instant::now();
        let mut hold = AcquireHold::default();
        assert!(hold.start("b", t0));
        // The dataplane's repeats within the hold start nothing; another peer is not held.
        for repeat in 1..10 {
            assert!(!hold.start("b", t0 + Duration::from_millis(200 * repeat)));
        }
        assert!(hold.start("c", t0 + Duration::from_millis(100)));
        assert!(hold.start("b", t0 + ACQUIRE_HOLD));
        assert!(!hold.start("b", t0 + ACQUIRE_HOLD + Duration::from_millis(200)));
    }
}
