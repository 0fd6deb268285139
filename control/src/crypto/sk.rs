//! Protection of the Encrypted payload (RFC 7296 3.14 for AES-CBC with HMAC, RFC 5282 for
//! AES-GCM with a 16-byte ICV). The sealed data is the tail of the message: IV, ciphertext
//! (payloads, padding, pad length), ICV. The ICV or the AEAD's associated data covers every byte
//! of the message before it.
use super::{CryptoError, Integ, Rng};
use crate::wire::ikev2::EncrId;
use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    self, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroizing;

const AES_BLOCK: usize = 16;
const GCM_SALT: usize = 4;
const GCM_IV: usize = 8;
const GCM_ICV: usize = 16;

/// The encryption transform of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkEncryption {
    /// Key length in bytes (16 or 32); needs an integrity algorithm.
    AesCbc(usize),
    /// Key length in bytes (16 or 32), plus a 4-byte salt in the key material.
    AesGcm16(usize),
}

impl SkEncryption {
    pub fn from_transform(id: EncrId, key_bits: Option<u16>) -> Option<SkEncryption> {
        let key_len = match key_bits? {
            128 => 16,
            256 => 32,
            _ => return None,
        };
        match id {
            EncrId::AesCbc => Some(SkEncryption::AesCbc(key_len)),
            EncrId::AesGcm16 => Some(SkEncryption::AesGcm16(key_len)),
            _ => None,
        }
    }

    /// Bytes of key material SK_e takes (RFC 5282 7.1: key then salt).
    pub fn keymat_len(self) -> usize {
        match self {
            SkEncryption::AesCbc(len) => len,
            SkEncryption::AesGcm16(len) => len + GCM_SALT,
        }
    }

    pub fn is_aead(self) -> bool {
        matches!(self, SkEncryption::AesGcm16(_))
    }
}

enum Engine {
    Cbc {
        encrypt: Box<EncryptingKey>,
        decrypt: Box<DecryptingKey>,
        integ: Integ,
        integ_key: Zeroizing<Vec<u8>>,
    },
    Gcm {
        key: LessSafeKey,
        salt: [u8; GCM_SALT],
    },
}

/// One direction's Encrypted-payload protection (SK_ei/SK_ai or SK_er/SK_ar).
pub struct SkCipher {
    engine: Engine,
    /// RFC 5282 3.1: the GCM IV must never repeat under a key; a counter guarantees it.
    next_gcm_iv: u64,
}

impl std::fmt::Debug for SkCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SkCipher")
    }
}

fn aes(len: usize) -> Result<(&'static cipher::Algorithm, &'static aead::Algorithm), CryptoError> {
    match len {
        16 => Ok((&cipher::AES_128, &aead::AES_128_GCM)),
        32 => Ok((&cipher::AES_256, &aead::AES_256_GCM)),
        _ => Err(CryptoError::KeyLength),
    }
}

impl SkCipher {
    /// `encr_keymat` is SK_e (with the salt for GCM); `integ` is required for CBC, ignored for GCM.
    pub fn new(
        encryption: SkEncryption,
        encr_keymat: &[u8],
        integ: Option<(Integ, &[u8])>,
    ) -> Result<SkCipher, CryptoError> {
        if encr_keymat.len() != encryption.keymat_len() {
            return Err(CryptoError::KeyLength);
        }
        let engine = match encryption {
            SkEncryption::AesCbc(len) => {
                let (alg, _) = aes(len)?;
                let (integ, integ_key) = integ.ok_or(CryptoError::KeyLength)?;
                if integ_key.len() != integ.key_len() {
                    return Err(CryptoError::KeyLength);
                }
                let unbound =
                    || UnboundCipherKey::new(alg, encr_keymat).map_err(|_| CryptoError::KeyLength);
                Engine::Cbc {
                    encrypt: Box::new(
                        EncryptingKey::cbc(unbound()?).map_err(|_| CryptoError::KeyLength)?,
                    ),
                    decrypt: Box::new(
                        DecryptingKey::cbc(unbound()?).map_err(|_| CryptoError::KeyLength)?,
                    ),
                    integ,
                    integ_key: Zeroizing::new(integ_key.to_vec()),
                }
            }
            SkEncryption::AesGcm16(len) => {
                let (_, alg) = aes(len)?;
                let key = UnboundKey::new(alg, &encr_keymat[..len])
                    .map_err(|_| CryptoError::KeyLength)?;
                let mut salt = [0u8; GCM_SALT];
                salt.copy_from_slice(&encr_keymat[len..]);
                Engine::Gcm {
                    key: LessSafeKey::new(key),
                    salt,
                }
            }
        };
        Ok(SkCipher {
            engine,
            next_gcm_iv: 0,
        })
    }

    /// Length of the sealed data for `plain_len` bytes of inner payloads.
    pub fn sealed_len(&self, plain_len: usize) -> usize {
        match &self.engine {
            Engine::Cbc { integ, .. } => {
                let padded = (plain_len + 1).div_ceil(AES_BLOCK) * AES_BLOCK;
                AES_BLOCK + padded + integ.icv_len()
            }
            Engine::Gcm { .. } => GCM_IV + plain_len + 1 + GCM_ICV,
        }
    }

    /// Seals `plaintext` into the last `sealed_len(plaintext.len())` bytes of `message`, which
    /// already holds the IKE header (with its final length) and the SK payload header.
    pub fn seal(
        &mut self,
        message: &mut [u8],
        plaintext: &[u8],
        rng: &mut dyn Rng,
    ) -> Result<(), CryptoError> {
        let sealed_len = self.sealed_len(plaintext.len());
        let start = message
            .len()
            .checked_sub(sealed_len)
            .ok_or(CryptoError::MalformedCiphertext)?;
        let (aad, sealed) = message.split_at_mut(start);
        match &self.engine {
            Engine::Cbc {
                encrypt,
                integ,
                integ_key,
                ..
            } => {
                let icv_len = integ.icv_len();
                let (iv, rest) = sealed.split_at_mut(AES_BLOCK);
                rng.fill(iv);
                let body_len = rest.len() - icv_len;
                let body = &mut rest[..body_len];
                body[..plaintext.len()].copy_from_slice(plaintext);
                let pad_len = body_len - plaintext.len() - 1;
                body[plaintext.len()..body_len - 1].fill(0);
                body[body_len - 1] = pad_len as u8;
                let mut iv_bytes = [0u8; AES_BLOCK];
                iv_bytes.copy_from_slice(iv);
                encrypt
                    .less_safe_encrypt(body, EncryptionContext::Iv128(FixedLength::from(iv_bytes)))
                    .map_err(|_| CryptoError::MalformedCiphertext)?;
                let icv_start = message.len() - icv_len;
                let icv = integ.icv(integ_key, &message[..icv_start]);
                message[icv_start..].copy_from_slice(&icv);
            }
            Engine::Gcm { key, salt } => {
                let iv = self.next_gcm_iv.to_be_bytes();
                self.next_gcm_iv += 1;
                sealed[..GCM_IV].copy_from_slice(&iv);
                let body_end = sealed.len() - GCM_ICV;
                let body = &mut sealed[GCM_IV..body_end];
                body[..plaintext.len()].copy_from_slice(plaintext);
                body[plaintext.len()] = 0;
                let tag = key
                    .seal_in_place_separate_tag(gcm_nonce(salt, &iv), Aad::from(&aad[..]), body)
                    .map_err(|_| CryptoError::MalformedCiphertext)?;
                sealed[body_end..].copy_from_slice(tag.as_ref());
            }
        }
        Ok(())
    }

    /// Checks and decrypts the last `sealed_len` bytes of `message`; returns the inner payloads
    /// with the padding removed.
    pub fn open(
        &self,
        message: &[u8],
        sealed_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let start = message
            .len()
            .checked_sub(sealed_len)
            .ok_or(CryptoError::MalformedCiphertext)?;
        let (aad, sealed) = message.split_at(start);
        let mut plain = match &self.engine {
            Engine::Cbc {
                decrypt,
                integ,
                integ_key,
                ..
            } => {
                let icv_len = integ.icv_len();
                let body_len = sealed
                    .len()
                    .checked_sub(AES_BLOCK + icv_len)
                    .ok_or(CryptoError::MalformedCiphertext)?;
                if body_len == 0 || body_len % AES_BLOCK != 0 {
                    return Err(CryptoError::MalformedCiphertext);
                }
                let icv_start = message.len() - icv_len;
                if !integ.verify(integ_key, &message[..icv_start], &message[icv_start..]) {
                    return Err(CryptoError::IntegrityCheckFailed);
                }
                let mut iv = [0u8; AES_BLOCK];
                iv.copy_from_slice(&sealed[..AES_BLOCK]);
                let mut body = Zeroizing::new(sealed[AES_BLOCK..AES_BLOCK + body_len].to_vec());
                decrypt
                    .decrypt(&mut body, DecryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(|_| CryptoError::MalformedCiphertext)?;
                body
            }
            Engine::Gcm { key, salt } => {
                if sealed.len() < GCM_IV + 1 + GCM_ICV {
                    return Err(CryptoError::MalformedCiphertext);
                }
                let mut iv = [0u8; GCM_IV];
                iv.copy_from_slice(&sealed[..GCM_IV]);
                let mut body = Zeroizing::new(sealed[GCM_IV..].to_vec());
                let len = key
                    .open_in_place(gcm_nonce(salt, &iv), Aad::from(aad), &mut body)
                    .map_err(|_| CryptoError::IntegrityCheckFailed)?
                    .len();
                body.truncate(len);
                body
            }
        };
        let pad_len = usize::from(*plain.last().ok_or(CryptoError::MalformedCiphertext)?);
        let payload_len = plain
            .len()
            .checked_sub(pad_len + 1)
            .ok_or(CryptoError::MalformedCiphertext)?;
        plain.truncate(payload_len);
        Ok(plain)
    }
}

fn gcm_nonce(salt: &[u8; GCM_SALT], iv: &[u8; GCM_IV]) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[..GCM_SALT].copy_from_slice(salt);
    nonce[GCM_SALT..].copy_from_slice(iv);
    Nonce::assume_unique_for_key(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{hex, SeededRng};

    fn ciphers() -> Vec<(SkCipher, SkCipher)> {
        let make = |encryption: SkEncryption, integ: Option<Integ>| {
            let encr_key = vec![0x42; encryption.keymat_len()];
            let integ_key = integ.map(|i| vec![0x24; i.key_len()]);
            let build =
                || SkCipher::new(encryption, &encr_key, integ.zip(integ_key.as_deref())).unwrap();
            (build(), build())
        };
        vec![
            make(SkEncryption::AesCbc(16), Some(Integ::HmacSha1_96)),
            make(SkEncryption::AesCbc(32), Some(Integ::HmacSha256_128)),
            make(SkEncryption::AesGcm16(16), None),
            make(SkEncryption::AesGcm16(32), None),
        ]
    }

    fn sealed_message(cipher: &mut SkCipher, plaintext: &[u8], rng: &mut SeededRng) -> Vec<u8> {
        let header = b"IKE header and SK payload header";
        let mut message = header.to_vec();
        message.resize(header.len() + cipher.sealed_len(plaintext.len()), 0);
        cipher.seal(&mut message, plaintext, rng).unwrap();
        message
    }

    #[test]
    fn seal_then_open_for_every_suite_and_length() {
        let mut rng = SeededRng::new(1);
        for (mut sender, receiver) in ciphers() {
            for len in [0usize, 1, 15, 16, 17, 100] {
                let plaintext = vec![0xa5; len];
                let message = sealed_message(&mut sender, &plaintext, &mut rng);
                let sealed_len = sender.sealed_len(len);
                assert_eq!(*receiver.open(&message, sealed_len).unwrap(), plaintext);
                // Any flipped bit, in the header or the sealed part, fails the integrity check.
                for index in [0, message.len() - sealed_len, message.len() - 1] {
                    let mut tampered = message.clone();
                    tampered[index] ^= 1;
                    assert_eq!(
                        receiver.open(&tampered, sealed_len).unwrap_err(),
                        CryptoError::IntegrityCheckFailed
                    );
                }
                assert!(receiver.open(&message[..8], sealed_len).is_err());
            }
        }
    }

    /// The sealed layout for AES-128-CBC: IV, then CBC of (payload | pad length), checked
    /// against a separate encryption whose primitive matches NIST SP 800-38A F.2.1.
    #[test]
    fn cbc_matches_sp800_38a() {
        struct FixedIv;
        impl Rng for FixedIv {
            fn fill(&mut self, out: &mut [u8]) {
                out.copy_from_slice(&hex("000102030405060708090a0b0c0d0e0f"));
            }
        }
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let mut cipher = SkCipher::new(
            SkEncryption::AesCbc(16),
            &key,
            Some((Integ::HmacSha1_96, &[0; 20])),
        )
        .unwrap();
        // 15 bytes of payload and the pad length byte (0) fill exactly one block.
        let block = hex("6bc1bee22e409f96e93d7e117393172a");
        let mut message = vec![0u8; cipher.sealed_len(15)];
        assert_eq!(message.len(), 16 + 16 + 12);
        cipher
            .seal(&mut message, &block[..15], &mut FixedIv)
            .unwrap();
        let mut expected_plain = block.clone();
        expected_plain[15] = 0;
        let encrypt =
            EncryptingKey::cbc(UnboundCipherKey::new(&cipher::AES_128, &key).unwrap()).unwrap();
        encrypt
            .less_safe_encrypt(
                &mut expected_plain,
                EncryptionContext::Iv128(FixedLength::from(&[
                    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                ])),
            )
            .unwrap();
        assert_eq!(&message[..16], &hex("000102030405060708090a0b0c0d0e0f")[..]);
        assert_eq!(&message[16..32], &expected_plain[..]);
        // And the full SP 800-38A block encrypts to the published ciphertext.
        let mut full = block.clone();
        encrypt
            .less_safe_encrypt(
                &mut full,
                EncryptionContext::Iv128(FixedLength::from(&[
                    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                ])),
            )
            .unwrap();
        assert_eq!(full, hex("7649abac8119b246cee98e9b12e9197d"));
    }

    #[test]
    fn gcm_ivs_never_repeat() {
        let mut rng = SeededRng::new(2);
        let (mut sender, _) = ciphers().remove(2);
        let a = sealed_message(&mut sender, b"same", &mut rng);
        let b = sealed_message(&mut sender, b"same", &mut rng);
        assert_ne!(a, b);
    }
}
