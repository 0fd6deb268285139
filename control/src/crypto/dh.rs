//! Diffie-Hellman for IKEv2: ECP groups 19, 20, 21 (RFC 5903: the KE data is x | y, the shared
//! secret is x), Curve25519 (RFC 8031) through aws-lc, and the MODP groups 14 and 15.
use super::modp::ModpKey;
use super::{CryptoError, Rng};
use crate::wire::ikev2::DhGroup;
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};
use zeroize::Zeroizing;

/// Our half of one key exchange.
pub enum DhKey {
    Ecdh { group: DhGroup, key: PrivateKey },
    Modp { group: DhGroup, key: ModpKey },
}

impl std::fmt::Debug for DhKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DhKey({:?})", self.group())
    }
}

/// The aws-lc algorithm and the private scalar length of an elliptic-curve group.
fn curve(group: DhGroup) -> Option<(&'static agreement::Algorithm, usize)> {
    match group {
        DhGroup::Ecp256 => Some((&agreement::ECDH_P256, 32)),
        DhGroup::Ecp384 => Some((&agreement::ECDH_P384, 48)),
        DhGroup::Ecp521 => Some((&agreement::ECDH_P521, 66)),
        DhGroup::Curve25519 => Some((&agreement::X25519, 32)),
        _ => None,
    }
}

impl DhKey {
    pub fn generate(group: DhGroup, rng: &mut dyn Rng) -> Result<DhKey, CryptoError> {
        match group {
            DhGroup::Modp2048 => {
                return Ok(DhKey::Modp {
                    group,
                    key: ModpKey::generate(2048, rng),
                })
            }
            DhGroup::Modp3072 => {
                return Ok(DhKey::Modp {
                    group,
                    key: ModpKey::generate(3072, rng),
                })
            }
            _ => {}
        }
        let (alg, len) = curve(group).ok_or(CryptoError::UnsupportedGroup(group.into()))?;
        let mut scalar = Zeroizing::new(vec![0u8; len]);
        // A random scalar is out of range (>= the order) with negligible probability; draw again.
        loop {
            rng.fill(&mut scalar);
            if group == DhGroup::Ecp521 {
                scalar[0] &= 0x01;
            }
            if let Ok(key) = PrivateKey::from_private_key(alg, &scalar) {
                return Ok(DhKey::Ecdh { group, key });
            }
        }
    }

    pub fn group(&self) -> DhGroup {
        match self {
            DhKey::Ecdh { group, .. } | DhKey::Modp { group, .. } => *group,
        }
    }

    /// The Key Exchange payload data.
    pub fn public_value(&self) -> Result<Vec<u8>, CryptoError> {
        match self {
            DhKey::Modp { key, .. } => key.public_value(),
            DhKey::Ecdh { group, key } => {
                let public = key
                    .compute_public_key()
                    .map_err(|_| CryptoError::InvalidPublicValue)?;
                let bytes = public.as_ref();
                Ok(match group {
                    DhGroup::Curve25519 => bytes.to_vec(),
                    // Drop the SEC1 uncompressed-point marker 0x04.
                    _ => bytes[1..].to_vec(),
                })
            }
        }
    }

    /// g^ir from the peer's Key Exchange data; wrong lengths and points not on the curve are
    /// rejected.
    pub fn shared_secret(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match self {
            DhKey::Modp { key, .. } => key.shared_secret(peer),
            DhKey::Ecdh { group, key } => {
                let (alg, len) =
                    curve(*group).ok_or(CryptoError::UnsupportedGroup((*group).into()))?;
                let coordinate_len = if *group == DhGroup::Curve25519 {
                    len
                } else {
                    len * 2
                };
                if peer.len() != coordinate_len {
                    return Err(CryptoError::InvalidPublicValue);
                }
                let encoded = if *group == DhGroup::Curve25519 {
                    peer.to_vec()
                } else {
                    [&[0x04], peer].concat()
                };
                agreement::agree(
                    key,
                    UnparsedPublicKey::new(alg, encoded),
                    CryptoError::InvalidPublicValue,
                    |secret| Ok(Zeroizing::new(secret.to_vec())),
                )
            }
        }
    }

    #[cfg(test)]
    fn from_scalar(group: DhGroup, scalar: &[u8]) -> DhKey {
        let (alg, _) = curve(group).unwrap();
        DhKey::Ecdh {
            group,
            key: PrivateKey::from_private_key(alg, scalar).unwrap(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{hex, SeededRng};

    /// RFC 5903 section 8 (groups 19, 20, 21): i, g^i = (gix, giy), r, g^r, g^ir x-coordinate.
    const RFC5903: [(DhGroup, &str, &str, &str, &str, &str, &str); 3] = [
        (
            DhGroup::Ecp256,
            "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
            "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180",
            "5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3",
            "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
            "d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf6356fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab",
            "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de",
        ),
        (
            DhGroup::Ecp384,
            "099f3c7034d4a2c699884d73a375a67f7624ef7c6b3c0f160647b67414dce655e35b538041e649ee3faef896783ab194",
            "667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6de3ac808acb4bdb4c88732aee95f41aa",
            "9482ed1fc0eeb9cafc4984625ccfc23f65032149e0e144ada024181535a0f38eeb9fcff3c2c947dae69b4c634573a81c",
            "41cb0779b4bdb85d47846725fbec3c9430fab46cc8dc5060855cc9bda0aa2942e0308312916b8ed2960e4bd55a7448fc",
            "e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d0d1ac43a0336def96fda41d0774a3571dcfbec7aacf3196472169e838430367f66eebe3c6e70c416dd5f0c68759dd1fff83fa40142209dff5eaad96db9e6386c",
            "11187331c279962d93d604243fd592cb9d0a926f422e47187521287e7156c5c4d603135569b9e9d09cf5d4a270f59746",
        ),
        (
            DhGroup::Ecp521,
            "0037ade9319a89f4dabdb3ef411aaccca5123c61acab57b5393dce47608172a095aa85a30fe1c2952c6771d937ba9777f5957b2639bab072462f68c27a57382d4a52",
            "0015417e84dbf28c0ad3c278713349dc7df153c897a1891bd98bab4357c9ecbee1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4601723c4195d176ced3e",
            "017cae20b6641d2eeb695786d8c946146239d099e18e1d5a514c739d7cb4a10ad8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f1507438bf01beb6ca3926f9582",
            "0145ba99a847af43793fdd0e872e7cdfa16be30fdc780f97bccc3f078380201e9c677d600b343757a3bdbf2a3163e4c2f869cca7458aa4a4effc311f5cb151685eb9",
            "00d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39728b5e5739735a219b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433ced2b6171640012d9460f015c68226383956e3bd066e797b623c27ce0eac2f551a10c2c724d9852077b87220b6536c5c408a1d2aebb8e86d678ae49cb57091f4732296579ab44fcd17f0fc56a",
            "01144c7d79ae6956bc8edb8e7c787c4521cb086fa64407f97894e5e6b2d79b04d1427e73ca4baa240a34786859810c06b3c715a3a8cc3151f2bee417996d19f3ddea",
        ),
    ];

    #[test]
    fn ecp_groups_match_rfc_5903() {
        for (group, i, gix, giy, r, gr, gir) in RFC5903 {
            let initiator = DhKey::from_scalar(group, &hex(i));
            let responder = DhKey::from_scalar(group, &hex(r));
            assert_eq!(
                initiator.public_value().unwrap(),
                [hex(gix), hex(giy)].concat(),
                "{group:?}"
            );
            assert_eq!(responder.public_value().unwrap(), hex(gr), "{group:?}");
            assert_eq!(
                *initiator.shared_secret(&hex(gr)).unwrap(),
                hex(gir),
                "{group:?}"
            );
            assert_eq!(
                *responder
                    .shared_secret(&initiator.public_value().unwrap())
                    .unwrap(),
                hex(gir)
            );
            // Off-curve point and wrong length.
            let mut bad = hex(gr);
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(
                initiator.shared_secret(&bad).unwrap_err(),
                CryptoError::InvalidPublicValue
            );
            assert_eq!(
                initiator.shared_secret(&bad[1..]).unwrap_err(),
                CryptoError::InvalidPublicValue
            );
        }
    }

    /// RFC 7748 section 6.1.
    #[test]
    fn curve25519_matches_rfc_7748() {
        let alice = DhKey::from_scalar(
            DhGroup::Curve25519,
            &hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
        );
        assert_eq!(
            alice.public_value().unwrap(),
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let shared = alice
            .shared_secret(&hex(
                "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
            ))
            .unwrap();
        assert_eq!(
            *shared,
            hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
    }

    /// MODP: g^x for a fixed exponent against Python's pow (SHA-256 of the result), agreement
    /// between two generated keys, and rejection of 1, p-1 and short values.
    #[test]
    fn modp_groups() {
        for (group, bits, expected_public_sha256) in [
            (DhGroup::Modp2048, 2048, MODP2048_PUBLIC_SHA256),
            (DhGroup::Modp3072, 3072, MODP3072_PUBLIC_SHA256),
        ] {
            let fixed = DhKey::Modp {
                group,
                key: ModpKey::from_exponent_byte(bits, 0xda),
            };
            let public = fixed.public_value().unwrap();
            assert_eq!(public.len(), bits / 8);
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &public);
            assert_eq!(
                digest.as_ref(),
                &hex(expected_public_sha256)[..],
                "{group:?}"
            );

            let mut rng = SeededRng::new(bits as u64);
            let a = DhKey::generate(group, &mut rng).unwrap();
            let b = DhKey::generate(group, &mut rng).unwrap();
            let ab = a.shared_secret(&b.public_value().unwrap()).unwrap();
            assert_eq!(ab, b.shared_secret(&a.public_value().unwrap()).unwrap());
            assert_eq!(ab.len(), bits / 8);

            let mut one = vec![0u8; bits / 8];
            *one.last_mut().unwrap() = 1;
            assert_eq!(
                a.shared_secret(&one).unwrap_err(),
                CryptoError::InvalidPublicValue
            );
            let mut p_minus_1 = hex(if bits == 2048 {
                MODP_2048_HEX
            } else {
                MODP_3072_HEX
            });
            *p_minus_1.last_mut().unwrap() -= 1;
            assert_eq!(
                a.shared_secret(&p_minus_1).unwrap_err(),
                CryptoError::InvalidPublicValue
            );
            assert_eq!(
                a.shared_secret(&public[1..]).unwrap_err(),
                CryptoError::InvalidPublicValue
            );
        }
    }

    #[test]
    fn generated_keys_agree_in_every_group() {
        let mut rng = SeededRng::new(7);
        for group in [
            DhGroup::Ecp256,
            DhGroup::Ecp384,
            DhGroup::Ecp521,
            DhGroup::Curve25519,
        ] {
            let a = DhKey::generate(group, &mut rng).unwrap();
            let b = DhKey::generate(group, &mut rng).unwrap();
            assert_eq!(
                a.shared_secret(&b.public_value().unwrap()).unwrap(),
                b.shared_secret(&a.public_value().unwrap()).unwrap()
            );
        }
        assert_eq!(
            DhKey::generate(DhGroup::Unknown(2), &mut rng).unwrap_err(),
            CryptoError::UnsupportedGroup(2)
        );
    }

    const MODP_2048_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF";
    const MODP_3072_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF";
    /// SHA-256 of 2^x mod p for x of 0xda bytes (40 for group 14, 56 for group 15), computed
    /// independently (Python's pow).
    const MODP2048_PUBLIC_SHA256: &str =
        "5e88e2224ea1ff83788505e9d5adb1807bb445bb31f58e05ec14312460d8b5cb";
    const MODP3072_PUBLIC_SHA256: &str =
        "7f97547c4f31f28531dc1a98582e1f329a8a8df7b81d475ce0fa40493e72f401";
}
