//! Negotiation discovery wired into the gateway pipeline ([MS-IKEE] 4.1, figures 15 and 16, with
//! the gateway as the negotiation discovery host), driven frame by frame without a NIC: the SA is
//! installed and deleted by the test, standing in for IKE.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use dataplane::gateway::counters::{GatewayDrop, LcoreCounters, Reason};
use dataplane::gateway::ether::{Frame, Mac, ETHERTYPE_IPV4};
use dataplane::gateway::pipeline::{Pipeline, Setup, Shared, SideSetup, Verdict};
use dataplane::gateway::routing::{Net, Route, Routes};
use dataplane::gateway::Side;
use dataplane::nd::{FlowTableConfig, NdReport, NegotiationDiscovery, RuleCounts};
use dataplane::wire::checksum::checksum;
use dataplane::{PacketBuf, SliceBuf};
use shared::event::{Event, SaKey};
use shared::layout::Capacities;
use shared::ops::Writer;
use shared::policy::{Action, Policy, PolicyFlags, Prefix, SaTemplate, Selector};
use shared::reader::Reader;
use shared::region::Region;
use shared::sa::{Direction, Mode, TrafficSelector};

const GW_MAC: Mac = Mac([2, 0, 0, 0, 0, 2]);

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const INSIDE: [u8; 4] = [198, 18, 1, 10];
const SERVER: [u8; 4] = [198, 19, 1, 10];
const PLAIN_HOST: [u8; 4] = [198, 19, 1, 20];

/// An Ethernet frame holding an IPv4 TCP segment.
fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let mut f = vec![0; 14];
    Frame::emit(&mut f, GW_MAC, Mac([2, 0, 0, 0, 0, 9]), None, ETHERTYPE_IPV4);
    let mut ip = vec![0u8; 40];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip[20..22].copy_from_slice(&sport.to_be_bytes());
    ip[22..24].copy_from_slice(&dport.to_be_bytes());
    ip[32] = 5 << 4;
    ip[33] = if syn { 0x02 } else { 0x10 };
    f.extend_from_slice(&ip);
    f
}

struct Gateway {
    path: String,
    writer: Writer,
    pipeline: Pipeline,
    nd: Arc<NegotiationDiscovery>,
    /// The policy ids of the outbound and the inbound rule.
    rule_ids: [u32; 2],
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Region::remove(&self.path);
    }
}

const TUNNEL: SaTemplate = SaTemplate { mode: Mode::Tunnel, src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)) };

impl Gateway {
    /// The gateway of the hosts in 198.18.1.0/24, with an outbound negotiation discovery rule to
    /// 198.19.1.0/24 and, inbound, a protect rule with `inbound` flags.
    fn new(name: &str, inbound: PolicyFlags) -> Gateway {
        let path = format!("/dev/shm/ipsec-gw-nd-test-{name}-{}", std::process::id());
        let region = Arc::new(Region::create(&path, Capacities { sas: 16, readers: 4, ..Capacities::default() }).unwrap());
        let mut writer = Writer::attach(region.clone()).unwrap();
        let net = |a: [u8; 4]| Prefix::new(IpAddr::from(a), 24);
        let rule = |direction, src, dst, reqid, flags| Policy {
            priority: 1,
            direction,
            selector: Selector { src, dst, proto: None, src_ports: (0, u16::MAX), dst_ports: (0, u16::MAX), icmp_type: None, icmp_code: None },
            action: Action::Protect { reqid, template: TUNNEL },
            flags,
        };
        let nd_out = PolicyFlags { nd_outbound: true, ..PolicyFlags::default() };
        let out_id = writer.add_policy(&rule(Direction::Out, net(INSIDE), net(SERVER), 1, nd_out)).unwrap();
        let in_id = writer.add_policy(&rule(Direction::In, net(SERVER), net(INSIDE), 2, inbound)).unwrap();
        let side = |addr: IpAddr| SideSetup { mac: GW_MAC, vlan: None, addresses: vec![Net { addr, len: 24 }], mtu: 1500 };
        let setup = Setup {
            protected: side(v4(198, 18, 1, 1)),
            unprotected: side(v4(198, 18, 0, 1)),
            routes: Routes::new(vec![
                Route { net: Net { addr: v4(198, 19, 1, 0), len: 24 }, side: Side::Unprotected, via: Some(v4(198, 18, 0, 2)) },
                Route { net: Net { addr: v4(198, 18, 0, 0), len: 24 }, side: Side::Unprotected, via: None },
                Route { net: Net { addr: v4(198, 18, 1, 0), len: 24 }, side: Side::Protected, via: None },
            ]),
            neighbours: [
                ((Side::Unprotected, v4(198, 18, 0, 2)), Mac([2, 0, 0, 0, 0, 3])),
                ((Side::Protected, IpAddr::from(INSIDE)), Mac([2, 0, 0, 0, 0, 4])),
            ]
            .into_iter()
            .collect(),
            encap_ports: vec![4500],
            icmp_errors_per_sec: 100,
        };
        let nd = Arc::new(NegotiationDiscovery::new(FlowTableConfig { capacity: 1000, idle_timeout: 60 }));
        let shared = Shared { nd: Some(nd.clone()), ..Shared::default() };
        let mut pipeline = Pipeline::new(Reader::attach(region).unwrap(), Arc::new(setup), &shared, Arc::new(LcoreCounters::default()));
        pipeline.begin_round();
        Gateway { path, writer, pipeline, nd, rule_ids: [out_id, in_id] }
    }

    /// Passes a frame; returns the verdict and the IP protocol of what leaves.
    fn pass(&mut self, side: Side, frame: &[u8]) -> (Verdict, u8) {
        let mut mem = vec![0u8; 2048];
        let mut buf = SliceBuf::with_packet(&mut mem, 256, frame).unwrap();
        let verdict = self.pipeline.from_port(side, &mut buf);
        self.pipeline.end_round();
        self.pipeline.begin_round();
        (verdict, buf.data().get(14 + 9).copied().unwrap_or(0))
    }

    fn install_sa(&mut self) -> SaKey {
        let mut sa = shared::synthetic::synthetic_sa(0x2000, 0);
        (sa.direction, sa.src, sa.dst, sa.esn, sa.reqid) = (Direction::Out, TUNNEL.src, TUNNEL.dst, false, 1);
        sa.ts_local = TrafficSelector::any_of_family(sa.src);
        sa.ts_remote = TrafficSelector::any_of_family(sa.src);
        (sa.soft, sa.hard, sa.idle_timeout_secs, sa.ms_flags) = (Default::default(), Default::default(), 0, Default::default());
        self.writer.add_sa(&sa).unwrap()
    }

    /// The engine's report once the lcore has published its counters (every 100 ms, at the
    /// start of a round).
    fn report(&mut self) -> NdReport {
        std::thread::sleep(std::time::Duration::from_millis(150));
        self.pipeline.begin_round();
        self.nd.report()
    }

    fn acquires(&mut self) -> usize {
        std::iter::from_fn(|| self.writer.pop_event()).filter(|e| matches!(e, Event::Acquire { .. })).count()
    }
}

const OUT: Side = Side::Protected;
const IN: Side = Side::Unprotected;
const SENT_OUT: Verdict = Verdict::Transmit(Side::Unprotected);
const SENT_IN: Verdict = Verdict::Transmit(Side::Protected);
const ESP: u8 = 50;
const TCP: u8 = 6;

#[test]
fn figure_15_cleartext_until_the_sa_then_esp_and_never_cleartext_again() {
    let mut gw = Gateway::new("fig15", PolicyFlags::default());
    let syn = tcp(INSIDE, SERVER, 40000, 80, true);
    let ack = tcp(INSIDE, SERVER, 40000, 80, false);
    let reply = tcp(SERVER, INSIDE, 80, 40000, false);
    // No SA: the SYN goes out in cleartext and IKE is triggered once; the cleartext answer of this
    // flow is accepted though the inbound rule is a plain protect rule.
    assert_eq!(gw.pass(OUT, &syn), (SENT_OUT, TCP));
    assert_eq!(gw.pass(IN, &reply).0, SENT_IN);
    assert_eq!(gw.pass(OUT, &ack), (SENT_OUT, TCP));
    assert_eq!(gw.acquires(), 1);
    // Cleartext of a flow nobody started is still refused (RFC 4301 5.2).
    let stranger = tcp(SERVER, INSIDE, 80, 40001, true);
    assert_eq!(gw.pass(IN, &stranger).0, Verdict::Drop(Reason::Gateway(GatewayDrop::CleartextForProtected)));
    // The negotiation completes: the same connection continues under ESP.
    let sa = gw.install_sa();
    assert_eq!(gw.pass(OUT, &ack), (SENT_OUT, ESP));
    // The SA goes away: the flow is Secure, so nothing leaves or enters in cleartext.
    gw.writer.del_sa(sa).unwrap();
    assert_eq!(gw.pass(OUT, &ack).0, Verdict::Drop(Reason::Gateway(GatewayDrop::NoSa)));
    assert_eq!(gw.pass(IN, &reply).0, Verdict::Drop(Reason::Gateway(GatewayDrop::CleartextForProtected)));
    assert!(gw.acquires() >= 1, "IKE is triggered again for the Secure flow");
}

#[test]
fn figure_16_a_host_requiring_protection_drops_cleartext_syns_until_the_sa_exists() {
    // Inbound: a protect rule without negotiation discovery (the server side of figure 16).
    let mut gw = Gateway::new("fig16", PolicyFlags::default());
    let syn_in = tcp(SERVER, INSIDE, 50000, 22, true);
    for _ in 0..3 {
        assert_eq!(gw.pass(IN, &syn_in).0, Verdict::Drop(Reason::Gateway(GatewayDrop::CleartextForProtected)));
    }
}

#[test]
fn boundary_mode_keeps_accepting_cleartext_from_a_host_without_ipsec() {
    let boundary = PolicyFlags { nd_inbound: true, boundary: true, ..PolicyFlags::default() };
    let mut gw = Gateway::new("boundary", boundary);
    for i in 0..5 {
        let syn = tcp(PLAIN_HOST, INSIDE, 50000 + i, 22, true);
        let data = tcp(PLAIN_HOST, INSIDE, 50000 + i, 22, false);
        assert_eq!(gw.pass(IN, &syn).0, SENT_IN);
        assert_eq!(gw.pass(IN, &data).0, SENT_IN);
        assert_eq!(gw.pass(OUT, &tcp(INSIDE, PLAIN_HOST, 22, 50000 + i, false)), (SENT_OUT, TCP));
    }
}

/// The statistics the gateway reports: cleartext sent, held, accepted and dropped by SPD rule,
/// ACQUIREs sent and suppressed, flows and Secure flows.
#[test]
fn the_report_counts_cleartext_decisions_by_rule() {
    let mut gw = Gateway::new("report", PolicyFlags::default());
    let [out_rule, in_rule] = gw.rule_ids;
    let ack = tcp(INSIDE, SERVER, 40000, 80, false);
    let reply = tcp(SERVER, INSIDE, 80, 40000, false);
    assert_eq!(gw.pass(OUT, &tcp(INSIDE, SERVER, 40000, 80, true)), (SENT_OUT, TCP));
    assert_eq!(gw.pass(OUT, &ack), (SENT_OUT, TCP));
    assert_eq!(gw.pass(IN, &reply).0, SENT_IN);
    assert_eq!(gw.pass(IN, &tcp(SERVER, INSIDE, 80, 40001, true)).0, Verdict::Drop(Reason::Gateway(GatewayDrop::CleartextForProtected)));
    let sa = gw.install_sa();
    assert_eq!(gw.pass(OUT, &ack), (SENT_OUT, ESP));
    gw.writer.del_sa(sa).unwrap();
    assert_eq!(gw.pass(OUT, &ack).0, Verdict::Drop(Reason::Gateway(GatewayDrop::NoSa)));
    assert_eq!(gw.pass(IN, &reply).0, Verdict::Drop(Reason::Gateway(GatewayDrop::CleartextForProtected)));

    let r = gw.report();
    assert_eq!(r.counts.rules[&out_rule], RuleCounts { cleartext_sent: 2, held: 1, ..RuleCounts::default() });
    assert_eq!(r.counts.rules[&in_rule], RuleCounts { cleartext_accepted: 1, cleartext_dropped: 2, ..RuleCounts::default() });
    let s = &r.counts.stats;
    assert_eq!((s.cleartext_sent(), s.held(), s.cleartext_accepted(), s.cleartext_dropped()), (2, 1, 1, 2));
    // One ACQUIRE for the cleartext flow (the second packet's is suppressed by the Acquire flag),
    // one when the Secure flow lost its SA.
    assert_eq!((s.acquire_sent, s.acquire_suppressed), (2, 1));
    assert_eq!((r.table.flows, r.table.secure_flows, r.capacity), (1, 1, 1000));
}
