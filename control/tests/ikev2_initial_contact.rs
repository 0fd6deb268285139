//! INITIAL_CONTACT on receipt (RFC 7296 2.4) in the two-peer harness: a peer that rebooted and
//! says so in its new IKE SA makes us delete, without telling it, every other IKE SA with the
//! same identity and their child SAs, down to the shared region; other identities, a
//! reauthentication (make before break) and SAs established after the notify stay. The daemon's
//! other engines get the notify as an event and apply it the same way.
mod common;

use common::region::{small_region, TempRegion};
use common::*;
use control::crypto::SeededRng;
use control::ikev2::{ChildSa, Engine, EngineConfig, Event, InitialContact, RandomSpis, SpiShard};
use control::sa_manager::{ChildLifetimes, SaManager};
use shared::event::SaKey;
use shared::ops::Writer;
use std::net::IpAddr;

const C_ADDR: &str = "198.18.0.3:500";

fn region_manager(name: &str) -> (TempRegion, SaManager) {
    let (path, region) = small_region(&format!("initial-contact-{name}"));
    let manager = SaManager::new(Writer::attach(region).unwrap(), ChildLifetimes::default());
    (path, manager)
}

/// What the daemon does with an engine's events: child SAs into the region and out of it.
fn apply_to_region(manager: &mut SaManager, events: &[Event]) {
    for event in events {
        match event {
            Event::ChildSaEstablished(child) => manager.install(child).unwrap(),
            Event::ChildSaDeleted {
                ike_spi,
                inbound_spi,
                ..
            } => manager
                .remove(control::sa_manager::ChildId {
                    ike_spi: *ike_spi,
                    inbound_spi: *inbound_spi,
                })
                .unwrap(),
            _ => {}
        }
    }
}

fn in_region(manager: &SaManager, child: &ChildSa) -> (bool, bool) {
    let writer = manager.writer();
    let present = |spi, dst: IpAddr| writer.query_sa(SaKey { spi, dst }).is_ok();
    (
        present(child.inbound_spi, child.local.ip()),
        present(child.outbound_spi, child.remote.ip()),
    )
}

fn ip(s: &str) -> IpAddr {
    addr(s).ip()
}

/// B answers A (a.example) and C (c.example), each known by its address.
fn b_config() -> EngineConfig {
    let mut from_a = peer("from-a", "b.example", "a.example", 2, 1);
    from_a.remote_addr = Some(ip(A_ADDR));
    let mut from_c = peer("from-c", "b.example", "c.example", 2, 3);
    from_c.remote_addr = Some(ip(C_ADDR));
    EngineConfig::new(vec![from_a, from_c])
}

fn a_engine(seed: u64) -> Engine {
    let config = EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]);
    Engine::new(config, Box::new(SeededRng::new(seed)), Box::new(RandomSpis))
}

fn c_engine() -> Engine {
    let config = EngineConfig::new(vec![peer("to-b", "c.example", "b.example", 3, 2)]);
    Engine::new(config, Box::new(SeededRng::new(30)), Box::new(RandomSpis))
}

/// `pair.a` (whoever it is now, at `local`) sets up an IKE SA with B; returns B's new child SA
/// and how many datagrams it took.
fn establish_from(pair: &mut Pair, local: &str) -> (ChildSa, usize) {
    let (sent, b_events) = (pair.log.len(), pair.b_events.len());
    pair.a
        .initiate(pair.now, "to-b", addr(local), addr(B_ADDR))
        .unwrap();
    pair.run(3, false);
    let children = Pair::children(&pair.b_events[b_events..]);
    assert_eq!(children.len(), 1, "{:?}", &pair.b_events[b_events..]);
    (children[0].clone(), pair.log.len() - sent)
}

fn b_ike_spis(pair: &Pair) -> Vec<u64> {
    let mut spis: Vec<u64> = pair.b.ike_sas().iter().map(|sa| sa.spi_r).collect();
    spis.sort();
    spis
}

#[test]
fn a_rebooted_peer_replaces_its_stale_sas_and_no_other() {
    let (_region, mut manager) = region_manager("reboot");
    let mut pair = Pair::new(
        EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]),
        b_config(),
    );
    pair.a = a_engine(10);
    let (old, _) = establish_from(&mut pair, A_ADDR);
    pair.a = c_engine();
    let (from_c, _) = establish_from(&mut pair, C_ADDR);
    // C's INITIAL_CONTACT concerned C only: A's SA is still there.
    assert_eq!(pair.b.ike_sas().len(), 2);
    assert_eq!(
        Pair::count(&pair.b_events, |e| matches!(
            e,
            Event::InitialContact(c) if c.peer == "from-c"
        )),
        1
    );
    apply_to_region(&mut manager, &pair.b_events);
    assert_eq!(in_region(&manager, &old), (true, true));

    // A reboots: a fresh engine, the same identity, at the same address.
    pair.a = a_engine(11);
    let b_seen = pair.b_events.len();
    let (new, datagrams) = establish_from(&mut pair, A_ADDR);
    let events = pair.b_events[b_seen..].to_vec();
    apply_to_region(&mut manager, &events);

    // B holds the new IKE SA and C's, not the old one with A.
    let mut expected = vec![new.ike_spi, from_c.ike_spi];
    expected.sort();
    assert_eq!(b_ike_spis(&pair), expected);
    assert!(events.contains(&Event::DeletedOnInitialContact {
        spi: old.ike_spi,
        peer: "from-a".into(),
        by: new.ike_spi,
    }));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::ChildSaDeleted { ike_spi, inbound_spi, .. }
            if *ike_spi == old.ike_spi && *inbound_spi == old.inbound_spi
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::IkeSaDeleted { spi, .. } if *spi == old.ike_spi
    )));
    // Nothing was sent about the old SAs: the four messages of IKE_SA_INIT and IKE_AUTH only,
    // and the new A got nothing it did not know.
    assert_eq!(datagrams, 4);
    assert_eq!(pair.a.stats().unknown_spi, 0);
    // The dataplane no longer has the old child SA, in either direction, nor its policies;
    // C's and the new one are there (two policies each).
    assert_eq!(in_region(&manager, &old), (false, false));
    assert_eq!(in_region(&manager, &from_c), (true, true));
    assert_eq!(in_region(&manager, &new), (true, true));
    assert_eq!(manager.writer().policies().len(), 4);
    // And the new IKE SA works: a liveness check is answered.
    assert!(pair.a.check_liveness(pair.now, pair.a.ike_sas()[0].spi_i));
    pair.run(3, false);
    assert_eq!(pair.a.stats().liveness_answered_by_peer, 1);
}

#[test]
fn a_reauthentication_does_not_delete_the_old_sa_early() {
    let mut pair = Pair::default_pair();
    pair.initiate();
    pair.run(3, false);
    let (old, _) = pair.assert_established();
    let new_spi = pair.a.reauthenticate(pair.now, old.ike_spi).unwrap();
    pair.run(5, false);
    // RFC 7296 2.8.3: no INITIAL_CONTACT in the reauthentication, so B dropped the old SA only
    // on A's delete, after the new child SA was up.
    let b = &pair.b_events;
    // The first IKE SA carried it (A had no other SA with B), the reauthentication did not.
    assert_eq!(
        Pair::count(b, |e| matches!(e, Event::InitialContact(_))),
        1,
        "{b:?}"
    );
    assert!(!b
        .iter()
        .any(|e| matches!(e, Event::DeletedOnInitialContact { .. })));
    let position = |pred: &dyn Fn(&Event) -> bool| b.iter().position(pred).unwrap();
    let new_child_up = position(
        &|e| matches!(e, Event::ChildSaEstablished(c) if c.outbound_spi != old.inbound_spi),
    );
    let old_child_gone = position(
        &|e| matches!(e, Event::ChildSaDeleted { outbound_spi, .. } if *outbound_spi == old.inbound_spi),
    );
    assert!(new_child_up < old_child_gone, "{b:?}");
    assert_eq!(pair.a.ike_sas().len(), 1);
    assert_eq!(pair.a.ike_sas()[0].spi_i, new_spi);
    assert_eq!(pair.b.ike_sas().len(), 1);
}

/// The daemon runs several engines; the one that got INITIAL_CONTACT reports it, the daemon
/// hands it to the others, which delete their own stale SAs with the peer.
#[test]
fn another_engine_applies_the_initial_contact_it_is_handed() {
    let (_region, mut manager) = region_manager("shards");
    let shard = |index| {
        let mut config = b_config();
        config.spi_shard = SpiShard { index, count: 2 };
        config
    };
    let mut pair = Pair::new(
        EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]),
        shard(0),
    );
    pair.a = a_engine(10);
    pair.b = Engine::new(shard(0), Box::new(SeededRng::new(20)), Box::new(RandomSpis));
    let (old, _) = establish_from(&mut pair, A_ADDR);
    apply_to_region(&mut manager, &pair.b_events);
    // The rebooted A lands on B's other engine.
    let mut b0 = std::mem::replace(
        &mut pair.b,
        Engine::new(shard(1), Box::new(SeededRng::new(21)), Box::new(RandomSpis)),
    );
    pair.a = a_engine(11);
    pair.b_events.clear();
    let (new, _) = establish_from(&mut pair, A_ADDR);
    apply_to_region(&mut manager, &pair.b_events);
    let contact: InitialContact = pair
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::InitialContact(c) => Some(c.clone()),
            _ => None,
        })
        .expect("engine 1 reports the INITIAL_CONTACT");
    assert_eq!(
        (contact.spi, contact.peer.as_str()),
        (new.ike_spi, "from-a")
    );

    // Handed a notify older than its SA, or one that spares it, engine 0 keeps it.
    let mut earlier = contact.clone();
    earlier.started_at = pair.now - std::time::Duration::from_secs(1);
    assert_eq!(b0.apply_initial_contact(pair.now, &earlier), 0);
    let mut sparing = contact.clone();
    sparing.spared.push(old.ike_spi);
    assert_eq!(b0.apply_initial_contact(pair.now, &sparing), 0);
    assert_eq!(b0.ike_sas().len(), 1);

    assert_eq!(b0.apply_initial_contact(pair.now, &contact), 1);
    assert!(b0.ike_sas().is_empty());
    assert!(b0.poll_transmit().is_none(), "nothing is sent to the peer");
    let events: Vec<Event> = std::iter::from_fn(|| b0.poll_event()).collect();
    assert!(events.contains(&Event::DeletedOnInitialContact {
        spi: old.ike_spi,
        peer: "from-a".into(),
        by: new.ike_spi,
    }));
    apply_to_region(&mut manager, &events);
    assert_eq!(in_region(&manager, &old), (false, false));
    assert_eq!(in_region(&manager, &new), (true, true));
    assert_eq!(manager.writer().policies().len(), 2);
    // Applied again (the daemon never does, but it is harmless): nothing left to delete.
    assert_eq!(b0.apply_initial_contact(pair.now, &contact), 0);
}

/// The sending side (RFC 7296 2.4): only an IKE SA started while no other exists with the peer
/// carries INITIAL_CONTACT, so a second one leaves the first in place at the peer.
#[test]
fn a_second_ike_sa_with_the_same_peer_leaves_the_first() {
    let mut pair = Pair::default_pair();
    pair.initiate();
    pair.run(3, false);
    pair.initiate();
    pair.run(3, false);
    assert_eq!(pair.a.ike_sas().len(), 2);
    assert_eq!(pair.b.ike_sas().len(), 2);
    let b = &pair.b_events;
    assert_eq!(Pair::count(b, |e| matches!(e, Event::InitialContact(_))), 1);
    assert_eq!(
        Pair::count(b, |e| matches!(e, Event::IkeSaDeleted { .. })),
        0
    );
}

/// A's two IKE SAs (our SPIs) are up at both ends: B saw `contacts` INITIAL_CONTACTs and
/// deleted nothing for them.
fn assert_both_stay(pair: &Pair, (first, second): (u64, u64), contacts: usize) {
    let b = &pair.b_events;
    assert_eq!(
        Pair::count(b, |e| matches!(e, Event::InitialContact(_))),
        contacts,
        "{b:?}"
    );
    assert_eq!(
        Pair::count(b, |e| matches!(e, Event::DeletedOnInitialContact { .. })),
        0,
        "{b:?}"
    );
    let ours: Vec<u64> = pair.a.ike_sas().iter().map(|sa| sa.spi_i).collect();
    assert!(ours.contains(&first) && ours.contains(&second), "{ours:?}");
    assert_eq!(
        pair.b.ike_sas().iter().filter(|sa| sa.established).count(),
        2
    );
}

/// A second IKE SA started while the first has not sent its IKE_AUTH takes the first one's
/// INITIAL_CONTACT away: should the first IKE_SA_INIT be lost, the second one comes up first,
/// and an INITIAL_CONTACT would then delete it at the peer (RFC 7296 2.4).
#[test]
fn a_second_ike_sa_started_early_withdraws_the_initial_contact() {
    let mut pair = Pair::default_pair();
    let first = pair.initiate();
    let second = pair
        .a
        .initiate_beside_others(pair.now, "to-b", addr(A_ADDR), addr(B_ADDR))
        .unwrap();
    pair.fate = Box::new(|n, _| if n == 0 { Fate::Drop } else { Fate::Deliver });
    pair.run(1, false);
    assert_eq!(pair.b.ike_sas().len(), 1, "the second IKE SA is up first");
    pair.run(4, true);
    assert_both_stay(&pair, (first, second), 0);
}

/// The receiving side: an IKE SA that came up while the one saying INITIAL_CONTACT was being
/// negotiated (here its IKE_AUTH request was lost once) is from the peer's new life too, and
/// stays; only those established before the new one's IKE_SA_INIT are stale (RFC 7296 2.4).
#[test]
fn an_initial_contact_spares_an_ike_sa_that_came_up_while_it_was_negotiated() {
    let mut pair = Pair::default_pair();
    let first = pair.initiate();
    // Datagrams 0 and 1 are the IKE_SA_INIT exchange, 2 the IKE_AUTH request.
    pair.fate = Box::new(|n, _| if n == 2 { Fate::Drop } else { Fate::Deliver });
    pair.run(1, false);
    assert!(pair.b.ike_sas().iter().all(|sa| !sa.established));
    pair.now += std::time::Duration::from_millis(10);
    let second = pair
        .a
        .initiate_beside_others(pair.now, "to-b", addr(A_ADDR), addr(B_ADDR))
        .unwrap();
    pair.run(1, false);
    assert_eq!(
        pair.b.ike_sas().iter().filter(|sa| sa.established).count(),
        1
    );
    pair.run(4, true);
    assert_both_stay(&pair, (first, second), 1);
}

/// The identity is the remote ID, not the configuration: A, rebooted at another address (C_ADDR),
/// lands on B's configuration for that address, which has A's remote ID too; its INITIAL_CONTACT
/// deletes the old IKE SA made under the other configuration.
#[test]
fn an_initial_contact_covers_every_configuration_of_the_same_identity() {
    let mut from_a = peer("from-a", "b.example", "a.example", 2, 1);
    from_a.remote_addr = Some(ip(A_ADDR));
    let mut moved = peer("from-a-moved", "b.example", "a.example", 2, 1);
    moved.remote_addr = Some(ip(C_ADDR));
    let mut pair = Pair::new(
        EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]),
        EngineConfig::new(vec![from_a, moved]),
    );
    pair.a = a_engine(10);
    let (old, _) = establish_from(&mut pair, A_ADDR);
    pair.a = a_engine(11);
    let (new, _) = establish_from(&mut pair, C_ADDR);
    assert!(pair.b_events.contains(&Event::DeletedOnInitialContact {
        spi: old.ike_spi,
        peer: "from-a".into(),
        by: new.ike_spi,
    }));
    assert_eq!(b_ike_spis(&pair), vec![new.ike_spi]);
}
