//! Integrity algorithms for the IKE SA (RFC 2404, RFC 4868): truncated HMAC.
use crate::wire::ikev2::IntegId;
use aws_lc_rs::{constant_time, hmac};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integ {
    HmacSha1_96,
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

impl Integ {
    pub fn from_id(id: IntegId) -> Option<Integ> {
        match id {
            IntegId::HmacSha1_96 => Some(Integ::HmacSha1_96),
            IntegId::HmacSha256_128 => Some(Integ::HmacSha256_128),
            IntegId::HmacSha384_192 => Some(Integ::HmacSha384_192),
            IntegId::HmacSha512_256 => Some(Integ::HmacSha512_256),
            IntegId::None | IntegId::Unknown(_) => None,
        }
    }

    pub fn id(self) -> IntegId {
        match self {
            Integ::HmacSha1_96 => IntegId::HmacSha1_96,
            Integ::HmacSha256_128 => IntegId::HmacSha256_128,
            Integ::HmacSha384_192 => IntegId::HmacSha384_192,
            Integ::HmacSha512_256 => IntegId::HmacSha512_256,
        }
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Integ::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Integ::HmacSha256_128 => hmac::HMAC_SHA256,
            Integ::HmacSha384_192 => hmac::HMAC_SHA384,
            Integ::HmacSha512_256 => hmac::HMAC_SHA512,
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            Integ::HmacSha1_96 => 20,
            Integ::HmacSha256_128 => 32,
            Integ::HmacSha384_192 => 48,
            Integ::HmacSha512_256 => 64,
        }
    }

    pub fn icv_len(self) -> usize {
        match self {
            Integ::HmacSha1_96 => 12,
            Integ::HmacSha256_128 => 16,
            Integ::HmacSha384_192 => 24,
            Integ::HmacSha512_256 => 32,
        }
    }

    pub fn icv(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let tag = hmac::sign(&hmac::Key::new(self.algorithm(), key), data);
        tag.as_ref()[..self.icv_len()].to_vec()
    }

    /// Constant-time comparison with the received ICV.
    pub fn verify(self, key: &[u8], data: &[u8], icv: &[u8]) -> bool {
        constant_time::verify_slices_are_equal(&self.icv(key, data), icv).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hex;

    /// RFC 4868 2.7.2.1 test case 2 (HMAC-SHA-256-128, key "Jefe") and RFC 2202 case 2 truncated.
    #[test]
    fn truncated_hmac_vectors() {
        let data = b"what do ya want for nothing?";
        assert_eq!(
            Integ::HmacSha256_128.icv(b"Jefe", data),
            hex("5bdcc146bf60754e6a042426089575c7")
        );
        assert_eq!(
            Integ::HmacSha1_96.icv(b"Jefe", data),
            hex("effcdf6ae5eb2fa2d27416d5")
        );
        assert!(Integ::HmacSha256_128.verify(
            b"Jefe",
            data,
            &hex("5bdcc146bf60754e6a042426089575c7")
        ));
        assert!(!Integ::HmacSha256_128.verify(
            b"Jefe",
            data,
            &hex("5bdcc146bf60754e6a042426089575c6")
        ));
    }
}
