//! AES-GCM through the library's direct API: the key schedule and GHASH tables are expanded once
//! per SA ([`GcmKey::new`]); each packet is one call with a context on the stack, into the
//! thread's private copy of the library if it has one ([`crate::use_private_copy`]).
//!
//! The nonce and a short AAD are handed over as values ([`Nonce`], [`Aad::words`]) and written
//! to memory with one 16-byte store just before the call. The library reads each with one masked
//! 16-byte load; when the bytes come from several smaller stores still in flight, the load cannot
//! be forwarded from them and waits until they reach the cache. At 64 bytes that wait was half of
//! the call: 38 ns against 19 with single stores (AES-256-GCM, a C loop over the same calls).

use std::arch::x86_64::{__m128i, _mm_set_epi64x};
use std::cell::OnceCell;
use std::mem::MaybeUninit;

use zeroize::Zeroize;

use crate::gcm_lanes::ShortGcmKey;
use crate::manager::{self, Manager};
use crate::{library, sys, Error};

/// The length of the full GCM tag; ESP may send its leftmost 8, 12 or 16 bytes (RFC 4106 8.1).
pub const TAG_LEN: usize = 16;
/// The length of the GCM nonce (RFC 4106 4: salt || explicit IV).
const NONCE_LEN: usize = 12;

/// The 12-byte GCM nonce, as a value (its bytes in little-endian order).
#[derive(Debug, Clone, Copy)]
pub struct Nonce(pub(crate) u128);

impl Nonce {
    /// RFC 4106 4: salt || explicit IV.
    pub fn new(salt: [u8; 4], iv: [u8; 8]) -> Nonce {
        Nonce(u128::from(u32::from_le_bytes(salt)) | u128::from(u64::from_le_bytes(iv)) << 32)
    }
}

impl From<[u8; NONCE_LEN]> for Nonce {
    fn from(bytes: [u8; NONCE_LEN]) -> Nonce {
        let mut padded = [0u8; 16];
        padded[..NONCE_LEN].copy_from_slice(&bytes);
        Nonce(u128::from_le_bytes(padded))
    }
}

/// The additional authenticated data of one call.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a>(pub(crate) AadKind<'a>);

#[derive(Debug, Clone, Copy)]
pub(crate) enum AadKind<'a> {
    /// Up to 16 bytes as a value (little-endian), and how many there are.
    Short { value: u128, len: usize },
    /// Bytes read where they are.
    Bytes(&'a [u8]),
}

impl Aad<'static> {
    /// Up to four 4-byte words, concatenated (ESP's SPI and sequence number, RFC 4106 5).
    pub fn words<const N: usize>(words: [[u8; 4]; N]) -> Aad<'static> {
        const { assert!(N <= 4) };
        let value = words.iter().rev().fold(0u128, |v, w| v << 32 | u128::from(u32::from_le_bytes(*w)));
        Aad(AadKind::Short { value, len: N * 4 })
    }
}

impl<'a> Aad<'a> {
    /// Any bytes (GMAC's whole packet, RFC 4543 3.3).
    pub fn bytes(bytes: &'a [u8]) -> Aad<'a> {
        Aad(AadKind::Bytes(bytes))
    }
}

/// 16 bytes for the library to read, stored at once (see the module comment).
#[repr(C, align(16))]
struct Block16([u8; 16]);

/// Writes `value` (little-endian) with one 16-byte store. The block stays uninitialised to Rust:
/// only the library reads it, through the returned pointer's block.
#[inline(always)]
fn store_at_once(block: &mut MaybeUninit<Block16>, value: u128) -> *const u8 {
    // SAFETY: SSE2, all `_mm_set_epi64x` needs, is part of x86-64 itself. `block` is valid for
    // 16 bytes and 16-byte aligned, as an aligned __m128i store needs; a volatile store is one
    // instruction, never split into smaller stores.
    unsafe {
        let vector: __m128i = _mm_set_epi64x((value >> 64) as i64, value as i64);
        std::ptr::write_volatile(block.as_mut_ptr().cast::<__m128i>(), vector);
    }
    block.as_ptr().cast()
}

type EncDec = unsafe extern "C" fn(
    *const sys::gcm_key_data,
    *mut sys::gcm_context_data,
    *mut u8,
    *const u8,
    u64,
    *const u8,
    *const u8,
    u64,
    *mut u8,
    u64,
);

/// The library reads the expanded keys with aligned loads when they are 64-byte aligned.
#[repr(C, align(64))]
struct AlignedKeyData(sys::gcm_key_data);

/// An expanded AES-GCM key (128, 192 or 256 bits).
pub struct GcmKey {
    data: Box<AlignedKeyData>,
    /// 0, 1, 2 for 128, 192, 256 bits: the index into [`GcmFunctions`].
    size: usize,
    /// The same key for the multi-buffer lanes, on a CPU that has them.
    short: Option<ShortGcmKey>,
    /// The linked library's functions, for threads without a private copy.
    encrypt: EncDec,
    decrypt: EncDec,
}

/// The encryption and decryption functions of one copy of the library, by key size.
struct GcmFunctions {
    encrypt: [EncDec; 3],
    decrypt: [EncDec; 3],
}

thread_local! {
    static PRIVATE_FUNCTIONS: OnceCell<Option<GcmFunctions>> = const { OnceCell::new() };
}

/// `pick` of the functions of this thread's private copy of the library, if it has one. They are
/// code of the copy, which is never unloaded, so the manager that named them can go.
fn private_function(pick: impl FnOnce(&GcmFunctions) -> EncDec) -> Option<EncDec> {
    PRIVATE_FUNCTIONS.with(|f| {
        f.get_or_init(|| {
            let lib = library::for_this_thread();
            let m = Manager::for_this_cpu(lib).filter(|_| lib.private)?;
            let r = m.raw();
            Some(GcmFunctions {
                encrypt: [r.gcm128_enc?, r.gcm192_enc?, r.gcm256_enc?],
                decrypt: [r.gcm128_dec?, r.gcm192_dec?, r.gcm256_dec?],
            })
        })
        .as_ref()
        .map(pick)
    })
}

impl std::fmt::Debug for GcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcmKey").finish_non_exhaustive()
    }
}

impl GcmKey {
    /// Expands `key` (16, 24 or 32 bytes).
    pub fn new(key: &[u8]) -> Result<GcmKey, Error> {
        let mgr = manager::shared()?.raw();
        let (size, pre, encrypt, decrypt) = match key.len() {
            16 => (0, mgr.gcm128_pre, mgr.gcm128_enc, mgr.gcm128_dec),
            24 => (1, mgr.gcm192_pre, mgr.gcm192_enc, mgr.gcm192_dec),
            32 => (2, mgr.gcm256_pre, mgr.gcm256_enc, mgr.gcm256_dec),
            _ => return Err(Error::KeyLength),
        };
        let (Some(pre), Some(encrypt), Some(decrypt)) = (pre, encrypt, decrypt) else {
            return Err(Error::NoManager);
        };
        // SAFETY: gcm_key_data is plain bytes (arrays of u8 in a union); all zeroes is valid.
        let mut data: Box<AlignedKeyData> = Box::new(AlignedKeyData(unsafe { std::mem::zeroed() }));
        // SAFETY: `key` holds as many bytes as the chosen function reads (its length selected
        // it); `data` is a valid, writable gcm_key_data.
        unsafe { pre(key.as_ptr().cast(), &mut data.0) };
        let short = ShortGcmKey::new(&data.0.expanded_keys, 10 + 2 * size);
        Ok(GcmKey { data, size, short, encrypt, decrypt })
    }

    /// This key for [`crate::gcm_lanes`], if the CPU can run them.
    pub fn short(&self) -> Option<&ShortGcmKey> {
        self.short.as_ref()
    }

    /// Encrypts `data` in place and returns the full tag over `aad` and the ciphertext.
    pub fn seal(&self, nonce: Nonce, aad: Aad<'_>, data: &mut [u8]) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        self.run(self.encrypt_function(), nonce, aad, data, &mut tag);
        tag
    }

    /// Encrypts `data` in place and has the library write the leftmost `tag.len()` bytes of the
    /// tag straight into `tag` (ESP's ICV field, 8, 12 or 16 bytes: RFC 4106 8.1). A tag returned
    /// and then copied would be read back right after the library stored it, a load that waits
    /// for that store (BENCHMARKS.md, "Thirteenth session"). `Error::Layout` if `tag` is empty or
    /// longer than TAG_LEN.
    pub fn seal_into(&self, nonce: Nonce, aad: Aad<'_>, data: &mut [u8], tag: &mut [u8]) -> Result<(), Error> {
        if !(1..=TAG_LEN).contains(&tag.len()) {
            return Err(Error::Layout);
        }
        self.run(self.encrypt_function(), nonce, aad, data, tag);
        Ok(())
    }

    /// Decrypts `data` in place and returns the full tag the sender should have sent; the caller
    /// compares it in constant time before using the plaintext.
    pub fn open(&self, nonce: Nonce, aad: Aad<'_>, data: &mut [u8]) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        self.run(self.decrypt_function(), nonce, aad, data, &mut tag);
        tag
    }

    /// The encryption function this thread calls for this key: its private copy's, if it has one.
    pub(crate) fn encrypt_function(&self) -> EncDec {
        private_function(|p| p.encrypt[self.size]).unwrap_or(self.encrypt)
    }

    /// The decryption function this thread calls for this key.
    fn decrypt_function(&self) -> EncDec {
        private_function(|p| p.decrypt[self.size]).unwrap_or(self.decrypt)
    }

    /// One call of `f`, writing the leftmost `tag.len()` (1 to TAG_LEN, checked by the callers)
    /// bytes of the tag into `tag`.
    fn run(&self, f: EncDec, nonce: Nonce, aad: Aad<'_>, data: &mut [u8], tag: &mut [u8]) {
        debug_assert!((1..=TAG_LEN).contains(&tag.len()));
        // The call initialises every field of the context it reads.
        let mut ctx = MaybeUninit::<sys::gcm_context_data>::uninit();
        let (mut nonce_block, mut aad_block) = (MaybeUninit::uninit(), MaybeUninit::uninit());
        let nonce_ptr = store_at_once(&mut nonce_block, nonce.0);
        let (aad_ptr, aad_len) = match aad.0 {
            AadKind::Short { value, len } => (store_at_once(&mut aad_block, value), len),
            AadKind::Bytes(bytes) => (bytes.as_ptr(), bytes.len()),
        };
        let ptr = data.as_mut_ptr();
        // Valid for the call: the nonce block's 12 bytes, `aad_len` bytes at `aad_ptr` (at most
        // 16 in its block), `tag.len()` bytes of `tag` (at most TAG_LEN, the most the library
        // writes); the context is written before it is read.
        // SAFETY: keys expanded by the matching `pre`; `data` in place (dst == src is
        // supported) for exactly its length; every other pointer as said just above.
        unsafe {
            f(
                &self.data.0,
                ctx.as_mut_ptr(),
                ptr,
                ptr,
                data.len() as u64,
                nonce_ptr,
                aad_ptr,
                aad_len as u64,
                tag.as_mut_ptr(),
                tag.len() as u64,
            )
        };
    }
}

impl Drop for GcmKey {
    fn drop(&mut self) {
        self.data.0.expanded_keys.zeroize();
        // SAFETY: the union's members are all byte arrays of the same storage; writing zeroes
        // over its whole size is valid for every member.
        unsafe {
            std::ptr::write_volatile(
                &mut self.data.0.ghash_keys,
                std::mem::zeroed::<sys::gcm_key_data__bindgen_ty_1>(),
            )
        };
    }
}
