//! Byte fixtures written out from the RFC 7296 / [MS-IKEE] layouts, round trips, and malformed
//! input.
use super::*;
use std::net::{IpAddr, Ipv4Addr};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn ike_proposal() -> SaPayload {
    SaPayload {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::Ike,
            spi: vec![],
            transforms: vec![
                Transform::with_key_length(TransformType::Encr, EncrId::AesCbc.into(), 256),
                Transform::new(TransformType::Prf, PrfId::HmacSha256.into()),
                Transform::new(TransformType::Integ, IntegId::HmacSha256_128.into()),
                Transform::new(TransformType::Dh, DhGroup::Ecp256.into()),
            ],
        }],
    }
}

/// IKE_SA_INIT request: HDR, SA, KE, Ni, N(NAT_DETECTION_SOURCE_IP), V.
fn sa_init_fixture() -> Vec<u8> {
    hex("
        0102030405060708 0000000000000000 21 20 22 08 00000000 000000d8
        22 00 0030
          00 00 002c 01 01 00 04
            03 00 000c 01 00 000c 800e0100
            03 00 0008 02 00 0005
            03 00 0008 03 00 000c
            00 00 0008 04 00 0013
        28 00 0048 0013 0000
          1111111111111111111111111111111111111111111111111111111111111111
          2222222222222222222222222222222222222222222222222222222222222222
        29 00 0014 33333333333333333333333333333333
        2b 00 001c 00 00 4004 4444444444444444444444444444444444444444
        00 00 0014 1e2b516905991c7d7c96fcbfb587e461
    ")
}

#[test]
fn ike_sa_init_fixture_parses_to_the_expected_payloads() {
    let bytes = sa_init_fixture();
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(message.header.spi_i, 0x0102030405060708);
    assert_eq!(message.header.exchange, ExchangeType::IkeSaInit);
    assert!(message.header.flags.initiator() && !message.header.flags.response());
    assert_eq!(message.payloads.len(), 5);
    assert_eq!(message.payloads[0], Payload::Sa(ike_proposal()));
    let Payload::Ke(ke) = &message.payloads[1] else {
        panic!("KE expected")
    };
    assert_eq!((ke.group, ke.data.len()), (DhGroup::Ecp256, 64));
    assert_eq!(message.payloads[2], Payload::Nonce(vec![0x33; 16]));
    let Payload::Notify(n) = &message.payloads[3] else {
        panic!("Notify expected")
    };
    assert_eq!(
        (n.kind, n.data.len()),
        (NotifyType::NatDetectionSourceIp, 20)
    );
    let SaPayload { proposals } = ike_proposal();
    assert_eq!(proposals[0].transforms[0].key_length(), Some(256));
    // Emitting what we parsed gives the same bytes back.
    assert_eq!(message.to_bytes().unwrap(), bytes);
}

#[test]
fn every_payload_round_trips() {
    let payloads = vec![
        Payload::Sa(ike_proposal()),
        Payload::Ke(KeyExchange {
            group: DhGroup::Curve25519,
            data: vec![7; 32],
        }),
        Payload::IdI(Identification {
            kind: IdType::Fqdn,
            data: b"gw.example".to_vec(),
        }),
        Payload::IdR(Identification {
            kind: IdType::Ipv4Addr,
            data: vec![198, 18, 0, 1],
        }),
        Payload::Cert(Cert {
            encoding: CertEncoding::X509Signature,
            data: vec![0x30, 0x82, 1, 2],
        }),
        Payload::CertReq(CertReq {
            encoding: CertEncoding::X509Signature,
            authorities: vec![9; 20],
        }),
        Payload::Auth(Auth {
            method: AuthMethod::SharedKeyMic,
            data: vec![5; 32],
        }),
        Payload::Nonce(vec![1; 32]),
        Payload::Notify(Notify {
            protocol: ProtocolId::Esp,
            kind: NotifyType::RekeySa,
            spi: vec![0xc0, 0, 0, 1],
            data: vec![],
        }),
        Payload::Notify(Notify::new(NotifyType::MsNotifyStatus, vec![0, 0, 0, 5])),
        Payload::Delete(Delete::Ike),
        Payload::Delete(Delete::Child {
            protocol: ProtocolId::Esp,
            spis: vec![1, 2, 3],
        }),
        Payload::VendorId(b"MSFT 5.0".to_vec()),
        Payload::TsI(TrafficSelectors {
            selectors: vec![TrafficSelector::any(false), TrafficSelector::any(true)],
        }),
        Payload::TsR(TrafficSelectors {
            selectors: vec![TrafficSelector {
                ip_protocol: 6,
                start_port: 443,
                end_port: 443,
                start: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 0)),
                end: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 255)),
            }],
        }),
        Payload::Config(Config {
            kind: ConfigType::Request,
            attributes: vec![
                ConfigAttribute {
                    kind: ConfigAttributeType::InternalIp4Address,
                    value: vec![],
                },
                ConfigAttribute {
                    kind: ConfigAttributeType::InternalIp4Server,
                    value: vec![],
                },
                ConfigAttribute {
                    kind: ConfigAttributeType::Unknown(0x6000),
                    value: vec![1, 2],
                },
            ],
        }),
        Payload::Eap(Eap {
            message: vec![1, 7, 0, 5, 1],
        }),
        Payload::Correlation(Correlation {
            original_spi_i: 1,
            original_spi_r: 2,
            hash: vec![3; 32],
        }),
        Payload::Unknown {
            kind: 150,
            critical: false,
            body: vec![1, 2, 3],
        },
        Payload::Encrypted(Encrypted {
            first_inner: PayloadType::IdI,
            data: vec![0xee; 48],
        }),
    ];
    let message = Message {
        header: Header {
            spi_i: 1,
            spi_r: 2,
            next_payload: PayloadType::None,
            version: IKEV2_VERSION,
            exchange: ExchangeType::IkeAuth,
            flags: Flags::new(true, false),
            message_id: 1,
            length: 0,
        },
        payloads,
    };
    let bytes = message.to_bytes().unwrap();
    assert_eq!(bytes.len(), message.buffer_len());
    let parsed = Message::parse(&bytes).unwrap();
    assert_eq!(parsed.payloads, message.payloads);
    assert_eq!(parsed.header.length as usize, bytes.len());
    assert_eq!(parsed.header.next_payload, PayloadType::Sa);
}

#[test]
fn correlation_and_ms_server_attribute_fixtures() {
    // [MS-IKEE] 2.2.9: SPI_i, SPI_r, then the hash.
    let body = hex("0000000000000001 0000000000000002 aabbcc");
    let correlation = Correlation::parse(&body).unwrap();
    assert_eq!(
        (correlation.original_spi_i, correlation.original_spi_r),
        (1, 2)
    );
    assert_eq!(correlation.hash, vec![0xaa, 0xbb, 0xcc]);
    // [MS-IKEE] 2.2.8: CFG_REPLY with INTERNAL_IP4_SERVER 198.18.0.9.
    let body = hex("02000000 5ba0 0004 c6120009");
    let config = Config::parse(&body).unwrap();
    assert_eq!(config.kind, ConfigType::Reply);
    assert_eq!(
        config.attributes[0].kind,
        ConfigAttributeType::InternalIp4Server
    );
    assert_eq!(config.attributes[0].value, vec![198, 18, 0, 9]);
}

#[test]
fn encrypted_fragment_fields_and_chain_end() {
    let mut chain = Vec::new();
    emit_chain(
        &[Payload::EncryptedFragment(EncryptedFragment {
            first_inner: PayloadType::IdI,
            number: 1,
            total: 3,
            data: vec![0xab; 20],
        })],
        &mut chain,
    )
    .unwrap();
    assert_eq!(&chain[..8], &hex("23 00 001c 0001 0003")[..]);
    let parsed = parse_chain(PayloadType::EncryptedFragment, &chain).unwrap();
    let Payload::EncryptedFragment(f) = &parsed[0] else {
        panic!("SKF expected")
    };
    assert_eq!((f.first_inner, f.number, f.total), (PayloadType::IdI, 1, 3));
    // Fragment 0 and fragment > total are invalid (RFC 7383 2.6).
    assert_eq!(
        EncryptedFragment::parse(PayloadType::None, &hex("0000 0003")),
        Err(Error::Invalid("fragment number"))
    );
    assert!(EncryptedFragment::parse(PayloadType::None, &hex("0004 0003")).is_err());
    // Anything after an SK payload is rejected.
    let mut chain = hex("24 00 0008 eeeeeeee");
    chain.extend_from_slice(&hex("00 00 0004"));
    assert!(parse_chain(PayloadType::Encrypted, &chain).is_err());
}

#[test]
fn unknown_payloads_follow_the_critical_bit() {
    // Type 150 with the critical bit clear is skipped (kept), with it set rejects the message.
    let skipped = hex("28 00 0006 abcd 00 00 0014 33333333333333333333333333333333");
    let parsed = parse_chain(PayloadType::Unknown(150), &skipped).unwrap();
    assert_eq!(parsed.len(), 2);
    assert!(matches!(
        parsed[0],
        Payload::Unknown {
            kind: 150,
            critical: false,
            ..
        }
    ));
    let critical = hex("28 80 0006 abcd 00 00 0014 33333333333333333333333333333333");
    assert_eq!(
        parse_chain(PayloadType::Unknown(150), &critical),
        Err(Error::UnsupportedCritical(150))
    );
    // The critical bit on a known payload is ignored.
    let known = hex("00 80 0014 33333333333333333333333333333333");
    assert!(parse_chain(PayloadType::Nonce, &known).is_ok());
}

#[test]
fn malformed_input_is_rejected_with_a_reason() {
    let good = sa_init_fixture();
    // Header length disagreeing with the datagram.
    assert_eq!(
        Message::parse(&good[..good.len() - 1]),
        Err(Error::BadLength("IKE message"))
    );
    // IKEv1 major version.
    let mut v1 = good.clone();
    v1[17] = 0x10;
    assert_eq!(Message::parse(&v1), Err(Error::BadVersion(1)));
    // Payload length below the generic header.
    let mut short = good.clone();
    short[30..32].copy_from_slice(&[0, 3]);
    assert_eq!(
        Message::parse(&short),
        Err(Error::BadLength("payload header"))
    );
    // Transform count that disagrees with the transforms present.
    let mut count = good.clone();
    count[39] = 5;
    assert_eq!(
        Message::parse(&count),
        Err(Error::Invalid("transform count"))
    );
    // Nonce shorter than 16 bytes.
    assert_eq!(
        parse_chain(PayloadType::Nonce, &hex("00 00 0008 01020304")),
        Err(Error::BadLength("Nonce payload"))
    );
    // Delete with SPIs that do not fill the payload.
    assert!(Delete::parse(&hex("03 04 0002 00000001")).is_err());
    // TS with a selector length that does not fit its type.
    assert!(TrafficSelectors::parse(&hex("01000000 07 00 0010 0000 ffff c6120000")).is_err());
    // An IPv4 ID with 3 bytes.
    assert!(Identification::parse(&hex("01000000 c61200")).is_err());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Message::parse(&bytes);
            for first in [33u8, 35, 41, 44, 47, 53, 0xC8] {
                let _ = parse_chain(PayloadType::from(first), &bytes);
            }
        }

        /// Mutations of a valid message either fail cleanly or parse to something that
        /// re-emits and re-parses to itself.
        #[test]
        fn mutated_messages_reparse_stably(flips in proptest::collection::vec((0usize..160, any::<u8>()), 1..6)) {
            let mut bytes = sa_init_fixture();
            for (index, value) in flips {
                bytes[index] = value;
            }
            if let Ok(message) = Message::parse(&bytes) {
                let again = Message::parse(&message.to_bytes().unwrap()).unwrap();
                prop_assert_eq!(again.payloads, message.payloads);
            }
        }
    }
}
