//! A net_ring port loops TX back to RX: send a burst with known payloads, receive it back
//! intact, and see it in the port counters (packets; net_ring counts no bytes); the pool gets
//! every mbuf back.

mod common;

use dpdk::{
    Eal, Error, Mbuf, MbufBurst, Mempool, MempoolConfig, Port, PortConfig, PortId, BURST_SIZE,
};

const FRAME_LEN: usize = 64;

fn frame(index: usize) -> [u8; FRAME_LEN] {
    std::array::from_fn(|i| (index * 7 + i) as u8)
}

fn filled<'p>(pool: &'p Mempool<'_>, index: usize) -> Mbuf<'p> {
    let mut mbuf = pool.alloc().unwrap();
    mbuf.append(FRAME_LEN)
        .unwrap()
        .copy_from_slice(&frame(index));
    mbuf
}

#[test]
fn net_ring_tx_comes_back_on_rx_with_stats() {
    let eal = Eal::init(common::eal_args(&["-l", "0", "--vdev=net_ring0"])).unwrap();
    let pool = Mempool::new(&eal, "loopback", MempoolConfig::default()).unwrap();
    let mut port = Port::configure(
        PortId::by_name(&eal, "net_ring0").unwrap(),
        &pool,
        PortConfig::default(),
    )
    .unwrap();
    port.set_promiscuous(true).unwrap();
    port.start().unwrap();
    assert!(port.link().unwrap().up);
    port.mac_addr().unwrap();
    assert!(!port.rss_enabled());
    // net_ring has no MTU of its own to set: the error says so, and the default stays.
    let err = port.set_mtu(1400).unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    assert_eq!(port.mtu().unwrap(), 1500);

    let mut tx = port.tx_queue(0).unwrap();
    let mut rx = port.rx_queue(0).unwrap();
    assert!(matches!(
        port.rx_queue(0),
        Err(Error::QueueUnavailable { queue: 0, .. })
    ));
    assert!(matches!(
        port.tx_queue(1),
        Err(Error::QueueUnavailable { queue: 1, .. })
    ));

    let mut out = MbufBurst::new();
    for index in 0..BURST_SIZE {
        assert!(out.push(filled(&pool, index)).is_ok());
    }
    assert!(
        out.push(filled(&pool, BURST_SIZE)).is_err(),
        "a burst holds BURST_SIZE mbufs"
    );
    assert_eq!(tx.tx_burst(&mut out), BURST_SIZE);
    assert!(out.is_empty());

    let mut back = MbufBurst::new();
    assert_eq!(rx.rx_burst(&mut back), BURST_SIZE);
    for (index, mbuf) in back.iter().enumerate() {
        assert!(mbuf.is_contiguous());
        assert_eq!(mbuf.data(), frame(index));
    }

    let stats = port.stats().unwrap();
    assert_eq!(
        (stats.tx_packets, stats.rx_packets),
        (BURST_SIZE as u64, BURST_SIZE as u64)
    );
    // net_ring counts packets only, no bytes.
    assert_eq!(stats.rx_queues[0].packets, BURST_SIZE as u64);
    assert_eq!(stats.tx_queues[0].packets, BURST_SIZE as u64);
    assert_eq!(stats.rx_errors + stats.tx_errors + stats.rx_missed, 0);

    drop(back);
    assert_eq!(pool.in_use(), 0, "every mbuf returned to the pool");
    drop((rx, tx));
    port.stop().unwrap();
    port.reset_stats().unwrap();
    assert_eq!(port.stats().unwrap().rx_packets, 0);
}
