//! Sealing and opening a burst of packets at once. AES-CBC encryption is serial within a packet,
//! and HMAC runs 8 or 16 packets side by side in intel-ipsec-mb's multi-buffer lanes, so one
//! 1420-byte packet at a time leaves most of the CPU idle (`Transform::seal_burst`,
//! `Transform::open_burst`). The pipeline therefore stops the packets of such SAs at the cipher:
//! an outbound one [`Unsealed`] (every header, the trailer and the route done, the payload still
//! in clear), an inbound one [`Unopened`] (SA found, sequence number checked against the window,
//! `Verdict::Open`); the HMAC lanes pay at every size, 64 B included (decryption 4.45 against
//! 4.18-4.21 Mpps one packet at a time, on the AMD EPYC VM of BENCHMARKS.md's eleventh session;
//! the Intel VM of earlier sessions had measured 64 B 3-6% slower in bursts). The poll loop seals
//! or opens the whole burst, lets the pipeline finish the opened ones, and only then sends any of
//! it. An SA replaced in the lcore's cache meanwhile stays there until the round ends
//! (`SaCache::release_replaced`), so that no packet loses its keys.

use shared::sad::SaHandle;

use super::ether::Mac;
use super::sa_cache::SaCache;
use crate::esp::decrypt::EspLocation;
use crate::esp::suite::{BurstPacket, BurstVec, OpenError, Transform};

/// A packet the pipeline left unsealed: the I/O loop must pass it to `Pipeline::seal_burst` before
/// it sends it anywhere, and drop it if that fails.
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

/// An ESP packet waiting to be opened (its frame holds the outer IP packet, trimmed to the ESP):
/// the I/O loop passes it to `Pipeline::open_burst`, then to `Pipeline::resume_opened`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unopened {
    pub(super) sa: SaHandle,
    pub(super) loc: EspLocation,
    pub(super) seq: u64,
    pub(super) src_mac: Mac,
    /// The frame's length as it arrived, for the SA's byte counter.
    pub(super) len: u64,
}

/// Seals each frame (with `Unsealed` as the pipeline gave it) under its SA in `sas`; returns for
/// each frame whether it was sealed.
pub(super) fn seal(sas: &SaCache, frames: &mut [(&mut [u8], &Unsealed)]) -> BurstVec<bool> {
    let mut sealed = BurstVec::from_elem(false, frames.len());
    let mut pending = BurstVec::<BurstPacket<'_>>::new();
    let mut index = BurstVec::<usize>::new();
    for (i, (frame, u)) in frames.iter_mut().enumerate() {
        let (Some(sa), Some(esp_at)) = (sas.prepared_outbound(u.sa), frame.len().checked_sub(u.esp_len)) else { continue };
        pending.push(BurstPacket { transform: &sa.transform, pkt: frame, esp_at, seq: u.seq, esn: sa.esn });
        index.push(i);
    }
    for (i, ok) in index.into_iter().zip(Transform::seal_burst(&mut pending)) {
        sealed[i] = ok;
    }
    sealed
}

/// Opens each frame (with `Unopened` as the pipeline gave it) under its SA in `sas`; returns each
/// frame's result, `None` if its SA is gone.
pub(super) fn open(sas: &SaCache, frames: &mut [(&mut [u8], &Unopened)]) -> BurstVec<Option<Result<(), OpenError>>> {
    let mut opened = BurstVec::from_elem(None, frames.len());
    let mut pending = BurstVec::<BurstPacket<'_>>::new();
    let mut index = BurstVec::<usize>::new();
    for (i, (frame, u)) in frames.iter_mut().enumerate() {
        let Some(sa) = sas.prepared_inbound(u.sa) else { continue };
        pending.push(BurstPacket { transform: &sa.transform, pkt: frame, esp_at: u.loc.esp_at(), seq: u.seq, esn: sa.esn });
        index.push(i);
    }
    for (i, result) in index.into_iter().zip(Transform::open_burst(&mut pending)) {
        opened[i] = Some(result);
    }
    opened
}
