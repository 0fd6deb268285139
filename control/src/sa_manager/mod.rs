//! Installs negotiated child SAs (both directions) and their policies into the shared region,
//! removes them on delete, reserves inbound SPIs for the engine (`get_spi`, so that the dataplane
//! finds an SA in its SPI's own slot) and releases the ones no SA took, and turns the dataplane's
//! events into actions for the IKE engine. A restarted daemon adopts what its predecessor left
//! (`predecessor`).
mod predecessor;

use crate::crypto::Rng;
use crate::ikev2::{ChildSa, RandomSpis, SpiSource};
use crate::wire::ikev2::TrafficSelector;
use shared::event::{Event as RegionEvent, SaKey};
use shared::ops::{OpError, Writer};
use shared::policy::{Action, Policy, PolicyFlags, Prefix, SaTemplate, Selector};
use shared::sa::{self, DfPolicy, Direction, Limits, Mode, MsSaFlags, SaConfig};
use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A reserved SPI that no SA took within this time is released (a negotiation gives up after
/// about a minute of retransmissions, RFC 7296 2.4).
pub const LARVAL_TIMEOUT: Duration = Duration::from_secs(120);

/// Lifetimes given to every child SA (RFC 7296 2.8: rekey at the soft limit, before the hard one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildLifetimes {
    pub soft: Limits,
    pub hard: Limits,
    pub idle_timeout_secs: u64,
    pub replay_window: u32,
}

impl Default for ChildLifetimes {
    fn default() -> Self {
        ChildLifetimes {
            soft: Limits {
                seconds: 3000,
                ..Limits::default()
            },
            hard: Limits {
                seconds: 3600,
                ..Limits::default()
            },
            idle_timeout_secs: 0,
            replay_window: 64,
        }
    }
}

/// Names a child SA pair in the engine: our IKE SA SPI and our inbound ESP SPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildId {
    pub ike_spi: u64,
    pub inbound_spi: u32,
}

/// What the IKE engine should do about a dataplane event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action2Engine {
    /// Outbound traffic needs an SA for this policy's template (RFC 4301 5.2 ACQUIRE).
    Initiate {
        policy_id: u32,
        template: SaTemplate,
    },
    Rekey(ChildId),
    Delete(ChildId),
    /// ESP from `peer` on an SPI we do not know (RFC 7296 2.21.4).
    InvalidSpi {
        peer: IpAddr,
        spi: u32,
    },
}

#[derive(Debug)]
struct Installed {
    inbound: SaKey,
    outbound: SaKey,
    reqid: u32,
    policy_ids: Vec<u32>,
}

/// The region's single writer and the SPIs reserved for negotiations in progress (larval SAs),
/// shared by the SA manager and the engine's [`RegionSpis`].
#[derive(Debug)]
struct Shared {
    writer: Writer,
    larval: HashMap<SaKey, Instant>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere cannot leave the writer half-changed (the journal covers that).
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The region's writer, borrowed from the SA manager.
#[derive(Debug)]
pub struct WriterGuard<'a>(MutexGuard<'a, Shared>);

impl Deref for WriterGuard<'_> {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        &self.0.writer
    }
}

/// Inbound SPIs from the region's `get_spi` for the engine ([`SpiSource`]).
#[derive(Debug, Clone)]
pub struct RegionSpis(Arc<Mutex<Shared>>);

impl SpiSource for RegionSpis {
    fn allocate(&mut self, rng: &mut dyn Rng, local: IpAddr, remote: IpAddr) -> u32 {
        let mut shared = lock(&self.0);
        match shared.writer.get_spi(remote, local) {
            Ok(spi) => {
                shared
                    .larval
                    .insert(SaKey { spi, dst: local }, Instant::now());
                spi
            }
            Err(e) => {
                // The SA will not take the fast path, or installing it will fail visibly.
                eprintln!("iked: get_spi for {local}: {e}; using a random SPI");
                RandomSpis.allocate(rng, local, remote)
            }
        }
    }

    fn release(&mut self, spi: u32, local: IpAddr) {
        let mut shared = lock(&self.0);
        let key = SaKey { spi, dst: local };
        if shared.larval.remove(&key).is_some() {
            let _ = shared.writer.del_sa(key);
        }
    }
}

#[derive(Debug)]
pub struct SaManager {
    shared: Arc<Mutex<Shared>>,
    lifetimes: ChildLifetimes,
    installed: HashMap<ChildId, Installed>,
    by_sa: HashMap<SaKey, ChildId>,
    free_reqids: Vec<u32>,
    next_reqid: u32,
    /// Child SAs a previous daemon left in the region ([`SaManager::adopt_predecessor`]).
    orphans: Vec<predecessor::Orphan>,
}

/// The smallest set of prefixes covering start..=end (addresses as integers of `bits` bits).
fn range_to_prefixes(start: u128, end: u128, bits: u8) -> Vec<(u128, u8)> {
    // The last address of the block of 2^size_bits addresses starting at `at`.
    let block_last = |at: u128, size_bits: u32| -> Option<u128> {
        if size_bits >= 128 {
            (at == 0).then_some(u128::MAX)
        } else {
            at.checked_add((1u128 << size_bits) - 1)
        }
    };
    let mut prefixes = Vec::new();
    let mut at = start;
    loop {
        // The largest aligned block starting at `at` that does not pass `end`.
        let mut size_bits = at.trailing_zeros().min(u32::from(bits));
        while size_bits > 0 && block_last(at, size_bits).is_none_or(|last| last > end) {
            size_bits -= 1;
        }
        prefixes.push((at, bits - size_bits as u8));
        let last = block_last(at, size_bits).unwrap_or(at);
        if last >= end {
            return prefixes;
        }
        at = last + 1;
    }
}

fn to_int(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn from_int(value: u128, bits: u8) -> IpAddr {
    if bits == 32 {
        IpAddr::from((value as u32).to_be_bytes())
    } else {
        IpAddr::from(value.to_be_bytes())
    }
}

fn prefixes(ts: &TrafficSelector) -> Vec<Prefix> {
    let (start, bits) = to_int(ts.start);
    let (end, _) = to_int(ts.end);
    range_to_prefixes(start, end, bits)
        .into_iter()
        .map(|(a, len)| Prefix::new(from_int(a, bits), len))
        .collect()
}

fn shared_ts(ts: &TrafficSelector) -> sa::TrafficSelector {
    sa::TrafficSelector {
        start: ts.start,
        end: ts.end,
        proto: ts.ip_protocol,
        start_port: ts.start_port,
        end_port: ts.end_port,
    }
}

/// Policy priority of negotiated rules: after static configuration's (lower numbers first).
const NEGOTIATED_PRIORITY: u32 = 1000;
/// Trap rules come after the negotiated rules they stand in for.
const TRAP_PRIORITY: u32 = 2000;

/// Protect rules (both directions) for every pair of local and remote selectors of one family.
fn protect_rules(
    local_ts: &[TrafficSelector],
    remote_ts: &[TrafficSelector],
    reqid: u32,
    template: SaTemplate,
    priority: u32,
) -> Vec<Policy> {
    let mut policies = Vec::new();
    for local in local_ts {
        for remote in remote_ts {
            if local.start.is_ipv4() != remote.start.is_ipv4() {
                continue;
            }
            let proto = match (local.ip_protocol, remote.ip_protocol) {
                (0, 0) => None,
                (p, 0) | (_, p) => Some(p),
            };
            for l in prefixes(local) {
                for r in prefixes(remote) {
                    let rule = |direction, src, dst, src_ports, dst_ports| Policy {
                        priority,
                        direction,
                        selector: Selector {
                            src,
                            dst,
                            proto,
                            src_ports,
                            dst_ports,
                            icmp_type: None,
                            icmp_code: None,
                        },
                        action: Action::Protect { reqid, template },
                        flags: PolicyFlags {
                            negotiated: true,
                            ..PolicyFlags::default()
                        },
                    };
                    let local_ports = (local.start_port, local.end_port);
                    let remote_ports = (remote.start_port, remote.end_port);
                    policies.push(rule(Direction::Out, l, r, local_ports, remote_ports));
                    policies.push(rule(Direction::In, r, l, remote_ports, local_ports));
                }
            }
        }
    }
    policies
}

impl SaManager {
    /// Takes the region's writer. Reqids start above every one the region already uses.
    pub fn new(writer: Writer, lifetimes: ChildLifetimes) -> SaManager {
        let next_reqid = predecessor::highest_reqid(&writer) + 1;
        SaManager {
            shared: Arc::new(Mutex::new(Shared {
                writer,
                larval: HashMap::new(),
            })),
            lifetimes,
            installed: HashMap::new(),
            by_sa: HashMap::new(),
            free_reqids: Vec::new(),
            next_reqid,
            orphans: Vec::new(),
        }
    }

    /// Takes over what a previous daemon left in the region: its trap rules are removed, its
    /// child SAs stay until the peer has a new child SA with us or they expire
    /// (`predecessor`). Returns how many child SAs were adopted.
    pub fn adopt_predecessor(&mut self) -> Result<usize, OpError> {
        let orphans = predecessor::adopt(&mut lock(&self.shared).writer)?;
        let adopted = orphans.len();
        self.orphans.extend(orphans);
        Ok(adopted)
    }

    /// How many child SAs of a previous daemon are still installed.
    pub fn orphans(&self) -> usize {
        self.orphans.len()
    }

    /// Removes the previous daemon's child SAs that match `matches`; returns how many. Those the
    /// region refuses to remove stay for a later attempt (the first error is returned).
    fn remove_orphans(
        &mut self,
        matches: impl Fn(&predecessor::Orphan) -> bool,
    ) -> Result<usize, OpError> {
        let mut shared = lock(&self.shared);
        let before = self.orphans.len();
        let mut result = Ok(());
        let mut kept = Vec::new();
        for mut orphan in std::mem::take(&mut self.orphans) {
            if !matches(&orphan) {
                kept.push(orphan);
                continue;
            }
            match predecessor::remove(&mut shared.writer, &mut orphan) {
                Ok(()) => self.free_reqids.push(orphan.reqid),
                Err(e) => {
                    kept.push(orphan);
                    result = result.and(Err(e));
                }
            }
        }
        self.orphans = kept;
        result.map(|()| before - self.orphans.len())
    }

    pub fn writer(&self) -> WriterGuard<'_> {
        WriterGuard(lock(&self.shared))
    }

    /// The engine's source of inbound SPIs, reserved in this region.
    pub fn spi_source(&self) -> RegionSpis {
        RegionSpis(self.shared.clone())
    }

    /// Releases reserved SPIs that no SA took within [`LARVAL_TIMEOUT`]; returns how many.
    pub fn release_stale_spis(&mut self, now: Instant) -> usize {
        let mut shared = lock(&self.shared);
        let stale: Vec<SaKey> = shared
            .larval
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) >= LARVAL_TIMEOUT)
            .map(|(key, _)| *key)
            .collect();
        for key in &stale {
            shared.larval.remove(key);
            let _ = shared.writer.del_sa(*key);
        }
        stale.len()
    }

    fn sa_config(&self, child: &ChildSa, direction: Direction, reqid: u32) -> SaConfig {
        let (spi, src, dst, keys) = match direction {
            Direction::In => (
                child.inbound_spi,
                child.remote.ip(),
                child.local.ip(),
                &child.inbound,
            ),
            Direction::Out => (
                child.outbound_spi,
                child.local.ip(),
                child.remote.ip(),
                &child.outbound,
            ),
        };
        SaConfig {
            spi,
            direction,
            // strongSwan's libipsec and our dataplane peers use tunnel mode (ARCHITECTURE.md 6).
            mode: Mode::Tunnel,
            src,
            dst,
            encap: child.encap,
            suite: child.suite,
            enc_key: keys.encr.clone(),
            auth_key: keys.integ.clone(),
            esn: false,
            replay_window: if direction == Direction::In {
                self.lifetimes.replay_window
            } else {
                0
            },
            df: DfPolicy::Copy,
            ts_local: child
                .local_ts
                .first()
                .map(shared_ts)
                .unwrap_or_else(|| sa::TrafficSelector::any_of_family(src)),
            ts_remote: child
                .remote_ts
                .first()
                .map(shared_ts)
                .unwrap_or_else(|| sa::TrafficSelector::any_of_family(dst)),
            soft: self.lifetimes.soft,
            hard: self.lifetimes.hard,
            idle_timeout_secs: self.lifetimes.idle_timeout_secs,
            ms_flags: MsSaFlags::default(),
            reqid,
            policy_id: 0,
        }
    }

    /// A child's protect rules: every pair of its local and remote selectors, both directions.
    fn policies(child: &ChildSa, reqid: u32) -> Vec<Policy> {
        let template = SaTemplate {
            mode: Mode::Tunnel,
            src: child.local.ip(),
            dst: child.remote.ip(),
        };
        protect_rules(
            &child.local_ts,
            &child.remote_ts,
            reqid,
            template,
            NEGOTIATED_PRIORITY,
        )
    }

    /// Installs outbound protect rules for `local_ts` to `remote_ts` with a reqid of their own,
    /// which no SA ever takes (strongSwan's trap policies): traffic they match makes the
    /// dataplane raise an ACQUIRE (RFC 4301 5.2) for `template`, and once the negotiated child
    /// SA's own rules exist (which come first), they protect it. Returns the rules' ids.
    pub fn install_trap(
        &mut self,
        local_ts: &[TrafficSelector],
        remote_ts: &[TrafficSelector],
        template: SaTemplate,
    ) -> Result<Vec<u32>, OpError> {
        let reqid = self.next_reqid;
        let rules: Vec<Policy> = protect_rules(local_ts, remote_ts, reqid, template, TRAP_PRIORITY)
            .into_iter()
            .filter(|p| p.direction == Direction::Out)
            .collect();
        let ids = lock(&self.shared).writer.add_policies(&rules)?;
        self.next_reqid += 1;
        Ok(ids)
    }

    /// Installs both SAs of a new child and its policies; on any failure nothing stays installed.
    pub fn install(&mut self, child: &ChildSa) -> Result<(), OpError> {
        let reqid = self.free_reqids.pop().unwrap_or_else(|| {
            self.next_reqid += 1;
            self.next_reqid - 1
        });
        let (inbound_config, outbound_config) = (
            self.sa_config(child, Direction::In, reqid),
            self.sa_config(child, Direction::Out, reqid),
        );
        let policies = Self::policies(child, reqid);
        let mut shared = lock(&self.shared);
        let inbound = shared.writer.add_sa(&inbound_config);
        let inbound = match inbound {
            Ok(key) => {
                // The reserved SPI is an SA now.
                shared.larval.remove(&key);
                key
            }
            Err(e) => {
                self.free_reqids.push(reqid);
                return Err(e);
            }
        };
        let outbound = match shared.writer.add_sa(&outbound_config) {
            Ok(key) => key,
            Err(e) => {
                let _ = shared.writer.del_sa(inbound);
                self.free_reqids.push(reqid);
                return Err(e);
            }
        };
        let policy_ids = match shared.writer.add_policies(&policies) {
            Ok(ids) => ids,
            Err(e) => {
                let _ = shared.writer.del_sa(inbound);
                let _ = shared.writer.del_sa(outbound);
                self.free_reqids.push(reqid);
                return Err(e);
            }
        };
        let id = ChildId {
            ike_spi: child.ike_spi,
            inbound_spi: child.inbound_spi,
        };
        self.by_sa.insert(inbound, id);
        self.by_sa.insert(outbound, id);
        self.installed.insert(
            id,
            Installed {
                inbound,
                outbound,
                reqid,
                policy_ids,
            },
        );
        Ok(())
    }

    /// Called once a child SA with `peer` is installed: the previous daemon's child SAs with
    /// that peer are stale now (make before break: only now do they go). Returns how many went.
    pub fn retire_orphans_of(&mut self, peer: IpAddr) -> Result<usize, OpError> {
        self.remove_orphans(|orphan| orphan.peer == peer)
    }

    /// Removes a child's policies, then its SAs; unknown children are ignored. If the region
    /// refuses a step, what is left stays recorded so a later call can finish the job.
    pub fn remove(&mut self, id: ChildId) -> Result<(), OpError> {
        let Some(mut installed) = self.installed.remove(&id) else {
            return Ok(());
        };
        let mut shared = lock(&self.shared);
        while let Some(policy) = installed.policy_ids.last().copied() {
            if let Err(e) = shared.writer.del_policy(policy) {
                self.installed.insert(id, installed);
                return Err(e);
            }
            installed.policy_ids.pop();
        }
        self.by_sa.remove(&installed.inbound);
        self.by_sa.remove(&installed.outbound);
        self.free_reqids.push(installed.reqid);
        let inbound = shared.writer.del_sa(installed.inbound);
        let outbound = shared.writer.del_sa(installed.outbound);
        inbound.and(outbound)
    }

    /// The child SAs of IKE SA `old` now belong to `new` (RFC 7296 2.18).
    pub fn ike_sa_rekeyed(&mut self, old: u64, new: u64) {
        let moved: Vec<ChildId> = self
            .installed
            .keys()
            .filter(|id| id.ike_spi == old)
            .copied()
            .collect();
        for id in moved {
            let Some(installed) = self.installed.remove(&id) else {
                continue;
            };
            let new_id = ChildId {
                ike_spi: new,
                inbound_spi: id.inbound_spi,
            };
            self.by_sa.insert(installed.inbound, new_id);
            self.by_sa.insert(installed.outbound, new_id);
            self.installed.insert(new_id, installed);
        }
    }

    pub fn installed(&self) -> impl Iterator<Item = &ChildId> {
        self.installed.keys()
    }

    /// Drains the dataplane's events into engine actions (RFC 4301 5.2 ACQUIRE; lifetimes per
    /// RFC 7296 2.8: soft expiry and sequence exhaustion rekey, hard and idle expiry delete).
    pub fn poll_actions(&mut self) -> Vec<Action2Engine> {
        let mut actions = Vec::new();
        let mut shared = lock(&self.shared);
        while let Some(event) = shared.writer.pop_event() {
            let child = |sa: &SaKey| self.by_sa.get(sa).copied();
            let action = match event {
                RegionEvent::Acquire { policy_id, .. } => shared
                    .writer
                    .policies()
                    .into_iter()
                    .find(|(id, _)| *id == policy_id)
                    .and_then(|(_, p)| match p.action {
                        Action::Protect { template, .. } => Some(Action2Engine::Initiate {
                            policy_id,
                            template,
                        }),
                        _ => None,
                    }),
                RegionEvent::SoftExpire { sa } | RegionEvent::SeqNearExhaustion { sa, .. } => {
                    child(&sa).map(Action2Engine::Rekey)
                }
                RegionEvent::HardExpire { sa } | RegionEvent::IdleExpire { sa } => {
                    for orphan in self.orphans.iter_mut().filter(|o| o.sas.contains(&sa)) {
                        orphan.expired = true;
                    }
                    child(&sa).map(Action2Engine::Delete)
                }
                RegionEvent::UnknownSpi { sa, src } => Some(Action2Engine::InvalidSpi {
                    peer: src,
                    spi: sa.spi,
                }),
            };
            actions.extend(action);
        }
        drop(shared);
        // An expired child SA of the previous daemon goes (no engine owns it); one the region
        // refuses to remove now is tried again on the next call.
        let _ = self.remove_orphans(|orphan| orphan.expired);
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_minimal_prefix_sets() {
        let v4 = |a: [u8; 4]| u128::from(u32::from_be_bytes(a));
        assert_eq!(
            range_to_prefixes(v4([198, 18, 1, 0]), v4([198, 18, 1, 255]), 32),
            vec![(v4([198, 18, 1, 0]), 24)]
        );
        assert_eq!(range_to_prefixes(0, u128::from(u32::MAX), 32), vec![(0, 0)]);
        assert_eq!(range_to_prefixes(0, u128::MAX, 128), vec![(0, 0)]);
        assert_eq!(
            range_to_prefixes(v4([10, 0, 0, 1]), v4([10, 0, 0, 4]), 32),
            vec![
                (v4([10, 0, 0, 1]), 32),
                (v4([10, 0, 0, 2]), 31),
                (v4([10, 0, 0, 4]), 32)
            ]
        );
        let one = v4([198, 18, 0, 7]);
        assert_eq!(range_to_prefixes(one, one, 32), vec![(one, 32)]);
    }
}
