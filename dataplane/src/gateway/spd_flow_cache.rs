//! The SPD's answers for recent flows, per lcore, in front of the compiled classifier (as FD.io
//! VPP's SPD flow cache): a packet of a flow seen before is classified by one hash and one
//! comparison of its exact selector fields, where the classifier's index costs six dimension
//! lookups (64 rules: 21 ns of the 129 ns a 64-byte packet took to encrypt). The answer is the
//! classifier's, the same for every packet of the flow; a new SPD snapshot empties the cache.
//! Rule sets small enough to be scanned (`Classifier::is_indexed`) skip it: the scan is cheaper.

use shared::sa::Direction;

use super::spd_classifier::{Classifier, Matched};
use crate::esp::flow::Flow;

/// Direct-mapped entries: a flow's entry is its hash's top bits.
const ENTRIES: usize = 2048;

/// Everything the classifier looks at: its answer depends on nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    src: u128,
    dst: u128,
    /// Source and destination port, when the flow has them.
    ports: u32,
    has_ports: bool,
    proto: u8,
    outbound: bool,
}

impl Key {
    fn of(direction: Direction, flow: &Flow) -> Key {
        // The ports are read one by one, as the parser stored them: copied whole (the Option's
        // tag with the source port), they are read back across two stores, a store-forwarding
        // stall.
        let (has_ports, ports) = match flow.ports {
            Some((s, d)) => (true, u32::from(s) << 16 | u32::from(d)),
            None => (false, 0),
        };
        Key { src: flow.src.0, dst: flow.dst.0, ports, has_ports, proto: flow.proto, outbound: direction == Direction::Out }
    }

    /// A multiplicative hash of the fields that differ between flows.
    fn slot(&self) -> usize {
        let (s, d) = (self.src as u64 ^ (self.src >> 64) as u64, self.dst as u64 ^ (self.dst >> 64) as u64);
        let x = s.rotate_left(29) ^ d ^ u64::from(self.ports) << 24 ^ u64::from(self.proto) << 8 ^ u64::from(self.outbound);
        (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - ENTRIES.trailing_zeros())) as usize
    }
}

/// A flow and the classifier's answer for it.
type Entry = Option<(Key, Option<Matched>)>;

/// Recent answers of one lcore's classifier.
#[derive(Debug)]
pub struct SpdFlowCache {
    entries: Box<[Entry]>,
    /// The SPD snapshot the entries were classified in.
    version: u64,
}

impl Default for SpdFlowCache {
    fn default() -> Self {
        SpdFlowCache { entries: vec![None; ENTRIES].into_boxed_slice(), version: 0 }
    }
}

impl SpdFlowCache {
    /// Starts loading the entry that a `classify` of `flow` soon after will read, if it will read
    /// one.
    #[inline]
    pub fn prefetch(&self, classifier: &Classifier, direction: Direction, flow: &Flow) {
        if classifier.is_indexed(direction) {
            shared::region::prefetch(&self.entries[Key::of(direction, flow).slot()]);
        }
    }

    /// `classifier.classify(direction, flow)`, from the cache if this flow was classified in
    /// the classifier's snapshot.
    #[inline]
    pub fn classify(&mut self, classifier: &Classifier, direction: Direction, flow: &Flow) -> Option<Matched> {
        if !classifier.is_indexed(direction) {
            return classifier.classify(direction, flow);
        }
        if self.version != classifier.version() {
            self.entries.fill(None);
            self.version = classifier.version();
        }
        let key = Key::of(direction, flow);
        let entry = &mut self.entries[key.slot()];
        match entry {
            Some((k, matched)) if *k == key => *matched,
            _ => {
                let matched = classifier.classify(direction, flow);
                *entry = Some((key, matched));
                matched
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::spd_classifier::Decision;
    use shared::policy::{Action, Policy, PolicyFlags, PolicyRecord, Prefix, Selector};

    /// Rule `i` (priority order) sends UDP to 198.18.2.i, dport 1000 + i, to `action`.
    fn classifier(version: u64, rules: u32, action: Action) -> Classifier {
        let records = (0..rules).map(|i| {
            let policy = Policy {
                priority: i,
                direction: Direction::Out,
                selector: Selector {
                    src: Prefix::new("198.18.1.0".parse().unwrap(), 24),
                    dst: Prefix::new(format!("198.18.2.{i}").parse().unwrap(), 32),
                    proto: Some(17),
                    src_ports: (0, u16::MAX),
                    dst_ports: (1000 + i as u16, 1000 + i as u16),
                    icmp_type: None,
                    icmp_code: None,
                },
                action,
                flags: PolicyFlags::default(),
            };
            PolicyRecord::new(i + 1, &policy)
        });
        Classifier::from_records(version, records.collect::<Vec<_>>())
    }

    fn flow(host: u8, dport: u16) -> Flow {
        Flow { src: "198.18.1.7".parse().unwrap(), dst: format!("198.18.2.{host}").parse().unwrap(), proto: 17, ports: Some((5000, dport)) }
    }

    #[test]
    fn answers_as_the_classifier_does_for_flows_seen_and_unseen() {
        let c = classifier(1, 64, Action::Bypass);
        assert!(c.is_indexed(Direction::Out));
        let mut cache = SpdFlowCache::default();
        // Twice over: the second pass comes from the cache. Matching flows, flows that match no
        // rule (a port one off), the other direction, and a flow without ports.
        for _ in 0..2 {
            for host in 0..80u8 {
                for dport in [1000 + u16::from(host), 1001 + u16::from(host)] {
                    for direction in [Direction::Out, Direction::In] {
                        let f = flow(host, dport);
                        assert_eq!(cache.classify(&c, direction, &f), c.classify(direction, &f), "{f:?} {direction:?}");
                    }
                }
                let opaque = Flow { ports: None, ..flow(host, 0) };
                assert_eq!(cache.classify(&c, Direction::Out, &opaque), c.classify(Direction::Out, &opaque));
            }
        }
        assert_eq!(cache.classify(&c, Direction::Out, &flow(3, 1003)).map(|m| m.policy_id), Some(4));
    }

    #[test]
    fn a_new_snapshot_is_never_answered_from_the_old_one() {
        let mut cache = SpdFlowCache::default();
        let old = classifier(1, 64, Action::Bypass);
        assert_eq!(cache.classify(&old, Direction::Out, &flow(5, 1005)).map(|m| m.decision), Some(Decision::Bypass));
        let new = classifier(2, 64, Action::Discard);
        assert_eq!(cache.classify(&new, Direction::Out, &flow(5, 1005)).map(|m| m.decision), Some(Decision::Discard));
        // A set small enough to be scanned is never cached.
        let small = classifier(3, 4, Action::Bypass);
        assert!(!small.is_indexed(Direction::Out));
        assert_eq!(cache.classify(&small, Direction::Out, &flow(5, 1005)), None);
        assert_eq!(cache.classify(&small, Direction::Out, &flow(2, 1002)).map(|m| m.policy_id), Some(3));
    }
}
