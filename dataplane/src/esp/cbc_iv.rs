//! The IVs of AES-CBC ESP. RFC 3602 2.4 wants them unpredictable, so not the sequence number:
//! each thread draws them from a stream of its own, AES-128 in ECB over a counter under a random
//! key of the thread. The counter never repeats under a key, so no IV of a thread repeats, and
//! without the key the next one cannot be told from the last. The stream is computed 64 blocks
//! at a time: one library call pipelines them, where a call per packet (a key per SA, as before)
//! cost about 20 ns at 64 B, half of it the call itself.

use std::cell::RefCell;

use aws_lc_rs::cipher::{EncryptingKey, UnboundCipherKey, AES_128};
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
        let key = EncryptingKey::ecb(UnboundCipherKey::new(&AES_128, &key[..]).ok()?).ok()?;
        Some(IvStream { key, counter: 0, blocks: [0; BATCH * IV_LEN], next: BATCH })
    }

    fn write_next(&mut self, iv: &mut [u8]) -> Option<()> {
        if self.next == BATCH {
            for block in self.blocks.chunks_exact_mut(IV_LEN) {
                block[..8].fill(0);
                block[8..].copy_from_slice(&self.counter.to_be_bytes());
                self.counter += 1;
            }
            self.key.encrypt(&mut self.blocks).ok()?;
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
}
