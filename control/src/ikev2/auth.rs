//! Pre-shared-key authentication (RFC 7296 2.15).
use crate::crypto::Prf;
use crate::ikev2::config::PeerConfig;
use crate::wire::ikev2::{Auth, AuthMethod, Identification};
use aws_lc_rs::constant_time;

/// RFC 7296 2.15: the key pad for shared-key authentication.
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>), where SignedOctets is
/// the sender's IKE_SA_INIT message | the peer's nonce | prf(SK_p, the sender's ID body).
pub fn psk_auth(
    prf: Prf,
    psk: &[u8],
    sa_init_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Vec<u8> {
    let maced_id = prf.compute(sk_p, &[id_body]);
    let key = prf.compute(psk, &[KEY_PAD]);
    prf.compute(&key, &[sa_init_message, peer_nonce, &maced_id])
        .to_vec()
}

pub fn verify_psk_auth(expected: &[u8], received: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(expected, received).is_ok()
}

/// What the peer sent in IKE_AUTH and what its AUTH covers (RFC 7296 2.15): its own IKE_SA_INIT
/// message, our nonce, and its SK_p (SK_pi from the initiator, SK_pr from the responder).
pub struct PeerProof<'a> {
    pub id: &'a Identification,
    pub auth: &'a Auth,
    pub peer_sa_init: &'a [u8],
    pub our_nonce: &'a [u8],
    pub peer_sk_p: &'a [u8],
}

/// The peer is who `peer` says it must be: the configured ID, shared-key authentication, and an
/// AUTH value computed from the pre-shared key.
pub fn peer_proves_psk(prf: Prf, peer: &PeerConfig, proof: &PeerProof<'_>) -> bool {
    let expected = psk_auth(
        prf,
        &peer.psk,
        proof.peer_sa_init,
        proof.our_nonce,
        proof.peer_sk_p,
        &proof.id.to_body(),
    );
    *proof.id == peer.remote_id
        && proof.auth.method == AuthMethod::SharedKeyMic
        && verify_psk_auth(&expected, &proof.auth.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cross-checked with an independent computation (Python's hmac) of the RFC 7296 2.15 formula.
    #[test]
    fn psk_auth_matches_an_independent_computation() {
        let auth = psk_auth(
            Prf::HmacSha256,
            b"secret",
            b"message one",
            &[7; 16],
            &[9; 32],
            &[2, 0, 0, 0, b'a'],
        );
        assert_eq!(auth, crate::crypto::hex(PSK_AUTH));
        assert!(verify_psk_auth(&auth, &auth));
        assert!(!verify_psk_auth(&auth, &auth[1..]));
    }

    const PSK_AUTH: &str = "f97848cb0cadca496e80e7ca7e0b8025c108e46c63cb070f5042465d214b9905";
}
