//! Random mutations of valid ESP packets fed to inbound processing: never a panic, and every
//! rejected packet comes back as a named drop reason. (The cargo-fuzz target in fuzz/ does the
//! same without a time limit.)

mod common;

use common::*;
use dataplane::esp::decrypt::inbound;
use dataplane::{encapsulate, DropReason};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_packets_are_dropped_not_panicked_on(
        suite_i in 0usize..8,
        shape_i in 0usize..6,
        esn: bool,
        encap: bool,
        len in 0usize..300,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate: bool,
    ) {
        let (suite, shape) = (all_suites()[suite_i], all_shapes()[shape_i]);
        let encap = encap.then_some(4500);
        let (out, inb) = pair(suite, shape, esn, encap);
        let plain = plain_packet(shape, len);
        let (r, mut wire) = with_buf(&plain, |b| encapsulate(&out, 1, b));
        r.unwrap();
        for (at, x) in &flips {
            let i = at.index(wire.len());
            wire[i] ^= x | 1;
        }
        if truncate {
            wire.truncate(cut.index(wire.len() + 1));
        }
        let (r, _) = with_buf(&wire, |b| inbound(b, &[4500], |spi, _| (spi == inb.spi()).then_some(&inb)));
        if let Err(e) = r {
            prop_assert!(DropReason::ALL.contains(&e));
        }
    }

    #[test]
    fn arbitrary_bytes_are_dropped_not_panicked_on(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let (_, inb) = pair(all_suites()[0], all_shapes()[0], true, Some(4500));
        let _ = with_buf(&bytes, |b| inbound(b, &[4500], |_, _| Some(&inb)));
    }
}
