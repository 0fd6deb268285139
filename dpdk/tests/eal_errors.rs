//! Bad EAL input gives clear errors, not panics; a failed init leaves room for a good one.

mod common;

use dpdk::{Eal, Error, Mempool, MempoolConfig, Port, PortConfig, PortId};

#[test]
fn bad_arguments_are_errors_and_a_later_init_works() {
    let err = Eal::init(common::eal_args(&["--definitely-not-an-eal-option"])).unwrap_err();
    assert!(matches!(err, Error::EalInit { .. }), "{err:?}");
    assert!(
        err.to_string().contains("--definitely-not-an-eal-option"),
        "{err}"
    );

    let err = Eal::init(vec!["--vdev=net_null\0".to_string()]).unwrap_err();
    assert!(matches!(err, Error::ArgumentHasNul(_)), "{err:?}");

    let eal = Eal::init(common::eal_args(&[
        "-l",
        "0",
        "--vdev=net_null0",
        "--",
        "app-arg",
    ]))
    .expect("EAL init after a failed one");
    assert_eq!(eal.remaining_args(), ["app-arg"]);
    assert!(matches!(
        Eal::init(common::eal_args(&[])),
        Err(Error::EalAlreadyInitialized)
    ));

    assert!(matches!(
        PortId::by_name(&eal, "net_missing9"),
        Err(Error::PortNotFound(_))
    ));
    let null0 = PortId::by_name(&eal, "net_null0").unwrap();
    assert_eq!(PortId::all(&eal), [null0]);

    let pool = Mempool::new(&eal, "errors", MempoolConfig::default()).unwrap();
    assert!(
        Mempool::new(&eal, "errors", MempoolConfig::default()).is_err(),
        "duplicate name"
    );
    let no_queues = PortConfig {
        rx_queues: 0,
        ..PortConfig::default()
    };
    let err = Port::configure(null0, &pool, no_queues).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfRange {
                what: "rx_queues",
                ..
            }
        ),
        "{err:?}"
    );
}
