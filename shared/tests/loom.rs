//! Model checks of the lock-free cores with loom, which explores every interleaving (and the
//! weak-memory reorderings the C++ memory model allows) of small scenarios.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p shared --release --test loom`
#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

use shared::rcu::{Qsbr, QsbrToken, ReaderSlot};
use shared::ring::{EventCell, Ring, RingControl, MSG_WORDS};
use shared::seqlock::SeqLock;

/// A reader sees all words from the same write (or reports contention), never a mix.
#[test]
fn seqlock_reads_are_never_torn() {
    loom::model(|| {
        let lock = Arc::new(SeqLock::<3>::new());
        let writer = {
            let lock = lock.clone();
            thread::spawn(move || {
                lock.write(&[1, 1, 1]);
                lock.write(&[2, 2, 2]);
            })
        };
        if let Ok((words, generation)) = lock.read() {
            assert!(words.iter().all(|w| *w == words[0]), "torn read {words:?}");
            assert_eq!(generation, words[0] * 2, "generation matches the write it saw");
        }
        writer.join().unwrap();
        assert_eq!(lock.read().unwrap(), ([2, 2, 2], 4));
    });
}

/// The writer publishes buffer 1, waits for a grace period, then reuses buffer 0. A reader that
/// read either buffer inside one critical section sees its contents whole and unmodified.
#[test]
fn qsbr_never_reuses_memory_a_reader_can_still_see() {
    loom::model(|| {
        struct Shared {
            token: QsbrToken,
            readers: [ReaderSlot; 1],
            active: AtomicU64,
            buffers: [[AtomicU64; 2]; 2],
        }
        let s = Arc::new(Shared {
            token: QsbrToken::new(),
            readers: [ReaderSlot::new()],
            active: AtomicU64::new(0),
            buffers: [[AtomicU64::new(10), AtomicU64::new(10)], [AtomicU64::new(0), AtomicU64::new(0)]],
        });
        assert!(s.readers[0].try_claim(1));
        Qsbr { token: &s.token, readers: &s.readers }.online(0);

        let writer = {
            let s = s.clone();
            thread::spawn(move || {
                let q = Qsbr { token: &s.token, readers: &s.readers };
                for w in &s.buffers[1] {
                    w.store(11, Ordering::Relaxed);
                }
                s.active.store(1, Ordering::Release);
                let token = q.start();
                while q.check(token).is_err() {
                    thread::yield_now();
                }
                for w in &s.buffers[0] {
                    w.store(12, Ordering::Relaxed);
                }
            })
        };

        let q = Qsbr { token: &s.token, readers: &s.readers };
        for _ in 0..2 {
            let b = s.active.load(Ordering::Acquire) as usize;
            let words = [s.buffers[b][0].load(Ordering::Relaxed), s.buffers[b][1].load(Ordering::Relaxed)];
            let expected = if b == 0 { 10 } else { 11 };
            assert_eq!(words, [expected, expected], "buffer {b} changed while in use");
            q.quiescent(0);
        }
        q.offline(0);
        writer.join().unwrap();
    });
}

/// Two producers and the consumer: every message arrives once, whole, and a full ring refuses.
#[test]
fn ring_delivers_each_message_whole_and_counts_overflow() {
    loom::model(|| {
        struct Shared {
            control: RingControl,
            cells: [EventCell; 2],
        }
        let s = Arc::new(Shared { control: RingControl::new(), cells: [EventCell::new(), EventCell::new()] });
        Ring { control: &s.control, cells: &s.cells }.initialise();
        let producers: Vec<_> = (1..=2u64)
            .map(|id| {
                let s = s.clone();
                thread::spawn(move || Ring { control: &s.control, cells: &s.cells }.push(&[id; MSG_WORDS]).is_ok())
            })
            .collect();
        let ring = Ring { control: &s.control, cells: &s.cells };
        let mut got = Vec::new();
        if let Some(m) = ring.pop() {
            got.push(m);
        }
        let pushed = producers.into_iter().map(|p| p.join().unwrap()).filter(|ok| *ok).count();
        while let Some(m) = ring.pop() {
            got.push(m);
        }
        assert_eq!(pushed, 2, "a ring of two has room for two");
        assert_eq!(got.len(), 2);
        for m in &got {
            assert!(m.iter().all(|w| *w == m[0]) && (1..=2).contains(&m[0]), "torn message {m:?}");
        }
        assert_ne!(got[0][0], got[1][0]);
        assert_eq!(ring.overflows(), 0);
    });
}
