//! The negotiation discovery flow state table ([MS-IKEE] 3.7.1): one entry per key under
//! concurrent inserts, monotone flags, aging, eviction and the full table.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier};

use dataplane::nd::{Entry, FlowFlags, FlowKey, FlowTable, FlowTableConfig, Transport};

fn key(i: u32) -> FlowKey {
    let remote = IpAddr::V4(Ipv4Addr::from(0xC612_0000 | (i >> 16)));
    let local = IpAddr::V4(Ipv4Addr::new(198, 18, 255, 1));
    FlowKey::new(local, remote, 6, Transport::Ports { local: i as u16, remote: 443 })
}

fn table(capacity: usize, idle_timeout: u32) -> FlowTable {
    FlowTable::new(FlowTableConfig { capacity, idle_timeout })
}

fn entry(e: Entry) -> dataplane::nd::table::FlowRef {
    match e {
        Entry::Found(r) | Entry::Inserted(r) => r,
        Entry::Full => panic!("table full"),
    }
}

#[test]
fn concurrent_inserts_of_the_same_key_yield_one_entry() {
    const KEYS: u32 = 20_000;
    for threads in [2, 4] {
        let t = Arc::new(table(2 * KEYS as usize, 1000));
        let start = Arc::new(Barrier::new(threads));
        let inserted: Vec<Vec<u32>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    let (t, start) = (t.clone(), start.clone());
                    s.spawn(move || {
                        start.wait();
                        (0..KEYS).filter(|&i| matches!(t.lookup_or_insert(&key(i), 0), Entry::Inserted(_))).collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<u32> = inserted.concat();
        all.sort_unstable();
        let before = all.len();
        all.dedup();
        let stats = t.stats();
        assert_eq!((before, all.len()), (KEYS as usize, KEYS as usize), "every key inserted exactly once ({threads} threads), {stats:?}");
        assert_eq!(stats.flows, u64::from(KEYS));
        assert_eq!(stats.evicted, 0);
        // Each key is found, and setting a flag on one thread's handle is seen through any lookup.
        for i in 0..KEYS {
            let r = t.lookup(&key(i), 0).expect("entered");
            t.set_flags(&key(i), r, FlowFlags::ACQUIRE, 0).unwrap();
            assert!(t.lookup(&key(i), 0).unwrap().flags.acquire());
        }
    }
}

#[test]
fn flags_only_go_from_clear_to_set_under_concurrent_updates() {
    let t = Arc::new(table(1000, 1000));
    let flags = [FlowFlags::SECURE, FlowFlags::GUARANTEED_ENCRYPTION, FlowFlags::ACQUIRE];
    for i in 0..200 {
        let k = key(i);
        let r = entry(t.lookup_or_insert(&k, 0));
        std::thread::scope(|s| {
            for f in flags {
                let t = &t;
                s.spawn(move || {
                    let (_, before) = t.set_flags(&k, r, f, 0).unwrap();
                    // Whatever else was set before stays set after.
                    let after = t.lookup(&k, 0).unwrap().flags;
                    assert!(after.contains(before | f), "{before:?} + {f:?} -> {after:?}");
                });
            }
        });
        let all = t.lookup(&k, 0).unwrap().flags;
        assert_eq!(all, FlowFlags::SECURE | FlowFlags::GUARANTEED_ENCRYPTION | FlowFlags::ACQUIRE);
        // Setting nothing new reports the flags and changes nothing.
        let (_, before) = t.set_flags(&k, r, FlowFlags::SECURE, 0).unwrap();
        assert_eq!(before, all);
    }
    assert_eq!(t.stats().secure_flows, 200);
}

#[test]
fn aging_removes_idle_flows_that_are_not_secure_and_keeps_secure_ones() {
    let t = table(100, 10);
    let (idle, busy, secure) = (key(1), key(2), key(3));
    for k in [idle, busy, secure] {
        entry(t.lookup_or_insert(&k, 100));
    }
    let r = t.lookup(&secure, 100).unwrap();
    t.set_flags(&secure, r, FlowFlags::SECURE, 100).unwrap();
    assert_eq!(t.age(110, 0, t.buckets()), 0, "not idle longer than the timeout yet");
    t.lookup(&busy, 105).unwrap();
    assert_eq!(t.age(111, 0, t.buckets()), 1);
    assert!(t.lookup(&idle, 111).is_none());
    assert!(t.lookup(&busy, 111).is_some());
    // Long after: the Secure flow is still there, still Secure.
    assert_eq!(t.age(100_000, 0, t.buckets()), 1);
    assert!(t.lookup(&secure, 100_000).unwrap().flags.secure());
    let s = t.stats();
    assert_eq!((s.flows, s.aged, s.secure_flows), (1, 2, 1));
    // A lcore whose clock runs ahead does not make entries look idle to one behind.
    entry(t.lookup_or_insert(&idle, 200_000));
    assert_eq!(t.age(199_000, 0, t.buckets()), 0);
}

#[test]
fn a_flag_set_through_a_stale_handle_reaches_its_own_flow_only() {
    let t = table(4, 1);
    let (a, b) = (key(10), key(11));
    let ra = entry(t.lookup_or_insert(&a, 0));
    t.age(5, 0, t.buckets());
    // The slot may now be reused by another flow; the old handle must not mark that flow.
    entry(t.lookup_or_insert(&b, 5));
    let (now_a, before) = t.set_flags(&a, ra, FlowFlags::SECURE, 5).unwrap();
    assert_eq!(before, FlowFlags::NONE);
    assert!(now_a.flags.secure());
    assert!(t.lookup(&a, 5).unwrap().flags.secure());
    assert!(!t.lookup(&b, 5).unwrap().flags.secure());
}

#[test]
fn a_full_table_evicts_the_oldest_unsecured_flow_and_never_a_secure_one() {
    // Two buckets of eight slots (11 / 0.7 rounded up to whole buckets).
    let t = table(11, 1000);
    assert_eq!(t.slots(), 16);
    let mut secure = Vec::new();
    let mut full_key = None;
    for i in 0..1000 {
        let k = key(i);
        match t.lookup_or_insert(&k, i) {
            Entry::Inserted(r) => {
                t.set_flags(&k, r, FlowFlags::SECURE, i).unwrap();
                secure.push(k);
            }
            Entry::Found(_) => panic!("new key found"),
            Entry::Full => {
                full_key = Some(k);
                break;
            }
        }
    }
    let full_key = full_key.expect("the table filled up");
    assert!(secure.len() <= 16);
    assert_eq!(t.stats().full, 1);
    // Full is permanent for that key (its buckets hold only Secure entries, which never leave)...
    assert_eq!(t.lookup_or_insert(&full_key, 2000), Entry::Full);
    t.age(u32::MAX / 2, 0, t.buckets());
    assert_eq!(t.lookup_or_insert(&full_key, u32::MAX / 2), Entry::Full);
    // ...and every Secure flow is still there.
    for k in &secure {
        assert!(t.lookup(k, 0).unwrap().flags.secure());
    }
    assert_eq!(t.stats().evicted, 0);

    // Without Secure flows a new flow always gets in, by evicting the oldest one.
    let t = table(11, 1000);
    for i in 0..100 {
        assert!(matches!(t.lookup_or_insert(&key(i), i), Entry::Inserted(_)));
        assert!(t.lookup(&key(i), i).is_some());
    }
    let s = t.stats();
    assert!(s.flows <= 16 && s.evicted == 100 - s.flows, "{s:?}");
    assert!(t.lookup(&key(0), 100).is_none(), "the oldest went first");
}

#[test]
fn memory_is_bounded_and_allocated_once() {
    let t = table(1_000_000, 10);
    let per_flow = t.memory_bytes() as f64 / 1e6;
    assert!(per_flow <= 70.0, "{per_flow} bytes per flow");
    for i in 0..200_000 {
        entry(t.lookup_or_insert(&key(i), 0));
    }
    assert_eq!(t.memory_bytes() as f64 / 1e6, per_flow);
    assert_eq!(t.stats().flows, 200_000);
}
