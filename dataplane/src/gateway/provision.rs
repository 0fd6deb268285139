//! Loads a configuration's SPD rules and static SAs into the shared region through the control
//! plane's API (`shared::ops::Writer`). Loading is a reconciliation, so a restarted loader changes
//! nothing that is already right: an SA that exists with the same configuration is kept (its
//! sequence numbers continue; reinstalling it would restart them at 1 and reuse (key, seq)), a
//! changed one is updated where the change is allowed, SAs not in the file are deleted, and the
//! SPD is republished only if its rules differ.

use shared::event::SaKey;
use shared::ops::{OpError, Writer};
use shared::sa::SlotState;

use super::config::Config;

/// What a load changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub sas_added: usize,
    pub sas_updated: usize,
    pub sas_kept: usize,
    pub sas_deleted: usize,
    /// Whether a new SPD snapshot was published.
    pub spd_published: bool,
}

pub fn load(writer: &mut Writer, config: &Config) -> Result<LoadReport, OpError> {
    let mut report = LoadReport::default();
    let wanted: Vec<SaKey> = config.sas.iter().map(|c| SaKey { spi: c.spi, dst: c.dst }).collect();
    for info in writer.list_sas() {
        if !wanted.contains(&info.key) {
            writer.del_sa(info.key)?;
            report.sas_deleted += 1;
        }
    }
    for sa in &config.sas {
        let key = SaKey { spi: sa.spi, dst: sa.dst };
        match writer.query_sa(key) {
            Ok(info) if info.state == SlotState::Live && info.config.as_ref() == Some(sa) => report.sas_kept += 1,
            Ok(info) if info.state == SlotState::Live => {
                writer.update_sa(sa)?;
                report.sas_updated += 1;
            }
            _ => {
                writer.add_sa(sa)?;
                report.sas_added += 1;
            }
        }
    }
    let published: Vec<_> = writer.policies().into_iter().map(|(_, p)| p).collect();
    // The writer keeps rules sorted by priority (stable); compare in that order.
    let mut wanted_rules = config.policies.clone();
    wanted_rules.sort_by_key(|p| p.priority);
    if published != wanted_rules {
        writer.flush_policies()?;
        if !config.policies.is_empty() {
            writer.add_policies(&config.policies)?;
        }
        report.spd_published = true;
    }
    Ok(report)
}

/// The capacities of a region the gateway or its loader creates (whichever starts first).
pub fn capacities() -> shared::layout::Capacities {
    shared::layout::Capacities { sas: 4096, policies: 4096, events: 1024, readers: 64, reqids: 4096, _reserved: 0 }
}
