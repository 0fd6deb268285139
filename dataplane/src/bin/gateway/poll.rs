//! The poll loop of one worker lcore: bursts of 32 from its RX queue on each port and exception
//! interface, through the pipeline, into per-destination TX bursts. Packets of AES-CBC SAs stop
//! at the cipher; each burst's are sealed or opened at once (`gateway::burst_crypto`) before any
//! of the burst is sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dataplane::gateway::counters::{bump, GatewayDrop};
use dataplane::gateway::burst_crypto::{Unopened, Unsealed};
use dataplane::esp::suite::{BurstVec, OpenError};
use dataplane::gateway::pipeline::{Pipeline, Verdict};
use dataplane::gateway::Side;
use dpdk::{Mbuf, MbufBurst, Mempool, RxQueue, TxQueue};

use crate::mbuf_packet::MbufPacket;

/// Empty polls in a row after which an idle lcore sleeps `idle_sleep` between polls.
const IDLE_POLLS: u32 = 256;
/// Rounds between two polls of the exception interfaces.
const TAP_POLL_ROUNDS: u32 = 16;

/// One lcore's queues: index 0 the protected side, 1 the unprotected side.
pub struct LcoreQueues<'p> {
    pub port_rx: [RxQueue<'p>; 2],
    pub port_tx: [TxQueue<'p>; 2],
    pub tap_rx: [RxQueue<'p>; 2],
    pub tap_tx: [TxQueue<'p>; 2],
}

fn index(side: Side) -> usize {
    match side {
        Side::Protected => 0,
        Side::Unprotected => 1,
    }
}

/// Pending output: a burst per port and per exception interface.
struct Output<'pool> {
    port: [MbufBurst<'pool>; 2],
    tap: [MbufBurst<'pool>; 2],
}

impl<'pool> Output<'pool> {
    fn burst(&mut self, verdict: Verdict) -> Option<&mut MbufBurst<'pool>> {
        match verdict {
            Verdict::Transmit(side) => Some(&mut self.port[index(side)]),
            Verdict::Exception(side) => Some(&mut self.tap[index(side)]),
            // `dispatch` fragments such packets; their fragments have verdicts of their own. An
            // `Open` frame is finished before it is sent (`finish_crypto`).
            Verdict::Drop(_) | Verdict::Fragment | Verdict::Open => None,
        }
    }
}

/// The cipher a frame still waits for.
enum Awaiting {
    Seal(Unsealed),
    Open(Unopened),
}

/// A frame the pipeline has handled: where it goes, and whether it still waits for its cipher.
struct Handled<'pool> {
    m: Mbuf<'pool>,
    verdict: Verdict,
    awaiting: Option<Awaiting>,
}

/// Polls until `stop`. With `private_crypto` the lcore first loads its own copy of intel-ipsec-mb
/// ([`use_private_crypto_library`]).
pub fn run(mut q: LcoreQueues<'_>, mut pipeline: Pipeline, pool: &Mempool<'_>, stop: &AtomicBool, idle_sleep: Duration, private_crypto: bool) {
    if private_crypto {
        use_private_crypto_library();
    }
    pipeline.crypto_in_bursts();
    let mut handled = Vec::with_capacity(dpdk::BURST_SIZE);
    let mut rx = MbufBurst::new();
    let mut out = Output { port: [MbufBurst::new(), MbufBurst::new()], tap: [MbufBurst::new(), MbufBurst::new()] };
    let mut idle = 0u32;
    let mut round = 0u32;
    while !stop.load(Ordering::Relaxed) {
        round = round.wrapping_add(1);
        pipeline.begin_round();
        let mut received = 0;
        for side in Side::BOTH {
            let i = index(side);
            received += q.port_rx[i].rx_burst(&mut rx);
            for m in rx.iter() {
                m.prefetch_data();
            }
            for mut m in rx.drain() {
                let verdict = if m.is_contiguous() {
                    pipeline.from_port(side, &mut MbufPacket(&mut m))
                } else {
                    Verdict::Drop(GatewayDrop::MalformedFrame.into())
                };
                dispatch(&mut q, &mut out, &mut pipeline, pool, &mut handled, verdict, m);
            }
            send_handled(&mut q, &mut out, &mut pipeline, &mut handled);
            // The exception interfaces carry little traffic and every poll of a tap is a system
            // call: they are polled once every TAP_POLL_ROUNDS rounds.
            if !round.is_multiple_of(TAP_POLL_ROUNDS) {
                continue;
            }
            received += q.tap_rx[i].rx_burst(&mut rx);
            for mut m in rx.drain() {
                let verdict = if m.is_contiguous() {
                    pipeline.from_host(side, &mut MbufPacket(&mut m))
                } else {
                    Verdict::Drop(GatewayDrop::MalformedFrame.into())
                };
                dispatch(&mut q, &mut out, &mut pipeline, pool, &mut handled, verdict, m);
            }
            send_handled(&mut q, &mut out, &mut pipeline, &mut handled);
        }
        for (side, target) in pipeline.take_solicitations() {
            if let Ok(mut m) = pool.alloc() {
                if pipeline.solicitation(side, target, &mut MbufPacket(&mut m)) {
                    forward(&mut q, &mut out, &mut pipeline, Verdict::Transmit(side), m);
                }
            }
        }
        flush(&mut q, &mut out, &mut pipeline);
        pipeline.end_round();
        let c = pipeline.counters();
        bump(&c.polls, 1);
        if received > 0 {
            bump(&c.busy_polls, 1);
            idle = 0;
        } else {
            idle = idle.saturating_add(1);
            if idle > IDLE_POLLS && !idle_sleep.is_zero() {
                std::thread::sleep(idle_sleep);
            }
        }
    }
}

/// The cipher the frame just handled waits for, if any.
fn awaiting(pipeline: &mut Pipeline) -> Option<Awaiting> {
    match (pipeline.take_unsealed(), pipeline.take_unopened()) {
        (Some(u), _) => Some(Awaiting::Seal(u)),
        (None, Some(u)) => Some(Awaiting::Open(u)),
        (None, None) => None,
    }
}

/// Sends `m`, just handled by the pipeline, where its verdict says, or, from the burst's first
/// frame that waits for its cipher on, adds it to the burst's `handled` frames, which wait in
/// their order; a packet to fragment is fragmented and sent at once (its fragments are sealed one
/// by one).
fn dispatch<'pool>(
    q: &mut LcoreQueues<'_>,
    out: &mut Output<'pool>,
    pipeline: &mut Pipeline,
    pool: &'pool Mempool<'_>,
    handled: &mut Vec<Handled<'pool>>,
    verdict: Verdict,
    m: Mbuf<'pool>,
) {
    let awaiting = awaiting(pipeline);
    match verdict {
        Verdict::Fragment => fragment(q, out, pipeline, pool, m),
        _ if awaiting.is_none() && handled.is_empty() => forward(q, out, pipeline, verdict, m),
        _ => handled.push(Handled { m, verdict, awaiting }),
    }
}

/// Finishes the cipher of the burst's frames that wait for it, then sends every frame where its
/// verdict says, in the order they came.
fn send_handled<'pool>(q: &mut LcoreQueues<'_>, out: &mut Output<'pool>, pipeline: &mut Pipeline, handled: &mut Vec<Handled<'pool>>) {
    // (From its first frame that waits for its cipher on, the whole burst waits.)
    if handled.first().is_some_and(|h| h.awaiting.is_some()) {
        finish_crypto(pipeline, handled);
    }
    for h in handled.drain(..) {
        forward(q, out, pipeline, h.verdict, h.m);
    }
}

/// Gives this lcore its own copy of intel-ipsec-mb where the library needs it (before 1.4, every
/// call writes one process-wide variable: `ipsec_mb::use_private_copy`). Without one the lcore
/// still works, slower beside other lcores. A lone lcore does without: with a copy, one lcore
/// decrypting GCM at 64 B ran 2% slower (7.52 against 7.69 Mpps), for a reason not found (the
/// code is the same, mapped from a memfd).
fn use_private_crypto_library() {
    let lcore = dpdk::Lcore::current().map_or(-1, |l| i64::from(l.id()));
    match ipsec_mb::use_private_copy() {
        Ok(true) => eprintln!("gateway: lcore {lcore}: private copy of intel-ipsec-mb {}", ipsec_mb::version()),
        Ok(false) => {}
        Err(e) => eprintln!("gateway: lcore {lcore}: {e}"),
    }
}

/// Opens the frames that wait for it and lets the pipeline finish them (which may leave one, an
/// ICMP error going back under ESP, unsealed), then seals the unsealed frames that are to be sent;
/// a frame that could not be sealed is dropped.
fn finish_crypto(pipeline: &mut Pipeline, handled: &mut [Handled<'_>]) {
    open_waiting(pipeline, handled);
    seal_waiting(pipeline, handled);
}

/// Opens the frames that wait for it in one burst, then finishes each through the pipeline.
fn open_waiting(pipeline: &mut Pipeline, handled: &mut [Handled<'_>]) {
    let frames = handled.len();
    let mut pending = BurstVec::new();
    let (mut at, mut waiting) = (BurstVec::<usize>::new(), false);
    for (i, h) in handled.iter_mut().enumerate() {
        let Some(Awaiting::Open(u)) = &h.awaiting else { continue };
        waiting = true;
        if let Some(p) = pipeline.to_open(h.m.data_mut(), u) {
            pending.push(p);
            at.push(i);
        }
    }
    if !waiting {
        return;
    }
    // Each frame's result, by its place in `handled` (`None`: not opened, its SA gone).
    let mut opened = BurstVec::<Option<Result<(), OpenError>>>::from_elem(None, frames);
    for (i, result) in at.into_iter().zip(pipeline.open_burst(&mut pending)) {
        opened[i] = Some(result);
    }
    drop(pending);
    for (h, result) in handled.iter_mut().zip(opened) {
        let Some(Awaiting::Open(u)) = h.awaiting else { continue };
        h.verdict = pipeline.resume_opened(&mut MbufPacket(&mut h.m), &u, result);
        h.awaiting = awaiting(pipeline);
    }
}

/// Seals the unsealed frames that are to be sent, in one burst; one that could not be sealed is
/// dropped.
fn seal_waiting(pipeline: &Pipeline, handled: &mut [Handled<'_>]) {
    let mut pending = BurstVec::new();
    let mut verdicts = BurstVec::<&mut Verdict>::new();
    for h in handled.iter_mut() {
        let (Some(Awaiting::Seal(u)), Verdict::Transmit(_) | Verdict::Exception(_)) = (&h.awaiting, h.verdict) else { continue };
        match pipeline.to_seal(h.m.data_mut(), u) {
            Some(p) => {
                pending.push(p);
                verdicts.push(&mut h.verdict);
            }
            None => h.verdict = Verdict::Drop(dataplane::DropReason::SealFailed.into()),
        }
    }
    for (verdict, sealed) in verdicts.into_iter().zip(pipeline.seal_burst(&mut pending)) {
        if !sealed {
            *verdict = Verdict::Drop(dataplane::DropReason::SealFailed.into());
        }
    }
}

/// Cuts the packet in `piece` into fragments, each sealed by the pipeline and sent where its
/// verdict says; each step takes a new mbuf for the rest of the packet. Without one, the rest is
/// dropped (counted as no_buffer).
fn fragment<'pool>(q: &mut LcoreQueues<'_>, out: &mut Output<'pool>, pipeline: &mut Pipeline, pool: &'pool Mempool<'_>, mut piece: Mbuf<'pool>) {
    loop {
        let Ok(mut rest) = pool.alloc() else {
            pipeline.counters().count_drop(GatewayDrop::NoBuffer.into());
            return;
        };
        let (verdict, more) = pipeline.next_fragment(&mut MbufPacket(&mut piece), &mut MbufPacket(&mut rest));
        forward(q, out, pipeline, verdict, piece);
        if !more {
            return;
        }
        piece = rest;
    }
}

/// Queues `m` where the verdict sends it; a full burst is sent first.
fn forward<'pool>(q: &mut LcoreQueues<'_>, out: &mut Output<'pool>, pipeline: &mut Pipeline, verdict: Verdict, m: Mbuf<'pool>) {
    let Some(burst) = out.burst(verdict) else { return };
    if let Err(m) = burst.push(m) {
        flush(q, out, pipeline);
        if let Some(burst) = out.burst(verdict) {
            let _ = burst.push(m);
        }
    }
}

fn flush(q: &mut LcoreQueues<'_>, out: &mut Output<'_>, pipeline: &mut Pipeline) {
    // Before any frame leaves: a restarted dataplane must not accept the packets it carried again.
    pipeline.publish_replay_tops();
    let c = pipeline.counters();
    for i in 0..2 {
        for (tx, burst) in [(&mut q.port_tx[i], &mut out.port[i]), (&mut q.tap_tx[i], &mut out.tap[i])] {
            if burst.is_empty() {
                continue;
            }
            let mut sent = tx.tx_burst(burst);
            // A few retries while the driver frees descriptors, then the rest is dropped.
            for _ in 0..4 {
                if burst.is_empty() {
                    break;
                }
                sent += tx.tx_burst(burst);
            }
            bump(&c.tx, sent as u64);
            for _ in 0..burst.len() {
                c.count_drop(GatewayDrop::TxFull.into());
            }
            burst.clear();
        }
    }
}
