//! The Delete payload (RFC 7296 3.11).
use super::{Error, ProtocolId};
use crate::wire::Reader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delete {
    /// Deletes the IKE SA the message travels on (SPI size 0, no SPIs).
    Ike,
    /// Deletes child SAs by the SPIs the sender uses inbound.
    Child {
        protocol: ProtocolId,
        spis: Vec<u32>,
    },
}

impl Delete {
    pub fn parse(body: &[u8]) -> Result<Delete, Error> {
        let mut r = Reader::new(body, "Delete payload");
        let protocol = ProtocolId::from(r.u8()?);
        let spi_size = r.u8()?;
        let count = usize::from(r.u16()?);
        match (protocol, spi_size) {
            (ProtocolId::Ike, 0) if r.is_empty() => Ok(Delete::Ike),
            (ProtocolId::Esp | ProtocolId::Ah, 4) if r.remaining() == 4 * count => {
                let spis = (0..count).map(|_| r.u32()).collect::<Result<_, _>>()?;
                Ok(Delete::Child { protocol, spis })
            }
            _ => Err(Error::Invalid("Delete payload")),
        }
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Delete::Ike => 4,
            Delete::Child { spis, .. } => 4 + 4 * spis.len(),
        }
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Delete::Ike => out.extend_from_slice(&[u8::from(ProtocolId::Ike), 0, 0, 0]),
            Delete::Child { protocol, spis } => {
                out.push((*protocol).into());
                out.push(4);
                out.extend_from_slice(&(spis.len() as u16).to_be_bytes());
                for spi in spis {
                    out.extend_from_slice(&spi.to_be_bytes());
                }
            }
        }
    }
}
