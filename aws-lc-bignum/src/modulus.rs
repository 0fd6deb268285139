//! Exponentiation of any base modulo a fixed odd modulus.
use crate::raw::{Bignum, Montgomery, Scratch};
use crate::Error;
use std::cmp::Ordering;
use zeroize::Zeroizing;

/// An odd modulus with its Montgomery constants computed once; shareable between threads.
#[derive(Debug)]
pub struct Modulus {
    montgomery: Montgomery,
    /// n, big-endian.
    bytes: Vec<u8>,
}

/// The exponent as a BIGNUM, after checking that its top bit is set: a BIGNUM is as many words
/// long as its value needs, and AWS-LC's exponentiation takes time proportional to that, so a
/// fixed top bit keeps the time independent of the secret.
pub(crate) fn exponent_bignum(exponent: &[u8]) -> Result<Bignum, Error> {
    match exponent.first() {
        Some(top) if top & 0x80 != 0 => Bignum::from_be_bytes(exponent),
        _ => Err(Error::InvalidExponent),
    }
}

impl Modulus {
    /// The modulus as big-endian bytes: odd, greater than one, no leading zero byte.
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Modulus, Error> {
        if !matches!(bytes.first(), Some(&top) if top != 0) || bytes == [1] {
            return Err(Error::InvalidModulus);
        }
        let modulus = Bignum::from_be_bytes(bytes)?;
        if !modulus.is_odd() {
            return Err(Error::InvalidModulus);
        }
        let montgomery = Montgomery::new(modulus, &mut Scratch::new()?)?;
        Ok(Modulus {
            montgomery,
            bytes: bytes.to_vec(),
        })
    }

    /// The modulus's length in bytes, which is also the length of every result.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// n - 1 (n is odd: only its last byte changes).
    pub(crate) fn minus_one(&self) -> Result<Bignum, Error> {
        let mut bytes = self.bytes.clone();
        if let Some(last) = bytes.last_mut() {
            *last -= 1;
        }
        Bignum::from_be_bytes(&bytes)
    }

    pub(crate) fn montgomery(&self) -> &Montgomery {
        &self.montgomery
    }

    /// `base` as a BIGNUM, checked to have the modulus's length and to be below it (a public
    /// value: the comparison need not be constant time).
    pub(crate) fn reduced_base(&self, base: &[u8]) -> Result<Bignum, Error> {
        if base.len() != self.byte_len() {
            return Err(Error::BaseOutOfRange);
        }
        let base = Bignum::from_be_bytes(base)?;
        if base.compare(self.montgomery.modulus()) != Ordering::Less {
            return Err(Error::BaseOutOfRange);
        }
        Ok(base)
    }

    /// `base^exponent mod n`, big-endian and left-padded to the modulus's length. `base` is a
    /// public value of the modulus's length below it; `exponent` is secret, big-endian, with
    /// its top bit set. Constant time in the exponent for a given exponent length.
    pub fn pow(&self, base: &[u8], exponent: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let base = self.reduced_base(base)?;
        let exponent = exponent_bignum(exponent)?;
        let mut result = Bignum::new()?;
        self.montgomery
            .exp_consttime(&mut result, &base, &exponent, &mut Scratch::new()?)?;
        let mut out = Zeroizing::new(vec![0u8; self.byte_len()]);
        result.write_be_padded(&mut out)?;
        Ok(out)
    }
}
