//! The owned AWS-LC RSA key and the calls on it. The only module with `unsafe` code: every call
//! into aws-lc-sys is here.
use crate::Error;
use aws_lc_sys as sys;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

/// An `RSA` private key, freed (`RSA_free`, which clears its secrets) when dropped.
#[derive(Debug)]
pub(crate) struct Rsa(NonNull<sys::RSA>);

// SAFETY: the key is owned by this value alone. AWS-LC's RSA private-key operations may run on
// one key from several threads at once: the lazily made Montgomery contexts and blinding values
// they share are guarded by the key's own lock.
unsafe impl Send for Rsa {}
// SAFETY: as above; `&Rsa` only reads the key and signs with it.
unsafe impl Sync for Rsa {}

/// A CBS (AWS-LC's read cursor) over `der`.
fn cbs(der: &[u8]) -> sys::CBS {
    let mut cbs = MaybeUninit::<sys::CBS>::uninit();
    // SAFETY: CBS_init fills every field of the CBS with the pointer and length of `der`, which
    // outlives every use of the cursor in this module (each parse below).
    unsafe {
        sys::CBS_init(cbs.as_mut_ptr(), der.as_ptr(), der.len());
        cbs.assume_init()
    }
}

/// The bytes a cursor has not read.
fn remaining(cbs: &sys::CBS) -> usize {
    // SAFETY: `cbs` was made by `cbs()` and only advanced by AWS-LC's parsers.
    unsafe { sys::CBS_len(cbs) }
}

impl Rsa {
    /// A PKCS#8 PrivateKeyInfo holding an RSA key, with nothing after it.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Option<Rsa> {
        let mut cursor = cbs(der);
        // SAFETY: `cursor` reads `der`, alive for the call; the result is an owned EVP_PKEY or
        // NULL.
        let pkey = NonNull::new(unsafe { sys::EVP_parse_private_key(&mut cursor) })?;
        // SAFETY: `pkey` is a valid EVP_PKEY; get1 returns a new reference to its RSA key (NULL
        // for another key type), which stays valid after the EVP_PKEY is freed.
        let rsa = unsafe { sys::EVP_PKEY_get1_RSA(pkey.as_ptr()) };
        // SAFETY: `pkey` is owned here and not used after this.
        unsafe { sys::EVP_PKEY_free(pkey.as_ptr()) };
        let rsa = Rsa(NonNull::new(rsa)?);
        (remaining(&cursor) == 0).then_some(rsa)
    }

    /// A PKCS#1 RSAPrivateKey, with nothing after it.
    pub(crate) fn from_pkcs1(der: &[u8]) -> Option<Rsa> {
        let mut cursor = cbs(der);
        // SAFETY: `cursor` reads `der`, alive for the call; the result is an owned RSA or NULL.
        let rsa = Rsa(NonNull::new(unsafe {
            sys::RSA_parse_private_key(&mut cursor)
        })?);
        (remaining(&cursor) == 0).then_some(rsa)
    }

    /// The modulus's length in bytes.
    pub(crate) fn size(&self) -> usize {
        // SAFETY: `self.0` is a valid RSA key.
        unsafe { sys::RSA_size(self.0.as_ptr()) as usize }
    }

    /// RSASSA-PKCS1-v1_5 over a SHA-1 hash: the DigestInfo of `hash`, padded and signed.
    pub(crate) fn sign_sha1(&self, hash: &[u8]) -> Result<Vec<u8>, Error> {
        let mut signature = vec![0u8; self.size()];
        let mut len: std::ffi::c_uint = 0;
        // SAFETY: `hash` is valid for `hash.len()` bytes; `signature` has RSA_size bytes, the most
        // RSA_sign writes; `len` receives the length written; `self.0` is a valid private key.
        let status = unsafe {
            sys::RSA_sign(
                sys::NID_sha1,
                hash.as_ptr(),
                hash.len(),
                signature.as_mut_ptr(),
                &mut len,
                self.0.as_ptr(),
            )
        };
        if status != 1 {
            return Err(Error::Library);
        }
        signature.truncate(len as usize);
        Ok(signature)
    }
}

impl Drop for Rsa {
    fn drop(&mut self) {
        // SAFETY: `self.0` is owned by this value and not used after this.
        unsafe { sys::RSA_free(self.0.as_ptr()) }
    }
}
