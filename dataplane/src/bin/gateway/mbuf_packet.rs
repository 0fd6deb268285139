//! An mbuf seen as the pipeline's [`PacketBuf`]: DPDK's prepend/append/adj/trim, one segment.

use dataplane::PacketBuf;
use dpdk::Mbuf;

/// A single-segment mbuf (the pools' data room holds a whole frame).
pub struct MbufPacket<'a, 'pool>(pub &'a mut Mbuf<'pool>);

impl PacketBuf for MbufPacket<'_, '_> {
    #[inline]
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    #[inline]
    fn headroom(&self) -> usize {
        self.0.headroom()
    }
    #[inline]
    fn tailroom(&self) -> usize {
        self.0.tailroom()
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        self.0.prepend(n).is_ok()
    }
    #[inline]
    fn append(&mut self, n: usize) -> bool {
        self.0.append(n).is_ok()
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n).is_ok()
    }
    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        self.0.trim(n).is_ok()
    }
}
