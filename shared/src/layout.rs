//! Where everything sits in the region, and the fingerprint of every `repr(C)` type in it.
//!
//! Both sides compute the same [`Layout`] from the capacities in the header. The layout hash
//! covers the name, size, alignment and field offsets of each type that lives in the region, so a
//! process built from different definitions refuses to attach (see `region.rs`).

use std::mem::{align_of, size_of};

use bytemuck::{Pod, Zeroable};

/// Identifies a region file.
pub const MAGIC: [u8; 8] = *b"IPSGWSHM";
/// Bumped on any change to the meaning of the region, even one the layout hash cannot see.
pub const ABI_VERSION: u32 = 1;

/// FNV-1a, usable in constant expressions.
#[derive(Debug, Clone, Copy)]
pub struct Fingerprint(pub u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprint {
    pub const fn new() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
    pub const fn bytes(self, b: &[u8]) -> Self {
        let mut h = self.0;
        let mut i = 0;
        while i < b.len() {
            h ^= b[i] as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        Fingerprint(h)
    }
    pub const fn num(self, n: usize) -> Self {
        self.bytes(&(n as u64).to_le_bytes())
    }
}

/// Fingerprint of a type's name, size, alignment and the offset of each named field.
#[macro_export]
macro_rules! shape {
    ($fp:expr, $t:ty { $($f:ident),* $(,)? }) => {
        $fp.bytes(stringify!($t).as_bytes())
            .num(::std::mem::size_of::<$t>())
            .num(::std::mem::align_of::<$t>())
            $(.bytes(stringify!($f).as_bytes()).num(::std::mem::offset_of!($t, $f)))*
    };
}

/// Table sizes, fixed when the region is created.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct Capacities {
    /// SA records (inbound and outbound together).
    pub sas: u32,
    /// Rules per SPD snapshot.
    pub policies: u32,
    /// Event ring entries (a power of two).
    pub events: u32,
    /// Reader (dataplane lcore) registrations.
    pub readers: u32,
    /// Largest reqid + 1.
    pub reqids: u32,
    pub _reserved: u32,
}

impl Default for Capacities {
    fn default() -> Self {
        Capacities { sas: 65_536, policies: 4_096, events: 4_096, readers: 64, reqids: 65_536, _reserved: 0 }
    }
}

/// The immutable first bytes of a region: read and checked before the file is mapped.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct Identity {
    pub magic: [u8; 8],
    pub abi_version: u32,
    pub _pad: u32,
    pub layout_hash: u64,
    pub region_size: u64,
    pub capacities: Capacities,
    pub created_at_ns: u64,
}

/// Byte offsets of each section, computed from the capacities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub capacities: Capacities,
    pub control: usize,
    pub sa_slots: usize,
    pub sa_index: usize,
    pub sa_index_len: usize,
    pub sa_runtime: usize,
    pub reqid_links: usize,
    pub spd_buffers: [usize; 2],
    pub readers: usize,
    pub events: usize,
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    #[error("capacity '{0}' must be at least 1")]
    Zero(&'static str),
    #[error("event ring capacity {0} must be a power of two")]
    EventsNotPowerOfTwo(u32),
    #[error("SA capacity {0} exceeds the limit of {MAX_SAS}")]
    TooManySas(u32),
}

/// Keeps the SA index at most half full and its slot numbers below the tombstone marker.
pub const MAX_SAS: u32 = 1 << 30;

const fn align_up(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

impl Layout {
    pub fn new(c: Capacities) -> Result<Layout, CapacityError> {
        use crate::{rcu::ReaderSlot, region::Control, ring::EventCell, sad::SaSlot};
        use crate::{counters::SaRuntime, spd::PolicySlot};
        for (name, v) in [("sas", c.sas), ("policies", c.policies), ("events", c.events), ("readers", c.readers), ("reqids", c.reqids)] {
            if v == 0 {
                return Err(CapacityError::Zero(name));
            }
        }
        if !c.events.is_power_of_two() {
            return Err(CapacityError::EventsNotPowerOfTwo(c.events));
        }
        if c.sas > MAX_SAS {
            return Err(CapacityError::TooManySas(c.sas));
        }
        let mut at = 0usize;
        let mut section = |align: usize, bytes: usize| {
            let start = align_up(at, align.max(64));
            at = start + bytes;
            start
        };
        let _identity = section(64, size_of::<Identity>());
        let control = section(align_of::<Control>(), size_of::<Control>());
        let sa_slots = section(align_of::<SaSlot>(), size_of::<SaSlot>() * c.sas as usize);
        let sa_index_len = (2 * c.sas as usize).next_power_of_two().max(16);
        let sa_index = section(64, 8 * sa_index_len);
        let sa_runtime = section(align_of::<SaRuntime>(), size_of::<SaRuntime>() * c.sas as usize);
        let reqid_links = section(64, 4 * c.reqids as usize);
        let spd_bytes = size_of::<PolicySlot>() * c.policies as usize;
        let spd_buffers = [section(64, spd_bytes), section(64, spd_bytes)];
        let readers = section(align_of::<ReaderSlot>(), size_of::<ReaderSlot>() * c.readers as usize);
        let events = section(align_of::<EventCell>(), size_of::<EventCell>() * c.events as usize);
        // Whole 2 MiB pages, so the same file can live on hugetlbfs.
        let size = align_up(at, 2 << 20);
        Ok(Layout {
            capacities: c,
            control,
            sa_slots,
            sa_index,
            sa_index_len,
            sa_runtime,
            reqid_links,
            spd_buffers,
            readers,
            events,
            size,
        })
    }
}

/// The fingerprint of every type that lives in the region.
pub const LAYOUT_HASH: u64 = {
    use crate::addr::RawAddr;
    use crate::event::EventRecord;
    use crate::policy::PolicyRecord;
    use crate::sa::{Limits, SaRecord, TsRecord};
    let fp = Fingerprint::new().num(ABI_VERSION as usize);
    let fp = shape!(fp, Identity { magic, abi_version, layout_hash, region_size, capacities, created_at_ns });
    let fp = shape!(fp, Capacities { sas, policies, events, readers, reqids });
    let fp = shape!(fp, RawAddr {});
    let fp = shape!(fp, TsRecord { start, end, start_port, end_port, proto });
    let fp = shape!(fp, Limits { bytes, packets, seconds });
    let fp = shape!(fp, SaRecord {
        spi, state, direction, mode, flags, dst, src, reqid, policy_id, cipher, integrity, icv_len,
        enc_key_len, auth_key_len, df_policy, replay_window, encap_src_port, encap_dst_port, enc_key,
        auth_key, ts_local, ts_remote, soft, hard, idle_timeout_secs, installed_at_ns
    });
    let fp = shape!(fp, PolicyRecord {
        id, priority, direction, action, flags, selector_flags, proto, src_len, dst_len,
        template_mode, icmp_type, icmp_code, reqid, src, dst, src_port_lo, src_port_hi,
        dst_port_lo, dst_port_hi, template_src, template_dst
    });
    let fp = shape!(fp, EventRecord { kind, ms_flags, proto, spi, policy_id, src, dst, src_port, dst_port, value });
    let fp = crate::region::control_shape(fp);
    let fp = crate::sad::shape(fp);
    let fp = crate::counters::shape(fp);
    let fp = crate::spd::shape(fp);
    let fp = crate::rcu::shape(fp);
    let fp = crate::ring::shape(fp);
    fp.0
};
