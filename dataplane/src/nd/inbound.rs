//! The inbound rules of [MS-IKEE] 3.7.4.2, as a pure function of how the packet arrived, the
//! inbound SPD rule it matched (after decapsulation), the SA that matches it and the flow's flags.

use shared::policy::PolicyFlags;

use super::flags::FlowFlags;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Cleartext,
    /// Decapsulated from ESP (or AH).
    Protected,
}

/// The flow state an inbound decision sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundFlow {
    /// No entry: the packet is the first of a new flow (a TCP SYN, the first UDP or ICMP packet
    /// seen; also a packet of a flow whose entry, never Secure, aged out).
    New,
    Existing(FlowFlags),
    /// The table cannot record the flow; treated as a Secure flow (never cleartext).
    Unrecorded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundVerdict {
    Accept,
    /// "the host MUST silently discard the packet".
    Discard,
}

/// The branch of 3.7.4.2 a packet took (named after the spec's sentences; also a statistic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InboundBranch {
    /// Cleartext, first packet of a new flow: "If the packet matches an inbound negotiation
    /// discovery rule in the SPD, the host MUST accept the packet."
    ClearFirstPacketBoundaryRule,
    /// "Otherwise, the host MUST silently discard the packet."
    ClearFirstPacketNoBoundaryRule,
    /// Cleartext, existing flow: "If the Secure flag is not set on the flow, the host MUST accept
    /// the packet."
    ClearExistingNotSecure,
    /// "Otherwise, the host MUST silently discard the packet."
    ClearExistingSecure,
    /// "If the packet was encapsulated using ESP or authentication header (AH): The host MUST set
    /// the Secure flag on the flow and process the packet as specified in [RFC4301] section 5."
    Protected,
}

impl InboundBranch {
    pub const ALL: [InboundBranch; 5] = [
        InboundBranch::ClearFirstPacketBoundaryRule,
        InboundBranch::ClearFirstPacketNoBoundaryRule,
        InboundBranch::ClearExistingNotSecure,
        InboundBranch::ClearExistingSecure,
        InboundBranch::Protected,
    ];

    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundDecision {
    pub verdict: InboundVerdict,
    /// Flags to OR into the flow; the flow gets an entry if it has none and this is accepted.
    pub set: FlowFlags,
    pub branch: InboundBranch,
}

/// [MS-IKEE] 3.7.4.2. `rule` is the inbound rule the packet matched; an inbound negotiation
/// discovery rule accepts plaintext only with its Boundary flag (3.7.1: "A Boundary policy flag
/// for negotiation discovery inbound rules that MUST be set if plaintext is accepted for this
/// rule"). `sa_guaranteed_encryption`: an SA matches the packet and has Guaranteed Encryption.
pub fn inbound(arrival: Arrival, rule: PolicyFlags, sa_guaranteed_encryption: bool, flow: InboundFlow) -> InboundDecision {
    // "Regardless of whether the packet is in plaintext, if there is an SA that matches the packet,
    // and its Guaranteed Encryption flag is set, the host MUST set the Guaranteed Encryption flag".
    let ge = FlowFlags::when(sa_guaranteed_encryption, FlowFlags::GUARANTEED_ENCRYPTION);
    let decide = |verdict, branch| InboundDecision { verdict, set: ge, branch };
    match (arrival, flow) {
        (Arrival::Protected, _) => InboundDecision { verdict: InboundVerdict::Accept, set: ge | FlowFlags::SECURE, branch: InboundBranch::Protected },
        (Arrival::Cleartext, InboundFlow::New) if rule.nd_inbound && rule.boundary => {
            decide(InboundVerdict::Accept, InboundBranch::ClearFirstPacketBoundaryRule)
        }
        (Arrival::Cleartext, InboundFlow::New) => decide(InboundVerdict::Discard, InboundBranch::ClearFirstPacketNoBoundaryRule),
        (Arrival::Cleartext, InboundFlow::Existing(f)) if !f.secure() => decide(InboundVerdict::Accept, InboundBranch::ClearExistingNotSecure),
        (Arrival::Cleartext, InboundFlow::Existing(_) | InboundFlow::Unrecorded) => {
            decide(InboundVerdict::Discard, InboundBranch::ClearExistingSecure)
        }
    }
}
