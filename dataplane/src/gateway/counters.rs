//! Why the gateway drops a packet, and the per-lcore counters the statistics are made of. Each
//! lcore writes only its own counters (relaxed atomics, no sharing of cache lines between lcores);
//! the main lcore reads them all for the statistics file and the periodic log line.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::drop::DropReason;

macro_rules! gateway_drops {
    ($($(#[$doc:meta])* $name:ident => $label:literal;)*) => {
        /// Drops decided by the gateway pipeline around the ESP core.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum GatewayDrop {
            $($(#[$doc])* $name,)*
        }

        impl GatewayDrop {
            pub const ALL: &'static [GatewayDrop] = &[$(GatewayDrop::$name),*];

            pub fn name(self) -> &'static str {
                match self {
                    $(GatewayDrop::$name => $label,)*
                }
            }
        }
    };
}

gateway_drops! {
    /// Shorter than an Ethernet header, or an ARP packet that is not Ethernet/IPv4.
    MalformedFrame => "malformed_frame";
    /// Neither IPv4, IPv6 nor ARP.
    UnsupportedEthertype => "unsupported_ethertype";
    /// Tagged with a VLAN the port is not configured for (or tagged on an untagged port).
    WrongVlan => "wrong_vlan";
    /// The IP header is not valid.
    MalformedIp => "malformed_ip";
    /// TTL or hop limit would reach zero (a time-exceeded error is sent if allowed).
    TtlExpired => "ttl_expired";
    /// Larger than the egress port's MTU, after ESP for protected traffic (a fragmentation-needed
    /// or packet-too-big error is sent if allowed; the gateway fragments only IPv4 without DF
    /// going into a tunnel-mode SA).
    MtuExceeded => "mtu_exceeded";
    /// No buffer for the next fragment of a packet being fragmented.
    NoBuffer => "no_buffer";
    /// An ICMP error about a packet that came out of an SA would have left without ESP.
    IcmpErrorUnprotected => "icmp_error_unprotected";
    /// No route to the destination.
    NoRoute => "no_route";
    /// The next hop's link-layer address is not known (yet): a solicitation is sent.
    NoNeighbour => "no_neighbour";
    /// A discard rule matched (RFC 4301 4.4.1).
    PolicyDiscard => "policy_discard";
    /// Transit traffic matched no rule: the SPD's default is discard (RFC 4301 4.4.1).
    NoPolicy => "no_policy";
    /// Cleartext arrived for traffic an inbound protect rule covers (RFC 4301 5.2).
    CleartextForProtected => "cleartext_for_protected";
    /// A protect rule has no live outbound SA: an ACQUIRE was raised.
    NoSa => "no_sa";
    /// The SA changed or was being written during the lookup.
    SaChanged => "sa_changed";
    /// The SA record could not be turned into cipher contexts.
    SaUnusable => "sa_unusable";
    /// A NAT-keepalive (RFC 3948 2.3), consumed.
    Keepalive => "nat_keepalive";
    /// The TX queue stayed full.
    TxFull => "tx_full";
}

/// Any reason a packet is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Esp(DropReason),
    Gateway(GatewayDrop),
}

impl From<DropReason> for Reason {
    fn from(r: DropReason) -> Reason {
        Reason::Esp(r)
    }
}

impl From<GatewayDrop> for Reason {
    fn from(r: GatewayDrop) -> Reason {
        Reason::Gateway(r)
    }
}

impl Reason {
    /// Number of distinct reasons: the length of the counter array.
    pub fn count() -> usize {
        DropReason::ALL.len() + GatewayDrop::ALL.len()
    }

    pub fn index(self) -> usize {
        match self {
            Reason::Esp(r) => DropReason::ALL.iter().position(|x| *x == r).unwrap_or(0),
            Reason::Gateway(r) => DropReason::ALL.len() + GatewayDrop::ALL.iter().position(|x| *x == r).unwrap_or(0),
        }
    }

    pub fn name_of(index: usize) -> &'static str {
        match DropReason::ALL.get(index) {
            Some(r) => r.name(),
            None => GatewayDrop::ALL.get(index - DropReason::ALL.len()).map_or("?", |r| r.name()),
        }
    }
}

/// Counters of one lcore.
#[derive(Debug)]
#[repr(align(64))]
pub struct LcoreCounters {
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    pub encrypted: AtomicU64,
    pub decrypted: AtomicU64,
    pub bypassed: AtomicU64,
    pub exception: AtomicU64,
    pub from_host: AtomicU64,
    /// ICMP errors sent (time exceeded, fragmentation needed, packet too big).
    pub icmp_errors: AtomicU64,
    /// ICMP errors not sent because of the lcore's rate limit.
    pub icmp_errors_limited: AtomicU64,
    /// Fragments made of IPv4 packets too large for their tunnel (each then encrypted).
    pub fragments: AtomicU64,
    pub polls: AtomicU64,
    pub busy_polls: AtomicU64,
    drops: Vec<AtomicU64>,
}

impl Default for LcoreCounters {
    fn default() -> Self {
        let z = || AtomicU64::new(0);
        LcoreCounters {
            rx: z(),
            tx: z(),
            encrypted: z(),
            decrypted: z(),
            bypassed: z(),
            exception: z(),
            from_host: z(),
            icmp_errors: z(),
            icmp_errors_limited: z(),
            fragments: z(),
            polls: z(),
            busy_polls: z(),
            drops: (0..Reason::count()).map(|_| z()).collect(),
        }
    }
}

/// Adds to a counter only this lcore writes.
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

impl LcoreCounters {
    #[inline]
    pub fn count_drop(&self, reason: Reason) {
        bump(&self.drops[reason.index()], 1);
    }

    pub fn drops(&self) -> Vec<u64> {
        self.drops.iter().map(|d| d.load(Ordering::Relaxed)).collect()
    }

    pub fn dropped(&self, reason: Reason) -> u64 {
        self.drops[reason.index()].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter_and_name() {
        let all: Vec<Reason> =
            DropReason::ALL.iter().map(|r| Reason::Esp(*r)).chain(GatewayDrop::ALL.iter().map(|r| Reason::Gateway(*r))).collect();
        let idx: std::collections::HashSet<usize> = all.iter().map(|r| r.index()).collect();
        assert_eq!(idx.len(), Reason::count());
        let names: std::collections::HashSet<&str> = (0..Reason::count()).map(Reason::name_of).collect();
        assert_eq!(names.len(), Reason::count());
        let c = LcoreCounters::default();
        c.count_drop(GatewayDrop::NoRoute.into());
        assert_eq!(c.dropped(GatewayDrop::NoRoute.into()), 1);
        assert_eq!(c.dropped(DropReason::Replay.into()), 0);
    }
}
