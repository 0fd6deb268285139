//! Loads a configuration's SPD rules and static SAs into the shared region through the control
//! plane's API (`shared::ops::Writer`). Loading is a reconciliation, so a restarted loader changes
//! nothing that is already right: an SA that exists with the same configuration is kept (its
//! sequence numbers continue; reinstalling it would restart them at 1 and reuse (key, seq)), a
//! changed one is updated where the change is allowed, static SAs not in the file are deleted,
//! and the static rules are replaced in one SPD snapshot only if they differ.
//!
//! What `iked` installed is not the file's to change: its rules carry the `negotiated` flag, and
//! its SAs the reqid of such a rule; SPIs it reserved (larval SAs) have no configuration yet. A
//! load leaves all of them alone, so that the child SAs of an `iked` that is being restarted
//! survive for its successor to adopt. A file that names one of them is refused.

use std::collections::HashSet;

use shared::event::SaKey;
use shared::inspect::SaInfo;
use shared::ops::{OpError, Writer};
use shared::policy::{Action, Policy};
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
    /// `iked`'s SAs (reserved SPIs included) and rules, left as they were.
    pub negotiated_sas: usize,
    pub negotiated_rules: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Op(#[from] OpError),
    #[error("SA {spi:#010x} to {dst} is iked's (negotiated); the configuration cannot name it", spi = .0.spi, dst = .0.dst)]
    NegotiatedSa(SaKey),
    #[error("reqid {0} is used by iked's negotiated rules; give the configuration's rules and SAs another")]
    NegotiatedReqid(u32),
    #[error("the configuration adds {needed} SAs, the SAD has room for {room} once the SAs it no longer names are deleted")]
    SadTooSmall { needed: usize, room: usize },
}

pub fn load(writer: &mut Writer, config: &Config) -> Result<LoadReport, LoadError> {
    let mut report = LoadReport::default();
    let published = writer.policies();
    let negotiated: Vec<&Policy> = published.iter().map(|(_, p)| p).filter(|p| p.flags.negotiated).collect();
    let negotiated_reqids: HashSet<u32> = negotiated.iter().filter_map(|p| reqid_of(p)).collect();
    report.negotiated_rules = negotiated.len();
    let is_negotiated = |info: &SaInfo| {
        info.state == SlotState::Larval || info.config.as_ref().is_some_and(|c| negotiated_reqids.contains(&c.reqid))
    };
    let mut file_reqids = config.sas.iter().map(|sa| sa.reqid).chain(config.policies.iter().filter_map(reqid_of));
    if let Some(reqid) = file_reqids.find(|r| negotiated_reqids.contains(r)) {
        return Err(LoadError::NegotiatedReqid(reqid));
    }

    let wanted: Vec<SaKey> = config.sas.iter().map(|c| SaKey { spi: c.spi, dst: c.dst }).collect();
    let installed = writer.list_sas();
    if let Some(taken) = installed.iter().find(|info| is_negotiated(info) && wanted.contains(&info.key)) {
        return Err(LoadError::NegotiatedSa(taken.key));
    }
    // Refused before any change, rather than half loaded when the SAD fills up.
    let unwanted = installed.iter().filter(|info| !is_negotiated(info) && !wanted.contains(&info.key)).count();
    let needed = wanted.iter().filter(|key| !installed.iter().any(|info| info.key == **key)).count();
    let room = writer.free_sa_slots() + unwanted;
    if needed > room {
        return Err(LoadError::SadTooSmall { needed, room });
    }
    for info in &installed {
        if is_negotiated(info) {
            report.negotiated_sas += 1;
        } else if !wanted.contains(&info.key) {
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

    let is_static = |p: &Policy| !p.flags.negotiated;
    let static_rules: Vec<&Policy> = published.iter().map(|(_, p)| p).filter(|p| is_static(p)).collect();
    // The writer keeps rules sorted by priority (stable); compare in that order.
    let mut wanted_rules = config.policies.clone();
    wanted_rules.sort_by_key(|p| p.priority);
    if !static_rules.iter().copied().eq(wanted_rules.iter()) {
        writer.replace_policies(is_static, &config.policies)?;
        report.spd_published = true;
    }
    Ok(report)
}

fn reqid_of(policy: &Policy) -> Option<u32> {
    match policy.action {
        Action::Protect { reqid, .. } => Some(reqid),
        _ => None,
    }
}

/// The capacities of a region the gateway or its loader creates (whichever starts first).
pub fn capacities() -> shared::layout::Capacities {
    shared::layout::Capacities { sas: 4096, policies: 4096, events: 1024, readers: 64, reqids: 4096, _reserved: 0 }
}
