//! Rekeying in the two-peer harness (RFC 7296 1.3.2, 2.8, 2.18): the IKE SA replaced from either
//! side with its child SAs moved, simultaneous rekeys of IKE and child SAs (2.8.1, 2.8.2) under
//! loss and reordering, the IKE SA lifetime, INVALID_SPI (2.21.4), and child rekeys with PFS
//! (1.3.2, 2.17) including INVALID_KE_PAYLOAD and a PFS mismatch. Every test ends by
//! checking that both ends hold the same SAs with the same SPIs and keys, and that the surviving
//! IKE SA carries traffic both ways.
mod common;

use common::*;
use control::crypto::SeededRng;
use control::ikev2::{ChildSa, Engine, EngineConfig, Event, Failure, IkeSaInfo, RandomSpis};
use control::wire::ikev2::{DhGroup, NotifyType};
use std::time::Duration;

fn established() -> Pair {
    let mut pair = Pair::default_pair();
    pair.initiate();
    pair.run(3, false);
    pair.assert_established();
    pair
}

/// A pair whose engines draw from the given seeds, so that nonces (and the collision winner)
/// differ from run to run.
fn established_with_seeds(seed_a: u64, seed_b: u64, lifetime: Option<Duration>) -> Pair {
    let mut a = EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]);
    let mut b = EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]);
    a.ike_lifetime = lifetime;
    b.ike_lifetime = lifetime;
    established_from_configs(a, b, (seed_a, seed_b))
}

/// A pair of engines with these configurations, drawing from these seeds, established.
fn established_from_configs(
    a: EngineConfig,
    b: EngineConfig,
    (seed_a, seed_b): (u64, u64),
) -> Pair {
    let mut pair = Pair::new(a.clone(), b.clone());
    pair.a = Engine::new(a, Box::new(SeededRng::new(seed_a)), Box::new(RandomSpis));
    pair.b = Engine::new(b, Box::new(SeededRng::new(seed_b)), Box::new(RandomSpis));
    pair.initiate();
    pair.run(3, false);
    pair.assert_established();
    pair
}

fn only_ike_sa(engine: &Engine) -> IkeSaInfo {
    let sas = engine.ike_sas();
    assert_eq!(sas.len(), 1, "{sas:#?}");
    sas.into_iter().next().unwrap()
}

/// Both ends hold one IKE SA with the same SPIs and one mirrored child SA each, and the IKE SA
/// works: a liveness check from each side is answered (its keys agree) without integrity
/// failures. Returns the IKE SAs and child SAs (A's, B's).
fn assert_agree(pair: &mut Pair) -> ((IkeSaInfo, ChildSa), (IkeSaInfo, ChildSa)) {
    let (a, b) = (only_ike_sa(&pair.a), only_ike_sa(&pair.b));
    assert!(a.established && b.established);
    assert_eq!((a.spi_i, a.spi_r), (b.spi_i, b.spi_r));
    assert_ne!(a.initiator, b.initiator);
    assert_eq!(a.children.len(), 1, "A: {:#?}", a.children);
    assert_eq!(b.children.len(), 1, "B: {:#?}", b.children);
    let (ac, bc) = (a.children[0].clone(), b.children[0].clone());
    assert_eq!(
        (ac.inbound_spi, ac.outbound_spi),
        (bc.outbound_spi, bc.inbound_spi)
    );
    assert_eq!((&ac.inbound, &ac.outbound), (&bc.outbound, &bc.inbound));
    assert_eq!(ac.ike_spi, a.our_spi());
    assert_eq!(bc.ike_spi, b.our_spi());
    let answered = (
        pair.a.stats().liveness_answered_by_peer,
        pair.b.stats().liveness_answered_by_peer,
    );
    assert!(pair.a.check_liveness(pair.now, a.our_spi()));
    assert!(pair.b.check_liveness(pair.now, b.our_spi()));
    pair.run(3, false);
    // At least ours (a due periodic check may have gone along).
    assert!(pair.a.stats().liveness_answered_by_peer > answered.0);
    assert!(pair.b.stats().liveness_answered_by_peer > answered.1);
    assert_eq!(pair.a.stats().integrity_failures, 0);
    assert_eq!(pair.b.stats().integrity_failures, 0);
    ((a, ac), (b, bc))
}

fn count(events: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

fn child_deleted(events: &[Event], inbound: u32) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::ChildSaDeleted { inbound_spi, .. } if *inbound_spi == inbound))
}

/// Rekeys the IKE SA from one side, optionally losing the n-th datagram after the start (0: the
/// CREATE_CHILD_SA request, 1: its response, 2: the delete of the old SA).
fn ike_rekey_from(a_starts: bool, lose: Option<usize>) {
    let mut pair = established();
    let (old_a, old_b) = (only_ike_sa(&pair.a), only_ike_sa(&pair.b));
    let (child_a, child_b) = (old_a.children[0].clone(), old_b.children[0].clone());
    let start = pair.sent;
    pair.fate = Box::new(move |n, _| {
        if lose.is_some_and(|k| n == start + k) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let queued = if a_starts {
        pair.a.rekey_ike(pair.now, old_a.our_spi())
    } else {
        pair.b.rekey_ike(pair.now, old_b.our_spi())
    };
    assert!(queued);
    pair.run(6, lose.is_some());
    let ((a, ac), (b, bc)) = assert_agree(&mut pair);
    assert_ne!((a.spi_i, a.spi_r), (old_a.spi_i, old_a.spi_r));
    // The side that started the rekey is the new IKE SA's initiator (RFC 7296 2.18).
    assert_eq!(a.initiator, a_starts);
    // The child SAs moved unchanged: same SPIs and keys, no child SA deleted or made.
    assert_eq!(
        (ac.inbound_spi, &ac.inbound),
        (child_a.inbound_spi, &child_a.inbound)
    );
    assert_eq!(
        (bc.inbound_spi, &bc.outbound),
        (child_b.inbound_spi, &child_b.outbound)
    );
    for events in [&pair.a_events, &pair.b_events] {
        assert_eq!(
            count(events, |e| matches!(e, Event::ChildSaDeleted { .. })),
            0
        );
        assert_eq!(Pair::children(events).len(), 1);
        assert_eq!(
            count(events, |e| matches!(e, Event::IkeSaRekeyed { .. })),
            1
        );
    }
    let rekeyed = |events: &[Event], old: u64, new: u64| {
        events.iter().any(|e| {
            matches!(e, Event::IkeSaRekeyed { old_spi, new_spi, .. }
                if *old_spi == old && *new_spi == new)
        }) && events
            .iter()
            .any(|e| matches!(e, Event::IkeSaDeleted { spi, .. } if *spi == old))
    };
    assert!(rekeyed(&pair.a_events, old_a.our_spi(), a.our_spi()));
    assert!(rekeyed(&pair.b_events, old_b.our_spi(), b.our_spi()));
    if lose.is_some() {
        let starter = if a_starts {
            pair.a.stats()
        } else {
            pair.b.stats()
        };
        assert_eq!(starter.retransmissions_sent, 1);
    }
    // A child rekey on the new IKE SA derives from its SK_d on both sides alike.
    assert!(pair.a.rekey_child(pair.now, a.our_spi(), ac.inbound_spi));
    pair.run(3, false);
    let ((_, ac2), (_, bc2)) = assert_agree(&mut pair);
    assert_ne!(ac2.inbound_spi, ac.inbound_spi);
    assert_ne!(ac2.outbound, ac.outbound);
    assert_eq!(ac2.outbound, bc2.inbound);
}

#[test]
fn ike_rekey_by_the_original_initiator_moves_the_children() {
    ike_rekey_from(true, None);
}

#[test]
fn ike_rekey_by_the_original_responder_moves_the_children() {
    ike_rekey_from(false, None);
}

#[test]
fn ike_rekey_survives_a_lost_request_response_or_delete() {
    for lose in 0..3 {
        ike_rekey_from(lose != 1, Some(lose));
    }
}

/// What the network does to the datagrams after both ends started rekeying.
#[derive(Debug, Clone, Copy)]
enum Network {
    Clean,
    /// Each side's first datagram is held back behind the other's.
    Reorder,
    /// The first response is lost.
    LoseFirstResponse,
    /// The first two datagrams are duplicated and the third lost.
    DuplicateThenLose,
}

/// Both ends start a rekey of their only child SA at once over `net`, and the exchanges run;
/// returns the child each end had before.
fn rekey_the_child_from_both_ends(pair: &mut Pair, net: Network) -> (ChildSa, ChildSa) {
    let (a, b) = (only_ike_sa(&pair.a), only_ike_sa(&pair.b));
    let (old_a, old_b) = (a.children[0].clone(), b.children[0].clone());
    network(pair, net);
    assert!(pair.a.rekey_child(pair.now, a.our_spi(), old_a.inbound_spi));
    assert!(pair.b.rekey_child(pair.now, b.our_spi(), old_b.inbound_spi));
    pair.run(20, true);
    (old_a, old_b)
}

fn network(pair: &mut Pair, network: Network) {
    let start = pair.sent;
    pair.fate = Box::new(move |n, _| match (network, n - start) {
        (Network::Reorder, 0 | 1) => Fate::Delay,
        (Network::LoseFirstResponse, 2) => Fate::Drop,
        (Network::DuplicateThenLose, 0 | 1) => Fate::Duplicate,
        (Network::DuplicateThenLose, 2) => Fate::Drop,
        _ => Fate::Deliver,
    });
}

const NETWORKS: [Network; 4] = [
    Network::Clean,
    Network::Reorder,
    Network::LoseFirstResponse,
    Network::DuplicateThenLose,
];

/// The collisions both ends reported: (A's verdicts, B's verdicts) on their own exchange.
fn collisions(pair: &Pair, child: bool) -> (Vec<bool>, Vec<bool>) {
    let verdicts = |events: &[Event]| {
        events
            .iter()
            .filter_map(|e| match e {
                Event::RekeyCollision {
                    child: c,
                    ours_redundant,
                    ..
                } if c.is_some() == child => Some(*ours_redundant),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    (verdicts(&pair.a_events), verdicts(&pair.b_events))
}

#[test]
fn simultaneous_ike_rekey_keeps_one_new_sa_with_the_children() {
    let mut winners = [0usize; 2];
    for seed in 1..=6u64 {
        for net in NETWORKS {
            let mut pair = established_with_seeds(seed * 10, seed * 10 + 1, None);
            let (old_a, old_b) = (only_ike_sa(&pair.a), only_ike_sa(&pair.b));
            let child_a = old_a.children[0].clone();
            network(&mut pair, net);
            assert!(pair.a.rekey_ike(pair.now, old_a.our_spi()));
            assert!(pair.b.rekey_ike(pair.now, old_b.our_spi()));
            // Long enough for retransmissions and for a liveness check to clear a stray SA.
            pair.run(40, true);
            let context = format!("seed {seed}, {net:?}");
            let ((a, ac), (_, _)) = assert_agree(&mut pair);
            assert_ne!((a.spi_i, a.spi_r), (old_a.spi_i, old_a.spi_r), "{context}");
            assert_eq!(ac.inbound_spi, child_a.inbound_spi, "{context}");
            for events in [&pair.a_events, &pair.b_events] {
                assert_eq!(
                    count(events, |e| matches!(e, Event::ChildSaDeleted { .. })),
                    0,
                    "{context}"
                );
            }
            // 2.8.2: where both ends saw the collision, exactly one found its own exchange
            // redundant, and the survivor is the other end's: that end initiated it.
            match collisions(&pair, false) {
                (a_verdicts, b_verdicts) if !a_verdicts.is_empty() && !b_verdicts.is_empty() => {
                    assert_eq!(a_verdicts.len(), 1, "{context}");
                    assert_eq!(b_verdicts.len(), 1, "{context}");
                    assert_ne!(a_verdicts[0], b_verdicts[0], "{context}");
                    let a_won = !a_verdicts[0];
                    assert_eq!(a.initiator, a_won, "{context}");
                    winners[usize::from(a_won)] += 1;
                }
                // One end's request reached the other after its own rekey finished: refused
                // with TEMPORARY_FAILURE (2.25.2); the finished one survives.
                _ => {}
            }
        }
    }
    assert!(
        winners[0] > 0 && winners[1] > 0,
        "both ends won some collisions: {winners:?}"
    );
}

/// Every child SA each end made and did not keep (`kept`: A's and B's) was deleted on its side.
fn assert_only_the_kept_children_remain(pair: &Pair, kept: (&ChildSa, &ChildSa), context: &str) {
    for (events, kept) in [(&pair.a_events, kept.0), (&pair.b_events, kept.1)] {
        for made in Pair::children(events) {
            assert_eq!(
                child_deleted(events, made.inbound_spi),
                made.inbound_spi != kept.inbound_spi,
                "{context}"
            );
        }
    }
}

#[test]
fn simultaneous_child_rekey_keeps_one_new_child() {
    let mut winners = [0usize; 2];
    for seed in 1..=6u64 {
        for net in NETWORKS {
            let mut pair = established_with_seeds(seed * 10 + 5, seed * 10 + 6, None);
            let (old_a, old_b) = rekey_the_child_from_both_ends(&mut pair, net);
            let context = format!("seed {seed}, {net:?}");
            let ((_, ac), (_, bc)) = assert_agree(&mut pair);
            assert_ne!(ac.inbound_spi, old_a.inbound_spi, "{context}");
            assert_ne!(ac.outbound, old_a.outbound, "{context}");
            assert!(
                child_deleted(&pair.a_events, old_a.inbound_spi),
                "{context}"
            );
            assert!(
                child_deleted(&pair.b_events, old_b.inbound_spi),
                "{context}"
            );
            assert_only_the_kept_children_remain(&pair, (&ac, &bc), &context);
            let (a_verdicts, b_verdicts) = collisions(&pair, true);
            if !a_verdicts.is_empty() && !b_verdicts.is_empty() {
                assert_eq!((a_verdicts.len(), b_verdicts.len()), (1, 1), "{context}");
                assert_ne!(a_verdicts[0], b_verdicts[0], "{context}");
                winners[usize::from(!a_verdicts[0])] += 1;
            }
        }
    }
    assert!(
        winners[0] > 0 && winners[1] > 0,
        "both ends won some collisions: {winners:?}"
    );
}

#[test]
fn ike_rekey_crossing_a_child_rekey_keeps_everything_consistent() {
    for net in NETWORKS {
        let mut pair = established();
        let (a, b) = (only_ike_sa(&pair.a), only_ike_sa(&pair.b));
        network(&mut pair, net);
        assert!(pair.a.rekey_ike(pair.now, a.our_spi()));
        assert!(pair
            .b
            .rekey_child(pair.now, b.our_spi(), b.children[0].inbound_spi));
        pair.run(20, true);
        let ((a2, ac), _) = assert_agree(&mut pair);
        assert_ne!((a2.spi_i, a2.spi_r), (a.spi_i, a.spi_r), "{net:?}");
        assert_ne!(ac.inbound_spi, a.children[0].inbound_spi, "{net:?}");
    }
}

#[test]
fn ike_lifetime_rekeys_before_expiry_and_traffic_keys_stay() {
    let lifetime = Duration::from_secs(600);
    let mut pair = established_with_seeds(3, 4, Some(lifetime));
    let first = only_ike_sa(&pair.a);
    let start = pair.now;
    // Let about three lifetimes pass on the virtual clock (liveness checks tick meanwhile).
    while pair.now - start < lifetime * 3 {
        pair.run(1, true);
    }
    let rekeys = count(&pair.a_events, |e| matches!(e, Event::IkeSaRekeyed { .. }));
    assert!(
        (3..=4).contains(&rekeys),
        "{rekeys} rekeys in three lifetimes"
    );
    let ((a, ac), _) = assert_agree(&mut pair);
    assert_ne!((a.spi_i, a.spi_r), (first.spi_i, first.spi_r));
    // The child SA was never interrupted: the same one throughout.
    assert_eq!(ac.inbound_spi, first.children[0].inbound_spi);
    assert_eq!(
        count(&pair.a_events, |e| matches!(
            e,
            Event::ChildSaDeleted { .. }
        )),
        0
    );
    assert_eq!(
        count(&pair.a_events, |e| matches!(e, Event::IkeSaFailed { .. })),
        0
    );
}

#[test]
fn invalid_spi_is_reported_to_the_peer_rate_limited() {
    let mut pair = established();
    let b_addr = addr(B_ADDR).ip();
    assert!(pair.a.report_invalid_spi(pair.now, b_addr, 0xdead_beef));
    // Within the interval: held back.
    assert!(!pair.a.report_invalid_spi(pair.now, b_addr, 0xdead_bef0));
    // No IKE SA with this address: nothing to send.
    assert!(!pair
        .a
        .report_invalid_spi(pair.now, addr("198.18.9.9:500").ip(), 1));
    pair.run(3, false);
    assert_eq!(pair.a.stats().invalid_spi_sent, 1);
    assert_eq!(pair.a.stats().invalid_spi_rate_limited, 1);
    assert_eq!(pair.b.stats().invalid_spi_received, 1);
    pair.now += Duration::from_secs(2);
    assert!(pair.a.report_invalid_spi(pair.now, b_addr, 0xdead_bef0));
    pair.run(3, false);
    assert_eq!(pair.b.stats().invalid_spi_received, 2);
    // The SAs are untouched.
    assert_agree(&mut pair);
}

#[test]
fn reauthentication_replaces_the_ike_sa_make_before_break() {
    for nat in [false, true] {
        let mut pair = Pair::default_pair();
        pair.nat = nat;
        pair.initiate();
        pair.run(3, false);
        pair.assert_established();
        let old = only_ike_sa(&pair.a);
        let old_child = old.children[0].clone();
        let new_spi = pair.a.reauthenticate(pair.now, old.our_spi()).unwrap();
        pair.run(5, false);
        let ((a, ac), _) = assert_agree(&mut pair);
        assert_eq!(a.our_spi(), new_spi, "nat {nat}");
        assert_ne!((a.spi_i, a.spi_r), (old.spi_i, old.spi_r));
        assert_ne!(ac.inbound_spi, old_child.inbound_spi);
        // The new child SA came up before the old one went (make before break).
        let position = |pred: &dyn Fn(&Event) -> bool| pair.a_events.iter().position(pred);
        let new_up = position(
            &|e| matches!(e, Event::ChildSaEstablished(c) if c.inbound_spi == ac.inbound_spi),
        );
        let old_gone = position(
            &|e| matches!(e, Event::ChildSaDeleted { inbound_spi, .. } if *inbound_spi == old_child.inbound_spi),
        );
        assert!(new_up.unwrap() < old_gone.unwrap(), "nat {nat}");
        assert!(child_deleted(&pair.b_events, old_child.outbound_spi));
        assert_eq!(
            count(&pair.a_events, |e| matches!(
                e,
                Event::IkeSaEstablished { .. }
            )),
            2
        );
    }
}

#[test]
fn ms_ikee_correlated_sa_follows_its_rekeyed_original() {
    let mut pair = Pair::default_pair();
    let original = pair.initiate();
    pair.run(3, false);
    pair.assert_established();
    let correlated = pair
        .a
        .initiate_correlated(pair.now, "to-b", addr(A_ADDR), addr(B_ADDR), original)
        .unwrap();
    pair.run(3, false);
    assert_eq!((pair.a.ike_sas().len(), pair.b.ike_sas().len()), (2, 2));
    // Rekeying the original (from B) keeps the correlated SA on both sides.
    let b_original = pair
        .b
        .ike_sas()
        .into_iter()
        .find(|sa| sa.spi_i == original)
        .unwrap();
    assert!(pair.b.rekey_ike(pair.now, b_original.our_spi()));
    pair.run(5, false);
    assert_eq!((pair.a.ike_sas().len(), pair.b.ike_sas().len()), (2, 2));
    assert!(pair.a.ike_sas().iter().any(|sa| sa.spi_i == correlated));
    // Deleting the new original still takes the correlated SA with it on both sides.
    let new_original = pair
        .a
        .ike_sas()
        .into_iter()
        .find(|sa| sa.spi_i != correlated)
        .unwrap();
    assert!(pair.a.terminate(pair.now, new_original.our_spi()));
    pair.run(5, false);
    assert!(pair.a.ike_sas().is_empty() && pair.b.ike_sas().is_empty());
}

/// Rekeys the child SA from A or B; returns the old and the new child SAs (A's view) and the
/// number of datagrams the rekey took.
fn rekey_child_from(pair: &mut Pair, a_starts: bool) -> (ChildSa, ChildSa, usize) {
    let (a, b) = (only_ike_sa(&pair.a), only_ike_sa(&pair.b));
    let old = a.children[0].clone();
    let start = pair.sent;
    let queued = if a_starts {
        pair.a.rekey_child(pair.now, a.our_spi(), old.inbound_spi)
    } else {
        pair.b
            .rekey_child(pair.now, b.our_spi(), b.children[0].inbound_spi)
    };
    assert!(queued);
    pair.run(6, false);
    let datagrams = pair.sent - start;
    let ((_, new), _) = assert_agree(pair);
    (old, new, datagrams)
}

#[test]
fn pfs_child_rekey_by_either_side_mixes_a_new_key_exchange_into_the_keys() {
    for a_starts in [true, false] {
        for group in [DhGroup::Ecp256, DhGroup::Curve25519, DhGroup::Modp2048] {
            let context = format!("A starts: {a_starts}, {group:?}");
            let mut with_pfs = Pair::established_with_pfs(&[group], &[group]);
            let mut without = Pair::established_with_pfs(&[], &[]);
            let (old, new, datagrams) = rekey_child_from(&mut with_pfs, a_starts);
            let (old_plain, new_plain, _) = rekey_child_from(&mut without, a_starts);
            // RFC 7296 1.2: the IKE_AUTH child takes its keys from the IKE SA, PFS or not.
            assert_eq!(
                (&old.inbound, &old.outbound),
                (&old_plain.inbound, &old_plain.outbound)
            );
            // One CREATE_CHILD_SA exchange and the delete of the old SA; assert_agree checked
            // that both ends derived the same new keys.
            assert_eq!(datagrams, 4, "{context}");
            assert_ne!(new.inbound_spi, old.inbound_spi, "{context}");
            assert!(
                child_deleted(&with_pfs.a_events, old.inbound_spi),
                "{context}"
            );
            // Same seeds, so the same nonces: only g^ir (2.17) makes the keys differ.
            assert_ne!(new.outbound, new_plain.outbound, "{context}");
            assert_ne!(new.inbound, new_plain.inbound, "{context}");
            assert_eq!(with_pfs.a.stats().negotiations_failed, 0, "{context}");
            assert_eq!(with_pfs.b.stats().negotiations_failed, 0, "{context}");
        }
    }
}

#[test]
fn pfs_child_rekey_retries_with_the_group_invalid_ke_payload_asks_for() {
    // A prefers ECP-256 but also takes Curve25519, which is all B accepts: B answers
    // INVALID_KE_PAYLOAD(31) and A sends its KE again (RFC 7296 1.3).
    let mut pair = Pair::established_with_pfs(
        &[DhGroup::Ecp256, DhGroup::Curve25519],
        &[DhGroup::Curve25519],
    );
    let (old, new, datagrams) = rekey_child_from(&mut pair, true);
    assert_eq!(datagrams, 6, "two CREATE_CHILD_SA exchanges and the delete");
    assert_ne!(new.inbound_spi, old.inbound_spi);
    assert!(child_deleted(&pair.a_events, old.inbound_spi));
    assert_eq!(pair.a.stats().negotiations_failed, 0);
    assert_eq!(pair.b.stats().negotiations_failed, 1);
    let asked = pair.b_events.iter().any(|e| {
        matches!(
            e,
            Event::IkeSaFailed {
                reason: Failure::InvalidKe(31),
                ..
            }
        )
    });
    assert!(asked, "{:#?}", pair.b_events);
    // The other way, B's KE is of a group A accepts, which A prefers to its own first choice:
    // no retry.
    let (_, _, datagrams) = rekey_child_from(&mut pair, false);
    assert_eq!(datagrams, 4);
    assert_eq!(pair.a.stats().negotiations_failed, 0);
}

#[test]
fn pfs_required_by_one_side_only_fails_the_rekey_and_keeps_the_old_child() {
    for a_starts in [true, false] {
        let mut pair = Pair::established_with_pfs(&[DhGroup::Ecp256], &[]);
        let (a, b) = (only_ike_sa(&pair.a), only_ike_sa(&pair.b));
        let old = a.children[0].clone();
        if a_starts {
            assert!(pair.a.rekey_child(pair.now, a.our_spi(), old.inbound_spi));
        } else {
            assert!(pair.b.rekey_child(pair.now, b.our_spi(), old.outbound_spi));
        }
        pair.run(6, false);
        // The responder found no proposal; the initiator heard NO_PROPOSAL_CHOSEN.
        let (initiator_events, responder) = if a_starts {
            (&pair.a_events, &pair.b)
        } else {
            (&pair.b_events, &pair.a)
        };
        let refused = initiator_events.iter().any(|e| {
            matches!(
                e,
                Event::IkeSaFailed {
                    reason: Failure::PeerError(NotifyType::NoProposalChosen),
                    ..
                }
            )
        });
        assert!(refused, "A starts: {a_starts}: {initiator_events:#?}");
        assert_eq!(responder.stats().negotiations_failed, 1);
        let ((_, ac), _) = assert_agree(&mut pair);
        assert_eq!(
            (ac.inbound_spi, &ac.inbound),
            (old.inbound_spi, &old.inbound)
        );
        for events in [&pair.a_events, &pair.b_events] {
            assert_eq!(Pair::children(events).len(), 1);
            assert_eq!(
                count(events, |e| matches!(e, Event::ChildSaDeleted { .. })),
                0
            );
        }
    }
}

/// Both ends rekey the child SA at once with PFS, and A's first KE is of a group B does not
/// take: A retries with the group B asks for (RFC 7296 1.3) while B's rekey of the same child
/// runs (2.8.1). Still one new child at both ends, every other one made deleted.
#[test]
fn simultaneous_child_rekey_with_a_pfs_retry_keeps_one_new_child() {
    for seed in 1..=6u64 {
        for net in [Network::Clean, Network::Reorder] {
            let mut a = peer("to-b", "a.example", "b.example", 1, 2);
            let mut b = peer("from-a", "b.example", "a.example", 2, 1);
            a.child.pfs_groups = vec![DhGroup::Ecp256, DhGroup::Curve25519];
            b.child.pfs_groups = vec![DhGroup::Curve25519];
            let mut pair = established_from_configs(
                EngineConfig::new(vec![a]),
                EngineConfig::new(vec![b]),
                (seed * 10 + 7, seed * 10 + 8),
            );
            let (old_a, _) = rekey_the_child_from_both_ends(&mut pair, net);
            let context = format!("seed {seed}, {net:?}");
            let asked = pair.b_events.iter().any(|e| {
                matches!(
                    e,
                    Event::IkeSaFailed {
                        reason: Failure::InvalidKe(31),
                        ..
                    }
                )
            });
            assert!(asked, "B asked for its group: {context}");
            let ((_, ac), (_, bc)) = assert_agree(&mut pair);
            assert_ne!(ac.inbound_spi, old_a.inbound_spi, "{context}");
            assert_only_the_kept_children_remain(&pair, (&ac, &bc), &context);
        }
    }
}

/// The IKE SA's algorithms are the ones the original initiator put first; the original
/// responder prefers others. When the responder rekeys the IKE SA, its KE payload is of the SA's
/// group, so its first proposal must carry the SA's algorithms: the initiator, answering in the
/// order of the proposals (as ours does), would otherwise choose the responder's
/// preferred group and refuse the KE (INVALID_KE_PAYLOAD), every time.
#[test]
fn ike_rekey_by_the_original_responder_keeps_the_algorithms_the_initiator_chose() {
    let mut a = peer("to-b", "a.example", "b.example", 1, 2);
    let mut b = peer("from-a", "b.example", "a.example", 2, 1);
    a.ike_proposals = vec![cbc_modp2048(), gcm_ecp256()];
    b.ike_proposals = vec![gcm_ecp256(), cbc_modp2048()];
    let mut pair = established_from_configs(
        EngineConfig::new(vec![a]),
        EngineConfig::new(vec![b]),
        (71, 72),
    );
    let old_b = only_ike_sa(&pair.b);
    assert!(pair.b.rekey_ike(pair.now, old_b.our_spi()));
    pair.run(6, false);
    let ((a, _), (b, _)) = assert_agree(&mut pair);
    assert_ne!(
        (b.spi_i, b.spi_r),
        (old_b.spi_i, old_b.spi_r),
        "the IKE SA was replaced"
    );
    assert!(!a.initiator && b.initiator);
    for events in [&pair.a_events, &pair.b_events] {
        assert_eq!(
            count(events, |e| matches!(e, Event::IkeSaFailed { .. })),
            0,
            "{events:?}"
        );
        assert_eq!(
            count(events, |e| matches!(e, Event::IkeSaRekeyed { .. })),
            1,
            "{events:?}"
        );
    }
}
