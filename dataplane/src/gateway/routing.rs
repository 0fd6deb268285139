//! Where a packet goes next: static and connected routes (longest prefix match) and the
//! link-layer address of the next hop (configured, or learned from ARP and IPv6 neighbour
//! discovery). Learned neighbours are shared by all lcores; each lcore keeps a copy that it
//! refreshes when the shared table's version changes, so the per-packet lookup takes no lock.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustc_hash::FxHashMap;

use super::ether::Mac;
use super::Side;
use crate::esp::flow::FlowAddr;

/// An address prefix, IPv4 as IPv4-mapped IPv6 so both families share one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub len: u8,
}

impl Net {
    fn key(a: IpAddr) -> (u128, u8) {
        match a {
            IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), 96),
            IpAddr::V6(v6) => (u128::from(v6), 0),
        }
    }

    /// The prefix as (family is IPv4, masked address, mask) over the mapped 128-bit key.
    fn masked(&self) -> (bool, u128, u128) {
        let (net, offset) = Net::key(self.addr);
        let len = u32::from(self.len) + u32::from(offset);
        let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
        (self.addr.is_ipv4(), net & mask, mask)
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        let (v4, net, mask) = self.masked();
        v4 == a.is_ipv4() && Net::key(a).0 & mask == net
    }
}

impl std::str::FromStr for Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Net, String> {
        let (addr, len) = s.split_once('/').ok_or_else(|| format!("'{s}' is not a prefix (address/length)"))?;
        let addr = parse_ip(addr)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len: u8 = len.parse().ok().filter(|l| *l <= max).ok_or_else(|| format!("prefix length '{len}' must be 0..={max}"))?;
        Ok(Net { addr, len })
    }
}

/// An address of the configuration. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are refused:
/// packets never carry them (RFC 4942 2.2; `Flow::of` drops them), and routes, neighbours and
/// flows key on that very form for IPv4 (`FlowAddr`), so one would stand for the IPv4 address.
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            Err(format!("'{s}' is an IPv4-mapped IPv6 address, which no packet carries (RFC 4942 2.2); write the IPv4 address"))
        }
        Ok(ip) => Ok(ip),
        Err(_) => Err(format!("'{s}' is not an IP address")),
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One route: traffic to `net` leaves on `side`, to `via` or (connected) to its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub net: Net,
    pub side: Side,
    pub via: Option<IpAddr>,
}

/// The routing table, longest prefix first, with each prefix's mask computed once.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<CompiledRoute>,
}

/// A route as the lookup reads it.
#[derive(Debug, Clone, Copy)]
struct CompiledRoute {
    /// (family is IPv4, masked prefix, mask), as `Net::masked` gives them.
    prefix: (bool, u128, u128),
    side: Side,
    via: Option<FlowAddr>,
}

impl Routes {
    pub fn new(mut routes: Vec<Route>) -> Routes {
        routes.sort_by_key(|r| std::cmp::Reverse(r.net.len));
        let compile = |r: Route| CompiledRoute { prefix: r.net.masked(), side: r.side, via: r.via.map(FlowAddr::from) };
        Routes { routes: routes.into_iter().map(compile).collect() }
    }

    /// The side and next-hop address for `dst`. Addresses are 128-bit numbers (IPv4 mapped, as
    /// `Net::key` maps prefixes), passed in registers: an `IpAddr` passed by reference is
    /// read back in wider pieces than it was written, a store-forwarding stall per packet.
    pub fn lookup(&self, dst: FlowAddr) -> Option<(Side, FlowAddr)> {
        let (v4, key) = (dst.is_ipv4(), dst.0);
        self.routes
            .iter()
            .find(|r| r.prefix.0 == v4 && key & r.prefix.2 == r.prefix.1)
            .map(|r| (r.side, r.via.unwrap_or(dst)))
    }
}

/// Neighbours learned at run time, shared by the lcores of a process.
#[derive(Debug, Default)]
pub struct Neighbours {
    table: Mutex<HashMap<(Side, IpAddr), Mac>>,
    version: AtomicU64,
}

impl Neighbours {
    /// Records that `ip` on `side` is at `mac`; cheap when nothing changed.
    pub fn learn(&self, side: Side, ip: IpAddr, mac: Mac) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.insert((side, ip), mac) != Some(mac) {
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    pub fn snapshot(&self) -> Vec<(Side, IpAddr, Mac)> {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table.iter().map(|(&(s, ip), &mac)| (s, ip, mac)).collect()
    }
}

/// A neighbour answer: the next hop (side and address) and its link-layer address.
type Answer = ((Side, FlowAddr), Mac);

/// Entries of the per-lcore cache of recent neighbour answers.
const RECENT: usize = 64;

/// The cache entry for `ip`: its last byte, where hosts of one subnet differ.
fn recent_index(ip: FlowAddr) -> usize {
    usize::from(ip.0 as u8) % RECENT
}

/// An lcore's neighbour table: configured entries (which learning never overrides) plus its copy
/// of the learned ones. The copy is hashed with FxHash, several times cheaper per packet than
/// SipHash; its keys are next hops, which only on-link senders (ARP, neighbour discovery) add.
#[derive(Debug)]
pub struct NeighbourCache {
    shared: Arc<Neighbours>,
    configured: HashMap<(Side, IpAddr), Mac>,
    entries: FxHashMap<(Side, IpAddr), Mac>,
    seen_version: u64,
    /// Recent answers, direct-mapped by the address's low bits: a gateway forwards to a few
    /// next hops, or (towards a connected subnet) to many hosts in a row, and both mostly hit.
    recent: [Cell<Option<Answer>>; RECENT],
}

impl NeighbourCache {
    pub fn new(shared: Arc<Neighbours>, configured: HashMap<(Side, IpAddr), Mac>) -> NeighbourCache {
        let entries = configured.iter().map(|(&k, &v)| (k, v)).collect();
        NeighbourCache { shared, configured, entries, seen_version: 0, recent: [const { Cell::new(None) }; RECENT] }
    }

    /// Picks up what other lcores learned (one atomic load when nothing changed).
    pub fn refresh(&mut self) {
        let version = self.shared.version.load(Ordering::Acquire);
        if version != self.seen_version {
            self.entries = self.configured.iter().map(|(&k, &v)| (k, v)).collect();
            for (side, ip, mac) in self.shared.snapshot() {
                self.entries.entry((side, ip)).or_insert(mac);
            }
            self.seen_version = version;
            self.forget_recent();
        }
    }

    pub fn lookup(&self, side: Side, ip: FlowAddr) -> Option<Mac> {
        let recent = &self.recent[recent_index(ip)];
        match recent.get() {
            Some((key, mac)) if key == (side, ip) => Some(mac),
            _ => {
                let mac = self.entries.get(&(side, ip.ip())).copied()?;
                recent.set(Some(((side, ip), mac)));
                Some(mac)
            }
        }
    }

    fn forget_recent(&self) {
        for r in &self.recent {
            r.set(None);
        }
    }

    /// Learns from a packet seen on `side` (ARP, neighbour discovery).
    pub fn learn(&mut self, side: Side, ip: IpAddr, mac: Mac) {
        if self.configured.contains_key(&(side, ip)) || mac.is_multicast() || self.entries.get(&(side, ip)) == Some(&mac) {
            return;
        }
        self.shared.learn(side, ip, mac);
        self.entries.insert((side, ip), mac);
        self.forget_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Net {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_families_do_not_mix() {
        let routes = Routes::new(vec![
            Route { net: net("0.0.0.0/0"), side: Side::Unprotected, via: Some("198.18.0.2".parse().unwrap()) },
            Route { net: net("198.18.1.0/24"), side: Side::Protected, via: None },
            Route { net: net("2001:2::/48"), side: Side::Protected, via: None },
        ]);
        let a = |s: &str| s.parse::<FlowAddr>().unwrap();
        assert_eq!(routes.lookup(a("198.18.1.7")), Some((Side::Protected, a("198.18.1.7"))));
        assert_eq!(routes.lookup(a("198.19.0.1")), Some((Side::Unprotected, a("198.18.0.2"))));
        assert_eq!(routes.lookup(a("2001:2::9")), Some((Side::Protected, a("2001:2::9"))));
        assert_eq!(routes.lookup(a("2001:3::9")), None);
        assert!("198.18.0.0/33".parse::<Net>().is_err());
    }

    #[test]
    fn learned_neighbours_reach_other_lcores_but_never_override_configuration() {
        let shared = Arc::new(Neighbours::default());
        let ip: IpAddr = "198.18.0.2".parse().unwrap();
        let other: IpAddr = "198.18.0.3".parse().unwrap();
        let configured = HashMap::from([((Side::Unprotected, ip), Mac([2, 0, 0, 0, 0, 2]))]);
        let mut a = NeighbourCache::new(shared.clone(), configured.clone());
        let mut b = NeighbourCache::new(shared, configured);
        a.learn(Side::Unprotected, ip, Mac([2, 0, 0, 0, 0, 9]));
        a.learn(Side::Unprotected, other, Mac([2, 0, 0, 0, 0, 3]));
        assert_eq!(b.lookup(Side::Unprotected, other.into()), None);
        b.refresh();
        assert_eq!(b.lookup(Side::Unprotected, other.into()), Some(Mac([2, 0, 0, 0, 0, 3])));
        assert_eq!(b.lookup(Side::Unprotected, ip.into()), Some(Mac([2, 0, 0, 0, 0, 2])));
        assert_eq!(b.lookup(Side::Protected, other.into()), None);
        // A relearned address is seen at once, also right after a lookup of it.
        assert_eq!(a.lookup(Side::Unprotected, other.into()), Some(Mac([2, 0, 0, 0, 0, 3])));
        a.learn(Side::Unprotected, other, Mac([2, 0, 0, 0, 0, 4]));
        assert_eq!(a.lookup(Side::Unprotected, other.into()), Some(Mac([2, 0, 0, 0, 0, 4])));
    }
}
