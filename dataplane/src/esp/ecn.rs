//! DSCP and ECN across the tunnel: RFC 4301 5.1.2.1 (DSCP copied to the outer header) and
//! RFC 6040 (ECN in normal mode, the mode IKEv2 SAs use).

const ECN_MASK: u8 = 0x03;
const NOT_ECT: u8 = 0;
const ECT1: u8 = 1;
const ECT0: u8 = 2;
const CE: u8 = 3;

/// The outer TOS/traffic class at encapsulation: the inner DSCP, and the inner ECN except that CE
/// becomes ECT(0) (RFC 6040 4.1, normal mode).
pub fn encapsulate(inner: u8) -> u8 {
    let ecn = match inner & ECN_MASK {
        CE => ECT0,
        e => e,
    };
    (inner & !ECN_MASK) | ecn
}

/// The inner TOS/traffic class at decapsulation (RFC 6040 4.2, figure 4), the inner DSCP kept;
/// `None` when the combination must be dropped (outer CE on a Not-ECT inner packet).
pub fn decapsulate(outer: u8, inner: u8) -> Option<u8> {
    let ecn = match (inner & ECN_MASK, outer & ECN_MASK) {
        (NOT_ECT, CE) => return None,
        (NOT_ECT, _) => NOT_ECT,
        (_, CE) => CE,
        (ECT0, ECT1) => ECT1,
        (e, _) => e,
    };
    Some((inner & !ECN_MASK) | ecn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6040_encapsulation() {
        assert_eq!(encapsulate(0xb8 | CE), 0xb8 | ECT0);
        for e in [NOT_ECT, ECT0, ECT1] {
            assert_eq!(encapsulate(0x28 | e), 0x28 | e);
        }
    }

    /// RFC 6040 figure 4, row by row (inner across, outer down).
    #[test]
    fn rfc6040_decapsulation_table() {
        let table = [
            // inner, [outer Not-ECT, ECT(0), ECT(1), CE]
            (NOT_ECT, [Some(NOT_ECT), Some(NOT_ECT), Some(NOT_ECT), None]),
            (ECT0, [Some(ECT0), Some(ECT0), Some(ECT1), Some(CE)]),
            (ECT1, [Some(ECT1), Some(ECT1), Some(ECT1), Some(CE)]),
            (CE, [Some(CE), Some(CE), Some(CE), Some(CE)]),
        ];
        for (inner, row) in table {
            for (outer, expected) in [NOT_ECT, ECT0, ECT1, CE].into_iter().zip(row) {
                assert_eq!(decapsulate(0x48 | outer, 0xb8 | inner), expected.map(|e| 0xb8 | e), "inner {inner} outer {outer}");
            }
        }
    }
}
