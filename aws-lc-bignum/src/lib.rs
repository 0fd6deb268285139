//! Constant-time modular exponentiation for finite-field Diffie-Hellman (the MODP groups of
//! RFC 3526) on AWS-LC's bignum code, whose Montgomery multiplication is x86-64 assembly
//! (MULX/ADX): about twice as fast as crypto-bigint's portable Rust (docs/crypto-choice.md).
//!
//! This crate is the FFI boundary: the unsafe calls into `aws-lc-sys` are all in the private
//! `raw` module, which owns every aws-lc object and frees it on drop (BIGNUMs are cleared, as
//! they may hold secrets). The API above it is safe:
//!
//! - [`Modulus::pow`]: `base^exponent mod n` for a secret exponent and any base (the peer's
//!   public value: `g^ir`), with AWS-LC's fixed-window `BN_mod_exp_mont_consttime`.
//! - [`FixedBase::pow`]: `g^exponent mod n` for a base fixed in advance (the generator: our
//!   public value), from a precomputed table with one Montgomery multiplication per 4-bit window
//!   of the exponent, about five times fewer than a square-and-multiply exponentiation.
//!
//! Both take the exponent as big-endian bytes whose most significant bit is set, so that the
//! exponent's length, and with it the running time, never depends on the secret.
#![deny(unsafe_code)]

mod fixed_base;
mod modulus;
#[allow(unsafe_code)]
mod raw;

pub use fixed_base::FixedBase;
pub use modulus::Modulus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the modulus must be odd, greater than one and without leading zero bytes (for a fixed base, every table entry must also have a nonzero top word: use a modulus of whole 64-bit words)")]
    InvalidModulus,
    #[error("the base must have the modulus's length and be below it")]
    BaseOutOfRange,
    #[error("the exponent must be non-empty with its most significant bit set (and, for a fixed base, of the table's length)")]
    InvalidExponent,
    #[error("aws-lc failed (allocation failure)")]
    Library,
}
