//! The Configuration payload (RFC 7296 3.15) with the [MS-IKEE] 2.2.8 server-address attributes.
use super::Error;
use crate::wire::{registry, Reader};

registry! {
    /// CFG types (RFC 7296 3.15).
    ConfigType: u8 {
        Request = 1,
        Reply = 2,
        Set = 3,
        Ack = 4,
    }
}

registry! {
    /// Configuration attribute types (RFC 7296 3.15.1, [MS-IKEE] 2.2.8).
    ConfigAttributeType: u16 {
        InternalIp4Address = 1,
        InternalIp4Netmask = 2,
        InternalIp4Dns = 3,
        InternalIp4Nbns = 4,
        InternalIp4Dhcp = 6,
        ApplicationVersion = 7,
        InternalIp6Address = 8,
        InternalIp6Dns = 10,
        InternalIp6Dhcp = 12,
        InternalIp4Subnet = 13,
        SupportedAttributes = 14,
        InternalIp6Subnet = 15,
        /// [MS-IKEE] 2.2.8: the server's internal IPv4 address, 4 bytes.
        InternalIp4Server = 0x5BA0,
        /// [MS-IKEE] 2.2.8: the server's internal IPv6 address, 16 bytes.
        InternalIp6Server = 0x5BA1,
    }
}

/// The reserved high bit of the attribute type field.
const TYPE_MASK: u16 = 0x7FFF;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigAttribute {
    pub kind: ConfigAttributeType,
    /// Empty in a request for "any value".
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub kind: ConfigType,
    pub attributes: Vec<ConfigAttribute>,
}

impl Config {
    pub fn parse(body: &[u8]) -> Result<Config, Error> {
        let mut r = Reader::new(body, "CP payload");
        let kind = r.u8()?.into();
        r.take(3)?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            let attribute_kind = (r.u16()? & TYPE_MASK).into();
            let len = usize::from(r.u16()?);
            attributes.push(ConfigAttribute {
                kind: attribute_kind,
                value: r.take(len)?.to_vec(),
            });
        }
        Ok(Config { kind, attributes })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self
            .attributes
            .iter()
            .map(|a| 4 + a.value.len())
            .sum::<usize>()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.kind.into());
        out.extend_from_slice(&[0, 0, 0]);
        for attribute in &self.attributes {
            out.extend_from_slice(&(u16::from(attribute.kind) & TYPE_MASK).to_be_bytes());
            out.extend_from_slice(&(attribute.value.len() as u16).to_be_bytes());
            out.extend_from_slice(&attribute.value);
        }
    }
}
