//! Exponentiation of a base fixed in advance, from a table of its powers (fixed-base
//! windowing): with `b_j = g^(16^j)`, `g^x = prod_j b_j^(x_j)` over the 4-bit digits `x_j` of
//! the exponent, so one table entry and one Montgomery multiplication per digit replace the
//! four squarings and one multiplication per digit of a square-and-multiply exponentiation.
//! Every entry of a row is read for each digit (selected by masks), so neither the time nor
//! the memory access pattern depends on the exponent.
use crate::modulus::{exponent_bignum, Modulus};
use crate::raw::{Bignum, Scratch};
use crate::Error;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Bits per exponent digit.
const WINDOW_BITS: usize = 4;
const ENTRIES_PER_ROW: usize = 1 << WINDOW_BITS;
const WORD_BYTES: usize = 8;

/// A modulus, a base and its table: for every digit position `j` of an exponent of
/// `exponent_len` bytes and every digit `v`, the entry `-(b_j^v)` in Montgomery form as
/// little-endian 64-bit words.
///
/// The entries are negated because aws-lc multiplies in constant time only operands of the
/// modulus's full width in words, and a value loaded into a BIGNUM is only as wide as it needs
/// to be. For the MODP primes (top 64 bits all ones) the Montgomery forms of 1, 2 and 4 (and
/// so of `b_j^0` in every row) are a word shorter than the modulus; their negations, like
/// every other entry, are full width. An exponent has an even number of digits, so the signs
/// cancel. [`FixedBase::new`] checks every entry.
///
/// Size: `2 * exponent_len * 16` entries of the modulus's length; 320 KiB for a 2048-bit modulus
/// and a 320-bit exponent.
#[derive(Debug)]
pub struct FixedBase {
    modulus: Modulus,
    exponent_len: usize,
    words: usize,
    table: Vec<u64>,
}

impl FixedBase {
    /// Precomputes the table for `base` (the modulus's length, below it) and exponents of
    /// `exponent_len` bytes: 17 Montgomery multiplications per digit position. Fails with
    /// [`Error::InvalidModulus`] if an entry is narrower than the modulus (probability 2^-64
    /// per entry for a modulus of whole 64-bit words with its top bit set).
    pub fn new(modulus: Modulus, base: &[u8], exponent_len: usize) -> Result<FixedBase, Error> {
        if exponent_len == 0 {
            return Err(Error::InvalidExponent);
        }
        let words = modulus.byte_len().div_ceil(WORD_BYTES);
        let rows = exponent_len * 8 / WINDOW_BITS;
        let montgomery = modulus.montgomery();
        let mut scratch = Scratch::new()?;
        let base = modulus.reduced_base(base)?;
        let minus_one_plain = modulus.minus_one()?;
        let mut minus_one = Bignum::new()?;
        montgomery.to_montgomery(&mut minus_one, &minus_one_plain, &mut scratch)?;
        // b_0 = g.
        let mut row_base = Bignum::new()?;
        montgomery.to_montgomery(&mut row_base, &base, &mut scratch)?;
        let mut table = Vec::with_capacity(rows * ENTRIES_PER_ROW * words);
        let mut bytes = vec![0u8; words * WORD_BYTES];
        let (mut entry, mut next) = (Bignum::new()?, Bignum::new()?);
        for _ in 0..rows {
            // -(b_j^0) ..= -(b_j^15), then -(b_j^16) = -b_(j+1).
            montgomery.to_montgomery(&mut entry, &minus_one_plain, &mut scratch)?;
            for _ in 0..ENTRIES_PER_ROW {
                entry.write_le_padded(&mut bytes)?;
                table.extend(
                    bytes
                        .chunks_exact(WORD_BYTES)
                        .map(|word| u64::from_le_bytes(word.try_into().expect("8 bytes"))),
                );
                if table.last() == Some(&0) {
                    return Err(Error::InvalidModulus);
                }
                montgomery.multiply(&mut next, &entry, &row_base, &mut scratch)?;
                std::mem::swap(&mut entry, &mut next);
            }
            montgomery.multiply(&mut row_base, &entry, &minus_one, &mut scratch)?;
        }
        Ok(FixedBase {
            modulus,
            exponent_len,
            words,
            table,
        })
    }

    pub fn modulus(&self) -> &Modulus {
        &self.modulus
    }

    /// Copies entry `digit` of row `row` into `out` without a secret-dependent branch or
    /// address: every entry of the row is read and masked.
    fn select(&self, row: usize, digit: u8, out: &mut [u64]) {
        out.fill(0);
        let row_words = ENTRIES_PER_ROW * self.words;
        let entries = self.table[row * row_words..(row + 1) * row_words].chunks_exact(self.words);
        for (value, entry) in (0u8..).zip(entries) {
            let mask = 0u64.wrapping_sub(u64::from(value.ct_eq(&digit).unwrap_u8()));
            for (out, word) in out.iter_mut().zip(entry) {
                *out |= word & mask;
            }
        }
    }

    /// `g^exponent mod n`, big-endian and left-padded to the modulus's length. `exponent` is
    /// secret, big-endian, of the table's exponent length, with its top bit set.
    pub fn pow(&self, exponent: &[u8]) -> Result<Vec<u8>, Error> {
        if exponent.len() != self.exponent_len {
            return Err(Error::InvalidExponent);
        }
        // Checks the top bit.
        drop(exponent_bignum(exponent)?);
        let montgomery = self.modulus.montgomery();
        let mut scratch = Scratch::new()?;
        let mut selected = Zeroizing::new(vec![0u64; self.words]);
        let mut bytes = Zeroizing::new(vec![0u8; self.words * WORD_BYTES]);
        let (mut entry, mut product, mut next) = (Bignum::new()?, Bignum::new()?, Bignum::new()?);
        // Digit j is bits 4j..4j+4 of the exponent, counted from the least significant byte.
        let digits = exponent
            .iter()
            .rev()
            .flat_map(|byte| [byte & 0x0f, byte >> 4]);
        for (row, digit) in digits.enumerate() {
            self.select(row, digit, &mut selected);
            for (chunk, word) in bytes.chunks_exact_mut(WORD_BYTES).zip(selected.iter()) {
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            entry.set_le_bytes(&bytes)?;
            if row == 0 {
                std::mem::swap(&mut product, &mut entry);
            } else {
                montgomery.multiply(&mut next, &product, &entry, &mut scratch)?;
                std::mem::swap(&mut product, &mut next);
            }
        }
        let mut result = Bignum::new()?;
        montgomery.out_of_montgomery(&mut result, &product, &mut scratch)?;
        let mut out = vec![0u8; self.modulus.byte_len()];
        result.write_be_padded(&mut out)?;
        Ok(out)
    }
}
