//! The packet buffer the transforms work on: a byte window inside a larger buffer, with headroom
//! in front and tailroom behind, so headers can be added and removed without copying the payload.
//! The operations mirror DPDK's `rte_pktmbuf_prepend/append/adj/trim`, so a single-segment mbuf can
//! implement this trait directly.

/// A packet whose bytes can grow or shrink at either end within a fixed buffer.
pub trait PacketBuf {
    /// The packet bytes.
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Free bytes before the packet.
    fn headroom(&self) -> usize;
    /// Free bytes after the packet.
    fn tailroom(&self) -> usize;
    /// Grows the packet by `n` bytes at the front; false (and no change) without enough headroom.
    fn prepend(&mut self, n: usize) -> bool;
    /// Grows the packet by `n` bytes at the end; false (and no change) without enough tailroom.
    fn append(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front; false (and no change) if the packet is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the end; false (and no change) if the packet is shorter.
    fn trim(&mut self, n: usize) -> bool;

    fn len(&self) -> usize {
        self.data().len()
    }
    fn is_empty(&self) -> bool {
        self.data().is_empty()
    }
}

/// A [`PacketBuf`] over a borrowed byte slice: what tests, benchmarks and the fuzzer use.
#[derive(Debug)]
pub struct SliceBuf<'a> {
    mem: &'a mut [u8],
    start: usize,
    end: usize,
}

impl<'a> SliceBuf<'a> {
    /// Copies `packet` into `mem` after `headroom` bytes; `None` if it does not fit.
    pub fn with_packet(mem: &'a mut [u8], headroom: usize, packet: &[u8]) -> Option<SliceBuf<'a>> {
        let end = headroom.checked_add(packet.len())?;
        mem.get_mut(headroom..end)?.copy_from_slice(packet);
        Some(SliceBuf { mem, start: headroom, end })
    }
}

impl PacketBuf for SliceBuf<'_> {
    fn data(&self) -> &[u8] {
        &self.mem[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.mem[self.start..self.end]
    }
    fn headroom(&self) -> usize {
        self.start
    }
    fn tailroom(&self) -> usize {
        self.mem.len() - self.end
    }
    fn prepend(&mut self, n: usize) -> bool {
        let ok = n <= self.start;
        if ok {
            self.start -= n;
        }
        ok
    }
    fn append(&mut self, n: usize) -> bool {
        let ok = n <= self.tailroom();
        if ok {
            self.end += n;
        }
        ok
    }
    fn adj(&mut self, n: usize) -> bool {
        let ok = n <= self.len();
        if ok {
            self.start += n;
        }
        ok
    }
    fn trim(&mut self, n: usize) -> bool {
        let ok = n <= self.len();
        if ok {
            self.end -= n;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_shrinks_within_the_buffer() {
        let mut mem = [0u8; 16];
        let mut b = SliceBuf::with_packet(&mut mem, 4, &[1, 2, 3]).unwrap();
        assert_eq!((b.headroom(), b.tailroom()), (4, 9));
        assert!(!b.prepend(5));
        assert!(b.prepend(4));
        assert_eq!(b.data(), &[0, 0, 0, 0, 1, 2, 3]);
        assert!(b.append(9) && !b.append(1));
        assert!(b.adj(4) && b.trim(9));
        assert_eq!(b.data(), &[1, 2, 3]);
        assert!(!b.adj(4) && !b.trim(4));
    }

    #[test]
    fn rejects_a_packet_that_does_not_fit() {
        let mut mem = [0u8; 4];
        assert!(SliceBuf::with_packet(&mut mem, 2, &[1, 2, 3]).is_none());
    }
}
