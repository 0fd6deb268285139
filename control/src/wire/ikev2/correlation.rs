//! The Correlation payload ([MS-IKEE] 2.2.9, type 0xC8): the SPIs of the original IKE SA and a
//! keyed hash that proves the sender holds that SA's keys.
use super::Error;
use crate::wire::Reader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    pub original_spi_i: u64,
    pub original_spi_r: u64,
    pub hash: Vec<u8>,
}

impl Correlation {
    pub fn parse(body: &[u8]) -> Result<Correlation, Error> {
        let mut r = Reader::new(body, "Correlation payload");
        let original_spi_i = r.u64()?;
        let original_spi_r = r.u64()?;
        let hash = r.rest().to_vec();
        if hash.is_empty() {
            return Err(Error::BadLength("Correlation hash"));
        }
        Ok(Correlation {
            original_spi_i,
            original_spi_r,
            hash,
        })
    }

    pub fn buffer_len(&self) -> usize {
        16 + self.hash.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.original_spi_i.to_be_bytes());
        out.extend_from_slice(&self.original_spi_r.to_be_bytes());
        out.extend_from_slice(&self.hash);
    }
}
