//! The cipher contexts of an SA, built once at install (key schedules expanded, HMAC pre-keyed),
//! and the seal/open operations on an ESP packet in place.
//!
//! The ciphers and MACs (docs/crypto-choice.md): AES-GCM and GMAC through intel-ipsec-mb's
//! direct API (the `ipsec-mb` crate), short AES-GCM packets in a burst four at a time in that
//! crate's multi-buffer lanes (`ipsec_mb::gcm_lanes`); HMAC, and HMAC chained with AES-CBC
//! decryption, as one intel-ipsec-mb job; AES-CBC encryption with aws-lc-rs, serial and faster
//! for one packet.
//!
//! All operate on `pkt[esp_at..]` = ESP header | IV | payload and trailer | ICV, where the IV and
//! ICV fields are already reserved. With ESN, the 4 bytes just before `esp_at` (an outer header
//! in every real packet; GMAC) or the first 4 bytes of the ICV field (HMAC) are borrowed for a
//! moment to make the authenticated data contiguous, and restored or overwritten.

use aws_lc_rs::cipher;
use ipsec_mb::gcm_lanes::{self, ShortGcmJob, MAX_SHORT_PAYLOAD};
use ipsec_mb::{encrypt_then_mac_burst, mac_then_decrypt_burst, Aad, BurstJob, CbcHmacKey, GcmKey, Hmac, Layout, Nonce, TAG_LEN};
use shared::sa::{AesKeySize, Integrity, Suite, SALT_LEN};
use smallvec::SmallVec;

use super::cbc_iv;
use crate::wire::esp::HEADER_LEN;

/// The IV of the GCM and GMAC suites (RFC 4106 3.1, RFC 4543 3.1).
const GCM_IV_LEN: usize = 8;
const CBC_IV_LEN: usize = cbc_iv::IV_LEN;
const AES_BLOCK: usize = 16;
/// The high 32 bits of an extended sequence number, where they are authenticated but not sent.
const SEQ_HI_LEN: usize = 4;

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

/// Scratch space and results for a burst, on the stack up to this many packets (the gateway's
/// bursts): no allocation on the packet path.
pub type BurstVec<T> = SmallVec<[T; 32]>;

/// Bursts smaller than this are sealed one packet at a time: the multi-buffer lanes pay for
/// their width whether they are full or not.
const SERIAL_BELOW: usize = 4;

/// A packet for [`Transform::seal_burst`] or [`Transform::open_burst`]: as for
/// [`Transform::seal`] and [`Transform::open`], `pkt[esp_at..]` is the ESP header, the IV, the
/// payload and trailer, and the ICV (the IV and ICV fields reserved, when sealing).
#[derive(Debug)]
pub struct BurstPacket<'a> {
    pub transform: &'a Transform,
    pub pkt: &'a mut [u8],
    pub esp_at: usize,
    pub seq: u64,
    pub esn: bool,
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
    /// AES-CBC (RFC 3602) with HMAC-SHA1-96 (RFC 2404) or HMAC-SHA-256-128 (RFC 4868). Boxed: inline,
    /// its round keys and HMAC states would make every `Kind`, a GCM one too, that large.
    CbcHmac(Box<CbcHmac>),
}

/// The nonce, the AAD, the payload and the ICV field of a GCM packet to seal.
struct SealParts<'a> {
    nonce: Nonce,
    aad: Aad<'static>,
    payload: &'a mut [u8],
    icv: &'a mut [u8],
}

#[derive(Debug)]
struct Gcm {
    key: GcmKey,
    salt: [u8; SALT_LEN],
}

struct CbcHmac {
    encrypt: cipher::EncryptingKey,
    /// HMAC, and CBC decryption chained after it.
    key: CbcHmacKey,
}

// Keys stay out of debug output.
impl std::fmt::Debug for CbcHmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CbcHmac").field("key", &self.key).finish_non_exhaustive()
    }
}

impl Gcm {
    fn new(size: AesKeySize, key_and_salt: &[u8]) -> Result<Gcm, BadKey> {
        if key_and_salt.len() != size.bytes() + SALT_LEN {
            return Err(BadKey);
        }
        let (key, salt) = key_and_salt.split_at(size.bytes());
        Ok(Gcm { key: GcmKey::new(key).map_err(|_| BadKey)?, salt: salt.try_into().map_err(|_| BadKey)? })
    }

    /// RFC 4106 4: nonce = salt || explicit IV (`iv` starts with it).
    fn nonce(&self, iv: &[u8]) -> Result<Nonce, BadKey> {
        Ok(Nonce::new(self.salt, iv.get(..GCM_IV_LEN).ok_or(BadKey)?.try_into().map_err(|_| BadKey)?))
    }

    /// What sealing `pkt[esp_at..]` (its header and IV written, its ICV field at `icv_at`) with
    /// `nonce` takes. (The burst passes the nonce it made from the sequence number: read back
    /// from the IV just written, it cost GCM encryption at 64 B 1-14%, BENCHMARKS.md
    /// "Fourteenth session".)
    fn seal_parts<'a>(&self, pkt: &'a mut [u8], esp_at: usize, icv_at: usize, nonce: Nonce, seq: u64, esn: bool) -> Result<SealParts<'a>, BadKey> {
        let payload_at = esp_at + HEADER_LEN + GCM_IV_LEN;
        if !(payload_at..=pkt.len()).contains(&icv_at) {
            return Err(BadKey);
        }
        let aad = gcm_aad(&pkt[esp_at..], seq, esn)?;
        let (payload, icv) = pkt[payload_at..].split_at_mut(icv_at - payload_at);
        Ok(SealParts { nonce, aad, payload, icv })
    }

    /// GMAC: the GCM tag of an empty plaintext.
    fn gmac(&self, iv: &[u8], aad: &[u8]) -> Result<[u8; TAG_LEN], BadKey> {
        Ok(self.key.seal(self.nonce(iv)?, Aad::bytes(aad), &mut []))
    }
}

/// RFC 4106 5 and RFC 4303 2.2.1: the AAD of GCM is SPI || seq, with ESN SPI || seq high || seq low.
fn gcm_aad(esp: &[u8], seq: u64, esn: bool) -> Result<Aad<'static>, BadKey> {
    let word = |at: usize| -> Result<[u8; 4], BadKey> { esp.get(at..at + 4).ok_or(BadKey)?.try_into().map_err(|_| BadKey) };
    let (spi, seq_low) = (word(0)?, word(4)?);
    Ok(if esn { Aad::words([spi, seq_hi(seq), seq_low]) } else { Aad::words([spi, seq_low]) })
}

fn seq_hi(seq: u64) -> [u8; SEQ_HI_LEN] {
    ((seq >> 32) as u32).to_be_bytes()
}

/// Constant-time comparison of a received ICV (8 to 16 bytes) with the leftmost bytes of the
/// computed tag: both as one 128-bit value, compared once, so nothing depends on where they differ.
/// A 16-byte ICV (AES-GCM's) is read in place, without a copy.
fn icv_matches(computed: &[u8], received: &[u8]) -> bool {
    let n = received.len();
    let (Some(computed), 8..=TAG_LEN) = (computed.first_chunk::<TAG_LEN>(), n) else { return false };
    let received = match <[u8; TAG_LEN]>::try_from(received) {
        Ok(full) => u128::from_le_bytes(full),
        Err(_) => {
            let mut b = [0u8; TAG_LEN];
            b[..n].copy_from_slice(received);
            u128::from_le_bytes(b)
        }
    };
    let leftmost = u128::MAX >> (8 * (TAG_LEN - n));
    // black_box keeps the compiler from turning the comparison into an early-exit byte loop.
    std::hint::black_box((u128::from_le_bytes(*computed) ^ received) & leftmost) == 0
}

impl Transform {
    pub fn new(suite: Suite, enc_key: &[u8], auth_key: &[u8]) -> Result<Transform, BadKey> {
        let kind = match suite {
            Suite::AesGcm { key, .. } => Kind::Gcm(Gcm::new(key, enc_key)?),
            Suite::AesGmac { key } => Kind::Gmac(Gcm::new(key, enc_key)?),
            Suite::AesCbc { key, integrity } => {
                let alg = match key {
                    AesKeySize::Aes128 => &cipher::AES_128,
                    AesKeySize::Aes256 => &cipher::AES_256,
                };
                if enc_key.len() != key.bytes() {
                    return Err(BadKey);
                }
                let hmac = match integrity {
                    Integrity::HmacSha1_96 => Hmac::Sha1,
                    Integrity::HmacSha256_128 => Hmac::Sha256,
                };
                let encrypt_key = cipher::UnboundCipherKey::new(alg, enc_key).map_err(|_| BadKey)?;
                Kind::CbcHmac(Box::new(CbcHmac {
                    encrypt: cipher::EncryptingKey::cbc(encrypt_key).map_err(|_| BadKey)?,
                    key: CbcHmacKey::new(enc_key, hmac, auth_key, integrity.icv_len()).map_err(|_| BadKey)?,
                }))
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

    /// Writes the IV of the packet with sequence number `seq` (the full 64-bit number, also with
    /// ESN off) into `iv`, of the transform's IV length. GCM and GMAC use the sequence number
    /// itself, as RFC 4106 3.1 suggests: it never repeats for a key, because sequence numbers do
    /// not. CBC takes the next IV of the thread's stream ([`cbc_iv`]).
    fn write_iv(&self, iv: &mut [u8], seq: u64) -> Result<(), BadKey> {
        match &self.kind {
            Kind::Gcm(_) | Kind::Gmac(_) => iv.get_mut(..GCM_IV_LEN).ok_or(BadKey)?.copy_from_slice(&seq.to_be_bytes()),
            Kind::CbcHmac(_) => cbc_iv::write_next_iv(iv.try_into().map_err(|_| BadKey)?).ok_or(BadKey)?,
        }
        Ok(())
    }

    /// Fills the IV, encrypts the payload and writes the ICV.
    pub fn seal(&self, pkt: &mut [u8], esp_at: usize, seq: u64, esn: bool) -> Result<(), BadKey> {
        self.fill_iv(pkt, esp_at, seq)?;
        self.seal_with_iv(pkt, esp_at, seq, esn)
    }

    /// [`write_iv`](Self::write_iv) into the IV field of `pkt[esp_at..]`.
    fn fill_iv(&self, pkt: &mut [u8], esp_at: usize, seq: u64) -> Result<(), BadKey> {
        let iv_at = esp_at + HEADER_LEN;
        self.write_iv(pkt.get_mut(iv_at..iv_at + self.iv_len()).ok_or(BadKey)?, seq)
    }

    /// [`seal`](Self::seal) with the IV already in the packet (test vectors bring their own).
    fn seal_with_iv(&self, pkt: &mut [u8], esp_at: usize, seq: u64, esn: bool) -> Result<(), BadKey> {
        let (iv_at, icv_at) = (esp_at + HEADER_LEN, pkt.len().checked_sub(self.icv_len).ok_or(BadKey)?);
        let payload_at = iv_at + self.iv_len();
        let tag = match &self.kind {
            Kind::Gcm(g) => {
                // The library writes the ICV (the tag's leftmost bytes) into the packet itself.
                let nonce = g.nonce(pkt.get(iv_at..).ok_or(BadKey)?)?;
                let SealParts { nonce, aad, payload, icv } = g.seal_parts(pkt, esp_at, icv_at, nonce, seq, esn)?;
                return g.key.seal_into(nonce, aad, payload, icv).map_err(|_| BadKey);
            }
            Kind::Gmac(g) => with_gmac_aad(pkt, esp_at, icv_at, seq, esn, |aad, iv| g.gmac(iv, aad))??,
            Kind::CbcHmac(c) => {
                let iv: [u8; CBC_IV_LEN] = pkt[iv_at..payload_at].try_into().map_err(|_| BadKey)?;
                c.encrypt
                    .less_safe_encrypt(&mut pkt[payload_at..icv_at], cipher::EncryptionContext::Iv128(iv.into()))
                    .map_err(|_| BadKey)?;
                let hash_end = borrow_icv_for_seq_hi(pkt, icv_at, seq, esn);
                let tag = c.key.mac(pkt, esp_at..hash_end).map_err(|_| BadKey)?;
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(&tag[..TAG_LEN]);
                out
            }
        };
        pkt[icv_at..].copy_from_slice(&tag[..self.icv_len]);
        Ok(())
    }

    /// Whether a packet under this transform, `esp_len` bytes from its ESP header to the end of
    /// its ICV, is sealed faster together with others ([`Transform::seal_burst`]): with AES-CBC
    /// and HMAC always (CBC encryption is serial within a packet, HMAC hashes 16 packets side by
    /// side); with AES-GCM when its payload fits the multi-buffer lanes (`ipsec_mb::gcm_lanes`,
    /// four short packets side by side) on a CPU that has them.
    pub fn seals_in_bursts(&self, esp_len: usize) -> bool {
        match &self.kind {
            Kind::CbcHmac(_) => true,
            Kind::Gcm(g) => g.key.short().is_some() && esp_len <= HEADER_LEN + GCM_IV_LEN + MAX_SHORT_PAYLOAD + self.icv_len,
            Kind::Gmac(_) => false,
        }
    }

    /// Whether packets under this transform are opened faster together
    /// ([`Transform::open_burst`]): AES-CBC with HMAC, whose HMAC hashes 16 packets side by side.
    /// (Short AES-GCM packets are not: the lanes would open them in 12.5 ns against the library's
    /// 34 in the gateway, but holding a received packet for its burst costs about 19 ns more a
    /// packet, BENCHMARKS.md "Fourteenth session".)
    pub fn opens_in_bursts(&self) -> bool {
        matches!(self.kind, Kind::CbcHmac(_))
    }

    /// [`seal`](Self::seal) for a burst of packets at once, each under its own transform; returns
    /// for each packet whether it was sealed. Up to [`SERIAL_BELOW`] packets are sealed one by
    /// one; more run side by side: AES-CBC with HMAC in intel-ipsec-mb's multi-buffer lanes (8 or
    /// 16 packets at a time), where a burst of 1420-byte packets is several times faster than one
    /// after the other; short AES-GCM packets four at a time in `ipsec_mb::gcm_lanes`.
    pub fn seal_burst(pending: &mut [BurstPacket<'_>]) -> BurstVec<bool> {
        if pending.len() < SERIAL_BELOW {
            return pending.iter_mut().map(|p| p.transform.seal(p.pkt, p.esp_at, p.seq, p.esn).is_ok()).collect();
        }
        let mut sealed = BurstVec::from_elem(false, pending.len());
        let (mut jobs, mut short_jobs) = (BurstVec::new(), BurstVec::new());
        let (mut index, mut short_index) = (BurstVec::<(usize, usize, usize)>::new(), BurstVec::<usize>::new());
        for (i, p) in pending.iter_mut().enumerate() {
            let c = match &p.transform.kind {
                Kind::CbcHmac(c) => c,
                Kind::Gcm(g) if p.transform.seals_in_bursts(p.pkt.len().saturating_sub(p.esp_at)) => {
                    let job = p.pkt.len().checked_sub(p.transform.icv_len).ok_or(BadKey).and_then(|icv_at| {
                        p.transform.fill_iv(p.pkt, p.esp_at, p.seq)?;
                        let nonce = Nonce::new(g.salt, p.seq.to_be_bytes());
                        let SealParts { nonce, aad, payload, icv } = g.seal_parts(p.pkt, p.esp_at, icv_at, nonce, p.seq, p.esn)?;
                        ShortGcmJob::new(g.key.short().ok_or(BadKey)?, nonce, aad, payload, icv).map_err(|_| BadKey)
                    });
                    if let Ok(job) = job {
                        short_jobs.push(job);
                        short_index.push(i);
                    }
                    continue;
                }
                _ => {
                    sealed[i] = p.transform.seal(p.pkt, p.esp_at, p.seq, p.esn).is_ok();
                    continue;
                }
            };
            let (iv_at, icv_len) = (p.esp_at + HEADER_LEN, p.transform.icv_len);
            let Some(icv_at) = p.pkt.len().checked_sub(icv_len).filter(|&at| at >= iv_at + CBC_IV_LEN) else { continue };
            if p.transform.write_iv(&mut p.pkt[iv_at..iv_at + CBC_IV_LEN], p.seq).is_err() {
                continue;
            }
            let hash_end = borrow_icv_for_seq_hi(p.pkt, icv_at, p.seq, p.esn);
            let layout = Layout { iv_at, cipher: iv_at + CBC_IV_LEN..icv_at, hash: p.esp_at..hash_end };
            jobs.push(BurstJob { key: &c.key, buf: &mut *p.pkt, layout, tag: [0; 32] });
            index.push((i, icv_at, icv_len));
        }
        gcm_lanes::seal(&mut short_jobs);
        for i in short_index {
            sealed[i] = true;
        }
        if !jobs.is_empty() && encrypt_then_mac_burst(&mut jobs).is_ok() {
            for (job, (i, icv_at, icv_len)) in jobs.iter_mut().zip(index) {
                job.buf[icv_at..].copy_from_slice(&job.tag[..icv_len]);
                sealed[i] = true;
            }
        }
        sealed
    }

    /// Verifies the ICV and decrypts the payload in place. `seq` is the full inferred sequence number.
    pub fn open(&self, pkt: &mut [u8], esp_at: usize, seq: u64, esn: bool) -> Result<(), OpenError> {
        let (iv_at, payload_at, icv_at) = self.open_ranges(pkt.len(), esp_at)?;
        let matches = match &self.kind {
            Kind::Gcm(g) => {
                let aad = gcm_aad(&pkt[esp_at..], seq, esn).map_err(|_| OpenError::Truncated)?;
                let nonce = g.nonce(&pkt[iv_at..]).map_err(|_| OpenError::Truncated)?;
                // Decrypted before the check: on a mismatch the packet is dropped whole.
                let tag = g.key.open(nonce, aad, &mut pkt[payload_at..icv_at]);
                icv_matches(&tag, &pkt[icv_at..])
            }
            Kind::Gmac(g) => {
                let tag = with_gmac_aad(pkt, esp_at, icv_at, seq, esn, |aad, iv| g.gmac(iv, aad))
                    .and_then(|tag| tag)
                    .map_err(|_| OpenError::Truncated)?;
                icv_matches(&tag, &pkt[icv_at..])
            }
            Kind::CbcHmac(c) => {
                let received = ReceivedIcv::keep(pkt, icv_at, esn);
                let layout = cbc_open_layout(pkt, (esp_at, iv_at, payload_at, icv_at), seq, esn)?;
                let tag = c.key.mac_then_decrypt(pkt, &layout);
                received.put_back(pkt, icv_at);
                icv_matches(&tag.map_err(|_| OpenError::Truncated)?, &pkt[icv_at..])
            }
        };
        if matches {
            Ok(())
        } else {
            Err(OpenError::IcvMismatch)
        }
    }

    /// Where the IV, the payload and the ICV of the ESP packet at `esp_at` in a packet of
    /// `pkt_len` bytes start, if it is long enough for them and a trailer.
    fn open_ranges(&self, pkt_len: usize, esp_at: usize) -> Result<(usize, usize, usize), OpenError> {
        let iv_at = esp_at + HEADER_LEN;
        let payload_at = iv_at + self.iv_len();
        let icv_at = pkt_len.checked_sub(self.icv_len).filter(|&i| i >= payload_at + 2).ok_or(OpenError::Truncated)?;
        Ok((iv_at, payload_at, icv_at))
    }

    /// [`open`](Self::open) for a burst of packets at once, each under its own transform; returns
    /// each packet's result. Up to [`SERIAL_BELOW`] packets are opened one by one; more run side
    /// by side in intel-ipsec-mb's multi-buffer lanes.
    pub fn open_burst(pending: &mut [BurstPacket<'_>]) -> BurstVec<Result<(), OpenError>> {
        if pending.len() < SERIAL_BELOW {
            return pending.iter_mut().map(|p| p.transform.open(p.pkt, p.esp_at, p.seq, p.esn)).collect();
        }
        let mut results = BurstVec::from_elem(Err(OpenError::Truncated), pending.len());
        let mut jobs = BurstVec::new();
        let mut index = BurstVec::<(usize, usize, ReceivedIcv)>::new();
        for (i, p) in pending.iter_mut().enumerate() {
            let Kind::CbcHmac(c) = &p.transform.kind else {
                results[i] = p.transform.open(p.pkt, p.esp_at, p.seq, p.esn);
                continue;
            };
            let prepared = p.transform.open_ranges(p.pkt.len(), p.esp_at).and_then(|(iv_at, payload_at, icv_at)| {
                let received = ReceivedIcv::keep(p.pkt, icv_at, p.esn);
                let layout = cbc_open_layout(p.pkt, (p.esp_at, iv_at, payload_at, icv_at), p.seq, p.esn)?;
                Ok((layout, icv_at, received))
            });
            match prepared {
                Ok((layout, icv_at, received)) => {
                    jobs.push(BurstJob { key: &c.key, buf: &mut *p.pkt, layout, tag: [0; 32] });
                    index.push((i, icv_at, received));
                }
                Err(e) => results[i] = Err(e),
            }
        }
        if mac_then_decrypt_burst(&mut jobs).is_ok() {
            for (job, (i, icv_at, received)) in jobs.iter_mut().zip(index) {
                received.put_back(job.buf, icv_at);
                results[i] = if icv_matches(&job.tag, &job.buf[icv_at..]) { Ok(()) } else { Err(OpenError::IcvMismatch) };
            }
        }
        results
    }
}

/// The ICV of a CBC+HMAC packet being opened. With ESN the high half of the sequence number
/// borrows the ICV's place while the HMAC runs (`cbc_open_layout`), so the received ICV is kept
/// aside, to compare and to put back; without ESN it stays in the packet, uncopied.
#[derive(Debug)]
enum ReceivedIcv {
    InPlace,
    Kept { icv: [u8; TAG_LEN], len: usize },
}

impl ReceivedIcv {
    fn keep(pkt: &[u8], icv_at: usize, esn: bool) -> ReceivedIcv {
        if !esn {
            return ReceivedIcv::InPlace;
        }
        let mut icv = [0u8; TAG_LEN];
        let len = pkt.len() - icv_at;
        icv[..len].copy_from_slice(&pkt[icv_at..]);
        ReceivedIcv::Kept { icv, len }
    }

    /// Puts a kept ICV back at `icv_at`, where the computed tag is then compared with it.
    fn put_back(&self, pkt: &mut [u8], icv_at: usize) {
        if let ReceivedIcv::Kept { icv, len } = self {
            pkt[icv_at..].copy_from_slice(&icv[..*len]);
        }
    }
}

/// The job layout of a CBC+HMAC packet to open, whose ranges are `(esp_at, iv_at, payload_at,
/// icv_at)`: the payload must be whole cipher blocks. With ESN the ICV field is borrowed for the
/// high sequence bits (the caller keeps the received ICV).
fn cbc_open_layout(pkt: &mut [u8], (esp_at, iv_at, payload_at, icv_at): (usize, usize, usize, usize), seq: u64, esn: bool) -> Result<Layout, OpenError> {
    if !(icv_at - payload_at).is_multiple_of(AES_BLOCK) {
        return Err(OpenError::Truncated);
    }
    let hash_end = borrow_icv_for_seq_hi(pkt, icv_at, seq, esn);
    Ok(Layout { iv_at, cipher: payload_at..icv_at, hash: esp_at..hash_end })
}

/// RFC 4303 2.2.1: with ESN, HMAC covers the packet up to the ICV and then the high 32 bits of the
/// sequence number. They are written where the ICV goes (always at least 12 bytes for HMAC, and
/// overwritten by the ICV or restored afterwards) so that the covered bytes are contiguous.
/// Returns the end of the covered range.
fn borrow_icv_for_seq_hi(pkt: &mut [u8], icv_at: usize, seq: u64, esn: bool) -> usize {
    if !esn {
        return icv_at;
    }
    pkt[icv_at..icv_at + SEQ_HI_LEN].copy_from_slice(&seq_hi(seq));
    icv_at + SEQ_HI_LEN
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
    pkt[esp_at..esp_at + 4].copy_from_slice(&seq_hi(seq));
    let r = f(&pkt[start..icv_at], &pkt[iv_at..iv_at + GCM_IV_LEN]);
    pkt[start..esp_at + 4].copy_from_slice(&saved);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icv_comparison_covers_exactly_the_icvs_bytes() {
        let computed: Vec<u8> = (1..=32).collect();
        for n in [8, 12, 16] {
            assert!(icv_matches(&computed, &computed[..n]), "{n} bytes");
            for at in 0..n {
                let mut received = computed[..n].to_vec();
                received[at] ^= 0x80;
                assert!(!icv_matches(&computed, &received), "{n} bytes, byte {at} differs");
            }
        }
        assert!(!icv_matches(&computed, &computed[..7]) && !icv_matches(&computed, &computed[..17]));
        assert!(!icv_matches(&computed[..15], &computed[..8]), "a computed tag shorter than 16 bytes");
    }

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

    /// A burst whose packet claims an ESP header past its end, or is shorter than its ICV, gets
    /// that packet refused, not a panic, and the others sealed (short GCM packets: through the
    /// lanes where the CPU has them).
    #[test]
    fn a_burst_packet_with_its_esp_header_past_its_end_is_refused() {
        let t = Transform::new(Suite::AesGcm { key: AesKeySize::Aes256, icv_len: 16 }, &[1; 36], &[]).unwrap();
        let mut bufs = vec![vec![0u8; 60]; 6];
        bufs[5].truncate(5);
        let mut pending: Vec<BurstPacket<'_>> = bufs
            .iter_mut()
            .enumerate()
            .map(|(i, pkt)| BurstPacket { transform: &t, pkt, esp_at: if i == 2 { 100 } else { 0 }, seq: 1 + i as u64, esn: false })
            .collect();
        assert_eq!(Transform::seal_burst(&mut pending).to_vec(), vec![true, true, false, true, true, false]);
        drop(pending);
        assert!(bufs[0][16..44].iter().any(|&b| b != 0), "payload encrypted");
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
    // of the tag).
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
        let g = Gcm::new(AesKeySize::Aes128, &hex("77be63708971c4e240d1cb79e8d77feb e0e00f19")).unwrap();
        let tag = g.gmac(&hex("fed7ba0136a797f3"), &hex("7a43ec1d9c0a5a78a0b16533a6213cab")).unwrap();
        assert_eq!(tag[..], hex("209fcc8d3675ed938e9c7166709dd946")[..]);
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
            let tag = c.key.mac(b"Hi There", 0..8).unwrap();
            assert_eq!(tag[..integrity.icv_len()], hex(icv)[..]);
        }
    }
}
