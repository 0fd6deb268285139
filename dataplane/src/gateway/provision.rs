//! Loads a configuration's SPD rules and static SAs into the shared region through the control
//! plane's API (`shared::ops::Writer`). Loading is a reconciliation, so a restarted loader changes
//! nothing that is already right: an SA that exists with the same configuration is kept (its
//! sequence numbers continue; reinstalling it would restart them at 1 and reuse (key, seq)), a
//! changed one is updated where the change is allowed, static SAs not in the file are deleted,
//! and the static rules are replaced in one SPD snapshot only if they differ. The new SAs and
//! rules go in before the old SAs go (make before break), and a load that fails partway takes
//! back what it did; what a file cannot do (change an SA's keys, outgrow the SAD) is refused
//! before any change.
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
use shared::sa::{Direction, SaConfig, SlotState};

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
    // Refused before any change, rather than half loaded when an SA turns out not to fit.
    for sa in &config.sas {
        writer.check_sa(sa)?;
    }
    report.negotiated_sas = installed.iter().filter(|info| is_negotiated(info)).count();
    let unwanted: Vec<SaKey> =
        installed.iter().filter(|info| !is_negotiated(info) && !wanted.contains(&info.key)).map(|info| info.key).collect();
    let needed = wanted.iter().filter(|key| !installed.iter().any(|info| info.key == **key)).count();
    let free = writer.free_sa_slots();
    if needed > free + unwanted.len() {
        return Err(LoadError::SadTooSmall { needed, room: free + unwanted.len() });
    }

    // Make before break: the file's SAs and rules go in before the SAs it no longer names go, so
    // that a flow it keeps is never without its SA, and a failure on the way (a reader that
    // stalls a slot's reuse or the SPD's publication) is undone. Only the SAs there is no room
    // for beside the new ones go first: their traffic is dropped until the new rules are
    // published, and they cannot be put back (reinstalled, their sequence numbers would restart).
    let (make_room, after) = unwanted.split_at(needed.saturating_sub(free));
    for key in make_room {
        writer.del_sa(*key)?;
        report.sas_deleted += 1;
    }
    let mut undo = Undo::default();
    if let Err(e) = install(writer, config, &published, &mut report, &mut undo) {
        let outbound_before = installed
            .iter()
            .filter(|info| info.state == SlotState::Live && !make_room.contains(&info.key))
            .filter_map(|info| info.config.as_ref())
            .filter(|c| c.direction == Direction::Out);
        undo.run(writer, outbound_before);
        return Err(e.into());
    }
    for key in after {
        writer.del_sa(*key)?;
        report.sas_deleted += 1;
    }
    Ok(report)
}

/// Adds and updates the file's SAs, then publishes its rules if they changed, noting in `undo`
/// how to take each change back.
fn install(
    writer: &mut Writer,
    config: &Config,
    published: &[(u32, Policy)],
    report: &mut LoadReport,
    undo: &mut Undo,
) -> Result<(), OpError> {
    for sa in &config.sas {
        let key = SaKey { spi: sa.spi, dst: sa.dst };
        match writer.query_sa(key) {
            Ok(info) if info.state == SlotState::Live && info.config.as_ref() == Some(sa) => report.sas_kept += 1,
            Ok(SaInfo { state: SlotState::Live, config: Some(old), .. }) => {
                writer.update_sa(sa)?;
                undo.updated.push(old);
                report.sas_updated += 1;
            }
            _ => {
                writer.add_sa(sa)?;
                undo.added.push(sa.clone());
                report.sas_added += 1;
            }
        }
    }

    let is_static = |p: &Policy| !p.flags.negotiated;
    let static_rules = published.iter().map(|(_, p)| p).filter(|p| is_static(p));
    // The writer keeps rules sorted by priority (stable); compare in that order.
    let mut wanted_rules = config.policies.clone();
    wanted_rules.sort_by_key(|p| p.priority);
    if !static_rules.eq(wanted_rules.iter()) {
        writer.replace_policies(is_static, &config.policies)?;
        report.spd_published = true;
    }
    Ok(())
}

/// What a failed [`install`] takes back: the SAs it added and the old configurations of the
/// SAs it updated.
#[derive(Default)]
struct Undo {
    added: Vec<SaConfig>,
    updated: Vec<SaConfig>,
}

impl Undo {
    /// None of these changes can fail: each SA is there with a configuration the writer took
    /// before, and neither deleting nor updating waits for readers.
    fn run<'a>(self, writer: &mut Writer, outbound_before: impl Iterator<Item = &'a SaConfig>) {
        for sa in self.added.iter().rev() {
            let _ = writer.del_sa(SaKey { spi: sa.spi, dst: sa.dst });
        }
        for old in &self.updated {
            let _ = writer.update_sa(old);
        }
        // An added outbound SA took its reqid's link from the rules to their SA (the newest SA
        // of a reqid carries its traffic); writing the SA that had it again gives it back.
        let took_link =
            |old: &SaConfig| self.added.iter().any(|a| a.direction == Direction::Out && a.reqid == old.reqid);
        for old in outbound_before.filter(|old| took_link(old)) {
            let _ = writer.update_sa(old);
        }
    }
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
