//! Zero-copy views of the headers the ESP core reads and writes. Untrusted bytes enter only through
//! the checked constructors, after which the accessors cannot go out of bounds.

pub mod checksum;
pub mod esp;
pub mod ipv4;
pub mod ipv4_fragment;
pub mod ipv6;
pub mod udp_encap;

/// IANA protocol numbers used here.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const IPV4: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6: u8 = 41;
    pub const ESP: u8 = 50;
    pub const ICMPV6: u8 = 58;
    /// RFC 4303 2.6: a dummy packet, to be discarded.
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const SCTP: u8 = 132;
}

/// Why bytes do not form a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the header, or than the length the header claims.
    Truncated,
    /// A version or length field that is not valid.
    Malformed,
}
