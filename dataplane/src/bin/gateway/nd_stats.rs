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
