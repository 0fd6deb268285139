//! IKEv2 message fragmentation (RFC 7383): negotiated with IKEV2_FRAGMENTATION_SUPPORTED in
//! IKE_SA_INIT; an encrypted message larger than the fragment size goes out as Encrypted
//! Fragment (SKF) payloads, each encrypted and integrity protected on its own; received
//! fragments are verified one by one and reassembled within limits.
use super::config::EngineConfig;
use crate::crypto::{CryptoError, Rng, SkCipher};
use crate::wire::ikev2::{
    self, parse_chain, EncryptedFragment, Header, Message, Notify, NotifyType, Payload,
    PayloadType, GENERIC_HEADER_LEN, HEADER_LEN,
};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// At most this many fragments in one message, and this many bytes of inner payloads
/// reassembled: far above any IKE_AUTH with a certificate chain, small enough that a peer cannot
/// make us hold much (RFC 7383 5).
pub const MAX_FRAGMENTS: u16 = 64;
pub const MAX_REASSEMBLED: usize = 64 * 1024;
/// The SKF payload's Fragment Number and Total Fragments fields.
const SKF_FIELDS_LEN: usize = 4;

/// The N(IKEV2_FRAGMENTATION_SUPPORTED) we send in IKE_SA_INIT when fragmentation is enabled
/// (RFC 7383 2.3).
pub fn announce(config: &EngineConfig) -> Option<Payload> {
    config
        .fragment_size
        .map(|_| Payload::Notify(Notify::new(NotifyType::Ikev2FragmentationSupported, vec![])))
}

/// The fragment size for an IKE SA whose peer sent `peer_payloads` in IKE_SA_INIT: ours when
/// both ends announced support (RFC 7383 2.3), none otherwise.
pub fn negotiated(config: &EngineConfig, peer_payloads: &[Payload]) -> Fragmentation {
    let peer_supports = peer_payloads.iter().any(
        |p| matches!(p, Payload::Notify(n) if n.kind == NotifyType::Ikev2FragmentationSupported),
    );
    Fragmentation {
        size: config.fragment_size.filter(|_| peer_supports),
        incoming: None,
    }
}

/// Fragmentation state of one IKE SA.
#[derive(Debug, Default)]
pub struct Fragmentation {
    /// Negotiated: outgoing encrypted messages longer than this many bytes are fragmented.
    pub size: Option<usize>,
    /// The fragments of the message being received.
    incoming: Option<Reassembly>,
}

#[derive(Debug)]
struct Reassembly {
    message_id: u32,
    response: bool,
    total: u16,
    /// The first inner payload's type, from fragment 1.
    first_inner: PayloadType,
    /// The decrypted inner bytes of each fragment received, by number.
    parts: BTreeMap<u16, Zeroizing<Vec<u8>>>,
    bytes: usize,
}

/// Why a fragment was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("fragmentation was not negotiated")]
    NotNegotiated,
    #[error("fragment {number}/{total} is over the limits")]
    TooLarge { number: u16, total: u16 },
    #[error("fragment of an older message")]
    Stale,
    #[error("fragment: {0}")]
    Crypto(#[from] CryptoError),
    #[error("reassembled message: {0}")]
    Malformed(#[from] ikev2::Error),
}

impl Fragmentation {
    /// The same negotiated size for the IKE SA that replaces this one (RFC 7383 2.3: the
    /// support is a property of the peers, and rekeying does not send IKE_SA_INIT).
    pub fn successor(&self) -> Fragmentation {
        Fragmentation {
            size: self.size,
            incoming: None,
        }
    }

    /// Verifies and decrypts one fragment of a received message (RFC 7383 2.6.2: before it is
    /// kept); returns the reassembled inner payloads once all fragments are in.
    pub fn receive(
        &mut self,
        inbound: &SkCipher,
        header: &Header,
        fragment: &EncryptedFragment,
        bytes: &[u8],
    ) -> Result<Option<Vec<Payload>>, FragmentError> {
        if self.size.is_none() {
            return Err(FragmentError::NotNegotiated);
        }
        let (number, total) = (fragment.number, fragment.total);
        if total > MAX_FRAGMENTS {
            return Err(FragmentError::TooLarge { number, total });
        }
        let plaintext = inbound.open(bytes, fragment.data.len())?;
        let response = header.flags.response();
        let current = self
            .incoming
            .as_ref()
            .filter(|r| r.message_id == header.message_id && r.response == response);
        match current {
            // RFC 7383 2.6.2: a retransmission in more (smaller) fragments replaces what we
            // have; one in fewer fragments is older than what we have.
            Some(r) if total < r.total => return Err(FragmentError::Stale),
            Some(r) if total == r.total => {}
            _ => {
                self.incoming = Some(Reassembly {
                    message_id: header.message_id,
                    response,
                    total,
                    first_inner: PayloadType::None,
                    parts: BTreeMap::new(),
                    bytes: 0,
                })
            }
        }
        let Some(reassembly) = self.incoming.as_mut() else {
            return Ok(None);
        };
        if reassembly.parts.contains_key(&number) {
            return Ok(None);
        }
        if reassembly.bytes + plaintext.len() > MAX_REASSEMBLED {
            self.incoming = None;
            return Err(FragmentError::TooLarge { number, total });
        }
        if number == 1 {
            reassembly.first_inner = fragment.first_inner;
        }
        reassembly.bytes += plaintext.len();
        reassembly.parts.insert(number, plaintext);
        if reassembly.parts.len() < usize::from(total) {
            return Ok(None);
        }
        let Some(done) = self.incoming.take() else {
            return Ok(None);
        };
        let mut whole = Zeroizing::new(Vec::with_capacity(done.bytes));
        for part in done.parts.values() {
            whole.extend_from_slice(part);
        }
        Ok(Some(parse_chain(done.first_inner, &whole)?))
    }
}

/// Splits the inner payloads `plaintext` of a message with `header` into SKF fragments of at
/// most `size` bytes each (RFC 7383 2.5), each sealed with `outbound`.
pub fn seal_fragments(
    outbound: &mut SkCipher,
    header: Header,
    first_inner: PayloadType,
    plaintext: &[u8],
    size: usize,
    rng: &mut dyn Rng,
) -> Result<Vec<Vec<u8>>, ikev2::Error> {
    let fixed = HEADER_LEN + GENERIC_HEADER_LEN + SKF_FIELDS_LEN;
    // The largest chunk of inner bytes whose sealed fragment fits.
    let mut chunk = size.saturating_sub(fixed);
    while chunk > 0 && fixed + outbound.sealed_len(chunk) > size {
        chunk -= 1;
    }
    if chunk == 0 {
        return Err(ikev2::Error::BadLength("fragment size"));
    }
    let total = plaintext.len().div_ceil(chunk);
    let total = u16::try_from(total)
        .ok()
        .filter(|t| *t <= MAX_FRAGMENTS)
        .ok_or(ikev2::Error::BadLength("message to fragment"))?;
    let mut datagrams = Vec::with_capacity(usize::from(total));
    for (index, part) in plaintext.chunks(chunk).enumerate() {
        let number = index as u16 + 1;
        let message = Message {
            header,
            payloads: vec![Payload::EncryptedFragment(EncryptedFragment {
                // RFC 7383 2.5: only the first fragment names the first inner payload.
                first_inner: if number == 1 {
                    first_inner
                } else {
                    PayloadType::None
                },
                number,
                total,
                data: vec![0u8; outbound.sealed_len(part.len())],
            })],
        };
        let mut bytes = message.to_bytes()?;
        outbound
            .seal(&mut bytes, part, rng)
            .map_err(|_| ikev2::Error::Invalid("fragment to seal"))?;
        datagrams.push(bytes);
    }
    Ok(datagrams)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Integ, SeededRng, SkEncryption};
    use crate::wire::ikev2::{ExchangeType, Flags, IKEV2_VERSION};

    fn ciphers() -> (SkCipher, SkCipher) {
        let make = || {
            SkCipher::new(
                SkEncryption::AesCbc(16),
                &[3; 16],
                Some((Integ::HmacSha256_128, &[5; 32])),
            )
            .unwrap()
        };
        (make(), make())
    }

    fn header(message_id: u32) -> Header {
        Header {
            spi_i: 1,
            spi_r: 2,
            next_payload: PayloadType::None,
            version: IKEV2_VERSION,
            exchange: ExchangeType::IkeAuth,
            flags: Flags::new(true, false),
            message_id,
            length: 0,
        }
    }

    /// About `len` bytes of inner payloads: Vendor ID payloads of up to 1000 bytes.
    fn inner(len: usize) -> (Vec<u8>, Vec<Payload>) {
        let payloads: Vec<Payload> = (0..len.div_ceil(1000))
            .map(|i| Payload::VendorId(vec![i as u8; (len - i * 1000).min(1000) - 4]))
            .collect();
        let mut bytes = Vec::new();
        crate::wire::ikev2::emit_chain(&payloads, &mut bytes).unwrap();
        (bytes, payloads)
    }

    fn fragments(
        sender: &mut SkCipher,
        message_id: u32,
        len: usize,
        size: usize,
    ) -> Vec<(Header, EncryptedFragment, Vec<u8>)> {
        let (plaintext, _) = inner(len);
        let mut rng = SeededRng::new(9);
        seal_fragments(
            sender,
            header(message_id),
            PayloadType::VendorId,
            &plaintext,
            size,
            &mut rng,
        )
        .unwrap()
        .into_iter()
        .map(|bytes| {
            assert!(bytes.len() <= size);
            let message = Message::parse(&bytes).unwrap();
            let Some(Payload::EncryptedFragment(f)) = message.payloads.last().cloned() else {
                panic!("not an SKF message");
            };
            (message.header, f, bytes)
        })
        .collect()
    }

    fn negotiated_state() -> Fragmentation {
        Fragmentation {
            size: Some(300),
            incoming: None,
        }
    }

    #[test]
    fn fragments_in_any_order_with_duplicates_reassemble_once() {
        let (mut sender, receiver) = ciphers();
        let parts = fragments(&mut sender, 1, 1000, 300);
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[0].1.first_inner, PayloadType::VendorId);
        assert!(parts[1..]
            .iter()
            .all(|p| p.1.first_inner == PayloadType::None));
        let mut state = negotiated_state();
        let order = [4, 2, 2, 0, 3, 0];
        for index in order {
            let (h, f, b) = &parts[index];
            assert_eq!(state.receive(&receiver, h, f, b), Ok(None));
        }
        let (h, f, b) = &parts[1];
        assert_eq!(state.receive(&receiver, h, f, b), Ok(Some(inner(1000).1)));
        // A late duplicate starts nothing that completes.
        let (h, f, b) = &parts[3];
        assert_eq!(state.receive(&receiver, h, f, b), Ok(None));
    }

    #[test]
    fn a_tampered_fragment_is_refused_before_it_is_kept() {
        let (mut sender, receiver) = ciphers();
        let parts = fragments(&mut sender, 1, 500, 300);
        let mut state = negotiated_state();
        let (h, f, b) = &parts[0];
        let mut bad = b.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            state.receive(&receiver, h, f, &bad),
            Err(FragmentError::Crypto(_))
        ));
        for (h, f, b) in &parts[1..] {
            assert_eq!(state.receive(&receiver, h, f, b), Ok(None));
        }
        // The genuine first fragment completes the message.
        assert_eq!(state.receive(&receiver, h, f, b), Ok(Some(inner(500).1)));
    }

    #[test]
    fn a_retransmission_in_more_fragments_replaces_one_in_fewer() {
        let (mut sender, receiver) = ciphers();
        let large = fragments(&mut sender, 1, 800, 600);
        let small = fragments(&mut sender, 1, 800, 300);
        assert!(small.len() > large.len());
        let mut state = negotiated_state();
        let (h, f, b) = &large[0];
        assert_eq!(state.receive(&receiver, h, f, b), Ok(None));
        let (h, f, b) = &small[0];
        assert_eq!(state.receive(&receiver, h, f, b), Ok(None));
        // A fragment of the older, coarser sending is stale now.
        let (h, f, b) = &large[1];
        assert_eq!(state.receive(&receiver, h, f, b), Err(FragmentError::Stale));
        let mut result = Ok(None);
        for (h, f, b) in &small[1..] {
            result = state.receive(&receiver, h, f, b);
        }
        assert_eq!(result, Ok(Some(inner(800).1)));
    }

    #[test]
    fn limits_and_negotiation_are_enforced() {
        let (mut sender, receiver) = ciphers();
        let parts = fragments(&mut sender, 1, 500, 300);
        let (h, f, b) = &parts[0];
        let mut not_negotiated = Fragmentation::default();
        assert_eq!(
            not_negotiated.receive(&receiver, h, f, b),
            Err(FragmentError::NotNegotiated)
        );
        let mut too_many = f.clone();
        too_many.total = MAX_FRAGMENTS + 1;
        assert!(matches!(
            negotiated_state().receive(&receiver, h, &too_many, b),
            Err(FragmentError::TooLarge { .. })
        ));
        // More than MAX_FRAGMENTS fragments are not sent either.
        let (plaintext, _) = inner(MAX_REASSEMBLED);
        assert!(seal_fragments(
            &mut sender,
            header(2),
            PayloadType::VendorId,
            &plaintext,
            300,
            &mut SeededRng::new(1)
        )
        .is_err());
        // The reassembled total is bounded: 84 000 bytes in 57 fragments are refused.
        let big = fragments(&mut sender, 3, 84_000, 1500);
        assert!(big.len() <= usize::from(MAX_FRAGMENTS));
        let mut state = negotiated_state();
        let results: Vec<_> = big
            .iter()
            .map(|(h, f, b)| state.receive(&receiver, h, f, b))
            .collect();
        assert!(results
            .iter()
            .any(|r| matches!(r, Err(FragmentError::TooLarge { .. }))));
        assert!(!results.iter().any(|r| matches!(r, Ok(Some(_)))));
    }
}
