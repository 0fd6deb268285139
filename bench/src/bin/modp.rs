//! MODP Diffie-Hellman cost per operation (thread CPU time, so that other jobs on the machine
//! slow the run down without changing the figures much): the crypto-bigint code `control` used
//! before (reference, measured in the same run) against AWS-LC's bignum through the
//! `aws-lc-bignum` crate, for RFC 3526 groups 14 and 15 with the exponent lengths of
//! `control::crypto` (320 and 448 bits). docs/crypto-choice.md records the numbers.
//!
//! `cargo run --release -p bench --bin modp -- [ITERATIONS]`
use aws_lc_bignum::{FixedBase, Modulus};
use control::crypto::{modp_prime, DhKey, SystemRng};
use control::wire::ikev2::DhGroup;
use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Encoding, Uint, U2048, U3072, U512};
use rustix::time::{clock_gettime, ClockId};
use std::hint::black_box;

fn cpu_seconds() -> f64 {
    let now = clock_gettime(ClockId::ThreadCPUTime);
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// Microseconds of CPU per call of `operation`, after one warm-up call.
fn time(iterations: usize, mut operation: impl FnMut()) -> f64 {
    operation();
    let start = cpu_seconds();
    for _ in 0..iterations {
        operation();
    }
    (cpu_seconds() - start) * 1e6 / iterations as f64
}

/// The former `control::crypto::modp` code path: Montgomery parameters per call, then a
/// constant-time exponentiation bounded to the exponent's bits.
fn crypto_bigint_pow<const LIMBS: usize>(prime: &[u8], base: &[u8], exponent: &[u8]) -> Vec<u8>
where
    Uint<LIMBS>: Encoding,
{
    let params = DynResidueParams::new(&Uint::<LIMBS>::from_be_slice(prime));
    let mut padded = [0u8; 64];
    padded[64 - exponent.len()..].copy_from_slice(exponent);
    DynResidue::new(&Uint::<LIMBS>::from_be_slice(base), params)
        .pow_bounded_exp(&U512::from_be_slice(&padded), exponent.len() * 8)
        .retrieve()
        .to_be_bytes()
        .as_ref()
        .to_vec()
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("ITERATIONS is a number"))
        .unwrap_or(200);
    println!("MODP Diffie-Hellman, microseconds of CPU per operation ({iterations} iterations)");
    println!("| group | exponent bits | operation | crypto-bigint (reference) | AWS-LC | ratio |");
    println!("|---|---|---|---|---|---|");
    let mut table_builds = Vec::new();
    for (group, bits, exponent_len) in
        [(DhGroup::Modp2048, 2048, 40), (DhGroup::Modp3072, 3072, 56)]
    {
        let prime = modp_prime(bits);
        let mut generator = vec![0u8; prime.len()];
        *generator.last_mut().unwrap() = 2;
        let mut exponent = vec![0xa5u8; exponent_len];
        exponent[0] |= 0x80;
        let reference = |base: &[u8]| match prime.len() {
            256 => crypto_bigint_pow::<{ U2048::LIMBS }>(&prime, base, &exponent),
            _ => crypto_bigint_pow::<{ U3072::LIMBS }>(&prime, base, &exponent),
        };
        let peer = reference(&generator);
        let modulus = Modulus::from_be_bytes(&prime).unwrap();
        let fixed = FixedBase::new(
            Modulus::from_be_bytes(&prime).unwrap(),
            &generator,
            exponent_len,
        )
        .unwrap();
        assert_eq!(fixed.pow(&exponent).unwrap(), peer);
        assert_eq!(*modulus.pow(&peer, &exponent).unwrap(), reference(&peer));

        let old_public = time(iterations / 4, || drop(black_box(reference(&generator))));
        let old_shared = time(iterations / 4, || drop(black_box(reference(&peer))));
        let variable_base = time(iterations, || {
            drop(black_box(modulus.pow(&generator, &exponent).unwrap()))
        });
        let fixed_base = time(iterations, || {
            drop(black_box(fixed.pow(&exponent).unwrap()))
        });
        let shared = time(iterations, || {
            drop(black_box(modulus.pow(&peer, &exponent).unwrap()))
        });
        // The whole of one side of an exchange through control's API: key, g^x, g^xy.
        let mut rng = SystemRng;
        let exchange = time(iterations, || {
            let key = DhKey::generate(group, &mut rng).unwrap();
            drop(black_box(key.public_value().unwrap()));
            drop(black_box(key.shared_secret(&peer).unwrap()));
        });
        let bits = exponent_len * 8;
        let row = |operation: &str, old: f64, new: f64| {
            println!(
                "| {group:?} | {bits} | {operation} | {old:.0} | {new:.0} | {:.2}x |",
                old / new
            );
        };
        row("g^x, square-and-multiply", old_public, variable_base);
        row("g^x, fixed-base table", old_public, fixed_base);
        row("y^x (shared secret)", old_shared, shared);
        row(
            "one side: DhKey generate + g^x + y^x",
            old_public + old_shared,
            exchange,
        );
        let build = time(2, || {
            let modulus = Modulus::from_be_bytes(&prime).unwrap();
            drop(black_box(
                FixedBase::new(modulus, &generator, exponent_len).unwrap(),
            ));
        });
        table_builds.push(format!("{group:?} {:.1} ms", build / 1000.0));
    }
    println!(
        "Fixed-base table build (once per group and process): {}",
        table_builds.join(", ")
    );
}
