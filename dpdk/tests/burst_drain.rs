//! Draining a burst hands its mbufs out front first, and frees what the caller did not take.

mod common;

use dpdk::{Eal, MbufBurst, Mempool, MempoolConfig, BURST_SIZE};

#[test]
fn drain_yields_in_order_and_frees_the_rest() {
    let eal = Eal::init(common::eal_args(&["-l", "0"])).unwrap();
    let pool = Mempool::new(&eal, "drain", MempoolConfig { mbufs: 255, cache_size: 0, ..MempoolConfig::default() }).unwrap();
    let mut burst = MbufBurst::new();
    pool.alloc_burst(&mut burst).unwrap();
    for (i, m) in burst.iter_mut().enumerate() {
        m.append(1).unwrap()[0] = i as u8;
    }
    assert_eq!(pool.in_use(), BURST_SIZE as u32);

    let firsts: Vec<u8> = burst.drain().take(5).map(|m| m.data()[0]).collect();
    assert_eq!(firsts, [0, 1, 2, 3, 4]);
    // The five taken were dropped by the collect, the other 27 by the iterator's drop.
    assert!(burst.is_empty());
    assert_eq!(pool.in_use(), 0);

    pool.alloc_burst(&mut burst).unwrap();
    let all: Vec<_> = burst.drain().collect();
    assert_eq!((all.len(), burst.len(), pool.in_use()), (BURST_SIZE, 0, BURST_SIZE as u32));
    drop(all);
    assert_eq!(pool.in_use(), 0);
}
