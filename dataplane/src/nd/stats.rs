//! Per-lcore negotiation discovery statistics, summed by whoever reports them (the table's own
//! counters — flows, Secure flows, evictions, aging, full — are in [`super::table::TableStats`]).

use super::inbound::InboundBranch;
use super::outbound::OutboundBranch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NdStats {
    /// Outbound packets by [MS-IKEE] 3.7.4.1 branch ([`OutboundBranch::index`]).
    pub outbound: [u64; OutboundBranch::ALL.len()],
    /// Inbound packets by 3.7.4.2 branch ([`InboundBranch::index`]): cleartext accepted and
    /// discarded by rule.
    pub inbound: [u64; InboundBranch::ALL.len()],
    /// ACQUIRE events queued for the control plane.
    pub acquire_sent: u64,
    /// ACQUIREs not sent: the flow's Acquire flag was already set, or one was sent for the flow
    /// in the same tick.
    pub acquire_suppressed: u64,
    /// ACQUIREs lost because the event ring was full (the ring counts them too).
    pub acquire_ring_full: u64,
    /// Packets of flows the table could not record (handled as Secure flows).
    pub unrecorded: u64,
}

impl NdStats {
    pub fn outbound_count(&self, b: OutboundBranch) -> u64 {
        self.outbound[b.index()]
    }

    pub fn inbound_count(&self, b: InboundBranch) -> u64 {
        self.inbound[b.index()]
    }

    fn outbound_sum(&self, branches: &[OutboundBranch]) -> u64 {
        branches.iter().map(|&b| self.outbound_count(b)).sum()
    }

    fn inbound_sum(&self, branches: &[InboundBranch]) -> u64 {
        branches.iter().map(|&b| self.inbound_count(b)).sum()
    }

    /// Outbound packets of negotiation discovery rules sent in cleartext (3.7.4.1).
    pub fn cleartext_sent(&self) -> u64 {
        use OutboundBranch::*;
        self.outbound_sum(&[NoSaNotSecure, GeMismatchNotSecure, BoundaryUdpEspClear])
    }

    /// Outbound packets of Secure flows not sent while IKE negotiates (3.7.4.1).
    pub fn held(&self) -> u64 {
        self.outbound_sum(&[OutboundBranch::NoSaSecure, OutboundBranch::GeMismatchSecure])
    }

    /// Inbound cleartext accepted (3.7.4.2).
    pub fn cleartext_accepted(&self) -> u64 {
        self.inbound_sum(&[InboundBranch::ClearFirstPacketBoundaryRule, InboundBranch::ClearExistingNotSecure])
    }

    /// Inbound cleartext discarded (3.7.4.2).
    pub fn cleartext_dropped(&self) -> u64 {
        self.inbound_sum(&[InboundBranch::ClearFirstPacketNoBoundaryRule, InboundBranch::ClearExistingSecure])
    }

    /// Adds another lcore's counts.
    pub fn add(&mut self, other: &NdStats) {
        self.outbound.iter_mut().zip(other.outbound).for_each(|(a, b)| *a += b);
        self.inbound.iter_mut().zip(other.inbound).for_each(|(a, b)| *a += b);
        self.acquire_sent += other.acquire_sent;
        self.acquire_suppressed += other.acquire_suppressed;
        self.acquire_ring_full += other.acquire_ring_full;
        self.unrecorded += other.unrecorded;
    }
}

/// The cleartext decisions of one SPD rule (counted by the gateway hook, by policy id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuleCounts {
    /// Outbound: sent in cleartext (no SA yet, the flow not Secure).
    pub cleartext_sent: u64,
    /// Outbound: not sent (the flow is Secure and its SA is missing or does not fit).
    pub held: u64,
    /// Inbound cleartext accepted (boundary rule, or a flow that is not Secure).
    pub cleartext_accepted: u64,
    /// Inbound cleartext discarded.
    pub cleartext_dropped: u64,
}

impl RuleCounts {
    pub fn add(&mut self, other: &RuleCounts) {
        self.cleartext_sent += other.cleartext_sent;
        self.held += other.held;
        self.cleartext_accepted += other.cleartext_accepted;
        self.cleartext_dropped += other.cleartext_dropped;
    }
}
