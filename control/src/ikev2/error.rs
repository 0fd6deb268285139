//! Why an exchange failed, and the one place that maps a failure to the Notify sent to the peer.
use crate::crypto::CryptoError;
use crate::wire::ikev2::{self, NotifyType};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("malformed message: {0}")]
    Wire(#[from] ikev2::Error),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("missing {0} payload")]
    Missing(&'static str),
    #[error("no acceptable proposal")]
    NoProposalChosen,
    /// RFC 7296 1.3: the responder wants this group.
    #[error("the peer must send a KE payload of group {0}")]
    InvalidKe(u16),
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The peer's certificates or signature did not authenticate it (RFC 7296 2.15, 3.6).
    #[error("authentication failed: {0}")]
    Certificate(#[from] super::certificate::CertError),
    #[error("traffic selectors unacceptable")]
    TsUnacceptable,
    #[error("the peer reported {0:?}")]
    PeerError(NotifyType),
    #[error("the peer did not answer")]
    Timeout,
    #[error("no child SA with that SPI")]
    ChildSaNotFound,
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// RFC 7296 2.25: the SA is being rekeyed or deleted; the peer may retry later.
    #[error("the SA is being rekeyed or deleted")]
    Busy,
}

impl Failure {
    /// The error notification for the peer (RFC 7296 3.10.1), if any is due.
    pub fn notify(&self) -> Option<(NotifyType, Vec<u8>)> {
        Some(match self {
            Failure::Wire(ikev2::Error::UnsupportedCritical(kind)) => {
                (NotifyType::UnsupportedCriticalPayload, vec![*kind])
            }
            Failure::Wire(ikev2::Error::BadVersion(_)) => (NotifyType::InvalidMajorVersion, vec![]),
            Failure::Wire(_) | Failure::Missing(_) => (NotifyType::InvalidSyntax, vec![]),
            Failure::Crypto(CryptoError::InvalidPublicValue) => (NotifyType::InvalidSyntax, vec![]),
            // A message that fails its integrity check is dropped silently (RFC 7296 2.21.2).
            Failure::Crypto(_) => return None,
            Failure::NoProposalChosen => (NotifyType::NoProposalChosen, vec![]),
            Failure::InvalidKe(group) => {
                (NotifyType::InvalidKePayload, group.to_be_bytes().to_vec())
            }
            Failure::AuthenticationFailed | Failure::Certificate(_) => {
                (NotifyType::AuthenticationFailed, vec![])
            }
            Failure::TsUnacceptable => (NotifyType::TsUnacceptable, vec![]),
            Failure::ChildSaNotFound => (NotifyType::ChildSaNotFound, vec![]),
            Failure::Unsupported(_) => (NotifyType::NoProposalChosen, vec![]),
            Failure::Busy => (NotifyType::TemporaryFailure, vec![]),
            Failure::PeerError(_) | Failure::Timeout => return None,
        })
    }
}
