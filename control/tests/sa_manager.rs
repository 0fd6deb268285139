//! Negotiated child SAs land in a real shared region with the keys both peers derived, with
//! their policies; dataplane events become engine actions; delete removes everything. Inbound
//! SPIs come from the region's `get_spi` (the dataplane's one-access lookup) and reserved ones
//! are released when no SA takes them. A restarted manager takes over what its predecessor left.
mod common;

use common::region::{ping_acquire, small_region, TempRegion};
use common::*;
use control::crypto::SeededRng;
use control::ikev2::{ChildSa, Engine, EngineConfig, SpiSource};
use control::sa_manager::{Action2Engine, ChildId, ChildLifetimes, SaManager, LARVAL_TIMEOUT};
use shared::event::{Event as RegionEvent, ExchangeInfoFlags, FlowTuple, SaKey};
use shared::inspect;
use shared::ops::Writer;
use shared::policy::{Action, Policy, PolicyFlags, Prefix, SaTemplate, Selector};
use shared::reader::Reader;
use shared::region::Region;
use shared::sa::{Direction, Mode, SlotState};
use std::net::IpAddr;
use std::sync::Arc;
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
    dataplane.emit(&ping_acquire(trap_id)).unwrap();
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

/// What a killed iked leaves in the region for the next one: the SAs and rules of a child SA
/// (with the peer B_ADDR), a trap rule, an SPI reserved for a negotiation, and a static rule (priority 10, reqid 40, as `gateway
/// load` writes one) that was there before. Then the restart: a new SA manager on the same
/// file takes over. Returns the region (its file guard first), the new manager, the static rule
/// and the predecessor's child SA.
fn restarted_after_a_child_sa(name: &str) -> (TempRegion, Arc<Region>, SaManager, Policy, ChildSa) {
    let (path, region) = small_region(name);
    let template = SaTemplate {
        mode: Mode::Tunnel,
        src: addr(A_ADDR).ip(),
        dst: addr(B_ADDR).ip(),
    };
    let prefix = |third| Prefix::new(IpAddr::from([198, 18, third, 0]), 24);
    let static_rule = Policy {
        priority: 10,
        direction: Direction::Out,
        selector: Selector {
            src: prefix(3),
            dst: prefix(4),
            proto: None,
            src_ports: (0, u16::MAX),
            dst_ports: (0, u16::MAX),
            icmp_type: None,
            icmp_code: None,
        },
        action: Action::Protect {
            reqid: 40,
            template,
        },
        flags: PolicyFlags::default(),
    };
    Writer::attach(region.clone())
        .unwrap()
        .add_policy(&static_rule)
        .unwrap();

    let mut manager = SaManager::new(
        Writer::attach(region.clone()).unwrap(),
        ChildLifetimes::default(),
    );
    manager
        .install_trap(&[subnet(1)], &[subnet(2)], template)
        .unwrap();
    let mut pair = pair_with_region_spis(&manager);
    pair.initiate();
    pair.run(3, false);
    let (child, _) = pair.assert_established();
    manager.install(&child).unwrap();
    assert!(
        reqid_of(&manager, &child) > 40,
        "a reqid above the static rule's"
    );
    assert_eq!(manager.writer().policies().len(), 4);
    // A negotiation under way: an SPI reserved, no SA yet.
    let reserved =
        manager
            .spi_source()
            .allocate(&mut SeededRng::new(5), addr(A_ADDR).ip(), addr(B_ADDR).ip());
    let larval = |region: &Region| {
        inspect::list_sas(region)
            .into_iter()
            .filter(|sa| sa.state == SlotState::Larval)
            .map(|sa| sa.key.spi)
            .collect::<Vec<u32>>()
    };
    assert_eq!(larval(&region), vec![reserved]);

    // The process dies: its writer lock goes with its last descriptor of the file.
    drop((pair, manager, region));
    let region = Arc::new(Region::open(&path.0).unwrap());
    let mut manager = SaManager::new(
        Writer::attach(region.clone()).unwrap(),
        ChildLifetimes::default(),
    );
    assert_eq!(manager.adopt_predecessor().unwrap(), 1);
    assert_eq!(
        larval(&region),
        Vec::<u32>::new(),
        "the dead negotiation's SPI is free again"
    );
    (path, region, manager, static_rule, child)
}

/// The reqid of an installed child SA (its outbound SA's).
fn reqid_of(manager: &SaManager, child: &ChildSa) -> u32 {
    let key = SaKey {
        spi: child.outbound_spi,
        dst: child.remote.ip(),
    };
    manager
        .writer()
        .query_sa(key)
        .unwrap()
        .config
        .unwrap()
        .reqid
}

/// Whether the region holds both SAs of `child`.
fn both_sas_installed(manager: &SaManager, child: &ChildSa) -> bool {
    let writer = manager.writer();
    writer
        .query_sa(SaKey {
            spi: child.inbound_spi,
            dst: child.local.ip(),
        })
        .is_ok()
        && writer
            .query_sa(SaKey {
                spi: child.outbound_spi,
                dst: child.remote.ip(),
            })
            .is_ok()
}

/// A restarted iked keeps the child SA its predecessor left (traffic goes on) until a new child
/// SA with the same peer is installed, then removes it; the trap rule goes at once (the new
/// daemon installs its own); the static rule stays; no reqid in the region is reused.
#[test]
fn a_restarted_manager_keeps_its_predecessors_child_sa_until_the_peer_has_a_new_one() {
    let (_path, region, mut manager, static_rule, old) = restarted_after_a_child_sa("restart");
    assert_eq!(manager.orphans(), 1);
    assert!(both_sas_installed(&manager, &old));
    let rules: Vec<Policy> = manager
        .writer()
        .policies()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        rules.len(),
        3,
        "the static rule and the child SA's two: {rules:?}"
    );
    assert_eq!(rules[0], static_rule);
    assert!(rules[1..].iter().all(|p| p.flags.negotiated
        && p.action != static_rule.action
        && p.priority != static_rule.priority));
    let old_reqid = reqid_of(&manager, &old);

    // The peer comes back with a new child SA (its SPIs from other seeds).
    let mut pair = pair_with_region_spis(&manager);
    pair.b = Engine::new(
        EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]),
        Box::new(SeededRng::new(77)),
        Box::new(control::ikev2::RandomSpis),
    );
    pair.initiate();
    pair.run(3, false);
    let (new, _) = pair.assert_established();
    manager.install(&new).unwrap();
    let new_reqid = reqid_of(&manager, &new);
    assert!(new_reqid > old_reqid && new_reqid != 40);
    assert!(both_sas_installed(&manager, &old), "make before break");
    assert_eq!(manager.retire_orphans_of(new.remote.ip()).unwrap(), 1);
    assert_eq!(manager.orphans(), 0);
    assert!(!both_sas_installed(&manager, &old));
    assert!(both_sas_installed(&manager, &new));
    let rules = manager.writer().policies();
    assert_eq!(
        rules.len(),
        3,
        "the static rule and the new child SA's two: {rules:?}"
    );
    assert_eq!(rules[0].1, static_rule);
    assert_eq!(inspect::list_sas(&region).len(), 2);
}

/// A child SA of the previous iked that reaches its hard limit goes: no engine owns it, so no
/// action reaches the engine.
#[test]
fn a_predecessors_child_sa_goes_when_it_expires() {
    let (path, region, mut manager, static_rule, old) = restarted_after_a_child_sa("expiry");
    let dataplane = Reader::attach(Arc::new(Region::open(&path.0).unwrap())).unwrap();
    dataplane
        .emit(&RegionEvent::HardExpire {
            sa: SaKey {
                spi: old.outbound_spi,
                dst: old.remote.ip(),
            },
        })
        .unwrap();
    drop(dataplane);
    assert_eq!(manager.poll_actions(), vec![]);
    assert_eq!(manager.orphans(), 0);
    assert!(!both_sas_installed(&manager, &old));
    assert_eq!(
        manager
            .writer()
            .policies()
            .into_iter()
            .map(|(_, p)| p)
            .collect::<Vec<_>>(),
        vec![static_rule]
    );
    assert!(inspect::list_sas(&region).is_empty());
}
