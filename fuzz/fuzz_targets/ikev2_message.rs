//! IKEv2 message parsing on arbitrary bytes: never a panic, and whatever parses re-emits to bytes
//! that parse to the same payloads. The CERT and AUTH payloads found go through certificate
//! validation and signature checking as IKE_AUTH would take them (RFC 7296 2.15, 3.6, 3.8,
//! RFC 7427), with the last certificate standing as trust anchor so that chains can verify and
//! every one as a CRL (RFC 5280 5).
#![no_main]

use control::ikev2::{certificate, signature};
use control::wire::ikev2::{
    parse_chain, Cert, IdType, Identification, Message, Payload, PayloadType,
};
use libfuzzer_sys::fuzz_target;

/// A time inside the validity of most certificates.
const NOW: i64 = 1_700_000_000;

fn authenticate(payloads: &[Payload], signed: &[u8]) {
    let certs: Vec<&Cert> = payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Cert(c) => Some(c),
            _ => None,
        })
        .collect();
    let anchors: Vec<Vec<u8>> = certs.last().map(|c| c.data.clone()).into_iter().collect();
    // Every certificate's bytes also stand as a CRL, so that the CRL parser sees them too.
    let crls: Vec<Vec<u8>> = certs.iter().map(|c| c.data.clone()).collect();
    let default_id = Identification {
        kind: IdType::Fqdn,
        data: b"peer.example".to_vec(),
    };
    let id = payloads
        .iter()
        .find_map(|p| match p {
            Payload::IdI(id) | Payload::IdR(id) => Some(id),
            _ => None,
        })
        .unwrap_or(&default_id);
    for auth in payloads.iter().filter_map(|p| match p {
        Payload::Auth(a) => Some(a),
        _ => None,
    }) {
        let _ = certificate::authenticate_peer(&anchors, &crls, &certs, id, NOW, |cert| {
            Ok(signature::verify(cert.public_key(), auth, signed)?)
        });
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::parse(data) {
        let bytes = message.to_bytes().expect("a parsed message fits its length fields");
        let again = Message::parse(&bytes).expect("re-emitted message parses");
        assert_eq!(again.payloads, message.payloads);
        authenticate(&message.payloads, data);
    }
    // The decrypted contents of an SK payload (or of reassembled SKF fragments) start at any
    // payload type.
    if let Some((&first, rest)) = data.split_first() {
        if let Ok(payloads) = parse_chain(PayloadType::from(first), rest) {
            authenticate(&payloads, data);
        }
    }
});
