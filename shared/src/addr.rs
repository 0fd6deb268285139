//! Addresses as stored in the region: 16 bytes, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).

use std::net::{IpAddr, Ipv6Addr};

/// An IPv4 or IPv6 address in a fixed 16-byte form.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RawAddr(pub [u8; 16]);

impl RawAddr {
    pub fn is_ipv4(&self) -> bool {
        Ipv6Addr::from(self.0).to_ipv4_mapped().is_some()
    }

    /// The two 64-bit halves, as they are stored in seqlocked words.
    #[inline]
    pub fn words(&self) -> [u64; 2] {
        bytemuck::cast(self.0)
    }
}

impl From<IpAddr> for RawAddr {
    fn from(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(v4) => RawAddr(v4.to_ipv6_mapped().octets()),
            IpAddr::V6(v6) => RawAddr(v6.octets()),
        }
    }
}

impl From<RawAddr> for IpAddr {
    fn from(a: RawAddr) -> Self {
        let v6 = Ipv6Addr::from(a.0);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }
}

impl std::fmt::Debug for RawAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", IpAddr::from(*self))
    }
}
