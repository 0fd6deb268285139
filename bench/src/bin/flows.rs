//! Benchmark of the negotiation discovery flow state table (dataplane::nd, [MS-IKEE] 3.7).
//! Prints a Markdown table.
//!
//! `cargo run --release -p bench --bin flows [-- --seconds S --max N]`
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

use dataplane::nd::table::FlowHash;
use dataplane::nd::{Entry, FlowKey, FlowTable, FlowTableConfig, Transport};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

const BURST: usize = 32;

fn key(i: u64) -> FlowKey {
    let local = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    let remote = IpAddr::V4(Ipv4Addr::from(0xC612_0000 | (i >> 16) as u32));
    FlowKey::new(local, remote, 17, Transport::Ports { local: i as u16, remote: 4500 })
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((u128::from(self.0) * u128::from(n)) >> 64) as u64
    }
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
