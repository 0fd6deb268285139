//! Signatures in the AUTH payload: RSA (RFC 7296 3.8, method 1), ECDSA (RFC 4754, methods 9-11)
//! and Digital Signature (RFC 7427, method 14) with RSA PKCS#1 v1.5, RSASSA-PSS and ECDSA.
use crate::wire::ikev2::{Auth, AuthMethod};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair, RsaKeyPair, VerificationAlgorithm};
use aws_lc_rsa_sha1::RsaSha1Key;
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_NIST_HASH_SHA256, OID_NIST_HASH_SHA384, OID_NIST_HASH_SHA512, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_RSASSAPSS, OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512,
};
use x509_parser::prelude::FromDer;
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// Hash algorithms of the SIGNATURE_HASH_ALGORITHMS notify (RFC 7427 4, IANA "IKEv2 Hash
/// Algorithms").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha256 = 2,
    Sha384 = 3,
    Sha512 = 4,
}

impl HashAlgorithm {
    /// The ones we sign and verify with, announced in IKE_SA_INIT.
    pub const SUPPORTED: [HashAlgorithm; 3] = [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    /// The notification data: 16-bit identifiers (RFC 7427 4).
    pub fn notify_data() -> Vec<u8> {
        HashAlgorithm::SUPPORTED
            .iter()
            .flat_map(|h| (*h as u16).to_be_bytes())
            .collect()
    }

    /// The identifiers of a received SIGNATURE_HASH_ALGORITHMS notify we know; a trailing odd
    /// byte is ignored.
    pub fn parse_notify(data: &[u8]) -> Vec<HashAlgorithm> {
        data.chunks_exact(2)
            .filter_map(|c| {
                let id = u16::from_be_bytes([c[0], c[1]]);
                HashAlgorithm::SUPPORTED
                    .into_iter()
                    .find(|h| *h as u16 == id)
            })
            .collect()
    }
}

/// RSA padding for RFC 7427 signatures made with an RSA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaPadding {
    Pkcs1,
    Pss,
}

/// Why a signature could not be made or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("unsupported private key (need PKCS#8, PKCS#1 RSA or SEC1 EC on P-256/P-384/P-521)")]
    UnsupportedKey,
    #[error("authentication method {0:?} cannot be made with this key")]
    MethodForKey(AuthMethod),
    #[error("unsupported or malformed signature algorithm in the AUTH payload")]
    UnsupportedAlgorithm,
    #[error("the signature algorithm does not fit the certificate's key")]
    KeyMismatch,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("signing failed")]
    SigningFailed,
}

/// Our private key.
pub enum SigningKey {
    /// Two handles on the same key: SHA-2 signatures (RFC 7427) and SHA-1 ones (method 1).
    Rsa { key: RsaKeyPair, sha1: RsaSha1Key },
    /// Two handles on the same key: ASN.1 DER signatures (RFC 7427) and fixed r|s (RFC 4754).
    Ecdsa {
        curve: Curve,
        asn1: EcdsaKeyPair,
        fixed: EcdsaKeyPair,
    },
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigningKey::Rsa { key, .. } => {
                write!(f, "RSA-{} private key", key.public_modulus_len() * 8)
            }
            SigningKey::Ecdsa { curve, .. } => write!(f, "ECDSA {curve:?} private key"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    const ALL: [Curve; 3] = [Curve::P256, Curve::P384, Curve::P521];

    /// RFC 4754 binds each curve to one hash and one method.
    fn hash(self) -> HashAlgorithm {
        match self {
            Curve::P256 => HashAlgorithm::Sha256,
            Curve::P384 => HashAlgorithm::Sha384,
            Curve::P521 => HashAlgorithm::Sha512,
        }
    }

    fn rfc4754_method(self) -> AuthMethod {
        match self {
            Curve::P256 => AuthMethod::EcdsaSha256P256,
            Curve::P384 => AuthMethod::EcdsaSha384P384,
            Curve::P521 => AuthMethod::EcdsaSha512P521,
        }
    }

    fn signing(
        self,
    ) -> (
        &'static sig::EcdsaSigningAlgorithm,
        &'static sig::EcdsaSigningAlgorithm,
    ) {
        match self {
            Curve::P256 => (
                &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            ),
            Curve::P384 => (
                &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
                &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            ),
            Curve::P521 => (
                &sig::ECDSA_P521_SHA512_ASN1_SIGNING,
                &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
            ),
        }
    }

    fn oid(self) -> Oid<'static> {
        match self {
            Curve::P256 => OID_EC_P256,
            Curve::P384 => OID_NIST_EC_P384,
            Curve::P521 => OID_NIST_EC_P521,
        }
    }
}

impl SigningKey {
    /// A private key in DER: PKCS#8, or PKCS#1 (RSA) or SEC1 (EC) as `openssl` and `pki` write.
    pub fn from_der(der: &[u8]) -> Result<SigningKey, SignatureError> {
        if let Ok(key) = RsaKeyPair::from_pkcs8(der).or_else(|_| RsaKeyPair::from_der(der)) {
            let sha1 = RsaSha1Key::from_der(der).map_err(|_| SignatureError::UnsupportedKey)?;
            return Ok(SigningKey::Rsa { key, sha1 });
        }
        for curve in Curve::ALL {
            let (asn1_alg, fixed_alg) = curve.signing();
            let load = |alg| {
                EcdsaKeyPair::from_pkcs8(alg, der)
                    .or_else(|_| EcdsaKeyPair::from_private_key_der(alg, der))
            };
            if let (Ok(asn1), Ok(fixed)) = (load(asn1_alg), load(fixed_alg)) {
                return Ok(SigningKey::Ecdsa { curve, asn1, fixed });
            }
        }
        Err(SignatureError::UnsupportedKey)
    }

    /// The public key's bits as in a certificate's subjectPublicKey, to check the key fits the
    /// certificate.
    pub fn public_key(&self) -> &[u8] {
        match self {
            SigningKey::Rsa { key, .. } => key.public_key().as_ref(),
            SigningKey::Ecdsa { asn1, .. } => asn1.public_key().as_ref(),
        }
    }

    /// Signs `octets` (RFC 7296 2.15). With RFC 7427 (the peer sent SIGNATURE_HASH_ALGORITHMS)
    /// the Digital Signature method is used with the first of our hashes the peer accepts;
    /// otherwise RFC 4754 ECDSA, or method 1 for RSA, with SHA-1 as strongSwan and Windows make
    /// and expect it (the only RSA signature such a peer takes).
    pub fn sign(
        &self,
        peer_hashes: &[HashAlgorithm],
        rsa_padding: RsaPadding,
        octets: &[u8],
    ) -> Result<Auth, SignatureError> {
        let rng = SystemRandom::new();
        let preferred = match self {
            SigningKey::Rsa { .. } => HashAlgorithm::Sha256,
            SigningKey::Ecdsa { curve, .. } => curve.hash(),
        };
        let Some(hash) = [preferred]
            .into_iter()
            .chain(HashAlgorithm::SUPPORTED)
            .find(|h| peer_hashes.contains(h))
        else {
            return match self {
                SigningKey::Ecdsa { curve, fixed, .. } => Ok(Auth {
                    method: curve.rfc4754_method(),
                    data: fixed
                        .sign(&rng, octets)
                        .map_err(|_| SignatureError::SigningFailed)?
                        .as_ref()
                        .to_vec(),
                }),
                SigningKey::Rsa { sha1, .. } => Ok(Auth {
                    method: AuthMethod::RsaSignature,
                    data: sha1
                        .sign(octets)
                        .map_err(|_| SignatureError::SigningFailed)?,
                }),
            };
        };
        let (algorithm, signature) = match self {
            SigningKey::Rsa { key, .. } => {
                let (encoding, algorithm): (&'static dyn sig::RsaEncoding, _) =
                    match (rsa_padding, hash) {
                        (RsaPadding::Pkcs1, HashAlgorithm::Sha256) => {
                            (&sig::RSA_PKCS1_SHA256, SHA256_WITH_RSA)
                        }
                        (RsaPadding::Pkcs1, HashAlgorithm::Sha384) => {
                            (&sig::RSA_PKCS1_SHA384, SHA384_WITH_RSA)
                        }
                        (RsaPadding::Pkcs1, HashAlgorithm::Sha512) => {
                            (&sig::RSA_PKCS1_SHA512, SHA512_WITH_RSA)
                        }
                        (RsaPadding::Pss, HashAlgorithm::Sha256) => {
                            (&sig::RSA_PSS_SHA256, PSS_SHA256)
                        }
                        (RsaPadding::Pss, HashAlgorithm::Sha384) => {
                            (&sig::RSA_PSS_SHA384, PSS_SHA384)
                        }
                        (RsaPadding::Pss, HashAlgorithm::Sha512) => {
                            (&sig::RSA_PSS_SHA512, PSS_SHA512)
                        }
                    };
                let mut signature = vec![0u8; key.public_modulus_len()];
                key.sign(encoding, &rng, octets, &mut signature)
                    .map_err(|_| SignatureError::SigningFailed)?;
                (algorithm, signature)
            }
            SigningKey::Ecdsa { curve, asn1, .. } => {
                // The curve fixes the hash our key pair signs with (RFC 5480 4 pairs them too).
                let algorithm = match curve.hash() {
                    HashAlgorithm::Sha256 => ECDSA_SHA256,
                    HashAlgorithm::Sha384 => ECDSA_SHA384,
                    HashAlgorithm::Sha512 => ECDSA_SHA512,
                };
                let signature = asn1
                    .sign(&rng, octets)
                    .map_err(|_| SignatureError::SigningFailed)?;
                (algorithm, signature.as_ref().to_vec())
            }
        };
        // RFC 7427 3: length of the AlgorithmIdentifier, the AlgorithmIdentifier, the signature.
        let mut data = Vec::with_capacity(1 + algorithm.len() + signature.len());
        data.push(algorithm.len() as u8);
        data.extend_from_slice(algorithm);
        data.extend_from_slice(&signature);
        Ok(Auth {
            method: AuthMethod::DigitalSignature,
            data,
        })
    }
}

// RFC 7427 Appendix A: the DER AlgorithmIdentifiers we send.
const SHA256_WITH_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
const SHA384_WITH_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00,
];
const SHA512_WITH_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00,
];
const ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
const ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
const ECDSA_SHA512: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04,
];
/// RSASSA-PSS (RFC 4055 3.1) with the hash, MGF1 over the same hash, and a salt as long as the
/// hash; the last byte of each is the hash's OID arc / the salt length.
const PSS_SHA256: &[u8] = &pss(0x01, 32);
const PSS_SHA384: &[u8] = &pss(0x02, 48);
const PSS_SHA512: &[u8] = &pss(0x03, 64);

const fn pss(hash_arc: u8, salt: u8) -> [u8; 67] {
    [
        0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34,
        // [0] hashAlgorithm
        0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
        hash_arc, 0x05, 0x00, // [1] maskGenAlgorithm: MGF1 with the hash
        0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
        0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, hash_arc, 0x05,
        0x00, // [2] saltLength
        0xa2, 0x03, 0x02, 0x01, salt,
    ]
}

/// The kind of a certificate's public key.
enum KeyKind {
    Rsa,
    Ec(Curve),
}

fn key_kind(spki: &SubjectPublicKeyInfo<'_>) -> Option<KeyKind> {
    let algorithm = &spki.algorithm;
    if algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
        return Some(KeyKind::Rsa);
    }
    if algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return None;
    }
    let curve = algorithm.parameters.as_ref()?.as_oid().ok()?;
    Curve::ALL
        .into_iter()
        .find(|c| c.oid() == curve)
        .map(KeyKind::Ec)
}

/// Checks an AUTH payload's signature over `octets` with the public key of the peer's
/// certificate.
pub fn verify(
    spki: &SubjectPublicKeyInfo<'_>,
    auth: &Auth,
    octets: &[u8],
) -> Result<(), SignatureError> {
    let kind = key_kind(spki).ok_or(SignatureError::KeyMismatch)?;
    let (algorithm, signature): (&'static dyn VerificationAlgorithm, &[u8]) = match auth.method {
        // RFC 7296 3.8: RSASSA-PKCS1-v1_5; implementations (strongSwan, Windows) hash with SHA-1.
        AuthMethod::RsaSignature => match kind {
            KeyKind::Rsa => (
                &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                &auth.data,
            ),
            KeyKind::Ec(_) => return Err(SignatureError::KeyMismatch),
        },
        AuthMethod::EcdsaSha256P256 | AuthMethod::EcdsaSha384P384 | AuthMethod::EcdsaSha512P521 => {
            let algorithm: &'static dyn VerificationAlgorithm = match (auth.method, kind) {
                (AuthMethod::EcdsaSha256P256, KeyKind::Ec(Curve::P256)) => {
                    &sig::ECDSA_P256_SHA256_FIXED
                }
                (AuthMethod::EcdsaSha384P384, KeyKind::Ec(Curve::P384)) => {
                    &sig::ECDSA_P384_SHA384_FIXED
                }
                (AuthMethod::EcdsaSha512P521, KeyKind::Ec(Curve::P521)) => {
                    &sig::ECDSA_P521_SHA512_FIXED
                }
                _ => return Err(SignatureError::KeyMismatch),
            };
            (algorithm, &auth.data)
        }
        AuthMethod::DigitalSignature => digital_signature(kind, &auth.data)?,
        other => return Err(SignatureError::MethodForKey(other)),
    };
    aws_lc_rs::signature::UnparsedPublicKey::new(algorithm, &spki.subject_public_key.data)
        .verify(octets, signature)
        .map_err(|_| SignatureError::BadSignature)
}

/// RFC 7427 3: the AlgorithmIdentifier names the scheme; it must fit the key.
fn digital_signature(
    kind: KeyKind,
    data: &[u8],
) -> Result<(&'static dyn VerificationAlgorithm, &[u8]), SignatureError> {
    let (&len, rest) = data
        .split_first()
        .ok_or(SignatureError::UnsupportedAlgorithm)?;
    if rest.len() < len as usize {
        return Err(SignatureError::UnsupportedAlgorithm);
    }
    let (encoded, signature) = rest.split_at(len as usize);
    let (trailing, identifier) =
        AlgorithmIdentifier::from_der(encoded).map_err(|_| SignatureError::UnsupportedAlgorithm)?;
    if !trailing.is_empty() {
        return Err(SignatureError::UnsupportedAlgorithm);
    }
    let oid = &identifier.algorithm;
    let algorithm: &'static dyn VerificationAlgorithm = match kind {
        KeyKind::Rsa if *oid == OID_PKCS1_SHA256WITHRSA => &sig::RSA_PKCS1_2048_8192_SHA256,
        KeyKind::Rsa if *oid == OID_PKCS1_SHA384WITHRSA => &sig::RSA_PKCS1_2048_8192_SHA384,
        KeyKind::Rsa if *oid == OID_PKCS1_SHA512WITHRSA => &sig::RSA_PKCS1_2048_8192_SHA512,
        KeyKind::Rsa if *oid == OID_PKCS1_RSASSAPSS => {
            let params = identifier
                .parameters
                .as_ref()
                .and_then(|p| RsaSsaPssParams::try_from(p).ok())
                .ok_or(SignatureError::UnsupportedAlgorithm)?;
            let hash = params.hash_algorithm_oid();
            if *hash == OID_NIST_HASH_SHA256 {
                &sig::RSA_PSS_2048_8192_SHA256
            } else if *hash == OID_NIST_HASH_SHA384 {
                &sig::RSA_PSS_2048_8192_SHA384
            } else if *hash == OID_NIST_HASH_SHA512 {
                &sig::RSA_PSS_2048_8192_SHA512
            } else {
                return Err(SignatureError::UnsupportedAlgorithm);
            }
        }
        KeyKind::Ec(curve) => {
            let hash = if *oid == OID_SIG_ECDSA_WITH_SHA256 {
                HashAlgorithm::Sha256
            } else if *oid == OID_SIG_ECDSA_WITH_SHA384 {
                HashAlgorithm::Sha384
            } else if *oid == OID_SIG_ECDSA_WITH_SHA512 {
                HashAlgorithm::Sha512
            } else {
                return Err(SignatureError::KeyMismatch);
            };
            ecdsa_asn1(curve, hash)
        }
        KeyKind::Rsa => return Err(SignatureError::KeyMismatch),
    };
    Ok((algorithm, signature))
}

fn ecdsa_asn1(curve: Curve, hash: HashAlgorithm) -> &'static dyn VerificationAlgorithm {
    match (curve, hash) {
        (Curve::P256, HashAlgorithm::Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
        (Curve::P256, HashAlgorithm::Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
        (Curve::P256, HashAlgorithm::Sha512) => &sig::ECDSA_P256_SHA512_ASN1,
        (Curve::P384, HashAlgorithm::Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
        (Curve::P384, HashAlgorithm::Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
        (Curve::P384, HashAlgorithm::Sha512) => &sig::ECDSA_P384_SHA512_ASN1,
        (Curve::P521, HashAlgorithm::Sha256) => &sig::ECDSA_P521_SHA256_ASN1,
        (Curve::P521, HashAlgorithm::Sha384) => &sig::ECDSA_P521_SHA384_ASN1,
        (Curve::P521, HashAlgorithm::Sha512) => &sig::ECDSA_P521_SHA512_ASN1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, RsaKeySize};

    /// A key of this rcgen algorithm, as our signing key, and its self-signed certificate.
    fn key_and_cert(alg: &'static rcgen::SignatureAlgorithm) -> (KeyPair, SigningKey, Vec<u8>) {
        let pair = if alg == &rcgen::PKCS_RSA_SHA256 {
            KeyPair::generate_rsa_for(alg, RsaKeySize::_2048).unwrap()
        } else {
            KeyPair::generate_for(alg).unwrap()
        };
        let cert = CertificateParams::new(vec!["t.example".into()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        let key = SigningKey::from_der(&pair.serialize_der()).unwrap();
        (pair, key, cert.der().to_vec())
    }

    fn check(cert: &[u8], auth: &Auth, octets: &[u8]) -> Result<(), SignatureError> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert).unwrap();
        verify(cert.public_key(), auth, octets)
    }

    #[test]
    fn every_method_signs_and_verifies_and_a_flipped_bit_does_not() {
        let all = HashAlgorithm::SUPPORTED;
        for (alg, hashes, padding, method) in [
            (
                &rcgen::PKCS_RSA_SHA256,
                &all[..],
                RsaPadding::Pkcs1,
                AuthMethod::DigitalSignature,
            ),
            (
                &rcgen::PKCS_RSA_SHA256,
                &all[2..],
                RsaPadding::Pss,
                AuthMethod::DigitalSignature,
            ),
            (
                &rcgen::PKCS_ECDSA_P256_SHA256,
                &all[..],
                RsaPadding::Pkcs1,
                AuthMethod::DigitalSignature,
            ),
            (
                &rcgen::PKCS_ECDSA_P384_SHA384,
                &all[1..],
                RsaPadding::Pkcs1,
                AuthMethod::DigitalSignature,
            ),
            (
                &rcgen::PKCS_ECDSA_P521_SHA512,
                &all[..],
                RsaPadding::Pkcs1,
                AuthMethod::DigitalSignature,
            ),
            // No SIGNATURE_HASH_ALGORITHMS from the peer: RFC 4754.
            (
                &rcgen::PKCS_ECDSA_P256_SHA256,
                &[][..],
                RsaPadding::Pkcs1,
                AuthMethod::EcdsaSha256P256,
            ),
            (
                &rcgen::PKCS_ECDSA_P384_SHA384,
                &[][..],
                RsaPadding::Pkcs1,
                AuthMethod::EcdsaSha384P384,
            ),
            (
                &rcgen::PKCS_ECDSA_P521_SHA512,
                &[][..],
                RsaPadding::Pkcs1,
                AuthMethod::EcdsaSha512P521,
            ),
        ] {
            let (_, key, cert) = key_and_cert(alg);
            let auth = key.sign(hashes, padding, b"signed octets").unwrap();
            assert_eq!(auth.method, method, "{alg:?}");
            assert_eq!(check(&cert, &auth, b"signed octets"), Ok(()), "{alg:?}");
            assert_eq!(
                check(&cert, &auth, b"signed octetz"),
                Err(SignatureError::BadSignature),
                "{alg:?}"
            );
            let mut flipped = auth.clone();
            let last = flipped.data.len() - 1;
            flipped.data[last] ^= 1;
            assert!(check(&cert, &flipped, b"signed octets").is_err(), "{alg:?}");
        }
    }

    /// A peer without RFC 7427 gets method 1 (RFC 7296 3.8) from an RSA key: SHA-1, which our
    /// verifier and openssl (`rsa_method_1_signatures_from_openssl_verify`) check the same way.
    #[test]
    fn rsa_without_rfc7427_signs_with_method_1() {
        let (_, key, cert) = key_and_cert(&rcgen::PKCS_RSA_SHA256);
        let auth = key.sign(&[], RsaPadding::Pkcs1, b"signed octets").unwrap();
        assert_eq!(auth.method, AuthMethod::RsaSignature);
        assert_eq!(auth.data.len(), 256);
        assert_eq!(check(&cert, &auth, b"signed octets"), Ok(()));
        assert_eq!(
            check(&cert, &auth, b"other octets"),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn a_signature_must_fit_the_certificate_key() {
        let (_, ec_key, _) = key_and_cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (_, _, rsa_cert) = key_and_cert(&rcgen::PKCS_RSA_SHA256);
        let (_, _, p384_cert) = key_and_cert(&rcgen::PKCS_ECDSA_P384_SHA384);
        let rfc7427 = ec_key
            .sign(&HashAlgorithm::SUPPORTED, RsaPadding::Pkcs1, b"m")
            .unwrap();
        assert_eq!(
            check(&rsa_cert, &rfc7427, b"m"),
            Err(SignatureError::KeyMismatch)
        );
        let rfc4754 = ec_key.sign(&[], RsaPadding::Pkcs1, b"m").unwrap();
        assert_eq!(
            check(&p384_cert, &rfc4754, b"m"),
            Err(SignatureError::KeyMismatch)
        );
        let truncated = Auth {
            method: AuthMethod::DigitalSignature,
            data: vec![40, 0x30],
        };
        assert_eq!(
            check(&p384_cert, &truncated, b"m"),
            Err(SignatureError::UnsupportedAlgorithm)
        );
    }

    /// Method 1 (RFC 7296 3.8) as strongSwan and Windows make it: RSASSA-PKCS1-v1_5 with SHA-1,
    /// here made by the openssl command line tool.
    #[test]
    fn rsa_method_1_signatures_from_openssl_verify() {
        let (pair, _, cert) = key_and_cert(&rcgen::PKCS_RSA_SHA256);
        let dir = std::env::temp_dir().join(format!("ct-rsa1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (key_path, data_path) = (dir.join("key.pem"), dir.join("data"));
        std::fs::write(&key_path, pair.serialize_pem()).unwrap();
        std::fs::write(&data_path, b"signed octets").unwrap();
        let output = std::process::Command::new("openssl")
            .args(["dgst", "-sha1", "-sign"])
            .arg(&key_path)
            .arg(&data_path)
            .output()
            .expect("openssl (installed by scripts/setup.sh)");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(output.status.success(), "{output:?}");
        let auth = Auth {
            method: AuthMethod::RsaSignature,
            data: output.stdout,
        };
        assert_eq!(check(&cert, &auth, b"signed octets"), Ok(()));
        assert_eq!(
            check(&cert, &auth, b"other octets"),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn pss_identifiers_parse_as_rsassa_pss_with_their_hash() {
        for (der, hash) in [
            (PSS_SHA256, OID_NIST_HASH_SHA256),
            (PSS_SHA384, OID_NIST_HASH_SHA384),
            (PSS_SHA512, OID_NIST_HASH_SHA512),
        ] {
            let (rest, id) = AlgorithmIdentifier::from_der(der).unwrap();
            assert!(rest.is_empty());
            assert_eq!(id.algorithm, OID_PKCS1_RSASSAPSS);
            let params = RsaSsaPssParams::try_from(id.parameters.as_ref().unwrap()).unwrap();
            assert_eq!(*params.hash_algorithm_oid(), hash);
            assert_eq!(params.salt_length() as usize, der[der.len() - 1] as usize);
        }
    }

    #[test]
    fn hash_notify_round_trips_and_ignores_unknown_ids() {
        let data = HashAlgorithm::notify_data();
        assert_eq!(data, [0, 2, 0, 3, 0, 4]);
        assert_eq!(
            HashAlgorithm::parse_notify(&[0, 1, 0, 4, 0, 9, 7]),
            vec![HashAlgorithm::Sha512]
        );
    }
}
