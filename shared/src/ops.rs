//! The control plane's operations on the region, in the manner of a kernel IPsec interface
//! (strongSwan's kernel_ipsec): get_spi, add_sa, update_sa, query_sa, del_sa, add_policy,
//! del_policy, flush. There is one [`Writer`] per region at a time (an exclusive file lock that the
//! kernel releases if the writer dies); every SAD change goes through the journal so that the next
//! writer finishes whatever a dead one left half done.

use std::collections::{BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::Zeroable;

use crate::addr::RawAddr;
use crate::event::{Event, SaKey};
use crate::inspect::{self, SaInfo};
use crate::journal::Change;
use crate::policy::{Action, Policy, PolicyError, PolicyRecord};
use crate::region::{now_ns, Region, RegionError};
use crate::sa::{Direction, SaConfig, SaConfigError, SaRecord, SlotState, MIN_SPI};

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Config(#[from] SaConfigError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Region(#[from] RegionError),
    #[error("an SA with SPI {spi:#010x} and destination {dst} already exists")]
    DuplicateSpi { spi: u32, dst: IpAddr },
    #[error("the SAD is full ({0} SAs)")]
    SadFull(u32),
    #[error("no SA with SPI {spi:#010x} and destination {dst}")]
    NoSuchSa { spi: u32, dst: IpAddr },
    #[error("SA {spi:#010x}: {field} cannot change once installed; install a new SA instead (rekey)")]
    Immutable { spi: u32, field: &'static str },
    #[error("reqid {reqid} is out of range (the region holds reqids below {limit})")]
    ReqidOutOfRange { reqid: u32, limit: u32 },
    #[error("the SPD is full ({0} rules)")]
    SpdFull(u32),
    #[error("no policy with id {0}")]
    NoSuchPolicy(u32),
    #[error(
        "reader slot {slot} (process {pid}) has not passed a quiescent state for {waited:?}; \
         the change was not made"
    )]
    ReaderStalled { slot: usize, pid: u32, waited: Duration },
    #[error("no free SPI for {0} after {GET_SPI_TRIES} random tries")]
    NoFreeSpi(IpAddr),
}

const GET_SPI_TRIES: u32 = 1_000;

/// The single writer of a region.
#[derive(Debug)]
pub struct Writer {
    region: Arc<Region>,
    /// Free SAD slots; rebuilt from the region on attach.
    free: BTreeSet<u32>,
    /// Slots of deleted SAs, oldest first, each with the QSBR token of its deletion. A slot is
    /// reused only once every reader has passed a quiescent state since: until then an lcore
    /// may still hold a handle to the deleted SA and write its sequence number or traffic into
    /// the slot's runtime state, which a new SA there would inherit (a `replay_top` too high
    /// would drop its packets after a dataplane restart). A writer that attaches anew does not
    /// know them and takes every free slot as free.
    retired: VecDeque<(u32, u64)>,
    grace_timeout: Duration,
}

impl Writer {
    /// Becomes the region's writer: takes the writer lock, finishes any change a previous writer
    /// left pending, frees reader slots of dead processes.
    pub fn attach(region: Arc<Region>) -> Result<Writer, OpError> {
        region.lock_writer()?;
        let control = region.control();
        control.writer.generation.fetch_add(1, Ordering::AcqRel);
        control.writer.pid.store(std::process::id(), Ordering::Release);
        let mut writer = Writer { region, free: BTreeSet::new(), retired: VecDeque::new(), grace_timeout: Duration::from_secs(1) };
        if let Some(change) = writer.region.control().journal.pending() {
            writer.apply(&change);
            writer.region.control().journal.commit();
        }
        for slot in writer.region.qsbr().readers {
            let pid = slot.owner();
            if pid != 0 && !process_alive(pid) {
                slot.release();
            }
        }
        let sad = writer.region.sad();
        writer.free = (0..sad.slots.len() as u32)
            .filter(|&s| matches!(sad.read(s), Ok(Some((r, _))) if r.state() == SlotState::Free))
            .collect();
        Ok(writer)
    }

    pub fn region(&self) -> &Arc<Region> {
        &self.region
    }

    /// How long a policy change waits for readers to pass a quiescent state.
    pub fn set_grace_timeout(&mut self, timeout: Duration) {
        self.grace_timeout = timeout;
    }

    /// Reserves a random unused SPI for an inbound SA to `dst` (a larval SA until `add_sa`). The
    /// SPI's low bits are the number of the slot it is reserved in, so that the dataplane finds it
    /// with one memory access ([`crate::sad::Sad::spi_slot`]); the other bits are random.
    pub fn get_spi(&mut self, src: IpAddr, dst: IpAddr) -> Result<u32, OpError> {
        let slot = self.take_slot(None)?;
        let random_bits = self.region.sad().spi_free_bits();
        for _ in 0..GET_SPI_TRIES {
            let mut b = [0u8; 4];
            getrandom::getrandom(&mut b).expect("the kernel's random source failed");
            let spi = u32::from_ne_bytes(b) & random_bits | slot;
            if spi < MIN_SPI || self.region.sad().find(spi, &dst.into()).is_some() {
                continue;
            }
            let record = SaRecord::larval(spi, src, dst, now_ns());
            self.change(Change::Upsert { slot, record, fresh: false });
            return Ok(spi);
        }
        self.free.insert(slot);
        Err(OpError::NoFreeSpi(dst))
    }

    /// Installs an SA. An SPI reserved with `get_spi` for the same destination is filled in.
    pub fn add_sa(&mut self, config: &SaConfig) -> Result<SaKey, OpError> {
        config.validate()?;
        self.check_reqid(config.reqid)?;
        let sad = self.region.sad();
        let dst = RawAddr::from(config.dst);
        let slot = match sad.find(config.spi, &dst) {
            Some((_, slot)) if self.record(slot).state() == SlotState::Larval => slot,
            Some(_) => return Err(OpError::DuplicateSpi { spi: config.spi, dst: config.dst }),
            // In the SPI's own slot if it is free: the dataplane then finds the SA with one
            // memory access, as a negotiated one (`get_spi`; ipsec-secgw's SPI2IDX).
            None => self.take_slot(sad.spi_slot(config.spi))?,
        };
        let record = SaRecord::live(config, now_ns());
        self.change(Change::Upsert { slot, record, fresh: true });
        Ok(SaKey { spi: config.spi, dst: config.dst })
    }

    /// Changes what may change in a live SA: addresses' NAT mapping (source and UDP ports),
    /// selectors, lifetimes, idle timeout, flags, reqid and policy link. Keys, suite, direction,
    /// mode and ESN are fixed for an SA's life.
    pub fn update_sa(&mut self, config: &SaConfig) -> Result<(), OpError> {
        config.validate()?;
        self.check_reqid(config.reqid)?;
        let slot = self.live_slot(config.spi, config.dst)?;
        let old = self.record(slot);
        let new = SaRecord::live(config, old.installed_at_ns);
        check_immutable(&old, &new)?;
        self.change(Change::Upsert { slot, record: new, fresh: false });
        Ok(())
    }

    /// What `add_sa` or `update_sa` would refuse in `config` itself, whatever the room in the
    /// SAD: an invalid configuration, a reqid out of range, or, for an SA live under its SPI and
    /// destination, a change of what is fixed for its life. For a caller that must know before
    /// it changes anything.
    pub fn check_sa(&self, config: &SaConfig) -> Result<(), OpError> {
        config.validate()?;
        self.check_reqid(config.reqid)?;
        match self.live_slot(config.spi, config.dst) {
            Ok(slot) => check_immutable(&self.record(slot), &SaRecord::live(config, 0)),
            Err(_) => Ok(()),
        }
    }

    /// An SA's configuration, state and runtime counters.
    pub fn query_sa(&self, key: SaKey) -> Result<SaInfo, OpError> {
        inspect::query_sa(&self.region, key.spi, key.dst).ok_or(OpError::NoSuchSa { spi: key.spi, dst: key.dst })
    }

    /// Deletes an SA (or a reserved SPI). Its key bytes are zeroed in the region.
    pub fn del_sa(&mut self, key: SaKey) -> Result<(), OpError> {
        let (_, slot) = self
            .region
            .sad()
            .find(key.spi, &key.dst.into())
            .ok_or(OpError::NoSuchSa { spi: key.spi, dst: key.dst })?;
        let record = self.record(slot);
        self.change(Change::Remove { slot, record });
        self.retire_slot(slot);
        Ok(())
    }

    /// How many more SAs the SAD can take now (some of the slots after their grace period).
    pub fn free_sa_slots(&self) -> usize {
        self.free.len() + self.retired.len()
    }

    /// Every SA and reserved SPI in the region.
    pub fn list_sas(&self) -> Vec<SaInfo> {
        inspect::list_sas(&self.region)
    }

    /// Adds a rule to the SPD and publishes the new snapshot. Returns the rule's id.
    pub fn add_policy(&mut self, policy: &Policy) -> Result<u32, OpError> {
        Ok(self.add_policies(std::slice::from_ref(policy))?[0])
    }

    /// Adds several rules in one snapshot.
    pub fn add_policies(&mut self, policies: &[Policy]) -> Result<Vec<u32>, OpError> {
        self.replace_policies(|_| false, policies)
    }

    /// Removes the rules `replaced` selects and adds `policies`, in one snapshot, so that no
    /// reader sees the SPD without either; the rules kept keep their ids. Returns the new ids.
    pub fn replace_policies(
        &mut self,
        replaced: impl Fn(&Policy) -> bool,
        policies: &[Policy],
    ) -> Result<Vec<u32>, OpError> {
        for p in policies {
            p.validate()?;
            if let Action::Protect { reqid, .. } = p.action {
                self.check_reqid(reqid)?;
            }
        }
        let mut rules = self.policy_records();
        rules.retain(|r| !replaced(&r.to_policy()));
        let capacity = self.region.capacities().policies;
        if rules.len() + policies.len() > capacity as usize {
            return Err(OpError::SpdFull(capacity));
        }
        let spd = &self.region.control().spd;
        let ids: Vec<u32> = policies.iter().map(|_| spd.take_policy_id()).collect();
        for (id, p) in ids.iter().zip(policies) {
            // After every rule of the same or higher precedence: ties keep insertion order.
            let at = rules.partition_point(|r| r.priority <= p.priority);
            rules.insert(at, PolicyRecord::new(*id, p));
        }
        self.publish(&rules)?;
        Ok(ids)
    }

    /// Removes a rule and publishes the new snapshot.
    pub fn del_policy(&mut self, id: u32) -> Result<(), OpError> {
        let mut rules = self.policy_records();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        if rules.len() == before {
            return Err(OpError::NoSuchPolicy(id));
        }
        self.publish(&rules)
    }

    /// The published rules in evaluation order, with their ids.
    pub fn policies(&self) -> Vec<(u32, Policy)> {
        self.policy_records().iter().map(|r| (r.id, r.to_policy())).collect()
    }

    /// The published SPD version (incremented by every change).
    pub fn spd_version(&self) -> u64 {
        self.region.spd_view().version
    }

    /// Deletes every SA and reserved SPI.
    pub fn flush_sas(&mut self) {
        let sad = self.region.sad();
        for slot in 0..sad.slots.len() as u32 {
            let record = self.record(slot);
            if record.state() != SlotState::Free {
                self.change(Change::Remove { slot, record });
                self.retire_slot(slot);
            }
        }
    }

    /// Removes every rule.
    pub fn flush_policies(&mut self) -> Result<(), OpError> {
        self.publish(&[])
    }

    /// Deletes every SA and every rule.
    pub fn flush(&mut self) -> Result<(), OpError> {
        self.flush_sas();
        self.flush_policies()
    }

    /// The next event from the dataplane. Events of kinds this build does not know are skipped.
    pub fn pop_event(&mut self) -> Option<Event> {
        let ring = self.region.ring();
        while let Some(words) = ring.pop() {
            if let Some(event) = Event::from_record(&bytemuck::cast(words)) {
                return Some(event);
            }
        }
        None
    }

    /// Events the dataplane could not queue because the ring was full.
    pub fn events_lost(&self) -> u64 {
        self.region.ring().overflows()
    }

    // ---- internals ----

    fn check_reqid(&self, reqid: u32) -> Result<(), OpError> {
        let limit = self.region.capacities().reqids;
        if reqid >= limit {
            return Err(OpError::ReqidOutOfRange { reqid, limit });
        }
        Ok(())
    }

    /// A free slot: `preferred` if it is free, else one never used or whose grace period has
    /// passed; if only slots deleted within the grace period are left, the oldest, once the
    /// readers have moved past it.
    fn take_slot(&mut self, preferred: Option<u32>) -> Result<u32, OpError> {
        let qsbr = self.region.qsbr();
        while let Some(&(slot, token)) = self.retired.front() {
            if qsbr.check(token).is_err() {
                break;
            }
            self.retired.pop_front();
            self.free.insert(slot);
        }
        if let Some(slot) = preferred.filter(|slot| self.free.remove(slot)) {
            return Ok(slot);
        }
        if let Some(slot) = self.free.pop_first() {
            return Ok(slot);
        }
        let (slot, token) = *self.retired.front().ok_or(OpError::SadFull(self.region.capacities().sas))?;
        self.wait_for_readers(token)?;
        self.retired.pop_front();
        Ok(slot)
    }

    /// Puts the slot of a deleted SA aside until its grace period has passed (`retired`).
    fn retire_slot(&mut self, slot: u32) {
        self.retired.push_back((slot, self.region.qsbr().start()));
    }

    /// The writer's own view of a slot (only it writes, so reads never contend after recovery).
    fn record(&self, slot: u32) -> SaRecord {
        inspect::record(&self.region, slot).unwrap_or_else(SaRecord::zeroed)
    }

    fn live_slot(&self, spi: u32, dst: IpAddr) -> Result<u32, OpError> {
        match self.region.sad().find(spi, &dst.into()) {
            Some((_, slot)) if self.record(slot).state() == SlotState::Live => Ok(slot),
            _ => Err(OpError::NoSuchSa { spi, dst }),
        }
    }

    /// Journals a change, applies it, and marks it done.
    fn change(&mut self, change: Change) {
        let journal = &self.region.control().journal;
        journal.begin(&change);
        self.apply(&change);
        journal.commit();
    }

    /// Applies a change; idempotent, so a journaled change can be replayed after a crash.
    fn apply(&self, change: &Change) {
        let sad = self.region.sad();
        match *change {
            Change::Upsert { slot, record, fresh } => {
                let current = sad.read(slot).ok().flatten().map(|(r, _)| r);
                if current != Some(record) {
                    if fresh {
                        // Before the SA becomes visible, so no dataplane has used this state.
                        self.region.sa_runtime()[slot as usize].reset();
                    }
                    sad.write(slot, &record);
                }
                if sad.find(record.spi, &record.dst).is_none() {
                    sad.index_insert(record.spi, &record.dst, slot);
                }
                if record.state() == SlotState::Live && record.direction() == Direction::Out && record.reqid != 0 {
                    sad.reqid_links[record.reqid as usize].store(slot + 1, Ordering::Release);
                }
            }
            Change::Remove { slot, record } => {
                if let Some((pos, s)) = sad.find(record.spi, &record.dst) {
                    if s == slot {
                        sad.index_remove(pos);
                    }
                }
                if let Some(link) = sad.reqid_links.get(record.reqid as usize) {
                    let _ = link.compare_exchange(slot + 1, 0, Ordering::AcqRel, Ordering::Relaxed);
                }
                sad.write(slot, &SaRecord::zeroed());
            }
        }
    }

    fn policy_records(&self) -> Vec<PolicyRecord> {
        self.region.spd_view().iter().collect()
    }

    /// Publishes `rules` as the new snapshot, first waiting until no reader can still be using
    /// the buffer it overwrites.
    fn publish(&mut self, rules: &[PolicyRecord]) -> Result<(), OpError> {
        let spd = &self.region.control().spd;
        let (buffer, retired_at) = spd.next_buffer();
        if retired_at != 0 {
            self.wait_for_readers(retired_at)?;
        }
        let (_, old) = spd.publish(self.region.spd_buffers(), buffer, rules);
        spd.retire(old, self.region.qsbr().start());
        Ok(())
    }

    fn wait_for_readers(&self, token: u64) -> Result<(), OpError> {
        let qsbr = self.region.qsbr();
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let Err(lag) = qsbr.check(token) else { return Ok(()) };
            if lag.pid != 0 && !process_alive(lag.pid) {
                qsbr.readers[lag.slot].release();
                continue;
            }
            let waited = start.elapsed();
            if waited > self.grace_timeout {
                return Err(OpError::ReaderStalled { slot: lag.slot, pid: lag.pid, waited });
            }
            spins += 1;
            if spins < 1_000 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }
}

/// Keys, suite, direction, mode and ESN are fixed for an SA's life.
fn check_immutable(old: &SaRecord, new: &SaRecord) -> Result<(), OpError> {
    for (field, same) in [
        ("direction", old.direction == new.direction),
        ("mode", old.mode == new.mode),
        ("suite", (old.cipher, old.integrity, old.icv_len) == (new.cipher, new.integrity, new.icv_len)),
        ("keys", old.enc_key == new.enc_key && old.auth_key == new.auth_key),
        ("ESN", (old.flags ^ new.flags) & crate::sa::FLAG_ESN == 0),
    ] {
        if !same {
            return Err(OpError::Immutable { spi: new.spi, field });
        }
    }
    Ok(())
}

fn process_alive(pid: u32) -> bool {
    match rustix::process::Pid::from_raw(pid as i32) {
        Some(p) => !matches!(rustix::process::test_kill_process(p), Err(rustix::io::Errno::SRCH)),
        None => false,
    }
}
