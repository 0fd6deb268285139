//! A small shared region in a temporary file, removed when the test ends, pass or fail.

use std::sync::Arc;

use shared::event::{Event, ExchangeInfoFlags, FlowTuple};
use shared::layout::Capacities;
use shared::region::Region;

pub struct TempRegion(pub std::path::PathBuf);

impl Drop for TempRegion {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A region of 64 SAs, policies, events and reqids in a temporary file named after `name`.
pub fn small_region(name: &str) -> (TempRegion, Arc<Region>) {
    let path = TempRegion(std::env::temp_dir().join(format!("ike-{name}-{}", std::process::id())));
    let caps = Capacities {
        sas: 64,
        policies: 64,
        events: 64,
        readers: 4,
        reqids: 64,
        _reserved: 0,
    };
    let region = Arc::new(Region::create(&path.0, caps).unwrap());
    (path, region)
}

/// The ACQUIRE a dataplane raises for the rule `policy_id` when host A (198.18.1.2) pings host B
/// (198.18.2.2) and no SA is there.
pub fn ping_acquire(policy_id: u32) -> Event {
    Event::Acquire {
        policy_id,
        flow: FlowTuple {
            src: "198.18.1.2".parse().unwrap(),
            dst: "198.18.2.2".parse().unwrap(),
            proto: 1,
            src_port: 0,
            dst_port: 0,
        },
        flags: ExchangeInfoFlags::default(),
    }
}
