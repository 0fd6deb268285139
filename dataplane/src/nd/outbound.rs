//! The outbound rules of [MS-IKEE] 3.7.4.1, as a pure function of the matched SPD rule, the
//! matching QM SA (if any) and the flow's flags.

use shared::event::ExchangeInfoFlags;
use shared::policy::PolicyFlags;
use shared::sa::MsSaFlags;

use super::flags::FlowFlags;

/// What the outbound SA lookup found for the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaMatch {
    /// The SA's [MS-IKEE] 3.7.1 Boundary and Guaranteed Encryption flags.
    pub ms: MsSaFlags,
    /// A UDP-ESP SA ([RFC3947] section 5).
    pub udp_encap: bool,
}

/// The flow state a decision sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowView {
    Recorded(FlowFlags),
    /// The table could not record the flow ([`super::table::Entry::Full`]); it is treated as
    /// Secure so that it is never sent or accepted in cleartext.
    Unrecorded,
}

impl FlowView {
    pub(crate) fn flags(self) -> FlowFlags {
        match self {
            FlowView::Recorded(f) => f,
            FlowView::Unrecorded => FlowFlags::SECURE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundVerdict {
    SendClear,
    Encapsulate,
    /// "MUST NOT send the packet (it MAY queue or silently discard the packet)".
    Hold,
    /// Not a negotiation discovery rule: [RFC4301] section 5 processing applies.
    Rfc4301,
}

/// Whether to trigger IKE (an ACQUIRE event), and with which EXCHANGE_INFO flags for message #5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    None,
    /// Only if this packet is the one that sets the flow's Acquire flag.
    IfAcquireFlagClear(ExchangeInfoFlags),
    /// On every packet (the caller rate-limits).
    Always(ExchangeInfoFlags),
}

/// The branch of 3.7.4.1 a packet took (named after the spec's sentences; also a statistic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboundBranch {
    /// "If the packet does not match a negotiation discovery rule, packet processing MUST be
    /// performed as specified in [RFC4301] section 5."
    NotNegotiationDiscovery,
    /// No QM SA matches, "If the Secure flag is not set ... MUST send the packet and MUST trigger
    /// IKE ... if the Acquire flag is not set".
    NoSaNotSecure,
    /// No QM SA matches, "If the Secure flag is set ... MUST NOT send the packet ... and MUST
    /// trigger IKE".
    NoSaSecure,
    /// "If the matching QM SA and the corresponding flow do not have the same value for the
    /// Guaranteed Encryption flag, the host MUST trigger IKE ... as ... where there is no matching
    /// QM SA", for a flow that is not Secure: sent in cleartext.
    GeMismatchNotSecure,
    /// The same, for a Secure flow: not sent.
    GeMismatchSecure,
    /// "If the matching QM SA is a UDP-ESP SA with the Boundary flag set, the host MUST send the
    /// packet in Cleartext."
    BoundaryUdpEspClear,
    /// The same SA for a flow that is already Secure: 1.3.5 ("a once-secured flow can never
    /// downgrade back to Cleartext") wins, and the packet is encapsulated by the matching SA.
    BoundaryUdpEspSecureFlow,
    /// "Otherwise, the IPsec implementation MUST send the packet encapsulated by using the
    /// matching QM SA, and it MUST set the Secure flag for this flow."
    Encapsulate,
}

impl OutboundBranch {
    pub const ALL: [OutboundBranch; 8] = [
        OutboundBranch::NotNegotiationDiscovery,
        OutboundBranch::NoSaNotSecure,
        OutboundBranch::NoSaSecure,
        OutboundBranch::GeMismatchNotSecure,
        OutboundBranch::GeMismatchSecure,
        OutboundBranch::BoundaryUdpEspClear,
        OutboundBranch::BoundaryUdpEspSecureFlow,
        OutboundBranch::Encapsulate,
    ];

    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundDecision {
    pub verdict: OutboundVerdict,
    /// Flags to OR into the flow.
    pub set: FlowFlags,
    pub acquire: Acquire,
    pub branch: OutboundBranch,
}

/// [MS-IKEE] 3.7.4.1 for a packet that matched an outbound rule with `rule` flags (`nd_outbound`
/// marks a negotiation discovery rule; such rules are protect rules, `PolicyError::FlagsWithoutProtect`).
pub fn outbound(rule: PolicyFlags, sa: Option<SaMatch>, flow: FlowView) -> OutboundDecision {
    if !rule.nd_outbound {
        return OutboundDecision {
            verdict: OutboundVerdict::Rfc4301,
            set: FlowFlags::NONE,
            acquire: Acquire::None,
            branch: OutboundBranch::NotNegotiationDiscovery,
        };
    }
    // "If the packet matches a Guaranteed Encryption rule ... MUST set the Guaranteed Encryption
    // flag on the corresponding flow ... regardless of whether a matching QM SA is found": set
    // before the comparison with the SA, so a GE rule's first packet can use a GE SA.
    let ge_rule = FlowFlags::when(rule.guaranteed_encryption, FlowFlags::GUARANTEED_ENCRYPTION);
    let flow_flags = flow.flags() | ge_rule;
    // Message #5's EXCHANGE_INFO: ND_BOUNDARY from the rule, GUARANTEE_ENCRYPTION from the flow.
    let info = ExchangeInfoFlags { nd_boundary: rule.boundary, guarantee_encryption: flow_flags.guaranteed_encryption() };
    let negotiate = |not_secure: OutboundBranch, secure: OutboundBranch| {
        if flow_flags.secure() {
            OutboundDecision { verdict: OutboundVerdict::Hold, set: ge_rule, acquire: Acquire::Always(info), branch: secure }
        } else {
            OutboundDecision {
                verdict: OutboundVerdict::SendClear,
                // "The host MUST then set the Acquire flag on the corresponding flow."
                set: ge_rule | FlowFlags::ACQUIRE,
                acquire: Acquire::IfAcquireFlagClear(info),
                branch: not_secure,
            }
        }
    };
    let Some(sa) = sa else {
        return negotiate(OutboundBranch::NoSaNotSecure, OutboundBranch::NoSaSecure);
    };
    if sa.ms.guaranteed_encryption != flow_flags.guaranteed_encryption() {
        return negotiate(OutboundBranch::GeMismatchNotSecure, OutboundBranch::GeMismatchSecure);
    }
    let encapsulate = |branch| OutboundDecision {
        verdict: OutboundVerdict::Encapsulate,
        set: ge_rule | FlowFlags::SECURE,
        acquire: Acquire::None,
        branch,
    };
    match (sa.udp_encap && sa.ms.boundary, flow_flags.secure()) {
        (true, false) => OutboundDecision {
            verdict: OutboundVerdict::SendClear,
            set: ge_rule,
            acquire: Acquire::None,
            branch: OutboundBranch::BoundaryUdpEspClear,
        },
        (true, true) => encapsulate(OutboundBranch::BoundaryUdpEspSecureFlow),
        (false, _) => encapsulate(OutboundBranch::Encapsulate),
    }
}
