//! IPv4 fragmentation (RFC 791 3.2, "Fragmentation and Reassembly"), one fragment at a time: the
//! gateway cuts a packet without DF that is too large for its SA into fragments before it
//! encrypts them (RFC 4301 8.1 leaves the choice between fragmenting before and after; before
//! means the peer never reassembles ESP, only the destination host reassembles its packet).
use super::ipv4::{Ipv4Packet, FLAG_MF, HEADER_LEN};
use super::{checksum, WireError};
use crate::buf::PacketBuf;

/// Why a packet cannot be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    /// Not an IPv4 packet, or a malformed one.
    Malformed(WireError),
    /// Don't Fragment is set: the sender asked for a "fragmentation needed" error instead.
    DontFragment,
    /// `max_len` leaves no room for 8 bytes of data after the header.
    TooSmall,
    /// The packet already fits in `max_len`.
    Fits,
    /// `rest` has no room for the rest of the packet.
    NoRoom,
}

/// The options RFC 791 copies into every fragment: those with the copied flag (the option
/// type's top bit), padded with End of Option List to a multiple of 4 bytes. Options that run
/// past the header are malformed.
fn copied_options(options: &[u8]) -> Result<Vec<u8>, SplitError> {
    let malformed = SplitError::Malformed(WireError::Malformed);
    let mut copied = Vec::new();
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        let len = match kind {
            0 => break,
            1 => 1,
            _ => usize::from(*options.get(at + 1).ok_or(malformed)?),
        };
        if len < 1 || (kind > 1 && len < 2) || at + len > options.len() {
            return Err(malformed);
        }
        if kind & 0x80 != 0 {
            copied.extend_from_slice(&options[at..at + len]);
        }
        at += len;
    }
    copied.resize(copied.len().div_ceil(4) * 4, 0);
    Ok(copied)
}

/// Sets a header's total length, more-fragments flag and fragment offset (in 8-byte units), and
/// recomputes its checksum.
fn set_fragment_fields(header: &mut [u8], total_len: usize, more: bool, offset_units: u16) {
    header[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
    let flags = if more { FLAG_MF } else { 0 };
    let field = (u16::from(flags) << 8) | (offset_units & 0x1fff);
    header[6..8].copy_from_slice(&field.to_be_bytes());
    header[10..12].fill(0);
    let sum = checksum::checksum(header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// Cuts the IPv4 packet in `pkt` down to its first fragment of at most `max_len` bytes, and
/// writes the rest of it into `rest` (an empty buffer) as the packet that follows: the header
/// with only the copied options, the offset after the first fragment's data, and the original's
/// more-fragments flag (the packet may be a fragment already). The rest may still be larger than
/// `max_len`: split it again. Nothing changes on an error.
pub fn split<B: PacketBuf, R: PacketBuf>(pkt: &mut B, rest: &mut R, max_len: usize) -> Result<(), SplitError> {
    let packet = Ipv4Packet::new_checked(pkt.data()).map_err(SplitError::Malformed)?;
    if packet.dont_fragment() {
        return Err(SplitError::DontFragment);
    }
    let (header_len, total_len) = (packet.header_len(), packet.total_len());
    if total_len <= max_len {
        return Err(SplitError::Fits);
    }
    let first_data = max_len.saturating_sub(header_len) / 8 * 8;
    if first_data == 0 {
        return Err(SplitError::TooSmall);
    }
    let data = pkt.data();
    let field = u16::from_be_bytes([data[6], data[7]]);
    let (more, offset) = (data[6] & FLAG_MF != 0, field & 0x1fff);
    let options = copied_options(&data[HEADER_LEN..header_len])?;
    let rest_header_len = HEADER_LEN + options.len();
    let rest_len = rest_header_len + total_len - header_len - first_data;
    if !rest.is_empty() || !rest.append(rest_len) {
        return Err(SplitError::NoRoom);
    }
    let out = rest.data_mut();
    out[..HEADER_LEN].copy_from_slice(&data[..HEADER_LEN]);
    out[HEADER_LEN..rest_header_len].copy_from_slice(&options);
    out[rest_header_len..].copy_from_slice(&data[header_len + first_data..total_len]);
    out[0] = 0x40 | (rest_header_len / 4) as u8;
    let rest_offset = offset + (first_data / 8) as u16;
    set_fragment_fields(&mut out[..rest_header_len], rest_len, more, rest_offset);

    let first_len = header_len + first_data;
    pkt.trim(pkt.len() - first_len);
    set_fragment_fields(&mut pkt.data_mut()[..header_len], first_len, true, offset);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::FLAG_DF;
    use crate::SliceBuf;

    /// A 20-byte header (plus `options`) for a packet of `payload` bytes of 0, 1, 2, ...
    fn packet(options: &[u8], payload: usize, flags: u8) -> Vec<u8> {
        let header_len = HEADER_LEN + options.len();
        let mut p = vec![0u8; header_len + payload];
        p[0] = 0x40 | (header_len / 4) as u8;
        p[2..4].copy_from_slice(&((header_len + payload) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[6] = flags;
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[198, 18, 1, 2]);
        p[16..20].copy_from_slice(&[198, 18, 2, 2]);
        p[HEADER_LEN..header_len].copy_from_slice(options);
        for (i, b) in p[header_len..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut packet = Ipv4Packet::new_checked(&mut p[..]).unwrap();
        packet.fill_checksum();
        p
    }

    /// Splits `p` until every piece fits `max_len`; returns the pieces.
    fn fragments(p: &[u8], max_len: usize) -> Vec<Vec<u8>> {
        let mut pieces = Vec::new();
        let mut current = p.to_vec();
        loop {
            let mut mem = vec![0u8; 4096];
            let mut buf = SliceBuf::with_packet(&mut mem, 64, &current).unwrap();
            let mut rest_mem = vec![0u8; 4096];
            let mut rest = SliceBuf::with_packet(&mut rest_mem, 64, &[]).unwrap();
            match split(&mut buf, &mut rest, max_len) {
                Ok(()) => {
                    pieces.push(buf.data().to_vec());
                    current = rest.data().to_vec();
                }
                Err(SplitError::Fits) => {
                    pieces.push(current);
                    return pieces;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    /// (offset in bytes, more fragments, header length, payload) of a fragment, its header checked.
    fn fields(f: &[u8]) -> (usize, bool, usize, Vec<u8>) {
        let packet = Ipv4Packet::new_checked(f).unwrap();
        assert!(packet.checksum_ok());
        assert_eq!(packet.total_len(), f.len());
        assert_eq!(&f[4..6], &0x1234u16.to_be_bytes(), "the identification stays");
        let field = u16::from_be_bytes([f[6], f[7]]);
        (usize::from(field & 0x1fff) * 8, f[6] & FLAG_MF != 0, packet.header_len(), packet.payload().to_vec())
    }

    #[test]
    fn fragments_carry_the_payload_in_order_at_multiples_of_8() {
        let p = packet(&[], 2980, 0);
        let pieces = fragments(&p, 1446);
        assert_eq!(pieces.iter().map(Vec::len).collect::<Vec<_>>(), vec![1444, 1444, 152]);
        let mut payload = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let (offset, more, _, data) = fields(piece);
            assert_eq!(offset, payload.len());
            assert_eq!(more, i + 1 < pieces.len());
            payload.extend(data);
        }
        assert_eq!(payload, p[HEADER_LEN..]);
    }

    #[test]
    fn a_fragment_is_split_into_fragments_of_the_same_packet() {
        // The second fragment of a larger packet (offset 1480, more to come).
        let mut p = packet(&[], 1600, 0);
        p[6..8].copy_from_slice(&((u16::from(FLAG_MF) << 8) | 185).to_be_bytes());
        Ipv4Packet::new_checked(&mut p[..]).unwrap().fill_checksum();
        let pieces = fragments(&p, 820);
        let offsets: Vec<(usize, bool)> = pieces.iter().map(|f| (fields(f).0, fields(f).1)).collect();
        assert_eq!(offsets, vec![(1480, true), (2280, true)]);
    }

    #[test]
    fn only_copied_options_go_into_later_fragments() {
        // Record Route (7, not copied, 7 bytes), then Security (130, copied, 4 bytes), NOP.
        let options = [7, 7, 4, 0, 0, 0, 0, 130, 4, 0xab, 0xcd, 1];
        let p = packet(&options, 200, 0);
        let pieces = fragments(&p, 120);
        let (_, _, first_header, _) = fields(&pieces[0]);
        assert_eq!(first_header, 32);
        assert_eq!(&pieces[0][20..32], &options);
        for later in &pieces[1..] {
            let (_, _, header_len, _) = fields(later);
            assert_eq!(header_len, 24);
            assert_eq!(&later[20..24], &[130, 4, 0xab, 0xcd]);
        }
        let payload: Vec<u8> = pieces.iter().flat_map(|f| fields(f).3).collect();
        assert_eq!(payload, p[32..]);
    }

    #[test]
    fn what_cannot_be_split_is_left_alone() {
        let cases = [
            (packet(&[], 1600, FLAG_DF), 1000, SplitError::DontFragment),
            (packet(&[], 600, 0), 1000, SplitError::Fits),
            (packet(&[], 600, 0), 27, SplitError::TooSmall),
            (packet(&[7, 9, 4, 0], 600, 0), 300, SplitError::Malformed(WireError::Malformed)),
            (vec![0x60; 60], 40, SplitError::Malformed(WireError::Malformed)),
        ];
        for (p, max_len, expected) in cases {
            let mut mem = vec![0u8; 4096];
            let mut buf = SliceBuf::with_packet(&mut mem, 64, &p).unwrap();
            let mut rest_mem = vec![0u8; 4096];
            let mut rest = SliceBuf::with_packet(&mut rest_mem, 64, &[]).unwrap();
            assert_eq!(split(&mut buf, &mut rest, max_len), Err(expected));
            assert_eq!(buf.data(), &p[..]);
            assert!(rest.is_empty());
        }
        // A rest buffer without room.
        let p = packet(&[], 3000, 0);
        let mut mem = vec![0u8; 4096];
        let mut buf = SliceBuf::with_packet(&mut mem, 64, &p).unwrap();
        let mut small = vec![0u8; 600];
        let mut rest = SliceBuf::with_packet(&mut small, 64, &[]).unwrap();
        assert_eq!(split(&mut buf, &mut rest, 1500), Err(SplitError::NoRoom));
        assert_eq!(buf.data(), &p[..]);
    }
}
