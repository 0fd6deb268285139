//! Helpers shared by the tests that check intel-ipsec-mb and our lanes against aws-lc-rs.

use aws_lc_rs::aead;

/// aws-lc-rs's AES-GCM with `key` (16, 24 or 32 bytes), the independent reference.
pub fn aws_gcm(key: &[u8]) -> aead::LessSafeKey {
    let alg = match key.len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        _ => &aead::AES_256_GCM,
    };
    aead::LessSafeKey::new(aead::UnboundKey::new(alg, key).unwrap())
}
