//! What a previous `iked` left in the region when it was killed, crashed or restarted: the SAs
//! and rules of its child SAs, and its trap rules, all found by the rules' `negotiated` flag. Its
//! IKE SAs died with it, so no engine owns those child SAs ("orphans"); they keep carrying
//! traffic until the peer has a new child SA with us (our new IKE SA's INITIAL_CONTACT makes the
//! peer delete its old ones, RFC 7296 2.4) or until they expire. Its trap rules go (the new
//! daemon installs its own), and so do the SPIs it had reserved for negotiations under way.
use shared::event::SaKey;
use shared::ops::{OpError, Writer};
use shared::policy::Action;
use shared::sa::SlotState;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A child SA of the previous daemon: its SAs (both directions) and its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Orphan {
    pub reqid: u32,
    /// The peer its outbound SA goes to (its rules' template destination).
    pub peer: IpAddr,
    pub sas: Vec<SaKey>,
    pub policy_ids: Vec<u32>,
    /// One of its SAs reached its hard or idle limit: it goes.
    pub expired: bool,
}

/// The highest reqid any SA or rule in the region uses, static ones included, so that new
/// child SAs never share a reqid (and with it their outbound SA) with an SA already there.
pub(super) fn highest_reqid(writer: &Writer) -> u32 {
    let of_sas = writer
        .list_sas()
        .into_iter()
        .filter_map(|sa| sa.config.map(|c| c.reqid));
    let of_rules = writer
        .policies()
        .into_iter()
        .filter_map(|(_, p)| match p.action {
            Action::Protect { reqid, .. } => Some(reqid),
            _ => None,
        });
    of_sas.chain(of_rules).max().unwrap_or(0)
}

/// Removes the previous daemon's trap rules (negotiated rules without an SA behind their reqid)
/// and the SPIs it had reserved (larval SAs: their negotiations died with it), and returns its
/// child SAs, which stay installed.
pub(super) fn adopt(writer: &mut Writer) -> Result<Vec<Orphan>, OpError> {
    for larval in writer
        .list_sas()
        .into_iter()
        .filter(|sa| sa.state == SlotState::Larval)
    {
        writer.del_sa(larval.key)?;
    }
    let mut by_reqid: BTreeMap<u32, Orphan> = BTreeMap::new();
    for (id, policy) in writer.policies() {
        if let Action::Protect { reqid, template } = policy.action {
            if policy.flags.negotiated {
                by_reqid
                    .entry(reqid)
                    .or_insert_with(|| Orphan {
                        reqid,
                        peer: template.dst,
                        sas: Vec::new(),
                        policy_ids: Vec::new(),
                        expired: false,
                    })
                    .policy_ids
                    .push(id);
            }
        }
    }
    for sa in writer.list_sas() {
        if let Some(orphan) = sa.config.and_then(|c| by_reqid.get_mut(&c.reqid)) {
            orphan.sas.push(sa.key);
        }
    }
    let mut orphans = Vec::new();
    for orphan in by_reqid.into_values() {
        if orphan.sas.is_empty() {
            for id in orphan.policy_ids {
                writer.del_policy(id)?;
            }
        } else {
            orphans.push(orphan);
        }
    }
    Ok(orphans)
}

/// Removes an orphan's rules, then its SAs; ones already gone count as removed. On an error,
/// what is left stays in `orphan` for a later attempt.
pub(super) fn remove(writer: &mut Writer, orphan: &mut Orphan) -> Result<(), OpError> {
    while let Some(id) = orphan.policy_ids.last().copied() {
        match writer.del_policy(id) {
            Ok(()) | Err(OpError::NoSuchPolicy(_)) => orphan.policy_ids.pop(),
            Err(e) => return Err(e),
        };
    }
    while let Some(key) = orphan.sas.last().copied() {
        match writer.del_sa(key) {
            Ok(()) | Err(OpError::NoSuchSa { .. }) => orphan.sas.pop(),
            Err(e) => return Err(e),
        };
    }
    Ok(())
}
