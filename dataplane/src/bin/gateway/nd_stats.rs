//! The negotiation discovery lines of the statistics file ([MS-IKEE] 3.7): the flow table, the
//! totals, the packets by 3.7.4.1 / 3.7.4.2 branch, and the cleartext decisions by SPD rule.

use std::fmt::Write as _;

use dataplane::nd::{InboundBranch, NdReport, OutboundBranch, RuleCounts};
use shared::policy::{Policy, PolicyFlags};
use shared::sa::Direction;

/// `rules`: the SPD's rules with their ids, to describe the rules the counters name.
pub fn render(report: &NdReport, rules: &[(u32, Policy)]) -> String {
    let mut out = String::new();
    let (t, s) = (&report.table, &report.counts.stats);
    let _ = writeln!(
        out,
        "nd flows {} secure_flows {} capacity {} memory_bytes {} evicted {} aged {} table_full {} unrecorded {}",
        t.flows, t.secure_flows, report.capacity, report.memory_bytes, t.evicted, t.aged, t.full, s.unrecorded
    );
    let _ = writeln!(
        out,
        "nd cleartext_sent {} held {} cleartext_accepted {} cleartext_dropped {} acquire_sent {} acquire_suppressed {} acquire_ring_full {}",
        s.cleartext_sent(),
        s.held(),
        s.cleartext_accepted(),
        s.cleartext_dropped(),
        s.acquire_sent,
        s.acquire_suppressed,
        s.acquire_ring_full
    );
    for b in OutboundBranch::ALL {
        let _ = writeln!(out, "nd outbound {b:?} {}", s.outbound_count(b));
    }
    for b in InboundBranch::ALL {
        let _ = writeln!(out, "nd inbound {b:?} {}", s.inbound_count(b));
    }
    // Every negotiation discovery rule of the SPD, and any other rule with counts.
    let nd_rule = |f: &PolicyFlags| f.nd_inbound || f.nd_outbound;
    let ids: std::collections::BTreeSet<u32> =
        rules.iter().filter(|(_, p)| nd_rule(&p.flags)).map(|(id, _)| *id).chain(report.counts.rules.keys().copied()).collect();
    for id in ids {
        let c = report.counts.rules.get(&id).copied().unwrap_or_default();
        let what = rules.iter().find(|(i, _)| *i == id).map_or_else(|| "(no longer in the SPD)".to_owned(), |(_, p)| describe(p));
        let RuleCounts { cleartext_sent, held, cleartext_accepted, cleartext_dropped } = c;
        let _ = writeln!(
            out,
            "nd rule {id} {what} cleartext_sent {cleartext_sent} held {held} cleartext_accepted {cleartext_accepted} cleartext_dropped {cleartext_dropped}"
        );
    }
    out
}

/// A rule as `out 198.18.1.0/24 -> 198.18.2.0/24 proto 6 [nd boundary ge]`.
fn describe(p: &Policy) -> String {
    let s = &p.selector;
    let direction = if p.direction == Direction::Out { "out" } else { "in" };
    let mut text = format!("{direction} {}/{} -> {}/{}", s.src.addr, s.src.len, s.dst.addr, s.dst.len);
    if let Some(proto) = s.proto {
        let _ = write!(text, " proto {proto}");
    }
    let f = &p.flags;
    let flags: Vec<&str> = [(f.nd_inbound || f.nd_outbound, "nd"), (f.boundary, "boundary"), (f.guaranteed_encryption, "ge")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    let _ = write!(text, " [{}]", flags.join(" "));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::policy::{Action, Prefix, SaTemplate, Selector};
    use shared::sa::Mode;

    fn rule(direction: Direction, flags: PolicyFlags) -> Policy {
        let net = |a: [u8; 4]| Prefix::new(a.into(), 24);
        let template = SaTemplate { mode: Mode::Tunnel, src: [198, 18, 0, 1].into(), dst: [198, 18, 0, 2].into() };
        Policy {
            priority: 100,
            direction,
            selector: Selector {
                src: net([198, 18, 1, 0]),
                dst: net([198, 18, 2, 0]),
                proto: Some(6),
                src_ports: (0, u16::MAX),
                dst_ports: (0, u16::MAX),
                icmp_type: None,
                icmp_code: None,
            },
            action: Action::Protect { reqid: 1, template },
            flags,
        }
    }

    #[test]
    fn lists_the_totals_and_every_negotiation_discovery_rule() {
        let mut report = NdReport { capacity: 1000, memory_bytes: 68_600, ..NdReport::default() };
        report.table.flows = 3;
        report.table.secure_flows = 1;
        report.table.full = 2;
        let s = &mut report.counts.stats;
        s.outbound[OutboundBranch::NoSaNotSecure.index()] = 5;
        s.outbound[OutboundBranch::NoSaSecure.index()] = 1;
        s.inbound[InboundBranch::ClearFirstPacketBoundaryRule.index()] = 4;
        s.inbound[InboundBranch::ClearExistingSecure.index()] = 2;
        (s.acquire_sent, s.acquire_suppressed) = (1, 4);
        report.counts.rules.insert(7, RuleCounts { cleartext_sent: 5, held: 1, ..RuleCounts::default() });
        report.counts.rules.insert(3, RuleCounts { cleartext_accepted: 4, ..RuleCounts::default() });
        let rules = [
            (7, rule(Direction::Out, PolicyFlags { nd_outbound: true, guaranteed_encryption: true, ..PolicyFlags::default() })),
            (8, rule(Direction::In, PolicyFlags { nd_inbound: true, boundary: true, ..PolicyFlags::default() })),
            (9, rule(Direction::In, PolicyFlags::default())),
        ];
        let text = render(&report, &rules);
        let has = |line: &str| assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        has("nd flows 3 secure_flows 1 capacity 1000 memory_bytes 68600 evicted 0 aged 0 table_full 2 unrecorded 0");
        has("nd cleartext_sent 5 held 1 cleartext_accepted 4 cleartext_dropped 2 acquire_sent 1 acquire_suppressed 4 acquire_ring_full 0");
        has("nd outbound NoSaNotSecure 5");
        has("nd inbound ClearExistingSecure 2");
        // Rule 3 has counts but left the SPD; rule 8 has none yet; rule 9 is not an ND rule.
        has("nd rule 3 (no longer in the SPD) cleartext_sent 0 held 0 cleartext_accepted 4 cleartext_dropped 0");
        has("nd rule 7 out 198.18.1.0/24 -> 198.18.2.0/24 proto 6 [nd ge] cleartext_sent 5 held 1 cleartext_accepted 0 cleartext_dropped 0");
        has("nd rule 8 in 198.18.1.0/24 -> 198.18.2.0/24 proto 6 [nd boundary] cleartext_sent 0 held 0 cleartext_accepted 0 cleartext_dropped 0");
        assert!(!text.contains("nd rule 9 "), "{text}");
    }
}
