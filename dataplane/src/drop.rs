//! Every reason the ESP core drops a packet. Reasons that concern an SA map to the per-SA counters
//! in the shared region ([`SaDrop`]); the others (no SA known yet) are counted by the dataplane.

use shared::counters::SaDrop;

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $name:ident => $label:literal, $sa:expr;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DropReason {
            $($(#[$doc])* $name,)*
        }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name),*];

            /// The counter name, as `show` prints it.
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$name => $label,)*
                }
            }

            /// The per-SA counter this drop is charged to, if the packet belongs to an SA.
            pub fn sa_drop(self) -> Option<SaDrop> {
                match self {
                    $(DropReason::$name => $sa,)*
                }
            }
        }
    };
}

drop_reasons! {
    // Before an SA is known.
    /// The outer IP header is truncated or its lengths are inconsistent.
    MalformedOuter => "malformed_outer", None;
    /// Neither IPv4 nor IPv6.
    NotIp => "not_ip", None;
    /// An outer fragment: reassembly comes before ESP processing (RFC 4303 3.4.1).
    OuterFragment => "outer_fragment", None;
    /// Not ESP, nor UDP to an encapsulation port.
    NotEsp => "not_esp", None;
    /// Too short for the ESP header (SPI and sequence number).
    ShortEsp => "short_esp", None;
    /// No SA for the SPI and destination (RFC 4303 3.4.2).
    UnknownSpi => "unknown_spi", None;

    // Inbound, charged to the SA.
    /// Shorter than header, IV, one block and ICV, or ciphertext not a whole number of blocks.
    TruncatedPayload => "truncated_payload", Some(SaDrop::Malformed);
    /// A duplicate, or older than the anti-replay window (RFC 4303 3.4.3).
    Replay => "replay", Some(SaDrop::Replay);
    /// The ICV did not verify (RFC 4303 3.4.4).
    IcvMismatch => "icv_mismatch", Some(SaDrop::IcvMismatch);
    /// The pad length exceeds the payload, or the padding is not 1, 2, 3, ... (RFC 4303 2.4).
    BadPadding => "bad_padding", Some(SaDrop::BadPadding);
    /// Tunnel mode with a next header other than IPv4/IPv6, or one that disagrees with the packet.
    BadNextHeader => "bad_next_header", Some(SaDrop::Malformed);
    /// The decrypted inner packet is not a valid IP packet.
    MalformedInner => "malformed_inner", Some(SaDrop::Malformed);
    /// The inner packet does not match the SA's traffic selectors (RFC 4301 5.2).
    SelectorMismatch => "selector_mismatch", Some(SaDrop::SelectorMismatch);
    /// A dummy packet, next header 59 (RFC 4303 2.6): discarded by design.
    DummyPacket => "dummy_packet", None;
    /// Outer CE on a Not-ECT inner packet (RFC 6040 4.2).
    EcnCeOnNotEct => "ecn_ce_on_not_ect", None;

    // Outbound.
    /// The sequence number is 0 or past the limit (RFC 4303 3.3.3).
    SeqExhausted => "seq_exhausted", Some(SaDrop::SeqExhausted);
    /// The packet to protect is not a valid IP packet of a family the SA carries.
    MalformedPlain => "malformed_plain", Some(SaDrop::Malformed);
    /// Not enough headroom or tailroom in the buffer for the headers and trailer.
    NoRoom => "no_room", None;
    /// The protected packet would exceed the 65535-byte IP length.
    TooBig => "too_big", None;
    /// The cipher refused to seal the packet (a crypto library error; never expected). The frame
    /// is dropped, never sent unsealed.
    SealFailed => "seal_failed", None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct() {
        let names: std::collections::HashSet<_> = DropReason::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(names.len(), DropReason::ALL.len());
    }
}
