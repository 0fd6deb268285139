//! Finite-field Diffie-Hellman over the RFC 3526 MODP groups 14 (2048-bit) and 15 (3072-bit),
//! generator 2, in constant time on AWS-LC's bignum (the `aws-lc-bignum` crate): our public
//! value g^x from a precomputed table of powers of 2, the shared secret g^ir with AWS-LC's
//! fixed-window exponentiation. docs/crypto-choice.md has the measurements behind the choice.
use super::{CryptoError, Rng};
use aws_lc_bignum::{FixedBase, Modulus};
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// RFC 3526 section 3 (group 14). Checked when transcribed to be a 2048-bit safe
/// prime; the tests compare g^x with an independent computation.
const MODP_2048: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// RFC 3526 section 4 (group 15). Checked when transcribed to be a 3072-bit safe
/// prime; the tests compare g^x with an independent computation.
const MODP_3072: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

/// RFC 3526 section 8: exponents of twice the group's strength suffice. The upper strength
/// estimates are 160 bits for group 14 and 210 bits for group 15: 320-bit and 448-bit (the
/// 420 bits rounded up to whole 64-bit words) exponents. Every exponentiation costs time in
/// proportion to the exponent's length.
fn exponent_len(bits: usize) -> usize {
    if bits == 2048 {
        40
    } else {
        56
    }
}

/// The prime of group 14 (`bits` 2048) or 15 (3072), big-endian; public for the benchmark that
/// compares this code with another implementation.
pub fn prime(bits: usize) -> Vec<u8> {
    super::hex(if bits == 2048 { MODP_2048 } else { MODP_3072 })
}

/// One group's constants, computed on first use.
struct Group {
    /// p - 1, big-endian (p is odd: only the last byte differs from p).
    prime_minus_one: Vec<u8>,
    /// The table of powers of the generator, 2, which also holds the modulus.
    generator: FixedBase,
}

impl Group {
    fn new(bits: usize) -> Result<Group, CryptoError> {
        let prime = prime(bits);
        let modulus = Modulus::from_be_bytes(&prime).map_err(library)?;
        let mut two = vec![0u8; prime.len()];
        two[prime.len() - 1] = 2;
        let generator = FixedBase::new(modulus, &two, exponent_len(bits)).map_err(library)?;
        let mut prime_minus_one = prime;
        prime_minus_one[bits / 8 - 1] -= 1;
        Ok(Group {
            prime_minus_one,
            generator,
        })
    }

    fn get(bits: usize) -> Result<&'static Group, CryptoError> {
        static GROUP_14: OnceLock<Result<Group, CryptoError>> = OnceLock::new();
        static GROUP_15: OnceLock<Result<Group, CryptoError>> = OnceLock::new();
        let group = if bits == 2048 {
            GROUP_14.get_or_init(|| Group::new(2048))
        } else {
            GROUP_15.get_or_init(|| Group::new(3072))
        };
        group.as_ref().map_err(|error| *error)
    }

    /// A peer's value must have the prime's length and satisfy 1 < y < p - 1 (SP 800-56A
    /// 5.6.2.3.2, partial public-key validation: for a safe prime the only small subgroup is
    /// {1, p - 1}). Equal-length big-endian byte strings compare like the numbers.
    fn check_public_value(&self, peer: &[u8]) -> Result<(), CryptoError> {
        let len = self.prime_minus_one.len();
        let mut one = vec![0u8; len];
        one[len - 1] = 1;
        if peer.len() != len || peer <= &one[..] || peer >= &self.prime_minus_one[..] {
            return Err(CryptoError::InvalidPublicValue);
        }
        Ok(())
    }
}

/// aws-lc-bignum's errors on inputs checked beforehand: only allocation failures remain.
fn library(_: aws_lc_bignum::Error) -> CryptoError {
    CryptoError::Library
}

/// A MODP private exponent and its group.
pub struct ModpKey {
    bits: usize,
    /// Big-endian, `exponent_len(bits)` bytes, top bit set.
    exponent: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ModpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModpKey({} bits)", self.bits)
    }
}

impl ModpKey {
    /// `bits` is 2048 or 3072. The exponent's top bit is set (as OpenSSL's DH key generation
    /// does) so its length, and with it the time of every exponentiation, does not depend on
    /// the secret; 319 and 447 random bits remain.
    pub fn generate(bits: usize, rng: &mut dyn Rng) -> ModpKey {
        let mut exponent = Zeroizing::new(vec![0u8; exponent_len(bits)]);
        rng.fill(&mut exponent);
        exponent[0] |= 0x80;
        ModpKey { bits, exponent }
    }

    /// g^x, the prime's length.
    pub fn public_value(&self) -> Result<Vec<u8>, CryptoError> {
        Group::get(self.bits)?
            .generator
            .pow(&self.exponent)
            .map_err(library)
    }

    /// g^ir from the peer's value, left-padded to the prime's length (RFC 7296 2.14).
    pub fn shared_secret(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let group = Group::get(self.bits)?;
        group.check_public_value(peer)?;
        group
            .generator
            .modulus()
            .pow(peer, &self.exponent)
            .map_err(library)
    }

    #[cfg(test)]
    /// The exponent whose bytes are all `byte` (top bit set), of the group's exponent length.
    pub(crate) fn from_exponent_byte(bits: usize, byte: u8) -> ModpKey {
        ModpKey::from_exponent(bits, vec![byte; exponent_len(bits)])
    }

    #[cfg(test)]
    fn from_exponent(bits: usize, exponent: Vec<u8>) -> ModpKey {
        assert!(exponent.len() == exponent_len(bits) && exponent[0] & 0x80 != 0);
        ModpKey {
            bits,
            exponent: Zeroizing::new(exponent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hex;
    use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
    use crypto_bigint::{Encoding, Uint, U2048, U3072, U512};
    use proptest::prelude::*;

    /// base^exponent mod p with crypto-bigint (portable Rust, independent of AWS-LC).
    fn reference<const LIMBS: usize>(prime_hex: &str, base: &[u8], exponent: &[u8]) -> Vec<u8>
    where
        Uint<LIMBS>: Encoding,
    {
        let params = DynResidueParams::new(&Uint::<LIMBS>::from_be_hex(prime_hex));
        let mut padded = [0u8; 64];
        padded[64 - exponent.len()..].copy_from_slice(exponent);
        DynResidue::new(&Uint::<LIMBS>::from_be_slice(base), params)
            .pow(&U512::from_be_slice(&padded))
            .retrieve()
            .to_be_bytes()
            .as_ref()
            .to_vec()
    }

    fn check_against_reference(bits: usize, mut ours: Vec<u8>, mut theirs: Vec<u8>) {
        ours[0] |= 0x80;
        theirs[0] |= 0x80;
        let reference = |base: &[u8], exponent: &[u8]| match bits {
            2048 => reference::<{ U2048::LIMBS }>(MODP_2048, base, exponent),
            _ => reference::<{ U3072::LIMBS }>(MODP_3072, base, exponent),
        };
        let mut two = vec![0u8; bits / 8];
        two[bits / 8 - 1] = 2;
        let (a, b) = (
            ModpKey::from_exponent(bits, ours.clone()),
            ModpKey::from_exponent(bits, theirs),
        );
        let a_public = a.public_value().unwrap();
        assert_eq!(a_public, reference(&two, &ours));
        let b_public = b.public_value().unwrap();
        assert_eq!(
            *a.shared_secret(&b_public).unwrap(),
            reference(&b_public, &ours)
        );
        assert_eq!(
            a.shared_secret(&b_public).unwrap(),
            b.shared_secret(&a_public).unwrap()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Random exponents: g^x (fixed-base table) and y^x (AWS-LC's exponentiation) equal
        /// crypto-bigint's results, and both sides agree.
        #[test]
        fn group_14_matches_crypto_bigint(ours in any::<[u8; 40]>(), theirs in any::<[u8; 40]>()) {
            check_against_reference(2048, ours.to_vec(), theirs.to_vec());
        }

        #[test]
        fn group_15_matches_crypto_bigint(ours in any::<[u8; 56]>(), theirs in any::<[u8; 56]>()) {
            check_against_reference(3072, ours.to_vec(), theirs.to_vec());
        }
    }

    /// The extreme exponents (all digits 0 or 15 after the top bit; the fixed-base recoding
    /// borrows through every byte for the first).
    #[test]
    fn extreme_exponents_match_crypto_bigint() {
        for bits in [2048, 3072] {
            let len = exponent_len(bits);
            let mut lowest = vec![0u8; len];
            lowest[0] = 0x80;
            check_against_reference(bits, lowest, vec![0xff; len]);
        }
    }

    /// 0, 1, p - 1, p and values of the wrong length are refused; 2 and p - 2 are accepted.
    #[test]
    fn public_value_range() {
        let key = ModpKey::from_exponent_byte(2048, 0xda);
        let prime = hex(MODP_2048);
        let small = |value: u8| {
            let mut bytes = vec![0u8; 256];
            bytes[255] = value;
            bytes
        };
        let minus = |value: u8| {
            let mut bytes = prime.clone();
            bytes[255] -= value;
            bytes
        };
        for bad in [
            small(0),
            small(1),
            minus(1),
            prime.clone(),
            small(2)[1..].to_vec(),
        ] {
            assert_eq!(
                key.shared_secret(&bad).unwrap_err(),
                CryptoError::InvalidPublicValue
            );
        }
        for good in [small(2), minus(2)] {
            assert_eq!(key.shared_secret(&good).unwrap().len(), 256);
        }
    }
}
