//! The IVs of AES-CBC ESP. RFC 3602 2.4 wants them unpredictable, so not the sequence number:
//! each thread draws them from a stream of its own, AES-128 over a counter under a random key of
//! the thread. The counter never repeats under a key, so no IV of a thread repeats, and without
//! the key the next one cannot be told from the last. The stream is computed 64 blocks at a time,
//! in CTR mode over zeros (the counter's blocks encrypted, as ECB over them would give, but
//! pipelined: aws-lc's ECB takes the blocks one call each); a call per packet (a key per SA, as
//! before) cost about 20 ns at 64 B, half of it the call itself.

use std::cell::RefCell;

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};
use aws_lc_rs::rand;
use zeroize::Zeroizing;

pub const IV_LEN: usize = 16;
/// Blocks computed at once.
const BATCH: usize = 64;

struct IvStream {
    key: EncryptingKey,
    /// The counter of the first block of the next batch.
    counter: u64,
    blocks: [u8; BATCH * IV_LEN],
    /// The next block of `blocks` to hand out; `BATCH` when all are used.
    next: usize,
}

impl IvStream {
    fn new() -> Option<IvStream> {
        let mut key = Zeroizing::new([0u8; 16]);
        rand::fill(&mut key[..]).ok()?;
        IvStream::with_key(&key)
    }

    fn with_key(key: &[u8; 16]) -> Option<IvStream> {
        let key = EncryptingKey::ctr(UnboundCipherKey::new(&AES_128, key).ok()?).ok()?;
        Some(IvStream { key, counter: 0, blocks: [0; BATCH * IV_LEN], next: BATCH })
    }

    fn write_next(&mut self, iv: &mut [u8]) -> Option<()> {
        if self.next == BATCH {
            // The keystream from counter block `counter` on: E(counter), E(counter + 1), ...
            let mut first = [0u8; IV_LEN];
            first[8..].copy_from_slice(&self.counter.to_be_bytes());
            self.blocks.fill(0);
            self.key.less_safe_encrypt(&mut self.blocks, EncryptionContext::Iv128(first.into())).ok()?;
            self.counter += BATCH as u64;
            self.next = 0;
        }
        let at = self.next * IV_LEN;
        self.next += 1;
        iv.copy_from_slice(&self.blocks[at..at + IV_LEN]);
        Some(())
    }
}

thread_local! {
    static STREAM: RefCell<Option<IvStream>> = const { RefCell::new(None) };
}

/// Writes the next IV of this thread's stream into `iv` (written in place: a 16-byte value
/// returned and then stored would be read back before its stores are done); `None` only if the
/// system's random source or the cipher library failed (then the packet is not sealed).
pub fn write_next_iv(iv: &mut [u8; IV_LEN]) -> Option<()> {
    STREAM.with(|stream| {
        let mut stream = stream.borrow_mut();
        if stream.is_none() {
            *stream = IvStream::new();
        }
        stream.as_mut()?.write_next(iv)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Across several batches no IV repeats, and another thread's stream is another one.
    #[test]
    fn ivs_do_not_repeat_within_or_across_threads() {
        let draw = || {
            (0..5 * BATCH + 3)
                .map(|_| {
                    let mut iv = [0u8; IV_LEN];
                    write_next_iv(&mut iv).unwrap();
                    iv
                })
                .collect::<Vec<_>>()
        };
        let here = draw();
        let there = std::thread::spawn(draw).join().unwrap();
        let distinct: HashSet<[u8; IV_LEN]> = here.iter().chain(&there).copied().collect();
        assert_eq!(distinct.len(), here.len() + there.len());
        // Not the counter in clear.
        assert!(here.iter().all(|iv| iv[..8] != [0; 8]));
    }

    /// The stream is the counter's blocks encrypted one by one, across batches: CTR mode only
    /// computes them faster.
    #[test]
    fn the_stream_is_the_counter_encrypted() {
        let key = [7u8; 16];
        let mut stream = IvStream::with_key(&key).unwrap();
        let ecb = EncryptingKey::ecb(UnboundCipherKey::new(&AES_128, &key).unwrap()).unwrap();
        for counter in 0..(2 * BATCH + 5) as u64 {
            let mut iv = [0u8; IV_LEN];
            stream.write_next(&mut iv).unwrap();
            let mut expected = [0u8; IV_LEN];
            expected[8..].copy_from_slice(&counter.to_be_bytes());
            ecb.encrypt(&mut expected).unwrap();
            assert_eq!(iv, expected, "block {counter}");
        }
    }
}
