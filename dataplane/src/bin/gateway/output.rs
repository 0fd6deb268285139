//! What one lcore is about to send: a burst per port and per exception interface. A frame the
//! pipeline left unsealed travels with its [`Unsealed`] and is sealed when its burst goes out,
//! with the burst's other unsealed frames (`Pipeline::seal_burst`). So the cipher calls of a burst
//! run back to back: the processor overlaps one AES-GCM call with the next (at 64 B one call in
//! the middle of the pipeline took 35 ns, in a burst 22), the headers and trailers written long
//! before are in the cache, and AES-CBC fills intel-ipsec-mb's lanes. A frame that could not be
//! sealed is dropped, never sent.

use dataplane::gateway::burst_crypto::Unsealed;
use dataplane::gateway::counters::{bump, GatewayDrop};
use dataplane::esp::suite::BurstVec;
use dataplane::gateway::pipeline::{Pipeline, Verdict};
use dpdk::{Mbuf, MbufBurst, BURST_SIZE};

use crate::poll::{index, LcoreQueues};

/// Pending output: a burst per port and per exception interface.
pub struct Output<'pool> {
    port: [Outgoing<'pool>; 2],
    tap: [Outgoing<'pool>; 2],
}

/// One burst on its way out.
struct Outgoing<'pool> {
    frames: MbufBurst<'pool>,
    /// For each frame in `frames`, at the same index, the seal it still waits for.
    unsealed: [Option<Unsealed>; BURST_SIZE],
    /// Whether any frame waits to be sealed.
    any_unsealed: bool,
}

impl<'pool> Outgoing<'pool> {
    fn new() -> Outgoing<'pool> {
        Outgoing { frames: MbufBurst::new(), unsealed: [None; BURST_SIZE], any_unsealed: false }
    }

    /// Seals the frames that wait for it; drops those that fail.
    fn seal(&mut self, pipeline: &Pipeline) {
        if !std::mem::take(&mut self.any_unsealed) {
            return;
        }
        let unsealed = &self.unsealed;
        let mut waiting: BurstVec<(&mut [u8], Unsealed)> =
            self.frames.iter_mut().zip(unsealed).filter_map(|(m, u)| u.map(|u| (m.data_mut(), u))).collect();
        let sealed = pipeline.seal_burst(&mut waiting);
        drop(waiting);
        if sealed.contains(&false) {
            let mut results = sealed.into_iter();
            self.frames.retain(|i| unsealed[i].is_none() || results.next() == Some(true));
        }
    }
}

impl<'pool> Output<'pool> {
    pub fn new() -> Output<'pool> {
        Output { port: [Outgoing::new(), Outgoing::new()], tap: [Outgoing::new(), Outgoing::new()] }
    }

    fn outgoing(&mut self, verdict: Verdict) -> Option<&mut Outgoing<'pool>> {
        match verdict {
            Verdict::Transmit(side) => Some(&mut self.port[index(side)]),
            Verdict::Exception(side) => Some(&mut self.tap[index(side)]),
            // The poll loop fragments such packets; their fragments have verdicts of their own. An
            // `Open` frame is finished before it is sent.
            Verdict::Drop(_) | Verdict::Fragment | Verdict::Open => None,
        }
    }

    /// Queues `m` where the verdict sends it (a dropped frame is freed), with the seal it waits
    /// for; a full burst is sent first.
    #[inline(always)]
    pub fn push(&mut self, q: &mut LcoreQueues<'_>, pipeline: &Pipeline, verdict: Verdict, m: Mbuf<'pool>, unsealed: Option<Unsealed>) {
        let Some(out) = self.outgoing(verdict) else { return };
        if out.frames.is_full() {
            self.flush(q, pipeline);
        }
        let Some(out) = self.outgoing(verdict) else { return };
        out.unsealed[out.frames.len()] = unsealed;
        out.any_unsealed |= unsealed.is_some();
        // Not full: it was flushed.
        let _ = out.frames.push(m);
    }

    /// Seals what waits for it and sends every burst; what the driver does not take after a few
    /// tries is dropped.
    pub fn flush(&mut self, q: &mut LcoreQueues<'_>, pipeline: &Pipeline) {
        let c = pipeline.counters();
        for i in 0..2 {
            for (queue, out) in [(&mut q.port_tx[i], &mut self.port[i]), (&mut q.tap_tx[i], &mut self.tap[i])] {
                if out.frames.is_empty() {
                    continue;
                }
                out.seal(pipeline);
                let burst = &mut out.frames;
                let mut sent = queue.tx_burst(burst);
                // A few retries while the driver frees descriptors, then the rest is dropped.
                for _ in 0..4 {
                    if burst.is_empty() {
                        break;
                    }
                    sent += queue.tx_burst(burst);
                }
                bump(&c.tx, sent as u64);
                for _ in 0..burst.len() {
                    c.count_drop(GatewayDrop::TxFull.into());
                }
                burst.clear();
            }
        }
    }
}
