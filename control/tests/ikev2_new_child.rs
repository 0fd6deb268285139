//! CREATE_CHILD_SA for another child SA (RFC 7296 1.3.1) in the two-peer harness: either end
//! adds one to an established IKE SA; with PFS and the INVALID_KE_PAYLOAD retry (1.3); under
//! loss and duplication; crossing a rekey of the IKE SA (2.25); a refused one leaves the IKE SA
//! and its first child as they were; a second request while one is under way is not sent; an
//! IKE SA whose child SA was deleted gets a new one (what an ACQUIRE asks for). Every test ends
//! by checking that both ends hold the same child SAs with mirrored SPIs and keys.
mod common;

use common::*;
use control::ikev2::{ChildSa, Event, Failure, IkeSaInfo};
use control::wire::ikev2::{DhGroup, NotifyType};

fn only_ike_sa(sas: Vec<IkeSaInfo>) -> IkeSaInfo {
    assert_eq!(sas.len(), 1, "{sas:#?}");
    sas.into_iter().next().unwrap()
}

/// Both ends hold one IKE SA with the same SPIs, each child SA of A has its mirror at B (SPIs
/// and keys swapped) and none is left over. The IKE SA still works: a liveness check from A is
/// answered without integrity failures. Returns A's child SAs.
fn assert_mirrored(pair: &mut Pair) -> Vec<ChildSa> {
    let (a, b) = (only_ike_sa(pair.a.ike_sas()), only_ike_sa(pair.b.ike_sas()));
    assert!(a.established && b.established);
    assert_eq!((a.spi_i, a.spi_r), (b.spi_i, b.spi_r));
    assert_eq!(a.children.len(), b.children.len(), "{a:#?}\n{b:#?}");
    for ac in &a.children {
        let bc = b
            .children
            .iter()
            .find(|bc| bc.inbound_spi == ac.outbound_spi)
            .unwrap_or_else(|| panic!("no mirror at B of {ac:#?}"));
        assert_eq!(bc.outbound_spi, ac.inbound_spi);
        assert_eq!((&ac.inbound, &ac.outbound), (&bc.outbound, &bc.inbound));
        assert_eq!(ac.ike_spi, a.our_spi());
        assert_eq!(bc.ike_spi, b.our_spi());
    }
    let answered = pair.a.stats().liveness_answered_by_peer;
    assert!(pair.a.check_liveness(pair.now, a.our_spi()));
    pair.run(3, false);
    assert!(pair.a.stats().liveness_answered_by_peer > answered);
    assert_eq!(pair.a.stats().integrity_failures, 0);
    assert_eq!(pair.b.stats().integrity_failures, 0);
    a.children
}

/// Asks A or B for another child SA in the IKE SA; returns whether the engine took the request.
fn create_child(pair: &mut Pair, a_starts: bool) -> bool {
    let engine = if a_starts { &mut pair.a } else { &mut pair.b };
    let spi = only_ike_sa(engine.ike_sas()).our_spi();
    engine.create_child(pair.now, spi)
}

/// The child SAs of `after` that were not in `before` (by inbound SPI).
fn added(before: &[ChildSa], after: &[ChildSa]) -> Vec<ChildSa> {
    after
        .iter()
        .filter(|c| !before.iter().any(|b| b.inbound_spi == c.inbound_spi))
        .cloned()
        .collect()
}

fn refused_with(events: &[Event], notify: NotifyType) -> bool {
    events.iter().any(
        |e| matches!(e, Event::IkeSaFailed { reason: Failure::PeerError(n), .. } if *n == notify),
    )
}

#[test]
fn either_end_adds_a_child_sa_to_the_ike_sa() {
    for a_starts in [true, false] {
        let mut pair = Pair::established_with_pfs(&[], &[]);
        let first = assert_mirrored(&mut pair);
        let start = pair.sent;
        assert!(create_child(&mut pair, a_starts));
        pair.run(3, false);
        assert_eq!(
            pair.sent - start,
            2,
            "one CREATE_CHILD_SA exchange, no delete"
        );
        let children = assert_mirrored(&mut pair);
        let new = added(&first, &children);
        assert_eq!((children.len(), new.len()), (2, 1), "A starts: {a_starts}");
        // The configured selectors, fresh keys; the first child stays as it was.
        assert_eq!(
            (&new[0].local_ts, &new[0].remote_ts),
            (&first[0].local_ts, &first[0].remote_ts)
        );
        assert_ne!(new[0].outbound, first[0].outbound);
        assert_ne!(new[0].inbound, first[0].inbound);
        assert!(children.iter().any(|c| c.inbound == first[0].inbound));
        for events in [&pair.a_events, &pair.b_events] {
            let up = events
                .iter()
                .filter(|e| matches!(e, Event::ChildSaEstablished(_)))
                .count();
            assert_eq!(up, 2);
            assert!(!events
                .iter()
                .any(|e| matches!(e, Event::ChildSaDeleted { .. })));
        }
        // And a third.
        assert!(create_child(&mut pair, a_starts));
        pair.run(3, false);
        assert_eq!(assert_mirrored(&mut pair).len(), 3);
        assert_eq!(pair.a.stats().negotiations_failed, 0);
        assert_eq!(pair.b.stats().negotiations_failed, 0);
    }
}

#[test]
fn a_new_child_sa_with_pfs_retries_with_the_group_invalid_ke_payload_asks_for() {
    // A prefers ECP-256 but also takes Curve25519, which is all B accepts.
    let mut pair = Pair::established_with_pfs(
        &[DhGroup::Ecp256, DhGroup::Curve25519],
        &[DhGroup::Curve25519],
    );
    let start = pair.sent;
    assert!(create_child(&mut pair, true));
    pair.run(3, false);
    assert_eq!(pair.sent - start, 4, "two CREATE_CHILD_SA exchanges");
    assert!(pair.b_events.iter().any(|e| matches!(
        e,
        Event::IkeSaFailed {
            reason: Failure::InvalidKe(31),
            ..
        }
    )));
    let first = pair.a.ike_sas()[0].children[0].clone();
    let new = added(&[first], &assert_mirrored(&mut pair));
    assert_eq!(new.len(), 1);
    assert_eq!(pair.a.stats().negotiations_failed, 0);
}

#[test]
fn a_new_child_sa_survives_loss_and_duplication() {
    // 0: the request lost, 1: the response lost, 2: the request twice, 3: the response twice.
    for case in 0..4 {
        let mut pair = Pair::established_with_pfs(&[], &[]);
        let start = pair.sent;
        pair.fate = Box::new(move |n, _| match (case, n - start) {
            (0, 0) | (1, 1) => Fate::Drop,
            (2, 0) | (3, 1) => Fate::Duplicate,
            _ => Fate::Deliver,
        });
        assert!(create_child(&mut pair, true));
        pair.run(4, true);
        assert_eq!(assert_mirrored(&mut pair).len(), 2, "case {case}");
        if case == 1 || case == 2 {
            assert!(
                pair.b.stats().retransmitted_requests_answered >= 1,
                "case {case}"
            );
        }
        assert_eq!(pair.a.stats().negotiations_failed, 0, "case {case}");
        assert_eq!(pair.b.stats().negotiations_failed, 0, "case {case}");
    }
}

/// B rekeys the IKE SA while A's request for a new child is in flight: the new child ends up
/// in the new IKE SA at both ends.
#[test]
fn a_new_child_sa_crossing_an_ike_rekey_moves_to_the_new_ike_sa() {
    for a_first in [true, false] {
        let mut pair = Pair::established_with_pfs(&[], &[]);
        let old = only_ike_sa(pair.a.ike_sas());
        let b_spi = only_ike_sa(pair.b.ike_sas()).our_spi();
        let now = pair.now;
        if a_first {
            assert!(create_child(&mut pair, true));
            assert!(pair.b.rekey_ike(now, b_spi));
        } else {
            assert!(pair.b.rekey_ike(now, b_spi));
            assert!(create_child(&mut pair, true));
        }
        // B, rekeying the IKE SA, refuses the new child with TEMPORARY_FAILURE (RFC 7296
        // 2.25.2); A asks again in the new IKE SA 2 to 6 s later (2.25).
        pair.run(8, true);
        let children = assert_mirrored(&mut pair);
        assert_eq!(
            children.len(),
            2,
            "A first: {a_first}: {:#?}",
            pair.a_events
        );
        assert!(refused_with(&pair.a_events, NotifyType::TemporaryFailure));
        let new = only_ike_sa(pair.a.ike_sas());
        assert_ne!((new.spi_i, new.spi_r), (old.spi_i, old.spi_r));
    }
}

#[test]
fn a_refused_child_sa_leaves_the_ike_sa_and_its_first_child() {
    // A requires PFS, B refuses it: NO_PROPOSAL_CHOSEN (RFC 7296 1.3.1, 2.21.3).
    let mut pair = Pair::established_with_pfs(&[DhGroup::Ecp256], &[]);
    let first = assert_mirrored(&mut pair);
    assert!(create_child(&mut pair, true));
    pair.run(3, false);
    assert!(
        refused_with(&pair.a_events, NotifyType::NoProposalChosen),
        "{:#?}",
        pair.a_events
    );
    let children = assert_mirrored(&mut pair);
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].inbound, first[0].inbound);
    assert!(!pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::IkeSaDeleted { .. } | Event::ChildSaDeleted { .. })));
}

#[test]
fn a_child_sa_under_way_is_not_asked_for_twice() {
    let mut pair = Pair::established_with_pfs(&[], &[]);
    let start = pair.sent;
    assert!(create_child(&mut pair, true));
    assert!(create_child(&mut pair, true));
    pair.run(3, false);
    assert!(create_child(&mut pair, true));
    pair.run(3, false);
    assert_eq!(pair.sent - start, 4, "two exchanges for three requests");
    assert_eq!(assert_mirrored(&mut pair).len(), 3);
}

#[test]
fn an_ike_sa_whose_child_sa_was_deleted_gets_a_new_one() {
    let mut pair = Pair::established_with_pfs(&[], &[]);
    let first = assert_mirrored(&mut pair);
    let b = only_ike_sa(pair.b.ike_sas());
    assert!(pair
        .b
        .terminate_child(pair.now, b.our_spi(), b.children[0].inbound_spi));
    pair.run(3, false);
    assert!(assert_mirrored(&mut pair).is_empty());
    assert!(create_child(&mut pair, true));
    pair.run(3, false);
    let children = assert_mirrored(&mut pair);
    assert_eq!(children.len(), 1);
    assert_ne!(children[0].inbound_spi, first[0].inbound_spi);
    assert_ne!(children[0].inbound, first[0].inbound);
}
