//! Authentication in IKE_AUTH (RFC 7296 2.15): pre-shared keys, and signatures with X.509
//! certificates (RFC 7296 3.6-3.8, RFC 4754, RFC 7427).
use crate::crypto::Prf;
use crate::ikev2::certificate;
use crate::ikev2::config::PeerConfig;
use crate::ikev2::error::Failure;
use crate::ikev2::signature::{self, HashAlgorithm};
use crate::wire::ikev2::{
    Auth, AuthMethod, Cert, CertReq, Identification, Message, Notify, NotifyType, Payload,
};
use aws_lc_rs::constant_time;

/// RFC 7296 2.15: the key pad for shared-key authentication.
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// What an AUTH payload covers (RFC 7296 2.15): the sender's IKE_SA_INIT message | the peer's
/// nonce | prf(SK_p, the sender's ID body).
fn signed_octets(
    prf: Prf,
    sa_init_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Vec<u8> {
    let maced_id = prf.compute(sk_p, &[id_body]);
    [sa_init_message, peer_nonce, maced_id.as_ref()].concat()
}

/// AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>).
pub fn psk_auth(
    prf: Prf,
    psk: &[u8],
    sa_init_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Vec<u8> {
    let octets = signed_octets(prf, sa_init_message, peer_nonce, sk_p, id_body);
    let key = prf.compute(psk, &[KEY_PAD]);
    prf.compute(&key, &[&octets]).to_vec()
}

pub fn verify_psk_auth(expected: &[u8], received: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(expected, received).is_ok()
}

/// What IKE_SA_INIT carries for certificate authentication: N(SIGNATURE_HASH_ALGORITHMS)
/// (RFC 7427 4) and, from the responder, CERTREQ naming our CAs (RFC 7296 1.2, 3.7).
pub fn sa_init_payloads(peer: &PeerConfig, responder: bool) -> Vec<Payload> {
    let Some(credentials) = &peer.pubkey else {
        return Vec::new();
    };
    let mut payloads = Vec::new();
    if responder {
        payloads.push(Payload::CertReq(credentials.cert_request()));
    }
    payloads.push(Payload::Notify(Notify::new(
        NotifyType::SignatureHashAlgorithms,
        HashAlgorithm::notify_data(),
    )));
    payloads
}

/// What we sign and who we are: our IKE_SA_INIT message, the peer's nonce, our SK_p (SK_pi as
/// initiator, SK_pr as responder) and our ID.
pub struct OurProof<'a> {
    pub id: &'a Identification,
    pub our_sa_init: &'a [u8],
    pub peer_nonce: &'a [u8],
    pub our_sk_p: &'a [u8],
}

/// What the peer announced in its IKE_SA_INIT message: the hashes it verifies RFC 7427
/// signatures with, and whether it asked for our certificate.
pub struct PeerAnnouncements {
    pub hashes: Vec<HashAlgorithm>,
    pub cert_requested: bool,
}

impl PeerAnnouncements {
    pub fn of(peer_sa_init: &[u8], inner: &[Payload]) -> PeerAnnouncements {
        let init = Message::parse(peer_sa_init)
            .map(|m| m.payloads)
            .unwrap_or_default();
        let hashes = init
            .iter()
            .find_map(|p| match p {
                Payload::Notify(n) if n.kind == NotifyType::SignatureHashAlgorithms => {
                    Some(HashAlgorithm::parse_notify(&n.data))
                }
                _ => None,
            })
            .unwrap_or_default();
        let certreqs: Vec<&CertReq> = init
            .iter()
            .chain(inner)
            .filter_map(|p| match p {
                Payload::CertReq(r) => Some(r),
                _ => None,
            })
            .collect();
        PeerAnnouncements {
            hashes,
            cert_requested: certificate::requested(&certreqs),
        }
    }
}

/// Our AUTH payload for `peer`, preceded by our CERT payloads when the peer asked for them
/// (RFC 7296 3.7).
pub fn our_auth(
    prf: Prf,
    peer: &PeerConfig,
    ours: &OurProof<'_>,
    announced: &PeerAnnouncements,
) -> Result<Vec<Payload>, Failure> {
    let Some(credentials) = &peer.pubkey else {
        return Ok(vec![Payload::Auth(Auth {
            method: AuthMethod::SharedKeyMic,
            data: psk_auth(
                prf,
                &peer.psk,
                ours.our_sa_init,
                ours.peer_nonce,
                ours.our_sk_p,
                &ours.id.to_body(),
            ),
        })]);
    };
    let octets = signed_octets(
        prf,
        ours.our_sa_init,
        ours.peer_nonce,
        ours.our_sk_p,
        &ours.id.to_body(),
    );
    let auth = credentials
        .key
        .sign(&announced.hashes, credentials.rsa_padding, &octets)
        .map_err(certificate::CertError::from)?;
    let mut payloads = Vec::new();
    if announced.cert_requested {
        payloads.extend(credentials.cert_payloads().into_iter().map(Payload::Cert));
    }
    payloads.push(Payload::Auth(auth));
    Ok(payloads)
}

/// What the peer sent in IKE_AUTH and what its AUTH covers (RFC 7296 2.15): its own IKE_SA_INIT
/// message, our nonce, and its SK_p (SK_pi from the initiator, SK_pr from the responder).
pub struct PeerProof<'a> {
    pub id: &'a Identification,
    pub auth: &'a Auth,
    pub certs: Vec<&'a Cert>,
    pub peer_sa_init: &'a [u8],
    pub our_nonce: &'a [u8],
    pub peer_sk_p: &'a [u8],
}

impl<'a> PeerProof<'a> {
    /// The CERT payloads among the IKE_AUTH payloads.
    pub fn certs_of(inner: &'a [Payload]) -> Vec<&'a Cert> {
        inner
            .iter()
            .filter_map(|p| match p {
                Payload::Cert(c) => Some(c),
                _ => None,
            })
            .collect()
    }
}

/// The peer is who `peer` says it must be: the configured ID, and an AUTH value computed from
/// the pre-shared key, or a signature by the key of a certificate that chains to one of our
/// CAs, is valid at `unix_now` and names the ID.
pub fn peer_proves(
    prf: Prf,
    peer: &PeerConfig,
    proof: &PeerProof<'_>,
    unix_now: i64,
) -> Result<(), Failure> {
    if *proof.id != peer.remote_id {
        return Err(Failure::AuthenticationFailed);
    }
    let Some(credentials) = &peer.pubkey else {
        let expected = psk_auth(
            prf,
            &peer.psk,
            proof.peer_sa_init,
            proof.our_nonce,
            proof.peer_sk_p,
            &proof.id.to_body(),
        );
        return match proof.auth.method == AuthMethod::SharedKeyMic
            && verify_psk_auth(&expected, &proof.auth.data)
        {
            true => Ok(()),
            false => Err(Failure::AuthenticationFailed),
        };
    };
    let octets = signed_octets(
        prf,
        proof.peer_sa_init,
        proof.our_nonce,
        proof.peer_sk_p,
        &proof.id.to_body(),
    );
    certificate::authenticate_peer(
        &credentials.trust_anchors,
        &credentials.crls,
        &proof.certs,
        proof.id,
        unix_now,
        |cert| Ok(signature::verify(cert.public_key(), proof.auth, &octets)?),
    )?;
    Ok(())
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
