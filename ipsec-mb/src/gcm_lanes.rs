//! AES-GCM for short payloads, up to four packets in one pass: a multi-buffer GCM, which
//! intel-ipsec-mb 1.3 does not have. One call of the library at a 52-byte payload (a 64-byte
//! frame) costs about 26 ns, most of it the latency of one chain of AES rounds and then of GHASH
//! (BENCHMARKS.md, "Thirteenth session"); four packets' chains side by side keep the AES and
//! carry-less multiply units busy instead.
//!
//! A payload of up to 64 bytes is one 512-bit register: its counter blocks 2 to 5 go through the
//! AES rounds together (VAES), and its GHASH is one aggregated product, computed as POLYVAL
//! (RFC 8452 Appendix A): GHASH(H, X_1..X_n) = ByteReverse(POLYVAL(mulX_POLYVAL(ByteReverse(H)),
//! ByteReverse(X_1), ..., ByteReverse(X_n))), and POLYVAL's Horner rule unrolled to
//! X_1·H^n + X_2·H^(n-1) + ... + X_n·H with the key's powers precomputed (NIST SP 800-38D 6.4),
//! multiplied lane by lane and reduced once. The round keys are the library's own expansion.

use std::arch::x86_64::{
    __m128i, __m512i, _mm512_aesenc_epi128, _mm512_aesenclast_epi128, _mm512_broadcast_i32x4, _mm512_bslli_epi128,
    _mm512_bsrli_epi128, _mm512_clmulepi64_epi128, _mm512_extracti32x4_epi32, _mm512_loadu_si512,
    _mm512_mask_storeu_epi8, _mm512_maskz_loadu_epi8, _mm512_maskz_mov_epi8, _mm512_or_si512, _mm512_set_epi64,
    _mm512_shuffle_epi8, _mm512_xor_si512, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_bslli_si128, _mm_bsrli_si128,
    _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_extract_epi64, _mm_mask_storeu_epi8, _mm_or_si128, _mm_set_epi64x,
    _mm_setzero_si128, _mm_shuffle_epi32, _mm_shuffle_epi8, _mm_xor_si128,
};

use crate::gcm::{Aad, AadKind, Nonce, TAG_LEN};
use crate::Error;

/// The longest payload the lanes take: one 512-bit register of counter blocks.
pub const MAX_SHORT_PAYLOAD: usize = 64;
/// Packets in one pass.
const LANES: usize = 4;
/// H^6 .. H^1 (a 64-byte payload is four blocks, plus the AAD and the length block), then three
/// zero blocks, so that a 512-bit load of four powers may start at any of the first six.
const POWERS: usize = 9;

/// Whether this CPU has what the lanes need (AVX-512 with VAES and VPCLMULQDQ); without it no
/// key offers them (`GcmKey::short` is `None`).
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("vpclmulqdq")
        && std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

/// A key for the lanes: the AES round keys and POLYVAL's powers of the GHASH key. Made only on a
/// CPU that has what the lanes need, so holding one proves it.
pub struct ShortGcmKey {
    round_keys: [__m128i; 15],
    rounds: usize,
    /// mulX_POLYVAL(ByteReverse(H)) to the powers 6, 5, .., 1, then zero blocks.
    powers: [__m128i; POWERS],
}

impl std::fmt::Debug for ShortGcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShortGcmKey").finish_non_exhaustive()
    }
}

impl Drop for ShortGcmKey {
    fn drop(&mut self) {
        // `__m128i` has no zeroize; overwrite through volatile stores of zero registers.
        for k in self.round_keys.iter_mut().chain(self.powers.iter_mut()) {
            // SAFETY: `k` is a valid, aligned `__m128i` we own; SSE2 is part of x86-64.
            unsafe { std::ptr::write_volatile(k, _mm_setzero_si128()) };
        }
    }
}

impl ShortGcmKey {
    /// From the library's expansion of the AES key (`rounds` + 1 round keys of 16 bytes), or
    /// `None` if this CPU cannot run the lanes.
    pub(crate) fn new(expanded: &[u8], rounds: usize) -> Option<ShortGcmKey> {
        if !available() || !matches!(rounds, 10 | 12 | 14) || expanded.len() < (rounds + 1) * 16 {
            return None;
        }
        // SAFETY: `available` found every feature `expand` is compiled for.
        Some(unsafe { expand(expanded, rounds) })
    }
}

/// One packet for [`seal`]: its payload, encrypted in place, and its ICV field, which receives
/// the leftmost bytes of the tag.
#[derive(Debug)]
pub struct ShortGcmJob<'a> {
    key: &'a ShortGcmKey,
    nonce: Nonce,
    /// The AAD's bytes as a little-endian value, and how many.
    aad: (u128, usize),
    data: &'a mut [u8],
    icv: &'a mut [u8],
}

/// Counter blocks 2, 3, 4, 5 (the payload's, NIST SP 800-38D 7.1: inc32 of J0 = nonce || 1), as
/// the last byte of each 128-bit lane, in `_mm512_set_epi64`'s order (highest first).
const COUNTERS_2_TO_5: [i64; 8] = [5 << 56, 0, 4 << 56, 0, 3 << 56, 0, 2 << 56, 0];

/// Reverses the bytes of each 128-bit lane (`pshufb` indices 15..0).
const BYTE_REVERSE: [i64; 2] = [0x0809_0a0b_0c0d_0e0f, 0x0001_0203_0405_0607];

/// POLYVAL's reduction polynomial as `pclmulqdq` uses it (RFC 8452; x^128 + x^127 + x^126 +
/// x^121 + 1): the low half 1, the high half 0xc2 << 56.
const POLY: [i64; 2] = [1, 0xc200_0000_0000_0000_u64 as i64];

#[target_feature(enable = "sse4.1")]
fn to_u128(v: __m128i) -> u128 {
    (_mm_cvtsi128_si64(v) as u64 as u128) | (_mm_extract_epi64::<1>(v) as u64 as u128) << 64
}

#[target_feature(enable = "sse2")]
fn from_u128(v: u128) -> __m128i {
    _mm_set_epi64x((v >> 64) as i64, v as i64)
}

/// Reduces the 256-bit carry-less product `hi:lo` to POLYVAL's a·b·x^-128 (RFC 8452: two
/// folds by the polynomial's high half).
#[target_feature(enable = "pclmulqdq")]
fn reduce(lo: __m128i, hi: __m128i) -> __m128i {
    let poly = _mm_set_epi64x(POLY[1], POLY[0]);
    let fold = |x: __m128i| _mm_xor_si128(_mm_shuffle_epi32::<0x4e>(x), _mm_clmulepi64_si128::<0x10>(x, poly));
    _mm_xor_si128(hi, fold(fold(lo)))
}

/// The unreduced 256-bit product of `a` and `b` as (lo, hi).
#[target_feature(enable = "pclmulqdq")]
fn product(a: __m128i, b: __m128i) -> (__m128i, __m128i) {
    let mid = _mm_xor_si128(_mm_clmulepi64_si128::<0x10>(a, b), _mm_clmulepi64_si128::<0x01>(a, b));
    (
        _mm_xor_si128(_mm_clmulepi64_si128::<0x00>(a, b), _mm_bslli_si128::<8>(mid)),
        _mm_xor_si128(_mm_clmulepi64_si128::<0x11>(a, b), _mm_bsrli_si128::<8>(mid)),
    )
}

#[target_feature(enable = "aes,pclmulqdq,sse4.1")]
fn expand(expanded: &[u8], rounds: usize) -> ShortGcmKey {
    let mut round_keys = [_mm_setzero_si128(); 15];
    for (k, bytes) in round_keys.iter_mut().zip(expanded.chunks_exact(16)).take(rounds + 1) {
        *k = from_u128(u128::from_le_bytes(bytes.try_into().unwrap_or_default()));
    }
    // H = AES_K(0^128) (SP 800-38D 6.4), then mulX_POLYVAL(ByteReverse(H)) (RFC 8452 App. A).
    let mut h = round_keys[0];
    for k in &round_keys[1..rounds] {
        h = _mm_aesenc_si128(h, *k);
    }
    let h = to_u128(_mm_aesenclast_si128(h, round_keys[rounds])).swap_bytes();
    let h = (h << 1) ^ if h >> 127 == 1 { 0xc200_0000_0000_0000_0000_0000_0000_0001 } else { 0 };
    let h1 = from_u128(h);
    let mut powers = [_mm_setzero_si128(); POWERS];
    let mut power = h1;
    for slot in powers[..6].iter_mut().rev() {
        *slot = power;
        let (lo, hi) = product(power, h1);
        power = reduce(lo, hi);
    }
    ShortGcmKey { round_keys, rounds, powers }
}

impl<'a> ShortGcmJob<'a> {
    /// A packet to seal: `icv` is its ICV field (1 to 16 bytes: RFC 4106 8.1). `Error::Layout` if
    /// the payload is longer than [`MAX_SHORT_PAYLOAD`], the AAD not a short one ([`Aad::words`])
    /// or the field's length not 1-16.
    pub fn new(key: &'a ShortGcmKey, nonce: Nonce, aad: Aad<'_>, data: &'a mut [u8], icv: &'a mut [u8]) -> Result<Self, Error> {
        let AadKind::Short { value, len } = aad.0 else { return Err(Error::Layout) };
        if data.len() > MAX_SHORT_PAYLOAD || !(1..=TAG_LEN).contains(&icv.len()) {
            return Err(Error::Layout);
        }
        Ok(ShortGcmJob { key, nonce, aad: (value, len), data, icv })
    }
}

/// Encrypts each job's payload in place and writes the leftmost bytes of its tag into its ICV
/// field, four jobs at a time as long as the four share their number of AES rounds.
pub fn seal(jobs: &mut [ShortGcmJob<'_>]) {
    let mut rest = jobs;
    while !rest.is_empty() {
        let rounds = rest[0].key.rounds;
        let n = rest.iter().take(LANES).take_while(|j| j.key.rounds == rounds).count();
        let (group, tail) = rest.split_at_mut(n);
        // SAFETY: every job holds a ShortGcmKey, made only where `available` found the features
        // `lanes` is compiled for.
        unsafe {
            match group {
                [a, b, c, d] => lanes([a, b, c, d]),
                [a, b, c] => lanes([a, b, c]),
                [a, b] => lanes([a, b]),
                [a, ..] => lanes([a]),
                [] => {}
            }
        }
        rest = tail;
    }
}

/// `N` packets (all with the same number of rounds) side by side: each one's counter blocks in
/// one register, its J0 in another, every round applied to all of them before the next.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
fn lanes<const N: usize>(mut jobs: [&mut ShortGcmJob<'_>; N]) {
    let rounds = jobs[0].key.rounds;
    let [c7, c6, c5, c4, c3, c2, c1, c0] = COUNTERS_2_TO_5;
    let counters = _mm512_set_epi64(c7, c6, c5, c4, c3, c2, c1, c0);
    let reverse = _mm512_set_epi64(
        BYTE_REVERSE[1], BYTE_REVERSE[0], BYTE_REVERSE[1], BYTE_REVERSE[0],
        BYTE_REVERSE[1], BYTE_REVERSE[0], BYTE_REVERSE[1], BYTE_REVERSE[0],
    );
    let j0_counter = from_u128(1 << 120);

    let mut keystream = [counters; N];
    let mut j0 = [j0_counter; N];
    let mut input = [counters; N];
    let mut masks = [0u64; N];
    for (p, job) in jobs.iter().enumerate() {
        let nonce = from_u128(job.nonce.0);
        let k0 = job.key.round_keys[0];
        keystream[p] = _mm512_xor_si512(_mm512_or_si512(_mm512_broadcast_i32x4(nonce), counters), _mm512_broadcast_i32x4(k0));
        j0[p] = _mm_xor_si128(_mm_or_si128(nonce, j0_counter), k0);
        let len = job.data.len();
        masks[p] = if len == 64 { u64::MAX } else { (1u64 << len) - 1 };
        // SAFETY: the mask covers `len` bytes from the start of `data`, all inside it; the
        // masked-off bytes are not accessed (AVX-512 masked loads do not fault on them).
        input[p] = unsafe { _mm512_maskz_loadu_epi8(masks[p], job.data.as_ptr().cast()) };
    }
    for r in 1..rounds {
        for (p, job) in jobs.iter().enumerate() {
            let k = job.key.round_keys[r];
            keystream[p] = _mm512_aesenc_epi128(keystream[p], _mm512_broadcast_i32x4(k));
            j0[p] = _mm_aesenc_si128(j0[p], k);
        }
    }
    for (p, job) in jobs.iter_mut().enumerate() {
        let k = job.key.round_keys[rounds];
        let keystream = _mm512_aesenclast_epi128(keystream[p], _mm512_broadcast_i32x4(k));
        let encrypted_j0 = _mm_aesenclast_si128(j0[p], k);
        let output = _mm512_maskz_mov_epi8(masks[p], _mm512_xor_si512(input[p], keystream));
        // SAFETY: as for the load: only the bytes of `data` the mask covers are written.
        unsafe { _mm512_mask_storeu_epi8(job.data.as_mut_ptr().cast(), masks[p], output) };
        let tag = _mm_xor_si128(_mm_shuffle_epi8(ghash(job, output, reverse), byte_reverse_128()), encrypted_j0);
        // SAFETY: the mask covers the field's 1 to 16 bytes (checked when the job was made).
        unsafe { _mm_mask_storeu_epi8(job.icv.as_mut_ptr().cast(), u16::MAX >> (TAG_LEN - job.icv.len()), tag) };
    }
}

/// [`BYTE_REVERSE`] as one 128-bit register.
#[target_feature(enable = "sse2")]
fn byte_reverse_128() -> __m128i {
    _mm_set_epi64x(BYTE_REVERSE[1], BYTE_REVERSE[0])
}

/// POLYVAL over the AAD block, the ciphertext's blocks (zero beyond its length) and the length
/// block, each byte-reversed (RFC 8452 App. A); the result is GHASH byte-reversed.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1")]
fn ghash(job: &ShortGcmJob<'_>, ciphertext: __m512i, reverse: __m512i) -> __m128i {
    let len = job.data.len();
    let blocks = len.div_ceil(16);
    let key = job.key;
    // The payload's block i (of `blocks`) multiplies H^(blocks + 1 - i); `powers` holds H^k at
    // index 6 - k. The AAD block multiplies H^(blocks + 2), the length block H^1.
    // SAFETY: `blocks` <= 4, so the four powers read start at index 1..=5 and end by index 8,
    // inside `powers` (POWERS = 9).
    let powers = unsafe { _mm512_loadu_si512(key.powers.as_ptr().add(5 - blocks).cast()) };
    let x = _mm512_shuffle_epi8(ciphertext, reverse);
    let mid = _mm512_xor_si512(_mm512_clmulepi64_epi128::<0x10>(x, powers), _mm512_clmulepi64_epi128::<0x01>(x, powers));
    let lo = _mm512_xor_si512(_mm512_clmulepi64_epi128::<0x00>(x, powers), _mm512_bslli_epi128::<8>(mid));
    let hi = _mm512_xor_si512(_mm512_clmulepi64_epi128::<0x11>(x, powers), _mm512_bsrli_epi128::<8>(mid));
    let (aad, aad_len) = job.aad;
    let (a_lo, a_hi) = product(from_u128(aad.swap_bytes()), key.powers[4 - blocks]);
    let length_block = ((aad_len as u128 * 8) << 64) | (len as u128 * 8);
    let (l_lo, l_hi) = product(from_u128(length_block), key.powers[5]);
    let lo = _mm_xor_si128(_mm_xor_si128(fold_lanes(lo), a_lo), l_lo);
    let hi = _mm_xor_si128(_mm_xor_si128(fold_lanes(hi), a_hi), l_hi);
    reduce(lo, hi)
}

/// The XOR of a register's four 128-bit lanes.
#[target_feature(enable = "avx512f")]
fn fold_lanes(v: __m512i) -> __m128i {
    _mm_xor_si128(
        _mm_xor_si128(_mm512_extracti32x4_epi32::<0>(v), _mm512_extracti32x4_epi32::<1>(v)),
        _mm_xor_si128(_mm512_extracti32x4_epi32::<2>(v), _mm512_extracti32x4_epi32::<3>(v)),
    )
}
