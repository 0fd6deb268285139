//! Benchmark of the negotiation discovery flow state table (dataplane::nd, [MS-IKEE] 3.7).
//! Prints a Markdown table.
//!
//! `cargo run --release -p bench --bin flows [-- --seconds S --max N]`
//! `cargo run --release -p bench --bin flows -- --pipeline [--seconds S]`: the gateway pipeline
//! with negotiation discovery on and off (see `mod pipeline`).
//!
//! For 1,000, 1,000,000 and 10,000,000 flows (up to `--max`), each in a table sized for exactly
//! that many flows: the table's bytes per flow; how many inserts of the full set evicted an older
//! flow (the table is sized so this stays near zero); then lookups of random existing flows in
//! bursts of 32 (hash all, start their loads, then look each up: what the dataplane does), with one
//! and with two threads, as lookups per second per thread. The reference, measured in the same
//! run: the same bursts doing one random 64-byte read each (same key hashing) in a buffer as large
//! as the table, i.e. the floor for any structure that touches one cache line per lookup.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bench::{arg, Rng};
use dataplane::nd::table::FlowHash;
use dataplane::nd::{Entry, FlowKey, FlowTable, FlowTableConfig, Transport};

const BURST: usize = 32;

fn key(i: u64) -> FlowKey {
    let local = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    let remote = IpAddr::V4(Ipv4Addr::from(0xC612_0000 | (i >> 16) as u32));
    FlowKey::new(local, remote, 17, Transport::Ports { local: i as u16, remote: 4500 })
}

/// Runs `burst` (which returns how many of its lookups found their flow) on `threads` threads for
/// `seconds`; returns operations per second per thread.
fn per_thread_rate(threads: usize, seconds: f64, burst: impl Fn(&mut Rng) -> u64 + Sync) -> f64 {
    let ops = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (ops, burst) = (&ops, &burst);
            s.spawn(move || {
                let mut rng = Rng(0x9E37_79B9 + t as u64 * 7919);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    for _ in 0..64 {
                        std::hint::black_box(burst(&mut rng));
                        n += BURST as u64;
                    }
                }
                ops.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    ops.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64() / threads as f64
}

fn main() {
    let seconds: f64 = arg("--seconds", 1.0);
    let max: u64 = arg("--max", 10_000_000);
    if std::env::args().any(|a| a == "--pipeline") {
        pipeline::report(seconds);
        return;
    }
    println!("| flows | bytes/flow | evicted at full | threads | lookups/s per thread | reference reads/s per thread | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for flows in [1_000u64, 1_000_000, 10_000_000].into_iter().filter(|&f| f <= max) {
        let table = FlowTable::new(FlowTableConfig { capacity: flows as usize, idle_timeout: 60 });
        for i in 0..flows {
            assert!(!matches!(table.lookup_or_insert(&key(i), 0), Entry::Full));
        }
        let stats = table.stats();
        let bytes_per_flow = table.memory_bytes() as f64 / flows as f64;
        let lines = table.memory_bytes() / 64;
        let reference_buf: Vec<AtomicU64> = (0..lines * 8).map(|i| AtomicU64::new(i as u64)).collect();
        for threads in [1, 2] {
            let lookups = per_thread_rate(threads, seconds, |rng| {
                let mut keys = [key(0); BURST];
                let mut hashes = [FlowHash::default(); BURST];
                let mut warm = 0;
                for (k, h) in keys.iter_mut().zip(&mut hashes) {
                    *k = key(rng.below(flows));
                    *h = table.hash(k);
                    warm ^= table.warm(h);
                }
                std::hint::black_box(warm);
                keys.iter().zip(&hashes).filter(|(k, h)| table.lookup_hashed(k, h, 0).is_some()).count() as u64
            });
            let reference = per_thread_rate(threads, seconds, |rng| {
                let mut lines_hit = [0usize; BURST];
                for l in &mut lines_hit {
                    std::hint::black_box(table.hash(&key(rng.below(flows))));
                    *l = rng.below(lines as u64) as usize;
                }
                let sum: u64 = lines_hit.iter().map(|&l| reference_buf[l * 8].load(Ordering::Relaxed)).fold(0, u64::wrapping_add);
                std::hint::black_box(sum);
                BURST as u64
            });
            println!(
                "| {flows} | {bytes_per_flow:.1} | {} | {threads} | {:.2} M | {:.2} M | {:.2} |",
                stats.evicted,
                lookups / 1e6,
                reference / 1e6,
                lookups / reference
            );
        }
    }
}

/// The whole gateway pipeline (`dataplane::gateway::pipeline`, no NIC: frames from a buffer
/// through `Pipeline::from_port`), protected side to unprotected, 64-byte IPv4/UDP packets of
/// `flows` flows round-robin, AES-256-GCM tunnel: the same traffic under a plain protect rule
/// (negotiation discovery off) and under a negotiation discovery protect rule with its SA
/// installed (on: every packet also goes through the flow table, 3.7.4.1 "encapsulate").
mod pipeline {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;
    use std::time::Instant;

    use super::BURST;

    use dataplane::gateway::counters::LcoreCounters;
    use dataplane::gateway::ether::{Frame, Mac, ETHERTYPE_IPV4};
    use dataplane::gateway::pipeline::{Pipeline, Setup, Shared, SideSetup, Verdict};
    use dataplane::gateway::routing::{Net, Route, Routes};
    use dataplane::gateway::Side;
    use dataplane::nd::{FlowTableConfig, NegotiationDiscovery};
    use dataplane::wire::checksum::checksum;
    use dataplane::SliceBuf;
    use shared::layout::Capacities;
    use shared::ops::Writer;
    use shared::policy::{Action, Policy, PolicyFlags, Prefix, SaTemplate, Selector};
    use shared::reader::Reader;
    use shared::region::Region;
    use shared::sa::{AesKeySize, Direction, Mode, Suite, TrafficSelector};

    const HOST_MAC: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const GW_MAC: Mac = Mac([2, 0, 0, 0, 0, 2]);
    const PEER_MAC: Mac = Mac([2, 0, 0, 0, 0, 3]);

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    /// An Ethernet frame with a 64-byte IPv4/UDP packet of flow `i`.
    fn frame(i: u16) -> Vec<u8> {
        let mut f = vec![0; 14];
        Frame::emit(&mut f, GW_MAC, HOST_MAC, None, ETHERTYPE_IPV4);
        let mut ip = vec![0u8; 64];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&64u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[198, 18, 1, 10]);
        ip[16..20].copy_from_slice(&[198, 19, 1, 10]);
        let c = checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip[20..22].copy_from_slice(&(10_000 + i).to_be_bytes());
        ip[22..24].copy_from_slice(&9u16.to_be_bytes());
        ip[24..26].copy_from_slice(&44u16.to_be_bytes());
        f.extend_from_slice(&ip);
        f
    }

    fn setup() -> Setup {
        let side = |mac, addr: IpAddr| SideSetup { mac, vlan: None, addresses: vec![Net { addr, len: 24 }], mtu: 1500 };
        Setup {
            protected: side(GW_MAC, v4(198, 18, 1, 1)),
            unprotected: side(GW_MAC, v4(198, 18, 0, 1)),
            routes: Routes::new(vec![
                Route { net: Net { addr: v4(198, 19, 1, 0), len: 24 }, side: Side::Unprotected, via: Some(v4(198, 18, 0, 2)) },
                Route { net: Net { addr: v4(198, 18, 0, 0), len: 24 }, side: Side::Unprotected, via: None },
            ]),
            neighbours: [((Side::Unprotected, v4(198, 18, 0, 2)), PEER_MAC)].into_iter().collect(),
            encap_ports: vec![4500],
            icmp_errors_per_sec: 100,
        }
    }

    /// Removes the region file, also when the benchmark panics.
    struct RemoveOnDrop(String);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = Region::remove(&self.0);
        }
    }

    /// Packets per second through one pipeline, with or without negotiation discovery.
    fn run(nd: Option<usize>, flows: u16, seconds: f64) -> f64 {
        let path = format!("/dev/shm/ipsec-gw-nd-bench-{}-{}", std::process::id(), nd.is_some());
        let _remove = RemoveOnDrop(path.clone());
        let region = Arc::new(Region::create(&path, Capacities { sas: 16, readers: 4, ..Capacities::default() }).expect("region"));
        let mut writer = Writer::attach(region.clone()).expect("writer");
        let template = SaTemplate { mode: Mode::Tunnel, src: v4(198, 18, 0, 1), dst: v4(198, 18, 0, 2) };
        let any = |a| Prefix::new(a, 24);
        writer
            .add_policy(&Policy {
                priority: 1,
                direction: Direction::Out,
                selector: Selector { src: any(v4(198, 18, 1, 0)), dst: any(v4(198, 19, 1, 0)), proto: None, src_ports: (0, u16::MAX), dst_ports: (0, u16::MAX), icmp_type: None, icmp_code: None },
                action: Action::Protect { reqid: 1, template },
                flags: PolicyFlags { nd_outbound: nd.is_some(), ..PolicyFlags::default() },
            })
            .expect("policy");
        let mut sa = shared::synthetic::synthetic_sa(0x1000, 0);
        sa.direction = Direction::Out;
        sa.src = template.src;
        sa.dst = template.dst;
        sa.esn = false;
        sa.suite = Suite::AesGcm { key: AesKeySize::Aes256, icv_len: 16 };
        sa.ts_local = TrafficSelector::any_of_family(sa.src);
        sa.ts_remote = TrafficSelector::any_of_family(sa.src);
        sa.soft = Default::default();
        sa.hard = Default::default();
        sa.idle_timeout_secs = 0;
        sa.ms_flags = Default::default();
        sa.reqid = 1;
        writer.add_sa(&sa).expect("sa");
        let table = |capacity| Arc::new(NegotiationDiscovery::new(FlowTableConfig { capacity, idle_timeout: 60 }));
        let shared = Shared { nd: nd.map(table), ..Shared::default() };
        let counters = Arc::new(LcoreCounters::default());
        let mut p = Pipeline::new(Reader::attach(region.clone()).expect("reader"), Arc::new(setup()), &shared, counters.clone());
        let frames: Vec<Vec<u8>> = (0..flows).map(frame).collect();
        // As the gateway's poll loop sees them: a burst of frames received (here copied in) first,
        // then processed one by one, so that no frame is read right after it was written.
        const SLOT: usize = 512;
        let mut mem = vec![0u8; BURST * SLOT];
        let (mut sent, started) = (0u64, Instant::now());
        while started.elapsed().as_secs_f64() < seconds {
            p.begin_round();
            for burst in frames.chunks(BURST).cycle().take(32) {
                let mut bufs: Vec<SliceBuf> = mem.chunks_mut(SLOT).zip(burst).map(|(m, f)| SliceBuf::with_packet(m, 256, f).expect("fits")).collect();
                for buf in &mut bufs {
                    assert_eq!(p.from_port(Side::Protected, buf), Verdict::Transmit(Side::Unprotected));
                }
                sent += bufs.len() as u64;
            }
            p.end_round();
        }
        let rate = sent as f64 / started.elapsed().as_secs_f64();
        assert_eq!(counters.encrypted.load(std::sync::atomic::Ordering::Relaxed), sent);
        rate
    }

    pub fn report(seconds: f64) {
        println!();
        println!("| pipeline, 64 B, 1000 flows, AES-256-GCM tunnel | Mpps | ND on / off |");
        println!("|---|---:|---:|");
        // Many short rounds, each measuring all three back to back; the medians of the rates and
        // of the per-round ratios, so that load from other processes on the machine (which drifts
        // over seconds) cancels out of the ratio.
        const ROUNDS: usize = 11;
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mut rates: [Vec<f64>; 3] = Default::default();
        for _ in 0..ROUNDS {
            for (r, nd) in rates.iter_mut().zip([None, Some(10_000), Some(1_000_000)]) {
                r.push(run(nd, 1000, seconds / ROUNDS as f64));
            }
        }
        let ratio = |i: usize| median(rates[i].iter().zip(&rates[0]).map(|(on, off)| on / off).collect());
        println!("| negotiation discovery off (plain protect rule) | {:.3} | |", median(rates[0].clone()) / 1e6);
        for (i, capacity) in [(1, "10,000-flow table (0.7 MB)"), (2, "1,000,000-flow table (69 MB)")] {
            println!("| negotiation discovery on, {capacity}; ND rule, SA installed, flows Secure | {:.3} | {:.3} |", median(rates[i].clone()) / 1e6, ratio(i));
        }
    }
}
