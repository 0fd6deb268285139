//! The multi-buffer lanes (`ipsec_mb::gcm_lanes`) against aws-lc-rs: bursts of 1 to 9 short
//! packets under keys of every size (so groups of four break where the number of rounds
//! changes), every payload length from 0 to 64 bytes, ESP's 8- and 12-byte AADs and ICV fields
//! of 1 to 16 bytes with guard bytes around them; and what they sealed opened by the library.
//!
//! On a CPU without AVX-512 VAES and VPCLMULQDQ there are no lanes (`GcmKey::short` is `None`):
//! the tests then check only that, and say so.

use aws_lc_rs::aead;
use ipsec_mb::gcm_lanes::{self, ShortGcmJob, MAX_SHORT_PAYLOAD};
use ipsec_mb::{Aad, GcmKey, Nonce, TAG_LEN};
use proptest::prelude::*;

mod common;
use common::aws_gcm;

/// Whether this CPU has the lanes' instructions; if not, asserts that no key offers them.
fn lanes_available(key: &GcmKey) -> bool {
    let cpu = gcm_lanes::available();
    assert_eq!(key.short().is_some(), cpu, "lanes offered exactly where the CPU has them");
    if !cpu {
        eprintln!("gcm_lanes: this CPU has no AVX-512 VAES/VPCLMULQDQ: only the fallback is checked");
    }
    cpu
}

/// One short packet: which key, its nonce, its AAD words (2 or 3: SPI, sequence number, and with
/// ESN its high half), its payload and the length of its ICV field.
#[derive(Debug, Clone)]
struct Packet {
    key: usize,
    nonce: [u8; 12],
    aad: Vec<[u8; 4]>,
    payload: Vec<u8>,
    icv_len: usize,
}

fn packet() -> impl Strategy<Value = Packet> {
    (
        0usize..3,
        any::<[u8; 12]>(),
        prop::collection::vec(any::<[u8; 4]>(), 2..=3),
        prop::collection::vec(any::<u8>(), 0..=MAX_SHORT_PAYLOAD),
        1usize..=TAG_LEN,
    )
        .prop_map(|(key, nonce, aad, payload, icv_len)| Packet { key, nonce, aad, payload, icv_len })
}

fn aad(words: &[[u8; 4]]) -> Aad<'static> {
    match words {
        [a, b] => Aad::words([*a, *b]),
        [a, b, c] => Aad::words([*a, *b, *c]),
        _ => unreachable!("the strategy makes 2 or 3 words"),
    }
}

const GUARD: u8 = 0xa5;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn lanes_match_aws_lc(
        seeds in any::<[[u8; 32]; 3]>(),
        key_lens in any::<[prop::sample::Index; 3]>(),
        packets in prop::collection::vec(packet(), 1..=9),
    ) {
        let raw: Vec<&[u8]> = seeds.iter().zip(&key_lens).map(|(s, i)| &s[..[16, 24, 32][i.index(3)]]).collect();
        let keys: Vec<GcmKey> = raw.iter().map(|k| GcmKey::new(k).unwrap()).collect();
        if !lanes_available(&keys[0]) {
            return Ok(());
        }

        // Each packet's buffer: guard, payload, ICV field, guard.
        let mut bufs: Vec<Vec<u8>> = packets.iter().map(|p| {
            let mut b = vec![GUARD; 1 + p.payload.len() + p.icv_len + 1];
            b[1..1 + p.payload.len()].copy_from_slice(&p.payload);
            b
        }).collect();
        let mut jobs: Vec<ShortGcmJob<'_>> = packets.iter().zip(bufs.iter_mut()).map(|(p, b)| {
            let (payload, icv) = b[1..1 + p.payload.len() + p.icv_len].split_at_mut(p.payload.len());
            ShortGcmJob::new(keys[p.key].short().unwrap(), Nonce::from(p.nonce), aad(&p.aad), payload, icv).unwrap()
        }).collect();
        gcm_lanes::seal(&mut jobs);
        drop(jobs);

        let mut expected_tags = Vec::new();
        for (p, b) in packets.iter().zip(&bufs) {
            let mut expected = p.payload.clone();
            let aad_bytes = p.aad.concat();
            let tag = aws_gcm(raw[p.key])
                .seal_in_place_separate_tag(aead::Nonce::assume_unique_for_key(p.nonce), aead::Aad::from(&aad_bytes), &mut expected)
                .unwrap();
            let n = p.payload.len();
            prop_assert_eq!(&b[1..1 + n], &expected[..]);
            prop_assert_eq!(&b[1 + n..1 + n + p.icv_len], &tag.as_ref()[..p.icv_len]);
            prop_assert_eq!((b[0], b[b.len() - 1]), (GUARD, GUARD));
            expected_tags.push(tag.as_ref().to_vec());
        }

        // And the library opens what the lanes sealed.
        for ((p, b), expected_tag) in packets.iter().zip(bufs.iter_mut()).zip(&expected_tags) {
            let payload = &mut b[1..1 + p.payload.len()];
            let tag = keys[p.key].open(Nonce::from(p.nonce), aad(&p.aad), payload);
            prop_assert_eq!(&payload[..], &p.payload[..]);
            prop_assert_eq!(&tag[..], &expected_tag[..]);
        }
    }
}

#[test]
fn jobs_the_lanes_cannot_take_are_refused() {
    let key = GcmKey::new(&[7; 32]).unwrap();
    if !lanes_available(&key) {
        return;
    }
    let short = key.short().unwrap();
    let mut long = [0u8; MAX_SHORT_PAYLOAD + 1];
    let mut icv = [0u8; 16];
    let nonce = Nonce::from([1; 12]);
    assert!(ShortGcmJob::new(short, nonce, Aad::words([[1; 4], [2; 4]]), &mut long, &mut icv).is_err());
    let mut payload = [0u8; 16];
    assert!(ShortGcmJob::new(short, nonce, Aad::bytes(&[1; 8]), &mut payload, &mut icv).is_err());
    assert!(ShortGcmJob::new(short, nonce, Aad::words([[1; 4], [2; 4]]), &mut payload, &mut []).is_err());
    let mut icv17 = [0u8; 17];
    assert!(ShortGcmJob::new(short, nonce, Aad::words([[1; 4], [2; 4]]), &mut payload, &mut icv17).is_err());
}
