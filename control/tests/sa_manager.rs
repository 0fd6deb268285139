//! Negotiated child SAs land in a real shared region with the keys both peers derived, with
//! their policies; dataplane events become engine actions; delete removes everything. Inbound
//! SPIs come from the region's `get_spi` (the dataplane's one-access lookup) and reserved ones
//! are released when no SA takes them.
mod common;

use common::region::small_region;
use common::*;
use control::crypto::SeededRng;
use control::ikev2::{Engine, EngineConfig, SpiSource};
use control::sa_manager::{Action2Engine, ChildId, ChildLifetimes, SaManager, LARVAL_TIMEOUT};
use shared::event::{Event as RegionEvent, ExchangeInfoFlags, FlowTuple, SaKey};
use shared::inspect;
use shared::ops::Writer;
use shared::policy::{Action, SaTemplate};
use shared::reader::Reader;
use shared::region::Region;
use shared::sa::{Direction, Mode, SlotState};
use std::time::Instant;

#[test]
fn child_sas_and_policies_are_installed_queried_and_removed() {
    let (_path, region) = small_region("sa-manager");
    let mut manager = SaManager::new(
        Writer::attach(region.clone()).unwrap(),
        ChildLifetimes::default(),
    );
    let dataplane = Reader::attach(region.clone()).unwrap();

    let mut pair = Pair::default_pair();
    pair.nat = true;
    pair.initiate();
    pair.run(3, false);
    let (child, peer_child) = pair.assert_established();
    manager.install(&child).unwrap();

    let writer = manager.writer();
    let inbound = writer
        .query_sa(SaKey {
            spi: child.inbound_spi,
            dst: child.local.ip(),
        })
        .unwrap();
    let outbound = writer
        .query_sa(SaKey {
            spi: child.outbound_spi,
            dst: child.remote.ip(),
        })
        .unwrap();
    let (inbound, outbound) = (inbound.config.unwrap(), outbound.config.unwrap());
    assert_eq!(inbound.direction, Direction::In);
    assert_eq!(outbound.direction, Direction::Out);
    // The region holds the keys the peer uses in the opposite direction.
    assert_eq!(*inbound.enc_key, *peer_child.outbound.encr);
    assert_eq!(*outbound.enc_key, *peer_child.inbound.encr);
    assert_eq!(inbound.suite, peer_child.suite);
    assert_eq!(
        outbound.encap.map(|e| (e.src_port, e.dst_port)),
        Some((4500, 4500))
    );
    assert_eq!(inbound.reqid, outbound.reqid);
    // One local and one remote /24: an outbound and an inbound protect rule.
    let policies = writer.policies();
    assert_eq!(policies.len(), 2);
    drop(writer);

    // Dataplane events become engine actions.
    let id = ChildId {
        ike_spi: child.ike_spi,
        inbound_spi: child.inbound_spi,
    };
    let inbound_key = SaKey {
        spi: child.inbound_spi,
        dst: child.local.ip(),
    };
    let outbound_key = SaKey {
        spi: child.outbound_spi,
        dst: child.remote.ip(),
    };
    dataplane
        .emit(&RegionEvent::SoftExpire { sa: outbound_key })
        .unwrap();
    dataplane
        .emit(&RegionEvent::IdleExpire { sa: inbound_key })
        .unwrap();
    dataplane
        .emit(&RegionEvent::HardExpire {
            sa: SaKey {
                spi: 0x1234,
                dst: child.local.ip(),
            },
        })
        .unwrap();
    let flow = FlowTuple {
        src: child.local.ip(),
        dst: child.remote.ip(),
        proto: 6,
        src_port: 1,
        dst_port: 2,
    };
    let outbound_policy = policies
        .iter()
        .find(|(_, p)| p.direction == Direction::Out)
        .unwrap()
        .0;
    dataplane
        .emit(&RegionEvent::Acquire {
            policy_id: outbound_policy,
            flow,
            flags: ExchangeInfoFlags::default(),
        })
        .unwrap();
    let actions = manager.poll_actions();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert_eq!(actions[0], Action2Engine::Rekey(id));
    assert_eq!(actions[1], Action2Engine::Delete(id));
    assert!(
        matches!(actions[2], Action2Engine::Initiate { template, .. } if template.dst == child.remote.ip())
    );

    // A reader that never reports quiescence blocks policy removal; nothing is lost.
    assert!(manager.remove(id).is_err());
    assert_eq!(manager.installed().count(), 1);
    drop(dataplane);
    manager.remove(id).unwrap();
    assert!(manager.writer().query_sa(inbound_key).is_err());
    assert!(manager.writer().query_sa(outbound_key).is_err());
    assert!(manager.writer().policies().is_empty());
    assert_eq!(manager.installed().count(), 0);
    // Removing again is harmless.
    manager.remove(id).unwrap();
}

/// A pair whose A takes its inbound SPIs from `manager`'s region.
fn pair_with_region_spis(manager: &SaManager) -> Pair {
    let mut pair = Pair::default_pair();
    pair.a = Engine::new(
        EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]),
        Box::new(SeededRng::new(1)),
        Box::new(manager.spi_source()),
    );
    pair
}

/// Whether the SA with this SPI sits in its SPI's own slot (the dataplane's fast path).
fn in_own_slot(region: &Region, spi: u32, state: SlotState) -> bool {
    let slot = region.sad().spi_slot(spi).unwrap();
    inspect::sa_info(region, slot).is_some_and(|info| info.key.spi == spi && info.state == state)
}

#[test]
fn negotiated_inbound_spis_come_from_the_region_and_take_the_fast_path() {
    let (_path, region) = small_region("spi");
    let mut manager = SaManager::new(
        Writer::attach(region.clone()).unwrap(),
        ChildLifetimes::default(),
    );
    let mut pair = pair_with_region_spis(&manager);
    pair.initiate();
    pair.run(3, false);
    let (child, _) = pair.assert_established();
    // Reserved (larval) until the SA manager installs it, then live in the same slot.
    assert!(in_own_slot(&region, child.inbound_spi, SlotState::Larval));
    manager.install(&child).unwrap();
    assert!(in_own_slot(&region, child.inbound_spi, SlotState::Live));
    // A rekeyed child's SPI too; the old pair goes.
    let ike_spi = pair.a.ike_sas()[0].spi_i;
    assert!(pair.a.rekey_child(pair.now, ike_spi, child.inbound_spi));
    pair.run(3, false);
    let new = Pair::children(&pair.a_events).pop().unwrap();
    assert_ne!(new.inbound_spi, child.inbound_spi);
    manager.install(&new).unwrap();
    manager
        .remove(ChildId {
            ike_spi,
            inbound_spi: child.inbound_spi,
        })
        .unwrap();
    assert!(in_own_slot(&region, new.inbound_spi, SlotState::Live));
    let sas = inspect::list_sas(&region);
    assert_eq!(sas.len(), 2, "the new pair only: {sas:?}");
    assert!(sas.iter().all(|s| s.state == SlotState::Live));

    // ESP on an unknown SPI: the dataplane's event becomes an INVALID_SPI to the peer.
    let dataplane = Reader::attach(region.clone()).unwrap();
    let peer_ip = addr(B_ADDR).ip();
    dataplane
        .emit(&RegionEvent::UnknownSpi {
            sa: SaKey {
                spi: 0x0bad_5a1d,
                dst: addr(A_ADDR).ip(),
            },
            src: peer_ip,
        })
        .unwrap();
    let actions = manager.poll_actions();
    assert_eq!(
        actions,
        vec![Action2Engine::InvalidSpi {
            peer: peer_ip,
            spi: 0x0bad_5a1d
        }]
    );
    assert!(pair.a.report_invalid_spi(pair.now, peer_ip, 0x0bad_5a1d));
    pair.run(3, false);
    assert_eq!(pair.b.stats().invalid_spi_received, 1);
}

#[test]
fn reserved_spis_are_released_on_failure_and_after_a_timeout() {
    let (_path, region) = small_region("larval");
    let mut manager = SaManager::new(
        Writer::attach(region.clone()).unwrap(),
        ChildLifetimes::default(),
    );
    // IKE_AUTH is never answered: A gives up, and the SPI it reserved for the child is freed.
    let mut pair = pair_with_region_spis(&manager);
    pair.fate = Box::new(|n, _| if n >= 2 { Fate::Drop } else { Fate::Deliver });
    pair.initiate();
    pair.run(1, false);
    let reserved = inspect::list_sas(&region);
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0].state, SlotState::Larval);
    pair.run(20, true);
    assert!(pair.a.ike_sas().is_empty());
    assert!(inspect::list_sas(&region).is_empty(), "released on failure");

    // A reservation nobody reports: released once it is older than the timeout.
    let mut spis = manager.spi_source();
    let spi = spis.allocate(&mut SeededRng::new(3), addr(A_ADDR).ip(), addr(B_ADDR).ip());
    assert!(in_own_slot(&region, spi, SlotState::Larval));
    assert_eq!(manager.release_stale_spis(Instant::now()), 0);
    assert_eq!(
        manager.release_stale_spis(Instant::now() + LARVAL_TIMEOUT),
        1
    );
    assert!(inspect::list_sas(&region).is_empty());
}

/// Trap rules (strongSwan's trap policies): an outbound protect rule with no SA behind it, so
/// that the dataplane raises ACQUIREs; the negotiated child's rules come before it, and it stays
/// when the child goes.
#[test]
fn trap_rules_raise_acquires_and_yield_to_the_negotiated_rules() {
    let (_path, region) = small_region("trap");
    let mut manager = SaManager::new(
        Writer::attach(region.clone()).unwrap(),
        ChildLifetimes::default(),
    );
    let template = SaTemplate {
        mode: Mode::Tunnel,
        src: addr(A_ADDR).ip(),
        dst: addr(B_ADDR).ip(),
    };
    let ids = manager
        .install_trap(&[subnet(1)], &[subnet(2)], template)
        .unwrap();
    assert_eq!(ids.len(), 1, "one outbound rule for one pair of /24s");
    let trap = manager.writer().policies();
    assert_eq!(trap.len(), 1);
    let (trap_id, trap_rule) = trap[0];
    assert_eq!(trap_rule.direction, Direction::Out);
    let Action::Protect {
        reqid: trap_reqid, ..
    } = trap_rule.action
    else {
        panic!("{trap_rule:?}")
    };
    let dataplane = Reader::attach(region.clone()).unwrap();
    assert_eq!(
        dataplane.outbound(trap_reqid).unwrap(),
        None,
        "no SA behind it"
    );
    dataplane
        .emit(&RegionEvent::Acquire {
            policy_id: trap_id,
            flow: FlowTuple {
                src: "198.18.1.2".parse().unwrap(),
                dst: "198.18.2.2".parse().unwrap(),
                proto: 1,
                src_port: 0,
                dst_port: 0,
            },
            flags: ExchangeInfoFlags::default(),
        })
        .unwrap();
    assert_eq!(
        manager.poll_actions(),
        vec![Action2Engine::Initiate {
            policy_id: trap_id,
            template
        }]
    );

    let mut pair = Pair::default_pair();
    pair.initiate();
    pair.run(3, false);
    let (child, _) = pair.assert_established();
    manager.install(&child).unwrap();
    let rules = manager.writer().policies();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[2], (trap_id, trap_rule), "the trap comes last");
    let Action::Protect { reqid, .. } = rules[0].1.action else {
        panic!("{rules:?}")
    };
    assert_ne!(reqid, trap_reqid);
    assert!(dataplane.outbound(reqid).unwrap().is_some());

    drop(dataplane);
    manager
        .remove(ChildId {
            ike_spi: child.ike_spi,
            inbound_spi: child.inbound_spi,
        })
        .unwrap();
    assert_eq!(manager.writer().policies(), vec![(trap_id, trap_rule)]);
}
