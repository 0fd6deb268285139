//! The IKEv2 pseudorandom functions (HMAC, RFC 2104 / RFC 4868) and prf+ (RFC 7296 2.13).
use super::CryptoError;
use crate::wire::ikev2::PrfId;
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Prf {
    pub fn from_id(id: PrfId) -> Option<Prf> {
        match id {
            PrfId::HmacSha1 => Some(Prf::HmacSha1),
            PrfId::HmacSha256 => Some(Prf::HmacSha256),
            PrfId::HmacSha384 => Some(Prf::HmacSha384),
            PrfId::HmacSha512 => Some(Prf::HmacSha512),
            PrfId::Unknown(_) => None,
        }
    }

    pub fn id(self) -> PrfId {
        match self {
            Prf::HmacSha1 => PrfId::HmacSha1,
            Prf::HmacSha256 => PrfId::HmacSha256,
            Prf::HmacSha384 => PrfId::HmacSha384,
            Prf::HmacSha512 => PrfId::HmacSha512,
        }
    }

    pub(crate) fn algorithm(self) -> hmac::Algorithm {
        match self {
            Prf::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Prf::HmacSha256 => hmac::HMAC_SHA256,
            Prf::HmacSha384 => hmac::HMAC_SHA384,
            Prf::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// Output length, which is also the preferred key length (RFC 7296 2.13).
    pub fn output_len(self) -> usize {
        match self {
            Prf::HmacSha1 => 20,
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
        }
    }

    /// prf(key, data[0] | data[1] | ...).
    pub fn compute(self, key: &[u8], data: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        let key = hmac::Key::new(self.algorithm(), key);
        let mut context = hmac::Context::with_key(&key);
        for part in data {
            context.update(part);
        }
        Zeroizing::new(context.sign().as_ref().to_vec())
    }

    /// prf+(K, S) = T1 | T2 | ..., T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), at most 255
    /// blocks (RFC 7296 2.13). `seed` is the concatenation of its parts.
    pub fn prf_plus(
        self,
        key: &[u8],
        seed: &[&[u8]],
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if len > 255 * self.output_len() {
            return Err(CryptoError::KeymatTooLong);
        }
        let key = hmac::Key::new(self.algorithm(), key);
        let mut out = Zeroizing::new(Vec::with_capacity(len + self.output_len()));
        let mut previous: Option<hmac::Tag> = None;
        let mut counter = 1u8;
        while out.len() < len {
            let mut context = hmac::Context::with_key(&key);
            if let Some(tag) = &previous {
                context.update(tag.as_ref());
            }
            for part in seed {
                context.update(part);
            }
            context.update(&[counter]);
            let tag = context.sign();
            out.extend_from_slice(tag.as_ref());
            previous = Some(tag);
            counter = counter.wrapping_add(1);
        }
        out.truncate(len);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hex;

    /// RFC 2202 test case 2 (HMAC-SHA-1) and RFC 4231 test case 2 (HMAC-SHA-2): key "Jefe".
    #[test]
    fn hmac_vectors() {
        let data: &[u8] = b"what do ya want for nothing?";
        let cases = [
            (Prf::HmacSha1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
            (Prf::HmacSha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (
                Prf::HmacSha384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
            ),
            (
                Prf::HmacSha512,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
        ];
        for (prf, expected) in cases {
            assert_eq!(
                *prf.compute(b"Jefe", &[&data[..10], &data[10..]]),
                hex(expected),
                "{prf:?}"
            );
            assert_eq!(prf.output_len(), hex(expected).len());
        }
    }

    /// prf+ against an independent implementation (Python's hmac module, RFC 7296 2.13
    /// construction): key 0x0b*20, seed "IKEv2 prf+ test", 100 bytes.
    #[test]
    fn prf_plus_vectors() {
        let key = [0x0b; 20];
        let seed: &[u8] = b"IKEv2 prf+ test";
        let sha256 = Prf::HmacSha256
            .prf_plus(&key, &[&seed[..5], &seed[5..]], 100)
            .unwrap();
        assert_eq!(*sha256, hex(PRF_PLUS_SHA256_100));
        let sha1 = Prf::HmacSha1.prf_plus(&key, &[seed], 50).unwrap();
        assert_eq!(*sha1, hex(PRF_PLUS_SHA1_50));
        // The first block is prf(K, S | 0x01).
        assert_eq!(
            &sha256[..32],
            &Prf::HmacSha256.compute(&key, &[seed, &[1]])[..]
        );
        assert_eq!(
            Prf::HmacSha1.prf_plus(&key, &[seed], 255 * 20 + 1),
            Err(CryptoError::KeymatTooLong)
        );
    }

    const PRF_PLUS_SHA256_100: &str = "7ca246a6f2d0d3d4092c16ab407b5e769a2cbf1a39310a0fde81c3030976cd21fb8640987b18f6baf2d5e0f5c920b404cd0d942b285a6389b85a9aef0f22637bffb580af7c599d724ea0561566229df873637b3144bd3d898f839f332c8bcc6cc81c056e";
    const PRF_PLUS_SHA1_50: &str = "866c56991567e31540534ac109f49cf8cbabd0aeae19297f9677887e39618f111e98c392e1cdeea10407864a79c9e0be6542";
}
