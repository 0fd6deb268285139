//! IKEv2 messages and payloads (RFC 7296 section 3, RFC 7383 section 2.5, [MS-IKEE] 2.2.7-2.2.9).
//!
//! [`Message::parse`] checks the header and walks the payload chain; every payload body is parsed
//! by its own module. The Encrypted (SK) and Encrypted Fragment (SKF) payloads stay opaque here:
//! after decryption their plaintext is parsed with [`parse_chain`], starting at the payload type
//! their header names.
mod auth;
mod cert;
mod config;
mod correlation;
mod delete;
mod eap;
mod encrypted;
mod header;
mod id;
mod ke;
mod notify;
mod payload;
mod sa;
mod ts;

pub use auth::{Auth, AuthMethod};
pub use cert::{Cert, CertEncoding, CertReq};
pub use config::{Config, ConfigAttribute, ConfigAttributeType, ConfigType};
pub use correlation::Correlation;
pub use delete::Delete;
pub use eap::Eap;
pub use encrypted::{Encrypted, EncryptedFragment};
pub use header::{ExchangeType, Flags, Header, HEADER_LEN, IKEV2_VERSION};
pub use id::{IdType, Identification};
pub use ke::KeyExchange;
pub use notify::{Notify, NotifyType};
pub use payload::{emit_chain, parse_chain, Payload, PayloadType, GENERIC_HEADER_LEN};
pub use sa::{
    Attribute, DhGroup, EncrId, EsnId, IntegId, PrfId, Proposal, ProtocolId, SaPayload, Transform,
    TransformType, KEY_LENGTH_ATTRIBUTE,
};
pub use ts::{TrafficSelector, TrafficSelectors, TsType};

/// Why bytes from the network were rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0} is truncated")]
    Truncated(&'static str),
    #[error("{0} has an inconsistent length")]
    BadLength(&'static str),
    #[error("unsupported IKE major version {0}")]
    BadVersion(u8),
    /// RFC 7296 2.5: an unrecognised payload with the critical bit set rejects the whole message
    /// (answered with UNSUPPORTED_CRITICAL_PAYLOAD carrying the type).
    #[error("unsupported critical payload type {0}")]
    UnsupportedCritical(u8),
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// A whole IKE message: the header and the payload chain in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses a datagram (without the non-ESP marker). The header's length must equal the
    /// datagram's length (RFC 7296 3.1).
    pub fn parse(bytes: &[u8]) -> Result<Message, Error> {
        let header = Header::parse(bytes)?;
        if header.length as usize != bytes.len() {
            return Err(Error::BadLength("IKE message"));
        }
        let payloads = parse_chain(header.next_payload, &bytes[HEADER_LEN..])?;
        Ok(Message { header, payloads })
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payloads.iter().map(Payload::buffer_len).sum::<usize>()
    }

    /// Writes the message; the header's next-payload and length fields are computed from the
    /// payloads.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut header = self.header;
        header.next_payload = self
            .payloads
            .first()
            .map_or(PayloadType::None, Payload::payload_type);
        header.length =
            u32::try_from(self.buffer_len()).map_err(|_| Error::BadLength("message to send"))?;
        header.emit(out);
        emit_chain(&self.payloads, out)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
