//! NAT detection (RFC 7296 2.23).
use super::payloads::notifies;
use crate::wire::ikev2::{Notify, NotifyType, Payload};
use aws_lc_rs::digest;
use std::net::{IpAddr, SocketAddr};

/// SHA-1(SPIi | SPIr | IP | port).
pub fn nat_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> Vec<u8> {
    let mut context = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(&spi_i.to_be_bytes());
    context.update(&spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => context.update(&ip.octets()),
        IpAddr::V6(ip) => context.update(&ip.octets()),
    }
    context.update(&addr.port().to_be_bytes());
    context.finish().as_ref().to_vec()
}

/// The two NAT detection notifications of a message from `local` to `remote`.
pub fn nat_notifies(spi_i: u64, spi_r: u64, local: SocketAddr, remote: SocketAddr) -> [Payload; 2] {
    [
        Payload::Notify(Notify::new(
            NotifyType::NatDetectionSourceIp,
            nat_hash(spi_i, spi_r, local),
        )),
        Payload::Notify(Notify::new(
            NotifyType::NatDetectionDestinationIp,
            nat_hash(spi_i, spi_r, remote),
        )),
    ]
}

/// Whether the peer's NAT detection payloads show a NAT on the path: none of its source hashes
/// matches the address we saw, or its destination hash does not match ours. A peer that sends
/// none does not support NAT traversal.
pub fn nat_detected(
    payloads: &[Payload],
    spi_i: u64,
    spi_r: u64,
    local: SocketAddr,
    remote: SocketAddr,
) -> bool {
    let sources: Vec<_> = notifies(payloads, NotifyType::NatDetectionSourceIp).collect();
    let destination = notifies(payloads, NotifyType::NatDetectionDestinationIp).next();
    let (Some(destination), false) = (destination, sources.is_empty()) else {
        return false;
    };
    let remote_hash = nat_hash(spi_i, spi_r, remote);
    let remote_behind_nat = !sources.iter().any(|n| n.data == remote_hash);
    let local_behind_nat = destination.data != nat_hash(spi_i, spi_r, local);
    remote_behind_nat || local_behind_nat
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cross-checked with an independent computation (Python's hashlib) of RFC 7296 2.23.
    #[test]
    fn nat_hash_and_detection() {
        let a: SocketAddr = "198.18.0.1:500".parse().unwrap();
        let b: SocketAddr = "198.18.0.2:500".parse().unwrap();
        assert_eq!(
            nat_hash(0x0102030405060708, 0, a),
            crate::crypto::hex("280f94959aee1ebe498f9dff32da1d081ab8d03e")
        );
        let from_b = nat_notifies(1, 2, b, a);
        assert!(!nat_detected(&from_b, 1, 2, a, b));
        let translated: SocketAddr = "198.18.0.2:40000".parse().unwrap();
        assert!(nat_detected(&from_b, 1, 2, a, translated));
        assert!(!nat_detected(&[], 1, 2, a, translated));
    }
}
