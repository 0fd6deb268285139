//! Ethdev ports: lookup, configuration with N queues (RSS when useful), start/stop, status and
//! counters. Burst I/O goes through the queue handles of queue.rs.

use std::cell::Cell;
use std::ffi::CString;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;

use crate::eal::Eal;
use crate::error::Error;
use crate::mempool::Mempool;
use crate::queue::{QueueClaim, RxQueue, TxQueue};
use crate::stats::PortStats;

/// Queue handles are tracked in a 64-bit mask per direction.
const MAX_QUEUES: u16 = 64;

/// The id of an ethdev port known to the EAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortId(u16);

impl PortId {
    /// The port of a device name, e.g. `net_ring0` for `--vdev=net_ring0`.
    pub fn by_name(_eal: &Eal, name: &str) -> Result<PortId, Error> {
        let c_name = CString::new(name).map_err(|_| Error::InvalidName(name.to_owned()))?;
        let mut id = 0u16;
        // SAFETY: the EAL is initialised; c_name is a valid C string; id is a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
        if ret != 0 {
            return Err(Error::PortNotFound(name.to_owned()));
        }
        Ok(PortId(id))
    }

    /// Every port the EAL probed, in id order.
    pub fn all(_eal: &Eal) -> Vec<PortId> {
        (0..dpdk_sys::RTE_MAX_ETHPORTS as u16)
            // SAFETY: the EAL is initialised; any id may be asked about.
            .filter(|&id| unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id) } != 0)
            .map(PortId)
            .collect()
    }

    pub fn id(self) -> u16 {
        self.0
    }
}

/// How to set a port up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// Descriptors per RX queue (rounded to what the driver accepts).
    pub rx_descriptors: u16,
    /// Descriptors per TX queue (rounded to what the driver accepts).
    pub tx_descriptors: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
        }
    }
}

/// A configured port whose RX queues fill mbufs from the pool it borrows. Stopped and closed
/// on drop. Control operations are for the owning thread (the type is not `Sync`); the data
/// path uses [`RxQueue`] and [`TxQueue`] handles, which may go to other lcores.
#[derive(Debug)]
pub struct Port<'pool> {
    id: u16,
    rx_queues: u16,
    tx_queues: u16,
    rss: bool,
    started: bool,
    rx_claims: AtomicU64,
    tx_claims: AtomicU64,
    _pool: PhantomData<&'pool Mempool<'pool>>,
    _not_sync: PhantomData<Cell<()>>,
}

/// Link status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl<'pool> Port<'pool> {
    /// Configures port `id` with the queues of `config`, RX buffers from `pool`. RSS over
    /// every hash type the device supports is enabled when there is more than one RX queue.
    pub fn configure(
        id: PortId,
        pool: &'pool Mempool<'_>,
        config: PortConfig,
    ) -> Result<Self, Error> {
        let info = dev_info(id.0)?;
        check_queue_count("rx_queues", config.rx_queues, info.max_rx_queues)?;
        check_queue_count("tx_queues", config.tx_queues, info.max_tx_queues)?;
        let rss = config.rx_queues > 1 && info.flow_type_rss_offloads != 0;
        let mut conf = dpdk_sys::rte_eth_conf::default();
        if rss {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads;
        }
        // SAFETY: the port id is valid and conf is a fully initialised configuration.
        let ret = unsafe {
            dpdk_sys::rte_eth_dev_configure(id.0, config.rx_queues, config.tx_queues, &conf)
        };
        check("rte_eth_dev_configure", ret)?;
        // From here on the port is closed again on error by Port's Drop.
        let port = Port {
            id: id.0,
            rx_queues: config.rx_queues,
            tx_queues: config.tx_queues,
            rss,
            started: false,
            rx_claims: AtomicU64::new(0),
            tx_claims: AtomicU64::new(0),
            _pool: PhantomData,
            _not_sync: PhantomData,
        };
        let (mut rx_descriptors, mut tx_descriptors) =
            (config.rx_descriptors, config.tx_descriptors);
        // SAFETY: valid port id and out pointers.
        let ret = unsafe {
            dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(
                id.0,
                &mut rx_descriptors,
                &mut tx_descriptors,
            )
        };
        check("rte_eth_dev_adjust_nb_rx_tx_desc", ret)?;
        // SAFETY: valid port id.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id.0) } as u32; // -1: any socket
        for queue in 0..config.rx_queues {
            // SAFETY: configured port, queue < rx_queues; NULL selects the driver's default
            // rxconf; the pool outlives the port ('pool).
            let ret = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    id.0,
                    queue,
                    rx_descriptors,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            check("rte_eth_rx_queue_setup", ret)?;
        }
        for queue in 0..config.tx_queues {
            // SAFETY: configured port, queue < tx_queues; NULL selects the default txconf.
            let ret = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(
                    id.0,
                    queue,
                    tx_descriptors,
                    socket,
                    std::ptr::null(),
                )
            };
            check("rte_eth_tx_queue_setup", ret)?;
        }
        Ok(port)
    }

    pub fn id(&self) -> PortId {
        PortId(self.id)
    }

    /// Whether RX is spread over the queues by RSS.
    pub fn rss_enabled(&self) -> bool {
        self.rss
    }

    pub fn start(&mut self) -> Result<(), Error> {
        // SAFETY: the port is configured with all its queues set up.
        check("rte_eth_dev_start", unsafe {
            dpdk_sys::rte_eth_dev_start(self.id)
        })?;
        self.started = true;
        Ok(())
    }

    /// Stops the port; `&mut self` guarantees no queue handle is in use.
    pub fn stop(&mut self) -> Result<(), Error> {
        // SAFETY: valid port; no queue handle exists (they borrow the port).
        check("rte_eth_dev_stop", unsafe {
            dpdk_sys::rte_eth_dev_stop(self.id)
        })?;
        self.started = false;
        Ok(())
    }

    pub fn set_promiscuous(&self, enabled: bool) -> Result<(), Error> {
        // SAFETY: valid, configured port.
        let ret = unsafe {
            if enabled {
                dpdk_sys::rte_eth_promiscuous_enable(self.id)
            } else {
                dpdk_sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        check("rte_eth_promiscuous_enable/disable", ret)
    }

    pub fn mac_addr(&self) -> Result<MacAddr, Error> {
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port and out pointer.
        check("rte_eth_macaddr_get", unsafe {
            dpdk_sys::rte_eth_macaddr_get(self.id, &mut addr)
        })?;
        Ok(MacAddr(addr.addr_bytes))
    }

    /// Changes the port's own MAC address (for a tap device, the kernel interface's).
    pub fn set_mac_addr(&self, mac: MacAddr) -> Result<(), Error> {
        let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac.0 };
        // SAFETY: valid, configured port; addr is a valid address that DPDK only reads.
        check("rte_eth_dev_default_mac_addr_set", unsafe {
            dpdk_sys::rte_eth_dev_default_mac_addr_set(self.id, &mut addr)
        })
    }

    /// Sets the port's MTU (the largest IP packet, without the Ethernet header). Fails with
    /// errno `ENOTSUP` when the driver cannot change it, `EINVAL` when the device cannot carry
    /// frames of that size.
    pub fn set_mtu(&self, mtu: u16) -> Result<(), Error> {
        // SAFETY: valid, configured port.
        check("rte_eth_dev_set_mtu", unsafe {
            dpdk_sys::rte_eth_dev_set_mtu(self.id, mtu)
        })
    }

    /// The port's MTU as its driver reports it.
    pub fn mtu(&self) -> Result<u16, Error> {
        let mut mtu = 0u16;
        // SAFETY: valid port and out pointer.
        check("rte_eth_dev_get_mtu", unsafe {
            dpdk_sys::rte_eth_dev_get_mtu(self.id, &mut mtu)
        })?;
        Ok(mtu)
    }

    /// The link status, without waiting for auto-negotiation.
    pub fn link(&self) -> Result<Link, Error> {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port and out pointer.
        check("rte_eth_link_get_nowait", unsafe {
            dpdk_sys::rte_eth_link_get_nowait(self.id, &mut link)
        })?;
        Ok(Link {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() != 0,
        })
    }

    pub fn stats(&self) -> Result<PortStats, Error> {
        let mut raw = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port and out pointer; reading counters concurrently with the data path
        // is what the API is for.
        check("rte_eth_stats_get", unsafe {
            dpdk_sys::rte_eth_stats_get(self.id, &mut raw)
        })?;
        Ok(PortStats::from_raw(&raw, self.rx_queues, self.tx_queues))
    }

    pub fn reset_stats(&self) -> Result<(), Error> {
        // SAFETY: valid port.
        check("rte_eth_stats_reset", unsafe {
            dpdk_sys::rte_eth_stats_reset(self.id)
        })
    }

    /// The exclusive handle for RX queue `queue`, while no other handle for it exists.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue<'_>, Error> {
        let claim = self.claim(&self.rx_claims, self.rx_queues, queue)?;
        Ok(RxQueue::new(self.id, claim))
    }

    /// The exclusive handle for TX queue `queue`, while no other handle for it exists.
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue<'_>, Error> {
        let claim = self.claim(&self.tx_claims, self.tx_queues, queue)?;
        Ok(TxQueue::new(self.id, claim))
    }

    fn claim<'p>(
        &self,
        claims: &'p AtomicU64,
        configured: u16,
        queue: u16,
    ) -> Result<QueueClaim<'p>, Error> {
        (queue < configured)
            .then(|| QueueClaim::take(claims, queue))
            .flatten()
            .ok_or(Error::QueueUnavailable {
                port: self.id,
                queue,
            })
    }
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        if self.started {
            // SAFETY: valid port; no queue handle exists (they borrow the port).
            let ret = unsafe { dpdk_sys::rte_eth_dev_stop(self.id) };
            if ret != 0 {
                eprintln!("dpdk: {}", Error::from_ret("rte_eth_dev_stop", ret));
            }
        }
        // SAFETY: valid port, stopped; it is not used again.
        let ret = unsafe { dpdk_sys::rte_eth_dev_close(self.id) };
        if ret != 0 {
            eprintln!("dpdk: {}", Error::from_ret("rte_eth_dev_close", ret));
        }
    }
}

fn dev_info(port: u16) -> Result<dpdk_sys::rte_eth_dev_info, Error> {
    let mut info = dpdk_sys::rte_eth_dev_info::default();
    // SAFETY: the EAL is initialised (a pool borrows it); info is a valid out pointer.
    check("rte_eth_dev_info_get", unsafe {
        dpdk_sys::rte_eth_dev_info_get(port, &mut info)
    })?;
    Ok(info)
}

fn check_queue_count(what: &'static str, requested: u16, device_max: u16) -> Result<(), Error> {
    let max = device_max.min(MAX_QUEUES);
    if (1..=max).contains(&requested) {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            what,
            value: usize::from(requested),
            max: usize::from(max),
        })
    }
}

/// Turns a DPDK status return (0 or negative errno) into a Result.
fn check(call: &'static str, ret: i32) -> Result<(), Error> {
    if ret == 0 {
        Ok(())
    } else {
        Err(Error::from_ret(call, ret))
    }
}
