//! Read-only views of the SAD for any process (the writer, a `show` command, a monitor): SA
//! configurations, states and runtime counters, read consistently without the writer lock.

use std::net::IpAddr;

use crate::counters::SaCounters;
use crate::event::SaKey;
use crate::region::Region;
use crate::sa::{SaConfig, SaRecord, SlotState};

/// What `query_sa` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaInfo {
    pub key: SaKey,
    pub state: SlotState,
    /// The configuration of a live SA (`None` for an SPI only reserved by `get_spi`).
    pub config: Option<SaConfig>,
    pub counters: SaCounters,
}

/// The record in `slot`, or `None` if the slot is out of range or being written.
pub(crate) fn record(region: &Region, slot: u32) -> Option<SaRecord> {
    region.sad().read(slot).ok().flatten().map(|(r, _)| r)
}

/// The SA in `slot`, if the slot holds one.
pub fn sa_info(region: &Region, slot: u32) -> Option<SaInfo> {
    let r = record(region, slot).filter(|r| r.state() != SlotState::Free)?;
    Some(SaInfo {
        key: SaKey { spi: r.spi, dst: r.dst.into() },
        state: r.state(),
        config: (r.state() == SlotState::Live).then(|| r.to_config().ok()).flatten(),
        counters: region.sa_runtime()[slot as usize].snapshot(),
    })
}

/// The SA with this key (live or reserved).
pub fn query_sa(region: &Region, spi: u32, dst: IpAddr) -> Option<SaInfo> {
    let (_, slot) = region.sad().find(spi, &dst.into())?;
    sa_info(region, slot)
}

/// Every SA and reserved SPI.
pub fn list_sas(region: &Region) -> Vec<SaInfo> {
    (0..region.capacities().sas).filter_map(|slot| sa_info(region, slot)).collect()
}
