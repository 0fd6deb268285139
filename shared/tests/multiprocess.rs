//! Separate processes: writers killed with SIGKILL in the middle of their updates and restarted,
//! reader processes checking every record throughout, and a dataplane-side process restarted in
//! the middle of reserving sequence numbers.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::TempPath;
use shared::event::SaKey;
use shared::layout::Capacities;
use shared::ops::{OpError, Writer};
use shared::policy::{Action, Policy, PolicyFlags, Prefix, Selector};
use shared::region::Region;
use shared::sa::Direction;
use shared::synthetic::{synthetic_sa, synthetic_version, SYNTHETIC_DST};

fn shmctl(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_shmctl")).args(args).stdout(Stdio::piped()).spawn().unwrap()
}

/// Runs `child` for `run`, kills it with SIGKILL, and returns the lines it printed.
fn kill_after(mut child: Child, run: Duration) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
    std::thread::sleep(run);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(status.code().is_none(), "the process was still working when it was killed");
    lines.join().unwrap()
}

#[test]
fn sas_survive_writer_kills_and_readers_stay_consistent() {
    let path = TempPath::new("mp");
    let caps = Capacities { sas: 8_192, readers: 8, ..Capacities::default() };
    drop(Region::create(&path.0, caps).unwrap());
    let p = path.0.to_str().unwrap();
    let readers: Vec<Child> = (0..2).map(|_| shmctl(&["reader", "--path", p, "--spis", "1000-400000", "--seconds", "4"])).collect();

    // What each writer process reported as done, in order: SPI -> Some(version) or None (deleted).
    let mut committed: HashMap<u32, Option<u32>> = HashMap::new();
    for round in 0..4 {
        // Each writer adopts what its killed predecessor left and keeps churning.
        let writer = shmctl(&["writer", "--path", p, "--first-spi", "1000", "--live", "3000", "--log"]);
        let lines = kill_after(writer, Duration::from_millis(300 + 100 * round));
        assert!(lines.len() > 1_000, "round {round}: the writer made progress ({} changes)", lines.len());
        for line in lines {
            let f: Vec<&str> = line.split(' ').collect();
            let spi: u32 = f[1].parse().unwrap();
            match f[0] {
                "add" | "update" => committed.insert(spi, Some(f[2].parse().unwrap())),
                "del" => committed.insert(spi, None),
                other => panic!("unexpected writer output {other}"),
            };
        }
    }

    for r in readers {
        let out = r.wait_with_output().unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "reader found torn records: {report}");
        assert!(report.contains("\"torn\":0"), "{report}");
        let found: u64 = report.split("\"found\":").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
        assert!(found > 10_000, "the reader found SAs while writers were killed: {report}");
    }

    // The next writer finishes what the last one left half done; nothing committed is lost.
    let region = Arc::new(Region::open(&path.0).unwrap());
    let writer = Writer::attach(region.clone()).unwrap();
    assert_eq!(region.writer_generation(), 5);
    // A kill can land after a change returned and before its line was printed, and a change in
    // flight at the kill is completed from the journal: each kill may leave one change the log
    // does not show (an update one version further, or a delete of the oldest SA).
    let mut unreported = Vec::new();
    for (spi, state) in &committed {
        let found = writer.query_sa(SaKey { spi: *spi, dst: SYNTHETIC_DST });
        match (state, found) {
            (Some(version), Ok(info)) => {
                let got = synthetic_version(info.config.as_ref().unwrap()).expect("a whole record");
                assert!(got == *version || got == version + 1, "SPI {spi}: version {got}, committed {version}");
                if got != *version {
                    unreported.push(*spi);
                }
            }
            (Some(_), Err(OpError::NoSuchSa { .. })) => unreported.push(*spi),
            (Some(_), Err(e)) => panic!("SPI {spi}: {e}"),
            (None, Ok(info)) => panic!("SPI {spi} was deleted before the kill but is back: {info:?}"),
            (None, Err(OpError::NoSuchSa { .. })) => {}
            (None, Err(e)) => panic!("{e}"),
        }
    }
    assert!(unreported.len() <= 4, "more changes than the 4 kills explain, SAs lost or changed: {unreported:?}");
    for sa in writer.list_sas() {
        assert!(synthetic_version(sa.config.as_ref().unwrap()).is_some(), "no record is torn: {sa:?}");
    }
}

#[test]
fn a_restarted_dataplane_never_reuses_a_sequence_number() {
    let path = TempPath::new("seq");
    let region = Arc::new(Region::create(&path.0, Capacities { sas: 64, ..Capacities::default() }).unwrap());
    let mut writer = Writer::attach(region).unwrap();
    let mut sa = synthetic_sa(0x4000, 0);
    (sa.direction, sa.reqid) = (Direction::Out, 1);
    writer.add_sa(&sa).unwrap();
    let p = path.0.to_str().unwrap();

    let mut highest_handed_out = 0u64;
    for round in 0..3 {
        let lines = kill_after(shmctl(&["seq", "--path", p, "--reqid", "1", "--block", "64"]), Duration::from_millis(200));
        let blocks: Vec<(u64, u64)> = lines
            .iter()
            .map(|l| {
                let f: Vec<u64> = l.split(' ').skip(1).map(|n| n.parse().unwrap()).collect();
                (f[0], f[1])
            })
            .collect();
        assert!(blocks.len() > 10, "round {round}: the dataplane reserved blocks");
        assert!(blocks[0].0 > highest_handed_out, "round {round} starts at {} after {highest_handed_out}", blocks[0].0);
        assert!(blocks.windows(2).all(|w| w[0].1 <= w[1].0), "blocks never overlap");
        highest_handed_out = blocks.last().unwrap().1 - 1;
    }
}

#[test]
fn a_killed_reader_does_not_stall_the_writer() {
    let path = TempPath::new("deadreader");
    let region = Arc::new(Region::create(&path.0, Capacities { sas: 64, ..Capacities::default() }).unwrap());
    let mut writer = Writer::attach(region).unwrap();
    writer.add_sa(&synthetic_sa(2_000, 0)).unwrap();
    let p = path.0.to_str().unwrap();
    // The reader holds its QSBR slot online when it is killed.
    kill_after(shmctl(&["reader", "--path", p, "--spis", "1000-3000", "--seconds", "60"]), Duration::from_millis(200));
    let rule = |priority| Policy {
        priority,
        direction: Direction::In,
        selector: Selector {
            src: Prefix::new(SYNTHETIC_DST, 32),
            dst: Prefix::new(SYNTHETIC_DST, 32),
            proto: None,
            src_ports: (0, u16::MAX),
            dst_ports: (0, u16::MAX),
            icmp_type: None,
            icmp_code: None,
        },
        action: Action::Bypass,
        flags: PolicyFlags::default(),
    };
    // Two publishes: the second must wait for the dead reader, whose slot is reclaimed.
    for priority in 0..3 {
        writer.add_policy(&rule(priority)).unwrap();
    }
    assert_eq!(writer.policies().len(), 3);
}
