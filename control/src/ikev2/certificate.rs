//! X.509 credentials for signature authentication (RFC 7296 2.15, 3.6, 3.7): our certificate
//! chain and private key, the CAs we trust, and the checks on a peer's certificates: a chain to a
//! trust anchor, every certificate within its validity period and not revoked by a configured CRL
//! of its issuer (RFC 5280 6.3), and the peer's ID in its certificate.
use super::signature::{RsaPadding, SigningKey};
use crate::wire::ikev2::{Cert, CertEncoding, CertReq, IdType, Identification};
use aws_lc_rs::digest;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// A chain longer than this is refused (RFC 5280 6.1 leaves the bound to the implementation).
const MAX_CHAIN_DEPTH: usize = 8;

/// Why configured credentials are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("{0}: no PEM block found")]
    NoPem(&'static str),
    #[error("{what}: not an X.509 certificate ({reason})")]
    BadCertificate { what: &'static str, reason: String },
    #[error("private key: {0}")]
    Key(#[from] super::signature::SignatureError),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("CA certificate {0} is not a CA (basicConstraints cA is not set)")]
    NotACa(String),
    #[error("CRL: {0}")]
    BadCrl(String),
}

/// Why a peer's certificates do not authenticate it; every one is answered with
/// AUTHENTICATION_FAILED.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("the peer sent no X.509 certificate")]
    NoCertificate,
    #[error("malformed certificate from the peer")]
    Malformed,
    #[error("certificate {subject} has expired or is not yet valid")]
    OutsideValidity { subject: String },
    #[error("no chain from {subject} to a trusted CA")]
    Untrusted { subject: String },
    #[error("certificate {subject} is revoked (a CRL of {issuer})")]
    Revoked { subject: String, issuer: String },
    #[error("the peer's ID is not in its certificate {subject}")]
    IdMismatch { subject: String },
    #[error("AUTH payload: {0}")]
    Signature(#[from] super::signature::SignatureError),
}

/// Our side of certificate authentication for one peer.
#[derive(Debug)]
pub struct PubkeyAuth {
    pub key: SigningKey,
    /// DER certificates: ours first, then the intermediates up to (not including) the CA.
    pub chain: Vec<Vec<u8>>,
    /// DER certificates of the CAs the peer's chain must end at.
    pub trust_anchors: Vec<Vec<u8>>,
    /// For RFC 7427 signatures with an RSA key.
    pub rsa_padding: RsaPadding,
    /// DER CRLs of the trust anchors or of intermediates (RFC 5280 5), consulted for every
    /// certificate of the peer's chain; none are fetched (distribution points are not followed).
    pub crls: Vec<Vec<u8>>,
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    whole(X509Certificate::from_der(der))
}

fn parse_crl(der: &[u8]) -> Result<CertificateRevocationList<'_>, String> {
    whole(CertificateRevocationList::from_der(der))
}

/// A DER parse that used every byte.
fn whole<T, E: std::fmt::Display>(parsed: Result<(&[u8], T), E>) -> Result<T, String> {
    match parsed {
        Ok(([], value)) => Ok(value),
        Ok(_) => Err("trailing bytes".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The certificates of a PEM file, in order.
pub fn pem_certificates(pem: &[u8], what: &'static str) -> Result<Vec<Vec<u8>>, CredentialError> {
    pem_blocks(pem, "CERTIFICATE", what)
}

/// The CRLs of a PEM file ("X509 CRL" blocks, as openssl and strongSwan's pki write them).
pub fn pem_crls(pem: &[u8]) -> Result<Vec<Vec<u8>>, CredentialError> {
    pem_blocks(pem, "X509 CRL", "CRL")
}

/// The contents of the PEM blocks labelled `label`, in order; at least one.
fn pem_blocks(
    pem: &[u8],
    label: &str,
    what: &'static str,
) -> Result<Vec<Vec<u8>>, CredentialError> {
    let mut blocks = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| CredentialError::BadCertificate {
            what,
            reason: e.to_string(),
        })?;
        if block.label == label {
            blocks.push(block.contents);
        }
    }
    if blocks.is_empty() {
        return Err(CredentialError::NoPem(what));
    }
    Ok(blocks)
}

/// The DER of the first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn pem_private_key(pem: &[u8]) -> Result<Vec<u8>, CredentialError> {
    Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .find(|b| b.label.ends_with("PRIVATE KEY"))
        .map(|b| b.contents)
        .ok_or(CredentialError::NoPem("private key"))
}

impl PubkeyAuth {
    /// Checks that every certificate parses, that the key is the first certificate's, and that
    /// every trust anchor is a CA.
    pub fn new(
        key_der: &[u8],
        chain: Vec<Vec<u8>>,
        trust_anchors: Vec<Vec<u8>>,
        rsa_padding: RsaPadding,
    ) -> Result<PubkeyAuth, CredentialError> {
        let key = SigningKey::from_der(key_der)?;
        let ours = chain.first().ok_or(CredentialError::NoPem("certificate"))?;
        let ours = parse(ours).map_err(|reason| CredentialError::BadCertificate {
            what: "certificate",
            reason,
        })?;
        if ours.public_key().subject_public_key.data.as_ref() != key.public_key() {
            return Err(CredentialError::KeyMismatch);
        }
        for der in chain.iter().skip(1) {
            parse(der).map_err(|reason| CredentialError::BadCertificate {
                what: "intermediate certificate",
                reason,
            })?;
        }
        if trust_anchors.is_empty() {
            return Err(CredentialError::NoPem("CA certificate"));
        }
        for der in &trust_anchors {
            let ca = parse(der).map_err(|reason| CredentialError::BadCertificate {
                what: "CA certificate",
                reason,
            })?;
            if !ca.is_ca() {
                return Err(CredentialError::NotACa(ca.subject().to_string()));
            }
        }
        Ok(PubkeyAuth {
            key,
            chain,
            trust_anchors,
            rsa_padding,
            crls: Vec::new(),
        })
    }

    /// The same credentials, with these CRLs (DER), each of which must parse.
    pub fn with_crls(mut self, crls: Vec<Vec<u8>>) -> Result<PubkeyAuth, CredentialError> {
        for der in &crls {
            parse_crl(der).map_err(CredentialError::BadCrl)?;
        }
        self.crls = crls;
        Ok(self)
    }

    /// From PEM files: our certificate (optionally followed by intermediates), our private key,
    /// and one or more CA certificates.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        ca_pem: &[u8],
        rsa_padding: RsaPadding,
    ) -> Result<PubkeyAuth, CredentialError> {
        PubkeyAuth::new(
            &pem_private_key(key_pem)?,
            pem_certificates(cert_pem, "certificate")?,
            pem_certificates(ca_pem, "CA certificate")?,
            rsa_padding,
        )
    }

    /// RFC 7296 3.7: CERTREQ for X.509 names each trusted CA by the SHA-1 hash of its
    /// SubjectPublicKeyInfo.
    pub fn cert_request(&self) -> CertReq {
        let authorities = self
            .trust_anchors
            .iter()
            .filter_map(|der| parse(der).ok())
            .flat_map(|ca| {
                digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, ca.public_key().raw)
                    .as_ref()
                    .to_vec()
            })
            .collect();
        CertReq {
            encoding: CertEncoding::X509Signature,
            authorities,
        }
    }

    /// Our CERT payloads: the end-entity certificate first (RFC 7296 3.6).
    pub fn cert_payloads(&self) -> Vec<Cert> {
        self.chain
            .iter()
            .map(|der| Cert {
                encoding: CertEncoding::X509Signature,
                data: der.clone(),
            })
            .collect()
    }
}

/// Authenticates the peer: its first X.509 certificate chains to one of `trust_anchors`
/// (through the other certificates it sent), every certificate on the way is valid at
/// `unix_now` and not revoked by one of `crls`, `id` is in the end-entity certificate, and
/// `check_signature` accepts its key.
pub fn authenticate_peer(
    trust_anchors: &[Vec<u8>],
    crls: &[Vec<u8>],
    certs: &[&Cert],
    id: &Identification,
    unix_now: i64,
    check_signature: impl FnOnce(&X509Certificate<'_>) -> Result<(), CertError>,
) -> Result<(), CertError> {
    let x509: Vec<&[u8]> = certs
        .iter()
        .filter(|c| c.encoding == CertEncoding::X509Signature)
        .map(|c| c.data.as_slice())
        .collect();
    let (end_entity, others) = x509.split_first().ok_or(CertError::NoCertificate)?;
    let end_entity = parse(end_entity).map_err(|_| CertError::Malformed)?;
    let others: Vec<X509Certificate<'_>> = others.iter().filter_map(|d| parse(d).ok()).collect();
    let anchors: Vec<X509Certificate<'_>> =
        trust_anchors.iter().filter_map(|d| parse(d).ok()).collect();
    let crls: Vec<CertificateRevocationList<'_>> =
        crls.iter().filter_map(|d| parse_crl(d).ok()).collect();
    validate_chain(&end_entity, &others, &anchors, &crls, unix_now)?;
    if !id_in_certificate(id, &end_entity) {
        return Err(CertError::IdMismatch {
            subject: end_entity.subject().to_string(),
        });
    }
    check_signature(&end_entity)
}

fn valid_at(cert: &X509Certificate<'_>, unix_now: i64) -> Result<(), CertError> {
    let validity = cert.validity();
    if validity.not_before.timestamp() <= unix_now && unix_now <= validity.not_after.timestamp() {
        Ok(())
    } else {
        Err(CertError::OutsideValidity {
            subject: cert.subject().to_string(),
        })
    }
}

/// `issuer` issued `cert`: names chain, `issuer` is a CA and its key verifies `cert`'s signature.
fn issued(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.issuer().as_raw() == issuer.subject().as_raw()
        && issuer.is_ca()
        && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// RFC 5280 6.3, reduced to local CRLs: `cert` is revoked if a CRL that `issuer` signed lists
/// its serial number. A CRL past its nextUpdate still counts (a revoked certificate stays
/// revoked); one that `issuer` did not sign is not its.
fn not_revoked(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    crls: &[CertificateRevocationList<'_>],
) -> Result<(), CertError> {
    let revoked = crls
        .iter()
        .filter(|crl| {
            crl.issuer().as_raw() == issuer.subject().as_raw()
                && crl.verify_signature(issuer.public_key()).is_ok()
        })
        .any(|crl| {
            crl.iter_revoked_certificates()
                .any(|r| r.raw_serial() == cert.raw_serial())
        });
    if revoked {
        return Err(CertError::Revoked {
            subject: cert.subject().to_string(),
            issuer: issuer.subject().to_string(),
        });
    }
    Ok(())
}

/// RFC 5280 6.1, reduced to what IKE needs: walk from the end entity through the peer's
/// intermediates to a trust anchor, checking signatures, CA flags, validity periods and CRLs.
fn validate_chain(
    end_entity: &X509Certificate<'_>,
    intermediates: &[X509Certificate<'_>],
    anchors: &[X509Certificate<'_>],
    crls: &[CertificateRevocationList<'_>],
    unix_now: i64,
) -> Result<(), CertError> {
    let mut current = end_entity;
    for _ in 0..MAX_CHAIN_DEPTH {
        valid_at(current, unix_now)?;
        if let Some(anchor) = anchors.iter().find(|a| issued(current, a)) {
            not_revoked(current, anchor, crls)?;
            return valid_at(anchor, unix_now);
        }
        match intermediates.iter().find(|i| issued(current, i)) {
            Some(next) => {
                not_revoked(current, next, crls)?;
                current = next;
            }
            None => break,
        }
    }
    Err(CertError::Untrusted {
        subject: end_entity.subject().to_string(),
    })
}

/// RFC 7296 3.5/4: the ID the peer claims must be its certificate's subject (ID_DER_ASN1_DN) or
/// one of its subjectAltNames of the same kind.
fn id_in_certificate(id: &Identification, cert: &X509Certificate<'_>) -> bool {
    if id.kind == IdType::DerAsn1Dn {
        return cert.subject().as_raw() == id.data.as_slice();
    }
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    san.value
        .general_names
        .iter()
        .any(|name| match (id.kind, name) {
            (IdType::Fqdn, GeneralName::DNSName(dns)) => {
                dns.as_bytes().eq_ignore_ascii_case(&id.data)
            }
            (IdType::Rfc822Addr, GeneralName::RFC822Name(mail)) => {
                mail.as_bytes().eq_ignore_ascii_case(&id.data)
            }
            (IdType::Ipv4Addr | IdType::Ipv6Addr, GeneralName::IPAddress(ip)) => *ip == id.data,
            _ => false,
        })
}

/// The peer asked for our certificate (RFC 7296 3.7): a CERTREQ for X.509 certificates.
pub fn requested(certreqs: &[&CertReq]) -> bool {
    certreqs
        .iter()
        .any(|r| r.encoding == CertEncoding::X509Signature)
}
