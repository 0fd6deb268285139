//! One writer installs, updates and deletes SAs and swaps SPD snapshots at full speed while reader
//! threads check every record and snapshot they read: no torn record, no SA seen after its delete
//! returned, no live SA missing, no mixed snapshot.

mod common;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TempPath;
use shared::addr::RawAddr;
use shared::event::SaKey;
use shared::layout::Capacities;
use shared::ops::Writer;
use shared::policy::{Action, Policy, PolicyFlags, Prefix, SaTemplate, Selector};
use shared::reader::Reader;
use shared::region::Region;
use shared::sa::{Direction, Mode};
use shared::synthetic::{synthetic_sa, synthetic_version, SYNTHETIC_DST};

/// A multiple of the SAD capacity: until slots are recycled, SA number i sits in slot i and its SPI's
/// low bits name that slot, so lookups take the SPI-slot path as well as the index path.
const FIRST_SPI: u32 = 10 * SAS;
const SAS: u32 = 2_048;
const LIVE_TARGET: usize = 1_500;
const RUN: Duration = Duration::from_secs(4);

/// A snapshot tagged `tag`: `tag % 8 + 1` rules that all carry reqid `tag`.
fn snapshot(tag: u32) -> Vec<Policy> {
    let addr = |s: &str| s.parse::<IpAddr>().unwrap();
    (0..tag % 8 + 1)
        .map(|i| Policy {
            priority: i,
            direction: Direction::Out,
            selector: Selector {
                src: Prefix::new(addr("198.18.0.0"), 15),
                dst: Prefix::new(addr("198.19.0.0"), 16),
                proto: None,
                src_ports: (0, u16::MAX),
                dst_ports: (0, u16::MAX),
                icmp_type: None,
                icmp_code: None,
            },
            action: Action::Protect {
                reqid: tag,
                template: SaTemplate { mode: Mode::Tunnel, src: addr("198.18.0.1"), dst: addr("198.19.0.1") },
            },
            flags: PolicyFlags::default(),
        })
        .collect()
}

#[derive(Default)]
struct Findings {
    lookups: AtomicU64,
    found: AtomicU64,
    found_in_spi_slot: AtomicU64,
    torn: AtomicU64,
    seen_after_delete: AtomicU64,
    missing: AtomicU64,
    contended: AtomicU64,
    snapshots: AtomicU64,
    mixed_snapshots: AtomicU64,
}

#[test]
fn readers_never_see_torn_deleted_missing_or_mixed_state() {
    let path = TempPath::new("torture");
    let caps = Capacities { sas: SAS, policies: 16, events: 64, readers: 8, reqids: 64, ..Capacities::default() };
    let region = Arc::new(Region::create(&path.0, caps).unwrap());
    let next_spi = Arc::new(AtomicU32::new(FIRST_SPI));
    let deleted_below = Arc::new(AtomicU32::new(FIRST_SPI));
    let stop = Arc::new(AtomicBool::new(false));
    let findings = Arc::new(Findings::default());

    let readers: Vec<_> = (0..2)
        .map(|seed| {
            let (region, next_spi, deleted_below, stop, f) =
                (region.clone(), next_spi.clone(), deleted_below.clone(), stop.clone(), findings.clone());
            std::thread::spawn(move || {
                let mut reader = Reader::attach(region).unwrap();
                let dst = RawAddr::from(SYNTHETIC_DST);
                let mut rng = 0x2545_f491_4f6c_dd1du64 ^ seed;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let deleted_before = deleted_below.load(Ordering::Acquire);
                    let hi = next_spi.load(Ordering::Acquire);
                    // Mostly the live window, plus a few recently deleted SPIs.
                    let lo = deleted_before.saturating_sub(64).max(FIRST_SPI);
                    let spi = lo + (rng % (hi - lo + 1) as u64) as u32;
                    f.lookups.fetch_add(1, Ordering::Relaxed);
                    match reader.lookup(spi, &dst) {
                        Ok(Some(h)) => {
                            f.found.fetch_add(1, Ordering::Relaxed);
                            if reader.sad().spi_slot(spi) == Some(h.slot) {
                                f.found_in_spi_slot.fetch_add(1, Ordering::Relaxed);
                            }
                            if spi < deleted_before {
                                f.seen_after_delete.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Ok(Some(record)) = reader.read_sa(h) {
                                let ok = record.to_config().ok().and_then(|c| synthetic_version(&c)).is_some();
                                if !ok || record.spi != spi {
                                    f.torn.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        Ok(None) => {
                            // Deletes are FIFO, so only SPIs below deleted_below, or the one being
                            // deleted right now (== deleted_below), may be absent; SPIs at or above
                            // `hi` were not added when the lookup started.
                            let deleted_after = deleted_below.load(Ordering::Acquire);
                            if spi > deleted_after && spi < hi {
                                f.missing.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            f.contended.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    n += 1;
                    if n.is_multiple_of(64) {
                        let view = reader.spd();
                        if let Some(first) = view.get(0) {
                            let tag = first.reqid;
                            let consistent = view.len() as u32 == tag % 8 + 1 && view.iter().all(|p| p.reqid == tag);
                            if !consistent {
                                f.mixed_snapshots.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        f.snapshots.fetch_add(1, Ordering::Relaxed);
                    }
                    reader.quiescent();
                }
            })
        })
        .collect();

    let mut writer = Writer::attach(region.clone()).unwrap();
    let mut live: VecDeque<(u32, u32)> = VecDeque::new();
    let mut rng = 0x9e37_79b9u64;
    let (mut adds, mut updates, mut deletes, mut publishes, mut tag) = (0u64, 0u64, 0u64, 0u64, 1u32);
    let start = Instant::now();
    while start.elapsed() < RUN {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let roll = rng % 100;
        if live.len() < LIVE_TARGET / 2 || (roll < 35 && live.len() < LIVE_TARGET) {
            let spi = next_spi.load(Ordering::Relaxed);
            writer.add_sa(&synthetic_sa(spi, 0)).unwrap();
            live.push_back((spi, 0));
            next_spi.store(spi + 1, Ordering::Release);
            adds += 1;
        } else if roll < 70 {
            let i = (rng >> 8) as usize % live.len();
            let (spi, version) = live[i];
            writer.update_sa(&synthetic_sa(spi, version + 1)).unwrap();
            live[i].1 = version + 1;
            updates += 1;
        } else {
            let (spi, _) = live.pop_front().unwrap();
            writer.del_sa(SaKey { spi, dst: SYNTHETIC_DST }).unwrap();
            deleted_below.store(spi + 1, Ordering::Release);
            deletes += 1;
        }
        if (adds + updates + deletes) % 200 == 0 {
            tag = tag % 63 + 1;
            writer.flush_policies().unwrap();
            writer.add_policies(&snapshot(tag)).unwrap();
            publishes += 2;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }

    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let f = &findings;
    println!(
        "writer: {adds} adds, {updates} updates, {deletes} deletes, {publishes} SPD publishes; readers: {} lookups, {} found ({} in the SPI's slot), {} contended, {} snapshots",
        get(&f.lookups),
        get(&f.found),
        get(&f.found_in_spi_slot),
        get(&f.contended),
        get(&f.snapshots)
    );
    assert_eq!(get(&f.torn), 0, "torn records");
    assert_eq!(get(&f.seen_after_delete), 0, "SAs seen after their delete returned");
    assert_eq!(get(&f.missing), 0, "live SAs not found");
    assert_eq!(get(&f.mixed_snapshots), 0, "mixed SPD snapshots");
    assert!(adds > 10_000 && updates > 10_000 && deletes > 10_000 && publishes > 100, "the writer was busy");
    assert!(get(&f.found) > 100_000 && get(&f.snapshots) > 1_000, "the readers were busy");
    assert!(get(&f.found_in_spi_slot) > 100, "both lookup paths were exercised");
}
