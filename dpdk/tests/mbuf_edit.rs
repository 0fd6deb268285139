//! In-place mbuf editing as the ESP code does it (headers into the headroom, trailers into the
//! tailroom, then stripped again), bursts, rings and pool exhaustion.

mod common;

use dpdk::{Eal, Error, MbufBurst, MbufRing, Mempool, MempoolConfig, BURST_SIZE};

#[test]
fn mbufs_are_edited_in_place_and_returned_to_their_pool() {
    let eal = Eal::init(common::eal_args(&["-l", "0"])).unwrap();
    let pool = Mempool::new(&eal, "edit", MempoolConfig::default()).unwrap();

    let mut mbuf = pool.alloc().unwrap();
    let (headroom, tailroom) = (mbuf.headroom(), mbuf.tailroom());
    assert!(mbuf.is_empty());
    assert_eq!(headroom, 128, "RTE_PKTMBUF_HEADROOM");

    mbuf.append(100).unwrap().fill(0xaa);
    mbuf.prepend(8).unwrap().copy_from_slice(b"ESPHDR!!");
    mbuf.append(4).unwrap().copy_from_slice(b"ICV!");
    assert_eq!(mbuf.len(), 112);
    assert_eq!(&mbuf.data()[..8], b"ESPHDR!!");
    assert_eq!(&mbuf.data()[108..], b"ICV!");
    assert_eq!(mbuf.headroom(), headroom - 8);
    assert_eq!(mbuf.tailroom(), tailroom - 104);

    mbuf.data_mut()[8] = 0x55;
    mbuf.trim(4).unwrap();
    mbuf.adj(8).unwrap();
    assert_eq!(mbuf.len(), 100);
    assert_eq!(mbuf.data()[0], 0x55);
    assert!(mbuf.data()[1..].iter().all(|&b| b == 0xaa));
    assert_eq!(
        (mbuf.headroom(), mbuf.tailroom()),
        (headroom, tailroom - 100)
    );

    let no_room = |r: Result<(), Error>| matches!(r, Err(Error::NoRoom { .. }));
    assert!(no_room(mbuf.prepend(headroom + 1).map(drop)));
    assert!(no_room(mbuf.append(70_000).map(drop)), "beyond u16");
    assert!(no_room(mbuf.trim(101)));
    assert!(no_room(mbuf.adj(101)));
    assert_eq!(mbuf.len(), 100, "failed edits change nothing");
    drop(mbuf);

    let ring = MbufRing::new(&eal, "edit_ring", 64).unwrap();
    let mut burst = MbufBurst::new();
    pool.alloc_burst(&mut burst).unwrap();
    assert_eq!(burst.len(), BURST_SIZE);
    assert_eq!(ring.enqueue_burst(&mut burst), BURST_SIZE);
    assert_eq!(ring.len(), BURST_SIZE);
    assert_eq!(ring.dequeue_burst(&mut burst), BURST_SIZE);
    assert!(ring.is_empty());
    drop((burst, ring));
    assert_eq!(pool.in_use(), 0);

    let small = MempoolConfig {
        mbufs: 40,
        cache_size: 0,
        ..MempoolConfig::default()
    };
    let small = Mempool::new(&eal, "small", small).unwrap();
    let held: Vec<_> = (0..40).map(|_| small.alloc().unwrap()).collect();
    assert!(matches!(small.alloc(), Err(Error::PoolExhausted)));
    assert!(matches!(
        small.alloc_burst(&mut MbufBurst::new()),
        Err(Error::PoolExhausted)
    ));
    drop(held);
    assert_eq!(small.available(), 40);
}
