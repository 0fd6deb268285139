//! HMAC, alone or chained with AES-CBC decryption, as one job of the library's job API (MAC then
//! decrypt: the caller compares the tag before using the plaintext). The AES round keys and the
//! HMAC inner and outer hash states are computed once per SA.
//!
//! The jobs run one at a time on a manager using SHA-NI (`manager::with_job_manager`), or a burst
//! at a time in the library's multi-buffer lanes through its synchronous burst API
//! ([`encrypt_then_mac_burst`], [`mac_then_decrypt_burst`]). CBC encryption is offered for
//! bursts only: one job at a time leaves the lanes idle, and a serial implementation is 2-3x
//! faster for a single packet (BENCHMARKS.md, crypto calls).

use std::cell::RefCell;
use std::ops::Range;

use zeroize::Zeroize;

use crate::{manager, sys, Error};

const AES_BLOCK: usize = 16;
/// SHA-1 and SHA-256 hash 64-byte blocks (RFC 2104's B).
const HASH_BLOCK: usize = 64;
/// Room for the largest digest (SHA-256).
const MAX_DIGEST: usize = 32;

/// The HMAC hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hmac {
    Sha1,
    Sha256,
}

impl Hmac {
    fn digest_len(self) -> usize {
        match self {
            Hmac::Sha1 => 20,
            Hmac::Sha256 => 32,
        }
    }

    /// The tag lengths the library produces: the IPsec truncation and the full digest.
    fn tag_len_supported(self, len: usize) -> bool {
        match self {
            Hmac::Sha1 => len == 12 || len == 20,
            Hmac::Sha256 => len == 16 || len == 32,
        }
    }
}

/// Where one packet's IV, cipher and hash ranges lie in its buffer (as in ESP, RFC 3602 3: the
/// IV in the packet, before the ciphertext). The IV is read where it is, not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The 16-byte IV, before the cipher range.
    pub iv_at: usize,
    /// Encrypted or decrypted in place: whole AES blocks.
    pub cipher: Range<usize>,
    /// Covered by the HMAC.
    pub hash: Range<usize>,
}

impl Layout {
    /// Within a buffer of `len` bytes, with whole blocks to cipher (at least one), something to
    /// hash and the IV before the cipher range: every job parameter the library's checked calls
    /// would refuse, which the bursts skip (its `_nocheck` burst calls).
    fn fits(&self, len: usize) -> bool {
        let in_buf = |r: &Range<usize>| r.start < r.end && r.end <= len;
        in_buf(&self.cipher)
            && in_buf(&self.hash)
            && self.cipher.len().is_multiple_of(AES_BLOCK)
            && self.iv_at.checked_add(AES_BLOCK).is_some_and(|iv_end| iv_end <= self.cipher.start)
    }
}

#[repr(C, align(16))]
struct RoundKeys([u8; 15 * AES_BLOCK]);

#[repr(C, align(16))]
struct HashState([u8; MAX_DIGEST]);

/// What a job does besides the HMAC, and in which order.
#[derive(Debug, Clone, Copy)]
struct Cipher {
    mode: sys::IMB_CIPHER_MODE,
    direction: sys::IMB_CIPHER_DIRECTION,
    order: sys::IMB_CHAIN_ORDER,
}

impl Cipher {
    /// The HMAC alone.
    const NONE: Cipher = Cipher { mode: sys::IMB_CIPHER_NULL, direction: sys::IMB_DIR_DECRYPT, order: sys::IMB_ORDER_HASH_CIPHER };
    /// CBC encryption, then the HMAC of the ciphertext.
    const CBC_ENCRYPT: Cipher = Cipher { mode: sys::IMB_CIPHER_CBC, direction: sys::IMB_DIR_ENCRYPT, order: sys::IMB_ORDER_CIPHER_HASH };
    /// The HMAC, then CBC decryption.
    const CBC_DECRYPT: Cipher = Cipher { mode: sys::IMB_CIPHER_CBC, direction: sys::IMB_DIR_DECRYPT, order: sys::IMB_ORDER_HASH_CIPHER };
}

/// An expanded AES-CBC key and a pre-keyed HMAC.
pub struct CbcHmacKey {
    encrypt_keys: Box<RoundKeys>,
    decrypt_keys: Box<RoundKeys>,
    key_len: usize,
    hmac: Hmac,
    inner: Box<HashState>,
    outer: Box<HashState>,
    tag_len: usize,
}

impl std::fmt::Debug for CbcHmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CbcHmacKey").field("hmac", &self.hmac).field("tag_len", &self.tag_len).finish_non_exhaustive()
    }
}

impl CbcHmacKey {
    /// Expands `cipher_key` (16, 24 or 32 bytes) and pre-keys the HMAC with `mac_key`; tags are
    /// `tag_len` bytes (12 or 20 for SHA-1, 16 or 32 for SHA-256).
    pub fn new(cipher_key: &[u8], hmac: Hmac, mac_key: &[u8], tag_len: usize) -> Result<CbcHmacKey, Error> {
        if !hmac.tag_len_supported(tag_len) {
            return Err(Error::KeyLength);
        }
        let mgr = manager::shared()?.raw();
        let expand = match cipher_key.len() {
            16 => mgr.keyexp_128,
            24 => mgr.keyexp_192,
            32 => mgr.keyexp_256,
            _ => return Err(Error::KeyLength),
        }
        .ok_or(Error::NoManager)?;
        let mut encrypt_keys = Box::new(RoundKeys([0; 15 * AES_BLOCK]));
        let mut decrypt_keys = Box::new(RoundKeys([0; 15 * AES_BLOCK]));
        // SAFETY: the function reads `cipher_key.len()` bytes (its length selected it) and
        // writes at most 15 round keys to each schedule.
        unsafe {
            expand(cipher_key.as_ptr().cast(), encrypt_keys.0.as_mut_ptr().cast(), decrypt_keys.0.as_mut_ptr().cast())
        };
        let (inner, outer) = hmac_states(mgr, hmac, mac_key)?;
        Ok(CbcHmacKey { encrypt_keys, decrypt_keys, key_len: cipher_key.len(), hmac, inner, outer, tag_len })
    }

    /// Which call of a burst this key's jobs go in: one per AES key size and hash (below 8).
    fn burst_group(&self) -> u8 {
        let size = (self.key_len / 8 - 2) as u8; // 16, 24, 32 bytes: 0, 1, 2
        size * 2 + u8::from(self.hmac == Hmac::Sha256)
    }

    /// The length of the tags this key produces.
    pub fn tag_len(&self) -> usize {
        self.tag_len
    }

    /// Returns the HMAC of `buf[hash]` (its first `tag_len` bytes are the tag).
    pub fn mac(&self, buf: &[u8], hash: Range<usize>) -> Result<[u8; MAX_DIGEST], Error> {
        if !(hash.start <= hash.end && hash.end <= buf.len()) {
            return Err(Error::Layout);
        }
        // Nothing is written through `src` without a cipher: the job only reads the hashed range.
        self.run(buf.as_ptr().cast_mut(), &Layout { iv_at: 0, cipher: 0..0, hash }, Cipher::NONE)
    }

    /// Returns the HMAC of `layout.hash`, then decrypts `layout.cipher` in place with the IV at
    /// `layout.iv_at`.
    pub fn mac_then_decrypt(&self, buf: &mut [u8], layout: &Layout) -> Result<[u8; MAX_DIGEST], Error> {
        if !layout.fits(buf.len()) {
            return Err(Error::Layout);
        }
        self.run(buf.as_mut_ptr(), layout, Cipher::CBC_DECRYPT)
    }

    /// Fills in `job` for this key over the buffer at `src`: the ranges of `layout`, its IV (none
    /// without a cipher), the tag's destination and what `cipher` says.
    fn describe(&self, job: &mut sys::IMB_JOB, src: *mut u8, layout: &Layout, tag: *mut u8, cipher: Cipher) {
        job.enc_keys = self.encrypt_keys.0.as_ptr().cast();
        job.dec_keys = self.decrypt_keys.0.as_ptr().cast();
        job.key_len_in_bytes = self.key_len as u64;
        job.__bindgen_anon_1.src = src;
        job.__bindgen_anon_2.dst = src.wrapping_add(layout.cipher.start);
        job.__bindgen_anon_3.cipher_start_src_offset_in_bytes = layout.cipher.start as u64;
        job.__bindgen_anon_4.msg_len_to_cipher_in_bytes = layout.cipher.len() as u64;
        job.hash_start_src_offset_in_bytes = layout.hash.start as u64;
        job.__bindgen_anon_5.msg_len_to_hash_in_bytes = layout.hash.len() as u64;
        job.iv = if cipher.mode == sys::IMB_CIPHER_NULL { std::ptr::null() } else { src.wrapping_add(layout.iv_at) };
        job.iv_len_in_bytes = AES_BLOCK as u64;
        job.auth_tag_output = tag;
        job.auth_tag_output_len_in_bytes = self.tag_len as u64;
        job.u.HMAC._hashed_auth_key_xor_ipad = self.inner.0.as_ptr();
        job.u.HMAC._hashed_auth_key_xor_opad = self.outer.0.as_ptr();
        job.cipher_mode = cipher.mode;
        job.cipher_direction = cipher.direction;
        job.chain_order = cipher.order;
        job.hash_alg = match self.hmac {
            Hmac::Sha1 => sys::IMB_AUTH_HMAC_SHA_1,
            Hmac::Sha256 => sys::IMB_AUTH_HMAC_SHA_256,
        };
    }

    /// One job over the buffer at `src`, whose `layout` the caller checked: the HMAC of
    /// `layout.hash`, then, with `Cipher::CBC_DECRYPT`, CBC decryption of `layout.cipher` in place.
    fn run(&self, src: *mut u8, layout: &Layout, cipher: Cipher) -> Result<[u8; MAX_DIGEST], Error> {
        let mut tag = [0u8; MAX_DIGEST];
        manager::with_job_manager(|m| {
            let raw = m.raw();
            let (Some(next), Some(submit), Some(flush)) = (raw.get_next_job, raw.submit_job, raw.flush_job) else {
                return Err(Error::NoManager);
            };
            let mgr = m.raw_mut();
            // SAFETY: `mgr` is this thread's initialised manager; the job it hands out is ours
            // (and valid) until it is submitted.
            let job = unsafe { &mut *next(mgr) };
            self.describe(job, src, layout, tag.as_mut_ptr(), cipher);
            // Every pointer in the job (`src` with the ranges its caller checked, written only
            // with a mutable buffer and a cipher, the keys, `tag`) outlives this closure, which
            // waits for the job: one in flight per thread, submitted, flushed until it is back.
            // SAFETY: as just said; the job returned is a valid job of this manager.
            let status = unsafe {
                let mut done = submit(mgr);
                while done.is_null() {
                    done = flush(mgr);
                }
                (*done).status
            };
            match status {
                sys::IMB_STATUS_COMPLETED => Ok(()),
                status => Err(Error::Job(status)),
            }
        })??;
        Ok(tag)
    }
}

/// One packet of a burst ([`encrypt_then_mac_burst`], [`mac_then_decrypt_burst`]).
#[derive(Debug)]
pub struct BurstJob<'a> {
    pub key: &'a CbcHmacKey,
    pub buf: &'a mut [u8],
    pub layout: Layout,
    /// Out: the HMAC (its first `key.tag_len()` bytes are the tag).
    pub tag: [u8; MAX_DIGEST],
}

/// For each job, encrypts `layout.cipher` of its buffer in place with AES-CBC under its IV, then
/// computes the HMAC of `layout.hash` (which may cover the ciphertext) into `tag`. See
/// [`run_burst`] for how, and for the errors.
pub fn encrypt_then_mac_burst(jobs: &mut [BurstJob<'_>]) -> Result<(), Error> {
    run_burst(jobs, Cipher::CBC_ENCRYPT)
}

/// For each job, computes the HMAC of `layout.hash` into `tag`, then decrypts `layout.cipher` in
/// place with AES-CBC under its IV (the caller compares the tag before using the plaintext). See
/// [`run_burst`] for how, and for the errors.
pub fn mac_then_decrypt_burst(jobs: &mut [BurstJob<'_>]) -> Result<(), Error> {
    run_burst(jobs, Cipher::CBC_DECRYPT)
}

thread_local! {
    /// The jobs of the burst API's calls, which take them as one array: kept per thread and
    /// reused, so that a burst allocates nothing once the first has sized it.
    static RAW_JOBS: RefCell<Vec<sys::IMB_JOB>> = const { RefCell::new(Vec::new()) };
}

/// Runs the jobs side by side in the library's multi-buffer lanes (8 or 16 packets at once with
/// AVX2 or AVX-512), on this thread's manager for this CPU (`manager::with_burst_manager`), with
/// the library's synchronous burst API: one call ciphers every job, one hashes them (in the
/// order `cipher` says), each finishing all its jobs before it returns. Through the job API's
/// queue instead (`submit_job`, `flush_job`, as DPDK's aesni_mb PMD does) a burst of 64-byte
/// packets took 4-7% longer (BENCHMARKS.md, "Twelfth session"). A call takes one AES key size
/// and one hash: jobs are grouped by them.
/// Returns an error if a layout is invalid (nothing is then touched) or a job failed (the buffers
/// are then in an undefined state).
fn run_burst(jobs: &mut [BurstJob<'_>], cipher: Cipher) -> Result<(), Error> {
    if !jobs.iter().all(|j| j.layout.fits(j.buf.len())) {
        return Err(Error::Layout);
    }
    let mut groups = 0u8;
    for j in jobs.iter() {
        groups |= 1 << j.key.burst_group();
    }
    while groups != 0 {
        let group = groups.trailing_zeros() as u8;
        groups &= groups - 1;
        run_group(jobs.iter_mut().filter(|j| j.key.burst_group() == group), cipher)?;
    }
    Ok(())
}

/// [`run_burst`] for jobs whose keys have the same AES key size and hash.
fn run_group<'j, 'a: 'j>(jobs: impl Iterator<Item = &'j mut BurstJob<'a>>, cipher: Cipher) -> Result<(), Error> {
    RAW_JOBS.with(|raw| {
        let mut raw = raw.borrow_mut();
        raw.clear();
        for j in jobs {
            // Described where it lies: built aside and pushed, each job was copied once more.
            raw.push(sys::IMB_JOB::default());
            let job = raw.last_mut().expect("just pushed");
            j.key.describe(job, j.buf.as_mut_ptr(), &j.layout, j.tag.as_mut_ptr(), cipher);
        }
        // The group's key size and hash, which every job of it shares.
        let Some(first) = raw.first() else { return Ok(()) };
        let (key_size, hash) = (first.key_len_in_bytes as sys::IMB_KEY_SIZE_BYTES, first.hash_alg);
        let n = u32::try_from(raw.len()).map_err(|_| Error::Job(sys::IMB_STATUS_INVALID_ARGS))?;
        manager::with_burst_manager(|m| {
            let mgr_fns = m.raw();
            let (Some(cipher_burst), Some(hash_burst)) = (mgr_fns.submit_cipher_burst_nocheck, mgr_fns.submit_hash_burst_nocheck) else {
                return Err(Error::NoManager);
            };
            let (mgr, jobs_ptr) = (m.raw_mut(), raw.as_mut_ptr());
            // `mgr` is this thread's initialised manager; `jobs_ptr` is `n` jobs, which stay in
            // place for both calls. Every pointer in them (the buffers, with the ranges and IVs
            // `Layout::fits` checked, the tags, the keys) is borrowed by the caller for longer
            // than this function. Each call completes all its jobs before it returns, so the
            // library keeps no pointer after it. Unchecked by the library: `Layout::fits` and
            // `CbcHmacKey::new` refused what its checked variants would.
            // SAFETY: as just said.
            let completed = unsafe {
                if cipher.order == sys::IMB_ORDER_CIPHER_HASH {
                    [cipher_burst(mgr, jobs_ptr, n, cipher.mode, cipher.direction, key_size), hash_burst(mgr, jobs_ptr, n, hash)]
                } else {
                    [hash_burst(mgr, jobs_ptr, n, hash), cipher_burst(mgr, jobs_ptr, n, cipher.mode, cipher.direction, key_size)]
                }
            };
            if completed != [n, n] || raw.iter().any(|j| j.status != sys::IMB_STATUS_COMPLETED) {
                return Err(Error::Job(sys::IMB_STATUS_INVALID_ARGS));
            }
            Ok(())
        })?
    })
}

/// RFC 2104: the hash states after the first block of the inner and outer hashes, H(K ^ ipad)
/// and H(K ^ opad), with a key longer than a block hashed first.
fn hmac_states(mgr: &sys::IMB_MGR, hmac: Hmac, key: &[u8]) -> Result<(Box<HashState>, Box<HashState>), Error> {
    let (one_block, hash) = match hmac {
        Hmac::Sha1 => (mgr.sha1_one_block, mgr.sha1),
        Hmac::Sha256 => (mgr.sha256_one_block, mgr.sha256),
    };
    let (Some(one_block), Some(hash)) = (one_block, hash) else { return Err(Error::NoManager) };
    let mut block = [0u8; HASH_BLOCK];
    if key.len() > HASH_BLOCK {
        // SAFETY: reads `key.len()` bytes of `key`, writes one digest (at most 32 bytes) into `block`.
        unsafe { hash(key.as_ptr().cast(), key.len() as u64, block.as_mut_ptr().cast()) };
        block[hmac.digest_len()..].fill(0);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let state = |pad: u8| {
        let mut padded = block.map(|b| b ^ pad);
        let mut out = Box::new(HashState([0; MAX_DIGEST]));
        // SAFETY: reads one 64-byte block, writes one digest (at most 32 bytes) into `out`.
        unsafe { one_block(padded.as_ptr().cast(), out.0.as_mut_ptr().cast()) };
        padded.zeroize();
        out
    };
    let states = (state(0x36), state(0x5c));
    block.zeroize();
    Ok(states)
}

impl Drop for CbcHmacKey {
    fn drop(&mut self) {
        self.encrypt_keys.0.zeroize();
        self.decrypt_keys.0.zeroize();
        self.inner.0.zeroize();
        self.outer.0.zeroize();
    }
}
