//! Per-SA timers as a table indexed by kind.
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Resend the outstanding request (RFC 7296 2.1).
    Retransmit = 0,
    /// Check that the peer is alive after a quiet period (RFC 7296 2.4).
    Liveness = 1,
    /// Drop a responder SA that never completed IKE_AUTH (RFC 7296 2.6: half-open state is bounded).
    HalfOpen = 2,
    /// Keep the NAT mapping open (RFC 3948 4).
    NatKeepalive = 3,
    /// Rekey the IKE SA before its lifetime ends (RFC 7296 2.8).
    Rekey = 4,
    /// Send again the requests the peer answered with TEMPORARY_FAILURE (RFC 7296 2.25).
    Retry = 5,
}

const TIMERS: usize = 6;
const ALL: [Timer; TIMERS] = [
    Timer::Retransmit,
    Timer::Liveness,
    Timer::HalfOpen,
    Timer::NatKeepalive,
    Timer::Rekey,
    Timer::Retry,
];

#[derive(Debug, Clone, Default)]
pub struct Timers {
    at: [Option<Instant>; TIMERS],
}

impl Timers {
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.at[timer as usize] = Some(at);
    }

    pub fn clear(&mut self, timer: Timer) {
        self.at[timer as usize] = None;
    }

    pub fn next_of(&self, timer: Timer) -> Option<Instant> {
        self.at[timer as usize]
    }

    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// The timers due at `now`, cleared.
    pub fn expired(&mut self, now: Instant) -> Vec<Timer> {
        ALL.into_iter()
            .filter(|t| {
                let due = self.at[*t as usize].is_some_and(|at| at <= now);
                if due {
                    self.at[*t as usize] = None;
                }
                due
            })
            .collect()
    }
}
