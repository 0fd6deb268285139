//! IKEv2 key derivation (RFC 7296 2.14, 2.17, 2.18).
use super::{CryptoError, Prf};
use zeroize::Zeroizing;

type Secret = Zeroizing<Vec<u8>>;

/// Key lengths of the negotiated algorithms. `encr` includes the 4-byte salt of AES-GCM/GMAC
/// (RFC 5282 7.1, RFC 4106 8.1); `integ` is 0 for combined-mode ciphers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLengths {
    pub encr: usize,
    pub integ: usize,
}

/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaKeys {
    pub sk_d: Secret,
    pub sk_ai: Secret,
    pub sk_ar: Secret,
    pub sk_ei: Secret,
    pub sk_er: Secret,
    pub sk_pi: Secret,
    pub sk_pr: Secret,
}

/// SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA (RFC 7296 2.14).
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> Secret {
    let key = Zeroizing::new([ni, nr].concat());
    prf.compute(&key, &[g_ir])
}

/// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) when rekeying an IKE SA (RFC 7296 2.18),
/// with the old IKE SA's PRF.
pub fn rekey_skeyseed(old_prf: Prf, old_sk_d: &[u8], g_ir: &[u8], ni: &[u8], nr: &[u8]) -> Secret {
    old_prf.compute(old_sk_d, &[g_ir, ni, nr])
}

/// The seven IKE SA keys from prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) (RFC 7296 2.14).
pub fn derive_ike_keys(
    prf: Prf,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
    lengths: KeyLengths,
) -> Result<IkeSaKeys, CryptoError> {
    let prf_len = prf.output_len();
    let sizes = [
        prf_len,
        lengths.integ,
        lengths.integ,
        lengths.encr,
        lengths.encr,
        prf_len,
        prf_len,
    ];
    let total = sizes.iter().sum();
    let stream = prf.prf_plus(
        skeyseed,
        &[ni, nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()],
        total,
    )?;
    let mut parts = split(&stream, &sizes).into_iter();
    let mut next = || parts.next().unwrap_or_default();
    Ok(IkeSaKeys {
        sk_d: next(),
        sk_ai: next(),
        sk_ar: next(),
        sk_ei: next(),
        sk_er: next(),
        sk_pi: next(),
        sk_pr: next(),
    })
}

/// Child SA keys (RFC 7296 2.17): the initiator-to-responder encryption and integrity keys come
/// first, then the responder-to-initiator ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildKeymat {
    pub initiator_encr: Secret,
    pub initiator_integ: Secret,
    pub responder_encr: Secret,
    pub responder_integ: Secret,
}

/// KEYMAT = prf+(SK_d, Ni | Nr), or prf+(SK_d, g^ir (new) | Ni | Nr) with PFS.
pub fn child_keymat(
    prf: Prf,
    sk_d: &[u8],
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    lengths: KeyLengths,
) -> Result<ChildKeymat, CryptoError> {
    let sizes = [lengths.encr, lengths.integ, lengths.encr, lengths.integ];
    let total = sizes.iter().sum();
    let stream = prf.prf_plus(sk_d, &[g_ir.unwrap_or_default(), ni, nr], total)?;
    let mut parts = split(&stream, &sizes).into_iter();
    let mut next = || parts.next().unwrap_or_default();
    Ok(ChildKeymat {
        initiator_encr: next(),
        initiator_integ: next(),
        responder_encr: next(),
        responder_integ: next(),
    })
}

fn split(stream: &[u8], sizes: &[usize]) -> Vec<Secret> {
    let mut offset = 0;
    sizes
        .iter()
        .map(|&size| {
            let part = Zeroizing::new(stream[offset..offset + size].to_vec());
            offset += size;
            part
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hex;

    /// Cross-checked against an independent implementation of RFC 7296 2.14/2.17 (Python's hmac
    /// module): Ni = 0x01*32, Nr = 0x02*32, g^ir = 0x03*32, SPIi = 0x1111111111111111,
    /// SPIr = 0x2222222222222222, PRF HMAC-SHA-256, AES-256-CBC with HMAC-SHA-256-128.
    #[test]
    fn ike_and_child_keys_match_an_independent_derivation() {
        let (ni, nr, gir) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let seed = skeyseed(Prf::HmacSha256, &ni, &nr, &gir);
        assert_eq!(*seed, hex(SKEYSEED));
        let lengths = KeyLengths {
            encr: 32,
            integ: 32,
        };
        let keys = derive_ike_keys(
            Prf::HmacSha256,
            &seed,
            &ni,
            &nr,
            0x1111111111111111,
            0x2222222222222222,
            lengths,
        )
        .unwrap();
        assert_eq!(*keys.sk_d, hex(SK_D));
        assert_eq!(*keys.sk_er, hex(SK_ER));
        assert_eq!(*keys.sk_pr, hex(SK_PR));
        assert_ne!(keys.sk_ai, keys.sk_ar);

        // AES-256-GCM child SA: 36 bytes of key and salt per direction, no integrity key.
        let child = child_keymat(
            Prf::HmacSha256,
            &keys.sk_d,
            None,
            &ni,
            &nr,
            KeyLengths { encr: 36, integ: 0 },
        )
        .unwrap();
        assert_eq!(*child.initiator_encr, hex(CHILD_I_ENCR));
        assert_eq!(*child.responder_encr, hex(CHILD_R_ENCR));
        assert!(child.initiator_integ.is_empty());
        // With PFS, g^ir changes every key.
        let pfs = child_keymat(
            Prf::HmacSha256,
            &keys.sk_d,
            Some(&gir),
            &ni,
            &nr,
            KeyLengths { encr: 36, integ: 0 },
        )
        .unwrap();
        assert_ne!(pfs.initiator_encr, child.initiator_encr);

        let rekeyed = rekey_skeyseed(Prf::HmacSha256, &keys.sk_d, &gir, &ni, &nr);
        assert_eq!(*rekeyed, hex(REKEY_SKEYSEED));
    }

    const SKEYSEED: &str = "febc4e77f81e58a1138cbc3b1afb431f79422b5bd4e41a9bc969e219634b8c9d";
    const SK_D: &str = "7a6984e4cd1757cc7b3bc0ad811d3ae2b33d0aec048f1c8cb3b97d95eb7cd2d5";
    const SK_ER: &str = "8b484c59ca568696ab67a23cad24b8937e40296333c919bb93509ed52dc31a08";
    const SK_PR: &str = "96c22f8a3b9f37df2cca4e0ae83e882a7ccbd228ee9f8c21c51bb2b6b54f9e47";
    const CHILD_I_ENCR: &str =
        "ee956134d455bad02bb0046ec7c98f34f2fcc75a11ba92dcdf6bafa3758e9985dab6ef17";
    const CHILD_R_ENCR: &str =
        "c673bc199f999ff8c0ef8c5a607374acc4054b60aea5d464ee57d6a7da81bc24409f4754";
    const REKEY_SKEYSEED: &str = "44ba434d1e2b1b1206ed16f5982bd74dc2e5dd5c64ba6f72a7ec32dac38a3ba9";
}
