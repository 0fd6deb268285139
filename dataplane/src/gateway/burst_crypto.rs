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
use crate::esp::suite::BurstPacket;

/// A packet the pipeline left unsealed: the I/O loop must seal it (`Pipeline::to_seal`, then
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

/// An ESP packet waiting to be opened (its frame holds the outer IP packet, trimmed to the ESP):
/// the I/O loop opens it (`Pipeline::to_open`, then `Pipeline::open_burst`) and finishes it
/// (`Pipeline::resume_opened`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unopened {
    pub(super) sa: SaHandle,
    pub(super) loc: EspLocation,
    pub(super) seq: u64,
    pub(super) src_mac: Mac,
    /// The frame's length as it arrived, for the SA's byte counter.
    pub(super) len: u64,
}

impl Unsealed {
    /// Its packet for `Transform::seal_burst`, `frame` its whole frame; `None` if its SA has left
    /// `sas`.
    #[inline]
    pub(super) fn burst_packet<'a>(&self, sas: &'a SaCache, frame: &'a mut [u8]) -> Option<BurstPacket<'a>> {
        let sa = sas.prepared_outbound(self.sa)?;
        let esp_at = frame.len().checked_sub(self.esp_len)?;
        Some(BurstPacket { transform: &sa.transform, pkt: frame, esp_at, seq: self.seq, esn: sa.esn })
    }
}

impl Unopened {
    /// Its packet for `Transform::open_burst`, as [`Unsealed::burst_packet`].
    #[inline]
    pub(super) fn burst_packet<'a>(&self, sas: &'a SaCache, frame: &'a mut [u8]) -> Option<BurstPacket<'a>> {
        let sa = sas.prepared_inbound(self.sa)?;
        Some(BurstPacket { transform: &sa.transform, pkt: frame, esp_at: self.loc.esp_at(), seq: self.seq, esn: sa.esn })
    }
}
