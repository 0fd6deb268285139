//! The Authentication payload (RFC 7296 3.8, RFC 7427 3).
use super::Error;
use crate::wire::{registry, Reader};

registry! {
    /// Authentication methods (RFC 7296 3.8, RFC 4754, RFC 7427).
    AuthMethod: u8 {
        RsaSignature = 1,
        SharedKeyMic = 2,
        DssSignature = 3,
        EcdsaSha256P256 = 9,
        EcdsaSha384P384 = 10,
        EcdsaSha512P521 = 11,
        DigitalSignature = 14,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub method: AuthMethod,
    pub data: Vec<u8>,
}

impl Auth {
    pub fn parse(body: &[u8]) -> Result<Auth, Error> {
        let mut r = Reader::new(body, "AUTH payload");
        let method = r.u8()?.into();
        r.take(3)?;
        Ok(Auth {
            method,
            data: r.rest().to_vec(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.method.into());
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&self.data);
    }
}
