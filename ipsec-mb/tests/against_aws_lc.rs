//! The library against an independent implementation (aws-lc-rs) on random keys, nonces, AADs
//! and lengths: AES-GCM seal and open, HMAC-SHA1/SHA-256 (RFC 2104, keys longer than a block
//! included) alone and chained with AES-CBC decryption, and the tag checks a receiver relies on.

use aws_lc_rs::{aead, cipher, hmac};
use ipsec_mb::{encrypt_then_mac_burst, mac_then_decrypt_burst, Aad, BurstJob, CbcHmacKey, GcmKey, Hmac, Layout, Nonce};
use proptest::prelude::*;

mod common;
use common::aws_gcm;

/// One job per buffer, each with its key: the IV after the header, the cipher after the IV, the
/// hash over the whole buffer (as in ESP).
fn burst_jobs<'a>(keys: &'a [(CbcHmacKey, usize, usize)], bufs: &'a mut [Vec<u8>]) -> Vec<BurstJob<'a>> {
    keys.iter()
        .zip(bufs.iter_mut())
        .map(|((key, header, _), buf)| {
            let layout = Layout { iv_at: *header, cipher: header + 16..buf.len(), hash: 0..buf.len() };
            BurstJob { key, buf, layout, tag: [0; 32] }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn gcm_matches_aws_lc(
        key_len in prop::sample::select(vec![16usize, 24, 32]),
        seed in any::<[u8; 32]>(),
        nonce in any::<[u8; 12]>(),
        aad in prop::collection::vec(any::<u8>(), 0..40),
        plain in prop::collection::vec(any::<u8>(), 0..1600),
    ) {
        let key = &seed[..key_len];
        let ours = GcmKey::new(key).unwrap();
        let mut data = plain.clone();
        let tag = ours.seal(Nonce::from(nonce), Aad::bytes(&aad), &mut data);

        let mut expected = plain.clone();
        let expected_tag = aws_gcm(key)
            .seal_in_place_separate_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(&aad), &mut expected)
            .unwrap();
        prop_assert_eq!(&data, &expected);
        prop_assert_eq!(&tag[..], expected_tag.as_ref());

        let opened_tag = ours.open(Nonce::from(nonce), Aad::bytes(&aad), &mut data);
        prop_assert_eq!(&data, &plain);
        prop_assert_eq!(opened_tag, tag);
    }

    /// `seal_into` writes exactly the leftmost bytes of the full tag into a tag field of any length
    /// the library can write (ESP's truncated ICVs among them), the same ciphertext as `seal`,
    /// and not a byte around it.
    #[test]
    fn seal_into_writes_the_leftmost_tag_bytes_in_place(
        tag_len in 1usize..=16,
        nonce in any::<[u8; 12]>(),
        plain in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let key = GcmKey::new(&[7; 32]).unwrap();
        let mut data = plain.clone();
        let full = key.seal(Nonce::from(nonce), Aad::bytes(b"esp"), &mut data);
        // The payload, then the tag field, then a guard byte, as in a packet.
        let mut packet = plain.clone();
        packet.extend_from_slice(&[0xa5; 17]);
        let (payload, rest) = packet.split_at_mut(plain.len());
        key.seal_into(Nonce::from(nonce), Aad::bytes(b"esp"), payload, &mut rest[..tag_len]).unwrap();
        prop_assert_eq!(&packet[..plain.len()], &data[..]);
        prop_assert_eq!(&packet[plain.len()..plain.len() + tag_len], &full[..tag_len]);
        prop_assert!(packet[plain.len() + tag_len..].iter().all(|&b| b == 0xa5));
    }

    /// The nonce and AAD given as values (ESP's way) authenticate the same bytes as given in memory.
    #[test]
    fn values_match_bytes(
        salt in any::<[u8; 4]>(),
        iv in any::<[u8; 8]>(),
        words in any::<[[u8; 4]; 4]>(),
        plain in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        let key = GcmKey::new(&[9; 32]).unwrap();
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&salt);
        nonce[4..].copy_from_slice(&iv);
        let seal = |n: Nonce, aad: Aad<'_>| {
            let mut data = plain.clone();
            let tag = key.seal(n, aad, &mut data);
            (data, tag)
        };
        let [a, b, c, d] = words;
        let bytes = words.concat();
        let by_value = [
            seal(Nonce::new(salt, iv), Aad::words([])),
            seal(Nonce::new(salt, iv), Aad::words([a, b])),
            seal(Nonce::new(salt, iv), Aad::words([a, b, c])),
            seal(Nonce::new(salt, iv), Aad::words([a, b, c, d])),
        ];
        for (sealed, len) in by_value.iter().zip([0, 8, 12, 16]) {
            prop_assert_eq!(sealed, &seal(Nonce::from(nonce), Aad::bytes(&bytes[..len])));
        }
    }

    #[test]
    fn cbc_hmac_matches_aws_lc(
        sha256 in any::<bool>(),
        full_tag in any::<bool>(),
        aes256 in any::<bool>(),
        seed in any::<[u8; 32]>(),
        mac_key in prop::collection::vec(any::<u8>(), 1..100),
        iv in any::<[u8; 16]>(),
        header in prop::collection::vec(any::<u8>(), 0..24),
        blocks in 1usize..90,
        seed_plain in any::<u8>(),
    ) {
        let cipher_key = if aes256 { &seed[..] } else { &seed[..16] };
        let (hmac_alg, aws_alg, tag_len) = match (sha256, full_tag) {
            (false, false) => (Hmac::Sha1, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, 12),
            (false, true) => (Hmac::Sha1, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, 20),
            (true, false) => (Hmac::Sha256, hmac::HMAC_SHA256, 16),
            (true, true) => (Hmac::Sha256, hmac::HMAC_SHA256, 32),
        };
        let key = CbcHmacKey::new(cipher_key, hmac_alg, &mac_key, tag_len).unwrap();
        let plain: Vec<u8> = (0..blocks * 16).map(|i| (i as u8).wrapping_mul(seed_plain)).collect();
        let aes = if aes256 { &cipher::AES_256 } else { &cipher::AES_128 };
        let enc = cipher::EncryptingKey::cbc(cipher::UnboundCipherKey::new(aes, cipher_key).unwrap()).unwrap();
        let mut ciphertext = plain.clone();
        enc.less_safe_encrypt(&mut ciphertext, cipher::EncryptionContext::Iv128(iv.into())).unwrap();
        let mut buf = [&header[..], &iv, &ciphertext].concat();
        let layout = Layout { iv_at: header.len(), cipher: header.len() + 16..buf.len(), hash: 0..buf.len() };
        let tag = key.mac(&buf, layout.hash.clone()).unwrap();
        let expected_tag = hmac::sign(&hmac::Key::new(aws_alg, &mac_key), &buf);
        prop_assert_eq!(&tag[..tag_len], &expected_tag.as_ref()[..tag_len]);

        let check = key.mac_then_decrypt(&mut buf, &layout).unwrap();
        prop_assert_eq!(&check[..tag_len], &tag[..tag_len]);
        prop_assert_eq!(&buf[header.len() + 16..], &plain[..]);
    }

    /// Bursts of 1 to 40 packets (fewer than, as many as and more than the lanes), each with its
    /// own key, IV and length: CBC encryption then HMAC, as aws-lc-rs computes them one by one;
    /// and back, HMAC then CBC decryption, to the same tags and the plaintext.
    #[test]
    fn cbc_hmac_bursts_match_aws_lc(
        packets in prop::collection::vec(
            (any::<bool>(), any::<bool>(), any::<[u8; 32]>(), any::<[u8; 16]>(), 0usize..24, 1usize..90, any::<u8>()),
            1..40,
        ),
    ) {
        let mut keys = Vec::new();
        let mut bufs = Vec::new();
        let mut expected = Vec::new();
        for (sha256, aes256, seed, iv, header, blocks, fill) in &packets {
            let cipher_key = if *aes256 { &seed[..] } else { &seed[..16] };
            let (hmac_alg, aws_alg, tag_len) = if *sha256 { (Hmac::Sha256, hmac::HMAC_SHA256, 16) } else { (Hmac::Sha1, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, 12) };
            let mac_key = &seed[..20];
            keys.push((CbcHmacKey::new(cipher_key, hmac_alg, mac_key, tag_len).unwrap(), *header, tag_len));
            let mut buf: Vec<u8> = (0..header + 16 + blocks * 16).map(|i| (i as u8).wrapping_mul(*fill)).collect();
            buf[*header..header + 16].copy_from_slice(iv);
            let aes = if *aes256 { &cipher::AES_256 } else { &cipher::AES_128 };
            let enc = cipher::EncryptingKey::cbc(cipher::UnboundCipherKey::new(aes, cipher_key).unwrap()).unwrap();
            let mut sealed = buf.clone();
            enc.less_safe_encrypt(&mut sealed[header + 16..], cipher::EncryptionContext::Iv128((*iv).into())).unwrap();
            let tag = hmac::sign(&hmac::Key::new(aws_alg, mac_key), &sealed);
            expected.push((sealed, tag.as_ref()[..tag_len].to_vec()));
            bufs.push(buf);
        }
        let plain = bufs.clone();
        let mut sealing = burst_jobs(&keys, &mut bufs);
        encrypt_then_mac_burst(&mut sealing).unwrap();
        for (job, (sealed, tag)) in sealing.iter().zip(&expected) {
            prop_assert_eq!(&job.buf[..], &sealed[..]);
            prop_assert_eq!(&job.tag[..tag.len()], &tag[..]);
        }
        let mut opening = burst_jobs(&keys, &mut bufs);
        mac_then_decrypt_burst(&mut opening).unwrap();
        for ((job, (_, tag)), plain) in opening.iter().zip(&expected).zip(&plain) {
            prop_assert_eq!(&job.tag[..tag.len()], &tag[..]);
            prop_assert_eq!(&job.buf[..], &plain[..]);
        }
    }
}

#[test]
fn bad_keys_and_layouts_are_errors() {
    assert!(GcmKey::new(&[0; 20]).is_err());
    assert!(CbcHmacKey::new(&[0; 20], Hmac::Sha1, &[0; 20], 12).is_err());
    assert!(CbcHmacKey::new(&[0; 16], Hmac::Sha1, &[0; 20], 16).is_err());
    let key = CbcHmacKey::new(&[0; 16], Hmac::Sha256, &[0; 32], 16).unwrap();
    let mut buf = [0u8; 56];
    // Not whole blocks, past the end, the IV in the cipher range or past the end.
    assert!(key.mac_then_decrypt(&mut buf, &Layout { iv_at: 8, cipher: 24..54, hash: 0..54 }).is_err());
    assert!(key.mac_then_decrypt(&mut buf, &Layout { iv_at: 8, cipher: 24..56, hash: 0..57 }).is_err());
    assert!(key.mac_then_decrypt(&mut buf, &Layout { iv_at: 16, cipher: 24..56, hash: 0..56 }).is_err());
    assert!(key.mac_then_decrypt(&mut buf, &Layout { iv_at: usize::MAX - 8, cipher: 24..56, hash: 0..56 }).is_err());
    assert!(key.mac(&buf, 0..57).is_err());
    assert!(key.mac_then_decrypt(&mut buf, &Layout { iv_at: 8, cipher: 24..56, hash: 0..56 }).is_ok());
    // A burst with one bad layout is refused whole, before anything is encrypted.
    let (mut first, mut second) = ([0u8; 56], [0u8; 56]);
    let good = BurstJob { key: &key, buf: &mut first, layout: Layout { iv_at: 8, cipher: 24..56, hash: 0..56 }, tag: [0; 32] };
    let bad = BurstJob { key: &key, buf: &mut second, layout: Layout { iv_at: 8, cipher: 24..54, hash: 0..54 }, tag: [0; 32] };
    assert!(encrypt_then_mac_burst(&mut [good, bad]).is_err());
    assert_eq!(first, [0u8; 56]);
    // Bursts skip the library's own checks: nothing to cipher or nothing to hash is refused here.
    for layout in [Layout { iv_at: 8, cipher: 24..24, hash: 0..56 }, Layout { iv_at: 8, cipher: 24..56, hash: 8..8 }] {
        assert!(encrypt_then_mac_burst(&mut [BurstJob { key: &key, buf: &mut first, layout, tag: [0; 32] }]).is_err());
    }
    assert_eq!(first, [0u8; 56]);
}

#[test]
fn a_modified_ciphertext_gives_a_different_tag() {
    let key = GcmKey::new(&[7; 32]).unwrap();
    let mut data = *b"sixteen byte msg";
    let tag = key.seal(Nonce::from([1; 12]), Aad::bytes(b"aad"), &mut data);
    data[3] ^= 1;
    assert_ne!(key.open(Nonce::from([1; 12]), Aad::bytes(b"aad"), &mut data), tag);
}

#[test]
fn seal_into_refuses_a_tag_field_the_library_cannot_fill() {
    let key = GcmKey::new(&[7; 16]).unwrap();
    let mut data = [1u8; 32];
    for len in [0, 17] {
        let mut tag = vec![0u8; len];
        assert_eq!(key.seal_into(Nonce::from([0; 12]), Aad::bytes(b""), &mut data, &mut tag), Err(ipsec_mb::Error::Layout));
        assert_eq!(data, [1u8; 32], "refused before anything is encrypted");
    }
}
