//! Sealing a burst of packets at once. AES-CBC encryption is serial within a packet, so one
//! 1420-byte packet at a time leaves most of the CPU's AES units idle; intel-ipsec-mb encrypts 8
//! or 16 packets side by side (`Transform::seal_burst`). The pipeline therefore leaves the
//! packets of such SAs unsealed ([`Unsealed`]: every header, the trailer and the route are done,
//! the payload is still in clear), and the poll loop seals the whole burst before any of it
//! leaves. The SAs of those packets are held here until then, so that an SA replaced in the
//! meantime cannot take its keys away from packets numbered under it.

use std::sync::Arc;

use crate::esp::sa::OutboundSa;
use crate::esp::suite::{PendingSeal, Transform};

/// A packet the pipeline left unsealed: the I/O loop must pass it to [`BurstSeal::seal`] (through
/// `Pipeline::seal_burst`) before it sends it anywhere, and drop it if that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsealed {
    /// Its SA, among those held for the burst.
    sa: usize,
    seq: u64,
    /// Bytes from the ESP header to the end of the packet (the link-layer header in front of it
    /// is added after it was left unsealed).
    esp_len: usize,
}

/// The SAs of the packets left unsealed in the current burst, and the last such packet.
#[derive(Debug, Default)]
pub struct BurstSeal {
    held: Vec<Arc<OutboundSa>>,
    last: Option<Unsealed>,
}

impl BurstSeal {
    /// Records that the packet just encapsulated under `sa` with `seq`, `esp_len` bytes from its
    /// ESP header to its end, awaits sealing.
    pub fn defer(&mut self, sa: &Arc<OutboundSa>, seq: u64, esp_len: usize) {
        // Consecutive packets mostly share an SA: one reference per run of them.
        if !self.held.last().is_some_and(|held| Arc::ptr_eq(held, sa)) {
            self.held.push(sa.clone());
        }
        self.last = Some(Unsealed { sa: self.held.len() - 1, seq, esp_len });
    }

    /// The packet just handled, if it was left unsealed (each call forgets it).
    pub fn take(&mut self) -> Option<Unsealed> {
        self.last.take()
    }

    /// Seals each packet (its frame, with `Unsealed` as `take` gave it); `sealed[i]` tells whether
    /// packet `i` was. Then forgets the burst's SAs: a packet left unsealed that is not in
    /// `packets` (one being dropped) can never be sealed, and must not be sent.
    pub fn seal(&mut self, packets: &mut [(&mut [u8], Unsealed)], sealed: &mut [bool]) {
        let mut pending: Vec<PendingSeal<'_>> = Vec::with_capacity(packets.len());
        let mut index = Vec::with_capacity(packets.len());
        for (i, (frame, u)) in packets.iter_mut().enumerate() {
            sealed[i] = false;
            let (Some(sa), Some(esp_at)) = (self.held.get(u.sa), frame.len().checked_sub(u.esp_len)) else { continue };
            pending.push(PendingSeal { transform: &sa.transform, pkt: frame, esp_at, seq: u.seq, esn: sa.esn });
            index.push(i);
        }
        let mut done = vec![false; pending.len()];
        Transform::seal_burst(&mut pending, &mut done);
        for (i, ok) in index.into_iter().zip(done) {
            sealed[i] = ok;
        }
        self.held.clear();
        self.last = None;
    }
}
