//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

/// Adds `data` as big-endian 16-bit words to a ones'-complement accumulator.
pub fn accumulate(mut sum: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        sum += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        sum += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds an accumulator to 16 bits.
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum of `data`: the complement of its ones'-complement sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(accumulate(0, data))
}

/// RFC 1624 equation 3: the checksum after the covered bytes `old` were replaced by `new`
/// (both of even length, the same length).
pub fn update(check: u16, old: &[u8], new: &[u8]) -> u16 {
    let removed = fold(accumulate(0, old));
    !fold(u64::from(!check) + u64::from(!removed) + accumulate(0, new))
}

/// The sum of the IPv4 or IPv6 pseudo-header of an upper-layer packet (RFC 768, RFC 8200 8.1).
pub fn pseudo_header(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u64 {
    accumulate(accumulate(0, src), dst) + u64::from(proto) + len as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of these bytes is ddf2, so the checksum is 220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(accumulate(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
    }

    #[test]
    fn incremental_update_matches_a_full_recompute() {
        let mut data = [0x45u8, 0, 0, 84, 1, 2, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let before = checksum(&data);
        data[12..16].copy_from_slice(&[198, 18, 0, 7]);
        assert_eq!(update(before, &[10, 0, 0, 1], &[198, 18, 0, 7]), checksum(&data));
        assert_eq!(checksum(&[0xab]), !0xab00);
    }
}
