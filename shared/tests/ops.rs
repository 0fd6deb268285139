//! Every operation of the writer API and every error it reports.

mod common;

use std::net::IpAddr;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::sync::Arc;

use common::TempPath;
use shared::addr::RawAddr;
use shared::event::{Event, ExchangeInfoFlags, FlowTuple, SaKey};
use shared::layout::{Capacities, ABI_VERSION, LAYOUT_HASH};
use shared::ops::{OpError, Writer};
use shared::policy::{Action, Policy, PolicyError, PolicyFlags, Prefix, SaTemplate, Selector};
use shared::reader::{Reader, SeqError};
use shared::region::{Region, RegionError};
use shared::sa::{AesKeySize, Direction, Integrity, Mode, SaConfigError, SlotState, Suite};
use shared::synthetic::{synthetic_sa, SYNTHETIC_DST};

fn caps(sas: u32) -> Capacities {
    Capacities { sas, policies: 16, events: 8, readers: 4, reqids: 64, ..Capacities::default() }
}

fn setup(sas: u32) -> (TempPath, Writer, Reader) {
    let path = TempPath::new("ops");
    let region = Arc::new(Region::create(&path.0, caps(sas)).unwrap());
    let writer = Writer::attach(region.clone()).unwrap();
    let reader = Reader::attach(region).unwrap();
    (path, writer, reader)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(spi: u32) -> SaKey {
    SaKey { spi, dst: SYNTHETIC_DST }
}

#[test]
fn region_file_is_private_and_reopens_with_its_contents() {
    let path = TempPath::new("mode");
    let region = Arc::new(Region::create(&path.0, caps(8)).unwrap());
    let mode = std::fs::metadata(&path.0).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    Writer::attach(region.clone()).unwrap().add_sa(&synthetic_sa(1000, 0)).unwrap();
    drop(region);
    let reopened = Arc::new(Region::open(&path.0).unwrap());
    assert_eq!(reopened.capacities(), caps(8));
    let reader = Reader::attach(reopened).unwrap();
    assert!(reader.lookup(1000, &SYNTHETIC_DST.into()).unwrap().is_some());
}

#[test]
fn create_refuses_an_existing_file_and_bad_capacities() {
    let path = TempPath::new("exists");
    Region::create(&path.0, caps(8)).unwrap();
    assert!(matches!(Region::create(&path.0, caps(8)), Err(RegionError::Io { .. })));
    let other = TempPath::new("badcaps");
    let bad = Capacities { events: 6, ..caps(8) };
    let err = Region::create(&other.0, bad).unwrap_err();
    assert!(err.to_string().contains("power of two"), "{err}");
}

#[test]
fn open_rejects_foreign_files_other_abis_and_layouts() {
    let path = TempPath::new("abi");
    Region::create(&path.0, caps(8)).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path.0).unwrap();

    file.write_all_at(&(ABI_VERSION + 1).to_le_bytes(), 8).unwrap();
    let err = Region::open(&path.0).unwrap_err();
    assert!(matches!(err, RegionError::AbiMismatch { found, expected, .. } if found == ABI_VERSION + 1 && expected == ABI_VERSION));
    let msg = err.to_string();
    assert!(msg.contains(&format!("ABI version {}", ABI_VERSION + 1)) && msg.contains(&format!("ABI version {ABI_VERSION}")), "{msg}");

    file.write_all_at(&ABI_VERSION.to_le_bytes(), 8).unwrap();
    file.write_all_at(&(LAYOUT_HASH ^ 1).to_le_bytes(), 16).unwrap();
    let err = Region::open(&path.0).unwrap_err();
    assert!(matches!(err, RegionError::LayoutMismatch { found, .. } if found == LAYOUT_HASH ^ 1), "{err}");

    file.write_all_at(b"NOTMAGIC", 0).unwrap();
    assert!(matches!(Region::open(&path.0), Err(RegionError::NotARegion(_))));

    let short = TempPath::new("short");
    std::fs::write(&short.0, b"tiny").unwrap();
    assert!(matches!(Region::open(&short.0), Err(RegionError::NotARegion(_))));

    let truncated = TempPath::new("trunc");
    Region::create(&truncated.0, caps(8)).unwrap();
    std::fs::OpenOptions::new().write(true).open(&truncated.0).unwrap().set_len(4096).unwrap();
    assert!(matches!(Region::open(&truncated.0), Err(RegionError::Truncated { .. })));
}

#[test]
fn only_one_writer_at_a_time() {
    let (path, _writer, _reader) = setup(8);
    let second = Arc::new(Region::open(&path.0).unwrap());
    assert!(matches!(Writer::attach(second), Err(OpError::Region(RegionError::WriterBusy(_)))));
}

#[test]
fn add_lookup_query_and_errors() {
    let (_path, mut w, r) = setup(2);
    let sa = synthetic_sa(0x1234, 0);
    w.add_sa(&sa).unwrap();
    let h = r.lookup(0x1234, &SYNTHETIC_DST.into()).unwrap().expect("installed SA is visible");
    assert_eq!(r.read_sa(h).unwrap().unwrap().to_config().unwrap(), sa);
    assert_eq!(r.lookup(0x1234, &RawAddr::from(ip("198.18.0.2"))).unwrap(), None, "destination is part of the key");
    assert_eq!(r.lookup(0x1235, &SYNTHETIC_DST.into()).unwrap(), None);

    let info = w.query_sa(key(0x1234)).unwrap();
    assert_eq!((info.state, info.config.as_ref()), (SlotState::Live, Some(&sa)));
    assert_eq!(info.counters.next_seq, 1, "sequence numbers start at 1");

    assert!(matches!(w.add_sa(&sa), Err(OpError::DuplicateSpi { spi: 0x1234, .. })));
    w.add_sa(&synthetic_sa(0x2000, 0)).unwrap();
    assert!(matches!(w.add_sa(&synthetic_sa(0x3000, 0)), Err(OpError::SadFull(2))));
    assert!(matches!(w.query_sa(key(0x3000)), Err(OpError::NoSuchSa { spi: 0x3000, .. })));
}

#[test]
fn invalid_configs_are_refused_with_the_reason() {
    let (_path, mut w, _r) = setup(4);
    let base = synthetic_sa(0x5000, 0);
    let cases: Vec<(Box<dyn Fn(&mut shared::sa::SaConfig)>, SaConfigError)> = vec![
        (Box::new(|c| c.spi = 255), SaConfigError::ReservedSpi(255)),
        (
            Box::new(|c| c.enc_key.truncate(32)),
            SaConfigError::InvalidKeyLength { suite: base.suite, what: "encryption", expected: 36, got: 32 },
        ),
        (
            Box::new(|c| c.suite = Suite::AesCbc { key: AesKeySize::Aes128, integrity: Integrity::HmacSha256_128 }),
            SaConfigError::InvalidKeyLength {
                suite: Suite::AesCbc { key: AesKeySize::Aes128, integrity: Integrity::HmacSha256_128 },
                what: "encryption",
                expected: 16,
                got: 36,
            },
        ),
        (Box::new(|c| c.suite = Suite::AesGcm { key: AesKeySize::Aes256, icv_len: 10 }), SaConfigError::InvalidIcvLength(10)),
        (Box::new(|c| c.replay_window = 8), SaConfigError::InvalidReplayWindow(8)),
        (Box::new(|c| c.replay_window = 8192), SaConfigError::InvalidReplayWindow(8192)),
        (
            Box::new(|c| c.src = ip("2001:db8::1")),
            SaConfigError::MixedOuterFamilies { src: ip("2001:db8::1"), dst: SYNTHETIC_DST },
        ),
        (
            Box::new(|c| {
                c.soft.bytes = 10;
                c.hard.bytes = 5
            }),
            SaConfigError::SoftAboveHard { what: "byte", soft: 10, hard: 5 },
        ),
        (
            Box::new(|c| c.encap = Some(shared::sa::UdpEncap { src_port: 0, dst_port: 4500 })),
            SaConfigError::InvalidEncapPort,
        ),
    ];
    for (edit, expected) in cases {
        let mut c = base.clone();
        edit(&mut c);
        match w.add_sa(&c) {
            Err(OpError::Config(e)) => assert_eq!(e, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
    let mut c = base.clone();
    c.ts_remote.start_port = 10;
    c.ts_remote.end_port = 9;
    assert!(matches!(w.add_sa(&c), Err(OpError::Config(SaConfigError::InvalidSelector(_)))));
    let mut c = base.clone();
    c.reqid = 64;
    assert!(matches!(w.add_sa(&c), Err(OpError::ReqidOutOfRange { reqid: 64, limit: 64 })));
    assert!(w.list_sas().is_empty(), "no refused SA was installed");
}

#[test]
fn get_spi_reserves_a_larval_sa_that_add_sa_fills() {
    let (_path, mut w, r) = setup(4);
    let spi = w.get_spi(ip("198.18.1.1"), SYNTHETIC_DST).unwrap();
    assert!(spi >= 256);
    assert_eq!(w.query_sa(key(spi)).unwrap().state, SlotState::Larval);
    assert_eq!(r.lookup(spi, &SYNTHETIC_DST.into()).unwrap(), None, "a larval SA carries no traffic");
    let other = w.get_spi(ip("198.18.1.1"), SYNTHETIC_DST).unwrap();
    assert_ne!(spi, other);
    w.add_sa(&synthetic_sa(spi, 0)).unwrap();
    assert!(r.lookup(spi, &SYNTHETIC_DST.into()).unwrap().is_some());
    assert_eq!(w.list_sas().len(), 2);
    w.del_sa(key(other)).unwrap();
    assert_eq!(w.list_sas().len(), 1);
}

#[test]
fn get_spi_puts_the_slot_in_the_spi_and_other_spis_are_found_through_the_index() {
    let (_path, mut w, r) = setup(64);
    let dst = RawAddr::from(SYNTHETIC_DST);
    let mut spis = Vec::new();
    for _ in 0..32 {
        let spi = w.get_spi(ip("198.18.1.1"), SYNTHETIC_DST).unwrap();
        w.add_sa(&synthetic_sa(spi, 0)).unwrap();
        let h = r.lookup(spi, &dst).unwrap().unwrap();
        assert_eq!(r.sad().spi_slot(spi), Some(h.slot), "SPI {spi:#x} names its own slot");
        spis.push(spi);
    }
    // Statically configured SPIs whose low bits name slots that other SAs occupy.
    let foreign: Vec<u32> = spis.iter().map(|spi| spi ^ 0x8000_0000).collect();
    for spi in &foreign {
        w.add_sa(&synthetic_sa(*spi, 0)).unwrap();
    }
    let mut keys: Vec<(u32, RawAddr)> = spis.iter().chain(&foreign).map(|spi| (*spi, dst)).collect();
    keys.push((0x0bad_0001, dst));
    let mut out = vec![Ok(None); keys.len()];
    r.sad().lookup_burst(&keys, &mut out);
    for ((spi, _), found) in keys.iter().zip(&out) {
        let scalar = r.lookup(*spi, &dst).unwrap();
        assert_eq!(found.unwrap(), scalar, "burst and scalar lookups agree on {spi:#x}");
        let record = scalar.map(|h| r.read_sa(h).unwrap().unwrap());
        assert_eq!(record.map(|rec| rec.spi), (*spi != 0x0bad_0001).then_some(*spi));
    }
    w.del_sa(key(spis[0])).unwrap();
    assert_eq!(r.lookup(spis[0], &dst).unwrap(), None);
    assert!(r.lookup(foreign[0], &dst).unwrap().is_some());
}

/// A statically configured SA goes into its SPI's own slot when that slot is free, so that the
/// dataplane finds it with one memory access; when another SA holds the slot, it goes elsewhere
/// and is found through the index.
#[test]
fn a_static_sa_takes_its_spis_own_slot_when_it_is_free() {
    let (_path, mut w, r) = setup(64);
    let dst = RawAddr::from(SYNTHETIC_DST);
    let slot_of = |spi: u32| r.lookup(spi, &dst).unwrap().expect("installed").slot;
    for spi in [0x1005u32, 0x1021, 0x7000] {
        w.add_sa(&synthetic_sa(spi, 0)).unwrap();
        assert_eq!(Some(slot_of(spi)), r.sad().spi_slot(spi), "SPI {spi:#x}");
    }
    // 0x2005 names 0x1005's slot.
    assert_eq!(r.sad().spi_slot(0x2005), r.sad().spi_slot(0x1005));
    w.add_sa(&synthetic_sa(0x2005, 0)).unwrap();
    assert_ne!(Some(slot_of(0x2005)), r.sad().spi_slot(0x2005));
    assert_eq!(r.read_sa(r.lookup(0x2005, &dst).unwrap().unwrap()).unwrap().unwrap().spi, 0x2005);
    assert_eq!(w.free_sa_slots(), r.sad().slots.len() - 4);
}

#[test]
fn update_changes_what_may_change_and_refuses_the_rest() {
    let (_path, mut w, r) = setup(4);
    w.add_sa(&synthetic_sa(0x7000, 0)).unwrap();
    let h = r.lookup(0x7000, &SYNTHETIC_DST.into()).unwrap().unwrap();
    r.reserve_seq(h, 10, false).unwrap();

    let mut updated = synthetic_sa(0x7000, 0);
    updated.hard.seconds = 99_999;
    updated.src = ip("198.19.0.9");
    updated.ms_flags.boundary = !updated.ms_flags.boundary;
    w.update_sa(&updated).unwrap();
    assert!(!r.sad().is_current(h), "an update changes the generation");
    assert_eq!(r.read_sa(h).unwrap(), None, "a stale handle reads nothing");
    let h2 = r.lookup(0x7000, &SYNTHETIC_DST.into()).unwrap().unwrap();
    assert_eq!(r.read_sa(h2).unwrap().unwrap().to_config().unwrap(), updated);
    assert_eq!(w.query_sa(key(0x7000)).unwrap().counters.next_seq, 11, "an update keeps the sequence numbers");

    for (field, edit) in [
        ("keys", Box::new(|c: &mut shared::sa::SaConfig| c.enc_key[0] ^= 1) as Box<dyn Fn(&mut _)>),
        ("direction", Box::new(|c: &mut shared::sa::SaConfig| c.direction = Direction::Out)),
        ("mode", Box::new(|c: &mut shared::sa::SaConfig| c.mode = Mode::Transport)),
        ("ESN", Box::new(|c: &mut shared::sa::SaConfig| c.esn = !c.esn)),
    ] {
        let mut c = updated.clone();
        edit(&mut c);
        assert!(matches!(w.update_sa(&c), Err(OpError::Immutable { field: f, .. }) if f == field), "{field}");
    }
    assert!(matches!(w.update_sa(&synthetic_sa(0x7001, 0)), Err(OpError::NoSuchSa { .. })));
}

#[test]
fn delete_hides_the_sa_zeroes_its_keys_and_frees_the_slot() {
    let (_path, mut w, mut r) = setup(1);
    w.add_sa(&synthetic_sa(0x8000, 0)).unwrap();
    let h = r.lookup(0x8000, &SYNTHETIC_DST.into()).unwrap().unwrap();
    w.del_sa(key(0x8000)).unwrap();
    assert_eq!(r.lookup(0x8000, &SYNTHETIC_DST.into()).unwrap(), None);
    let (raw, _) = r.sad().read(h.slot).unwrap().unwrap();
    assert!(raw.enc_key.iter().chain(&raw.auth_key).all(|b| *b == 0), "key bytes are zeroed");
    assert_eq!(r.reserve_seq(h, 1, false), Err(SeqError::Stale));
    assert!(matches!(w.del_sa(key(0x8000)), Err(OpError::NoSuchSa { .. })));
    // The slot is reused once the reader has passed a quiescent state, as an lcore does between
    // bursts.
    r.quiescent();
    w.add_sa(&synthetic_sa(0x8001, 0)).unwrap();
    assert_eq!(w.query_sa(key(0x8001)).unwrap().counters.next_seq, 1, "a reused slot starts afresh");
}

/// An lcore may still hold a deleted SA's handle until its next quiescent state and record the
/// SA's sequence numbers in the slot's runtime state: the slot waits for that before a new SA
/// gets it, or the new SA would start with the old one's `replay_top`.
#[test]
fn a_deleted_sas_slot_is_reused_only_once_the_readers_have_moved_on() {
    let (_path, mut w, mut r) = setup(2);
    w.set_grace_timeout(std::time::Duration::from_millis(50));
    w.add_sa(&synthetic_sa(0x8000, 0)).unwrap();
    let old = r.lookup(0x8000, &SYNTHETIC_DST.into()).unwrap().unwrap();
    w.del_sa(key(0x8000)).unwrap();
    // The lcore that looked the SA up before the deletion records a number it accepted.
    r.runtime(old).raise_replay_top(1_000_000);
    w.add_sa(&synthetic_sa(0x8001, 0)).unwrap();
    let other = r.lookup(0x8001, &SYNTHETIC_DST.into()).unwrap().unwrap();
    assert_ne!(other.slot, old.slot, "another free slot is taken first");
    // Only the deleted SA's slot is left, and the reader has not moved on.
    let err = w.add_sa(&synthetic_sa(0x8002, 0)).unwrap_err();
    assert!(matches!(err, OpError::ReaderStalled { pid, .. } if pid == std::process::id()), "{err}");
    assert!(matches!(w.query_sa(key(0x8002)), Err(OpError::NoSuchSa { .. })), "a refused add changes nothing");
    r.quiescent();
    w.add_sa(&synthetic_sa(0x8002, 0)).unwrap();
    let new = r.lookup(0x8002, &SYNTHETIC_DST.into()).unwrap().unwrap();
    assert_eq!(new.slot, old.slot);
    let counters = w.query_sa(key(0x8002)).unwrap().counters;
    assert_eq!((counters.replay_top, counters.next_seq), (0, 1), "the new SA starts afresh");
}

#[test]
fn outbound_lookup_follows_the_reqid_to_the_newest_sa() {
    let (_path, mut w, r) = setup(4);
    let outbound = |spi: u32| {
        let mut c = synthetic_sa(spi, 0);
        c.direction = Direction::Out;
        c.reqid = 7;
        c
    };
    assert_eq!(r.outbound(7).unwrap(), None);
    w.add_sa(&outbound(0x9000)).unwrap();
    let old = r.outbound(7).unwrap().unwrap();
    w.add_sa(&outbound(0x9001)).unwrap();
    let new = r.outbound(7).unwrap().unwrap();
    assert_ne!(old.slot, new.slot, "make before break: the rekeyed SA takes over");
    w.del_sa(key(0x9000)).unwrap();
    assert_eq!(r.outbound(7).unwrap(), Some(new));
    w.del_sa(key(0x9001)).unwrap();
    assert_eq!(r.outbound(7).unwrap(), None);
    assert_eq!(r.outbound(63).unwrap(), None);
    assert_eq!(r.outbound(1 << 20).unwrap(), None, "a reqid beyond the table is a miss, not a panic");
}

fn rule(priority: u32, dst: &str, action: Action) -> Policy {
    Policy {
        priority,
        direction: Direction::Out,
        selector: Selector {
            src: Prefix::new(ip("198.18.0.0"), 16),
            dst: Prefix::new(ip(dst), 24),
            proto: Some(6),
            src_ports: (0, 65535),
            dst_ports: (443, 443),
            icmp_type: None,
            icmp_code: None,
        },
        action,
        flags: PolicyFlags::default(),
    }
}

fn protect(reqid: u32) -> Action {
    Action::Protect { reqid, template: SaTemplate { mode: Mode::Tunnel, src: ip("198.18.0.1"), dst: ip("198.19.0.1") } }
}

#[test]
fn policies_are_published_in_priority_order_and_removed_by_id() {
    let (_path, mut w, mut r) = setup(4);
    assert_eq!(r.spd().len(), 0);
    let v0 = w.spd_version();
    // The reader passes a quiescent state between publishes, as an lcore does between bursts.
    let a = w.add_policy(&rule(20, "198.19.1.0", Action::Discard)).unwrap();
    r.quiescent();
    let b = w.add_policy(&rule(10, "198.19.2.0", protect(3))).unwrap();
    r.quiescent();
    let mut nd = rule(20, "198.19.3.0", protect(4));
    nd.flags = PolicyFlags { nd_inbound: true, nd_outbound: true, boundary: true, guaranteed_encryption: true, negotiated: true };
    let c = w.add_policy(&nd).unwrap();
    r.quiescent();
    let ids: Vec<u32> = r.spd().iter().map(|p| p.id).collect();
    assert_eq!(ids, vec![b, a, c], "ascending priority, ties in insertion order");
    assert_eq!(r.spd().version, v0 + 3);
    assert_eq!(w.policies()[2], (c, nd), "a rule round-trips through the region");

    w.del_policy(a).unwrap();
    r.quiescent();
    assert_eq!(r.spd().iter().map(|p| p.id).collect::<Vec<_>>(), vec![b, c]);
    assert!(matches!(w.del_policy(a), Err(OpError::NoSuchPolicy(id)) if id == a));

    let mut v6 = rule(1, "2001:db8::", Action::Bypass);
    v6.selector.dst.len = 129;
    assert!(matches!(w.add_policy(&v6), Err(OpError::Policy(PolicyError::PrefixTooLong { len: 129, .. }))));
    v6.selector.dst.len = 64;
    assert!(matches!(w.add_policy(&v6), Err(OpError::Policy(PolicyError::MixedFamilies))));
    let mut flagged = rule(1, "198.19.9.0", Action::Bypass);
    flagged.flags.boundary = true;
    assert!(matches!(w.add_policy(&flagged), Err(OpError::Policy(PolicyError::FlagsWithoutProtect))));
    assert!(matches!(w.add_policy(&rule(1, "198.19.9.0", protect(0))), Err(OpError::Policy(PolicyError::ZeroReqid))));
    assert!(matches!(w.add_policy(&rule(1, "198.19.9.0", protect(64))), Err(OpError::ReqidOutOfRange { .. })));
    let mut icmp = rule(1, "198.19.9.0", Action::Bypass);
    icmp.selector.icmp_type = Some(8);
    assert!(matches!(w.add_policy(&icmp), Err(OpError::Policy(PolicyError::IcmpWithoutIcmp(Some(6))))));

    let many: Vec<Policy> = (0..15).map(|i| rule(i, "198.19.5.0", Action::Bypass)).collect();
    assert!(matches!(w.add_policies(&many), Err(OpError::SpdFull(16))));
    r.quiescent();
    assert_eq!(r.spd().len(), 2, "a refused batch changes nothing");
}

#[test]
fn replace_policies_swaps_the_selected_rules_in_one_snapshot_and_keeps_the_others_ids() {
    let (_path, mut w, mut r) = setup(4);
    let mut negotiated = rule(5, "198.19.3.0", protect(4));
    negotiated.flags.negotiated = true;
    let kept = w.add_policy(&negotiated).unwrap();
    r.quiescent();
    w.add_policies(&[rule(20, "198.19.1.0", Action::Discard), rule(10, "198.19.2.0", protect(3))]).unwrap();
    r.quiescent();
    let v0 = w.spd_version();
    let is_static = |p: &Policy| !p.flags.negotiated;
    let added = w.replace_policies(is_static, &[rule(1, "198.19.4.0", Action::Bypass)]).unwrap();
    r.quiescent();
    assert_eq!(r.spd().version, v0 + 1, "one snapshot");
    assert_eq!(
        w.policies(),
        vec![(added[0], rule(1, "198.19.4.0", Action::Bypass)), (kept, negotiated)],
        "the static rules replaced, the negotiated one kept with its id"
    );
    // A full SPD can still be replaced: the capacity counts the rules after the removal.
    let full: Vec<Policy> = (0..15).map(|i| rule(i, "198.19.5.0", Action::Bypass)).collect();
    w.replace_policies(is_static, &full).unwrap();
    r.quiescent();
    w.replace_policies(is_static, &full).unwrap();
    r.quiescent();
    assert_eq!(r.spd().len(), 16);
    assert!(matches!(w.replace_policies(|_| false, &full[..1]), Err(OpError::SpdFull(16))));
    assert!(matches!(
        w.replace_policies(is_static, &[rule(1, "198.19.9.0", protect(0))]),
        Err(OpError::Policy(PolicyError::ZeroReqid))
    ));
    assert_eq!(r.spd().len(), 16, "a refused replacement changes nothing");
}

#[test]
fn a_reader_that_never_reaches_a_quiescent_state_stalls_policy_changes_not_the_spd() {
    let (_path, mut w, _r) = setup(4);
    w.set_grace_timeout(std::time::Duration::from_millis(50));
    w.add_policy(&rule(1, "198.19.1.0", Action::Bypass)).unwrap();
    // The reader is online and never calls quiescent(): the second publish must wait for it.
    let err = w.add_policy(&rule(2, "198.19.2.0", Action::Bypass)).unwrap_err();
    assert!(matches!(err, OpError::ReaderStalled { pid, .. } if pid == std::process::id()), "{err}");
    assert_eq!(w.policies().len(), 1, "the published snapshot is unchanged");
}

#[test]
fn flush_removes_every_sa_and_rule() {
    let (_path, mut w, r) = setup(8);
    for spi in 300..305 {
        w.add_sa(&synthetic_sa(spi, 0)).unwrap();
    }
    w.get_spi(ip("198.18.9.9"), SYNTHETIC_DST).unwrap();
    w.add_policy(&rule(1, "198.19.1.0", Action::Bypass)).unwrap();
    drop(r);
    w.flush().unwrap();
    assert!(w.list_sas().is_empty());
    assert!(w.policies().is_empty());
    for spi in 300..305 {
        w.add_sa(&synthetic_sa(spi, 1)).unwrap();
    }
}

#[test]
fn events_flow_from_readers_to_the_writer_and_overflow_is_counted() {
    let (_path, mut w, r) = setup(4);
    let acquire = Event::Acquire {
        policy_id: 5,
        flow: FlowTuple { src: ip("198.18.1.2"), dst: ip("198.19.3.4"), proto: 6, src_port: 40000, dst_port: 443 },
        flags: ExchangeInfoFlags { nd_boundary: true, guarantee_encryption: false },
    };
    let all = [
        acquire,
        Event::SoftExpire { sa: key(300) },
        Event::HardExpire { sa: key(301) },
        Event::IdleExpire { sa: SaKey { spi: 302, dst: ip("2001:db8::1") } },
        Event::UnknownSpi { sa: key(303), src: ip("198.19.0.7") },
        Event::SeqNearExhaustion { sa: key(304), seq: u32::MAX as u64 - 5 },
    ];
    for e in &all[..4] {
        r.emit(e).unwrap();
    }
    assert_eq!((0..4).map_while(|_| w.pop_event()).collect::<Vec<_>>(), all[..4].to_vec());
    assert_eq!(w.pop_event(), None);
    for e in &all[4..] {
        r.emit(e).unwrap();
    }
    for _ in 0..6 {
        r.emit(&acquire).unwrap();
    }
    assert!(r.emit(&acquire).is_err(), "the ring holds 8 events");
    assert_eq!(w.events_lost(), 1);
    assert_eq!(w.pop_event(), Some(all[4]));
    assert_eq!(w.pop_event(), Some(all[5]));
}

#[test]
fn sequence_numbers_are_reserved_in_blocks_and_never_pass_the_limit() {
    let (_path, mut w, r) = setup(4);
    w.add_sa(&synthetic_sa(0xa000, 0)).unwrap(); // even SPI: no ESN
    let h = r.lookup(0xa000, &SYNTHETIC_DST.into()).unwrap().unwrap();
    assert_eq!(r.reserve_seq(h, 32, false).unwrap(), 1..33);
    assert_eq!(r.reserve_seq(h, 32, false).unwrap(), 33..65);
    let near_end = r.reserve_seq(h, u32::MAX as u64 - 100, false).unwrap();
    assert_eq!(near_end.start, 65);
    let last = r.reserve_seq(h, 1000, false).unwrap();
    assert_eq!(last.end, u32::MAX as u64 + 1, "2^32 - 1 is the last 32-bit sequence number");
    assert!(matches!(r.reserve_seq(h, 1, false), Err(SeqError::Exhausted(_))));

    w.add_sa(&synthetic_sa(0xa001, 0)).unwrap(); // odd SPI: ESN
    let esn = r.lookup(0xa001, &SYNTHETIC_DST.into()).unwrap().unwrap();
    r.reserve_seq(esn, u32::MAX as u64 + 10, true).unwrap();
    assert!(r.reserve_seq(esn, 5, true).unwrap().start > u32::MAX as u64, "ESN goes past 2^32");
}

#[test]
fn the_inbound_replay_top_only_rises_survives_a_new_reader_and_resets_with_the_slot() {
    let (path, mut w, r) = setup(4);
    w.add_sa(&synthetic_sa(0xb000, 0)).unwrap();
    let h = r.lookup(0xb000, &SYNTHETIC_DST.into()).unwrap().unwrap();
    for seq in [5, 90, 17, 90, 3] {
        r.runtime(h).raise_replay_top(seq);
    }
    let restarted = Reader::attach(Arc::new(Region::open(&path.0).unwrap())).unwrap();
    assert_eq!(restarted.runtime(h).replay_top(), 90, "a restarted dataplane sees the highest number");
    assert_eq!(w.query_sa(key(0xb000)).unwrap().counters.replay_top, 90);
    w.del_sa(key(0xb000)).unwrap();
    w.add_sa(&synthetic_sa(0xb000, 0)).unwrap();
    let fresh = r.lookup(0xb000, &SYNTHETIC_DST.into()).unwrap().unwrap();
    assert_eq!(r.runtime(fresh).replay_top(), 0, "a new SA in the slot starts from nothing");
}

#[test]
fn a_million_sas_install_and_look_up() {
    let path = TempPath::new("million");
    let n = 1_000_000u32;
    let region = Arc::new(Region::create(&path.0, Capacities { sas: n, ..Capacities::default() }).unwrap());
    let mut w = Writer::attach(region.clone()).unwrap();
    for i in 0..n {
        w.add_sa(&synthetic_sa(1_000 + i, 0)).unwrap();
    }
    assert!(matches!(w.add_sa(&synthetic_sa(999, 0)), Err(OpError::SadFull(1_000_000))));
    let r = Reader::attach(region).unwrap();
    let dst = RawAddr::from(SYNTHETIC_DST);
    let mut slots = std::collections::HashSet::new();
    for i in 0..n {
        let h = r.lookup(1_000 + i, &dst).unwrap().unwrap_or_else(|| panic!("SPI {} missing", 1_000 + i));
        slots.insert(h.slot);
    }
    assert_eq!(slots.len(), n as usize, "every SA has its own slot");
    for i in (0..n).step_by(997) {
        w.del_sa(key(1_000 + i)).unwrap();
        assert_eq!(r.lookup(1_000 + i, &dst).unwrap(), None);
    }
    assert!(r.lookup(1_001, &dst).unwrap().is_some());
}
