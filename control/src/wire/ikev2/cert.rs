//! The Certificate and Certificate Request payloads (RFC 7296 3.6, 3.7).
use super::Error;
use crate::wire::{registry, Reader};

registry! {
    /// Certificate encodings (RFC 7296 3.6).
    CertEncoding: u8 {
        X509Signature = 4,
        Crl = 7,
        RawRsaKey = 11,
        HashAndUrlX509 = 12,
        HashAndUrlBundle = 13,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    pub encoding: CertEncoding,
    pub data: Vec<u8>,
}

/// The data of a CERTREQ for X.509 is a concatenation of SHA-1 hashes of CA public keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertReq {
    pub encoding: CertEncoding,
    pub authorities: Vec<u8>,
}

fn parse_encoded(body: &[u8], what: &'static str) -> Result<(CertEncoding, Vec<u8>), Error> {
    let mut r = Reader::new(body, what);
    Ok((r.u8()?.into(), r.rest().to_vec()))
}

impl Cert {
    pub fn parse(body: &[u8]) -> Result<Cert, Error> {
        let (encoding, data) = parse_encoded(body, "CERT payload")?;
        Ok(Cert { encoding, data })
    }

    pub fn buffer_len(&self) -> usize {
        1 + self.data.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.encoding.into());
        out.extend_from_slice(&self.data);
    }
}

impl CertReq {
    pub fn parse(body: &[u8]) -> Result<CertReq, Error> {
        let (encoding, authorities) = parse_encoded(body, "CERTREQ payload")?;
        Ok(CertReq {
            encoding,
            authorities,
        })
    }

    pub fn buffer_len(&self) -> usize {
        1 + self.authorities.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.encoding.into());
        out.extend_from_slice(&self.authorities);
    }
}
