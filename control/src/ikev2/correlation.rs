//! IKE SA correlation ([MS-IKEE] 2.2.9, 3.10): a new IKE SA proves, with a keyed hash, that its
//! initiator holds an existing IKE SA's keys. Failures are reported with the private notify
//! 0x3039 at the end of IKE_AUTH and never affect either IKE SA.
use crate::crypto::Prf;
use crate::wire::ikev2::{Correlation, Payload};
use zeroize::Zeroizing;

/// Status codes of the 0x3039 notify ([MS-IKEE] 2.2.7 leaves them to the implementation).
pub const STATUS_NO_SUCH_SA: u32 = 1;
pub const STATUS_BAD_HASH: u32 = 2;

/// What the initiator needs from the original IKE SA.
#[derive(Debug, Clone)]
pub struct CorrelationSource {
    pub original_spi_i: u64,
    pub original_spi_r: u64,
    /// The original SA's SK_ai.
    pub key: Zeroizing<Vec<u8>>,
}

/// prf(SK_ai of SAoriginal, SAcurrent.SPIi | SAcurrent.SPIr | SAoriginal.SPIi | SAoriginal.SPIr),
/// with SAcurrent's PRF.
pub fn hash(prf: Prf, key: &[u8], current: (u64, u64), original: (u64, u64)) -> Vec<u8> {
    prf.compute(
        key,
        &[
            &current.0.to_be_bytes(),
            &current.1.to_be_bytes(),
            &original.0.to_be_bytes(),
            &original.1.to_be_bytes(),
        ],
    )
    .to_vec()
}

pub fn payload(prf: Prf, source: &CorrelationSource, current: (u64, u64)) -> Payload {
    let original = (source.original_spi_i, source.original_spi_r);
    Payload::Correlation(Correlation {
        original_spi_i: source.original_spi_i,
        original_spi_r: source.original_spi_r,
        hash: hash(prf, &source.key, current, original),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against an independent computation (Python's hmac) of the [MS-IKEE] 2.2.9 formula.
    #[test]
    fn correlation_hash_matches_an_independent_computation() {
        let h = hash(Prf::HmacSha256, &[0x11; 32], (1, 2), (3, 4));
        assert_eq!(
            h,
            crate::crypto::hex("779074f072daaa8c62dba07825ccfdcb6b376d5a68a8060b4c60726a45ee438c")
        );
    }
}
