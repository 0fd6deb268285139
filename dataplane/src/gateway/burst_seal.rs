//! Sealing a burst of packets at once. AES-CBC encryption is serial within a packet, so one
//! 1420-byte packet at a time leaves most of the CPU's AES units idle; intel-ipsec-mb encrypts 8
//! or 16 packets side by side (`Transform::seal_burst`). The pipeline therefore leaves the
//! packets of such SAs unsealed ([`Unsealed`]: every header, the trailer and the route are done,
//! the payload is still in clear), and the poll loop seals the whole burst before any of it
//! leaves. An SA replaced in the lcore's cache meanwhile stays there until the round ends
//! (`SaCache::release_replaced`), so that no packet numbered under it loses its keys.

use shared::sad::SaHandle;

use super::sa_cache::SaCache;
use crate::esp::suite::{PendingSeal, Transform};

/// A packet the pipeline left unsealed: the I/O loop must pass it to [`seal`] (through
/// `Pipeline::seal_burst`) before it sends it anywhere, and drop it if that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsealed {
    sa: SaHandle,
    seq: u64,
    /// Bytes from the ESP header to the end of the packet (the link-layer header in front of it
    /// is added after it was left unsealed).
    esp_len: usize,
}

impl Unsealed {
    pub(super) fn new(sa: SaHandle, seq: u64, esp_len: usize) -> Unsealed {
        Unsealed { sa, seq, esp_len }
    }
}

/// Seals each frame (with `Unsealed` as the pipeline gave it) under its SA in `sas`; returns for
/// each frame whether it was sealed.
pub(super) fn seal(sas: &SaCache, frames: &mut [(&mut [u8], Unsealed)]) -> Vec<bool> {
    let mut sealed = vec![false; frames.len()];
    let mut pending: Vec<PendingSeal<'_>> = Vec::with_capacity(frames.len());
    let mut index = Vec::with_capacity(frames.len());
    for (i, (frame, u)) in frames.iter_mut().enumerate() {
        let (Some(sa), Some(esp_at)) = (sas.prepared_outbound(u.sa), frame.len().checked_sub(u.esp_len)) else { continue };
        pending.push(PendingSeal { transform: &sa.transform, pkt: frame, esp_at, seq: u.seq, esn: sa.esn });
        index.push(i);
    }
    for (i, ok) in index.into_iter().zip(Transform::seal_burst(&mut pending)) {
        sealed[i] = ok;
    }
    sealed
}
