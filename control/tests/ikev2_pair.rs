//! Two IKEv2 engines wired back to back through an in-memory network with a virtual clock:
//! every exchange, loss, duplication, reordering, retransmission, NAT, and bad input.
use control::crypto::{Integ, Prf, SeededRng, SkEncryption};
use control::ikev2::{
    ChildConfig, Engine, EngineConfig, Event, Failure, IkeProposal, PeerConfig, RandomSpis,
    Transmit,
};
use control::wire::ikev2::{DhGroup, IdType, Identification, NotifyType, TrafficSelector};
use shared::sa::{AesKeySize, Integrity, Suite};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const A_ADDR: &str = "198.18.0.1:500";
const B_ADDR: &str = "198.18.0.2:500";
/// Where the simulated NAT maps A's ports (A's view stays A_ADDR).
const A_PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const NAT_PORT_OFFSET: u16 = 40000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn id(name: &str) -> Identification {
    Identification {
        kind: IdType::Fqdn,
        data: name.as_bytes().to_vec(),
    }
}

fn subnet(third: u8) -> TrafficSelector {
    TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: u16::MAX,
        start: IpAddr::V4(Ipv4Addr::new(198, 18, third, 0)),
        end: IpAddr::V4(Ipv4Addr::new(198, 18, third, 255)),
    }
}

fn gcm_ecp256() -> IkeProposal {
    IkeProposal {
        encryption: SkEncryption::AesGcm16(32),
        integrity: None,
        prf: Prf::HmacSha256,
        groups: vec![DhGroup::Ecp256],
    }
}

fn cbc_modp2048() -> IkeProposal {
    IkeProposal {
        encryption: SkEncryption::AesCbc(32),
        integrity: Some(Integ::HmacSha256_128),
        prf: Prf::HmacSha256,
        groups: vec![DhGroup::Modp2048],
    }
}

const GCM: Suite = Suite::AesGcm {
    key: AesKeySize::Aes256,
    icv_len: 16,
};
const CBC: Suite = Suite::AesCbc {
    key: AesKeySize::Aes128,
    integrity: Integrity::HmacSha256_128,
};

fn peer(name: &str, local: &str, remote: &str, local_net: u8, remote_net: u8) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        remote_addr: None,
        local_id: id(local),
        remote_id: id(remote),
        psk: Zeroizing::new(b"a shared secret of decent length".to_vec()),
        ike_proposals: vec![gcm_ecp256()],
        child: ChildConfig {
            suites: vec![GCM],
            local_ts: vec![subnet(local_net)],
            remote_ts: vec![subnet(remote_net)],
        },
        dpd_interval: Duration::from_secs(30),
    }
}

/// What the network does to the n-th datagram (counted from 0 across both directions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Deliver,
    Drop,
    Duplicate,
    /// Hold it back and deliver it after everything else in flight.
    Delay,
    /// Flip one byte in the middle.
    Corrupt,
}

/// Decides the fate of the n-th datagram.
type FateFn = Box<dyn FnMut(usize, &Transmit) -> Fate>;

struct Pair {
    now: Instant,
    a: Engine,
    b: Engine,
    nat: bool,
    fate: FateFn,
    sent: usize,
    a_events: Vec<Event>,
    b_events: Vec<Event>,
    /// Datagrams seen on the wire, as sent.
    log: Vec<Transmit>,
}

impl Pair {
    fn new(a_config: EngineConfig, b_config: EngineConfig) -> Pair {
        Pair {
            now: Instant::now(),
            a: Engine::new(a_config, Box::new(SeededRng::new(1)), Box::new(RandomSpis)),
            b: Engine::new(b_config, Box::new(SeededRng::new(2)), Box::new(RandomSpis)),
            nat: false,
            fate: Box::new(|_, _| Fate::Deliver),
            sent: 0,
            a_events: Vec::new(),
            b_events: Vec::new(),
            log: Vec::new(),
        }
    }

    fn default_pair() -> Pair {
        Pair::new(
            EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]),
            EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]),
        )
    }

    fn initiate(&mut self) -> u64 {
        self.a
            .initiate(self.now, "to-b", addr(A_ADDR), addr(B_ADDR))
            .unwrap()
    }

    /// The NAT rewrites A's address to A_PUBLIC and its port p to NAT_PORT_OFFSET + p. Returns
    /// the (local, remote) pair B sees.
    fn translate_from_a(&self, t: &Transmit) -> (SocketAddr, SocketAddr) {
        if self.nat {
            (
                t.remote,
                SocketAddr::new(IpAddr::V4(A_PUBLIC), NAT_PORT_OFFSET + t.local.port()),
            )
        } else {
            (t.remote, t.local)
        }
    }

    /// The way back: (local, remote) as A sees it.
    fn translate_to_a(&self, t: &Transmit) -> (SocketAddr, SocketAddr) {
        if self.nat {
            (
                SocketAddr::new(addr(A_ADDR).ip(), t.remote.port() - NAT_PORT_OFFSET),
                t.local,
            )
        } else {
            (t.remote, t.local)
        }
    }

    /// Moves datagrams until the network is quiet and no timer is due; then advances the
    /// virtual clock to the next timer if `advance` and repeats, at most `rounds` times.
    fn run(&mut self, rounds: usize, advance: bool) {
        for _ in 0..rounds {
            let mut in_flight: Vec<(bool, Transmit)> = Vec::new();
            let mut delayed: Vec<(bool, Transmit)> = Vec::new();
            loop {
                while let Some(t) = self.a.poll_transmit() {
                    in_flight.push((true, t));
                }
                while let Some(t) = self.b.poll_transmit() {
                    in_flight.push((false, t));
                }
                if in_flight.is_empty() {
                    if delayed.is_empty() {
                        break;
                    }
                    in_flight.append(&mut delayed);
                }
                for (from_a, t) in std::mem::take(&mut in_flight) {
                    let n = self.sent;
                    self.sent += 1;
                    self.log.push(t.clone());
                    let mut bytes = t.bytes.clone();
                    let copies = match (self.fate)(n, &t) {
                        Fate::Deliver => 1,
                        Fate::Drop => 0,
                        Fate::Duplicate => 2,
                        Fate::Delay => {
                            delayed.push((from_a, t));
                            continue;
                        }
                        Fate::Corrupt => {
                            let middle = bytes.len() / 2;
                            bytes[middle] ^= 0x40;
                            1
                        }
                    };
                    for _ in 0..copies {
                        if from_a {
                            let (local, remote) = self.translate_from_a(&t);
                            self.b.handle_datagram(self.now, local, remote, &bytes);
                        } else {
                            let (local, remote) = self.translate_to_a(&t);
                            self.a.handle_datagram(self.now, local, remote, &bytes);
                        }
                    }
                }
                self.collect();
            }
            self.collect();
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if advance || at <= self.now => {
                    self.now = self.now.max(at);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => return,
            }
        }
    }

    fn collect(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
    }

    fn children(events: &[Event]) -> Vec<control::ikev2::ChildSa> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::ChildSaEstablished(c) => Some((**c).clone()),
                _ => None,
            })
            .collect()
    }

    fn count(events: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
        events.iter().filter(|e| pred(e)).count()
    }

    /// Both ends have exactly one IKE SA and one child SA, with mirrored SPIs and keys.
    fn assert_established(&self) -> (control::ikev2::ChildSa, control::ikev2::ChildSa) {
        let established = |e: &Event| matches!(e, Event::IkeSaEstablished { .. });
        assert_eq!(
            Pair::count(&self.a_events, established),
            1,
            "A: {:?}",
            self.a_events
        );
        assert_eq!(
            Pair::count(&self.b_events, established),
            1,
            "B: {:?}",
            self.b_events
        );
        let (a, b) = (
            Pair::children(&self.a_events),
            Pair::children(&self.b_events),
        );
        assert_eq!((a.len(), b.len()), (1, 1));
        let (a, b) = (a[0].clone(), b[0].clone());
        assert_eq!(a.outbound_spi, b.inbound_spi);
        assert_eq!(a.inbound_spi, b.outbound_spi);
        assert_eq!(a.outbound, b.inbound);
        assert_eq!(a.inbound, b.outbound);
        assert_ne!(a.outbound, a.inbound);
        assert_eq!(a.suite, b.suite);
        assert_eq!(a.outbound.encr.len(), a.suite.enc_key_len());
        assert_eq!(a.outbound.integ.len(), a.suite.auth_key_len());
        (a, b)
    }
}

#[test]
fn psk_exchange_establishes_mirrored_child_sas_for_every_group_and_suite() {
    for (ike, suite, group) in [
        (gcm_ecp256(), GCM, DhGroup::Ecp256),
        (cbc_modp2048(), CBC, DhGroup::Modp2048),
        (
            IkeProposal {
                groups: vec![DhGroup::Curve25519],
                ..gcm_ecp256()
            },
            CBC,
            DhGroup::Curve25519,
        ),
        (
            IkeProposal {
                groups: vec![DhGroup::Ecp384],
                prf: Prf::HmacSha384,
                ..cbc_modp2048()
            },
            GCM,
            DhGroup::Ecp384,
        ),
    ] {
        let mut a = peer("to-b", "a.example", "b.example", 1, 2);
        let mut b = peer("from-a", "b.example", "a.example", 2, 1);
        a.ike_proposals = vec![ike.clone()];
        b.ike_proposals = vec![ike];
        a.child.suites = vec![suite];
        b.child.suites = vec![CBC, GCM];
        let mut pair = Pair::new(EngineConfig::new(vec![a]), EngineConfig::new(vec![b]));
        pair.initiate();
        pair.run(3, false);
        let (a_child, b_child) = pair.assert_established();
        assert_eq!(a_child.suite, suite, "{group:?}");
        assert_eq!(a_child.local_ts, vec![subnet(1)]);
        assert_eq!(b_child.local_ts, vec![subnet(2)]);
        assert_eq!(a_child.encap, None);
        // Four datagrams: IKE_SA_INIT and IKE_AUTH, request and response.
        assert_eq!(pair.sent, 4, "{group:?}");
        assert_eq!(pair.a.ike_sas().len(), 1);
        assert!(pair.b.ike_sas()[0].established);
    }
}

#[test]
fn responder_narrows_traffic_selectors() {
    let mut a = peer("to-b", "a.example", "b.example", 1, 2);
    a.child.local_ts = vec![TrafficSelector::any(false)];
    a.child.remote_ts = vec![TrafficSelector::any(false)];
    let mut pair = Pair::new(
        EngineConfig::new(vec![a]),
        EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]),
    );
    pair.initiate();
    pair.run(3, false);
    let (a_child, _) = pair.assert_established();
    assert_eq!(a_child.local_ts, vec![subnet(1)]);
    assert_eq!(a_child.remote_ts, vec![subnet(2)]);

    // Disjoint selectors: the IKE SA comes up, the child SA fails with TS_UNACCEPTABLE.
    let mut a = peer("to-b", "a.example", "b.example", 7, 8);
    a.child.local_ts = vec![subnet(7)];
    let mut pair = Pair::new(
        EngineConfig::new(vec![a]),
        EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]),
    );
    pair.initiate();
    pair.run(3, false);
    assert!(Pair::children(&pair.a_events).is_empty());
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::IkeSaEstablished { .. })));
    assert!(pair.a_events.iter().any(|e| matches!(
        e,
        Event::IkeSaFailed {
            reason: Failure::PeerError(NotifyType::TsUnacceptable),
            ..
        }
    )));
}

#[test]
fn invalid_ke_payload_makes_the_initiator_retry_with_the_requested_group() {
    let mut a = peer("to-b", "a.example", "b.example", 1, 2);
    a.ike_proposals = vec![IkeProposal {
        groups: vec![DhGroup::Ecp256, DhGroup::Modp2048],
        ..gcm_ecp256()
    }];
    let mut b = peer("from-a", "b.example", "a.example", 2, 1);
    b.ike_proposals = vec![IkeProposal {
        groups: vec![DhGroup::Modp2048],
        ..gcm_ecp256()
    }];
    let mut pair = Pair::new(EngineConfig::new(vec![a]), EngineConfig::new(vec![b]));
    pair.initiate();
    pair.run(3, false);
    pair.assert_established();
    assert_eq!(
        pair.sent, 6,
        "INIT, INVALID_KE, INIT again, its answer, AUTH pair"
    );
}

#[test]
fn cookies_under_load() {
    let a = EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]);
    let mut b = EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]);
    b.cookie_threshold = 0;
    let mut pair = Pair::new(a, b);
    pair.initiate();
    pair.run(3, false);
    pair.assert_established();
    assert_eq!(pair.b.stats().cookies_sent, 1);
    assert_eq!(pair.sent, 6);
}

#[test]
fn lost_requests_and_responses_are_retransmitted() {
    // Lose the IKE_SA_INIT request, then the IKE_AUTH response (datagram numbers 0 and 4).
    let mut pair = Pair::default_pair();
    pair.fate = Box::new(|n, _| {
        if n == 0 || n == 4 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    pair.initiate();
    pair.run(10, true);
    pair.assert_established();
    assert_eq!(pair.a.stats().retransmissions_sent, 2);
    // The responder answered the retransmitted IKE_AUTH from its cache, not by reprocessing.
    assert_eq!(pair.b.stats().retransmitted_requests_answered, 1);
}

#[test]
fn retransmission_backs_off_then_gives_up() {
    let mut pair = Pair::default_pair();
    pair.fate = Box::new(|_, _| Fate::Drop);
    let start = pair.now;
    pair.initiate();
    pair.run(20, true);
    // 5 sends at 0, 2, 6, 14, 30 s, then failure at 62 s.
    assert_eq!(pair.sent, 5);
    assert_eq!(pair.now - start, Duration::from_secs(62));
    assert!(matches!(
        pair.a_events.as_slice(),
        [Event::IkeSaFailed {
            reason: Failure::Timeout,
            ..
        }]
    ));
    assert!(pair.a.ike_sas().is_empty());
}

#[test]
fn duplicated_datagrams_are_answered_once() {
    let mut pair = Pair::default_pair();
    pair.fate = Box::new(|_, _| Fate::Duplicate);
    pair.initiate();
    pair.run(3, false);
    pair.assert_established();
    assert_eq!(pair.b.ike_sas().len(), 1);
    assert_eq!(pair.b.stats().retransmitted_requests_answered, 2);
}

#[test]
fn reordered_stale_request_does_not_disturb_the_sa() {
    // Duplicate the IKE_SA_INIT request and deliver the copy late, after IKE_AUTH.
    let mut pair = Pair::default_pair();
    let mut stale = None;
    pair.initiate();
    let first = pair.a.poll_transmit().unwrap();
    stale.replace(first.clone());
    pair.b
        .handle_datagram(pair.now, first.remote, first.local, &first.bytes);
    pair.run(3, false);
    pair.assert_established();
    let stale = stale.unwrap();
    pair.b
        .handle_datagram(pair.now, stale.remote, stale.local, &stale.bytes);
    pair.run(3, false);
    assert_eq!(pair.b.ike_sas().len(), 1);
    // And reordering of duplicates in flight: every datagram delayed behind the others.
    let mut pair = Pair::default_pair();
    pair.fate = Box::new(|n, _| {
        if n % 2 == 0 {
            Fate::Delay
        } else {
            Fate::Deliver
        }
    });
    pair.initiate();
    pair.run(10, true);
    pair.assert_established();
}

#[test]
fn corrupted_messages_are_dropped_without_harm() {
    // Corrupt the IKE_AUTH request once: integrity check fails, retransmission succeeds.
    let mut pair = Pair::default_pair();
    pair.fate = Box::new(|n, _| if n == 2 { Fate::Corrupt } else { Fate::Deliver });
    pair.initiate();
    pair.run(10, true);
    pair.assert_established();
    assert_eq!(pair.b.stats().integrity_failures, 1);

    // Garbage and truncated copies of real messages at an established SA change nothing.
    let sas_before = pair.b.ike_sas();
    let logged = pair.log.clone();
    for t in &logged {
        for cut in [0, 1, 27, 28, t.bytes.len() / 2, t.bytes.len() - 1] {
            pair.b
                .handle_datagram(pair.now, t.remote, t.local, &t.bytes[..cut]);
            pair.a
                .handle_datagram(pair.now, t.local, t.remote, &t.bytes[..cut]);
        }
    }
    pair.run(2, false);
    assert_eq!(pair.b.ike_sas(), sas_before);
    assert!(pair.b.ike_sas()[0].established && pair.a.ike_sas()[0].established);
}

#[test]
fn wrong_psk_fails_authentication_on_both_sides() {
    let mut a = peer("to-b", "a.example", "b.example", 1, 2);
    a.psk = Zeroizing::new(b"not the same secret".to_vec());
    let mut pair = Pair::new(
        EngineConfig::new(vec![a]),
        EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]),
    );
    pair.initiate();
    pair.run(3, false);
    assert!(pair.b_events.iter().any(|e| matches!(
        e,
        Event::IkeSaFailed {
            reason: Failure::AuthenticationFailed,
            ..
        }
    )));
    assert!(pair.a_events.iter().any(|e| matches!(
        e,
        Event::IkeSaFailed {
            reason: Failure::PeerError(NotifyType::AuthenticationFailed),
            ..
        }
    )));
    assert!(pair.a.ike_sas().is_empty() && pair.b.ike_sas().is_empty());
    assert!(Pair::children(&pair.a_events).is_empty() && Pair::children(&pair.b_events).is_empty());
}

#[test]
fn no_common_proposal() {
    let mut a = peer("to-b", "a.example", "b.example", 1, 2);
    a.ike_proposals = vec![cbc_modp2048()];
    let mut pair = Pair::new(
        EngineConfig::new(vec![a]),
        EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]),
    );
    pair.initiate();
    pair.run(3, false);
    assert!(matches!(
        pair.a_events.as_slice(),
        [Event::IkeSaFailed {
            reason: Failure::PeerError(NotifyType::NoProposalChosen),
            ..
        }]
    ));
    assert!(pair.b.ike_sas().is_empty());
}

#[test]
fn child_and_ike_deletes_from_either_side() {
    let mut pair = Pair::default_pair();
    let spi = pair.initiate();
    pair.run(3, false);
    let (a_child, b_child) = pair.assert_established();
    // A deletes the child SA.
    assert!(pair.a.terminate_child(pair.now, spi, a_child.inbound_spi));
    pair.run(3, false);
    let deleted = |events: &[Event], inbound: u32| {
        events.iter().any(
            |e| matches!(e, Event::ChildSaDeleted { inbound_spi, .. } if *inbound_spi == inbound),
        )
    };
    assert!(deleted(&pair.a_events, a_child.inbound_spi));
    assert!(deleted(&pair.b_events, b_child.inbound_spi));
    assert!(pair.a.ike_sas()[0].children.is_empty() && pair.b.ike_sas()[0].children.is_empty());
    // B deletes the IKE SA.
    let b_spi = pair.b.ike_sas()[0].spi_r;
    assert!(pair.b.terminate(pair.now, b_spi));
    pair.run(3, false);
    let gone = |e: &Event| matches!(e, Event::IkeSaDeleted { .. });
    assert_eq!(Pair::count(&pair.a_events, gone), 1);
    assert_eq!(Pair::count(&pair.b_events, gone), 1);
    assert!(pair.a.ike_sas().is_empty() && pair.b.ike_sas().is_empty());
}

#[test]
fn ike_delete_takes_the_children_with_it() {
    let mut pair = Pair::default_pair();
    let spi = pair.initiate();
    pair.run(3, false);
    let (a_child, b_child) = pair.assert_established();
    assert!(pair.a.terminate(pair.now, spi));
    pair.run(3, false);
    assert!(pair.a_events.iter().any(|e| matches!(e, Event::ChildSaDeleted { inbound_spi, .. } if *inbound_spi == a_child.inbound_spi)));
    assert!(pair.b_events.iter().any(|e| matches!(e, Event::ChildSaDeleted { inbound_spi, .. } if *inbound_spi == b_child.inbound_spi)));
}

#[test]
fn liveness_checks_keep_a_live_peer_and_drop_a_dead_one() {
    let mut pair = Pair::default_pair();
    pair.initiate();
    pair.run(3, false);
    pair.assert_established();
    let before = pair.sent;
    // Quiet for a while: each side checks the other every 30 s and both stay up.
    let start = pair.now;
    while pair.now - start < Duration::from_secs(95) {
        pair.run(1, true);
    }
    assert!(
        pair.sent >= before + 4,
        "liveness requests and responses were exchanged"
    );
    assert_eq!((pair.a.ike_sas().len(), pair.b.ike_sas().len()), (1, 1));
    // B disappears: A's next check times out and A deletes the IKE SA and its child.
    pair.fate = Box::new(|_, t| {
        if t.local.ip() == addr(B_ADDR).ip() {
            Fate::Deliver
        } else {
            Fate::Drop
        }
    });
    pair.run(30, true);
    assert!(pair.a.ike_sas().is_empty());
    assert!(pair.a_events.iter().any(|e| matches!(
        e,
        Event::IkeSaFailed {
            reason: Failure::Timeout,
            ..
        }
    )));
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::ChildSaDeleted { .. })));
}

#[test]
fn nat_detection_floats_to_4500_and_encapsulates() {
    let mut pair = Pair::default_pair();
    pair.nat = true;
    pair.initiate();
    pair.run(3, false);
    let (a_child, b_child) = pair.assert_established();
    assert!(pair.a.ike_sas()[0].nat && pair.b.ike_sas()[0].nat);
    assert_eq!(pair.a.ike_sas()[0].local.port(), 4500);
    assert_eq!(pair.a.ike_sas()[0].remote.port(), 4500);
    // B sees A's translated 4500 port.
    assert_eq!(
        pair.b.ike_sas()[0].remote,
        SocketAddr::new(IpAddr::V4(A_PUBLIC), 44500)
    );
    assert_eq!(
        a_child.encap.map(|e| (e.src_port, e.dst_port)),
        Some((4500, 4500))
    );
    assert_eq!(
        b_child.encap.map(|e| (e.src_port, e.dst_port)),
        Some((4500, 44500))
    );
    // The IKE_AUTH exchange went over port 4500.
    assert_eq!(pair.log[2].local.port(), 4500);
}
