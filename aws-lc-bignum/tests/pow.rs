//! Both exponentiations against crypto-bigint (an independent, portable implementation) for
//! random 512-bit odd moduli, bases and exponents, and the rejected inputs.
use aws_lc_bignum::{Error, FixedBase, Modulus};
use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Encoding, U512};
use proptest::prelude::*;

/// A 512-bit odd modulus (top bit set), a base below it and an exponent of 1-64 bytes with its
/// top bit set.
fn inputs() -> impl Strategy<Value = ([u8; 64], [u8; 64], Vec<u8>)> {
    (
        any::<[u8; 64]>(),
        any::<[u8; 64]>(),
        prop::collection::vec(any::<u8>(), 1..=64),
    )
        .prop_map(|(mut modulus, mut base, mut exponent)| {
            modulus[0] |= 0x80;
            modulus[63] |= 1;
            base[0] &= 0x7f;
            exponent[0] |= 0x80;
            (modulus, base, exponent)
        })
}

fn reference(modulus: &[u8; 64], base: &[u8; 64], exponent: &[u8]) -> Vec<u8> {
    let params = DynResidueParams::new(&U512::from_be_slice(modulus));
    let mut padded = [0u8; 64];
    padded[64 - exponent.len()..].copy_from_slice(exponent);
    DynResidue::new(&U512::from_be_slice(base), params)
        .pow(&U512::from_be_slice(&padded))
        .retrieve()
        .to_be_bytes()
        .to_vec()
}

proptest! {
    #[test]
    fn modulus_pow_matches_crypto_bigint((modulus, base, exponent) in inputs()) {
        let ours = Modulus::from_be_bytes(&modulus).unwrap().pow(&base, &exponent).unwrap();
        prop_assert_eq!(&ours[..], &reference(&modulus, &base, &exponent)[..]);
    }

    #[test]
    fn fixed_base_pow_matches_crypto_bigint(
        (modulus, base, _) in inputs(),
        exponents in prop::collection::vec(any::<[u8; 20]>(), 1..4),
    ) {
        let fixed = FixedBase::new(Modulus::from_be_bytes(&modulus).unwrap(), &base, 20).unwrap();
        for mut exponent in exponents {
            exponent[0] |= 0x80;
            let expected = reference(&modulus, &base, &exponent);
            prop_assert_eq!(fixed.pow(&exponent).unwrap(), expected.clone());
            prop_assert_eq!(&fixed.modulus().pow(&base, &exponent).unwrap()[..], &expected[..]);
        }
    }
}

#[test]
fn bad_inputs_are_rejected() {
    let mut even = [0xffu8; 64];
    even[63] = 0xfe;
    for bad in [&even[..], &[0x00, 0x03][..], &[1][..], &[][..]] {
        assert_eq!(
            Modulus::from_be_bytes(bad).unwrap_err(),
            Error::InvalidModulus
        );
    }
    let modulus_bytes = [0xffu8; 64];
    let modulus = Modulus::from_be_bytes(&modulus_bytes).unwrap();
    let base = [0x02u8; 64];
    assert_eq!(
        modulus.pow(&modulus_bytes, &[0x80]).unwrap_err(),
        Error::BaseOutOfRange
    );
    assert_eq!(
        modulus.pow(&base[1..], &[0x80]).unwrap_err(),
        Error::BaseOutOfRange
    );
    for exponent in [&[][..], &[0x7f, 0xff][..]] {
        assert_eq!(
            modulus.pow(&base, exponent).unwrap_err(),
            Error::InvalidExponent
        );
    }
    let fixed = FixedBase::new(modulus, &base, 8).unwrap();
    assert_eq!(fixed.pow(&[0x80; 7]).unwrap_err(), Error::InvalidExponent);
    assert_eq!(fixed.pow(&[0x7f; 8]).unwrap_err(), Error::InvalidExponent);
    assert_eq!(fixed.pow(&[0x80; 8]).unwrap().len(), 64);
}

#[test]
fn shareable_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Modulus>();
    shareable::<FixedBase>();
}
