//! Certificate authentication in IKE_AUTH (RFC 7296 2.15, 3.6-3.8; RFC 4754; RFC 7427) between
//! two engines in the in-memory network of `common`, with certificates made at test time.
mod common;

use common::*;
use control::ikev2::certificate::{CertError, CredentialError, PubkeyAuth};
use control::ikev2::signature::RsaPadding;
use control::ikev2::{EngineConfig, Event, Failure, PeerConfig};
use control::wire::ikev2::{CertEncoding, Message, NotifyType, Payload};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    IsCa, KeyIdMethod, KeyPair, RevocationReason, RevokedCertParams, RsaKeySize, SerialNumber,
    SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256,
};
use std::sync::Arc;
use std::time::Duration;

fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    if alg == &PKCS_RSA_SHA256 {
        KeyPair::generate_rsa_for(alg, RsaKeySize::_2048).unwrap()
    } else {
        KeyPair::generate_for(alg).unwrap()
    }
}

fn ca(name: &str, alg: &'static SignatureAlgorithm) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, key(alg)).unwrap()
}

fn intermediate(
    name: &str,
    alg: &'static SignatureAlgorithm,
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::signed_by(params, key(alg), issuer).unwrap()
}

/// An end-entity certificate with `dns` as subjectAltName; valid from a year ago for
/// `days_left` more days (negative: expired). Returns (certificate DER, PKCS#8 key DER).
fn leaf(
    dns: &str,
    alg: &'static SignatureAlgorithm,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    days_left: i64,
) -> (Vec<u8>, Vec<u8>) {
    let mut params = CertificateParams::new(vec![dns.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, dns);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    params.not_before =
        rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs((now - 365 * 86400) as u64);
    params.not_after =
        rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs((now + days_left * 86400) as u64);
    let key = key(alg);
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

/// A CRL that `issuer` signed, issued a day ago for 30 days, revoking the certificates `revoked`.
fn crl(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    revoked: &[&[u8]],
) -> rcgen::CertificateRevocationList {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = |secs: u64| rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(secs);
    let revoked_certs = revoked
        .iter()
        .map(|der| RevokedCertParams {
            serial_number: SerialNumber::from_slice(
                x509_parser::parse_x509_certificate(der)
                    .unwrap()
                    .1
                    .raw_serial(),
            ),
            revocation_time: at(now - 3600),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        })
        .collect();
    CertificateRevocationListParams {
        this_update: at(now - 86400),
        next_update: at(now + 30 * 86400),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .unwrap()
}

fn credentials(
    (cert, key): (Vec<u8>, Vec<u8>),
    intermediates: &[&CertifiedIssuer<'static, KeyPair>],
    trusted: &CertifiedIssuer<'static, KeyPair>,
    padding: RsaPadding,
) -> Arc<PubkeyAuth> {
    let mut chain = vec![cert];
    chain.extend(intermediates.iter().map(|i| i.der().to_vec()));
    Arc::new(PubkeyAuth::new(&key, chain, vec![trusted.der().to_vec()], padding).unwrap())
}

fn with_pubkey(mut peer: PeerConfig, credentials: Arc<PubkeyAuth>) -> PeerConfig {
    peer.pubkey = Some(credentials);
    peer
}

/// A (initiator, "a.example") and B (responder, "b.example") with these credentials.
fn cert_pair(a: Arc<PubkeyAuth>, b: Arc<PubkeyAuth>) -> Pair {
    Pair::new(
        EngineConfig::new(vec![with_pubkey(
            peer("to-b", "a.example", "b.example", 1, 2),
            a,
        )]),
        EngineConfig::new(vec![with_pubkey(
            peer("from-a", "b.example", "a.example", 2, 1),
            b,
        )]),
    )
}

fn establish(mut pair: Pair) -> Pair {
    pair.initiate();
    pair.run(3, false);
    pair.assert_established();
    // IKE_SA_INIT and IKE_AUTH, request and response; an IKE_AUTH with an RSA certificate may
    // come in fragments (RFC 7383).
    assert!(pair.sent >= 4);
    assert_eq!(pair.a.stats().retransmissions_sent, 0);
    pair
}

fn failure(events: &[Event]) -> Option<Failure> {
    events.iter().find_map(|e| match e {
        Event::IkeSaFailed { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

/// A fails to authenticate B: A gives up the SA and tells B in an INFORMATIONAL request with
/// AUTHENTICATION_FAILED (RFC 7296 2.21.2), and B, which held the IKE SA and its child as
/// established, deletes them.
fn initiator_rejects(mut pair: Pair) -> CertError {
    pair.initiate();
    pair.run(3, false);
    assert!(pair.a.ike_sas().is_empty(), "A keeps no SA");
    assert_eq!(pair.a.stats().authentication_failed_sent, 1);
    assert_eq!(pair.b.stats().authentication_failed_received, 1);
    assert!(
        pair.b.ike_sas().is_empty(),
        "B deletes the IKE SA A did not accept"
    );
    let b_deleted = |ike: bool| {
        pair.b_events.iter().any(|e| match e {
            Event::IkeSaDeleted { .. } => ike,
            Event::ChildSaDeleted { .. } => !ike,
            _ => false,
        })
    };
    assert!(
        b_deleted(true) && b_deleted(false),
        "B reports the IKE SA and its child deleted: {:?}",
        pair.b_events
    );
    match failure(&pair.a_events) {
        Some(Failure::Certificate(error)) => error,
        other => panic!("A: {other:?} in {:?}", pair.a_events),
    }
}

/// B fails to authenticate A and answers AUTHENTICATION_FAILED (RFC 7296 2.21.2).
fn responder_rejects(mut pair: Pair) -> CertError {
    pair.initiate();
    pair.run(3, false);
    assert_eq!(
        failure(&pair.a_events),
        Some(Failure::PeerError(NotifyType::AuthenticationFailed)),
        "A: {:?}",
        pair.a_events
    );
    assert!(pair.a.ike_sas().is_empty() && pair.b.ike_sas().is_empty());
    match failure(&pair.b_events) {
        Some(Failure::Certificate(error)) => error,
        other => panic!("B: {other:?} in {:?}", pair.b_events),
    }
}

#[test]
fn rsa_certificates_authenticate_both_ends_with_pkcs1_and_pss() {
    let root = ca("RSA root", &PKCS_RSA_SHA256);
    for (a_padding, b_padding) in [
        (RsaPadding::Pkcs1, RsaPadding::Pkcs1),
        (RsaPadding::Pss, RsaPadding::Pkcs1),
        (RsaPadding::Pss, RsaPadding::Pss),
    ] {
        let a = leaf("a.example", &PKCS_RSA_SHA256, &root, 30);
        let b = leaf("b.example", &PKCS_RSA_SHA256, &root, 30);
        establish(cert_pair(
            credentials(a, &[], &root, a_padding),
            credentials(b, &[], &root, b_padding),
        ));
    }
}

#[test]
fn ecdsa_certificates_authenticate_on_p256_and_p384_through_an_intermediate() {
    let root = ca("EC root", &PKCS_ECDSA_P384_SHA384);
    let sub = intermediate("EC intermediate", &PKCS_ECDSA_P256_SHA256, &root);
    let a = leaf("a.example", &PKCS_ECDSA_P256_SHA256, &sub, 30);
    let b = leaf("b.example", &PKCS_ECDSA_P384_SHA384, &root, 30);
    establish(cert_pair(
        credentials(a, &[&sub], &root, RsaPadding::Pkcs1),
        credentials(b, &[], &root, RsaPadding::Pkcs1),
    ));
}

#[test]
fn mixed_rsa_and_ecdsa_ends_authenticate() {
    let rsa_root = ca("RSA root", &PKCS_RSA_SHA256);
    let ec_root = ca("EC root", &PKCS_ECDSA_P256_SHA256);
    let a = leaf("a.example", &PKCS_RSA_SHA256, &rsa_root, 30);
    let b = leaf("b.example", &PKCS_ECDSA_P256_SHA256, &ec_root, 30);
    // Each end trusts the other's CA.
    establish(cert_pair(
        credentials(a, &[], &ec_root, RsaPadding::Pss),
        credentials(b, &[], &rsa_root, RsaPadding::Pkcs1),
    ));
}

#[test]
fn ike_sa_init_carries_certreq_and_signature_hash_algorithms() {
    let root = ca("EC root", &PKCS_ECDSA_P256_SHA256);
    let a = credentials(
        leaf("a.example", &PKCS_ECDSA_P256_SHA256, &root, 30),
        &[],
        &root,
        RsaPadding::Pkcs1,
    );
    let b = credentials(
        leaf("b.example", &PKCS_ECDSA_P256_SHA256, &root, 30),
        &[],
        &root,
        RsaPadding::Pkcs1,
    );
    let pair = establish(cert_pair(a, b));
    let request = Message::parse(&pair.log[0].bytes).unwrap();
    let response = Message::parse(&pair.log[1].bytes).unwrap();
    let hashes = |m: &Message| {
        m.payloads.iter().find_map(|p| match p {
            Payload::Notify(n) if n.kind == NotifyType::SignatureHashAlgorithms => {
                Some(n.data.clone())
            }
            _ => None,
        })
    };
    // RFC 7427 4: SHA2-256, SHA2-384, SHA2-512.
    assert_eq!(hashes(&request), Some(vec![0, 2, 0, 3, 0, 4]));
    assert_eq!(hashes(&response), Some(vec![0, 2, 0, 3, 0, 4]));
    // RFC 7296 3.7: the SHA-1 hash of the CA's SubjectPublicKeyInfo.
    let spki = x509_parser::parse_x509_certificate(root.der())
        .unwrap()
        .1
        .public_key()
        .raw
        .to_vec();
    let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &spki);
    let certreq = response
        .payloads
        .iter()
        .find_map(|p| match p {
            Payload::CertReq(r) => Some(r.clone()),
            _ => None,
        })
        .expect("CERTREQ in the IKE_SA_INIT response");
    assert_eq!(certreq.encoding, CertEncoding::X509Signature);
    assert_eq!(certreq.authorities, expected.as_ref());
}

#[test]
fn a_chain_to_an_untrusted_ca_fails_authentication_on_either_side() {
    let root = ca("trusted root", &PKCS_ECDSA_P256_SHA256);
    let rogue = ca("rogue root", &PKCS_ECDSA_P256_SHA256);
    let good = |name| leaf(name, &PKCS_ECDSA_P256_SHA256, &root, 30);
    let bad = |name| leaf(name, &PKCS_ECDSA_P256_SHA256, &rogue, 30);
    // The responder's certificate is from the rogue CA: the initiator refuses it.
    let error = initiator_rejects(cert_pair(
        credentials(good("a.example"), &[], &root, RsaPadding::Pkcs1),
        credentials(bad("b.example"), &[], &root, RsaPadding::Pkcs1),
    ));
    assert!(matches!(error, CertError::Untrusted { .. }), "{error}");
    // The initiator's: the responder answers AUTHENTICATION_FAILED.
    let error = responder_rejects(cert_pair(
        credentials(bad("a.example"), &[], &root, RsaPadding::Pkcs1),
        credentials(good("b.example"), &[], &root, RsaPadding::Pkcs1),
    ));
    assert!(matches!(error, CertError::Untrusted { .. }), "{error}");
    // An intermediate that is not a CA cannot issue: a leaf signed by a leaf is refused.
    let fake_issuer = {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "not a CA");
        CertifiedIssuer::signed_by(params, key(&PKCS_ECDSA_P256_SHA256), &root).unwrap()
    };
    let a = leaf("a.example", &PKCS_ECDSA_P256_SHA256, &fake_issuer, 30);
    let error = responder_rejects(cert_pair(
        credentials(a, &[&fake_issuer], &root, RsaPadding::Pkcs1),
        credentials(good("b.example"), &[], &root, RsaPadding::Pkcs1),
    ));
    assert!(matches!(error, CertError::Untrusted { .. }), "{error}");
}

/// RFC 5280 6.3 with local CRLs: B refuses A when a CRL its issuer signed lists A's certificate
/// or the intermediate that issued it; a CRL under the intermediate's name but not signed by it
/// does not count, and neither does one that lists other certificates.
#[test]
fn a_certificate_a_crl_of_its_issuer_revokes_fails_authentication() {
    let alg = &PKCS_ECDSA_P256_SHA256;
    let root = ca("root", alg);
    let mid = intermediate("intermediate", alg, &root);
    let a = leaf("a.example", alg, &mid, 30);
    let a_credentials = || credentials(a.clone(), &[&mid], &root, RsaPadding::Pkcs1);
    let b_with = |crls: &[&rcgen::CertificateRevocationList]| {
        let (cert, key) = leaf("b.example", alg, &root, 30);
        let auth = PubkeyAuth::new(
            &key,
            vec![cert],
            vec![root.der().to_vec()],
            RsaPadding::Pkcs1,
        )
        .unwrap()
        .with_crls(crls.iter().map(|c| c.der().to_vec()).collect())
        .unwrap();
        Arc::new(auth)
    };
    let error = responder_rejects(cert_pair(a_credentials(), b_with(&[&crl(&mid, &[&a.0])])));
    assert!(
        matches!(&error, CertError::Revoked { subject, .. } if subject.contains("a.example")),
        "{error}"
    );
    let error = responder_rejects(cert_pair(
        a_credentials(),
        b_with(&[&crl(&root, &[mid.der()])]),
    ));
    assert!(
        matches!(&error, CertError::Revoked { issuer, .. } if issuer.contains("root")),
        "{error}"
    );
    let impostor = ca("intermediate", alg);
    let other = leaf("c.example", alg, &mid, 30);
    establish(cert_pair(
        a_credentials(),
        b_with(&[&crl(&impostor, &[&a.0]), &crl(&mid, &[&other.0])]),
    ));
}

#[test]
fn an_expired_certificate_fails_authentication() {
    let root = ca("root", &PKCS_RSA_SHA256);
    let error = responder_rejects(cert_pair(
        credentials(
            leaf("a.example", &PKCS_RSA_SHA256, &root, -1),
            &[],
            &root,
            RsaPadding::Pkcs1,
        ),
        credentials(
            leaf("b.example", &PKCS_RSA_SHA256, &root, 30),
            &[],
            &root,
            RsaPadding::Pkcs1,
        ),
    ));
    assert!(
        matches!(error, CertError::OutsideValidity { .. }),
        "{error}"
    );
}

#[test]
fn a_certificate_expires_by_the_engines_clock() {
    let root = ca("root", &PKCS_ECDSA_P256_SHA256);
    let make = || {
        cert_pair(
            credentials(
                leaf("a.example", &PKCS_ECDSA_P256_SHA256, &root, 30),
                &[],
                &root,
                RsaPadding::Pkcs1,
            ),
            credentials(
                leaf("b.example", &PKCS_ECDSA_P256_SHA256, &root, 30),
                &[],
                &root,
                RsaPadding::Pkcs1,
            ),
        )
    };
    establish(make());
    // The same certificates, with A's wall clock 31 days ahead: B's certificate has expired.
    let mut pair = make();
    let mut a_config = pair.a.config().clone();
    a_config.wall_clock.unix_secs += 31 * 86400;
    pair.a = control::ikev2::Engine::new(
        a_config,
        Box::new(control::crypto::SeededRng::new(7)),
        Box::new(control::ikev2::RandomSpis),
    );
    let error = initiator_rejects(pair);
    assert!(
        matches!(error, CertError::OutsideValidity { .. }),
        "{error}"
    );
}

#[test]
fn an_id_not_in_the_certificate_fails_authentication() {
    let root = ca("root", &PKCS_ECDSA_P256_SHA256);
    // A's certificate names someone else; A claims a.example.
    let error = responder_rejects(cert_pair(
        credentials(
            leaf("mallory.example", &PKCS_ECDSA_P256_SHA256, &root, 30),
            &[],
            &root,
            RsaPadding::Pkcs1,
        ),
        credentials(
            leaf("b.example", &PKCS_ECDSA_P256_SHA256, &root, 30),
            &[],
            &root,
            RsaPadding::Pkcs1,
        ),
    ));
    assert!(matches!(error, CertError::IdMismatch { .. }), "{error}");
}

#[test]
fn a_distinguished_name_id_matches_the_certificate_subject() {
    let root = ca("root", &PKCS_ECDSA_P256_SHA256);
    let a = leaf("a.example", &PKCS_ECDSA_P256_SHA256, &root, 30);
    let b = leaf("b.example", &PKCS_ECDSA_P256_SHA256, &root, 30);
    let subject = |der: &[u8]| {
        x509_parser::parse_x509_certificate(der)
            .unwrap()
            .1
            .subject()
            .as_raw()
            .to_vec()
    };
    let dn = |data| control::wire::ikev2::Identification {
        kind: control::wire::ikev2::IdType::DerAsn1Dn,
        data,
    };
    let (a_dn, b_dn) = (dn(subject(&a.0)), dn(subject(&b.0)));
    let mut a_peer = with_pubkey(
        peer("to-b", "a.example", "b.example", 1, 2),
        credentials(a, &[], &root, RsaPadding::Pkcs1),
    );
    let mut b_peer = with_pubkey(
        peer("from-a", "b.example", "a.example", 2, 1),
        credentials(b, &[], &root, RsaPadding::Pkcs1),
    );
    a_peer.local_id = a_dn.clone();
    a_peer.remote_id = b_dn.clone();
    b_peer.local_id = b_dn;
    b_peer.remote_id = a_dn;
    establish(Pair::new(
        EngineConfig::new(vec![a_peer]),
        EngineConfig::new(vec![b_peer]),
    ));
}

#[test]
fn a_psk_peer_is_not_authenticated_by_a_certificate_peer() {
    let root = ca("root", &PKCS_ECDSA_P256_SHA256);
    let b = credentials(
        leaf("b.example", &PKCS_ECDSA_P256_SHA256, &root, 30),
        &[],
        &root,
        RsaPadding::Pkcs1,
    );
    let mut pair = Pair::new(
        EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]),
        EngineConfig::new(vec![with_pubkey(
            peer("from-a", "b.example", "a.example", 2, 1),
            b,
        )]),
    );
    pair.initiate();
    pair.run(3, false);
    assert_eq!(
        failure(&pair.b_events),
        Some(Failure::Certificate(CertError::NoCertificate))
    );
}

#[test]
fn credentials_are_checked_when_loaded() {
    let root = ca("root", &PKCS_ECDSA_P256_SHA256);
    let (cert, _) = leaf("a.example", &PKCS_ECDSA_P256_SHA256, &root, 30);
    let (_, other_key) = leaf("b.example", &PKCS_ECDSA_P256_SHA256, &root, 30);
    let error = PubkeyAuth::new(
        &other_key,
        vec![cert.clone()],
        vec![root.der().to_vec()],
        RsaPadding::Pkcs1,
    )
    .unwrap_err();
    assert_eq!(error, CredentialError::KeyMismatch);
    let (leaf_cert, leaf_key) = leaf("a.example", &PKCS_ECDSA_P256_SHA256, &root, 30);
    let error = PubkeyAuth::new(
        &leaf_key,
        vec![leaf_cert.clone()],
        vec![leaf_cert],
        RsaPadding::Pkcs1,
    )
    .unwrap_err();
    assert!(matches!(error, CredentialError::NotACa(_)), "{error}");
    let error = PubkeyAuth::from_pem(b"not pem", b"", b"", RsaPadding::Pkcs1).unwrap_err();
    assert!(error.to_string().contains("private key"), "{error}");
    assert!(matches!(
        PubkeyAuth::new(
            b"garbage",
            vec![cert],
            vec![root.der().to_vec()],
            RsaPadding::Pkcs1
        ),
        Err(CredentialError::Key(_))
    ));
}

#[test]
fn the_daemon_configuration_loads_certificates_and_names_what_is_wrong() {
    use control::daemon::config::DaemonConfig;
    let root = ca("root", &PKCS_ECDSA_P256_SHA256);
    let mut params = CertificateParams::new(vec!["ours.example".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "ours");
    let key = key(&PKCS_ECDSA_P256_SHA256);
    let cert = params.signed_by(&key, &root).unwrap();
    let dir = std::env::temp_dir().join(format!("ct-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (cert_path, key_path, ca_path) = (
        write("cert.pem", cert.pem()),
        write("key.pem", key.serialize_pem()),
        write("ca.pem", root.pem()),
    );
    let config = |auth: &str| {
        format!(
            r#"
            [daemon]
            listen = "198.18.0.1"
            control_socket = "/tmp/iked.sock"

            [[peer]]
            name = "charon"
            remote = "198.18.0.2"
            local_id = "fqdn:ours.example"
            remote_id = "fqdn:theirs.example"
            {auth}
            ike = ["aes256gcm16-prfsha256-ecp256"]
            esp = ["aes256gcm16"]
            local_ts = ["198.18.1.0/24"]
            remote_ts = ["198.18.2.0/24"]
            "#
        )
    };
    let error_of = |auth: &str| DaemonConfig::parse(&config(auth)).unwrap_err().to_string();
    let good = format!(
        "auth = \"pubkey\"\ncert = \"{cert_path}\"\nkey = \"{key_path}\"\nca = \"{ca_path}\"\nrsa_padding = \"pss\""
    );
    let loaded = DaemonConfig::parse(&config(&good)).unwrap();
    assert!(loaded.engine.peers[0].pubkey.is_some());
    let crl_path = write("crl.pem", crl(&root, &[cert.der()]).pem().unwrap());
    let with_crl = format!("{good}\ncrl = \"{crl_path}\"");
    let loaded = DaemonConfig::parse(&config(&with_crl)).unwrap();
    assert_eq!(
        loaded.engine.peers[0].pubkey.as_ref().unwrap().crls.len(),
        1
    );
    let not_a_crl = format!("{good}\ncrl = \"{ca_path}\"");
    let error = error_of(&not_a_crl);
    assert!(
        error.contains("crl") && error.contains("no PEM block"),
        "{error}"
    );
    let missing_key = format!("auth = \"pubkey\"\ncert = \"{cert_path}\"\nca = \"{ca_path}\"");
    let error = error_of(&missing_key);
    assert!(error.contains("key") && error.contains("pubkey"), "{error}");
    let wrong_key = format!(
        "auth = \"pubkey\"\ncert = \"{ca_path}\"\nkey = \"{key_path}\"\nca = \"{ca_path}\""
    );
    let error = error_of(&wrong_key);
    assert!(error.contains("does not belong"), "{error}");
    let unreadable = format!(
        "auth = \"pubkey\"\ncert = \"{cert_path}\"\nkey = \"{key_path}\"\nca = \"/nonexistent/ca.pem\""
    );
    let error = error_of(&unreadable);
    assert!(
        error.contains("ca") && error.contains("cannot read"),
        "{error}"
    );
    // The pre-shared key stays mandatory for auth = "psk".
    let error = error_of("");
    assert!(error.contains("psk"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
