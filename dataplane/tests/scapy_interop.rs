//! Scapy's ESP (Debian python3-scapy) against ours, both directions, for every suite, mode,
//! address family, ESN on/off and UDP encapsulation. Fails if /usr/bin/python3 or Scapy is missing.

mod common;

use common::*;
use dataplane::esp::decrypt::inbound;
use dataplane::{encapsulate, Inbound};
use shared::sa::{Direction, Mode};

/// One case line for the helper script.
fn case(op: &str, suite: shared::sa::Suite, shape: Shape, esn: bool, encap: Option<u16>, seq: u64, data: &[u8]) -> String {
    let cfg = config(suite, shape, esn, encap, Direction::Out);
    format!(
        "op={op} suite={} mode={} outer={} src={} dst={} spi={} seq={seq} esn={} encap={} key={} auth={} data={}\n",
        suite_label(suite),
        if shape.mode == Mode::Tunnel { "tunnel" } else { "transport" },
        if shape.outer_v6 { 6 } else { 4 },
        cfg.src,
        cfg.dst,
        cfg.spi,
        esn as u8,
        encap.unwrap_or(0),
        hex(&cfg.enc_key),
        hex(&cfg.auth_key),
        hex(data),
    )
}

/// Runs the helper on all lines at once (one Python start-up) and returns its answers.
fn run_scapy(input: &str) -> Vec<Result<Vec<u8>, String>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/esp_scapy.py");
    python(&[script], input)
        .lines()
        .map(|l| match l.split_once(' ') {
            Some(("ok", h)) => Ok(unhex(h)),
            _ => Err(l.to_string()),
        })
        .collect()
}

struct Case {
    suite: shared::sa::Suite,
    shape: Shape,
    esn: bool,
    encap: Option<u16>,
    seq: u64,
    plain: Vec<u8>,
}

fn matrix() -> Vec<Case> {
    let mut v = Vec::new();
    for suite in all_suites() {
        for shape in all_shapes() {
            for esn in [false, true] {
                for encap in [None, Some(4500)] {
                    // With ESN the high half is non-zero, so a wrong AAD/ICV construction shows.
                    let seq = if esn { (1 << 32) | 7 } else { 7 };
                    let plain = plain_packet(shape, 33 + v.len() % 50);
                    v.push(Case { suite, shape, esn, encap, seq, plain });
                }
            }
        }
    }
    v
}

#[test]
fn scapy_decrypts_what_we_encrypt() {
    let cases = matrix();
    let mut input = String::new();
    for c in &cases {
        let (out, _) = pair(c.suite, c.shape, c.esn, c.encap);
        let (r, wire) = with_buf(&c.plain, |b| encapsulate(&out, c.seq, b));
        r.unwrap();
        input += &case("decrypt", c.suite, c.shape, c.esn, c.encap, c.seq, &wire);
    }
    let answers = run_scapy(&input);
    assert_eq!(answers.len(), cases.len());
    for (c, a) in cases.iter().zip(answers) {
        let label = format!("{} {:?} esn {} encap {:?}", suite_label(c.suite), c.shape, c.esn, c.encap);
        assert_eq!(a.unwrap_or_else(|e| panic!("{label}: {e}")), c.plain, "{label}");
    }
}

#[test]
fn we_decrypt_what_scapy_encrypts() {
    let cases = matrix();
    let input: String = cases.iter().map(|c| case("encrypt", c.suite, c.shape, c.esn, c.encap, c.seq, &c.plain)).collect();
    let answers = run_scapy(&input);
    assert_eq!(answers.len(), cases.len());
    for (c, a) in cases.iter().zip(answers) {
        let label = format!("{} {:?} esn {} encap {:?}", suite_label(c.suite), c.shape, c.esn, c.encap);
        let wire = a.unwrap_or_else(|e| panic!("{label}: {e}"));
        let (_, inb) = pair(c.suite, c.shape, c.esn, c.encap);
        if c.esn {
            // Traffic has moved the window to just below the 2^32 boundary.
            inb.replay_window().commit(c.seq - 20).unwrap();
        }
        let (r, back) = with_buf(&wire, |b| inbound(b, &[4500], |_, _| Some(&inb)));
        match r {
            Ok(Inbound::Decapsulated(d)) => assert_eq!(d.seq, c.seq, "{label}"),
            other => panic!("{label}: {other:?}"),
        }
        assert_eq!(back, c.plain, "{label}");
    }
}
