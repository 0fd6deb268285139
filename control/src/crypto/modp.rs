//! Finite-field Diffie-Hellman over the RFC 3526 MODP groups 14 (2048-bit) and 15 (3072-bit),
//! generator 2, in constant time (crypto-bigint Montgomery exponentiation).
use super::{CryptoError, Rng};
use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Encoding, Uint, U2048, U3072, U512};
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

/// The longest exponent, in bytes.
const MAX_EXPONENT_BYTES: usize = 64;

/// RFC 3526 section 8: exponents of twice the group's strength suffice. The upper strength
/// estimates are 160 bits for group 14 and 210 bits for group 15: 320-bit and 512-bit exponents.
/// (Each exponent bit costs a modular squaring; 320 instead of 512 bits makes group 14 about
/// 1.6 times faster.)
fn exponent_bytes(bits: usize) -> usize {
    if bits == 2048 {
        40
    } else {
        MAX_EXPONENT_BYTES
    }
}

/// A MODP private exponent and its group.
pub struct ModpKey {
    bits: usize,
    /// Big-endian, right-aligned: only the last `exponent_bytes(bits)` bytes are used.
    exponent: Zeroizing<[u8; MAX_EXPONENT_BYTES]>,
}

impl std::fmt::Debug for ModpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModpKey({} bits)", self.bits)
    }
}

/// base^exp mod p as big-endian bytes of the prime's length (RFC 7296 2.14: g^ir keeps its
/// leading zeros). A peer's value must have the prime's length and satisfy 1 < y < p - 1
/// (SP 800-56A 5.6.2.3.1).
fn modexp<const LIMBS: usize>(
    prime_hex: &str,
    peer: Option<&[u8]>,
    exp: &U512,
    exp_bits: usize,
) -> Result<Vec<u8>, CryptoError>
where
    Uint<LIMBS>: Encoding,
{
    let prime = Uint::<LIMBS>::from_be_hex(prime_hex);
    let base = match peer {
        None => Uint::<LIMBS>::from_u8(2),
        Some(bytes) if bytes.len() == Uint::<LIMBS>::BYTES => Uint::<LIMBS>::from_be_slice(bytes),
        Some(_) => return Err(CryptoError::InvalidPublicValue),
    };
    if base <= Uint::ONE || base >= prime.wrapping_sub(&Uint::ONE) {
        return Err(CryptoError::InvalidPublicValue);
    }
    let params = DynResidueParams::new(&prime);
    let result = DynResidue::new(&base, params)
        .pow_bounded_exp(exp, exp_bits)
        .retrieve();
    Ok(result.to_be_bytes().as_ref().to_vec())
}

impl ModpKey {
    /// `bits` is 2048 or 3072.
    pub fn generate(bits: usize, rng: &mut dyn Rng) -> ModpKey {
        let mut exponent = Zeroizing::new([0u8; MAX_EXPONENT_BYTES]);
        rng.fill(&mut exponent[MAX_EXPONENT_BYTES - exponent_bytes(bits)..]);
        ModpKey { bits, exponent }
    }

    fn run(&self, base: Option<&[u8]>) -> Result<Vec<u8>, CryptoError> {
        let exp = U512::from_be_slice(self.exponent.as_ref());
        let exp_bits = exponent_bytes(self.bits) * 8;
        match self.bits {
            2048 => modexp::<{ U2048::LIMBS }>(MODP_2048, base, &exp, exp_bits),
            _ => modexp::<{ U3072::LIMBS }>(MODP_3072, base, &exp, exp_bits),
        }
    }

    pub fn public_value(&self) -> Result<Vec<u8>, CryptoError> {
        self.run(None)
    }

    pub fn shared_secret(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.run(Some(peer)).map(Zeroizing::new)
    }

    #[cfg(test)]
    /// The exponent whose bytes are all `byte`, of the group's exponent length.
    pub(crate) fn from_exponent_byte(bits: usize, byte: u8) -> ModpKey {
        let mut exponent = Zeroizing::new([0u8; MAX_EXPONENT_BYTES]);
        exponent[MAX_EXPONENT_BYTES - exponent_bytes(bits)..].fill(byte);
        ModpKey { bits, exponent }
    }
}
