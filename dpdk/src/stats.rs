//! Port counters as reported by the poll-mode driver.

/// Counters of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub packets: u64,
    pub bytes: u64,
}

/// A snapshot of `rte_eth_stats` for a port. Per-queue counters cover the configured queues,
/// up to DPDK's limit of 16 each way (RTE_ETHDEV_QUEUE_STAT_CNTRS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Packets dropped by the hardware because no RX descriptor was free.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_no_mbuf: u64,
    pub rx_queues: Vec<QueueStats>,
    pub tx_queues: Vec<QueueStats>,
}

impl PortStats {
    pub(crate) fn from_raw(raw: &dpdk_sys::rte_eth_stats, rx_queues: u16, tx_queues: u16) -> Self {
        let queues = |count: u16, packets: &[u64], bytes: &[u64]| {
            packets
                .iter()
                .zip(bytes)
                .take(usize::from(count))
                .map(|(&packets, &bytes)| QueueStats { packets, bytes })
                .collect()
        };
        PortStats {
            rx_packets: raw.ipackets,
            tx_packets: raw.opackets,
            rx_bytes: raw.ibytes,
            tx_bytes: raw.obytes,
            rx_missed: raw.imissed,
            rx_errors: raw.ierrors,
            tx_errors: raw.oerrors,
            rx_no_mbuf: raw.rx_nombuf,
            rx_queues: queues(rx_queues, &raw.q_ipackets, &raw.q_ibytes),
            tx_queues: queues(tx_queues, &raw.q_opackets, &raw.q_obytes),
        }
    }
}
