//! Intel's Multi-Buffer Crypto for IPsec library (the code under DPDK's aesni_mb and aesni_gcm
//! crypto PMDs, and so under ipsec-secgw): generated bindings (`sys`) and the safe ESP
//! transforms built on them, and a multi-buffer AES-GCM for short packets the library lacks. The
//! rest of the workspace never touches `sys`.
//!
//! - [`GcmKey`]: AES-GCM (RFC 4106) and GMAC (RFC 4543) through the library's direct API, which
//!   has no per-call state beyond a context on the stack.
//! - [`CbcHmacKey`]: HMAC-SHA1-96 (RFC 2404) or HMAC-SHA-256-128 (RFC 4868), alone or chained
//!   with AES-CBC decryption (RFC 3602) in one job of the job API, on a per-thread manager; and
//!   AES-CBC with HMAC for bursts of packets, in the multi-buffer lanes (its burst API).
//! - [`gcm_lanes`]: AES-GCM for short payloads (up to 64 bytes), four packets side by side in
//!   AVX-512 VAES and VPCLMULQDQ, our own code: the library (1.3) has no multi-buffer GCM.
//! - [`use_private_copy`]: a copy of the library for the calling thread, so that threads working
//!   side by side do not all write the one error variable of versions before 1.4.

mod cbc_hmac;
mod gcm;
pub mod gcm_lanes;
mod library;
mod manager;

#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    missing_debug_implementations,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use cbc_hmac::{encrypt_then_mac_burst, mac_then_decrypt_burst, BurstJob, CbcHmacKey, Hmac, Layout};
pub use gcm::{Aad, GcmKey, Nonce, TAG_LEN};
pub use library::{use_private_copy, PrivateCopyError};
pub use manager::version;

/// Why the library could not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A key of a length the algorithm does not have.
    KeyLength,
    /// Ranges outside the buffer, or a cipher range that is not whole AES blocks.
    Layout,
    /// The library could not allocate or initialise its manager on this thread.
    NoManager,
    /// The library rejected or failed the job (its status code).
    Job(u32),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::KeyLength => write!(f, "key length not supported"),
            Error::Layout => write!(f, "ranges outside the buffer or not whole AES blocks"),
            Error::NoManager => write!(f, "intel-ipsec-mb manager could not be allocated"),
            Error::Job(status) => write!(f, "intel-ipsec-mb job failed (status {status})"),
        }
    }
}

impl std::error::Error for Error {}
