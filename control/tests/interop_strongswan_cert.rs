//! Certificate authentication and fragmented IKE_AUTH against strongSwan 5.9 (Debian's charon
//! with kernel-libipsec) in network namespaces (198.18.0.0/15 only), as in
//! interop_strongswan.rs: RSA and ECDSA certificates from one CA made at test time, our daemon
//! (`iked`) as initiator and as responder. With RSA the IKE_AUTH messages of both ends are larger
//! than the fragment sizes (ours 1228 bytes, charon's set to 600), so they go in RFC 7383
//! fragments both ways. Asserts the SA comes up, the child SPIs agree with `swanctl --list-sas`
//! and the child keys with those charon logs at level 4. Fails (does not skip) without charon.
mod common;

use common::lab::{charon_keys, Lab};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, RsaKeySize,
    SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use std::path::Path;
use std::time::Duration;

const OURS: &str = "198.18.0.1";
const THEIRS: &str = "198.18.0.2";

fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    if alg == &PKCS_RSA_SHA256 {
        KeyPair::generate_rsa_for(alg, RsaKeySize::_3072).unwrap()
    } else {
        KeyPair::generate_for(alg).unwrap()
    }
}

/// A CA and end-entity certificates for ours.example and charon.example, as PEM files in `dir`:
/// ca.pem (its key ca.key), ours.pem, ours.key, swanctl/x509/charon.pem, swanctl/pkcs8/charon.key;
/// and other-ca.pem, a CA that signed neither.
fn make_certificates(dir: &Path, alg: &'static SignatureAlgorithm) {
    let write = |path: &str, text: String| std::fs::write(dir.join(path), text).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "another CA");
    write(
        "other-ca.pem",
        CertifiedIssuer::self_signed(params, key(alg))
            .unwrap()
            .pem(),
    );
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "interop CA");
    let ca_key = key(alg);
    write("ca.key", ca_key.serialize_pem());
    let ca = CertifiedIssuer::self_signed(params, ca_key).unwrap();
    write("ca.pem", ca.pem());
    write("swanctl/x509ca/ca.pem", ca.pem());
    for (name, cert_path, key_path) in [
        ("ours.example", "ours.pem", "ours.key"),
        (
            "charon.example",
            "swanctl/x509/charon.pem",
            "swanctl/pkcs8/charon.key",
        ),
    ] {
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = key(alg);
        let cert = params.signed_by(&key, &ca).unwrap();
        write(cert_path, cert.pem());
        write(key_path, key.serialize_pem());
    }
}

/// charon's IKE fragments are at most 600 bytes.
const FRAGMENTS: &str = "fragment_size = 600";

/// Revokes charon's certificate in a CRL of the CA that `openssl ca` makes (an implementation
/// other than ours and rcgen): crl.pem in `dir`.
fn revoke_charon_with_openssl(dir: &Path) {
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = test_ca\n[test_ca]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n",
    )
    .unwrap();
    for args in [
        &["-revoke", "swanctl/x509/charon.pem"][..],
        &["-gencrl", "-out", "crl.pem"][..],
    ] {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args([
                "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem",
            ])
            .args(args)
            .output()
            .expect("openssl (installed by scripts/setup.sh)");
        assert!(out.status.success(), "openssl ca {args:?}: {out:?}");
    }
}

/// Two namespaces ("ct" + pid + tag, a: ours, b: charon's) joined by a veth, certificates,
/// charon (`charon_options` in its `charon { }` section) and `iked`, which trusts the CA in
/// `our_ca` and, with `our_crl`, checks the peer's certificate against an openssl CRL that
/// revokes charon's.
fn lab(
    tag: &str,
    alg: &'static SignatureAlgorithm,
    we_initiate: bool,
    our_ca: &str,
    charon_options: &str,
    our_crl: bool,
) -> Lab {
    let mut lab = Lab::new("ct", tag);
    lab.two_namespaces(OURS, THEIRS);
    make_certificates(&lab.dir, alg);
    let crl = if our_crl {
        revoke_charon_with_openssl(&lab.dir);
        format!("crl = \"{}\"\n", lab.path("crl.pem").display())
    } else {
        String::new()
    };
    let swanctl = format!(
        "connections {{\n ours {{\n  version = 2\n  local_addrs = {THEIRS}\n  remote_addrs = {OURS}\n  \
         proposals = aes256gcm16-prfsha256-ecp256\n  fragmentation = yes\n  send_certreq = yes\n  \
         local {{\n   auth = pubkey\n   certs = charon.pem\n   id = charon.example\n  }}\n  \
         remote {{\n   auth = pubkey\n   id = ours.example\n  }}\n  \
         dpd_delay = {dpd}\n  children {{\n   net {{\n    local_ts = 198.18.2.0/24\n    remote_ts = 198.18.1.0/24\n    esp_proposals = aes256gcm16\n    mode = tunnel\n   }}\n  }}\n }}\n}}\n",
        dpd = if we_initiate { "0s" } else { "30s" }
    );
    let b = format!("{}b", lab.name);
    lab.start_charon(&b, charon_options, &swanctl);
    let config = format!(
        "[daemon]\nlisten = \"{OURS}\"\ncontrol_socket = \"{sock}\"\nlog_keys = true\n\n\
         [[peer]]\nname = \"charon\"\nremote = \"{THEIRS}\"\nlocal_id = \"fqdn:ours.example\"\nremote_id = \"fqdn:charon.example\"\n\
         auth = \"pubkey\"\ncert = \"{cert}\"\nkey = \"{key}\"\nca = \"{ca}\"\n{crl}\
         ike = [\"aes256gcm16-prfsha256-ecp256\"]\nesp = [\"aes256gcm16\"]\nlocal_ts = [\"198.18.1.0/24\"]\nremote_ts = [\"198.18.2.0/24\"]\ninitiate = {we_initiate}\n",
        sock = lab.iked_socket().display(),
        cert = lab.path("ours.pem").display(),
        key = lab.path("ours.key").display(),
        ca = lab.path(our_ca).display(),
    );
    let a = format!("{}a", lab.name);
    lab.start_iked(&a, &config);
    lab
}

/// Brings a child SA up and checks it at both ends; returns charon's log.
fn run_case(
    tag: &str,
    alg: &'static SignatureAlgorithm,
    we_initiate: bool,
    charon_options: &str,
) -> String {
    let lab = lab(tag, alg, we_initiate, "ca.pem", charon_options, false);
    if !we_initiate {
        lab.swanctl("--initiate --child net --ike ours --timeout 10");
    }
    lab.wait_for("a child SA in iked", Duration::from_secs(15), || {
        lab.ctl("list").as_array().is_some_and(|sas| {
            sas.iter()
                .any(|sa| sa["children"].as_array().is_some_and(|c| !c.is_empty()))
        })
    });
    let list = lab.ctl("list");
    let sa = &list[0];
    assert_eq!(sa["established"], true);
    assert_eq!(sa["initiator"], we_initiate);
    let child = &sa["children"][0];
    let ours_in = child["inbound_spi"].as_str().unwrap();
    let ours_out = child["outbound_spi"].as_str().unwrap();
    let charon_sas = lab.swanctl("--list-sas");
    assert!(charon_sas.contains("ESTABLISHED"), "{charon_sas}");
    assert!(
        charon_sas.contains(&format!("in  {ours_out}")),
        "{charon_sas}"
    );
    assert!(
        charon_sas.contains(&format!("out {ours_in}")),
        "{charon_sas}"
    );
    // charon authenticated us by our certificate, and we it by its.
    let charon_log = std::fs::read_to_string(lab.path("charon.log")).unwrap();
    assert!(
        charon_log.contains("authentication of 'ours.example' with")
            && charon_log.contains("successful"),
        "{}",
        lab.logs()
    );
    let [(_, in_encr, in_integ), (_, out_encr, out_integ)] = lab.iked_keys();
    let charon_keys = charon_keys(&charon_log);
    for key in [&in_encr, &in_integ, &out_encr, &out_integ]
        .into_iter()
        .filter(|k| !k.is_empty())
    {
        assert!(
            charon_keys.iter().any(|c| c == key),
            "key {key} not in charon's log\n{}",
            lab.logs()
        );
    }
    if alg == &PKCS_RSA_SHA256 {
        // RFC 7383: charon split its IKE_AUTH message and reassembled ours.
        assert!(
            charon_log.contains("splitting IKE message"),
            "charon did not fragment\n{}",
            lab.logs()
        );
        assert!(
            charon_log.contains("reassembled fragmented IKE message"),
            "charon got no fragments from us\n{}",
            lab.logs()
        );
    }
    charon_log
}

#[test]
fn rsa_certificates_with_fragmented_ike_auth_we_initiate() {
    run_case("ri", &PKCS_RSA_SHA256, true, FRAGMENTS);
}

#[test]
fn rsa_certificates_with_fragmented_ike_auth_charon_initiates() {
    run_case("rr", &PKCS_RSA_SHA256, false, FRAGMENTS);
}

#[test]
fn ecdsa_certificates_we_initiate() {
    run_case("ei", &PKCS_ECDSA_P256_SHA256, true, FRAGMENTS);
}

#[test]
fn ecdsa_certificates_charon_initiates() {
    run_case("er", &PKCS_ECDSA_P256_SHA256, false, FRAGMENTS);
}

/// A peer without RFC 7427, as Windows hosts before its support: charon with
/// `signature_authentication = no` sends no SIGNATURE_HASH_ALGORITHMS, signs with method 1 (RSA
/// with SHA-1) and accepts nothing else from an RSA key. We sign with method 1 too, as initiator
/// and as responder, and charon verifies it.
#[test]
fn rsa_method_1_with_a_peer_without_rfc7427() {
    let options = format!("{FRAGMENTS}\n signature_authentication = no");
    for (tag, we_initiate) in [("mi", true), ("mr", false)] {
        let log = run_case(tag, &PKCS_RSA_SHA256, we_initiate, &options);
        for who in ["'ours.example'", "'charon.example' (myself)"] {
            assert!(
                log.contains(&format!(
                    "authentication of {who} with RSA signature successful"
                )),
                "{who} not authenticated with method 1\n{log}"
            );
        }
    }
}

/// We refuse charon's certificate after IKE_AUTH, where charon holds the IKE SA as established:
/// we say so with AUTHENTICATION_FAILED in an INFORMATIONAL request (RFC 7296 2.21.2), and
/// charon deletes it. Returns iked's log.
fn charon_deletes_the_refused_ike_sa(lab: &Lab) -> String {
    let charon_log = || std::fs::read_to_string(lab.path("charon.log")).unwrap_or_default();
    lab.wait_for(
        "charon to receive AUTHENTICATION_FAILED",
        Duration::from_secs(15),
        || charon_log().contains("parsed INFORMATIONAL request 2 [ N(AUTH_FAILED) ]"),
    );
    lab.wait_for(
        "charon to delete the IKE SA",
        Duration::from_secs(5),
        || charon_log().contains("IKE_SA deleted"),
    );
    assert!(
        charon_log().contains("authentication of 'ours.example' with"),
        "{}",
        lab.logs()
    );
    assert!(
        !lab.swanctl("--list-sas").contains("ESTABLISHED"),
        "{}",
        lab.logs()
    );
    assert_eq!(
        lab.ctl("list").as_array().map(Vec::len),
        Some(0),
        "{}",
        lab.logs()
    );
    std::fs::read_to_string(lab.path("iked.log")).unwrap()
}

/// charon's certificate is from a CA we do not trust, ours from the one charon trusts.
#[test]
fn charon_deletes_the_ike_sa_whose_authentication_we_refused() {
    let lab = lab(
        "xa",
        &PKCS_ECDSA_P256_SHA256,
        true,
        "other-ca.pem",
        FRAGMENTS,
        false,
    );
    let log = charon_deletes_the_refused_ike_sa(&lab);
    assert!(log.contains("no chain from"), "{log}");
}

/// charon's certificate is from the CA we trust, but a CRL of that CA, made by `openssl ca`,
/// revokes it (RFC 5280 6.3).
#[test]
fn a_certificate_revoked_by_an_openssl_crl_is_refused() {
    let lab = lab(
        "xr",
        &PKCS_ECDSA_P256_SHA256,
        true,
        "ca.pem",
        FRAGMENTS,
        true,
    );
    let log = charon_deletes_the_refused_ike_sa(&lab);
    assert!(
        log.contains("charon.example") && log.contains("is revoked"),
        "{log}"
    );
}
