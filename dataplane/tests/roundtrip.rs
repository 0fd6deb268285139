//! Our encapsulation against our decapsulation, for every suite, mode, family, ESN and UDP
//! encapsulation, plus each distinct drop reason provoked on purpose.

mod common;

use common::*;
use dataplane::esp::decrypt::inbound;
use dataplane::{encapsulate, DropReason, Inbound};
use shared::sa::{DfPolicy, Direction, Mode, Suite, AesKeySize};

const ENCAP: &[u16] = &[4500, 4600];

#[test]
fn every_suite_mode_family_esn_and_encap_round_trips() {
    let mut cases = 0;
    for suite in all_suites() {
        for shape in all_shapes() {
            for esn in [false, true] {
                for encap in [None, Some(4500), Some(4600)] {
                    let (out, inb) = pair(suite, shape, esn, encap);
                    // With ESN the receiver's window is moved near the 2^32 wrap (as traffic
                    // would move it) and the last packets cross it.
                    let far = if esn { [0xffff_fffe, 0x1_0000_0001] } else { [0xffff_fff0, 0xffff_ffff] };
                    for (seq, len) in [(1u64, 0usize), (2, 1), (3, 100), (far[0], 1400), (far[1], 333)] {
                        if seq == far[0] {
                            inb.replay_window().commit(seq - 100).unwrap();
                        }
                        let plain = plain_packet(shape, len);
                        let (r, wire) = with_buf(&plain, |b| encapsulate(&out, seq, b));
                        r.unwrap();
                        if wire[0] >> 4 == 4 {
                            let header = usize::from(wire[0] & 0x0f) * 4;
                            assert_eq!(dataplane::wire::checksum::checksum(&wire[..header]), 0, "outer IPv4 checksum, {suite:?} {shape:?}");
                        }
                        let (r, back) = with_buf(&wire, |b| inbound(b, ENCAP, |spi, _| (spi == inb.spi()).then_some(&inb)));
                        let Inbound::Decapsulated(d) = r.unwrap_or_else(|e| panic!("{suite:?} {shape:?} esn {esn} {encap:?}: {e:?}")) else {
                            panic!("not ESP")
                        };
                        assert_eq!(d.seq, seq);
                        assert_eq!(back, plain, "{suite:?} {shape:?} esn {esn} {encap:?}");
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 8 * 6 * 2 * 3 * 5);
}

fn gcm() -> Suite {
    Suite::AesGcm { key: AesKeySize::Aes256, icv_len: 16 }
}

fn v4_tunnel() -> Shape {
    Shape { mode: Mode::Tunnel, outer_v6: false, inner_v6: false }
}

/// Encrypts one packet, lets `tamper` change the wire bytes, decrypts with `inb`.
fn deliver(out: &dataplane::OutboundSa, inb: &dataplane::InboundSa, seq: u64, plain: &[u8], tamper: impl FnOnce(&mut Vec<u8>)) -> Result<Inbound, DropReason> {
    let (r, mut wire) = with_buf(plain, |b| encapsulate(out, seq, b));
    r.unwrap();
    tamper(&mut wire);
    with_buf(&wire, |b| inbound(b, ENCAP, |spi, _| (spi == inb.spi()).then_some(inb))).0
}

#[test]
fn each_failure_is_its_own_drop_reason() {
    let shape = v4_tunnel();
    let (out, inb) = pair(gcm(), shape, false, None);
    let plain = plain_packet(shape, 40);
    assert!(deliver(&out, &inb, 1, &plain, |_| {}).is_ok());
    assert_eq!(deliver(&out, &inb, 1, &plain, |_| {}), Err(DropReason::Replay));
    assert_eq!(deliver(&out, &inb, 2, &plain, |w| *w.last_mut().unwrap() ^= 1), Err(DropReason::IcvMismatch));
    // A failed ICV does not advance the window: the genuine packet 2 still gets through.
    assert!(deliver(&out, &inb, 2, &plain, |_| {}).is_ok());
    assert_eq!(deliver(&out, &inb, 3, &plain, |w| w[20..24].copy_from_slice(&[0, 0, 9, 9])), Err(DropReason::UnknownSpi));
    assert_eq!(deliver(&out, &inb, 4, &plain, |w| { w.truncate(30); w[2..4].copy_from_slice(&30u16.to_be_bytes()) }), Err(DropReason::TruncatedPayload));
    assert_eq!(deliver(&out, &inb, 5, &plain, |w| w.truncate(10)), Err(DropReason::MalformedOuter));
    assert_eq!(deliver(&out, &inb, 6, &plain, |w| { w.truncate(26); w[2..4].copy_from_slice(&26u16.to_be_bytes()) }), Err(DropReason::ShortEsp));
    assert_eq!(deliver(&out, &inb, 7, &plain, |w| w[9] = 6), Err(DropReason::NotEsp));
    assert_eq!(deliver(&out, &inb, 8, &plain, |w| w[0] = 0x25), Err(DropReason::NotIp));
    assert_eq!(deliver(&out, &inb, 9, &plain, |w| w[6] = 0x20), Err(DropReason::OuterFragment));

    // Wrong inner selector: the peer's SA only admits another source range.
    let mut cfg = config(gcm(), shape, false, None, Direction::In);
    cfg.ts_remote.start = "198.18.200.0".parse().unwrap();
    cfg.ts_remote.end = "198.18.200.255".parse().unwrap();
    let narrow = dataplane::InboundSa::new(&cfg, None).unwrap();
    assert_eq!(deliver(&out, &narrow, 1, &plain, |_| {}), Err(DropReason::SelectorMismatch));

    // Outbound: sequence number limits and buffer room.
    let mut mem = vec![0u8; 200];
    let mut b = dataplane::SliceBuf::with_packet(&mut mem, 10, &plain).unwrap();
    assert_eq!(encapsulate(&out, 7, &mut b), Err(DropReason::NoRoom));
    assert_eq!(with_buf(&plain, |b| encapsulate(&out, 1 << 32, b)).0, Err(DropReason::SeqExhausted));
    assert_eq!(with_buf(&plain, |b| encapsulate(&out, 0, b)).0, Err(DropReason::SeqExhausted));
    assert_eq!(with_buf(&plain[..10], |b| encapsulate(&out, 1, b)).0, Err(DropReason::MalformedPlain));
}

/// An authentic tunnel-mode ESP packet (SPI 0x10000001, IPv4 outer) whose plaintext is exactly
/// `payload` (inner packet, padding and trailer as the test wants them), sealed with the SA's keys.
fn forge(payload: &[u8], seq: u32) -> Vec<u8> {
    let t = dataplane::esp::suite::Transform::new(gcm(), &key(36, 1), &[]).unwrap();
    let (src, dst) = addrs(false);
    let total = 20 + 8 + 8 + payload.len() + 16;
    let mut p = udp_packet(false, src, dst, 0, 0)[..20].to_vec();
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[9] = 50;
    p.extend_from_slice(&0x1000_0001u32.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(payload);
    p.resize(total, 0);
    t.seal(&mut p, 20, u64::from(seq), false).unwrap();
    p
}

#[test]
fn padding_next_header_and_dummy_packets_are_checked_after_decryption() {
    let (_, inb) = pair(gcm(), v4_tunnel(), false, None);
    let inner = plain_packet(v4_tunnel(), 2);
    let rx = |wire: &[u8]| with_buf(wire, |b| inbound(b, ENCAP, |_, _| Some(&inb))).0;
    let with_trailer = |trailer: &[u8]| [&inner[..], trailer].concat();
    assert!(rx(&forge(&with_trailer(&[1, 2, 2, 4]), 1)).is_ok(), "the forger itself is right");
    assert_eq!(rx(&forge(&with_trailer(&[1, 2, 3, 9, 3, 4]), 2)), Err(DropReason::BadPadding));
    assert_eq!(rx(&forge(&with_trailer(&[60, 4]), 3)), Err(DropReason::BadPadding), "pad length beyond payload");
    assert_eq!(rx(&forge(&with_trailer(&[0, 59]), 4)), Err(DropReason::DummyPacket));
    assert_eq!(rx(&forge(&with_trailer(&[0, 41]), 5)), Err(DropReason::BadNextHeader), "IPv4 inside, IPv6 named");
    assert_eq!(rx(&forge(&with_trailer(&[0, 17]), 6)), Err(DropReason::BadNextHeader), "tunnel SA, UDP named");
    let mut bad_inner = with_trailer(&[0, 4]);
    bad_inner[10] ^= 0xff;
    assert_eq!(rx(&forge(&bad_inner, 7)), Err(DropReason::MalformedInner), "inner header checksum");
    // Padding after the inner packet is TFC padding (RFC 4303 2.7) and is removed.
    let (r, back) = with_buf(&forge(&[&inner[..], &[0xee; 7], &[1, 2, 2, 4]].concat(), 8), |b| inbound(b, ENCAP, |_, _| Some(&inb)));
    r.unwrap();
    assert_eq!(back, inner);
}

#[test]
fn outer_header_follows_dscp_ecn_and_df_policy() {
    for (df, inner_df, expect_df) in [(DfPolicy::Copy, true, true), (DfPolicy::Copy, false, false), (DfPolicy::Set, false, true), (DfPolicy::Clear, true, false)] {
        let shape = v4_tunnel();
        let mut cfg = config(gcm(), shape, false, None, Direction::Out);
        cfg.df = df;
        let out = dataplane::OutboundSa::new(&cfg).unwrap();
        let (s, d) = inner_addrs(false);
        let mut plain = udp_packet(false, s, d, 10, 0xb8 | 3);
        plain[6] = if inner_df { 0x40 } else { 0 };
        plain[10..12].fill(0);
        let c = dataplane::wire::checksum::checksum(&plain[..20]);
        plain[10..12].copy_from_slice(&c.to_be_bytes());
        let (r, wire) = with_buf(&plain, |b| encapsulate(&out, 9, b));
        r.unwrap();
        // DSCP copied, CE becomes ECT(0) (RFC 6040 normal mode), DF per policy, checksum valid.
        assert_eq!(wire[1], 0xb8 | 2);
        assert_eq!(wire[6] & 0x40 != 0, expect_df, "{df:?}");
        assert_eq!(dataplane::wire::checksum::checksum(&wire[..20]), 0);
        assert_eq!(u16::from_be_bytes([wire[2], wire[3]]) as usize, wire.len());
    }
}

#[test]
fn ecn_ce_on_the_outer_header_reaches_the_inner_packet() {
    let shape = Shape { mode: Mode::Tunnel, outer_v6: false, inner_v6: true };
    let (out, inb) = pair(gcm(), shape, false, None);
    let (s, d) = inner_addrs(true);
    for (inner_ecn, expect) in [(2u8, Ok(3u8)), (0, Err(DropReason::EcnCeOnNotEct))] {
        let plain = udp_packet(true, s, d, 20, 0x28 | inner_ecn);
        let seq = u64::from(inner_ecn) + 1;
        let (r, mut wire) = with_buf(&plain, |b| encapsulate(&out, seq, b));
        r.unwrap();
        // A router on the path marks CE on the outer header.
        wire[1] |= 3;
        wire[10..12].fill(0);
        let c = dataplane::wire::checksum::checksum(&wire[..20]);
        wire[10..12].copy_from_slice(&c.to_be_bytes());
        let (r, back) = with_buf(&wire, |b| inbound(b, ENCAP, |_, _| Some(&inb)));
        match expect {
            Ok(ecn) => {
                r.unwrap();
                assert_eq!(((back[0] << 4) | (back[1] >> 4)) & 3, ecn);
            }
            Err(e) => assert_eq!(r, Err(e)),
        }
    }
}

#[test]
fn nat_t_keepalive_and_ike_are_recognised() {
    let (src, dst) = addrs(false);
    let keepalive = udp_packet(false, src, dst, 1, 0);
    let mut k = keepalive.clone();
    k[20..24].copy_from_slice(&[0x11, 0x94, 0x11, 0x94]);
    *k.last_mut().unwrap() = 0xff;
    assert_eq!(dataplane::classify(&k, ENCAP), Ok(dataplane::Classified::Keepalive));
    let mut ike = udp_packet(false, src, dst, 40, 0);
    ike[20..24].copy_from_slice(&[0x11, 0x94, 0x11, 0x94]);
    ike[28..32].fill(0);
    assert_eq!(dataplane::classify(&ike, ENCAP), Ok(dataplane::Classified::Ike));
    ike[22..24].copy_from_slice(&[0x01, 0xf4]);
    assert_eq!(dataplane::classify(&ike, ENCAP), Err(DropReason::NotEsp), "IKE on 500 is not ours");
}

#[test]
fn transport_mode_behind_nat_fixes_the_inner_checksum() {
    let shape = Shape { mode: Mode::Transport, outer_v6: false, inner_v6: false };
    let (out, _) = pair(gcm(), shape, false, Some(4500));
    // The sender (198.18.0.1) is behind a NAT that rewrites its address to 198.18.9.9.
    let (src, dst) = addrs(false);
    let plain = udp_packet(false, src, dst, 30, 0);
    let mut with_sum = plain.clone();
    let ck = dataplane::wire::checksum::pseudo_header(&[198, 18, 0, 1], &[198, 18, 0, 2], 17, 38);
    let c = !dataplane::wire::checksum::fold(dataplane::wire::checksum::accumulate(ck, &with_sum[20..]));
    with_sum[26..28].copy_from_slice(&c.to_be_bytes());
    let (r, mut wire) = with_buf(&with_sum, |b| encapsulate(&out, 1, b));
    r.unwrap();
    wire[12..16].copy_from_slice(&[198, 18, 9, 9]);
    wire[10..12].fill(0);
    let c = dataplane::wire::checksum::checksum(&wire[..20]);
    wire[10..12].copy_from_slice(&c.to_be_bytes());
    let cfg = config(gcm(), shape, false, Some(4500), Direction::In);
    let oa = dataplane::NatOa { src, dst };
    let inb = dataplane::InboundSa::new(&cfg, Some(oa)).unwrap();
    let (r, back) = with_buf(&wire, |b| inbound(b, ENCAP, |_, _| Some(&inb)));
    r.unwrap();
    assert_eq!(&back[12..16], &[198, 18, 9, 9]);
    let ck = dataplane::wire::checksum::pseudo_header(&back[12..16], &back[16..20], 17, back.len() - 20);
    assert_eq!(dataplane::wire::checksum::fold(dataplane::wire::checksum::accumulate(ck, &back[20..])), 0xffff, "UDP checksum valid for the NATed source");
}
