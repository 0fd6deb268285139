//! The generic payload header and the payload chain (RFC 7296 3.2).
use super::{
    Auth, Cert, CertReq, Config, Correlation, Delete, Eap, Encrypted, EncryptedFragment, Error,
    Identification, KeyExchange, Notify, SaPayload, TrafficSelectors,
};
use crate::wire::{registry, Reader};

pub const GENERIC_HEADER_LEN: usize = 4;
const CRITICAL: u8 = 0x80;

registry! {
    /// Payload types (RFC 7296 3.2, RFC 7383 2.5, [MS-IKEE] 2.2.9).
    PayloadType: u8 {
        None = 0,
        Sa = 33,
        Ke = 34,
        IdI = 35,
        IdR = 36,
        Cert = 37,
        CertReq = 38,
        Auth = 39,
        Nonce = 40,
        Notify = 41,
        Delete = 42,
        VendorId = 43,
        TsI = 44,
        TsR = 45,
        Encrypted = 46,
        Config = 47,
        Eap = 48,
        EncryptedFragment = 53,
        /// [MS-IKEE] 2.2.9, from the private range.
        Correlation = 0xC8,
    }
}

/// One payload of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Sa(SaPayload),
    Ke(KeyExchange),
    IdI(Identification),
    IdR(Identification),
    Cert(Cert),
    CertReq(CertReq),
    Auth(Auth),
    Nonce(Vec<u8>),
    Notify(Notify),
    Delete(Delete),
    VendorId(Vec<u8>),
    TsI(TrafficSelectors),
    TsR(TrafficSelectors),
    Encrypted(Encrypted),
    EncryptedFragment(EncryptedFragment),
    Config(Config),
    Eap(Eap),
    Correlation(Correlation),
    /// A payload type we do not know whose critical bit was clear (RFC 7296 2.5: skipped, but
    /// kept so the message round-trips).
    Unknown {
        kind: u8,
        critical: bool,
        body: Vec<u8>,
    },
}

/// RFC 7296 3.9: a nonce is 16 to 256 octets.
const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=256;

impl Payload {
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::Sa,
            Payload::Ke(_) => PayloadType::Ke,
            Payload::IdI(_) => PayloadType::IdI,
            Payload::IdR(_) => PayloadType::IdR,
            Payload::Cert(_) => PayloadType::Cert,
            Payload::CertReq(_) => PayloadType::CertReq,
            Payload::Auth(_) => PayloadType::Auth,
            Payload::Nonce(_) => PayloadType::Nonce,
            Payload::Notify(_) => PayloadType::Notify,
            Payload::Delete(_) => PayloadType::Delete,
            Payload::VendorId(_) => PayloadType::VendorId,
            Payload::TsI(_) => PayloadType::TsI,
            Payload::TsR(_) => PayloadType::TsR,
            Payload::Encrypted(_) => PayloadType::Encrypted,
            Payload::EncryptedFragment(_) => PayloadType::EncryptedFragment,
            Payload::Config(_) => PayloadType::Config,
            Payload::Eap(_) => PayloadType::Eap,
            Payload::Correlation(_) => PayloadType::Correlation,
            Payload::Unknown { kind, .. } => PayloadType::from(*kind),
        }
    }

    fn parse_body(
        kind: PayloadType,
        critical: bool,
        next: PayloadType,
        body: &[u8],
    ) -> Result<Payload, Error> {
        Ok(match kind {
            PayloadType::Sa => Payload::Sa(SaPayload::parse(body)?),
            PayloadType::Ke => Payload::Ke(KeyExchange::parse(body)?),
            PayloadType::IdI => Payload::IdI(Identification::parse(body)?),
            PayloadType::IdR => Payload::IdR(Identification::parse(body)?),
            PayloadType::Cert => Payload::Cert(Cert::parse(body)?),
            PayloadType::CertReq => Payload::CertReq(CertReq::parse(body)?),
            PayloadType::Auth => Payload::Auth(Auth::parse(body)?),
            PayloadType::Nonce => {
                if !NONCE_LEN.contains(&body.len()) {
                    return Err(Error::BadLength("Nonce payload"));
                }
                Payload::Nonce(body.to_vec())
            }
            PayloadType::Notify => Payload::Notify(Notify::parse(body)?),
            PayloadType::Delete => Payload::Delete(Delete::parse(body)?),
            PayloadType::VendorId => Payload::VendorId(body.to_vec()),
            PayloadType::TsI => Payload::TsI(TrafficSelectors::parse(body)?),
            PayloadType::TsR => Payload::TsR(TrafficSelectors::parse(body)?),
            PayloadType::Encrypted => Payload::Encrypted(Encrypted::parse(next, body)),
            PayloadType::EncryptedFragment => {
                Payload::EncryptedFragment(EncryptedFragment::parse(next, body)?)
            }
            PayloadType::Config => Payload::Config(Config::parse(body)?),
            PayloadType::Eap => Payload::Eap(Eap::parse(body)?),
            PayloadType::Correlation => Payload::Correlation(Correlation::parse(body)?),
            PayloadType::None | PayloadType::Unknown(_) => {
                let kind = u8::from(kind);
                if critical {
                    return Err(Error::UnsupportedCritical(kind));
                }
                Payload::Unknown {
                    kind,
                    critical,
                    body: body.to_vec(),
                }
            }
        })
    }

    fn body_len(&self) -> usize {
        match self {
            Payload::Sa(p) => p.buffer_len(),
            Payload::Ke(p) => p.buffer_len(),
            Payload::IdI(p) | Payload::IdR(p) => p.buffer_len(),
            Payload::Cert(p) => p.buffer_len(),
            Payload::CertReq(p) => p.buffer_len(),
            Payload::Auth(p) => p.buffer_len(),
            Payload::Nonce(data) | Payload::VendorId(data) => data.len(),
            Payload::Notify(p) => p.buffer_len(),
            Payload::Delete(p) => p.buffer_len(),
            Payload::TsI(p) | Payload::TsR(p) => p.buffer_len(),
            Payload::Encrypted(p) => p.buffer_len(),
            Payload::EncryptedFragment(p) => p.buffer_len(),
            Payload::Config(p) => p.buffer_len(),
            Payload::Eap(p) => p.buffer_len(),
            Payload::Correlation(p) => p.buffer_len(),
            Payload::Unknown { body, .. } => body.len(),
        }
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sa(p) => p.emit(out),
            Payload::Ke(p) => p.emit(out),
            Payload::IdI(p) | Payload::IdR(p) => p.emit(out),
            Payload::Cert(p) => p.emit(out),
            Payload::CertReq(p) => p.emit(out),
            Payload::Auth(p) => p.emit(out),
            Payload::Nonce(data) | Payload::VendorId(data) => out.extend_from_slice(data),
            Payload::Notify(p) => p.emit(out),
            Payload::Delete(p) => p.emit(out),
            Payload::TsI(p) | Payload::TsR(p) => p.emit(out),
            Payload::Encrypted(p) => p.emit(out),
            Payload::EncryptedFragment(p) => p.emit(out),
            Payload::Config(p) => p.emit(out),
            Payload::Eap(p) => p.emit(out),
            Payload::Correlation(p) => p.emit(out),
            Payload::Unknown { body, .. } => out.extend_from_slice(body),
        }
    }

    /// The whole payload, generic header included.
    pub fn buffer_len(&self) -> usize {
        GENERIC_HEADER_LEN + self.body_len()
    }
}

/// Parses a payload chain whose first payload has type `first`. An Encrypted or Encrypted
/// Fragment payload must be the last one (RFC 7296 3.14, RFC 7383 2.5); its next-payload field
/// names the first payload inside it.
pub fn parse_chain(first: PayloadType, bytes: &[u8]) -> Result<Vec<Payload>, Error> {
    let mut payloads = Vec::new();
    let mut kind = first;
    let mut r = Reader::new(bytes, "payload header");
    while kind != PayloadType::None {
        let next = PayloadType::from(r.u8()?);
        let critical = r.u8()? & CRITICAL != 0;
        let length = usize::from(r.u16()?);
        let body_len = length
            .checked_sub(GENERIC_HEADER_LEN)
            .ok_or(Error::BadLength("payload header"))?;
        if body_len > r.remaining() {
            return Err(Error::Truncated("payload"));
        }
        let body = r.take(body_len)?;
        let payload = Payload::parse_body(kind, critical, next, body)?;
        let encrypted = matches!(
            payload,
            Payload::Encrypted(_) | Payload::EncryptedFragment(_)
        );
        payloads.push(payload);
        if encrypted {
            if !r.is_empty() {
                return Err(Error::Invalid("payload after the Encrypted payload"));
            }
            return Ok(payloads);
        }
        kind = next;
    }
    if !r.is_empty() {
        return Err(Error::BadLength("payload chain"));
    }
    Ok(payloads)
}

/// Writes a payload chain: each generic header names the next payload's type; an Encrypted
/// payload names its first inner payload instead. A payload longer than the 16-bit length field
/// can express is an error.
pub fn emit_chain(payloads: &[Payload], out: &mut Vec<u8>) -> Result<(), Error> {
    for (i, payload) in payloads.iter().enumerate() {
        let next = match payload {
            Payload::Encrypted(p) => p.first_inner,
            Payload::EncryptedFragment(p) => p.first_inner,
            _ => payloads
                .get(i + 1)
                .map_or(PayloadType::None, Payload::payload_type),
        };
        out.push(next.into());
        let critical = matches!(payload, Payload::Unknown { critical: true, .. });
        out.push(if critical { CRITICAL } else { 0 });
        let length =
            u16::try_from(payload.buffer_len()).map_err(|_| Error::BadLength("payload to send"))?;
        out.extend_from_slice(&length.to_be_bytes());
        payload.emit_body(out);
    }
    Ok(())
}
