//! The IKE header (RFC 7296 3.1).
use super::{Error, PayloadType};
use crate::wire::{registry, Reader};

pub const HEADER_LEN: usize = 28;
/// Major version 2, minor version 0.
pub const IKEV2_VERSION: u8 = 0x20;

registry! {
    /// Exchange types (RFC 7296 3.1).
    ExchangeType: u8 {
        IkeSaInit = 34,
        IkeAuth = 35,
        CreateChildSa = 36,
        Informational = 37,
    }
}

/// The header flags (RFC 7296 3.1): Initiator, Version, Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u8);

impl Flags {
    pub const INITIATOR: u8 = 0x08;
    pub const VERSION: u8 = 0x10;
    pub const RESPONSE: u8 = 0x20;

    pub fn new(initiator: bool, response: bool) -> Flags {
        let mut bits = 0;
        if initiator {
            bits |= Self::INITIATOR;
        }
        if response {
            bits |= Self::RESPONSE;
        }
        Flags(bits)
    }

    pub fn initiator(self) -> bool {
        self.0 & Self::INITIATOR != 0
    }

    pub fn response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub spi_i: u64,
    pub spi_r: u64,
    pub next_payload: PayloadType,
    /// Major version in the high nibble, minor in the low one.
    pub version: u8,
    pub exchange: ExchangeType,
    pub flags: Flags,
    pub message_id: u32,
    pub length: u32,
}

impl Header {
    /// Parses the fixed header. A major version other than 2 is an error (the caller answers
    /// INVALID_MAJOR_VERSION, RFC 7296 2.5); the minor version is ignored.
    pub fn parse(bytes: &[u8]) -> Result<Header, Error> {
        let mut r = Reader::new(bytes, "IKE header");
        let header = Header {
            spi_i: r.u64()?,
            spi_r: r.u64()?,
            next_payload: r.u8()?.into(),
            version: r.u8()?,
            exchange: r.u8()?.into(),
            flags: Flags(r.u8()?),
            message_id: r.u32()?,
            length: r.u32()?,
        };
        if header.version >> 4 != 2 {
            return Err(Error::BadVersion(header.version >> 4));
        }
        if (header.length as usize) < HEADER_LEN {
            return Err(Error::BadLength("IKE header"));
        }
        Ok(header)
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i.to_be_bytes());
        out.extend_from_slice(&self.spi_r.to_be_bytes());
        out.push(self.next_payload.into());
        out.push(self.version);
        out.push(self.exchange.into());
        out.push(self.flags.0);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }
}
