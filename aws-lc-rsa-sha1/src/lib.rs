//! RSASSA-PKCS1-v1_5 signatures with SHA-1 (RFC 8017 8.2), which IKEv2's authentication method 1
//! ("RSA Digital Signature", RFC 7296 3.8) is in practice: strongSwan and Windows sign and expect
//! SHA-1 there. A peer that does not announce RFC 7427 (no SIGNATURE_HASH_ALGORITHMS notify,
//! as Windows before RFC 7427 support, or strongSwan with `signature_authentication = no`)
//! accepts no other signature from an RSA key. aws-lc-rs verifies such signatures but does not
//! make them, so this crate calls AWS-LC's `RSA_sign` (blinded, constant-time) directly.
//!
//! This crate is the FFI boundary: the unsafe calls into `aws-lc-sys` are all in the private
//! `raw` module, which owns the key and frees it on drop. The API above it is safe.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod raw;

use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an RSA private key in PKCS#8 or PKCS#1 DER")]
    UnsupportedKey,
    #[error("aws-lc failed to sign")]
    Library,
}

/// An RSA private key that signs with SHA-1.
#[derive(Debug)]
pub struct RsaSha1Key(raw::Rsa);

impl RsaSha1Key {
    /// A private key in DER: PKCS#8 (PrivateKeyInfo) or PKCS#1 (RSAPrivateKey), with nothing
    /// after it.
    pub fn from_der(der: &[u8]) -> Result<RsaSha1Key, Error> {
        raw::Rsa::from_pkcs8(der)
            .or_else(|| raw::Rsa::from_pkcs1(der))
            .map(RsaSha1Key)
            .ok_or(Error::UnsupportedKey)
    }

    /// The signature's length: the modulus's, in bytes.
    pub fn signature_len(&self) -> usize {
        self.0.size()
    }

    /// The RSASSA-PKCS1-v1_5 signature of `message` with SHA-1.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let hash = digest(&SHA1_FOR_LEGACY_USE_ONLY, message);
        self.0.sign_sha1(hash.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        KeyPair, RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
    };
    use std::path::Path;
    use std::process::Command;

    fn verifies(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, public_key)
            .verify(message, signature)
            .is_ok()
    }

    #[test]
    fn a_pkcs8_keys_signatures_verify_with_sha1_and_only_over_their_message() {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let key = RsaSha1Key::from_der(
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                .unwrap()
                .as_ref(),
        )
        .unwrap();
        assert_eq!(key.signature_len(), 256);
        let signature = key.sign(b"signed octets").unwrap();
        assert_eq!(signature.len(), 256);
        let public = pair.public_key().as_ref();
        assert!(verifies(public, b"signed octets", &signature));
        assert!(!verifies(public, b"signed octetz", &signature));
        // PKCS#1 v1.5 signing is deterministic.
        assert_eq!(key.sign(b"signed octets").unwrap(), signature);
    }

    #[test]
    fn what_is_not_an_rsa_private_key_is_refused() {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let der = der.as_ref();
        for bad in [
            &der[..der.len() - 1],
            &[der, &[0]].concat(),
            b"",
            pair.public_key().as_ref(),
        ] {
            assert_eq!(
                RsaSha1Key::from_der(bad).unwrap_err(),
                Error::UnsupportedKey
            );
        }
        let ec = aws_lc_rs::signature::EcdsaKeyPair::generate(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        )
        .unwrap();
        let ec_der = ec.to_pkcs8v1().unwrap();
        assert_eq!(
            RsaSha1Key::from_der(ec_der.as_ref()).unwrap_err(),
            Error::UnsupportedKey
        );
    }

    fn openssl(dir: &Path, args: &[&str]) {
        let output = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl (installed by scripts/setup.sh)");
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
    }

    /// A PKCS#1 key as `openssl genrsa -traditional` writes it; openssl checks the signature.
    #[test]
    fn a_pkcs1_keys_signatures_verify_with_openssl() {
        let dir = std::env::temp_dir().join(format!("rsa-sha1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        openssl(&dir, &["genrsa", "-traditional", "-out", "key.pem", "3072"]);
        openssl(
            &dir,
            &[
                "rsa",
                "-in",
                "key.pem",
                "-outform",
                "DER",
                "-traditional",
                "-out",
                "key.der",
            ],
        );
        openssl(
            &dir,
            &["rsa", "-in", "key.pem", "-pubout", "-out", "public.pem"],
        );
        let key = RsaSha1Key::from_der(&std::fs::read(dir.join("key.der")).unwrap()).unwrap();
        std::fs::write(dir.join("message"), b"signed octets").unwrap();
        std::fs::write(dir.join("signature"), key.sign(b"signed octets").unwrap()).unwrap();
        openssl(
            &dir,
            &[
                "dgst",
                "-sha1",
                "-verify",
                "public.pem",
                "-signature",
                "signature",
                "message",
            ],
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
