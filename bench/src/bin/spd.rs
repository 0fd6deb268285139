//! Benchmark of the gateway's SPD classification (dataplane::gateway::spd_classifier): the
//! compiled bit-vector index against a first-match scan of the same rules, the reference, measured
//! in the same run. Prints a Markdown table.
//!
//! `cargo run --release -p bench --bin spd [-- --rules 1000 --flows 65536 --rounds 20]`
//!
//! Rules: outbound protect/bypass/discard rules between random IPv4 prefixes (/16 to /32 inside
//! 198.18.0.0/15), a third of them with a protocol and port ranges, plus a last catch-all; flows:
//! random 5-tuples in the same space (most of them match a rule near the end, the worst case for
//! the scan). Time per classification, averaged over every flow and round.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use bench::{arg, Rng};
use dataplane::esp::flow::Flow;
use dataplane::gateway::spd_classifier::Classifier;
use shared::policy::{Action, Policy, PolicyFlags, PolicyRecord, Prefix, SaTemplate, Selector};
use shared::sa::{Direction, Mode};



fn random_addr(rng: &mut Rng) -> Ipv4Addr {
    Ipv4Addr::from(0xC612_0000 | rng.below(1 << 17) as u32)
}

fn rules(rng: &mut Rng, n: usize) -> Vec<PolicyRecord> {
    let any = Prefix::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)), 15);
    (0..n)
        .map(|i| {
            let mut prefix = || Prefix::new(IpAddr::V4(random_addr(rng)), 16 + rng.below(17) as u8);
            let (src, dst) = if i + 1 == n { (any, any) } else { (prefix(), prefix()) };
            let ported = i % 3 == 0 && i + 1 != n;
            let lo = rng.below(60_000) as u16;
            let policy = Policy {
                priority: i as u32,
                direction: Direction::Out,
                selector: Selector {
                    src,
                    dst,
                    proto: ported.then_some(if i % 2 == 0 { 6 } else { 17 }),
                    src_ports: (0, u16::MAX),
                    dst_ports: if ported { (lo, lo + 1000) } else { (0, u16::MAX) },
                    icmp_type: None,
                    icmp_code: None,
                },
                action: match i % 3 {
                    0 => Action::Bypass,
                    1 => Action::Discard,
                    _ => Action::Protect { reqid: 1 + i as u32, template: SaTemplate { mode: Mode::Tunnel, src: src.addr, dst: dst.addr } },
                },
                flags: PolicyFlags::default(),
            };
            PolicyRecord::new(i as u32 + 1, &policy)
        })
        .collect()
}

fn main() {
    let n_rules: usize = arg("--rules", 1000);
    let n_flows: usize = arg("--flows", 65_536);
    let rounds: usize = arg("--rounds", 20);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let records = rules(&mut rng, n_rules);
    let compile_start = Instant::now();
    let classifier = Classifier::from_records(1, records);
    let compile = compile_start.elapsed();
    let flows: Vec<Flow> = (0..n_flows)
        .map(|_| Flow {
            src: random_addr(&mut rng).into(),
            dst: random_addr(&mut rng).into(),
            proto: [6, 17, 1][rng.below(3) as usize],
            ports: Some((rng.below(65_536) as u16, rng.below(65_536) as u16)),
        })
        .collect();
    let time = |f: &dyn Fn(&Flow) -> u32| {
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..rounds {
            for flow in &flows {
                sum = sum.wrapping_add(u64::from(f(std::hint::black_box(flow))));
            }
        }
        std::hint::black_box(sum);
        start.elapsed().as_nanos() as f64 / (rounds * flows.len()) as f64
    };
    let mut mismatches = 0;
    for flow in &flows {
        mismatches += usize::from(classifier.classify(Direction::Out, flow) != classifier.classify_linear(Direction::Out, flow));
    }
    assert_eq!(mismatches, 0, "the index and the scan disagree");
    let indexed = time(&|f| classifier.classify(Direction::Out, f).map_or(0, |m| m.policy_id));
    let linear = time(&|f| classifier.classify_linear(Direction::Out, f).map_or(0, |m| m.policy_id));
    println!("| rules | flows | compile | indexed ns/packet | first-match scan ns/packet (reference) | speed-up |");
    println!("|---|---|---|---|---|---|");
    println!("| {n_rules} | {n_flows} | {:.1} ms | {indexed:.1} | {linear:.1} | {:.1}x |", compile.as_secs_f64() * 1e3, linear / indexed);
}
