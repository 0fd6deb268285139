//! Runtime statistics: per lcore, per port, per drop reason (summed over lcores) and per SA (from
//! the region). Rendered as `key value` lines into the statistics file every second, and as one
//! summary log line every `log_interval_secs`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dataplane::gateway::counters::{LcoreCounters, Reason};
use shared::counters::SaDrop;
use shared::sa::Direction;
use shared::region::Region;

/// The lcore counters as text lines, and the totals the log line prints.
pub fn render(lcores: &[(u32, Arc<LcoreCounters>)], ports: &[(&str, dpdk::PortStats)]) -> (String, String) {
    let mut out = String::new();
    let mut drops = vec![0u64; Reason::count()];
    let (mut rx, mut tx, mut enc, mut dec, mut exc) = (0, 0, 0, 0, 0);
    for (id, c) in lcores {
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "lcore {id} rx {} tx {} encrypted {} decrypted {} bypassed {} exception {} from_host {} icmp_errors {} icmp_errors_limited {} fragments {} polls {} busy_polls {}",
            l(&c.rx),
            l(&c.tx),
            l(&c.encrypted),
            l(&c.decrypted),
            l(&c.bypassed),
            l(&c.exception),
            l(&c.from_host),
            l(&c.icmp_errors),
            l(&c.icmp_errors_limited),
            l(&c.fragments),
            l(&c.polls),
            l(&c.busy_polls)
        );
        rx += l(&c.rx);
        tx += l(&c.tx);
        enc += l(&c.encrypted);
        dec += l(&c.decrypted);
        exc += l(&c.exception);
        for (total, d) in drops.iter_mut().zip(c.drops()) {
            *total += d;
        }
    }
    for (name, s) in ports {
        let _ = writeln!(
            out,
            "port {name} rx_packets {} tx_packets {} rx_bytes {} tx_bytes {} rx_missed {} rx_errors {} tx_errors {} rx_no_mbuf {}",
            s.rx_packets, s.tx_packets, s.rx_bytes, s.tx_bytes, s.rx_missed, s.rx_errors, s.tx_errors, s.rx_no_mbuf
        );
    }
    let mut dropped = String::new();
    for (i, n) in drops.iter().enumerate().filter(|(_, n)| **n > 0) {
        let _ = writeln!(out, "drop {} {n}", Reason::name_of(i));
        let _ = write!(dropped, " {}={n}", Reason::name_of(i));
    }
    let total: u64 = drops.iter().sum();
    let log = format!("gateway: rx {rx} tx {tx} encrypted {enc} decrypted {dec} exception {exc} dropped {total}{dropped}");
    (out, log)
}

/// The SAs of a region with their counters, as text lines.
pub fn render_sas(region: &Region) -> String {
    let mut out = String::new();
    for info in shared::inspect::list_sas(region) {
        let Some(config) = info.config else { continue };
        let c = info.counters;
        // Outbound: the next sequence number to hand out; inbound: the highest one accepted.
        let seq = match config.direction {
            Direction::Out => format!("next_seq {}", c.next_seq),
            Direction::In => format!("highest_seq {}", c.replay_top),
        };
        let _ = write!(
            out,
            "sa spi {:#010x} dst {} direction {:?} mode {:?} packets {} bytes {} {seq}",
            info.key.spi, info.key.dst, config.direction, config.mode, c.packets, c.bytes
        );
        for (reason, n) in SaDrop::ALL.iter().zip(c.drops) {
            let _ = write!(out, " drop_{} {n}", reason.name());
        }
        out.push('\n');
    }
    out
}

/// Replaces the statistics file (written aside and renamed, so readers never see half a file).
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}
