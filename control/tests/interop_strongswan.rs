//! Interoperability with strongSwan 5.9 (Debian's charon with kernel-libipsec, which forces NAT-T):
//! charon in one network namespace, our daemon (`iked`) in another, a veth between them
//! (198.18.0.0/15 only). Our daemon as initiator and as responder, pre-shared keys, AES-GCM and
//! AES-CBC/SHA-256 child SAs; in each case child SA and IKE SA rekeys and reauthentication
//! started by each side, child SA rekeys with PFS (ECP-256) started by each side,
//! liveness checks both ways, a child SA deleted by one side and the IKE SA by the other. Asserts
//! that SPIs agree with charon's `swanctl --list-sas`, that the child keys equal those charon logs
//! at level 4, that a rekeyed IKE SA answers liveness checks (its keys agree), and that the child
//! SAs sit in our shared region with those keys. Fails (does not skip) without charon.
mod common;

use common::lab::{charon_keys, charon_last_encryption_keys, Lab};
use shared::inspect;
use shared::region::Region;
use shared::sa::Direction;
use std::time::Duration;

const OURS: &str = "198.18.0.1";
const THEIRS: &str = "198.18.0.2";
const PSK: &str = "interop pre-shared key 0123456789";
/// How long a step may take.
const WAIT: Duration = Duration::from_secs(15);

struct Case {
    tag: &'static str,
    ike: &'static str,
    esp: &'static str,
    /// A D-H group for PFS in CREATE_CHILD_SA (RFC 7296 1.3), on both ends.
    pfs: Option<&'static str>,
    we_initiate: bool,
}

/// Two namespaces ("ik" + pid + tag, a: ours, b: charon's) joined by a veth, charon and `iked`.
/// Charon's child `net2`, a part of `net`'s selectors, is only started by a test that wants a
/// second child SA on the IKE SA.
fn lab(case: &Case) -> Lab {
    let mut lab = Lab::new("ik", case.tag);
    lab.two_namespaces(OURS, THEIRS);
    let swanctl = format!(
        "connections {{\n ours {{\n  version = 2\n  local_addrs = {THEIRS}\n  remote_addrs = {OURS}\n  proposals = {ike}\n  \
         local {{\n   auth = psk\n   id = charon.example\n  }}\n  remote {{\n   auth = psk\n   id = ours.example\n  }}\n  \
         dpd_delay = {dpd}\n  children {{\n   net {{\n    local_ts = 198.18.2.0/24\n    remote_ts = 198.18.1.0/24\n    esp_proposals = {esp}\n    mode = tunnel\n   }}\n   \
         net2 {{\n    local_ts = 198.18.2.0/25\n    remote_ts = 198.18.1.0/25\n    esp_proposals = {esp}\n    mode = tunnel\n   }}\n  }}\n }}\n}}\n\
         secrets {{\n ike-1 {{\n  id-1 = ours.example\n  id-2 = charon.example\n  secret = \"{PSK}\"\n }}\n}}\n",
        ike = case.ike,
        esp = match case.pfs {
            Some(group) => format!("{}-{group}", case.esp),
            None => case.esp.to_string(),
        },
        dpd = if case.we_initiate { "0s" } else { "1s" }
    );
    let b = format!("{}b", lab.name);
    lab.start_charon(&b, "", &swanctl);
    let config = format!(
        "[daemon]\nlisten = \"{OURS}\"\ncontrol_socket = \"{sock}\"\nregion = \"{region}\"\nlog_keys = true\n\n\
         [[peer]]\nname = \"charon\"\nremote = \"{THEIRS}\"\nlocal_id = \"fqdn:ours.example\"\nremote_id = \"fqdn:charon.example\"\n\
         psk = \"{PSK}\"\nike = [\"{ike}\"]\nesp = [\"{esp}\"]\npfs = [{pfs}]\nlocal_ts = [\"198.18.1.0/24\"]\nremote_ts = [\"198.18.2.0/24\"]\ninitiate = {init}\n",
        sock = lab.iked_socket().display(),
        region = lab.path("region").display(),
        ike = case.ike,
        esp = case.esp,
        pfs = case.pfs.map(|g| format!("\"{g}\"")).unwrap_or_default(),
        init = case.we_initiate
    );
    let a = format!("{}a", lab.name);
    lab.start_iked(&a, &config);
    lab
}

/// The lab of `case` with the IKE SA and its first child SA established.
fn established(case: &Case) -> Lab {
    let lab = lab(case);
    if !case.we_initiate {
        lab.swanctl("--initiate --child net --ike ours --timeout 10");
    }
    lab.wait_for("a child SA in iked", WAIT, || {
        lab.ctl("list").as_array().is_some_and(|sas| {
            sas.iter()
                .any(|sa| sa["children"].as_array().is_some_and(|c| !c.is_empty()))
        })
    });
    lab
}

fn run_case(case: Case) {
    let lab = established(&case);
    let list = lab.ctl("list");
    let sa = &list[0];
    assert_eq!(sa["established"], true);
    assert_eq!(sa["nat"], true, "kernel-libipsec forces NAT-T");
    let child = &sa["children"][0];
    let ours_in = child["inbound_spi"].as_str().unwrap().to_string();
    let ours_out = child["outbound_spi"].as_str().unwrap().to_string();
    // charon's view: its inbound SPI is our outbound one and vice versa.
    let charon_sas = lab.swanctl("--list-sas");
    assert!(
        charon_sas.contains(&format!("in  {ours_out}")),
        "{charon_sas}"
    );
    assert!(
        charon_sas.contains(&format!("out {ours_in}")),
        "{charon_sas}"
    );

    // Keys: ours (log_keys) against charon's level-4 dumps.
    let [(_, in_encr, in_integ), (_, out_encr, out_integ)] = lab.iked_keys();
    let charon = charon_keys(&std::fs::read_to_string(lab.path("charon.log")).unwrap());
    for key in [&in_encr, &in_integ, &out_encr, &out_integ]
        .into_iter()
        .filter(|k| !k.is_empty())
    {
        assert!(
            charon.iter().any(|c| c == key),
            "key {key} not in charon's log ({} keys found)\n{}",
            charon.len(),
            lab.logs()
        );
    }

    // The shared region holds both SAs with those keys.
    let region = Region::open(lab.path("region")).unwrap();
    let sas = inspect::list_sas(&region);
    let find = |spi: &str, direction: Direction| {
        let spi = u32::from_str_radix(spi, 16).unwrap();
        sas.iter()
            .filter_map(|s| s.config.clone())
            .find(|c| c.spi == spi && c.direction == direction)
            .unwrap()
    };
    let inbound = find(&ours_in, Direction::In);
    let outbound = find(&ours_out, Direction::Out);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(hex(&inbound.enc_key), in_encr);
    assert_eq!(hex(&outbound.enc_key), out_encr);
    assert_eq!(hex(&inbound.auth_key), in_integ);
    assert_eq!(hex(&outbound.auth_key), out_integ);
    assert!(
        inbound.encap.is_some() && outbound.encap.is_some(),
        "UDP-encapsulated ESP"
    );

    // Liveness: we check charon (when we initiated; our SPI is SPIi), charon checks us (its
    // dpd_delay is 1 s when it initiated).
    if case.we_initiate {
        let spi = sa["spi_i"].as_str().unwrap();
        assert!(lab.ctl(&format!("liveness {spi}")).get("error").is_none());
        lab.wait_for("charon to answer our liveness check", WAIT, || {
            lab.ctl("stats")["liveness_answered_by_peer"] == 1
        });
    } else {
        lab.wait_for("a liveness check from charon", WAIT, || {
            lab.ctl("stats")["liveness_answered"].as_u64() >= Some(1)
        });
    }

    // Child SA rekey from both sides, then IKE SA rekey from both sides (the child SA moves to
    // the new IKE SA untouched), then a child SA rekey on the rekeyed IKE SA.
    for we_rekey in [case.we_initiate, !case.we_initiate] {
        rekey_child(&lab, &region, we_rekey);
    }
    for we_rekey in [case.we_initiate, !case.we_initiate] {
        rekey_ike(&lab, we_rekey);
    }
    rekey_child(&lab, &region, case.we_initiate);
    // Reauthentication from either side: a new IKE SA and child SA replace the old ones.
    for we_reauth in [case.we_initiate, !case.we_initiate] {
        reauthenticate(&lab, &region, we_reauth);
    }

    // Delete the child SA from one side and the IKE SA from the other.
    let list = lab.ctl("list");
    let child_in = list[0]["children"][0]["inbound_spi"]
        .as_str()
        .unwrap()
        .to_string();
    if case.we_initiate {
        lab.swanctl("--terminate --child net --timeout 10");
    } else {
        let answer = lab.ctl(&format!("terminate-child {} {child_in}", our_spi(&list[0])));
        assert!(answer.get("error").is_none(), "{answer}");
    }
    lab.wait_for("the child SA to go away on both sides", WAIT, || {
        lab.ctl("list")[0]["children"]
            .as_array()
            .is_some_and(|c| c.is_empty())
            && !lab.swanctl("--list-sas").contains("INSTALLED")
    });
    assert!(
        inspect::list_sas(&region)
            .iter()
            .all(|s| s.config.is_none()),
        "the deleted child SA left the region"
    );
    if case.we_initiate {
        lab.ctl(&format!("terminate {}", our_spi(&lab.ctl("list")[0])));
    } else {
        lab.swanctl("--terminate --ike ours --timeout 10");
    }
    lab.wait_for("the IKE SA to go away on both sides", WAIT, || {
        lab.ctl("list").as_array().is_some_and(|sas| sas.is_empty())
            && !lab.swanctl("--list-sas").contains("ESTABLISHED")
    });
}

/// Our SPI of an IKE SA in `iked ctl list`: SPIi if we initiated it, else SPIr.
fn our_spi(sa: &serde_json::Value) -> String {
    let field = if sa["initiator"] == true {
        "spi_i"
    } else {
        "spi_r"
    };
    sa[field].as_str().unwrap().to_string()
}

/// The region holds the SAs with these SPIs (hex, as `iked ctl list` shows them) and no other.
fn assert_region_holds_only(region: &Region, spis: [&str; 2]) {
    let mut found: Vec<u32> = inspect::list_sas(region)
        .iter()
        .filter_map(|s| s.config.as_ref().map(|c| c.spi))
        .collect();
    let mut expected = spis.map(|spi| u32::from_str_radix(spi, 16).unwrap());
    expected.sort();
    found.sort();
    assert_eq!(found, expected, "only the new pair is in the region");
}

/// Rekeys the one child SA from our side or charon's (make before break); afterwards both ends
/// agree on the new SPIs and the region holds only the new pair.
fn rekey_child(lab: &Lab, region: &Region, we_rekey: bool) {
    let list = lab.ctl("list");
    let old_in = list[0]["children"][0]["inbound_spi"]
        .as_str()
        .unwrap()
        .to_string();
    if we_rekey {
        let answer = lab.ctl(&format!("rekey-child {} {old_in}", our_spi(&list[0])));
        assert!(answer.get("error").is_none(), "{answer}");
    } else {
        lab.swanctl("--rekey --child net");
    }
    lab.wait_for("the rekeyed child SA", WAIT, || {
        let list = lab.ctl("list");
        let children = list[0]["children"].as_array().cloned().unwrap_or_default();
        children.len() == 1 && children[0]["inbound_spi"].as_str() != Some(old_in.as_str())
    });
    let list = lab.ctl("list");
    let rekeyed = &list[0]["children"][0];
    let (new_in, new_out) = (
        rekeyed["inbound_spi"].as_str().unwrap(),
        rekeyed["outbound_spi"].as_str().unwrap(),
    );
    lab.wait_for("charon to drop the old child SA", WAIT, || {
        !lab.swanctl("--list-sas").contains(&format!("out {old_in}"))
    });
    let charon_sas = lab.swanctl("--list-sas");
    assert!(
        charon_sas.contains(&format!("in  {new_out}"))
            && charon_sas.contains(&format!("out {new_in}")),
        "{charon_sas}"
    );
    // RFC 7296 2.17: the keys' directions follow the roles in the CREATE_CHILD_SA exchange, not
    // in the IKE SA (charon logs them as the exchange's initiator's and responder's).
    let (initiator, responder) =
        charon_last_encryption_keys(&std::fs::read_to_string(lab.path("charon.log")).unwrap());
    let [(_, in_encr, _), (_, out_encr, _)] = lab.iked_keys_of(new_in);
    let expected = if we_rekey {
        (initiator, responder)
    } else {
        (responder, initiator)
    };
    assert_eq!((out_encr, in_encr), expected, "(outbound, inbound) keys");
    assert_region_holds_only(region, [new_in, new_out]);
}

/// Reauthenticates from our side (`reauth`) or charon's (`swanctl --rekey --reauth`): both ends
/// then hold one new IKE SA with one new child SA, which the region holds, and nothing else.
fn reauthenticate(lab: &Lab, region: &Region, we_reauth: bool) {
    let list = lab.ctl("list");
    let old_spi_i = list[0]["spi_i"].as_str().unwrap().to_string();
    let old_child = list[0]["children"][0]["inbound_spi"]
        .as_str()
        .unwrap()
        .to_string();
    if we_reauth {
        let answer = lab.ctl(&format!("reauth {}", our_spi(&list[0])));
        assert!(answer.get("error").is_none(), "{answer}");
    } else {
        lab.swanctl("--rekey --ike ours --reauth");
    }
    lab.wait_for("the reauthenticated IKE SA with its child SA", WAIT, || {
        let list = lab.ctl("list");
        list.as_array().is_some_and(|sas| sas.len() == 1)
            && list[0]["spi_i"].as_str() != Some(old_spi_i.as_str())
            && list[0]["children"]
                .as_array()
                .is_some_and(|c| c.len() == 1 && c[0]["inbound_spi"] != old_child.as_str())
    });
    let list = lab.ctl("list");
    let sa = &list[0];
    let child = &sa["children"][0];
    let (new_in, new_out) = (
        child["inbound_spi"].as_str().unwrap(),
        child["outbound_spi"].as_str().unwrap(),
    );
    lab.wait_for("charon to hold only the new IKE SA", WAIT, || {
        let charon = lab.swanctl("--list-sas");
        charon.contains(sa["spi_i"].as_str().unwrap())
            && !charon.contains(&old_spi_i)
            && charon.contains(&format!("in  {new_out}"))
            && charon.contains(&format!("out {new_in}"))
    });
    assert_region_holds_only(region, [new_in, new_out]);
}

/// Rekeys the IKE SA from our side (`rekey-ike`) or charon's (`swanctl --rekey --ike`): both
/// ends then hold only the new IKE SA, with the same SPIs, carrying the unchanged child SA, and
/// a liveness check on it is answered (its keys agree with charon's).
fn rekey_ike(lab: &Lab, we_rekey: bool) {
    let list = lab.ctl("list");
    let old = (
        list[0]["spi_i"].as_str().unwrap().to_string(),
        list[0]["spi_r"].as_str().unwrap().to_string(),
    );
    let child = list[0]["children"][0].clone();
    if we_rekey {
        let answer = lab.ctl(&format!("rekey-ike {}", our_spi(&list[0])));
        assert!(answer.get("error").is_none(), "{answer}");
    } else {
        lab.swanctl("--rekey --ike ours");
    }
    lab.wait_for("the rekeyed IKE SA", WAIT, || {
        let list = lab.ctl("list");
        list.as_array().is_some_and(|sas| sas.len() == 1)
            && list[0]["spi_i"].as_str() != Some(old.0.as_str())
            && list[0]["established"] == true
    });
    let list = lab.ctl("list");
    let sa = &list[0];
    let new = (sa["spi_i"].as_str().unwrap(), sa["spi_r"].as_str().unwrap());
    assert_eq!(
        sa["initiator"], we_rekey,
        "the rekey's initiator is SPIi's owner"
    );
    assert_ne!(new.1, old.1);
    assert_eq!(sa["children"].as_array().map(Vec::len), Some(1));
    assert_eq!(sa["children"][0], child, "the child SA moved unchanged");
    lab.wait_for("charon to hold only the new IKE SA", WAIT, || {
        let charon = lab.swanctl("--list-sas");
        charon.contains(new.0) && charon.contains(new.1) && !charon.contains(&old.0)
    });
    let charon = lab.swanctl("--list-sas");
    assert!(
        charon.contains(&format!("out {}", child["inbound_spi"].as_str().unwrap())),
        "{charon}"
    );
    let answered = lab.ctl("stats")["liveness_answered_by_peer"]
        .as_u64()
        .unwrap();
    let spi = our_spi(sa);
    assert!(lab.ctl(&format!("liveness {spi}")).get("error").is_none());
    lab.wait_for(
        "charon to answer a liveness check on the new IKE SA",
        WAIT,
        || lab.ctl("stats")["liveness_answered_by_peer"].as_u64() > Some(answered),
    );
}

#[test]
fn we_initiate_aes_gcm_with_ecp256() {
    run_case(Case {
        tag: "g",
        ike: "aes256gcm16-prfsha256-ecp256",
        esp: "aes256gcm16",
        pfs: None,
        we_initiate: true,
    });
}

#[test]
fn charon_initiates_aes_cbc_sha256_with_modp2048() {
    run_case(Case {
        tag: "c",
        ike: "aes128-sha256-modp2048",
        esp: "aes128-sha256",
        pfs: None,
        we_initiate: false,
    });
}

/// PFS (RFC 7296 1.3.1, 1.3.2, 2.17): with `esp_proposals = aes128gcm16-ecp256` at charon and
/// `pfs = ["ecp256"]` here, the IKE_AUTH child comes without a key exchange, then the child is
/// rekeyed by each side with one, charon adds a second child with one and we add a third
/// (RFC 7296 1.3.1); charon lists the group on those children and their keys match ours.
#[test]
fn child_rekeys_with_pfs_ecp256_by_either_side() {
    let lab = established(&Case {
        tag: "p",
        ike: "aes128gcm16-prfsha256-ecp256",
        esp: "aes128gcm16",
        pfs: Some("ecp256"),
        we_initiate: true,
    });
    let region = Region::open(lab.path("region")).unwrap();
    for we_rekey in [true, false] {
        rekey_child(&lab, &region, we_rekey);
        let charon_sas = lab.swanctl("--list-sas");
        assert!(
            charon_sas.contains("AES_GCM_16-128/ECP_256"),
            "charon's child SA uses PFS: {charon_sas}"
        );
    }
    // 1.3.1: a new child SA (within the first one's selectors) made by charon with
    // CREATE_CHILD_SA and a KE payload; we answer as responder with g^ir in its keys.
    let before = lab.ctl("list")[0]["children"][0]["inbound_spi"]
        .as_str()
        .unwrap()
        .to_string();
    lab.swanctl("--initiate --child net2 --ike ours --timeout 10");
    lab.wait_for("a second child SA in iked", WAIT, || {
        lab.ctl("list")[0]["children"]
            .as_array()
            .is_some_and(|c| c.len() == 2)
    });
    let list = lab.ctl("list");
    let children = list[0]["children"].as_array().unwrap();
    let new_in = children
        .iter()
        .filter_map(|c| c["inbound_spi"].as_str())
        .find(|spi| *spi != before)
        .unwrap();
    let (initiator, responder) =
        charon_last_encryption_keys(&std::fs::read_to_string(lab.path("charon.log")).unwrap());
    let [(_, in_encr, _), (_, out_encr, _)] = lab.iked_keys_of(new_in);
    assert_eq!(
        (out_encr, in_encr),
        (responder, initiator),
        "(outbound, inbound) keys"
    );
    let charon_sas = lab.swanctl("--list-sas");
    assert_eq!(
        charon_sas.matches("AES_GCM_16-128/ECP_256").count(),
        2,
        "both child SAs use PFS: {charon_sas}"
    );
    // And a third, which we ask for (`create-child`): charon answers as responder, its keys
    // are the exchange initiator's ours outbound (RFC 7296 2.17).
    let answer = lab.ctl(&format!("create-child {}", our_spi(&list[0])));
    assert!(answer.get("error").is_none(), "{answer}");
    lab.wait_for("a third child SA in iked", WAIT, || {
        lab.ctl("list")[0]["children"]
            .as_array()
            .is_some_and(|c| c.len() == 3)
    });
    let list = lab.ctl("list");
    let third = list[0]["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["inbound_spi"] != before && c["inbound_spi"] != new_in)
        .unwrap();
    let (third_in, third_out) = (
        third["inbound_spi"].as_str().unwrap(),
        third["outbound_spi"].as_str().unwrap(),
    );
    let charon_sas = lab.swanctl("--list-sas");
    assert!(
        charon_sas.contains(&format!("in  {third_out}"))
            && charon_sas.contains(&format!("out {third_in}")),
        "{charon_sas}"
    );
    assert_eq!(
        charon_sas.matches("AES_GCM_16-128/ECP_256").count(),
        3,
        "all three child SAs use PFS: {charon_sas}"
    );
    let (initiator, responder) =
        charon_last_encryption_keys(&std::fs::read_to_string(lab.path("charon.log")).unwrap());
    let [(_, in_encr, _), (_, out_encr, _)] = lab.iked_keys_of(third_in);
    assert_eq!(
        (out_encr, in_encr),
        (initiator, responder),
        "(outbound, inbound) keys"
    );
    assert_eq!(lab.ctl("stats")["negotiations_failed"], 0, "{}", lab.logs());
}
