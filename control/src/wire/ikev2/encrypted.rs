//! The Encrypted (SK, RFC 7296 3.14) and Encrypted Fragment (SKF, RFC 7383 2.5) payloads. The
//! body (IV, ciphertext, padding, ICV) stays opaque here; `crate::crypto` opens and seals it.
use super::{Error, PayloadType};
use crate::wire::Reader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// The type of the first payload inside (the SK header's next-payload field).
    pub first_inner: PayloadType,
    /// IV, ciphertext and ICV.
    pub data: Vec<u8>,
}

impl Encrypted {
    pub fn parse(first_inner: PayloadType, body: &[u8]) -> Encrypted {
        Encrypted {
            first_inner,
            data: body.to_vec(),
        }
    }

    pub fn buffer_len(&self) -> usize {
        self.data.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.data);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFragment {
    /// RFC 7383 2.5: the first inner payload type in fragment 1, zero in the others.
    pub first_inner: PayloadType,
    /// 1-based.
    pub number: u16,
    pub total: u16,
    pub data: Vec<u8>,
}

impl EncryptedFragment {
    /// RFC 7383 2.6: a fragment number of zero, or above the total, is invalid.
    pub fn parse(first_inner: PayloadType, body: &[u8]) -> Result<EncryptedFragment, Error> {
        let mut r = Reader::new(body, "Encrypted Fragment payload");
        let number = r.u16()?;
        let total = r.u16()?;
        if number == 0 || number > total {
            return Err(Error::Invalid("fragment number"));
        }
        Ok(EncryptedFragment {
            first_inner,
            number,
            total,
            data: r.rest().to_vec(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.number.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(&self.data);
    }
}
