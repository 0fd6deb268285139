//! The Key Exchange payload (RFC 7296 3.4).
use super::{DhGroup, Error};
use crate::wire::Reader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchange {
    pub group: DhGroup,
    pub data: Vec<u8>,
}

impl KeyExchange {
    pub fn parse(body: &[u8]) -> Result<KeyExchange, Error> {
        let mut r = Reader::new(body, "KE payload");
        let group = r.u16()?.into();
        r.u16()?;
        Ok(KeyExchange {
            group,
            data: r.rest().to_vec(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&u16::from(self.group).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.data);
    }
}
