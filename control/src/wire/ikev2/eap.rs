//! The EAP payload (RFC 7296 3.16): one EAP message whose own length must match.
use super::Error;
use crate::wire::Reader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eap {
    /// The whole EAP message (code, identifier, length, type data).
    pub message: Vec<u8>,
}

impl Eap {
    pub fn parse(body: &[u8]) -> Result<Eap, Error> {
        let mut r = Reader::new(body, "EAP payload");
        r.take(2)?;
        if usize::from(r.u16()?) != body.len() {
            return Err(Error::BadLength("EAP message"));
        }
        Ok(Eap {
            message: body.to_vec(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        self.message.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.message);
    }
}
