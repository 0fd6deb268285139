//! A bounded multi-producer ring of fixed-size messages (Vyukov's bounded MPMC queue, used here
//! with one consumer). Producers never wait: when the ring is full the message is dropped and
//! counted. Each cell's sequence number says whose turn it is, so a message is published with one
//! release store and its words are atomics: there is no data race, whatever the interleaving.

use crate::sync::{AtomicU64, Ordering};

/// Words per message.
pub const MSG_WORDS: usize = 8;

#[repr(C, align(64))]
#[derive(Debug)]
pub struct EventCell {
    seq: AtomicU64,
    words: [AtomicU64; MSG_WORDS],
}

#[repr(C, align(64))]
#[derive(Debug)]
struct Cursor(AtomicU64);

/// The ring's cursors and overflow counter, each on its own cache line.
#[repr(C)]
#[derive(Debug)]
pub struct RingControl {
    enqueue: Cursor,
    dequeue: Cursor,
    overflow: Cursor,
}

/// The ring was full; the message was counted as overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event ring full")]
pub struct RingFull;

/// A ring over its control block and cells (`cells.len()` a power of two).
#[derive(Debug, Clone, Copy)]
pub struct Ring<'a> {
    pub control: &'a RingControl,
    pub cells: &'a [EventCell],
}

impl EventCell {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        EventCell { seq: AtomicU64::new(0), words: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

impl RingControl {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        RingControl { enqueue: Cursor(AtomicU64::new(0)), dequeue: Cursor(AtomicU64::new(0)), overflow: Cursor(AtomicU64::new(0)) }
    }
}

impl Ring<'_> {
    /// Makes a zero-filled ring usable: cell i expects the producer of position i.
    pub fn initialise(&self) {
        for (i, c) in self.cells.iter().enumerate() {
            c.seq.store(i as u64, Ordering::Relaxed);
        }
        self.control.enqueue.0.store(0, Ordering::Relaxed);
        self.control.dequeue.0.store(0, Ordering::Release);
    }

    fn mask(&self) -> u64 {
        self.cells.len() as u64 - 1
    }

    /// Producer: enqueue, or count an overflow and return [`RingFull`]. Never blocks.
    pub fn push(&self, msg: &[u64; MSG_WORDS]) -> Result<(), RingFull> {
        let mut pos = self.control.enqueue.0.load(Ordering::Relaxed);
        let cell = loop {
            let cell = &self.cells[(pos & self.mask()) as usize];
            let seq = cell.seq.load(Ordering::Acquire);
            let lag = seq.wrapping_sub(pos) as i64;
            if lag == 0 {
                match self.control.enqueue.0.compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => break cell,
                    Err(current) => pos = current,
                }
            } else if lag < 0 {
                self.control.overflow.0.fetch_add(1, Ordering::Relaxed);
                return Err(RingFull);
            } else {
                pos = self.control.enqueue.0.load(Ordering::Relaxed);
            }
        };
        for (w, v) in cell.words.iter().zip(msg) {
            w.store(*v, Ordering::Relaxed);
        }
        cell.seq.store(pos + 1, Ordering::Release);
        Ok(())
    }

    /// The single consumer: the oldest published message, if any.
    pub fn pop(&self) -> Option<[u64; MSG_WORDS]> {
        let pos = self.control.dequeue.0.load(Ordering::Relaxed);
        let cell = &self.cells[(pos & self.mask()) as usize];
        if cell.seq.load(Ordering::Acquire) != pos + 1 {
            return None;
        }
        let msg = std::array::from_fn(|i| cell.words[i].load(Ordering::Relaxed));
        self.control.dequeue.0.store(pos + 1, Ordering::Relaxed);
        cell.seq.store(pos + self.cells.len() as u64, Ordering::Release);
        Some(msg)
    }

    /// Messages dropped because the ring was full.
    pub fn overflows(&self) -> u64 {
        self.control.overflow.0.load(Ordering::Relaxed)
    }
}

#[cfg(not(loom))]
pub(crate) const fn shape(fp: crate::layout::Fingerprint) -> crate::layout::Fingerprint {
    let fp = crate::shape!(fp, EventCell { seq, words });
    crate::shape!(fp, RingControl { enqueue, dequeue, overflow })
}
