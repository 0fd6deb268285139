//! The cipher contexts of an SA, built once at install (key schedules expanded, HMAC pre-keyed),
//! and the seal/open operations on an ESP packet in place.
//!
//! All operate on `pkt[esp_at..]` = ESP header | IV | payload and trailer | ICV, where the IV and
//! ICV fields are already reserved. The bytes just before `esp_at` (an outer header in every real
//! packet) are borrowed for a moment by AES-GMAC with ESN, and restored.

use aws_lc_rs::{aead, cipher, hmac, rand};
use ghash::universal_hash::{KeyInit, UniversalHash};
use shared::sa::{AesKeySize, Integrity, Suite, SALT_LEN};
use subtle::ConstantTimeEq;

use crate::wire::esp::HEADER_LEN;

/// The IV of the GCM and GMAC suites (RFC 4106 3.1, RFC 4543 3.1).
const GCM_IV_LEN: usize = 8;
const CBC_IV_LEN: usize = 16;
const AES_BLOCK: usize = 16;
const FULL_TAG: usize = 16;

/// A key that the crypto library refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadKey;

/// Why an ESP packet did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Too short for IV, one block and ICV, or not a whole number of cipher blocks.
    Truncated,
    IcvMismatch,
}

#[derive(Debug)]
pub struct Transform {
    kind: Kind,
    icv_len: usize,
}

#[derive(Debug)]
enum Kind {
    /// AES-GCM, RFC 4106.
    Gcm(Gcm),
    /// ENCR_NULL_AUTH_AES_GMAC, RFC 4543: GCM over an empty plaintext with the whole packet as AAD.
    Gmac(Gcm),
    /// AES-CBC (RFC 3602) with HMAC-SHA1-96 (RFC 2404) or HMAC-SHA-256-128 (RFC 4868).
    CbcHmac(CbcHmac),
}

struct Gcm {
    key: aead::LessSafeKey,
    salt: [u8; SALT_LEN],
    /// For ICVs shorter than 16 bytes, which the AEAD interface cannot verify.
    truncated: Option<TruncatedTag>,
}

/// GCM's tag computed from its parts (GHASH and E(K, J0)), to verify an 8- or 12-byte ICV.
struct TruncatedTag {
    ctr: cipher::EncryptingKey,
    hash_key: [u8; AES_BLOCK],
}

struct CbcHmac {
    encrypt: cipher::EncryptingKey,
    decrypt: cipher::DecryptingKey,
    /// IV generator: IV = AES-ECB under a random per-SA key of the sequence number, so IVs are
    /// unpredictable (RFC 3602 2.4) and unique without a random draw per packet.
    iv_key: cipher::EncryptingKey,
    mac: hmac::Key,
}

// Keys stay out of debug output.
impl std::fmt::Debug for Gcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gcm").field("truncated", &self.truncated.is_some()).finish_non_exhaustive()
    }
}
impl std::fmt::Debug for CbcHmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CbcHmac").finish_non_exhaustive()
    }
}

fn aes(size: AesKeySize) -> (&'static aead::Algorithm, &'static cipher::Algorithm) {
    match size {
        AesKeySize::Aes128 => (&aead::AES_128_GCM, &cipher::AES_128),
        AesKeySize::Aes256 => (&aead::AES_256_GCM, &cipher::AES_256),
    }
}

impl Gcm {
    fn new(size: AesKeySize, key_and_salt: &[u8], truncated: bool) -> Result<Gcm, BadKey> {
        let split = key_and_salt.len().checked_sub(SALT_LEN).ok_or(BadKey)?;
        let (key, salt) = key_and_salt.split_at(split);
        let (aead_alg, cipher_alg) = aes(size);
        let truncated = if truncated {
            let ctr = cipher::EncryptingKey::ctr(cipher::UnboundCipherKey::new(cipher_alg, key).map_err(|_| BadKey)?)
                .map_err(|_| BadKey)?;
            let mut hash_key = [0u8; AES_BLOCK];
            ctr_apply(&ctr, [0; AES_BLOCK], &mut hash_key);
            Some(TruncatedTag { ctr, hash_key })
        } else {
            None
        };
        Ok(Gcm {
            key: aead::LessSafeKey::new(aead::UnboundKey::new(aead_alg, key).map_err(|_| BadKey)?),
            salt: salt.try_into().map_err(|_| BadKey)?,
            truncated,
        })
    }

    /// RFC 4106 4: nonce = salt || explicit IV.
    fn nonce(&self, iv: &[u8]) -> aead::Nonce {
        let mut n = [0u8; aead::NONCE_LEN];
        n[..SALT_LEN].copy_from_slice(&self.salt);
        n[SALT_LEN..].copy_from_slice(&iv[..GCM_IV_LEN]);
        aead::Nonce::assume_unique_for_key(n)
    }

    /// GMAC: the GCM tag of an empty plaintext.
    fn gmac(&self, iv: &[u8], aad: &[u8]) -> Result<aead::Tag, BadKey> {
        self.key.seal_in_place_separate_tag(self.nonce(iv), aead::Aad::from(aad), &mut []).map_err(|_| BadKey)
    }
}

/// XORs the AES-CTR keystream starting at counter block `iv` into `data`.
fn ctr_apply(key: &cipher::EncryptingKey, iv: [u8; AES_BLOCK], data: &mut [u8]) {
    // CTR accepts any length and a 16-byte IV, which is all that could make it fail.
    let _ = key.less_safe_encrypt(data, cipher::EncryptionContext::Iv128(iv.into()));
}

/// RFC 4106 5 and RFC 4303 2.2.1: the AAD of GCM is SPI || seq, with ESN SPI || seq high || seq low.
fn gcm_aad(esp: &[u8], seq: u64, esn: bool) -> ([u8; 12], usize) {
    let mut aad = [0u8; 12];
    aad[..4].copy_from_slice(&esp[..4]);
    if esn {
        aad[4..8].copy_from_slice(&((seq >> 32) as u32).to_be_bytes());
        aad[8..12].copy_from_slice(&esp[4..8]);
        (aad, 12)
    } else {
        aad[4..8].copy_from_slice(&esp[4..8]);
        (aad, 8)
    }
}

impl Transform {
    pub fn new(suite: Suite, enc_key: &[u8], auth_key: &[u8]) -> Result<Transform, BadKey> {
        let kind = match suite {
            Suite::AesGcm { key, icv_len } => Kind::Gcm(Gcm::new(key, enc_key, usize::from(icv_len) < FULL_TAG)?),
            Suite::AesGmac { key } => Kind::Gmac(Gcm::new(key, enc_key, false)?),
            Suite::AesCbc { key, integrity } => {
                let alg = aes(key).1;
                let unbound = || cipher::UnboundCipherKey::new(alg, enc_key).map_err(|_| BadKey);
                let mut iv_key = [0u8; 32];
                rand::fill(&mut iv_key[..key.bytes()]).map_err(|_| BadKey)?;
                let iv_key = cipher::UnboundCipherKey::new(alg, &iv_key[..key.bytes()]).map_err(|_| BadKey)?;
                let mac_alg = match integrity {
                    Integrity::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                    Integrity::HmacSha256_128 => hmac::HMAC_SHA256,
                };
                Kind::CbcHmac(CbcHmac {
                    encrypt: cipher::EncryptingKey::cbc(unbound()?).map_err(|_| BadKey)?,
                    decrypt: cipher::DecryptingKey::cbc(unbound()?).map_err(|_| BadKey)?,
                    iv_key: cipher::EncryptingKey::ecb(iv_key).map_err(|_| BadKey)?,
                    mac: hmac::Key::new(mac_alg, auth_key),
                })
            }
        };
        Ok(Transform { kind, icv_len: suite.icv_len() })
    }

    pub fn iv_len(&self) -> usize {
        match self.kind {
            Kind::Gcm(_) | Kind::Gmac(_) => GCM_IV_LEN,
            Kind::CbcHmac(_) => CBC_IV_LEN,
        }
    }

    pub fn icv_len(&self) -> usize {
        self.icv_len
    }

    /// The alignment of payload plus trailer: the cipher block, or 4 bytes (RFC 4303 2.4).
    pub fn align(&self) -> usize {
        match self.kind {
            Kind::CbcHmac(_) => AES_BLOCK,
            _ => 4,
        }
    }

    /// Writes the IV for sequence number `seq` (the full 64-bit number, also with ESN off).
    /// GCM and GMAC use the sequence number itself, as RFC 4106 3.1 suggests: it never repeats for
    /// a key, because sequence numbers do not.
    fn write_iv(&self, iv: &mut [u8], seq: u64) {
        match &self.kind {
            Kind::Gcm(_) | Kind::Gmac(_) => iv[..GCM_IV_LEN].copy_from_slice(&seq.to_be_bytes()),
            Kind::CbcHmac(c) => {
                let block = &mut iv[..CBC_IV_LEN];
                block.fill(0);
                block[8..].copy_from_slice(&seq.to_be_bytes());
                // ECB on exactly one block cannot fail.
                let _ = c.iv_key.encrypt(block);
            }
        }
    }

    /// Fills the IV, encrypts the payload and writes the ICV.
    pub fn seal(&self, pkt: &mut [u8], esp_at: usize, seq: u64, esn: bool) -> Result<(), BadKey> {
        let iv_at = esp_at + HEADER_LEN;
        self.write_iv(&mut pkt[iv_at..iv_at + self.iv_len()], seq);
        self.seal_with_iv(pkt, esp_at, seq, esn)
    }

    /// [`seal`](Self::seal) with the IV already in the packet (test vectors bring their own).
    fn seal_with_iv(&self, pkt: &mut [u8], esp_at: usize, seq: u64, esn: bool) -> Result<(), BadKey> {
        let (iv_at, icv_at) = (esp_at + HEADER_LEN, pkt.len() - self.icv_len);
        let payload_at = iv_at + self.iv_len();
        match &self.kind {
            Kind::Gcm(g) => {
                let (aad, aad_len) = gcm_aad(&pkt[esp_at..], seq, esn);
                let nonce = g.nonce(&pkt[iv_at..]);
                let tag = g
                    .key
                    .seal_in_place_separate_tag(nonce, aead::Aad::from(&aad[..aad_len]), &mut pkt[payload_at..icv_at])
                    .map_err(|_| BadKey)?;
                pkt[icv_at..].copy_from_slice(&tag.as_ref()[..self.icv_len]);
            }
            Kind::Gmac(g) => {
                let tag = with_gmac_aad(pkt, esp_at, icv_at, seq, esn, |aad, iv| g.gmac(iv, aad))??;
                pkt[icv_at..].copy_from_slice(tag.as_ref());
            }
            Kind::CbcHmac(c) => {
                let iv: [u8; CBC_IV_LEN] = pkt[iv_at..payload_at].try_into().map_err(|_| BadKey)?;
                c.encrypt
                    .less_safe_encrypt(&mut pkt[payload_at..icv_at], cipher::EncryptionContext::Iv128(iv.into()))
                    .map_err(|_| BadKey)?;
                let tag = c.mac(&pkt[esp_at..icv_at], seq, esn);
                pkt[icv_at..].copy_from_slice(&tag.as_ref()[..self.icv_len]);
            }
        }
        Ok(())
    }

    /// Verifies the ICV and decrypts the payload in place. `seq` is the full inferred sequence number.
    pub fn open(&self, pkt: &mut [u8], esp_at: usize, seq: u64, esn: bool) -> Result<(), OpenError> {
        let iv_at = esp_at + HEADER_LEN;
        let payload_at = iv_at + self.iv_len();
        let icv_at = pkt.len().checked_sub(self.icv_len).filter(|&i| i >= payload_at + 2).ok_or(OpenError::Truncated)?;
        match &self.kind {
            Kind::Gcm(g) => {
                let (aad, aad_len) = gcm_aad(&pkt[esp_at..], seq, esn);
                let aad = &aad[..aad_len];
                let nonce = g.nonce(&pkt[iv_at..]);
                match &g.truncated {
                    None => {
                        g.key
                            .open_in_place(nonce, aead::Aad::from(aad), &mut pkt[payload_at..])
                            .map_err(|_| OpenError::IcvMismatch)?;
                    }
                    Some(t) => {
                        let (body, icv) = pkt.split_at_mut(icv_at);
                        t.open(nonce.as_ref(), aad, &mut body[payload_at..], icv)?;
                    }
                }
            }
            Kind::Gmac(g) => {
                let mut icv = [0u8; FULL_TAG];
                icv.copy_from_slice(&pkt[icv_at..]);
                let opened = with_gmac_aad(pkt, esp_at, icv_at, seq, esn, |aad, iv| {
                    g.key.open_in_place(g.nonce(iv), aead::Aad::from(aad), &mut icv).map(|_| ())
                })
                .map_err(|_| OpenError::Truncated)?;
                opened.map_err(|_| OpenError::IcvMismatch)?;
            }
            Kind::CbcHmac(c) => {
                if (icv_at - payload_at) % AES_BLOCK != 0 {
                    return Err(OpenError::Truncated);
                }
                let tag = c.mac(&pkt[esp_at..icv_at], seq, esn);
                if !bool::from(tag.as_ref()[..self.icv_len].ct_eq(&pkt[icv_at..])) {
                    return Err(OpenError::IcvMismatch);
                }
                let iv: [u8; CBC_IV_LEN] = pkt[iv_at..payload_at].try_into().map_err(|_| OpenError::Truncated)?;
                c.decrypt
                    .decrypt(&mut pkt[payload_at..icv_at], cipher::DecryptionContext::Iv128(iv.into()))
                    .map_err(|_| OpenError::Truncated)?;
            }
        }
        Ok(())
    }
}

impl CbcHmac {
    /// RFC 4303 2.2.1: with ESN the high 32 bits follow the packet in the ICV computation only.
    fn mac(&self, covered: &[u8], seq: u64, esn: bool) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(covered);
        if esn {
            ctx.update(&((seq >> 32) as u32).to_be_bytes());
        }
        ctx.sign()
    }
}

impl TruncatedTag {
    /// GCM decryption checking an ICV shorter than the tag: tag = GHASH(H, A, C) xor E(K, J0), with
    /// the ICV its leftmost bytes (RFC 4106 8.1), then CTR decryption from counter 2.
    fn open(&self, nonce: &[u8; aead::NONCE_LEN], aad: &[u8], body: &mut [u8], icv: &[u8]) -> Result<(), OpenError> {
        let mut ghash = ghash::GHash::new(&self.hash_key.into());
        ghash.update_padded(aad);
        ghash.update_padded(body);
        let mut lengths = [0u8; AES_BLOCK];
        lengths[..8].copy_from_slice(&(aad.len() as u64 * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(body.len() as u64 * 8).to_be_bytes());
        ghash.update(&[lengths.into()]);
        let mut tag: [u8; AES_BLOCK] = ghash.finalize().into();
        let mut counter = [0u8; AES_BLOCK];
        counter[..aead::NONCE_LEN].copy_from_slice(nonce);
        counter[15] = 1;
        ctr_apply(&self.ctr, counter, &mut tag);
        if !bool::from(tag[..icv.len()].ct_eq(icv)) {
            return Err(OpenError::IcvMismatch);
        }
        counter[15] = 2;
        ctr_apply(&self.ctr, counter, body);
        Ok(())
    }
}

/// Runs `f(aad, iv)` with the AAD RFC 4543 3.3 defines for GMAC: the packet from the SPI to the
/// end of the trailer, with ESN the high sequence bits inserted after the SPI. That makes the AAD
/// non-contiguous, so the SPI is moved 4 bytes forward into the preceding header for the call and
/// everything is restored after it.
fn with_gmac_aad<R>(
    pkt: &mut [u8],
    esp_at: usize,
    icv_at: usize,
    seq: u64,
    esn: bool,
    f: impl FnOnce(&[u8], &[u8]) -> R,
) -> Result<R, BadKey> {
    let iv_at = esp_at + HEADER_LEN;
    if !esn {
        let iv = &pkt[iv_at..iv_at + GCM_IV_LEN];
        return Ok(f(&pkt[esp_at..icv_at], iv));
    }
    let start = esp_at.checked_sub(4).ok_or(BadKey)?;
    let saved: [u8; 8] = pkt[start..esp_at + 4].try_into().map_err(|_| BadKey)?;
    pkt.copy_within(esp_at..esp_at + 4, start);
    pkt[esp_at..esp_at + 4].copy_from_slice(&((seq >> 32) as u32).to_be_bytes());
    let r = f(&pkt[start..icv_at], &pkt[iv_at..iv_at + GCM_IV_LEN]);
    pkt[start..esp_at + 4].copy_from_slice(&saved);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// An ESP packet with 4 scratch bytes in front: header, IV, payload, zeroed ICV.
    fn esp(spi: u32, seq_lo: u32, iv: &[u8], payload: &[u8], icv_len: usize) -> Vec<u8> {
        let mut p = vec![0u8; 4];
        p.extend_from_slice(&spi.to_be_bytes());
        p.extend_from_slice(&seq_lo.to_be_bytes());
        p.extend_from_slice(iv);
        p.extend_from_slice(payload);
        p.resize(p.len() + icv_len, 0);
        p
    }

    fn check_gcm_vector(suite: Suite, key: &str, seq: u64, esn: bool, spi: u32, iv: &str, pt: &str, ct_and_tag: &str) {
        let t = Transform::new(suite, &hex(key), &[]).unwrap();
        let mut p = esp(spi, seq as u32, &hex(iv), &hex(pt), t.icv_len());
        t.seal_with_iv(&mut p, 4, seq, esn).unwrap();
        assert_eq!(p[4 + 16..], hex(ct_and_tag)[..]);
        t.open(&mut p, 4, seq, esn).unwrap();
        assert_eq!(p[20..p.len() - 16], hex(pt)[..]);
    }

    // draft-mcgrew-gcm-test-01 (the ESP test vectors for RFC 4106) case 1: AES-128, 64-bit ESN
    // 0x8765432100000000 (the high half is in the AAD only).
    #[test]
    fn rfc4106_aes128_gcm_with_esn() {
        check_gcm_vector(
            Suite::AesGcm { key: AesKeySize::Aes128, icv_len: 16 },
            "4c80cdefbb5d10da906ac73c3613a634 2e443b68",
            0x8765_4321_0000_0000,
            true,
            0x4321,
            "4956ed7e3b244cfe",
            "45000048699a000080114db7c0a80102c0a801010a9bf15638d3010000010000
             00000000045f736970045f756470037369700963796265726369747902646b00
             0021000101020201",
            "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34
             cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce
             61bc17d768fd9732459018148f6cbe722fd04796562dfdb4",
        );
    }

    // draft-mcgrew-gcm-test-01: AES-256, SPI 0x4a2cbfe3, sequence number 2, no ESN.
    #[test]
    fn rfc4106_aes256_gcm() {
        check_gcm_vector(
            Suite::AesGcm { key: AesKeySize::Aes256, icv_len: 16 },
            "abbccddef00112233445566778899aababbccddef00112233445566778899aab 11223344",
            2,
            false,
            0x4a2c_bfe3,
            "0102030405060708",
            "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000
             7002400020bf0000020405b40101040201020201",
            "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763
             748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c49
             15956c96",
        );
    }

    // The same vector with the ICV truncated to 12 and 8 bytes (RFC 4106 8.1: the leftmost bytes
    // of the tag), opened through the GHASH path.
    #[test]
    fn rfc4106_truncated_icvs() {
        let full = hex("ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763
                        748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c4915956c96");
        for icv_len in [8u8, 12] {
            let t = Transform::new(
                Suite::AesGcm { key: AesKeySize::Aes256, icv_len },
                &hex("abbccddef00112233445566778899aababbccddef00112233445566778899aab 11223344"),
                &[],
            )
            .unwrap();
            let pt = hex("4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee0000000007002400020bf0000020405b40101040201020201");
            let mut p = esp(0x4a2c_bfe3, 2, &hex("0102030405060708"), &pt, usize::from(icv_len));
            t.seal_with_iv(&mut p, 4, 2, false).unwrap();
            assert_eq!(p[20..], full[..pt.len() + usize::from(icv_len)]);
            let mut bad = p.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(t.open(&mut bad, 4, 2, false), Err(OpenError::IcvMismatch));
            t.open(&mut p, 4, 2, false).unwrap();
            assert_eq!(p[20..20 + pt.len()], pt[..]);
        }
    }

    // GMAC is GCM with an empty plaintext (RFC 4543 3); NIST GCM test vector
    // gcmEncryptExtIV128 (PTlen 0, AADlen 128), count 0.
    #[test]
    fn nist_gmac_vector() {
        let g = Gcm::new(AesKeySize::Aes128, &hex("77be63708971c4e240d1cb79e8d77feb e0e00f19"), false).unwrap();
        let tag = g.gmac(&hex("fed7ba0136a797f3"), &hex("7a43ec1d9c0a5a78a0b16533a6213cab")).unwrap();
        assert_eq!(tag.as_ref(), &hex("209fcc8d3675ed938e9c7166709dd946")[..]);
    }

    // RFC 4543 3.3: the GMAC AAD is SPI, (ESN high), sequence number, IV and the whole payload;
    // every one of those bytes is covered, with and without ESN, and the payload is not encrypted.
    #[test]
    fn gmac_covers_the_whole_packet() {
        let t = Transform::new(Suite::AesGmac { key: AesKeySize::Aes256 }, &[7u8; 36], &[]).unwrap();
        for esn in [false, true] {
            let seq = 0x5_0000_0009;
            let mut p = esp(0x1000, seq as u32, &[0; 8], b"plain text\x01\x02\x02\x04", 16);
            t.seal(&mut p, 4, seq, esn).unwrap();
            assert_eq!(&p[20..34], b"plain text\x01\x02\x02\x04");
            assert_eq!(&p[..4], &[0; 4], "scratch bytes restored");
            for i in 4..p.len() {
                let mut bad = p.clone();
                bad[i] ^= 0x80;
                assert_eq!(t.open(&mut bad, 4, seq, esn), Err(OpenError::IcvMismatch), "byte {i}");
            }
            assert_eq!(t.open(&mut p.clone(), 4, seq + (1 << 32), esn).is_ok(), !esn, "high bits covered with ESN");
            t.open(&mut p, 4, seq, esn).unwrap();
        }
    }

    // RFC 3602 section 4, case 1 (AES-128-CBC), and NIST SP 800-38A F.2.5 (AES-256-CBC).
    #[test]
    fn rfc3602_and_sp800_38a_cbc_vectors() {
        for (size, key, iv, pt, ct) in [
            (AesKeySize::Aes128, "06a9214036b8a15b512e03d534120006", "3dafba429d9eb430b422da802c9fac41",
             "53696e676c6520626c6f636b206d7367", "e353779c1079aeb82708942dbe77181a"),
            (AesKeySize::Aes256, "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
             "000102030405060708090a0b0c0d0e0f", "6bc1bee22e409f96e93d7e117393172a", "f58c4c04d6e5f1ba779eabfb5f7bfbd6"),
        ] {
            let t = Transform::new(Suite::AesCbc { key: size, integrity: Integrity::HmacSha256_128 }, &hex(key), &[0; 32]).unwrap();
            let mut p = esp(0x1000, 1, &hex(iv), &hex(pt), 16);
            t.seal_with_iv(&mut p, 4, 1, false).unwrap();
            assert_eq!(p[28..44], hex(ct)[..]);
            t.open(&mut p, 4, 1, false).unwrap();
            assert_eq!(p[28..44], hex(pt)[..]);
        }
    }

    // RFC 2404 section 3 (HMAC-SHA-1-96, the RFC 2202 case 1) and RFC 4868 2.7.2.1 (AUTH256-1).
    #[test]
    fn rfc2404_and_rfc4868_hmac_vectors() {
        for (integrity, key, icv) in [
            (Integrity::HmacSha1_96, vec![0x0b; 20], "b617318655057264e28bc0b6"),
            (Integrity::HmacSha256_128, vec![0x0b; 32], "198a607eb44bfbc69903a0f1cf2bbdc5"),
        ] {
            let Kind::CbcHmac(c) = Transform::new(Suite::AesCbc { key: AesKeySize::Aes128, integrity }, &[1; 16], &key).unwrap().kind else {
                unreachable!("a CBC suite builds a CBC transform")
            };
            assert_eq!(c.mac(b"Hi There", 0, false).as_ref()[..integrity.icv_len()], hex(icv)[..]);
        }
    }

    #[test]
    fn cbc_ivs_are_distinct_per_sequence_number() {
        let t = Transform::new(Suite::AesCbc { key: AesKeySize::Aes128, integrity: Integrity::HmacSha1_96 }, &[1; 16], &[2; 20]).unwrap();
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        t.write_iv(&mut a, 1);
        t.write_iv(&mut b, 2);
        assert_ne!(a, b);
        assert_ne!(a[..8], [0; 8]);
    }
}
