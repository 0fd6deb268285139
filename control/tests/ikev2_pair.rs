//! The IKEv2 engine against itself through the in-memory network of `common`: every exchange,
//! loss, duplication, reordering, retransmission, NAT, and bad input.
mod common;

use common::*;
use control::crypto::Prf;
use control::crypto::SeededRng;
use control::ikev2::{Engine, EngineConfig, Event, Failure, IkeProposal, RandomSpis};
use control::wire::ikev2::{DhGroup, NotifyType, TrafficSelector};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use zeroize::Zeroizing;

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
    // RFC 3948 4: NAT keepalives every 20 s from port 4500 while the SA is idle.
    let start = pair.now;
    while pair.now - start < Duration::from_secs(25) {
        pair.run(1, true);
    }
    let keepalives: Vec<_> = pair
        .log
        .iter()
        .filter(|t| t.bytes == control::ikev2::NAT_KEEPALIVE && t.local.port() == 4500)
        .collect();
    assert!(keepalives.len() >= 2, "both ends send keepalives");
    assert_eq!(pair.a.stats().malformed + pair.b.stats().malformed, 0);
}

#[test]
fn ms_ikee_server_addresses_are_requested_and_given() {
    let server_v4: IpAddr = "198.18.5.1".parse().unwrap();
    let server_v6: IpAddr = "2001:db8::5".parse().unwrap();
    for given in [vec![server_v4, server_v6], vec![]] {
        let mut a = peer("to-b", "a.example", "b.example", 1, 2);
        a.request_server_addresses = true;
        let mut b = peer("from-a", "b.example", "a.example", 2, 1);
        b.server_addresses = given.clone();
        let mut pair = Pair::new(EngineConfig::new(vec![a]), EngineConfig::new(vec![b]));
        pair.initiate();
        pair.run(3, false);
        // With or without addresses, the IKE SA and the child SA come up.
        pair.assert_established();
        let reported: Vec<_> = pair
            .a_events
            .iter()
            .filter_map(|e| match e {
                Event::ServerAddresses { addresses, .. } => Some(addresses.clone()),
                _ => None,
            })
            .collect();
        if given.is_empty() {
            assert!(reported.is_empty());
        } else {
            assert_eq!(reported, vec![given]);
        }
    }
}

#[test]
fn windows_vendor_ids_are_recognised_and_reported() {
    use control::ikev2::KnownVendor;
    use control::wire::ikev2::{Message, Payload};
    let mut pair = Pair::default_pair();
    pair.initiate();
    let request = pair.a.poll_transmit().unwrap();
    let mut message = Message::parse(&request.bytes).unwrap();
    // "MS NT5 ISAKMPOAKLEY" with version 9, and an unknown vendor ID.
    let mut nt5 = vec![
        0x1e, 0x2b, 0x51, 0x69, 0x05, 0x99, 0x1c, 0x7d, 0x7c, 0x96, 0xfc, 0xbf, 0xb5, 0x87, 0xe4,
        0x61,
    ];
    nt5.extend_from_slice(&9u32.to_be_bytes());
    message.payloads.push(Payload::VendorId(nt5));
    message
        .payloads
        .push(Payload::VendorId(b"someone else".to_vec()));
    pair.b.handle_datagram(
        pair.now,
        request.remote,
        request.local,
        &message.to_bytes().unwrap(),
    );
    pair.collect();
    let vendors: Vec<_> = pair
        .b_events
        .iter()
        .filter_map(|e| match e {
            Event::PeerVendor { vendor, .. } => Some(*vendor),
            _ => None,
        })
        .collect();
    assert_eq!(vendors.len(), 1);
    assert_eq!(vendors[0].vendor, KnownVendor::MsNt5Isakmpoakley);
    assert_eq!(vendors[0].version, Some(9));
    assert_eq!(pair.b.stats().unknown_vendor_ids, 1);
}

/// Rekeys the child from one side and checks make-before-break: a new mirrored pair with new
/// keys, then the old pair deleted on both sides.
fn rekey_from(initiator_is_a: bool, lose_request: bool) {
    let mut pair = Pair::default_pair();
    pair.initiate();
    pair.run(3, false);
    let (a_old, b_old) = pair.assert_established();
    let sent_before = pair.sent;
    if lose_request {
        pair.fate = Box::new(move |n, _| {
            if n == sent_before {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
    }
    let queued = if initiator_is_a {
        let spi = pair.a.ike_sas()[0].spi_i;
        pair.a.rekey_child(pair.now, spi, a_old.inbound_spi)
    } else {
        let spi = pair.b.ike_sas()[0].spi_r;
        pair.b.rekey_child(pair.now, spi, b_old.inbound_spi)
    };
    assert!(queued);
    // Without loss no timer is needed: the delete of the old pair follows the new pair at once.
    pair.run(5, lose_request);
    let (a_children, b_children) = (
        Pair::children(&pair.a_events),
        Pair::children(&pair.b_events),
    );
    assert_eq!((a_children.len(), b_children.len()), (2, 2));
    let (a_new, b_new) = (&a_children[1], &b_children[1]);
    assert_eq!(a_new.outbound_spi, b_new.inbound_spi);
    assert_eq!(a_new.inbound_spi, b_new.outbound_spi);
    assert_eq!(a_new.outbound, b_new.inbound);
    assert_eq!(a_new.inbound, b_new.outbound);
    assert_ne!(
        a_new.outbound, a_old.outbound,
        "fresh nonces give fresh keys"
    );
    let deleted = |events: &[Event], inbound: u32| {
        events.iter().any(
            |e| matches!(e, Event::ChildSaDeleted { inbound_spi, .. } if *inbound_spi == inbound),
        )
    };
    assert!(
        deleted(&pair.a_events, a_old.inbound_spi) && deleted(&pair.b_events, b_old.inbound_spi)
    );
    assert!(
        !deleted(&pair.a_events, a_new.inbound_spi) && !deleted(&pair.b_events, b_new.inbound_spi)
    );
    let a_now: Vec<u32> = pair.a.ike_sas()[0]
        .children
        .iter()
        .map(|c| c.inbound_spi)
        .collect();
    assert_eq!(a_now, vec![a_new.inbound_spi]);
    assert_eq!(pair.b.ike_sas()[0].children.len(), 1);
    if lose_request {
        let requester = if initiator_is_a {
            pair.a.stats()
        } else {
            pair.b.stats()
        };
        assert_eq!(requester.retransmissions_sent, 1);
    }
}

#[test]
fn child_rekey_by_the_original_initiator() {
    rekey_from(true, false);
}

#[test]
fn child_rekey_by_the_original_responder() {
    rekey_from(false, false);
}

#[test]
fn child_rekey_survives_a_lost_request() {
    rekey_from(true, true);
}

#[test]
fn ms_ikee_correlation_links_sas_and_tears_down_with_the_original() {
    let mut pair = Pair::default_pair();
    let original = pair.initiate();
    pair.run(3, false);
    pair.assert_established();
    let b_original = pair.b.ike_sas()[0].spi_r;
    let correlated = pair
        .a
        .initiate_correlated(pair.now, "to-b", addr(A_ADDR), addr(B_ADDR), original)
        .unwrap();
    pair.run(3, false);
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Correlated { spi, original_spi } if *spi == correlated && *original_spi == original)));
    assert!(pair.b_events.iter().any(
        |e| matches!(e, Event::Correlated { original_spi, .. } if *original_spi == b_original)
    ));
    assert_eq!((pair.a.ike_sas().len(), pair.b.ike_sas().len()), (2, 2));
    // Deleting the original tears down the correlated SA on both sides.
    assert!(pair.a.terminate(pair.now, original));
    pair.run(5, false);
    assert!(pair.a.ike_sas().is_empty() && pair.b.ike_sas().is_empty());
    let deleted = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::IkeSaDeleted { .. }))
            .count()
    };
    assert_eq!((deleted(&pair.a_events), deleted(&pair.b_events)), (2, 2));
}

#[test]
fn ms_ikee_correlation_failure_is_reported_and_harmless() {
    // The responder restarted and lost the original SA: it answers with the private notify
    // 0x3039 at the end of IKE_AUTH, and the new IKE SA is established anyway.
    let mut pair = Pair::default_pair();
    let original = pair.initiate();
    pair.run(3, false);
    pair.b = Engine::new(
        EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]),
        Box::new(SeededRng::new(3)),
        Box::new(RandomSpis),
    );
    let correlated = pair
        .a
        .initiate_correlated(pair.now, "to-b", addr(A_ADDR), addr(B_ADDR), original)
        .unwrap();
    pair.run(3, false);
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::CorrelationFailed { spi, status: 1 } if *spi == correlated)));
    let new_sa = pair
        .a
        .ike_sas()
        .into_iter()
        .find(|s| s.spi_i == correlated)
        .unwrap();
    assert!(new_sa.established && new_sa.children.len() == 1);
    // Without a correlation, deleting the original leaves the new SA alone.
    assert!(pair.a.terminate(pair.now, original));
    pair.run(3, true);
    assert!(pair.a.ike_sas().iter().any(|s| s.spi_i == correlated));
}
