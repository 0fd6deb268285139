//! The Security Association payload: proposals, transforms and attributes (RFC 7296 3.3).
use super::Error;
use crate::wire::{registry, Reader};

const LAST: u8 = 0;
const MORE_PROPOSALS: u8 = 2;
const MORE_TRANSFORMS: u8 = 3;
const PROPOSAL_HEADER_LEN: usize = 8;
const TRANSFORM_HEADER_LEN: usize = 8;
/// Attribute Format bit: the value is the 16-bit length field itself (TV form).
const ATTRIBUTE_TV: u16 = 0x8000;
/// RFC 7296 3.3.5: the only attribute defined, always in TV form.
pub const KEY_LENGTH_ATTRIBUTE: u16 = 14;

registry! {
    /// Protocol IDs (RFC 7296 3.3.1).
    ProtocolId: u8 {
        Ike = 1,
        Ah = 2,
        Esp = 3,
    }
}

registry! {
    /// Transform types (RFC 7296 3.3.2).
    TransformType: u8 {
        Encr = 1,
        Prf = 2,
        Integ = 3,
        Dh = 4,
        Esn = 5,
    }
}

registry! {
    /// Encryption algorithms (IANA "Transform Type 1").
    EncrId: u16 {
        AesCbc = 12,
        AesGcm8 = 18,
        AesGcm12 = 19,
        AesGcm16 = 20,
        NullAuthAesGmac = 21,
    }
}

registry! {
    /// Pseudorandom functions (IANA "Transform Type 2").
    PrfId: u16 {
        HmacSha1 = 2,
        HmacSha256 = 5,
        HmacSha384 = 6,
        HmacSha512 = 7,
    }
}

registry! {
    /// Integrity algorithms (IANA "Transform Type 3").
    IntegId: u16 {
        None = 0,
        HmacSha1_96 = 2,
        HmacSha256_128 = 12,
        HmacSha384_192 = 13,
        HmacSha512_256 = 14,
    }
}

registry! {
    /// Diffie-Hellman groups (IANA "Transform Type 4").
    DhGroup: u16 {
        None = 0,
        Modp2048 = 14,
        Modp3072 = 15,
        Ecp256 = 19,
        Ecp384 = 20,
        Ecp521 = 21,
        Curve25519 = 31,
    }
}

registry! {
    /// Extended Sequence Numbers (IANA "Transform Type 5").
    EsnId: u16 {
        NoEsn = 0,
        Esn = 1,
    }
}

/// A transform attribute; `value` is `Short` for the TV form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Short { kind: u16, value: u16 },
    Long { kind: u16, value: Vec<u8> },
}

impl Attribute {
    pub fn key_length(bits: u16) -> Attribute {
        Attribute::Short {
            kind: KEY_LENGTH_ATTRIBUTE,
            value: bits,
        }
    }

    fn buffer_len(&self) -> usize {
        match self {
            Attribute::Short { .. } => 4,
            Attribute::Long { value, .. } => 4 + value.len(),
        }
    }

    fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Attribute::Short { kind, value } => {
                out.extend_from_slice(&(kind | ATTRIBUTE_TV).to_be_bytes());
                out.extend_from_slice(&value.to_be_bytes());
            }
            Attribute::Long { kind, value } => {
                out.extend_from_slice(&(kind & !ATTRIBUTE_TV).to_be_bytes());
                out.extend_from_slice(&(value.len() as u16).to_be_bytes());
                out.extend_from_slice(value);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub kind: TransformType,
    pub id: u16,
    pub attributes: Vec<Attribute>,
}

impl Transform {
    pub fn new(kind: TransformType, id: u16) -> Transform {
        Transform {
            kind,
            id,
            attributes: Vec::new(),
        }
    }

    pub fn with_key_length(kind: TransformType, id: u16, bits: u16) -> Transform {
        Transform {
            kind,
            id,
            attributes: vec![Attribute::key_length(bits)],
        }
    }

    /// The Key Length attribute, if present.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Short {
                kind: KEY_LENGTH_ATTRIBUTE,
                value,
            } => Some(*value),
            _ => None,
        })
    }

    fn parse(bytes: &[u8]) -> Result<Transform, Error> {
        let mut r = Reader::new(bytes, "transform");
        let kind = r.u8()?.into();
        r.u8()?;
        let id = r.u16()?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            let raw_kind = r.u16()?;
            let kind = raw_kind & !ATTRIBUTE_TV;
            let attribute = if raw_kind & ATTRIBUTE_TV != 0 {
                Attribute::Short {
                    kind,
                    value: r.u16()?,
                }
            } else {
                let len = usize::from(r.u16()?);
                Attribute::Long {
                    kind,
                    value: r.take(len)?.to_vec(),
                }
            };
            attributes.push(attribute);
        }
        Ok(Transform {
            kind,
            id,
            attributes,
        })
    }

    fn buffer_len(&self) -> usize {
        TRANSFORM_HEADER_LEN
            + self
                .attributes
                .iter()
                .map(Attribute::buffer_len)
                .sum::<usize>()
    }

    fn emit(&self, last: bool, out: &mut Vec<u8>) {
        out.push(if last { LAST } else { MORE_TRANSFORMS });
        out.push(0);
        out.extend_from_slice(&(self.buffer_len() as u16).to_be_bytes());
        out.push(self.kind.into());
        out.push(0);
        out.extend_from_slice(&self.id.to_be_bytes());
        for attribute in &self.attributes {
            attribute.emit(out);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal numbers start at 1 and increase by one (RFC 7296 3.3.1).
    pub number: u8,
    pub protocol: ProtocolId,
    /// Empty for the IKE SA's first negotiation, 8 bytes for an IKE rekey, 4 for ESP/AH.
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

impl Proposal {
    fn parse(bytes: &[u8]) -> Result<Proposal, Error> {
        let mut r = Reader::new(bytes, "proposal");
        let number = r.u8()?;
        let protocol = r.u8()?.into();
        let spi_size = usize::from(r.u8()?);
        let count = r.u8()?;
        let spi = r.take(spi_size)?.to_vec();
        let transforms = substructures(&mut r, "transform", MORE_TRANSFORMS, Transform::parse)?;
        if transforms.len() != usize::from(count) {
            return Err(Error::Invalid("transform count"));
        }
        Ok(Proposal {
            number,
            protocol,
            spi,
            transforms,
        })
    }

    /// The first transform of a type, with its ID.
    pub fn transform(&self, kind: TransformType) -> Option<&Transform> {
        self.transforms.iter().find(|t| t.kind == kind)
    }

    fn buffer_len(&self) -> usize {
        PROPOSAL_HEADER_LEN
            + self.spi.len()
            + self
                .transforms
                .iter()
                .map(Transform::buffer_len)
                .sum::<usize>()
    }

    fn emit(&self, last: bool, out: &mut Vec<u8>) {
        out.push(if last { LAST } else { MORE_PROPOSALS });
        out.push(0);
        out.extend_from_slice(&(self.buffer_len() as u16).to_be_bytes());
        out.push(self.number);
        out.push(self.protocol.into());
        out.push(self.spi.len() as u8);
        out.push(self.transforms.len() as u8);
        out.extend_from_slice(&self.spi);
        for (i, transform) in self.transforms.iter().enumerate() {
            transform.emit(i + 1 == self.transforms.len(), out);
        }
    }
}

/// Walks substructures that each start with a "last or more" byte, a reserved byte and a 16-bit
/// length covering the substructure; the chain must end exactly with the one marked last.
fn substructures<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    more: u8,
    parse: fn(&[u8]) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let mut items = Vec::new();
    loop {
        let marker = r.u8()?;
        r.u8()?;
        let length = usize::from(r.u16()?);
        let body = r.take(length.checked_sub(4).ok_or(Error::BadLength(what))?)?;
        items.push(parse(body)?);
        match marker {
            LAST if r.is_empty() => return Ok(items),
            LAST => return Err(Error::BadLength(what)),
            m if m == more => continue,
            _ => return Err(Error::Invalid(what)),
        }
    }
}

/// The SA payload (RFC 7296 3.3): one or more proposals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaPayload {
    pub proposals: Vec<Proposal>,
}

impl SaPayload {
    pub fn parse(body: &[u8]) -> Result<SaPayload, Error> {
        let mut r = Reader::new(body, "proposal");
        let proposals = substructures(&mut r, "proposal", MORE_PROPOSALS, Proposal::parse)?;
        Ok(SaPayload { proposals })
    }

    pub fn buffer_len(&self) -> usize {
        self.proposals.iter().map(Proposal::buffer_len).sum()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        for (i, proposal) in self.proposals.iter().enumerate() {
            proposal.emit(i + 1 == self.proposals.len(), out);
        }
    }
}
