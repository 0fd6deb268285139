//! [MS-IKEE] 3.7.4.1 and 3.7.4.2, one case per branch (named after the spec's sentence), on the
//! pure decision functions and then through the engine (flow table, flags, ACQUIRE events).

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};

use dataplane::nd::inbound::inbound;
use dataplane::nd::outbound::outbound;
use dataplane::nd::*;
use shared::event::{Event, ExchangeInfoFlags};
use shared::policy::PolicyFlags;
use shared::sa::MsSaFlags;

const NONE: FlowFlags = FlowFlags::NONE;
const SECURE: FlowFlags = FlowFlags::SECURE;
const GE: FlowFlags = FlowFlags::GUARANTEED_ENCRYPTION;
const ACQ: FlowFlags = FlowFlags::ACQUIRE;

fn rule(nd_outbound: bool, boundary: bool, ge: bool) -> PolicyFlags {
    PolicyFlags { nd_inbound: false, nd_outbound, boundary, guaranteed_encryption: ge, negotiated: false }
}

fn sa(boundary: bool, ge: bool, udp_encap: bool) -> Option<SaMatch> {
    Some(SaMatch { ms: MsSaFlags { boundary, guaranteed_encryption: ge }, udp_encap })
}

fn info(nd_boundary: bool, guarantee_encryption: bool) -> ExchangeInfoFlags {
    ExchangeInfoFlags { nd_boundary, guarantee_encryption }
}

struct OutCase {
    sentence: &'static str,
    rule: PolicyFlags,
    sa: Option<SaMatch>,
    flow: FlowView,
    verdict: OutboundVerdict,
    set: FlowFlags,
    acquire: Acquire,
    branch: OutboundBranch,
}

#[test]
fn outbound_3_7_4_1_one_case_per_branch() {
    use Acquire::*;
    use OutboundBranch as B;
    use OutboundVerdict::*;
    let rec = FlowView::Recorded;
    let cases = [
        OutCase { sentence: "If the packet does not match a negotiation discovery rule, packet processing MUST be performed as specified in [RFC4301] section 5",
            rule: rule(false, false, false), sa: Option::None, flow: rec(NONE), verdict: Rfc4301, set: NONE, acquire: None, branch: B::NotNegotiationDiscovery },
        OutCase { sentence: "no QM SA matches, Secure flag not set: MUST send the packet and MUST trigger IKE if the Acquire flag is not set; then set the Acquire flag",
            rule: rule(true, false, false), sa: Option::None, flow: rec(NONE), verdict: SendClear, set: ACQ, acquire: IfAcquireFlagClear(info(false, false)), branch: B::NoSaNotSecure },
        OutCase { sentence: "no QM SA matches, Secure flag not set, Acquire flag set: MUST send the packet and MUST NOT trigger IKE (the engine suppresses: the flag was set)",
            rule: rule(true, false, false), sa: Option::None, flow: rec(ACQ), verdict: SendClear, set: ACQ, acquire: IfAcquireFlagClear(info(false, false)), branch: B::NoSaNotSecure },
        OutCase { sentence: "Flag IKE_EXCHANGE_INFO_ND_BOUNDARY MUST be set if the corresponding rule in the SPD has the Boundary flag set",
            rule: rule(true, true, false), sa: Option::None, flow: rec(NONE), verdict: SendClear, set: ACQ, acquire: IfAcquireFlagClear(info(true, false)), branch: B::NoSaNotSecure },
        OutCase { sentence: "Flag IKE_EXCHANGE_INFO_GUARANTEE_ENCRYPTION MUST be set if the Guarantee Encryption flag is set on the corresponding flow",
            rule: rule(true, false, false), sa: Option::None, flow: rec(GE), verdict: SendClear, set: ACQ, acquire: IfAcquireFlagClear(info(false, true)), branch: B::NoSaNotSecure },
        OutCase { sentence: "If the Secure flag is set for the corresponding flow: MUST NOT send the packet (queue or discard) and MUST trigger IKE",
            rule: rule(true, false, false), sa: Option::None, flow: rec(SECURE | ACQ), verdict: Hold, set: NONE, acquire: Always(info(false, false)), branch: B::NoSaSecure },
        OutCase { sentence: "a flow the table cannot record is treated as Secure: not sent in cleartext",
            rule: rule(true, false, false), sa: Option::None, flow: FlowView::Unrecorded, verdict: Hold, set: NONE, acquire: Always(info(false, false)), branch: B::NoSaSecure },
        OutCase { sentence: "If the matching QM SA and the corresponding flow do not have the same value for the Guaranteed Encryption flag, MUST trigger IKE as where no QM SA matches (flow not Secure: sent in cleartext)",
            rule: rule(true, false, false), sa: sa(false, true, false), flow: rec(NONE), verdict: SendClear, set: ACQ, acquire: IfAcquireFlagClear(info(false, false)), branch: B::GeMismatchNotSecure },
        OutCase { sentence: "Guaranteed Encryption mismatch for a Secure flow: not sent, IKE triggered",
            rule: rule(true, false, false), sa: sa(false, false, false), flow: rec(SECURE | GE), verdict: Hold, set: NONE, acquire: Always(info(false, true)), branch: B::GeMismatchSecure },
        OutCase { sentence: "If the matching QM SA is a UDP-ESP SA with the Boundary flag set, the host MUST send the packet in Cleartext",
            rule: rule(true, false, false), sa: sa(true, false, true), flow: rec(ACQ), verdict: SendClear, set: NONE, acquire: None, branch: B::BoundaryUdpEspClear },
        OutCase { sentence: "UDP-ESP Boundary SA on a flow already Secure: a once-secured flow can never downgrade (1.3.5), encapsulated",
            rule: rule(true, false, false), sa: sa(true, false, true), flow: rec(SECURE), verdict: Encapsulate, set: SECURE, acquire: None, branch: B::BoundaryUdpEspSecureFlow },
        OutCase { sentence: "Otherwise, MUST send the packet encapsulated by using the matching QM SA, and MUST set the Secure flag for this flow",
            rule: rule(true, false, false), sa: sa(true, false, false), flow: rec(ACQ), verdict: Encapsulate, set: SECURE, acquire: None, branch: B::Encapsulate },
        OutCase { sentence: "If the packet matches a Guaranteed Encryption rule, the host MUST set the Guaranteed Encryption flag on the flow, regardless of whether a matching QM SA is found (SA found)",
            rule: rule(true, false, true), sa: sa(false, true, false), flow: rec(NONE), verdict: Encapsulate, set: SECURE | GE, acquire: None, branch: B::Encapsulate },
        OutCase { sentence: "... Guaranteed Encryption rule, no matching QM SA: GE set, and message #5 asks for GUARANTEE_ENCRYPTION",
            rule: rule(true, false, true), sa: Option::None, flow: rec(NONE), verdict: SendClear, set: GE | ACQ, acquire: IfAcquireFlagClear(info(false, true)), branch: B::NoSaNotSecure },
    ];
    let mut seen = std::collections::HashSet::new();
    for c in &cases {
        let d = outbound(c.rule, c.sa, c.flow);
        assert_eq!((d.verdict, d.set, d.acquire, d.branch), (c.verdict, c.set, c.acquire, c.branch), "{}", c.sentence);
        seen.insert(d.branch);
    }
    assert_eq!(seen.len(), OutboundBranch::ALL.len(), "every branch has a case");
}

/// (spec sentence, arrival, inbound rule, SA has Guaranteed Encryption, flow, verdict, flags set, branch)
type InCase = (&'static str, Arrival, PolicyFlags, bool, InboundFlow, InboundVerdict, FlowFlags, InboundBranch);

#[test]
fn inbound_3_7_4_2_one_case_per_branch() {
    use Arrival::*;
    use InboundBranch as B;
    use InboundVerdict::*;
    let boundary = PolicyFlags { nd_inbound: true, boundary: true, ..Default::default() };
    let nd_no_boundary = PolicyFlags { nd_inbound: true, ..Default::default() };
    let plain = PolicyFlags::default();
    let ex = InboundFlow::Existing;
    #[rustfmt::skip]
    let cases: [InCase; 10] = [
        ("Cleartext first packet of a new flow: If the packet matches an inbound negotiation discovery rule in the SPD, the host MUST accept the packet",
            Cleartext, boundary, false, InboundFlow::New, Accept, NONE, B::ClearFirstPacketBoundaryRule),
        ("Otherwise, the host MUST silently discard the packet (no negotiation discovery rule)",
            Cleartext, plain, false, InboundFlow::New, Discard, NONE, B::ClearFirstPacketNoBoundaryRule),
        ("Otherwise, the host MUST silently discard the packet (inbound negotiation discovery rule without the Boundary flag: plaintext not accepted, 3.7.1)",
            Cleartext, nd_no_boundary, false, InboundFlow::New, Discard, NONE, B::ClearFirstPacketNoBoundaryRule),
        ("Cleartext packet of an existing flow: If the Secure flag is not set on the flow, the host MUST accept the packet",
            Cleartext, plain, false, ex(ACQ), Accept, NONE, B::ClearExistingNotSecure),
        ("Cleartext packet of an existing flow: Otherwise, the host MUST silently discard the packet",
            Cleartext, boundary, false, ex(SECURE), Discard, NONE, B::ClearExistingSecure),
        ("a flow the table cannot record is treated as Secure: cleartext discarded",
            Cleartext, boundary, false, InboundFlow::Unrecorded, Discard, NONE, B::ClearExistingSecure),
        ("If the packet was encapsulated using ESP or AH: The host MUST set the Secure flag on the flow (new flow)",
            Protected, plain, false, InboundFlow::New, Accept, SECURE, B::Protected),
        ("If the packet was encapsulated using ESP or AH: The host MUST set the Secure flag on the flow (existing flow)",
            Protected, boundary, false, ex(NONE), Accept, SECURE, B::Protected),
        ("Regardless of whether the packet is in plaintext, if there is an SA that matches the packet, and its Guaranteed Encryption flag is set, MUST set the Guaranteed Encryption flag (ESP)",
            Protected, plain, true, ex(NONE), Accept, SECURE | GE, B::Protected),
        ("... Guaranteed Encryption flag (plaintext)",
            Cleartext, plain, true, ex(NONE), Accept, GE, B::ClearExistingNotSecure),
    ];
    let mut seen = std::collections::HashSet::new();
    for (sentence, arrival, rule, sa_ge, flow, verdict, set, branch) in cases {
        let d = inbound(arrival, rule, sa_ge, flow);
        assert_eq!((d.verdict, d.set, d.branch), (verdict, set, branch), "{sentence}");
        seen.insert(d.branch);
    }
    assert_eq!(seen.len(), InboundBranch::ALL.len(), "every branch has a case");
}

/// Collects events; optionally refuses them like a full ring.
#[derive(Default)]
struct Events {
    got: RefCell<Vec<Event>>,
    full: bool,
}

impl EventSink for Events {
    fn emit_event(&self, event: &Event) -> bool {
        if !self.full {
            self.got.borrow_mut().push(*event);
        }
        !self.full
    }
}

fn v4(a: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, a))
}

fn tcp(local_port: u16) -> FlowKey {
    FlowKey::new(v4(1), v4(2), 6, Transport::Ports { local: local_port, remote: 80 })
}

fn engine() -> NegotiationDiscovery {
    NegotiationDiscovery::new(FlowTableConfig { capacity: 1000, idle_timeout: 60 })
}

#[test]
fn engine_sends_one_acquire_per_unsecured_flow_with_the_exchange_info_flags() {
    let nd = engine();
    let mut lc = NdLcore::default();
    let events = Events::default();
    let pkt = OutboundPacket { key: tcp(40000), policy_id: 7, rule: rule(true, true, true), sa: None };
    for now in 0..5 {
        assert_eq!(nd.outbound(&mut lc, &events, &pkt, now), OutboundVerdict::SendClear);
    }
    let got = events.got.borrow().clone();
    assert_eq!(got.len(), 1);
    let Event::Acquire { policy_id, flow, flags } = got[0] else { panic!("{got:?}") };
    assert_eq!((policy_id, flow.src, flow.dst, flow.proto, flow.src_port, flow.dst_port), (7, v4(1), v4(2), 6, 40000, 80));
    assert_eq!(flags, info(true, true));
    assert_eq!((lc.stats.acquire_sent, lc.stats.acquire_suppressed), (1, 4));
    let f = nd.table().lookup(&tcp(40000), 5).unwrap().flags;
    assert_eq!(f, ACQ | GE);
    assert_eq!(nd.table().stats().flows, 1);
}

#[test]
fn engine_fig15_flow_is_secured_by_the_sa_and_never_falls_back() {
    let nd = engine();
    let mut lc = NdLcore::default();
    let events = Events::default();
    let key = tcp(40001);
    let no_sa = OutboundPacket { key, policy_id: 1, rule: rule(true, false, false), sa: None };
    let with_sa = OutboundPacket { sa: sa(false, false, false), ..no_sa };
    let reply = |arrival| InboundPacket { key, arrival, rule: PolicyFlags::default(), sa_guaranteed_encryption: false };
    assert_eq!(nd.outbound(&mut lc, &events, &no_sa, 0), OutboundVerdict::SendClear);
    // The cleartext reply of the existing flow is accepted though the inbound rule is no boundary rule.
    assert_eq!(nd.inbound(&mut lc, &reply(Arrival::Cleartext), 0), InboundVerdict::Accept);
    assert_eq!(nd.outbound(&mut lc, &events, &with_sa, 1), OutboundVerdict::Encapsulate);
    assert_eq!(nd.table().stats().secure_flows, 1);
    // The SA is gone: held, and IKE triggered again (once per tick).
    assert_eq!(nd.outbound(&mut lc, &events, &no_sa, 2), OutboundVerdict::Hold);
    assert_eq!(nd.outbound(&mut lc, &events, &no_sa, 2), OutboundVerdict::Hold);
    assert_eq!(nd.inbound(&mut lc, &reply(Arrival::Cleartext), 2), InboundVerdict::Discard);
    assert_eq!(events.got.borrow().len(), 2);
    assert_eq!(lc.stats.outbound_count(OutboundBranch::NoSaSecure), 2);
    assert_eq!(lc.stats.inbound_count(InboundBranch::ClearExistingSecure), 1);
    // Aging never removes it.
    nd.table().age(1_000_000, 0, nd.table().buckets());
    assert_eq!(nd.outbound(&mut lc, &events, &no_sa, 1_000_000), OutboundVerdict::Hold);
}

#[test]
fn engine_boundary_server_accepts_cleartext_until_esp_arrives() {
    let nd = engine();
    let mut lc = NdLcore::default();
    let boundary = PolicyFlags { nd_inbound: true, boundary: true, ..Default::default() };
    let strict = PolicyFlags::default();
    let pkt = |port, arrival, rule| InboundPacket { key: tcp(port), arrival, rule, sa_guaranteed_encryption: false };
    // Figure 16: a server requiring protection drops the cleartext SYNs and keeps no state for them.
    for now in 0..3 {
        assert_eq!(nd.inbound(&mut lc, &pkt(1, Arrival::Cleartext, strict), now), InboundVerdict::Discard);
    }
    assert_eq!(nd.table().stats().flows, 0);
    assert_eq!(nd.inbound(&mut lc, &pkt(1, Arrival::Protected, strict), 3), InboundVerdict::Accept);
    // Figure 15, server side: boundary mode accepts the cleartext SYN and what follows...
    assert_eq!(nd.inbound(&mut lc, &pkt(2, Arrival::Cleartext, boundary), 0), InboundVerdict::Accept);
    assert_eq!(nd.inbound(&mut lc, &pkt(2, Arrival::Cleartext, boundary), 1), InboundVerdict::Accept);
    // ...until the flow arrives under ESP; then cleartext is discarded.
    assert_eq!(nd.inbound(&mut lc, &pkt(2, Arrival::Protected, boundary), 2), InboundVerdict::Accept);
    assert_eq!(nd.inbound(&mut lc, &pkt(2, Arrival::Cleartext, boundary), 3), InboundVerdict::Discard);
    // A host without IPsec keeps talking in cleartext.
    for now in 0..10 {
        assert_eq!(nd.inbound(&mut lc, &pkt(3, Arrival::Cleartext, boundary), now), InboundVerdict::Accept);
    }
    let s = lc.stats;
    assert_eq!(s.inbound_count(InboundBranch::ClearFirstPacketNoBoundaryRule), 3);
    assert_eq!(s.inbound_count(InboundBranch::ClearFirstPacketBoundaryRule), 2);
    assert_eq!(s.inbound_count(InboundBranch::ClearExistingNotSecure), 10);
    assert_eq!(s.inbound_count(InboundBranch::ClearExistingSecure), 1);
    assert_eq!(s.inbound_count(InboundBranch::Protected), 2);
    assert_eq!(nd.table().stats().secure_flows, 2);
}

#[test]
fn engine_counts_acquires_lost_to_a_full_ring_and_bursts_agree_with_single_packets() {
    let nd = engine();
    let mut lc = NdLcore::default();
    let full = Events { full: true, ..Default::default() };
    let pkts: Vec<OutboundPacket> = (0..70)
        .map(|i| OutboundPacket { key: tcp(i), policy_id: 1, rule: rule(i % 3 != 0, false, false), sa: if i % 2 == 0 { sa(false, false, false) } else { None } })
        .collect();
    let mut verdicts = vec![OutboundVerdict::Rfc4301; pkts.len()];
    nd.outbound_burst(&mut lc, &full, &pkts, &mut verdicts, 0);
    for (p, v) in pkts.iter().zip(&verdicts) {
        let expected = match (p.rule.nd_outbound, p.sa.is_some()) {
            (false, _) => OutboundVerdict::Rfc4301,
            (true, true) => OutboundVerdict::Encapsulate,
            (true, false) => OutboundVerdict::SendClear,
        };
        assert_eq!(*v, expected);
    }
    let clear = verdicts.iter().filter(|v| **v == OutboundVerdict::SendClear).count() as u64;
    assert_eq!((lc.stats.acquire_ring_full, lc.stats.acquire_sent), (clear, 0));
    let inbound: Vec<InboundPacket> =
        pkts.iter().map(|p| InboundPacket { key: p.key, arrival: Arrival::Cleartext, rule: PolicyFlags::default(), sa_guaranteed_encryption: false }).collect();
    let mut iv = vec![InboundVerdict::Accept; inbound.len()];
    nd.inbound_burst(&mut lc, &inbound, &mut iv, 1);
    for (p, v) in pkts.iter().zip(&iv) {
        let was_clear = p.rule.nd_outbound && p.sa.is_none();
        assert_eq!(*v == InboundVerdict::Accept, was_clear, "{p:?}");
    }
}
