//! ESP core benchmark: ns per packet and Gbit/s on one core for each suite and direction at
//! 64..1420 bytes and IMIX, next to the raw AEAD / cipher+HMAC call on the same buffer sizes in the
//! same run, so ESP overhead shows as a ratio. `--crypto` adds the crypto crate comparison that
//! chose aws-lc-rs (docs/crypto-choice.md). `--quick` for a CI smoke run.
//!
//! Packet sizes are inner IPv4 packet sizes; ESP is tunnel mode IPv4 in IPv4. Both the ESP and the
//! raw measurement copy the input into the work buffer each iteration (decryption works in place).

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::{aead, cipher, hmac};
use ipsec_mb::{Aad, CbcHmacKey, GcmKey, Hmac, Layout, Nonce};
use dataplane::esp::decrypt::inbound;
use dataplane::{encapsulate, InboundSa, OutboundSa, PacketBuf, SliceBuf};
use shared::sa::*;
use bench::{esp_sa, ipv4_udp};

const SIZES: [usize; 6] = [64, 128, 256, 512, 1024, 1420];
/// Simple IMIX by packet count 7:4:1 (64, 576, 1420-byte IP packets).
const IMIX: [usize; 12] = [64, 64, 64, 64, 64, 64, 64, 576, 576, 576, 576, 1420];

/// Best of three runs of `f` over `packets` (cycled), in ns per packet.
fn measure(budget: Duration, packets: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < budget {
            for _ in 0..256 {
                f(n % packets);
                n += 1;
            }
        }
        best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
    }
    best
}

/// The raw crypto of a suite on a payload of `len` bytes (what ESP encrypts): the calls the ESP
/// transform makes (intel-ipsec-mb; aws-lc-rs for CBC encryption), keys set up once.
enum Raw {
    Aead(GcmKey),
    Gmac(GcmKey),
    CbcHmac(cipher::EncryptingKey, CbcHmacKey),
}

impl Raw {
    fn new(suite: Suite) -> Raw {
        let k = vec![7u8; 32];
        match suite {
            Suite::AesGcm { key, .. } => Raw::Aead(GcmKey::new(&k[..key.bytes()]).unwrap()),
            Suite::AesGmac { key } => Raw::Gmac(GcmKey::new(&k[..key.bytes()]).unwrap()),
            Suite::AesCbc { key, integrity } => {
                let mac = if integrity == Integrity::HmacSha1_96 { Hmac::Sha1 } else { Hmac::Sha256 };
                let alg = if key == AesKeySize::Aes128 { &cipher::AES_128 } else { &cipher::AES_256 };
                let encrypt = cipher::EncryptingKey::cbc(cipher::UnboundCipherKey::new(alg, &k[..key.bytes()]).unwrap()).unwrap();
                Raw::CbcHmac(encrypt, CbcHmacKey::new(&k[..key.bytes()], mac, &k, integrity.icv_len()).unwrap())
            }
        }
    }

    /// Encrypt (or, with `decrypt`, verify+decrypt) `buf[..len]`, the tag going after it.
    fn run(&self, buf: &mut [u8], len: usize, seq: u64, decrypt: bool) {
        let nonce = Nonce::new([0; 4], seq.to_be_bytes());
        match self {
            Raw::Aead(k) if !decrypt => {
                let t = k.seal(nonce, Aad::words([[0; 4]; 2]), &mut buf[..len]);
                buf[len..len + 16].copy_from_slice(&t);
            }
            Raw::Aead(k) => {
                black_box(k.open(nonce, Aad::words([[0; 4]; 2]), &mut buf[..len]));
            }
            Raw::Gmac(k) => {
                black_box(k.seal(nonce, Aad::bytes(&buf[..len + 16]), &mut []));
            }
            Raw::CbcHmac(e, k) => {
                let len = len / 16 * 16;
                let layout = Layout { iv_at: 8, cipher: 24..24 + len, hash: 0..24 + len };
                let t = if decrypt {
                    k.mac_then_decrypt(buf, &layout).unwrap()
                } else {
                    e.less_safe_encrypt(&mut buf[24..24 + len], cipher::EncryptionContext::Iv128([1u8; 16].into())).unwrap();
                    k.mac(buf, layout.hash).unwrap()
                };
                let icv = k.tag_len();
                buf[len + 24..len + 24 + icv].copy_from_slice(&t[..icv]);
            }
        }
    }
}

fn esp_payload_len(suite: Suite, inner: usize) -> usize {
    let align = if matches!(suite, Suite::AesCbc { .. }) { 16 } else { 4 };
    inner + dataplane::wire::esp::pad_len(inner, align) + 2
}

fn label(s: Suite) -> String {
    match s {
        Suite::AesGcm { key, .. } => format!("AES-GCM-{}", key.bytes() * 8),
        Suite::AesCbc { key, integrity } => format!("AES-CBC-{}+{}", key.bytes() * 8, if integrity == Integrity::HmacSha1_96 { "SHA1" } else { "SHA256" }),
        Suite::AesGmac { key } => format!("AES-GMAC-{}", key.bytes() * 8),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 5 } else { 100 });
    let suites = [
        Suite::AesGcm { key: AesKeySize::Aes128, icv_len: 16 },
        Suite::AesGcm { key: AesKeySize::Aes256, icv_len: 16 },
        Suite::AesCbc { key: AesKeySize::Aes128, integrity: Integrity::HmacSha1_96 },
        Suite::AesCbc { key: AesKeySize::Aes256, integrity: Integrity::HmacSha256_128 },
        Suite::AesGmac { key: AesKeySize::Aes256 },
    ];
    println!("{:<18} {:<4} {:>6} {:>10} {:>8} {:>10} {:>8} {:>6}", "suite", "dir", "size", "esp ns", "esp Gb/s", "raw ns", "raw Gb/s", "ratio");
    for suite in suites {
        let out = OutboundSa::new(&esp_sa(suite, Direction::Out, 0)).unwrap();
        let inb = InboundSa::new(&esp_sa(suite, Direction::In, 0), None).unwrap();
        let raw = Raw::new(suite);
        let cells: Vec<(String, Vec<usize>)> = SIZES.iter().map(|&s| (s.to_string(), vec![s])).chain([("IMIX".to_string(), IMIX.to_vec())]).collect();
        for (name, sizes) in cells {
            let plains: Vec<Vec<u8>> = sizes.iter().map(|&s| ipv4_udp(s)).collect();
            let mean_bits = sizes.iter().sum::<usize>() as f64 * 8.0 / sizes.len() as f64;
            let mut mem = vec![0u8; 2048];
            let mut seq = 0u64;
            let enc_ns = measure(budget, plains.len(), |i| {
                seq += 1;
                let mut b = SliceBuf::with_packet(&mut mem, 128, &plains[i]).unwrap();
                encapsulate(&out, seq, &mut b).unwrap();
                black_box(b.data());
            });
            let raw_enc_ns = measure(budget, plains.len(), |i| {
                seq += 1;
                let len = esp_payload_len(suite, plains[i].len());
                mem[128..128 + plains[i].len()].copy_from_slice(&plains[i]);
                raw.run(&mut mem[128..], len, seq, false);
                black_box(&mem);
            });
            // Decryption: packets encrypted once, each decrypted from a fresh copy (replay check off).
            let wires: Vec<Vec<u8>> = plains
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut m = vec![0u8; 2048];
                    let mut b = SliceBuf::with_packet(&mut m, 128, p).unwrap();
                    encapsulate(&out, i as u64 + 1, &mut b).unwrap();
                    b.data().to_vec()
                })
                .collect();
            let dec_ns = measure(budget, wires.len(), |i| {
                let mut b = SliceBuf::with_packet(&mut mem, 128, &wires[i]).unwrap();
                inbound(&mut b, &[], |_, _| Some(&inb)).unwrap();
                black_box(b.data());
            });
            let raw_dec_ns = measure(budget, wires.len(), |i| {
                let len = esp_payload_len(suite, plains[i].len());
                mem[128..128 + wires[i].len()].copy_from_slice(&wires[i]);
                raw.run(&mut mem[128..], len, 1, true);
                black_box(&mem);
            });
            for (dir, esp, raw) in [("enc", enc_ns, raw_enc_ns), ("dec", dec_ns, raw_dec_ns)] {
                println!(
                    "{:<18} {:<4} {:>6} {:>10.1} {:>8.2} {:>10.1} {:>8.2} {:>6.2}",
                    label(suite), dir, name, esp, mean_bits / esp, raw, mean_bits / raw, esp / raw
                );
            }
        }
    }
    if args.iter().any(|a| a == "--crypto") {
        crypto_comparison(budget);
    }
}

/// AES-GCM seal and HMAC on the same buffers with each candidate crate (keys set up once).
fn crypto_comparison(budget: Duration) {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use ::hmac::Mac;
    println!("\n{:<34} {:>8} {:>8} {:>8}", "crypto call (ns)", "64", "512", "1420");
    let sizes = [64usize, 512, 1420];
    let row = |name: &str, f: &mut dyn FnMut(&mut [u8])| {
        let mut buf = vec![0u8; 1500];
        let v: Vec<String> = sizes.iter().map(|&s| format!("{:>8.1}", measure(budget, 1, |_| f(&mut buf[..s])))).collect();
        println!("{:<34} {}", name, v.join(" "));
    };
    let mb = GcmKey::new(&[7; 32]).unwrap();
    row("intel-ipsec-mb AES-256-GCM seal", &mut |b| { black_box(mb.seal(Nonce::from([1; 12]), Aad::words([[0; 4]; 2]), b)); });
    let lc = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, &[7; 32]).unwrap());
    row("aws-lc-rs AES-256-GCM seal", &mut |b| { let _ = black_box(lc.seal_in_place_separate_tag(aead::Nonce::assume_unique_for_key([1; 12]), aead::Aad::from([0u8; 8]), b)); });
    let rk = ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[7; 32]).unwrap());
    row("ring AES-256-GCM seal", &mut |b| { let _ = black_box(rk.seal_in_place_separate_tag(ring::aead::Nonce::assume_unique_for_key([1; 12]), ring::aead::Aad::from([0u8; 8]), b)); });
    let rc = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
    row("RustCrypto aes-gcm 0.10 AES-256-GCM", &mut |b| { let _ = black_box(rc.encrypt_in_place_detached(&[1u8; 12].into(), &[0u8; 8], b)); });
    let mb1 = CbcHmacKey::new(&[7; 32], Hmac::Sha1, &[9; 20], 12).unwrap();
    row("intel-ipsec-mb HMAC-SHA1 (SHA-NI)", &mut |b| { black_box(mb1.mac(b, 0..b.len()).unwrap()); });
    let mb2 = CbcHmacKey::new(&[7; 32], Hmac::Sha256, &[9; 32], 16).unwrap();
    row("intel-ipsec-mb HMAC-SHA256 (SHA-NI)", &mut |b| { black_box(mb2.mac(b, 0..b.len()).unwrap()); });
    row("intel-ipsec-mb HMAC-SHA256+CBC decrypt", &mut |b| {
        // The first block is the IV, as in ESP.
        let n = b.len() / 16 * 16;
        black_box(mb2.mac_then_decrypt(b, &Layout { iv_at: 0, cipher: 16..n, hash: 0..n }).unwrap());
    });
    let k1 = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &[9; 20]);
    row("aws-lc-rs HMAC-SHA1 (pre-keyed)", &mut |b| { let _ = black_box(hmac::sign(&k1, b)); });
    let rc1 = <::hmac::Hmac<sha1::Sha1> as Mac>::new_from_slice(&[9; 20]).unwrap();
    row("RustCrypto HMAC-SHA1 (cloned)", &mut |b| { let mut m = rc1.clone(); m.update(b); black_box(m.finalize()); });
    let k2 = hmac::Key::new(hmac::HMAC_SHA256, &[9; 32]);
    row("aws-lc-rs HMAC-SHA256 (pre-keyed)", &mut |b| { let _ = black_box(hmac::sign(&k2, b)); });
    let rk2 = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[9; 32]);
    row("ring HMAC-SHA256 (pre-keyed)", &mut |b| { let _ = black_box(ring::hmac::sign(&rk2, b)); });
    let rc2 = <::hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&[9; 32]).unwrap();
    row("RustCrypto HMAC-SHA256 (cloned)", &mut |b| { let mut m = rc2.clone(); m.update(b); black_box(m.finalize()); });
    let cbc = cipher::EncryptingKey::cbc(cipher::UnboundCipherKey::new(&cipher::AES_256, &[7; 32]).unwrap()).unwrap();
    row("aws-lc-rs AES-256-CBC encrypt", &mut |b| { let n = b.len() / 16 * 16; let _ = black_box(cbc.less_safe_encrypt(&mut b[..n], cipher::EncryptionContext::Iv128([1u8; 16].into()))); });
    row("RustCrypto cbc 0.1 AES-256-CBC", &mut |b| {
        use cbc::cipher::{BlockEncryptMut, KeyIvInit};
        let n = b.len() / 16 * 16;
        let e = cbc::Encryptor::<aes::Aes256>::new(&[7u8; 32].into(), &[1u8; 16].into());
        let _ = black_box(e.encrypt_padded_mut::<cbc::cipher::block_padding::NoPadding>(&mut b[..n], n));
    });
}
