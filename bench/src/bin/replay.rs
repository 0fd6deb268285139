//! One inbound SA decrypted on one and on two threads at once, with sequence numbers rising as in
//! live traffic: what the state the threads share costs (issue: DPDK gateway, "one SA carrying
//! traffic on several lcores at once"). The gateway benchmark cannot show it: its pcap replays the
//! same 64 sequence numbers with anti-replay off, so after the first pass nothing shared moves.
//! Prints a Markdown table.
//!
//! `cargo run --release -p bench --bin replay [-- --packets N --chunk C]`
//!
//! N AES-256-GCM ESP packets (64-byte frames: 50-byte inner IPv4 packets, tunnel mode) are
//! encrypted once with sequence numbers 1..=N. Each thread then decrypts its share from a fresh
//! copy, as the pipeline does: `dataplane::esp::decrypt::inbound` (lookup, anti-replay check,
//! AES-GCM open, commit to the window), then records the SA's `replay_top` in a real region as the
//! pipeline does (`gateway::round_traffic`, a chunk standing for a burst). Two
//! threads take chunks of C packets in turn (chunk k to thread k % 2), as two RX queues would
//! take a sender's bursts, and neither runs more than a few chunks ahead of the other (a sender
//! feeds both at one rate). Cases, each on one and on two threads (best of 3 runs each):
//!
//! - `own SA each (reference)`: each thread decrypts the same packets under an SA of its own: nothing shared,
//!   the reference for how two threads scale on this machine;
//! - `one SA, anti-replay off`: the SA's window top and its `replay_top` in the region are shared;
//! - `one SA, anti-replay 1024`: also the window's bitmap (a compare-and-swap per packet).
//!
//! The last column compares two threads with the reference's two threads of the same run (the
//! one-thread rates of this VM vary more from run to run than the two-thread ones). Every packet
//! must be accepted: the run fails if one is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bench::{arg, esp_sa, ipv4_udp};
use dataplane::esp::decrypt::{inbound, Inbound};
use dataplane::gateway::round_traffic::RoundTraffic;
use dataplane::{encapsulate, InboundSa, OutboundSa, PacketBuf, SliceBuf};
use shared::layout::Capacities;
use shared::ops::Writer;
use shared::reader::Reader;
use shared::region::Region;
use shared::sa::*;

/// A 64-byte Ethernet frame carries a 50-byte IPv4 packet.
const INNER_LEN: usize = 50;
/// Room for each encrypted packet in the one buffer that holds them all.
const STRIDE: usize = 128;
/// How many chunks a thread may run ahead of the other.
const AHEAD: u64 = 4;
const GCM_256: Suite = Suite::AesGcm { key: AesKeySize::Aes256, icv_len: 16 };

/// The N packets, encrypted with sequence numbers 1..=N, each at `i * STRIDE` (length first).
fn encrypted_packets(n: usize) -> Vec<u8> {
    let out = OutboundSa::new(&esp_sa(GCM_256, Direction::Out, 0)).unwrap();
    let plain = ipv4_udp(INNER_LEN);
    let mut all = vec![0u8; n * STRIDE];
    let mut mem = vec![0u8; 512];
    for (i, slot) in all.chunks_exact_mut(STRIDE).enumerate() {
        let mut b = SliceBuf::with_packet(&mut mem, 128, &plain).unwrap();
        encapsulate(&out, i as u64 + 1, &mut b).unwrap();
        let wire = b.data();
        slot[0] = wire.len() as u8;
        slot[1..1 + wire.len()].copy_from_slice(wire);
    }
    all
}

/// A region holding the inbound SA, as the gateway reads it; the reader gives its runtime state.
struct RegionSa {
    path: std::path::PathBuf,
    reader: Reader,
    handle: shared::sad::SaHandle,
}

impl RegionSa {
    fn new(replay_window: u32, index: usize) -> RegionSa {
        let path = std::env::temp_dir().join(format!("bench-replay-{}-{index}", std::process::id()));
        let _ = Region::remove(&path);
        let caps = Capacities { sas: 16, policies: 16, readers: 4, reqids: 16, ..Capacities::default() };
        let region = Arc::new(Region::create(&path, caps).unwrap());
        let cfg = esp_sa(GCM_256, Direction::In, replay_window);
        Writer::attach(region.clone()).unwrap().add_sa(&cfg).unwrap();
        let reader = Reader::attach(region).unwrap();
        let handle = reader.lookup(cfg.spi, &cfg.dst.into()).unwrap().unwrap();
        RegionSa { path, reader, handle }
    }
}

impl Drop for RegionSa {
    fn drop(&mut self) {
        let _ = Region::remove(&self.path);
    }
}

/// Decrypts the chunks `first, first + step, ...` of `packets` under `sa`, recording the region's
/// replay top as the pipeline does (`RoundTraffic`: a chunk's first number at once, its highest
/// at the chunk's end); waits while it is `AHEAD` chunks past the slowest thread.
/// Returns how many packets were accepted.
fn decrypt_share(packets: &[u8], chunk: usize, first: usize, step: usize, sa: &InboundSa, region: &RegionSa, progress: &[Apart<AtomicU64>]) -> u64 {
    let runtime = region.reader.runtime(region.handle);
    let mut mem = vec![0u8; 512];
    let mut accepted = 0;
    let mut traffic = RoundTraffic::default();
    let chunks = packets.len() / STRIDE / chunk;
    for k in (first..chunks).step_by(step) {
        while progress.iter().any(|p| p.0.load(Ordering::Relaxed).saturating_add(AHEAD * step as u64) <= k as u64) {
            std::hint::spin_loop();
        }
        for slot in packets[k * chunk * STRIDE..(k + 1) * chunk * STRIDE].chunks_exact(STRIDE) {
            let wire = &slot[1..1 + usize::from(slot[0])];
            let mut b = SliceBuf::with_packet(&mut mem, 128, wire).unwrap();
            if let Ok(Inbound::Decapsulated(d)) = inbound(&mut b, &[], |_, _| Some(sa)) {
                if traffic.count(region.handle, wire.len() as u64, Some(d.seq), |_, _, _| {}) {
                    runtime.raise_replay_top(d.seq);
                }
                accepted += 1;
            }
        }
        // The chunk is a burst: before it would be sent.
        traffic.take_replay_tops(|_, seq| runtime.raise_replay_top(seq));
        progress[first].0.store(k as u64 + 1, Ordering::Relaxed);
    }
    progress[first].0.store(u64::MAX, Ordering::Relaxed);
    accepted
}

/// An SA on cache lines of its own, so that two threads' SAs share none.
#[repr(align(128))]
struct Apart<T>(T);

/// Decrypts all packets on `threads` threads, under one SA or one per thread; returns Mpps.
fn run(packets: &[u8], chunk: usize, threads: usize, replay_window: u32, shared_sa: bool) -> f64 {
    let sas: Vec<Apart<InboundSa>> = (0..threads).map(|_| Apart(InboundSa::new(&esp_sa(GCM_256, Direction::In, replay_window), None).unwrap())).collect();
    let regions: Vec<RegionSa> = (0..if shared_sa { 1 } else { threads }).map(|i| RegionSa::new(replay_window, i)).collect();
    let progress: Vec<Apart<AtomicU64>> = (0..threads).map(|_| Apart(AtomicU64::new(0))).collect();
    let start = Instant::now();
    let accepted: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (sa, region) = if shared_sa { (&sas[0].0, &regions[0]) } else { (&sas[t].0, &regions[t]) };
                let progress = &progress;
                s.spawn(move || {
                    // As the gateway's lcores do: intel-ipsec-mb 1.3 writes one process-wide
                    // variable in every call, which alone would stop two threads scaling.
                    if threads > 1 {
                        ipsec_mb::use_private_copy().unwrap();
                    }
                    decrypt_share(packets, chunk, t, threads, sa, region, progress)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let n = (packets.len() / STRIDE / chunk * chunk) as u64;
    assert_eq!(accepted, n, "every packet must be accepted ({threads} threads, window {replay_window})");
    n as f64 / elapsed / 1e6
}

fn main() {
    let n: usize = arg("--packets", 4_000_000);
    let chunk: usize = arg("--chunk", 32);
    let packets = encrypted_packets(n);
    println!("{n} packets of 64-byte frames, AES-256-GCM, chunks of {chunk} packets taken in turn; best of 3 runs\n");
    println!("| case | 1 thread, Mpps | 2 threads, Mpps | 2 threads / 1 | 2 threads / reference's 2 |");
    println!("|---|---|---|---|---|");
    let mut reference = None;
    for (name, window, shared_sa) in [("own SA each (reference)", 1024, false), ("one SA, anti-replay off", 0, true), ("one SA, anti-replay 1024", 1024, true)] {
        let best = |threads| (0..3).map(|_| run(&packets, chunk, threads, window, shared_sa)).fold(0.0, f64::max);
        let (one, two) = (best(1), best(2));
        let reference = *reference.get_or_insert(two);
        println!("| {name} | {one:.2} | {two:.2} | {:.2}x | {:.2} |", two / one, two / reference);
    }
}
