//! Negotiated child SAs land in a real shared region with the keys both peers derived, with
//! their policies; dataplane events become engine actions; delete removes everything.
mod common;

use common::*;
use control::sa_manager::{Action2Engine, ChildId, ChildLifetimes, SaManager};
use shared::event::{Event as RegionEvent, ExchangeInfoFlags, FlowTuple, SaKey};
use shared::layout::Capacities;
use shared::ops::Writer;
use shared::reader::Reader;
use shared::region::Region;
use shared::sa::Direction;
use std::sync::Arc;

/// A region file removed when the test ends, pass or fail.
struct TempRegion(std::path::PathBuf);

impl Drop for TempRegion {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn child_sas_and_policies_are_installed_queried_and_removed() {
    let path =
        TempRegion(std::env::temp_dir().join(format!("ike-sa-manager-{}", std::process::id())));
    let caps = Capacities {
        sas: 64,
        policies: 64,
        events: 64,
        readers: 4,
        reqids: 64,
        _reserved: 0,
    };
    let region = Arc::new(Region::create(&path.0, caps).unwrap());
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
