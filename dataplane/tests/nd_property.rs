//! Property: across random interleavings of outbound and inbound packets on several threads
//! (lcores), with a table small enough to evict and fill up and an ager running, a flow that has
//! been Secure never has a cleartext packet sent or accepted afterwards ([MS-IKEE] 1.3.5).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Barrier;

use dataplane::nd::*;
use proptest::prelude::*;
use shared::event::Event;
use shared::policy::PolicyFlags;
use shared::sa::MsSaFlags;

const FLOWS: u8 = 40;

#[derive(Debug, Clone, Copy)]
enum Op {
    /// An outbound packet of a flow, with the SA the lookup found (0 none, 1 plain, 2 UDP-ESP
    /// boundary, 3 Guaranteed Encryption).
    Out { flow: u8, sa: u8 },
    In { flow: u8, esp: bool },
    /// Time passes by this many ticks and the table is aged.
    Age { ticks: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..FLOWS, 0..4u8).prop_map(|(flow, sa)| Op::Out { flow, sa }),
        6 => (0..FLOWS, any::<bool>()).prop_map(|(flow, esp)| Op::In { flow, esp }),
        1 => (1..6u8).prop_map(|ticks| Op::Age { ticks }),
    ]
}

fn key(flow: u8) -> FlowKey {
    let local = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    let remote = IpAddr::V4(Ipv4Addr::new(198, 19, 0, flow));
    match flow % 3 {
        0 => FlowKey::new(local, remote, 6, Transport::Ports { local: 40000 + u16::from(flow), remote: 80 }),
        1 => FlowKey::new(local, remote, 1, Transport::Icmp { ty: 8, code: 0 }),
        _ => FlowKey::new(local, remote, 47, Transport::ProtocolOnly),
    }
}

struct Counting(AtomicU64);

impl EventSink for Counting {
    fn emit_event(&self, _: &Event) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// What every thread shares: the engine, a clock, and which flows have been secured (set after
/// the securing packet's decision returned, so a decision that starts later must see it).
struct World {
    nd: NegotiationDiscovery,
    now: AtomicU32,
    secured: Vec<AtomicBool>,
    violations: AtomicU64,
    cleartext: AtomicU64,
}

impl World {
    fn run(&self, lcore: &mut NdLcore, sink: &Counting, op: Op) {
        let now = self.now.load(Ordering::SeqCst);
        match op {
            Op::Out { flow, sa } => {
                let was_secured = self.secured[usize::from(flow)].load(Ordering::SeqCst);
                let sa = match sa {
                    0 => None,
                    s => Some(SaMatch { ms: MsSaFlags { boundary: s == 2, guaranteed_encryption: s == 3 }, udp_encap: s == 2 }),
                };
                let rule = PolicyFlags { nd_outbound: true, boundary: flow % 2 == 0, guaranteed_encryption: flow % 5 == 0, ..Default::default() };
                let pkt = OutboundPacket { key: key(flow), policy_id: u32::from(flow), rule, sa };
                match self.nd.outbound(lcore, sink, &pkt, now) {
                    OutboundVerdict::SendClear => self.cleartext(was_secured),
                    OutboundVerdict::Encapsulate => self.secured[usize::from(flow)].store(true, Ordering::SeqCst),
                    OutboundVerdict::Hold | OutboundVerdict::Rfc4301 => {}
                }
            }
            Op::In { flow, esp } => {
                let was_secured = self.secured[usize::from(flow)].load(Ordering::SeqCst);
                let rule = PolicyFlags { nd_inbound: true, boundary: flow % 4 != 3, ..Default::default() };
                let arrival = if esp { Arrival::Protected } else { Arrival::Cleartext };
                let pkt = InboundPacket { key: key(flow), arrival, rule, sa_guaranteed_encryption: esp && flow % 5 == 0 };
                let accepted = self.nd.inbound(lcore, &pkt, now) == InboundVerdict::Accept;
                match (accepted, esp) {
                    (true, true) => self.secured[usize::from(flow)].store(true, Ordering::SeqCst),
                    (true, false) => self.cleartext(was_secured),
                    (false, _) => {}
                }
            }
            Op::Age { ticks } => {
                let now = self.now.fetch_add(u32::from(ticks), Ordering::SeqCst) + u32::from(ticks);
                self.nd.table().age(now, 0, self.nd.table().buckets());
            }
        }
    }

    fn cleartext(&self, was_secured: bool) {
        self.cleartext.fetch_add(1, Ordering::Relaxed);
        if was_secured {
            self.violations.fetch_add(1, Ordering::Relaxed);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn a_secured_flow_never_sends_or_accepts_cleartext_again(
        lanes in prop::collection::vec(prop::collection::vec(op(), 200..600), 3),
        capacity in prop_oneof![Just(11usize), Just(24), Just(1000)],
    ) {
        // 16 and 40 slots for 40 flows: evictions and full buckets happen.
        let world = World {
            nd: NegotiationDiscovery::new(FlowTableConfig { capacity, idle_timeout: 4 }),
            now: AtomicU32::new(0),
            secured: (0..FLOWS).map(|_| AtomicBool::new(false)).collect(),
            violations: AtomicU64::new(0),
            cleartext: AtomicU64::new(0),
        };
        let start = Barrier::new(lanes.len());
        let stats: Vec<NdStats> = std::thread::scope(|s| {
            let hs: Vec<_> = lanes.iter().map(|ops| {
                let (world, start) = (&world, &start);
                s.spawn(move || {
                    let mut lcore = NdLcore::default();
                    let sink = Counting(AtomicU64::new(0));
                    start.wait();
                    // Each lane plays its ops twice so that flows secured late are tested again.
                    for op in ops.iter().chain(ops.iter()) {
                        world.run(&mut lcore, &sink, *op);
                    }
                    lcore.stats
                })
            }).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        prop_assert_eq!(world.violations.load(Ordering::Relaxed), 0);
        // The run exercised what it claims to: cleartext, securing, and (small tables) pressure.
        let mut total = NdStats::default();
        stats.iter().for_each(|s| total.add(s));
        prop_assert!(world.cleartext.load(Ordering::Relaxed) > 0);
        prop_assert!(world.nd.table().stats().secure_flows > 0);
        if capacity == 11 {
            let t = world.nd.table().stats();
            prop_assert!(t.evicted + t.full + t.aged > 0, "{:?}", t);
        }
    }
}

/// The same invariant, deterministic, on a table where new flows hit buckets full of Secure flows.
#[test]
fn unrecorded_flows_are_never_cleartext() {
    let nd = NegotiationDiscovery::new(FlowTableConfig { capacity: 11, idle_timeout: 4 });
    let mut lc = NdLcore::default();
    let sink = Counting(AtomicU64::new(0));
    let rule = PolicyFlags { nd_outbound: true, ..Default::default() };
    let with_sa = Some(SaMatch::default());
    let mut unrecorded = None;
    for flow in 0..FLOWS {
        let pkt = OutboundPacket { key: key(flow), policy_id: 1, rule, sa: with_sa };
        assert_eq!(nd.outbound(&mut lc, &sink, &pkt, 0), OutboundVerdict::Encapsulate);
        if nd.table().lookup(&key(flow), 0).is_none() {
            unrecorded = Some(flow);
        }
    }
    let flow = unrecorded.expect("some flow found its buckets full of Secure flows");
    assert!(nd.table().stats().full > 0 && lc.stats.unrecorded > 0);
    let no_sa = OutboundPacket { key: key(flow), policy_id: 1, rule, sa: None };
    assert_eq!(nd.outbound(&mut lc, &sink, &no_sa, 1), OutboundVerdict::Hold);
    let boundary = PolicyFlags { nd_inbound: true, boundary: true, ..Default::default() };
    let clear_in = InboundPacket { key: key(flow), arrival: Arrival::Cleartext, rule: boundary, sa_guaranteed_encryption: false };
    assert_eq!(nd.inbound(&mut lc, &clear_in, 1), InboundVerdict::Discard);
    let esp_in = InboundPacket { arrival: Arrival::Protected, ..clear_in };
    assert_eq!(nd.inbound(&mut lc, &esp_in, 1), InboundVerdict::Accept);
}
