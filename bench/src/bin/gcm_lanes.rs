//! The multi-buffer lanes (`ipsec_mb::gcm_lanes`) against one library call per packet: ns per
//! packet sealing bursts of 32 short payloads in place (AES-256-GCM, 8-byte AAD,
//! 16-byte ICV), best of five runs of a million packets, twice.
//!
//!   cargo run --release -p bench --bin gcm_lanes

use std::hint::black_box;
use std::time::Instant;

use ipsec_mb::gcm_lanes::{self, ShortGcmJob};
use ipsec_mb::{Aad, GcmKey, Nonce, TAG_LEN};

const BURST: usize = 32;
const PACKETS: usize = 1_000_000;

fn best_ns(mut burst: impl FnMut(&mut [[u8; 128]; BURST])) -> f64 {
    let mut bufs = [[0u8; 128]; BURST];
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..PACKETS / BURST {
            burst(black_box(&mut bufs));
        }
        best = best.min(start.elapsed().as_nanos() as f64 / (PACKETS / BURST * BURST) as f64);
    }
    best
}

fn main() {
    let key = GcmKey::new(&[0x42; 32]).expect("AES-256 key");
    let Some(short) = key.short() else {
        eprintln!("gcm_lanes: this CPU has no AVX-512 VAES/VPCLMULQDQ; nothing to compare");
        std::process::exit(1);
    };
    let nonce = |i: usize| Nonce::new([1, 2, 3, 4], (i as u64).to_be_bytes());
    let aad = |i: usize| Aad::words([[0, 0, 1, 0], (i as u32).to_be_bytes()]);
    for round in 0..2 {
        for len in [16, 52, 64] {
            let library_seal = best_ns(|bufs| {
                for (i, b) in bufs.iter_mut().enumerate() {
                    let (data, icv) = b.split_at_mut(len);
                    key.seal_into(nonce(i), aad(i), data, &mut icv[..TAG_LEN]).expect("tag field");
                }
            });
            let lanes_seal = best_ns(|bufs| {
                let mut jobs: Vec<ShortGcmJob<'_>> = bufs
                    .iter_mut()
                    .enumerate()
                    .map(|(i, b)| {
                        let (data, icv) = b.split_at_mut(len);
                        ShortGcmJob::new(short, nonce(i), aad(i), data, &mut icv[..TAG_LEN]).expect("short job")
                    })
                    .collect();
                gcm_lanes::seal(&mut jobs);
            });
            println!(
                "round {round}, {len:2} B: library {library_seal:5.1} ns a packet, lanes {lanes_seal:5.1}"
            );
        }
    }
}
