//! `gateway load` (`provision::load`) next to what `iked` installed in the same region: iked's
//! rules (flagged `negotiated`), its SAs (their reqid) and its reserved SPIs stay exactly as they
//! were, with their ids, while the file's static rules and SAs are added, changed and removed;
//! a file that names one of iked's SAs or reqids is refused and changes nothing.

use std::path::Path;
use std::sync::Arc;

use dataplane::gateway::config::Config;
use dataplane::gateway::provision::{self, LoadError, LoadReport};
use shared::event::SaKey;
use shared::layout::Capacities;
use shared::ops::{OpError, Writer};
use shared::policy::Policy;
use shared::reader::Reader;
use shared::region::Region;

const PORTS: &str = r#"
[ports.protected]
device = "net_null0"
exception = "net_tap0,iface=t0"
addresses = ["198.18.1.1/24"]

[ports.unprotected]
device = "net_null1"
exception = "net_tap1,iface=t1"
addresses = ["198.18.0.1/30"]
"#;

/// A tunnel between 198.18.1.0/24 and `remote` through the peer 198.18.0.2: a rule each way
/// and an SA each way (SPIs `spi` in, `spi ^ 1` out), all with `reqid`.
fn tunnel(remote: &str, reqid: u32, spi: u32) -> String {
    format!(
        r#"
[[policies]]
direction = "out"
src = "198.18.1.0/24"
dst = "{remote}"
action = "protect"
reqid = {reqid}
tunnel = ["198.18.0.1", "198.18.0.2"]

[[policies]]
direction = "in"
src = "{remote}"
dst = "198.18.1.0/24"
action = "protect"
reqid = {reqid}
tunnel = ["198.18.0.2", "198.18.0.1"]

[[sas]]
direction = "out"
spi = {out_spi}
mode = "tunnel"
src = "198.18.0.1"
dst = "198.18.0.2"
suite = "aes-gcm-256"
enc_key = "0101010101010101010101010101010101010101010101010101010101010101a0a1a2a3"
reqid = {reqid}

[[sas]]
direction = "in"
spi = {spi}
mode = "tunnel"
src = "198.18.0.2"
dst = "198.18.0.1"
suite = "aes-gcm-256"
enc_key = "0202020202020202020202020202020202020202020202020202020202020202a0a1a2a3"
reqid = {reqid}
"#,
        out_spi = spi ^ 1
    )
}

fn config(tunnels: &[(&str, u32, u32)]) -> Config {
    parse(&config_text(tunnels))
}

fn config_text(tunnels: &[(&str, u32, u32)]) -> String {
    let text: String = tunnels.iter().map(|&(remote, reqid, spi)| tunnel(remote, reqid, spi)).collect();
    format!("{PORTS}{text}")
}

fn parse(text: &str) -> Config {
    Config::parse(Path::new("test.toml"), text).unwrap()
}

struct TempRegion(std::path::PathBuf);

impl Drop for TempRegion {
    fn drop(&mut self) {
        let _ = Region::remove(&self.0);
    }
}

/// A region with what iked installed: its rules with their ids, its SAs' and reserved SPI's keys.
struct IkedsRegion {
    _path: TempRegion,
    region: Arc<Region>,
    rules: Vec<(u32, Policy)>,
    sas: Vec<SaKey>,
}

/// A region holding what iked installs for one child SA (198.18.9.0/24, reqid 9, SPIs 0x9000
/// and 0x9001), as iked does it: its rules flagged `negotiated`, its SAs, and an SPI it reserved
/// for a negotiation under way.
fn region_with_ikeds_entries(name: &str) -> IkedsRegion {
    let path = std::env::temp_dir().join(format!("gw-provision-{name}-{}", std::process::id()));
    let _ = Region::remove(&path);
    let caps = Capacities { sas: 16, policies: 16, readers: 4, reqids: 16, ..Capacities::default() };
    let region = Arc::new(Region::create(&path, caps).unwrap());
    let ikeds = config(&[("198.18.9.0/24", 9, 0x9000)]);
    let mut iked = Writer::attach(region.clone()).unwrap();
    let mut keys: Vec<SaKey> = ikeds.sas.iter().map(|sa| iked.add_sa(sa).unwrap()).collect();
    let negotiated: Vec<Policy> = ikeds
        .policies
        .iter()
        .map(|p| Policy { flags: shared::policy::PolicyFlags { negotiated: true, ..p.flags }, ..*p })
        .collect();
    iked.add_policies(&negotiated).unwrap();
    let larval_dst = "198.18.0.1".parse().unwrap();
    keys.push(SaKey { spi: iked.get_spi("198.18.0.2".parse().unwrap(), larval_dst).unwrap(), dst: larval_dst });
    let rules = iked.policies();
    IkedsRegion { _path: TempRegion(path), region, rules, sas: keys }
}

/// What a load may change: the rules with their ids, the SAs with their counters, the SPD version.
type Snapshot = (Vec<(u32, Policy)>, Vec<shared::inspect::SaInfo>, u64);

fn snapshot(writer: &Writer) -> Snapshot {
    (writer.policies(), writer.list_sas(), writer.spd_version())
}

/// [`region_with_ikeds_entries`] with two static tunnels loaded (198.18.2.0/24 and 198.18.3.0/24,
/// reqids 1 and 2), and the loader.
fn with_two_tunnels(name: &str) -> (IkedsRegion, Writer) {
    let iked = region_with_ikeds_entries(name);
    let mut loader = Writer::attach(iked.region.clone()).unwrap();
    provision::load(&mut loader, &config(&[("198.18.2.0/24", 1, 0x1000), ("198.18.3.0/24", 2, 0x2000)])).unwrap();
    (iked, loader)
}

fn ikeds_entries_are_intact(writer: &Writer, rules: &[(u32, Policy)], keys: &[SaKey]) {
    let published = writer.policies();
    for rule in rules {
        assert!(published.contains(rule), "iked's rule {rule:?} (with its id) is gone: {published:?}");
    }
    for key in keys {
        assert!(writer.query_sa(*key).is_ok(), "iked's SA {key:?} is gone");
    }
}

#[test]
fn a_load_adds_changes_and_removes_static_entries_and_leaves_ikeds_alone() {
    let IkedsRegion { _path, region, rules: ikeds_rules, sas: ikeds_sas } = region_with_ikeds_entries("alone");
    let mut loader = Writer::attach(region).unwrap();

    let two_tunnels = config(&[("198.18.2.0/24", 1, 0x1000), ("198.18.3.0/24", 2, 0x2000)]);
    let report = provision::load(&mut loader, &two_tunnels).unwrap();
    let iked = |report: LoadReport| (report.negotiated_sas, report.negotiated_rules);
    assert_eq!((report.sas_added, report.sas_deleted, report.spd_published), (4, 0, true));
    assert_eq!(iked(report), (3, 2), "two SAs and a reserved SPI, two rules");
    ikeds_entries_are_intact(&loader, &ikeds_rules, &ikeds_sas);
    assert_eq!(loader.policies().len(), 6);

    // Loading the same file again changes nothing, not even the SPD.
    let version = loader.spd_version();
    let report = provision::load(&mut loader, &two_tunnels).unwrap();
    assert_eq!((report.sas_kept, report.sas_added, report.spd_published), (4, 0, false));
    assert_eq!(loader.spd_version(), version);

    // One tunnel less: its rules go in one snapshot, its SAs are deleted; iked's stay.
    let report = provision::load(&mut loader, &config(&[("198.18.2.0/24", 1, 0x1000)])).unwrap();
    assert_eq!((report.sas_kept, report.sas_deleted, report.spd_published), (2, 2, true));
    assert_eq!(loader.spd_version(), version + 1, "one snapshot");
    ikeds_entries_are_intact(&loader, &ikeds_rules, &ikeds_sas);
    assert_eq!(loader.policies().len(), 4);
    assert_eq!(loader.list_sas().len(), 5);

    // A file without rules or SAs removes every static one and nothing of iked's.
    let report = provision::load(&mut loader, &config(&[])).unwrap();
    assert_eq!((report.sas_deleted, report.spd_published), (2, true));
    ikeds_entries_are_intact(&loader, &ikeds_rules, &ikeds_sas);
    assert_eq!(loader.policies(), ikeds_rules);
    assert_eq!(loader.list_sas().len(), 3);
}

#[test]
fn a_file_naming_ikeds_sas_or_reqids_is_refused_and_changes_nothing() {
    let IkedsRegion { _path, region, rules: ikeds_rules, sas: ikeds_sas } = region_with_ikeds_entries("refused");
    let mut loader = Writer::attach(region).unwrap();
    provision::load(&mut loader, &config(&[("198.18.2.0/24", 1, 0x1000)])).unwrap();
    let before = (loader.policies(), loader.list_sas().len(), loader.spd_version());

    let err = provision::load(&mut loader, &config(&[("198.18.3.0/24", 3, 0x9000)])).unwrap_err();
    assert!(matches!(err, LoadError::NegotiatedSa(key) if ikeds_sas[..2].contains(&key)), "{err}");
    assert!(err.to_string().contains("is iked's (negotiated)"), "{err}");
    let err = provision::load(&mut loader, &config(&[("198.18.3.0/24", 9, 0x3000)])).unwrap_err();
    assert!(matches!(err, LoadError::NegotiatedReqid(9)), "{err}");
    let reserved = ikeds_sas[2];
    let err = provision::load(&mut loader, &config(&[("198.18.3.0/24", 3, reserved.spi)])).unwrap_err();
    assert!(matches!(err, LoadError::NegotiatedSa(key) if key == reserved), "an SPI iked reserved: {err}");

    assert_eq!((loader.policies(), loader.list_sas().len(), loader.spd_version()), before);
    ikeds_entries_are_intact(&loader, &ikeds_rules, &ikeds_sas);
}

/// A file whose SAs do not fit in the SAD beside iked's is refused before anything changes, not
/// loaded halfway (its old SAs deleted, some of the new ones added).
#[test]
fn a_file_too_large_for_the_sad_is_refused_and_changes_nothing() {
    let (IkedsRegion { _path, rules: ikeds_rules, sas: ikeds_sas, .. }, mut loader) = with_two_tunnels("too-large");
    let before = snapshot(&loader);

    // 16 slots: iked holds 3, so 13 are there for the file; seven tunnels need 14.
    let subnets: Vec<String> = (0..7).map(|i| format!("198.18.{}.0/24", 20 + i)).collect();
    // Reqids below the region's 16, other than iked's 9.
    let reqids = [3, 4, 5, 6, 7, 8, 10];
    let tunnels: Vec<(&str, u32, u32)> = subnets.iter().zip(reqids).enumerate().map(|(i, (s, reqid))| (s.as_str(), reqid, 0x4000 + 0x10 * i as u32)).collect();
    let err = provision::load(&mut loader, &config(&tunnels)).unwrap_err();
    assert!(matches!(err, LoadError::SadTooSmall { needed: 14, room: 13 }), "{err}");
    assert_eq!(snapshot(&loader), before, "nothing changed");
    ikeds_entries_are_intact(&loader, &ikeds_rules, &ikeds_sas);

    // Six tunnels fit.
    let report = provision::load(&mut loader, &config(&tunnels[..6])).unwrap();
    assert_eq!((report.sas_added, report.sas_deleted), (12, 4));
    ikeds_entries_are_intact(&loader, &ikeds_rules, &ikeds_sas);
}

/// The SPI of the outbound SA the rules of `reqid` use, as an lcore finds it.
fn outbound_spi(lcore: &Reader, reqid: u32) -> Option<u32> {
    let handle = lcore.outbound(reqid).unwrap()?;
    lcore.read_sa(handle).unwrap().map(|record| record.spi)
}

/// A file that changes what an installed SA cannot change (its keys) is refused before anything
/// changes; before, the SAs the file no longer named were already deleted when the update failed.
#[test]
fn a_file_changing_an_sas_keys_is_refused_and_changes_nothing() {
    let (IkedsRegion { _path, rules: ikeds_rules, sas: ikeds_sas, .. }, mut loader) = with_two_tunnels("rekeyed");
    let before = snapshot(&loader);

    let new_keys = config_text(&[("198.18.2.0/24", 1, 0x1000)]).replace("0101010101", "0303030303");
    let err = provision::load(&mut loader, &parse(&new_keys)).unwrap_err();
    assert!(err.to_string().contains("SA 0x00001001: keys cannot change"), "{err}");
    assert_eq!(snapshot(&loader), before, "nothing changed");
    ikeds_entries_are_intact(&loader, &ikeds_rules, &ikeds_sas);
}

/// Make before break: a load that fails partway, here at the SPD's publication because an lcore
/// stopped passing quiescent states, takes back what it did. The SAs the file no longer names
/// are still there (they go only after the new rules are in), and the rules still lead to the
/// outbound SA they led to, although the file's new outbound SA of that reqid was added.
#[test]
fn a_load_that_fails_partway_is_taken_back() {
    let IkedsRegion { _path, region, rules: ikeds_rules, sas: ikeds_sas } = region_with_ikeds_entries("undone");
    let mut loader = Writer::attach(region.clone()).unwrap();
    loader.set_grace_timeout(std::time::Duration::from_millis(50));
    let mut lcore = Reader::attach(region).unwrap();
    provision::load(&mut loader, &config(&[("198.18.2.0/24", 1, 0x1000)])).unwrap();
    lcore.quiescent();
    provision::load(&mut loader, &config(&[("198.18.2.0/24", 1, 0x1000), ("198.18.3.0/24", 2, 0x2000)])).unwrap();
    let before = snapshot(&loader);
    assert_eq!(outbound_spi(&lcore, 1), Some(0x1001));

    // Tunnel 2 goes, tunnel 1 gets new SAs (0x1100, 0x1101), tunnel 4 comes: the lcore has not
    // passed a quiescent state since the last snapshot, so the next cannot be published.
    let next = config(&[("198.18.2.0/24", 1, 0x1100), ("198.18.4.0/24", 4, 0x4000)]);
    let err = provision::load(&mut loader, &next).unwrap_err();
    assert!(matches!(err, LoadError::Op(OpError::ReaderStalled { .. })), "{err}");
    assert_eq!(snapshot(&loader), before, "taken back");
    assert_eq!(outbound_spi(&lcore, 1), Some(0x1001), "the rules of reqid 1 lead to their old SA");
    ikeds_entries_are_intact(&loader, &ikeds_rules, &ikeds_sas);

    lcore.quiescent();
    let report = provision::load(&mut loader, &next).unwrap();
    assert_eq!((report.sas_added, report.sas_deleted, report.spd_published), (4, 4, true));
    assert_eq!(outbound_spi(&lcore, 1), Some(0x1101));
    ikeds_entries_are_intact(&loader, &ikeds_rules, &ikeds_sas);
}
