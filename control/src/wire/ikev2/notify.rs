//! The Notify payload (RFC 7296 3.10, [MS-IKEE] 2.2.7).
use super::{Error, ProtocolId};
use crate::wire::{registry, Reader};

registry! {
    /// Notify message types (RFC 7296 3.10.1, RFC 7383, RFC 7427, [MS-IKEE] 2.2.7).
    NotifyType: u16 {
        UnsupportedCriticalPayload = 1,
        InvalidIkeSpi = 4,
        InvalidMajorVersion = 5,
        InvalidSyntax = 7,
        InvalidMessageId = 9,
        InvalidSpi = 11,
        NoProposalChosen = 14,
        InvalidKePayload = 17,
        AuthenticationFailed = 24,
        SinglePairRequired = 34,
        NoAdditionalSas = 35,
        InternalAddressFailure = 36,
        FailedCpRequired = 37,
        TsUnacceptable = 38,
        InvalidSelectors = 39,
        TemporaryFailure = 43,
        ChildSaNotFound = 44,
        /// [MS-IKEE] 2.2.7: a private failure reason, a 4-byte status code as data.
        MsNotifyStatus = 0x3039,
        InitialContact = 16384,
        SetWindowSize = 16385,
        AdditionalTsPossible = 16386,
        IpcompSupported = 16387,
        NatDetectionSourceIp = 16388,
        NatDetectionDestinationIp = 16389,
        Cookie = 16390,
        UseTransportMode = 16391,
        HttpCertLookupSupported = 16392,
        RekeySa = 16393,
        EspTfcPaddingNotSupported = 16394,
        NonFirstFragmentsAlso = 16395,
        MobikeSupported = 16396,
        Ikev2FragmentationSupported = 16430,
        SignatureHashAlgorithms = 16431,
    }
}

impl NotifyType {
    /// RFC 7296 3.10.1: types below 16384 report errors.
    pub fn is_error(self) -> bool {
        u16::from(self) < 16384
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// `Unknown(0)` when the notification concerns no SA.
    pub protocol: ProtocolId,
    pub kind: NotifyType,
    pub spi: Vec<u8>,
    pub data: Vec<u8>,
}

impl Notify {
    /// A notification about no particular SA.
    pub fn new(kind: NotifyType, data: Vec<u8>) -> Notify {
        Notify {
            protocol: ProtocolId::Unknown(0),
            kind,
            spi: Vec::new(),
            data,
        }
    }

    pub fn parse(body: &[u8]) -> Result<Notify, Error> {
        let mut r = Reader::new(body, "Notify payload");
        let protocol = r.u8()?.into();
        let spi_size = usize::from(r.u8()?);
        let kind = r.u16()?.into();
        let spi = r.take(spi_size)?.to_vec();
        Ok(Notify {
            protocol,
            kind,
            spi,
            data: r.rest().to_vec(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.spi.len() + self.data.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.protocol.into());
        out.push(self.spi.len() as u8);
        out.extend_from_slice(&u16::from(self.kind).to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
    }
}
