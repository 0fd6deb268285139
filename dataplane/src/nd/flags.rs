//! The per-flow flags of [MS-IKEE] 3.7.1 ("Flow state table"). They only ever go from clear to set.

/// A set of flow flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowFlags(u8);

impl FlowFlags {
    pub const NONE: FlowFlags = FlowFlags(0);
    /// "MUST be set if one or more packets for this flow have been sent over a QM SA" (and, by
    /// 3.7.4.2, when a packet of the flow arrived in ESP or AH).
    pub const SECURE: FlowFlags = FlowFlags(1 << 0);
    /// "MUST be set if encryption is guaranteed for this flow."
    pub const GUARANTEED_ENCRYPTION: FlowFlags = FlowFlags(1 << 1);
    /// "MUST be set if a QM SA negotiation has already been triggered for this flow."
    pub const ACQUIRE: FlowFlags = FlowFlags(1 << 2);

    pub(crate) const BITS: u32 = 3;

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub(crate) const fn from_bits(bits: u8) -> FlowFlags {
        FlowFlags(bits & ((1 << Self::BITS) - 1))
    }

    pub const fn contains(self, other: FlowFlags) -> bool {
        self.0 & other.0 == other.0
    }

    #[must_use]
    pub const fn union(self, other: FlowFlags) -> FlowFlags {
        FlowFlags(self.0 | other.0)
    }

    /// `flag` if `on`, else nothing.
    pub const fn when(on: bool, flag: FlowFlags) -> FlowFlags {
        if on {
            flag
        } else {
            FlowFlags::NONE
        }
    }

    pub const fn secure(self) -> bool {
        self.contains(Self::SECURE)
    }

    pub const fn guaranteed_encryption(self) -> bool {
        self.contains(Self::GUARANTEED_ENCRYPTION)
    }

    pub const fn acquire(self) -> bool {
        self.contains(Self::ACQUIRE)
    }
}

impl std::ops::BitOr for FlowFlags {
    type Output = FlowFlags;
    fn bitor(self, rhs: FlowFlags) -> FlowFlags {
        self.union(rhs)
    }
}
