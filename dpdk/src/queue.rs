//! Exclusive handles on one RX or TX queue of a started port, for one lcore's poll loop.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::burst::MbufBurst;

/// The right to poll one RX queue. At most one handle per queue exists, so the PMD's
/// single-consumer queue is never polled by two lcores at once. `Send`: give it to a worker.
#[derive(Debug)]
pub struct RxQueue<'port> {
    port: u16,
    claim: QueueClaim<'port>,
}

/// The right to transmit on one TX queue; see [`RxQueue`].
#[derive(Debug)]
pub struct TxQueue<'port> {
    port: u16,
    claim: QueueClaim<'port>,
}

impl<'port> RxQueue<'port> {
    pub(crate) fn new(port: u16, claim: QueueClaim<'port>) -> Self {
        RxQueue { port, claim }
    }

    pub fn queue(&self) -> u16 {
        self.claim.queue
    }

    /// Receives up to the burst's free capacity; returns how many mbufs were appended.
    pub fn rx_burst(&mut self, burst: &mut MbufBurst<'port>) -> usize {
        let (slots, room) = burst.spare_slots();
        // SAFETY: the port stays started while borrowed by this handle (stopping needs &mut
        // Port), the queue is configured and claimed by us alone, and `slots` has room for
        // `room` (<= BURST_SIZE) pointers.
        let received = unsafe {
            dpdk_sys::shim_rte_eth_rx_burst(self.port, self.claim.queue, slots, room as u16)
        };
        // SAFETY: DPDK wrote `received` owned mbufs of the port's pool into the spare slots.
        unsafe { burst.added(usize::from(received)) };
        usize::from(received)
    }
}

impl<'port> TxQueue<'port> {
    pub(crate) fn new(port: u16, claim: QueueClaim<'port>) -> Self {
        TxQueue { port, claim }
    }

    pub fn queue(&self) -> u16 {
        self.claim.queue
    }

    /// Hands the burst's mbufs to the driver from the front; those it could not take (ring
    /// full) stay in the burst for a retry or a drop. Returns how many were sent.
    pub fn tx_burst(&mut self, burst: &mut MbufBurst<'_>) -> usize {
        let (slots, count) = burst.occupied_slots();
        // SAFETY: as in rx_burst; `slots` holds `count` owned mbufs and DPDK takes ownership
        // of the first `sent` of them.
        let sent = unsafe {
            dpdk_sys::shim_rte_eth_tx_burst(self.port, self.claim.queue, slots, count as u16)
        };
        // SAFETY: the first `sent` mbufs now belong to the driver.
        unsafe { burst.taken_from_front(usize::from(sent)) };
        usize::from(sent)
    }
}

/// One bit of a port's per-direction claim mask, set while a queue handle exists.
#[derive(Debug)]
pub(crate) struct QueueClaim<'port> {
    claims: &'port AtomicU64,
    queue: u16,
}

impl<'port> QueueClaim<'port> {
    /// Claims `queue` (< 64) unless a handle for it already exists.
    pub(crate) fn take(claims: &'port AtomicU64, queue: u16) -> Option<Self> {
        let bit = 1u64 << queue;
        let previous = claims.fetch_or(bit, Ordering::Acquire);
        (previous & bit == 0).then_some(QueueClaim { claims, queue })
    }
}

impl Drop for QueueClaim<'_> {
    fn drop(&mut self) {
        self.claims
            .fetch_and(!(1u64 << self.queue), Ordering::Release);
    }
}
