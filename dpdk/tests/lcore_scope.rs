//! Scoped jobs on a worker lcore: a worker polls a net_ring port that the main lcore feeds;
//! launching on the main lcore and a panicking job are reported as errors.

mod common;

use std::time::{Duration, Instant};

use dpdk::{Eal, Error, Lcore, MbufBurst, Mempool, MempoolConfig, Port, PortConfig, PortId};

const PACKETS: usize = 1000;

#[test]
fn worker_lcore_receives_what_the_main_lcore_sends() {
    // Two lcores on CPU 0, so the test needs one CPU only.
    let eal = Eal::init(common::eal_args(&["--lcores=0@0,1@0", "--vdev=net_ring0"])).unwrap();
    let pool = Mempool::new(&eal, "scope", MempoolConfig::default()).unwrap();
    let mut port = Port::configure(
        PortId::by_name(&eal, "net_ring0").unwrap(),
        &pool,
        PortConfig::default(),
    )
    .unwrap();
    port.start().unwrap();
    let worker = *eal.worker_lcores().first().expect("a worker lcore");
    assert_eq!(Lcore::current(), Some(eal.main_lcore()));

    let mut rx = port.rx_queue(0).unwrap();
    let mut tx = port.tx_queue(0).unwrap();
    let (received, ran_on) = eal.scope(|scope| {
        assert!(matches!(
            scope.launch(eal.main_lcore(), || ()),
            Err(Error::LcoreUnavailable(_))
        ));
        let job = scope
            .launch(worker, move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut burst = MbufBurst::new();
                let mut received = 0;
                while received < PACKETS && Instant::now() < deadline {
                    received += rx.rx_burst(&mut burst);
                    burst.clear();
                }
                (received, Lcore::current())
            })
            .unwrap();
        assert!(
            matches!(scope.launch(worker, || ()), Err(Error::LcoreUnavailable(_))),
            "busy"
        );
        let mut sent = 0;
        while sent < PACKETS {
            let mut burst = MbufBurst::new();
            while burst.len() < (PACKETS - sent).min(dpdk::BURST_SIZE) {
                let mut mbuf = pool.alloc().unwrap();
                mbuf.append(60).unwrap().fill(1);
                assert!(burst.push(mbuf).is_ok());
            }
            sent += tx.tx_burst(&mut burst);
        }
        job.join().unwrap()
    });
    assert_eq!(received, PACKETS);
    assert_eq!(ran_on, Some(worker));

    let panicked = eal.scope(|scope| {
        scope
            .launch(worker, || panic!("this job panics on purpose"))
            .unwrap()
            .join()
    });
    assert!(matches!(panicked, Err(Error::JobPanicked(id)) if id == worker.id()));
    assert_eq!(port.stats().unwrap().rx_packets, PACKETS as u64);
}
