//! Owned AWS-LC bignum objects, each freed by its `Drop`, and the few operations the crate
//! needs on them. The only module with `unsafe` code: every call into aws-lc-sys is here.
use crate::Error;
use aws_lc_sys as sys;
use std::cmp::Ordering;
use std::ptr::{self, NonNull};

/// Turns aws-lc's "1 on success" return convention into a `Result`.
fn check(status: std::ffi::c_int) -> Result<(), Error> {
    if status == 1 {
        Ok(())
    } else {
        Err(Error::Library)
    }
}

/// A `BIGNUM`, cleared (`BN_clear_free`) when dropped since it may hold a secret.
#[derive(Debug)]
pub(crate) struct Bignum(NonNull<sys::BIGNUM>);

impl Bignum {
    pub(crate) fn new() -> Result<Bignum, Error> {
        // SAFETY: BN_new has no preconditions; it returns an owned BIGNUM or NULL.
        let raw = unsafe { sys::BN_new() };
        NonNull::new(raw).map(Bignum).ok_or(Error::Library)
    }

    /// The unsigned big-endian number `bytes`.
    pub(crate) fn from_be_bytes(bytes: &[u8]) -> Result<Bignum, Error> {
        // SAFETY: `bytes` is valid for reads of `bytes.len()` bytes; a NULL `ret` makes BN_bin2bn
        // allocate and return an owned BIGNUM (or NULL).
        let raw = unsafe { sys::BN_bin2bn(bytes.as_ptr(), bytes.len(), ptr::null_mut()) };
        NonNull::new(raw).map(Bignum).ok_or(Error::Library)
    }

    /// Replaces the value by the unsigned little-endian number `bytes`.
    pub(crate) fn set_le_bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        // SAFETY: `bytes` is valid for reads of `bytes.len()` bytes and `self.0` is an owned,
        // valid BIGNUM; BN_le2bn writes into it and returns it (or NULL on allocation failure).
        let raw = unsafe { sys::BN_le2bn(bytes.as_ptr(), bytes.len(), self.0.as_ptr()) };
        if raw.is_null() {
            Err(Error::Library)
        } else {
            Ok(())
        }
    }

    /// Writes the value big-endian, left-padded with zeros to fill `out`.
    pub(crate) fn write_be_padded(&self, out: &mut [u8]) -> Result<(), Error> {
        // SAFETY: `out` is valid for writes of `out.len()` bytes; `self.0` is a valid BIGNUM.
        check(unsafe { sys::BN_bn2bin_padded(out.as_mut_ptr(), out.len(), self.0.as_ptr()) })
    }

    /// Writes the value little-endian, right-padded with zeros to fill `out`.
    pub(crate) fn write_le_padded(&self, out: &mut [u8]) -> Result<(), Error> {
        // SAFETY: `out` is valid for writes of `out.len()` bytes; `self.0` is a valid BIGNUM.
        check(unsafe { sys::BN_bn2le_padded(out.as_mut_ptr(), out.len(), self.0.as_ptr()) })
    }

    pub(crate) fn is_odd(&self) -> bool {
        // SAFETY: `self.0` is a valid BIGNUM; BN_is_odd only reads it.
        unsafe { sys::BN_is_odd(self.0.as_ptr()) == 1 }
    }

    /// Compares two values; not constant time, for public values only.
    pub(crate) fn compare(&self, other: &Bignum) -> Ordering {
        // SAFETY: both are valid BIGNUMs; BN_cmp only reads them.
        unsafe { sys::BN_cmp(self.0.as_ptr(), other.0.as_ptr()) }.cmp(&0)
    }

    fn as_ptr(&self) -> *const sys::BIGNUM {
        self.0.as_ptr()
    }

    fn as_mut_ptr(&mut self) -> *mut sys::BIGNUM {
        self.0.as_ptr()
    }
}

impl Drop for Bignum {
    fn drop(&mut self) {
        // SAFETY: `self.0` is owned by this value and never used again.
        unsafe { sys::BN_clear_free(self.0.as_ptr()) }
    }
}

/// A `BN_CTX`, the scratch space of one operation.
#[derive(Debug)]
pub(crate) struct Scratch(NonNull<sys::BN_CTX>);

impl Scratch {
    pub(crate) fn new() -> Result<Scratch, Error> {
        // SAFETY: BN_CTX_new has no preconditions; it returns an owned BN_CTX or NULL.
        let raw = unsafe { sys::BN_CTX_new() };
        NonNull::new(raw).map(Scratch).ok_or(Error::Library)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: `self.0` is owned by this value and never used again.
        unsafe { sys::BN_CTX_free(self.0.as_ptr()) }
    }
}

/// An odd modulus and its `BN_MONT_CTX`, read-only once built.
#[derive(Debug)]
pub(crate) struct Montgomery {
    context: NonNull<sys::BN_MONT_CTX>,
    modulus: Bignum,
}

// SAFETY: after construction the BIGNUM and the BN_MONT_CTX are only passed to aws-lc as const
// pointers, which only read them, so sharing them between threads is sound; nothing in them is
// tied to the creating thread.
unsafe impl Send for Montgomery {}
// SAFETY: as above: every method takes `&self` and gives aws-lc only const pointers to it.
unsafe impl Sync for Montgomery {}

impl Montgomery {
    /// `modulus` must be odd and greater than one (the caller checks).
    pub(crate) fn new(modulus: Bignum, scratch: &mut Scratch) -> Result<Montgomery, Error> {
        // SAFETY: `modulus` and `scratch` are valid; the function returns an owned BN_MONT_CTX
        // (or NULL) and does not keep a pointer to either argument.
        let raw = unsafe { sys::BN_MONT_CTX_new_for_modulus(modulus.as_ptr(), scratch.0.as_ptr()) };
        let context = NonNull::new(raw).ok_or(Error::Library)?;
        Ok(Montgomery { context, modulus })
    }

    pub(crate) fn modulus(&self) -> &Bignum {
        &self.modulus
    }

    /// out = base^exponent mod n with AWS-LC's fixed-window, constant-time exponentiation
    /// (the time depends on the exponent's length in 64-bit words, not on its value). `base`
    /// must be below the modulus.
    pub(crate) fn exp_consttime(
        &self,
        out: &mut Bignum,
        base: &Bignum,
        exponent: &Bignum,
        scratch: &mut Scratch,
    ) -> Result<(), Error> {
        // SAFETY: all pointers are valid BIGNUMs / contexts; `out` is exclusively borrowed and
        // distinct from the inputs, which aws-lc only reads.
        check(unsafe {
            sys::BN_mod_exp_mont_consttime(
                out.as_mut_ptr(),
                base.as_ptr(),
                exponent.as_ptr(),
                self.modulus.as_ptr(),
                scratch.0.as_ptr(),
                self.context.as_ptr(),
            )
        })
    }

    /// out = a * b / R mod n (Montgomery multiplication); constant time when both inputs
    /// have the modulus's width in words.
    pub(crate) fn multiply(
        &self,
        out: &mut Bignum,
        a: &Bignum,
        b: &Bignum,
        scratch: &mut Scratch,
    ) -> Result<(), Error> {
        // SAFETY: all pointers are valid; `out` is exclusively borrowed, so distinct from `a`
        // and `b`, which are only read.
        check(unsafe {
            sys::BN_mod_mul_montgomery(
                out.as_mut_ptr(),
                a.as_ptr(),
                b.as_ptr(),
                self.context.as_ptr(),
                scratch.0.as_ptr(),
            )
        })
    }

    /// out = a * R mod n, for a below the modulus.
    pub(crate) fn to_montgomery(
        &self,
        out: &mut Bignum,
        a: &Bignum,
        scratch: &mut Scratch,
    ) -> Result<(), Error> {
        // SAFETY: as in `multiply`.
        check(unsafe {
            sys::BN_to_montgomery(
                out.as_mut_ptr(),
                a.as_ptr(),
                self.context.as_ptr(),
                scratch.0.as_ptr(),
            )
        })
    }

    /// out = a / R mod n.
    pub(crate) fn out_of_montgomery(
        &self,
        out: &mut Bignum,
        a: &Bignum,
        scratch: &mut Scratch,
    ) -> Result<(), Error> {
        // SAFETY: as in `multiply`.
        check(unsafe {
            sys::BN_from_montgomery(
                out.as_mut_ptr(),
                a.as_ptr(),
                self.context.as_ptr(),
                scratch.0.as_ptr(),
            )
        })
    }
}

impl Drop for Montgomery {
    fn drop(&mut self) {
        // SAFETY: `self.context` is owned by this value and never used again (the modulus is
        // freed by its own Drop).
        unsafe { sys::BN_MONT_CTX_free(self.context.as_ptr()) }
    }
}
