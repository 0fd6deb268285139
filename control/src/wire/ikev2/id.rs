//! The Identification payloads IDi and IDr (RFC 7296 3.5).
use super::Error;
use crate::wire::{registry, Reader};

registry! {
    /// ID types (RFC 7296 3.5).
    IdType: u8 {
        Ipv4Addr = 1,
        Fqdn = 2,
        Rfc822Addr = 3,
        Ipv6Addr = 5,
        DerAsn1Dn = 9,
        DerAsn1Gn = 10,
        KeyId = 11,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    pub kind: IdType,
    pub data: Vec<u8>,
}

impl Identification {
    pub fn parse(body: &[u8]) -> Result<Identification, Error> {
        let mut r = Reader::new(body, "ID payload");
        let kind = r.u8()?.into();
        r.take(3)?;
        let data = r.rest().to_vec();
        let expected = match kind {
            IdType::Ipv4Addr => Some(4),
            IdType::Ipv6Addr => Some(16),
            _ => None,
        };
        if expected.is_some_and(|len| len != data.len()) {
            return Err(Error::BadLength("ID payload address"));
        }
        Ok(Identification { kind, data })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    /// The bytes the AUTH computation signs (RFC 7296 2.15): the body without the generic header.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.kind.into());
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&self.data);
    }

    pub fn to_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }
}
