//! IKEv2 cryptography: Diffie-Hellman groups, PRFs and prf+, key derivation (SKEYSEED, the IKE
//! SA keys, child SA KEYMAT) and protection of the Encrypted payload. Randomness is injected
//! through [`Rng`] so the engines stay deterministic under test.
mod dh;
mod integ;
mod keymat;
mod modp;
mod prf;
mod sk;

pub use dh::DhKey;
pub use integ::Integ;
pub use keymat::{
    child_keymat, derive_ike_keys, rekey_skeyseed, skeyseed, ChildKeymat, IkeSaKeys, KeyLengths,
};
pub use modp::prime as modp_prime;
pub use prf::Prf;
pub use sk::{SkCipher, SkEncryption};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("unsupported Diffie-Hellman group {0}")]
    UnsupportedGroup(u16),
    #[error("the peer's key exchange value is invalid")]
    InvalidPublicValue,
    #[error("prf+ cannot produce that much key material")]
    KeymatTooLong,
    #[error("integrity check failed")]
    IntegrityCheckFailed,
    #[error("malformed encrypted payload")]
    MalformedCiphertext,
    #[error("wrong key length")]
    KeyLength,
    #[error("the cryptographic library failed (out of memory)")]
    Library,
}

/// A source of random bytes.
pub trait Rng: Send {
    fn fill(&mut self, out: &mut [u8]);
}

/// The operating system's generator, through aws-lc.
#[derive(Debug, Default)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&mut self, out: &mut [u8]) {
        // aws-lc's generator fails only if the OS cannot provide entropy at all; nothing secure
        // can continue then.
        aws_lc_rs::rand::fill(out).expect("the system random generator failed");
    }
}

/// A deterministic generator for tests and the two-peer harness: HMAC-SHA-256 of a seed over a
/// counter. Not for production keys.
#[derive(Debug, Clone)]
pub struct SeededRng {
    seed: [u8; 32],
    counter: u64,
}

impl SeededRng {
    pub fn new(seed: u64) -> SeededRng {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_be_bytes());
        SeededRng {
            seed: bytes,
            counter: 0,
        }
    }
}

impl Rng for SeededRng {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            self.counter += 1;
            let block = Prf::HmacSha256.compute(&self.seed, &[&self.counter.to_be_bytes()]);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

/// Hex digits to bytes (non-digits skipped); for constants, it panics on an odd digit count.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}
