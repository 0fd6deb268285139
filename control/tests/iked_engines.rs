//! Two `iked` daemons with three engine threads each, in two network namespaces joined by a veth
//! (198.18.0.0/15 only): several IKE SAs initiated one after the other land on different engines
//! at both ends (by round robin at the initiator, by the initiator's SPI at the responder) and
//! every message still reaches the engine that holds its SA: all come up, each is rekeyed, a
//! liveness check on each is answered, and both ends list the same SPIs. A daemon restarted
//! with the same identity makes the other delete all its old IKE SAs, on every engine, on the
//! INITIAL_CONTACT of its first new one (RFC 7296 2.4). Needs root.
mod common;

use common::lab::Lab;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const A: &str = "198.18.0.1";
const B: &str = "198.18.0.2";
const SAS: usize = 6;

/// How long a step may take.
const WAIT: Duration = Duration::from_secs(15);

/// Starts the daemon of `side` ("a" or "b") in namespace NAMEside, at `local`, with `remote` as
/// its one peer.
fn start(lab: &mut Lab, side: &str, local: &str, remote: &str) {
    let config = format!(
        "[daemon]\nlisten = \"{local}\"\ncontrol_socket = \"{sock}\"\nworkers = 3\n\n\
         [[peer]]\nname = \"other\"\nremote = \"{remote}\"\nlocal_id = \"fqdn:{side}.example\"\n\
         remote_id = \"fqdn:{other}.example\"\npsk = \"a pre-shared key for the engines test\"\n\
         ike = [\"aes256gcm16-prfsha256-ecp256\"]\nesp = [\"aes256gcm16\"]\n\
         local_ts = [\"198.18.{mine}.0/24\"]\nremote_ts = [\"198.18.{theirs}.0/24\"]\n",
        sock = lab.socket_of(side).display(),
        other = if side == "a" { "b" } else { "a" },
        mine = if side == "a" { 1 } else { 2 },
        theirs = if side == "a" { 2 } else { 1 },
    );
    let ns = format!("{}{side}", lab.name);
    lab.start_iked_named(&ns, side, &config);
}

/// The (SPIi, SPIr) pairs of one side's established IKE SAs that carry a child SA.
fn sas(lab: &Lab, side: &str) -> BTreeSet<(String, String)> {
    lab.ctl_of(side, "list")
        .as_array()
        .into_iter()
        .flatten()
        .filter(|sa| {
            sa["established"] == true && sa["children"].as_array().is_some_and(|c| c.len() == 1)
        })
        .map(|sa| {
            (
                sa["spi_i"].as_str().unwrap().to_string(),
                sa["spi_r"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn our_spi(sa: &Value) -> String {
    let field = if sa["initiator"] == true {
        "spi_i"
    } else {
        "spi_r"
    };
    sa[field].as_str().unwrap().to_string()
}

/// The engines (our SPI modulo 3 is the engine's index) that hold `side`'s IKE SAs.
fn engines(lab: &Lab, side: &str) -> BTreeSet<u64> {
    lab.ctl_of(side, "list")
        .as_array()
        .unwrap()
        .iter()
        .map(|sa| u64::from_str_radix(&our_spi(sa), 16).unwrap() % 3)
        .collect()
}

/// Starts B, then A, which opens SAS IKE SAs with B; waits until both ends hold them all.
fn pair_with_ike_sas(lab: &mut Lab) {
    lab.two_namespaces(A, B);
    start(lab, "b", B, A);
    start(lab, "a", A, B);
    for _ in 0..SAS {
        let answer = lab.ctl_of("a", "initiate other");
        assert!(answer.get("ike_spi").is_some(), "{answer}");
    }
    lab.wait_for("every IKE SA up at both ends", WAIT, || {
        let (a, b) = (sas(lab, "a"), sas(lab, "b"));
        a.len() == SAS && a == b
    });
}

#[test]
fn ike_sas_spread_over_engine_threads_reach_their_engine() {
    let mut lab = Lab::new("ik", "e");
    pair_with_ike_sas(&mut lab);
    assert!(engines(&lab, "a").len() > 1, "A used one engine only");
    assert!(engines(&lab, "b").len() > 1, "B used one engine only");

    // Rekey every IKE SA from B (the engine that holds it does it) and check each new one.
    let before = sas(&lab, "b");
    for sa in lab.ctl_of("b", "list").as_array().unwrap() {
        let answer = lab.ctl_of("b", &format!("rekey-ike {}", our_spi(sa)));
        assert!(answer.get("error").is_none(), "{answer}");
    }
    lab.wait_for("every IKE SA rekeyed at both ends", WAIT, || {
        let (a, b) = (sas(&lab, "a"), sas(&lab, "b"));
        a.len() == SAS && a == b && a.is_disjoint(&before)
    });
    for sa in lab.ctl_of("a", "list").as_array().unwrap() {
        let answer = lab.ctl_of("a", &format!("liveness {}", our_spi(sa)));
        assert!(answer.get("error").is_none(), "{answer}");
    }
    lab.wait_for("every liveness check answered", WAIT, || {
        lab.ctl_of("a", "stats")["liveness_answered_by_peer"].as_u64() >= Some(SAS as u64)
    });
    assert_eq!(lab.ctl_of("a", "stats")["integrity_failures"], 0);
    assert_eq!(lab.ctl_of("b", "stats")["ike_sas_established"], SAS);
}

#[test]
fn a_restarted_peer_replaces_its_ike_sas_on_every_engine() {
    let mut lab = Lab::new("ic", "r");
    // At most one INITIAL_CONTACT (the first IKE SA's, unless the next started before its
    // IKE_AUTH), which leaves the later ones alone.
    pair_with_ike_sas(&mut lab);
    assert!(engines(&lab, "b").len() > 1, "B used one engine only");
    let old = sas(&lab, "b");

    // A crashes and comes back: B still holds the old SAs until A's new one says INITIAL_CONTACT.
    lab.kill("a");
    start(&mut lab, "a", A, B);
    assert_eq!(sas(&lab, "b"), old);
    let answer = lab.ctl_of("a", "initiate other");
    assert!(answer.get("ike_spi").is_some(), "{answer}");
    lab.wait_for("only the new IKE SA at B", WAIT, || {
        let (a, b) = (sas(&lab, "a"), sas(&lab, "b"));
        a.len() == 1 && a == b && lab.ctl_of("b", "list").as_array().map(Vec::len) == Some(1)
    });
    assert!(sas(&lab, "b").is_disjoint(&old));
    let log = std::fs::read_to_string(lab.path("b.log")).unwrap();
    assert_eq!(log.matches("deleted without notice").count(), SAS, "{log}");
    // Nothing about the old SAs reached the new A.
    assert_eq!(lab.ctl_of("a", "stats")["unknown_spi"], 0);
}
