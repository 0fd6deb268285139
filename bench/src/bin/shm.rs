//! Benchmarks of the shared region (issue: foundation). Prints a Markdown report.
//!
//! `cargo run --release -p bench --bin shm [-- --sas N --seconds S --dir D]`
//! (`--dir` a hugetlbfs mount to put the region on huge pages; see hugepages.md)
//!
//! - writer throughput: SA installs per second into an empty table;
//! - lookup by SPI in the full table, p50/p99 ns per lookup, with one and two reader threads
//!   while the writer keeps updating SAs: scalar lookups and bursts of 32 with prefetch (what the
//!   dataplane does), each timed per batch of 32 and divided by 32. Twice: for SPIs chosen by the
//!   gateway (`get_spi`, every negotiated inbound SA: found in the SPI's own slot) and for SPIs
//!   chosen by someone else (static configuration: found through the index);
//! - the reference for lookups, measured in the same run: 32 random cache-line reads with
//!   prefetch over a buffer as large as the SA records (one DRAM miss each, the floor for a
//!   lookup that reads its record);
//! - install-to-visible: from `add_sa` returning to a spinning reader seeing the SA;
//! - region bytes per SA and per policy.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::{arg, Rng};
use hdrhistogram::Histogram;
use shared::addr::RawAddr;
use shared::layout::Capacities;
use shared::ops::Writer;
use shared::reader::Reader;
use shared::region::Region;
use shared::sad::SaHandle;
use shared::seqlock::Contended;
use shared::synthetic::{synthetic_sa, SYNTHETIC_DST};

const FIRST_SPI: u32 = 1_000;



fn main() {
    let sas: u32 = arg("--sas", 1_000_000);
    let seconds: f64 = arg("--seconds", 2.0);
    let dir: String = arg("--dir", "/dev/shm".to_owned());
    let path = format!("{dir}/ipsec-gw-bench-{}", std::process::id());
    let caps = Capacities { sas, readers: 8, ..Capacities::default() };
    let region = Arc::new(Region::create(&path, caps).expect("create region"));
    let result = std::panic::catch_unwind(|| run(&region, sas, seconds));
    let _ = Region::remove(&path);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn run(region: &Arc<Region>, sas: u32, seconds: f64) {
    println!("## Shared region: {sas} SAs in {}, runs of {seconds} s\n", region.path().display());
    let static_spis: Vec<u32> = (0..sas).map(|i| FIRST_SPI + i).collect();
    let configs: Vec<_> = static_spis.iter().map(|spi| synthetic_sa(*spi, 0)).collect();
    let mut writer = Writer::attach(region.clone()).unwrap();
    let start = Instant::now();
    for c in &configs {
        writer.add_sa(c).unwrap();
    }
    let install = start.elapsed();
    println!("| measure | value |\n|---|---|");
    println!("| writer: SA installs per second (empty table to {sas}) | {:.0} |", sas as f64 / install.as_secs_f64());

    let reference = random_line_reads(region.capacities().sas as usize * std::mem::size_of::<shared::sad::SaSlot>());
    println!("| reference: random cache-line read in a burst of 32 with prefetch, same size as the SA records: ns | {reference:.1} |");
    let writer = Arc::new(std::sync::Mutex::new(writer));
    report_lookups(region, &writer, &Arc::new(static_spis), "static SPIs (index)", seconds, reference);

    let negotiated_spis = {
        let mut w = writer.lock().unwrap();
        w.flush_sas();
        let start = Instant::now();
        let spis: Vec<u32> = (0..sas)
            .map(|_| {
                let spi = w.get_spi(synthetic_sa(0, 0).src, SYNTHETIC_DST).unwrap();
                w.add_sa(&synthetic_sa(spi, 0)).unwrap();
                spi
            })
            .collect();
        println!("| writer: get_spi + add_sa per second (empty table to {sas}) | {:.0} |", sas as f64 / start.elapsed().as_secs_f64());
        spis
    };
    report_lookups(region, &writer, &Arc::new(negotiated_spis.clone()), "SPIs from get_spi (SPI's slot)", seconds, reference);

    let (p50, p99, p999) = install_to_visible(region, &writer, &negotiated_spis);
    println!("| install-to-visible (add_sa returns -> reader sees it): p50 / p99 / p99.9 ns | {p50} / {p99} / {p999} |");

    let per_sa = std::mem::size_of::<shared::sad::SaSlot>() + 2 * 8 + std::mem::size_of::<shared::counters::SaRuntime>();
    println!("| region bytes per SA (record, 2 index entries, runtime counters) | {per_sa} |");
    println!("| region bytes per policy (2 snapshot buffers) | {} |", 2 * std::mem::size_of::<shared::spd::PolicySlot>());
    println!("| region size for this run | {} MiB |", region.layout().size >> 20);
}

fn report_lookups(
    region: &Arc<Region>,
    writer: &Arc<std::sync::Mutex<Writer>>,
    spis: &Arc<Vec<u32>>,
    origin: &str,
    seconds: f64,
    reference: f64,
) {
    for readers in [1usize, 2] {
        for burst in [false, true] {
            let (p50, p99, updates) = lookups_with_busy_writer(region, writer, spis, readers, burst, seconds);
            let kind = if burst { "burst of 32 with prefetch" } else { "scalar" };
            println!(
                "| lookup by SPI, {origin}, {readers} reader(s), {kind}, writer busy ({updates:.0} updates/s): p50 / p99 ns (p50 / reference) | {p50:.1} / {p99:.1} ({:.2}x) |",
                p50 / reference
            );
        }
    }
}

/// Nanoseconds per random 64-byte line read over a buffer of `bytes`, in bursts of 32 whose lines
/// are prefetched first: what one DRAM miss per lookup costs on this machine right now.
fn random_line_reads(bytes: usize) -> f64 {
    let lines: Vec<[u64; 8]> = vec![[1; 8]; bytes / 64];
    let mut rng = Rng(0x5eed);
    let mut sum = 0u64;
    let bursts = 200_000;
    let start = Instant::now();
    for _ in 0..bursts {
        let mut picks = [0usize; 32];
        for p in picks.iter_mut() {
            *p = (rng.next() % lines.len() as u64) as usize;
            shared::region::prefetch(&lines[*p]);
        }
        for p in picks {
            sum = sum.wrapping_add(lines[p][0]);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (bursts * 32) as f64;
    assert_eq!(sum, bursts as u64 * 32);
    ns
}

/// Reader threads look up random SPIs while the writer updates random SAs.
fn lookups_with_busy_writer(
    region: &Arc<Region>,
    writer: &Arc<std::sync::Mutex<Writer>>,
    spis: &Arc<Vec<u32>>,
    readers: usize,
    burst: bool,
    seconds: f64,
) -> (f64, f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let updater = {
        let (writer, stop, updates, spis) = (writer.clone(), stop.clone(), updates.clone(), spis.clone());
        std::thread::spawn(move || {
            let mut w = writer.lock().unwrap();
            let mut rng = Rng(0x1234_5678);
            let mut version = 1;
            while !stop.load(Ordering::Relaxed) {
                let spi = spis[(rng.next() % spis.len() as u64) as usize];
                w.update_sa(&synthetic_sa(spi, version)).unwrap();
                version += 1;
                updates.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let threads: Vec<_> = (0..readers)
        .map(|t| {
            let (region, stop, spis) = (region.clone(), stop.clone(), spis.clone());
            std::thread::spawn(move || {
                let mut reader = Reader::attach(region).unwrap();
                let mut hist = Histogram::<u64>::new(3).unwrap();
                let mut rng = Rng(0x9e37_79b9 + t as u64);
                let dst = RawAddr::from(SYNTHETIC_DST);
                let mut keys = [(0u32, dst); 32];
                let mut out: [Result<Option<SaHandle>, Contended>; 32] = [Ok(None); 32];
                let (mut misses, mut contended) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    for k in keys.iter_mut() {
                        k.0 = spis[(rng.next() % spis.len() as u64) as usize];
                    }
                    let t0 = Instant::now();
                    if burst {
                        reader.sad().lookup_burst(&keys, &mut out);
                    } else {
                        for (o, (spi, dst)) in out.iter_mut().zip(&keys) {
                            *o = reader.lookup(*spi, dst);
                        }
                    }
                    let ns = t0.elapsed().as_nanos() as u64;
                    misses += out.iter().filter(|o| matches!(o, Ok(None))).count() as u64;
                    // A writer preempted in the middle of a record write (3 threads, 2 cores).
                    contended += out.iter().filter(|o| o.is_err()).count() as u64;
                    // Hundredths of a nanosecond per lookup.
                    hist.record(ns * 100 / 32).unwrap();
                    reader.quiescent();
                }
                assert_eq!(misses, 0, "every SA is installed");
                (hist, contended)
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let mut all = Histogram::<u64>::new(3).unwrap();
    let mut contended = 0;
    for t in threads {
        let (hist, c) = t.join().unwrap();
        all.add(hist).unwrap();
        contended += c;
    }
    if contended > 0 {
        eprintln!("({contended} lookups found their record being written and gave up after {} tries)", shared::seqlock::READ_ATTEMPTS);
    }
    updater.join().unwrap();
    let pct = |q: f64| all.value_at_quantile(q) as f64 / 100.0;
    (pct(0.5), pct(0.99), updates.load(Ordering::Relaxed) as f64 / elapsed)
}

/// The writer installs new SAs one at a time; a reader spins on the next SPI and records how long
/// after `add_sa` returned it saw the SA (0 if it saw it before the call returned).
fn install_to_visible(region: &Arc<Region>, writer: &Arc<std::sync::Mutex<Writer>>, installed: &[u32]) -> (u64, u64, u64) {
    let samples = installed.len().min(20_000);
    let epoch = Instant::now();
    let target = Arc::new(AtomicU32::new(0));
    let returned_at = Arc::new(AtomicU64::new(u64::MAX));
    let seen = Arc::new(AtomicU32::new(0));
    let mut w = writer.lock().unwrap();
    // Make room: delete the first `samples` SAs.
    for spi in &installed[..samples] {
        w.del_sa(shared::event::SaKey { spi: *spi, dst: SYNTHETIC_DST }).unwrap();
    }
    let spis: Vec<u32> = (0..samples).map(|_| w.get_spi(synthetic_sa(0, 0).src, SYNTHETIC_DST).unwrap()).collect();
    let reader = {
        let (region, target, returned_at, seen, spis) = (region.clone(), target.clone(), returned_at.clone(), seen.clone(), spis.clone());
        std::thread::spawn(move || {
            let mut reader = Reader::attach(region).unwrap();
            let dst = RawAddr::from(SYNTHETIC_DST);
            let mut hist = Histogram::<u64>::new(3).unwrap();
            for (i, spi) in spis.iter().enumerate() {
                while target.load(Ordering::Acquire) != i as u32 + 1 {
                    std::hint::spin_loop();
                }
                while !matches!(reader.lookup(*spi, &dst), Ok(Some(_))) {
                    std::hint::spin_loop();
                }
                let now = epoch.elapsed().as_nanos() as u64;
                let mut ret = returned_at.load(Ordering::Acquire);
                while ret == u64::MAX {
                    ret = returned_at.load(Ordering::Acquire);
                }
                hist.record(now.saturating_sub(ret)).unwrap();
                seen.store(i as u32 + 1, Ordering::Release);
                reader.quiescent();
            }
            hist
        })
    };
    for (i, spi) in spis.iter().enumerate() {
        returned_at.store(u64::MAX, Ordering::Release);
        target.store(i as u32 + 1, Ordering::Release);
        w.add_sa(&synthetic_sa(*spi, 0)).unwrap();
        returned_at.store(epoch.elapsed().as_nanos() as u64, Ordering::Release);
        while seen.load(Ordering::Acquire) != i as u32 + 1 {
            std::hint::spin_loop();
        }
    }
    let hist = reader.join().unwrap();
    (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99), hist.value_at_quantile(0.999))
}
