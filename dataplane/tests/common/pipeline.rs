//! A gateway pipeline without DPDK over a real region that a configuration was loaded into, for
//! the tests that run frames through `Pipeline::from_port` and `from_host`.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
use std::sync::Arc;

use dataplane::gateway::config::Config;
use dataplane::gateway::counters::LcoreCounters;
use dataplane::gateway::ether::Mac;
use dataplane::gateway::pipeline::{Pipeline, Shared};
use dataplane::gateway::provision;
use dataplane::nd::NegotiationDiscovery;
use shared::layout::Capacities;
use shared::ops::Writer;
use shared::reader::Reader;
use shared::region::Region;

/// The gateway's MAC addresses on its protected and unprotected ports.
pub const GW_P: Mac = Mac([2, 0, 0, 0, 1, 1]);
pub const GW_U: Mac = Mac([2, 0, 0, 0, 0, 1]);

pub struct Fixture {
    pub pipeline: Pipeline,
    pub counters: Arc<LcoreCounters>,
    pub config: Config,
    /// The region's file, removed on drop.
    pub path: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = Region::remove(&self.path);
    }
}

/// A pipeline with `config` (TOML) loaded into a region of its own, named after the test binary
/// (`prefix`) and `name`; with negotiation discovery if the configuration enables it.
pub fn fixture(prefix: &str, name: &str, config: &str) -> Fixture {
    let config = Config::parse(Path::new("test.toml"), config).unwrap();
    let path = std::env::temp_dir().join(format!("{prefix}-{name}-{}", std::process::id()));
    let _ = Region::remove(&path);
    let caps = Capacities { sas: 16, policies: 16, readers: 4, reqids: 16, ..Capacities::default() };
    let region = Arc::new(Region::create(&path, caps).unwrap());
    let mut writer = Writer::attach(region.clone()).unwrap();
    provision::load(&mut writer, &config).unwrap();
    let counters = Arc::new(LcoreCounters::default());
    let setup = Arc::new(config.setup(GW_P, GW_U));
    let nd = config.negotiation_discovery.map(|c| Arc::new(NegotiationDiscovery::new(c)));
    let pipeline = Pipeline::new(Reader::attach(region).unwrap(), setup, &Shared { nd, ..Shared::default() }, counters.clone());
    Fixture { pipeline, counters, config, path }
}
