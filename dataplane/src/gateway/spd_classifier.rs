//! The SPD compiled for the packet path: the rules of one published snapshot (shared::spd) in
//! evaluation order, split by direction, with addresses as 128-bit masks (IPv4 mapped into IPv6)
//! so that a match is a few integer comparisons. First match wins (RFC 4301 4.4.1).

use shared::policy::{
    PolicyRecord, ACTION_BYPASS, ACTION_PROTECT, PFLAG_BOUNDARY, PFLAG_GUARANTEED_ENCRYPTION, PFLAG_ND_INBOUND,
    PFLAG_ND_OUTBOUND, SEL_HAS_ICMP_CODE, SEL_HAS_ICMP_TYPE, SEL_HAS_PROTO,
};
use shared::sa::Direction;
use shared::spd::SpdView;

use crate::esp::flow::Flow;

/// What a rule says to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Bypass,
    Discard,
    /// Protect with the outbound SA linked to `reqid`.
    Protect {
        reqid: u32,
    },
}

/// A matched rule: its decision and what the negotiation-discovery hook ([MS-IKEE] 3.7) and the
/// ACQUIRE event need to know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub policy_id: u32,
    pub decision: Decision,
    /// The record's PFLAG_* bits (negotiation discovery, boundary, guaranteed encryption).
    pub flags: u8,
}

impl Matched {
    pub fn nd_inbound(&self) -> bool {
        self.flags & PFLAG_ND_INBOUND != 0
    }
    pub fn nd_outbound(&self) -> bool {
        self.flags & PFLAG_ND_OUTBOUND != 0
    }
    pub fn boundary(&self) -> bool {
        self.flags & PFLAG_BOUNDARY != 0
    }
    pub fn guaranteed_encryption(&self) -> bool {
        self.flags & PFLAG_GUARANTEED_ENCRYPTION != 0
    }
}

/// One rule as ranges over the dimensions the classifier indexes. For ICMP the ports are type and
/// code (RFC 4301 4.4.1.1): the flow carries type * 256 + code as both ports (`Flow`), so a rule's
/// ICMP type and code become a source-port range and its destination range is left open.
#[derive(Debug, Clone, Copy)]
struct Rule {
    v4: bool,
    src: (u128, u128),
    dst: (u128, u128),
    proto: Option<u8>,
    src_ports: (u16, u16),
    dst_ports: (u16, u16),
    /// Matches packets whose ports are not visible (OPAQUE): no port or ICMP restriction.
    opaque_ok: bool,
    matched: Matched,
}

fn range(addr: [u8; 16], len: u8) -> (u128, u128) {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
    let a = u128::from_be_bytes(addr) & mask;
    (a, a | !mask)
}

/// The IPv4 part of an IPv4-mapped range.
fn v4_range((lo, hi): (u128, u128)) -> (u32, u32) {
    (lo as u32, hi as u32)
}

impl Rule {
    fn compile(r: &PolicyRecord) -> Rule {
        let has = |b: u8| r.selector_flags & b != 0;
        let decision = match r.action {
            ACTION_PROTECT => Decision::Protect { reqid: r.reqid },
            ACTION_BYPASS => Decision::Bypass,
            // ACTION_DISCARD, and any action a newer writer may define: never guessed to be bypass.
            _ => Decision::Discard,
        };
        let full = (0, u16::MAX);
        let (icmp_type, icmp_code) = (has(SEL_HAS_ICMP_TYPE).then_some(r.icmp_type), has(SEL_HAS_ICMP_CODE).then_some(r.icmp_code));
        let (src_ports, dst_ports) = match (icmp_type, icmp_code) {
            (None, None) => ((r.src_port_lo, r.src_port_hi), (r.dst_port_lo, r.dst_port_hi)),
            (Some(t), None) => ((u16::from(t) << 8, u16::from(t) << 8 | 0xff), full),
            (Some(t), Some(c)) => ((u16::from(t) << 8 | u16::from(c), u16::from(t) << 8 | u16::from(c)), full),
            // A code without a type: every type with that code is not a range; keep it exact
            // by leaving the type open only when the code is, i.e. match any ICMP.
            (None, Some(_)) => (full, full),
        };
        Rule {
            v4: r.src.is_ipv4(),
            src: range(r.src.0, r.src_len),
            dst: range(r.dst.0, r.dst_len),
            proto: has(SEL_HAS_PROTO).then_some(r.proto),
            src_ports,
            dst_ports,
            opaque_ok: src_ports == full && dst_ports == full && icmp_type.is_none() && icmp_code.is_none(),
            matched: Matched { policy_id: r.id, decision, flags: r.flags },
        }
    }

    /// The reference semantics the index must reproduce (and the linear scan the benchmark
    /// compares it with).
    #[inline]
    fn matches(&self, flow: &Flow) -> bool {
        let within = |(lo, hi): (u128, u128), k: u128| lo <= k && k <= hi;
        self.v4 == flow.src.is_ipv4()
            && within(self.src, flow.src.0)
            && within(self.dst, flow.dst.0)
            && self.proto.is_none_or(|p| p == flow.proto)
            && match flow.ports {
                Some((s, d)) => (self.src_ports.0..=self.src_ports.1).contains(&s) && (self.dst_ports.0..=self.dst_ports.1).contains(&d),
                None => self.opaque_ok,
            }
    }
}

/// A key of one dimension: the ranges' boundaries are sorted keys.
trait Key: Copy + Ord {
    const MIN: Self;
    fn succ(self) -> Option<Self>;
    fn wide(self) -> u128;
}

impl Key for u128 {
    const MIN: u128 = 0;
    fn succ(self) -> Option<u128> {
        self.checked_add(1)
    }
    fn wide(self) -> u128 {
        self
    }
}

impl Key for u32 {
    const MIN: u32 = 0;
    fn succ(self) -> Option<u32> {
        self.checked_add(1)
    }
    fn wide(self) -> u128 {
        u128::from(self)
    }
}

impl Key for u16 {
    const MIN: u16 = 0;
    fn succ(self) -> Option<u16> {
        self.checked_add(1)
    }
    fn wide(self) -> u128 {
        u128::from(self)
    }
}

/// Up to this many rules a direction is scanned in order instead of through the index.
const LINEAR_MAX: usize = 8;

/// Buckets of the jump table that narrows each dimension's search.
const BUCKETS: usize = 4096;
/// Up to this many interval starts a dimension is searched whole: cheaper than the jump table.
const SMALL: usize = 32;

/// A radix jump table over sorted interval starts: the span from the first start above the
/// minimum to the last is cut into [`BUCKETS`] equal buckets, and `first[b]` is the index of the
/// first start in bucket `b` or later. A lookup reads the bucket's bounds and searches only the
/// starts inside it (one or two when the rules spread over the span), instead of a binary search
/// over all of them.
#[derive(Debug, Clone, Default)]
struct JumpTable {
    base: u128,
    shift: u32,
    /// Empty for a small dimension.
    first: Vec<u32>,
    starts: usize,
}

impl JumpTable {
    fn build<K: Key>(starts: &[K]) -> JumpTable {
        let small = JumpTable { starts: starts.len(), ..JumpTable::default() };
        let (Some(base), Some(last)) = (starts.get(1), starts.last()) else { return small };
        if starts.len() <= SMALL {
            return small;
        }
        let base = base.wide();
        let span = last.wide() - base;
        let shift = (u128::BITS - span.leading_zeros()).saturating_sub(BUCKETS.trailing_zeros());
        let mut first = vec![starts.len() as u32; BUCKETS + 1];
        for (i, s) in starts.iter().enumerate().skip(1).rev() {
            first[((s.wide() - base) >> shift) as usize] = i as u32;
        }
        // Empty buckets start where the next non-empty one does.
        for b in (0..BUCKETS).rev() {
            first[b] = first[b].min(first[b + 1]);
        }
        JumpTable { base, shift, first, starts: starts.len() }
    }

    /// The starts to search for the last one at or below `k`, from index 1 on (start 0 is the
    /// minimum key, at or below every key): every start before the range is at or below `k`,
    /// every start after it above.
    #[inline]
    fn bounds(&self, k: u128) -> (usize, usize) {
        if self.first.is_empty() {
            return (1, self.starts.max(1));
        }
        if k < self.base {
            return (1, 1);
        }
        let b = (((k - self.base) >> self.shift) as usize).min(BUCKETS - 1);
        (self.first[b] as usize, self.first[b + 1] as usize)
    }
}

/// Bit sets over the rules, one per row (an elementary interval of a dimension, a protocol
/// number, a family). A row's words are cut into up to 64 groups of `group` consecutive words
/// (one word each up to 4,096 rules); bit `b` of the row's summary is set when group `b` holds
/// a rule (the aggregated bit vectors of Baboescu and Varghese), so a lookup reads only the
/// groups where every dimension has candidates, in rule order.
#[derive(Debug, Clone, Default)]
struct Rows {
    group: usize,
    /// Words per row: the rules' words, padded to whole groups.
    stride: usize,
    summaries: Vec<u64>,
    bits: Vec<u64>,
}

/// One row of [`Rows`].
#[derive(Debug, Clone, Copy)]
struct Row<'a> {
    summary: u64,
    group: usize,
    words: &'a [u64],
}

impl<'a> Row<'a> {
    /// The words of group `b`.
    #[inline(always)]
    fn group(&self, b: u32) -> &'a [u64] {
        &self.words[b as usize * self.group..][..self.group]
    }
}

impl Rows {
    /// `dense`: the rows one after another, `words` words each.
    fn new(dense: &[u64], words: usize) -> Rows {
        let group = words.div_ceil(64);
        let stride = words.div_ceil(group) * group;
        let mut summaries = Vec::with_capacity(dense.len() / words);
        let mut bits = Vec::with_capacity(dense.len() / words * stride);
        for row in dense.chunks(words) {
            summaries.push(row.chunks(group).enumerate().filter(|(_, g)| g.iter().any(|w| *w != 0)).fold(0, |s, (b, _)| s | 1 << b));
            bits.extend_from_slice(row);
            bits.resize(bits.len() + stride - words, 0);
        }
        Rows { group, stride, summaries, bits }
    }

    #[inline(always)]
    fn row(&self, i: usize) -> Row<'_> {
        Row { summary: self.summaries[i], group: self.group, words: &self.bits[i * self.stride..][..self.stride] }
    }
}

/// One dimension cut into elementary intervals, each with the bit set of the rules whose range
/// covers it (Lakshman and Stiliadis' bit-vector scheme).
#[derive(Debug, Clone, Default)]
struct Dimension<K> {
    starts: Vec<K>,
    jump: JumpTable,
    rows: Rows,
}

impl<K: Key> Dimension<K> {
    /// `ranges[i]`: rule i's range in this dimension, `None` if it has none (another family).
    fn build(ranges: &[Option<(K, K)>], words: usize) -> Dimension<K> {
        let mut starts: Vec<K> = std::iter::once(K::MIN).chain(ranges.iter().flatten().flat_map(|&(lo, hi)| std::iter::once(lo).chain(hi.succ()))).collect();
        starts.sort_unstable();
        starts.dedup();
        let mut bits = vec![0u64; starts.len() * words];
        for (rule, (lo, hi)) in ranges.iter().enumerate().filter_map(|(i, r)| r.map(|r| (i, r))) {
            let first = starts.partition_point(|s| *s < lo);
            let end = starts.partition_point(|s| *s <= hi);
            for interval in first..end {
                bits[interval * words + rule / 64] |= 1 << (rule % 64);
            }
        }
        Dimension { jump: JumpTable::build(&starts), starts, rows: Rows::new(&bits, words) }
    }

    /// The bit set of the elementary interval holding `k`.
    #[inline(always)]
    fn lookup(&self, k: K) -> Row<'_> {
        // `from` is at least 1 and start 0 (the minimum) is at or below `k`, so `i` is too.
        let (from, to) = self.jump.bounds(k.wide());
        let i = from + self.starts[from..to].partition_point(|s| *s <= k) - 1;
        self.rows.row(i)
    }
}

/// The rules of one direction, indexed.
#[derive(Debug, Clone, Default)]
struct RuleSet {
    rules: Vec<Rule>,
    /// Addresses: IPv4 rules in 32-bit dimensions, IPv6 rules in 128-bit ones.
    src4: Dimension<u32>,
    dst4: Dimension<u32>,
    src6: Dimension<u128>,
    dst6: Dimension<u128>,
    src_port: Dimension<u16>,
    dst_port: Dimension<u16>,
    /// Per protocol number, the rules it may match.
    proto: Rows,
    /// The rules of IPv4 ([`FAMILY_V4`]), of IPv6, and those that match packets without ports.
    sets: Rows,
}

const FAMILY_V4: usize = 0;
const FAMILY_V6: usize = 1;
const OPAQUE: usize = 2;

impl RuleSet {
    fn new(rules: Vec<Rule>) -> RuleSet {
        let words = rules.len().div_ceil(64).max(1);
        let set = |pred: &dyn Fn(&Rule) -> bool| {
            let mut bits = vec![0u64; words];
            for (i, _) in rules.iter().enumerate().filter(|(_, r)| pred(r)) {
                bits[i / 64] |= 1 << (i % 64);
            }
            bits
        };
        let proto: Vec<u64> = (0..=255u8).flat_map(|p| set(&|r: &Rule| r.proto.is_none_or(|x| x == p))).collect();
        // In the order FAMILY_V4, FAMILY_V6, OPAQUE.
        let sets: Vec<u64> = [set(&|r: &Rule| r.v4), set(&|r: &Rule| !r.v4), set(&|r: &Rule| r.opaque_ok)].concat();
        RuleSet {
            src4: Dimension::build(&rules.iter().map(|r| r.v4.then(|| v4_range(r.src))).collect::<Vec<_>>(), words),
            dst4: Dimension::build(&rules.iter().map(|r| r.v4.then(|| v4_range(r.dst))).collect::<Vec<_>>(), words),
            src6: Dimension::build(&rules.iter().map(|r| (!r.v4).then_some(r.src)).collect::<Vec<_>>(), words),
            dst6: Dimension::build(&rules.iter().map(|r| (!r.v4).then_some(r.dst)).collect::<Vec<_>>(), words),
            src_port: Dimension::build(&rules.iter().map(|r| Some(r.src_ports)).collect::<Vec<_>>(), words),
            dst_port: Dimension::build(&rules.iter().map(|r| Some(r.dst_ports)).collect::<Vec<_>>(), words),
            proto: Rows::new(&proto, words),
            sets: Rows::new(&sets, words),
            rules,
        }
    }

    /// The first rule (in priority order) that matches `flow`.
    #[inline(always)]
    fn classify(&self, flow: &Flow) -> Option<Matched> {
        if self.is_indexed() {
            self.classify_indexed(flow)
        } else {
            self.classify_linear(flow)
        }
    }

    /// The first rule (in priority order) that every dimension allows.
    #[inline(never)]
    fn classify_indexed(&self, flow: &Flow) -> Option<Matched> {
        let (src, dst, family) = if flow.src.is_ipv4() {
            // The IPv4 address is the low 32 bits of its mapped form.
            (self.src4.lookup(flow.src.0 as u32), self.dst4.lookup(flow.dst.0 as u32), FAMILY_V4)
        } else {
            (self.src6.lookup(flow.src.0), self.dst6.lookup(flow.dst.0), FAMILY_V6)
        };
        let (sp, dp) = match flow.ports {
            Some((s, d)) => (self.src_port.lookup(s), self.dst_port.lookup(d)),
            None => (self.sets.row(OPAQUE), self.sets.row(OPAQUE)),
        };
        let rows = [src, dst, self.proto.row(usize::from(flow.proto)), self.sets.row(family), sp, dp];
        let mut candidates = rows.iter().fold(u64::MAX, |c, r| c & r.summary);
        // Groups in ascending order, and words within a group: the first hit is the first rule.
        while candidates != 0 {
            let b = candidates.trailing_zeros();
            candidates &= candidates - 1;
            let groups = rows.map(|r| r.group(b));
            for j in 0..src.group {
                let hit = groups.iter().fold(u64::MAX, |h, g| h & g[j]);
                if hit != 0 {
                    let rule = (b as usize * src.group + j) * 64 + hit.trailing_zeros() as usize;
                    return Some(self.rules[rule].matched);
                }
            }
        }
        None
    }

    /// A handful of rules is tested faster one by one than through the index's fixed cost.
    fn is_indexed(&self) -> bool {
        self.rules.len() > LINEAR_MAX
    }

    #[inline(always)]
    fn classify_linear(&self, flow: &Flow) -> Option<Matched> {
        self.rules.iter().find(|r| r.matches(flow)).map(|r| r.matched)
    }
}

/// One SPD snapshot, compiled.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    version: u64,
    outbound: RuleSet,
    inbound: RuleSet,
}

impl Classifier {
    pub fn compile(view: &SpdView<'_>) -> Classifier {
        Classifier::from_records(view.version, view.iter())
    }

    pub fn from_records(version: u64, records: impl IntoIterator<Item = PolicyRecord>) -> Classifier {
        let (mut outbound, mut inbound) = (Vec::new(), Vec::new());
        for r in records {
            // PolicyRecord.direction: 1 is outbound (shared::policy).
            if r.direction == 1 {
                outbound.push(Rule::compile(&r));
            } else {
                inbound.push(Rule::compile(&r));
            }
        }
        Classifier { version, outbound: RuleSet::new(outbound), inbound: RuleSet::new(inbound) }
    }

    /// The snapshot version this was compiled from.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn rules(&self, direction: Direction) -> &RuleSet {
        match direction {
            Direction::Out => &self.outbound,
            Direction::In => &self.inbound,
        }
    }

    /// Whether `direction` has too many rules to scan, so that `classify` goes through the index.
    pub fn is_indexed(&self, direction: Direction) -> bool {
        self.rules(direction).is_indexed()
    }

    /// The first rule of `direction` that matches `flow`.
    #[inline]
    pub fn classify(&self, direction: Direction, flow: &Flow) -> Option<Matched> {
        self.rules(direction).classify(flow)
    }

    /// The same answer by testing every rule in order: the reference for tests and benchmarks.
    pub fn classify_linear(&self, direction: Direction, flow: &Flow) -> Option<Matched> {
        self.rules(direction).classify_linear(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::policy::{Action, Policy, PolicyFlags, Prefix, SaTemplate, Selector};
    use shared::sa::Mode;

    fn policy(priority: u32, direction: Direction, src: &str, dst: &str, proto: Option<u8>, dport: (u16, u16), action: Action) -> Policy {
        let p = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            Prefix::new(a.parse().unwrap(), l.parse().unwrap())
        };
        Policy {
            priority,
            direction,
            selector: Selector {
                src: p(src),
                dst: p(dst),
                proto,
                src_ports: (0, u16::MAX),
                dst_ports: dport,
                icmp_type: None,
                icmp_code: None,
            },
            action,
            flags: PolicyFlags::default(),
        }
    }

    fn flow(src: &str, dst: &str, proto: u8, ports: Option<(u16, u16)>) -> Flow {
        Flow { src: src.parse().unwrap(), dst: dst.parse().unwrap(), proto, ports }
    }

    #[test]
    fn first_match_in_priority_order_per_direction_and_family() {
        let template = SaTemplate { mode: Mode::Tunnel, src: "198.18.0.1".parse().unwrap(), dst: "198.18.0.2".parse().unwrap() };
        let rules = [
            policy(1, Direction::Out, "198.18.1.0/24", "198.18.2.0/24", Some(6), (22, 22), Action::Discard),
            policy(2, Direction::Out, "198.18.1.0/24", "198.18.2.0/24", None, (0, u16::MAX), Action::Protect { reqid: 7, template }),
            policy(3, Direction::In, "198.18.2.0/24", "198.18.1.0/24", None, (0, u16::MAX), Action::Bypass),
            policy(4, Direction::Out, "2001:2::/48", "2001:2:1::/48", None, (0, u16::MAX), Action::Bypass),
        ];
        let records: Vec<PolicyRecord> = rules.iter().enumerate().map(|(i, p)| PolicyRecord::new(i as u32 + 1, p)).collect();
        let c = Classifier::from_records(9, records);
        let out = |f: &Flow| c.classify(Direction::Out, f).map(|m| (m.policy_id, m.decision));
        assert_eq!(out(&flow("198.18.1.5", "198.18.2.5", 6, Some((4000, 22)))), Some((1, Decision::Discard)));
        assert_eq!(out(&flow("198.18.1.5", "198.18.2.5", 6, Some((4000, 80)))), Some((2, Decision::Protect { reqid: 7 })));
        assert_eq!(out(&flow("198.18.1.5", "198.18.3.5", 6, Some((4000, 80)))), None);
        assert_eq!(out(&flow("2001:2::5", "2001:2:1::5", 17, Some((1, 2)))), Some((4, Decision::Bypass)));
        assert_eq!(c.classify(Direction::In, &flow("198.18.2.5", "198.18.1.5", 1, Some((0x800, 0x800)))).map(|m| m.policy_id), Some(3));
        assert_eq!(c.classify(Direction::In, &flow("198.18.1.5", "198.18.2.5", 1, None)), None);
        // A port-restricted rule never matches a packet whose ports are not visible.
        assert_eq!(out(&flow("198.18.1.5", "198.18.2.5", 6, None)).map(|m| m.0), Some(2));
    }

    #[test]
    fn the_jump_tables_agree_with_a_linear_scan_on_large_rule_sets() {
        agrees_with_a_linear_scan(600);
    }

    #[test]
    fn rule_sets_beyond_64_words_agree_with_a_linear_scan() {
        // 5,000 rules: 79 words, in 40 summary groups of two words each.
        agrees_with_a_linear_scan(5000);
    }

    /// `rules` random rules and 20,000 random flows: the index gives the linear scan's answer.
    fn agrees_with_a_linear_scan(rules: u32) {
        // Enough distinct boundaries per dimension (far more than SMALL) that every lookup goes
        // through a jump table: random prefixes in 198.18.0.0/15 and 2001:2::/32, random ranges.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut records = Vec::new();
        for i in 0..rules {
            let v6 = next(4) == 0;
            let mut prefix = || {
                let len = 15 + next(18) as u8;
                if v6 {
                    Prefix::new(format!("2001:2:{:x}:{:x}::", next(1 << 16), next(1 << 16)).parse().unwrap(), 32 + len * 2)
                } else {
                    Prefix::new(format!("198.{}.{}.{}", 18 + next(2), next(256), next(256)).parse().unwrap(), len)
                }
            };
            let (src, dst) = (prefix(), prefix());
            let (a, b) = (next(65536) as u16, next(65536) as u16);
            let policy = Policy {
                priority: i,
                direction: Direction::Out,
                selector: Selector {
                    src,
                    dst,
                    proto: [None, Some(6), Some(17)][next(3) as usize],
                    src_ports: (0, u16::MAX),
                    dst_ports: (a.min(b), a.max(b)),
                    icmp_type: None,
                    icmp_code: None,
                },
                action: Action::Bypass,
                flags: PolicyFlags::default(),
            };
            if policy.validate().is_ok() {
                records.push(PolicyRecord::new(i + 1, &policy));
            }
        }
        let c = Classifier::from_records(1, records);
        assert_eq!(c.outbound.proto.group, c.outbound.rules.len().div_ceil(64).div_ceil(64));
        assert!(c.outbound.src4.starts.len() > SMALL && c.outbound.dst_port.starts.len() > SMALL && c.outbound.src6.starts.len() > SMALL);
        let mut matched = 0;
        for _ in 0..20_000 {
            let f = if next(4) == 0 {
                let a = |n: &mut dyn FnMut(u64) -> u64| format!("2001:2:{:x}:{:x}::{:x}", n(1 << 16), n(1 << 16), n(1 << 16));
                flow(&a(&mut next), &a(&mut next), [6, 17][next(2) as usize], Some((next(65536) as u16, next(65536) as u16)))
            } else {
                let a = |n: &mut dyn FnMut(u64) -> u64| format!("198.{}.{}.{}", 18 + n(2), n(256), n(256));
                flow(&a(&mut next), &a(&mut next), [6, 17][next(2) as usize], Some((next(65536) as u16, next(65536) as u16)))
            };
            let indexed = c.classify(Direction::Out, &f);
            assert_eq!(indexed, c.classify_linear(Direction::Out, &f), "{f:?}");
            matched += usize::from(indexed.is_some());
        }
        assert!(matched > 100, "the flows must hit rules, not only fall through ({matched})");
    }

    #[test]
    fn the_index_agrees_with_a_linear_scan() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let addr = |v6: bool| prop_oneof![Just(0u8), 0u8..8].prop_map(move |b| if v6 { format!("2001:2::{b}") } else { format!("198.18.0.{b}") });
        let prefix = (any::<bool>(), 0u8..8, prop_oneof![Just(0u8), 28u8..=32]).prop_map(|(v6, b, len)| {
            if v6 { format!("2001:2::{b}/{}", len + 96) } else { format!("198.18.0.{b}/{len}") }
        });
        let ports = (0u16..8, 0u16..8).prop_map(|(a, b)| (a.min(b), a.max(b)));
        let rule = (prefix.clone(), prefix, prop::option::of(prop_oneof![Just(1u8), Just(6u8), Just(17u8)]), ports.clone(), ports, prop::option::of(0u8..3), 0u32..5);
        let flows_strategy = (any::<bool>(), addr(false), addr(false), addr(true), addr(true), prop_oneof![Just(1u8), Just(6u8), Just(17u8), Just(50u8)], prop::option::of((0u16..8, 0u16..8)));
        let mut runner = TestRunner::new(Config { cases: 200, ..Config::default() });
        runner
            .run(&(prop::collection::vec(rule, 0..100), prop::collection::vec(flows_strategy, 50)), |(rules, flows)| {
                let records: Vec<PolicyRecord> = rules
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (src, dst, proto, sp, dp, icmp_type, reqid))| {
                        let p = |s: &str| {
                            let (a, l) = s.split_once('/').unwrap();
                            Prefix::new(a.parse().unwrap(), l.parse().unwrap())
                        };
                        let icmp = *proto == Some(1);
                        let policy = Policy {
                            priority: i as u32,
                            direction: Direction::Out,
                            selector: Selector { src: p(src), dst: p(dst), proto: *proto, src_ports: *sp, dst_ports: *dp, icmp_type: icmp_type.filter(|_| icmp), icmp_code: None },
                            action: if *reqid == 0 { Action::Bypass } else { Action::Protect { reqid: *reqid, template: SaTemplate { mode: Mode::Transport, src: p(src).addr, dst: p(dst).addr } } },
                            flags: PolicyFlags::default(),
                        };
                        policy.validate().ok().map(|_| PolicyRecord::new(i as u32 + 1, &policy))
                    })
                    .collect();
                let c = Classifier::from_records(1, records);
                for (v6, s4, d4, s6, d6, proto, ports) in &flows {
                    let (src, dst) = if *v6 { (s6, d6) } else { (s4, d4) };
                    let f = flow(src, dst, *proto, *ports);
                    prop_assert_eq!(c.classify(Direction::Out, &f), c.classify_linear(Direction::Out, &f), "{:?}", f);
                }
                Ok(())
            })
            .unwrap();
    }
}
