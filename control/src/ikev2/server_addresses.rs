//! The [MS-IKEE] 3.11 server-address configuration attributes, INTERNAL_IP4_SERVER (0x5BA0) and
//! INTERNAL_IP6_SERVER (0x5BA1), in CP(CFG_REQUEST) / CP(CFG_REPLY) of IKE_AUTH. Whatever goes
//! wrong with them is ignored: it never affects the IKE SA.
use crate::wire::ikev2::{Config, ConfigAttribute, ConfigAttributeType, ConfigType, Payload};
use std::net::IpAddr;

/// CP(CFG_REQUEST) asking for both server addresses.
pub fn request() -> Payload {
    let ask = |kind| ConfigAttribute {
        kind,
        value: Vec::new(),
    };
    Payload::Config(Config {
        kind: ConfigType::Request,
        attributes: vec![
            ask(ConfigAttributeType::InternalIp4Server),
            ask(ConfigAttributeType::InternalIp6Server),
        ],
    })
}

fn config(payloads: &[Payload], kind: ConfigType) -> Option<&Config> {
    payloads.iter().find_map(|p| match p {
        Payload::Config(c) if c.kind == kind => Some(c),
        _ => None,
    })
}

/// Responder: CP(CFG_REPLY) with our addresses of the families the request asked for, if any.
pub fn reply(request: &[Payload], ours: &[IpAddr]) -> Option<Payload> {
    let asked = config(request, ConfigType::Request)?;
    let wants = |kind| asked.attributes.iter().any(|a| a.kind == kind);
    let attributes: Vec<ConfigAttribute> = ours
        .iter()
        .filter_map(|addr| match addr {
            IpAddr::V4(a) if wants(ConfigAttributeType::InternalIp4Server) => {
                Some(ConfigAttribute {
                    kind: ConfigAttributeType::InternalIp4Server,
                    value: a.octets().to_vec(),
                })
            }
            IpAddr::V6(a) if wants(ConfigAttributeType::InternalIp6Server) => {
                Some(ConfigAttribute {
                    kind: ConfigAttributeType::InternalIp6Server,
                    value: a.octets().to_vec(),
                })
            }
            _ => None,
        })
        .collect();
    (!attributes.is_empty()).then_some(Payload::Config(Config {
        kind: ConfigType::Reply,
        attributes,
    }))
}

/// Initiator: the server addresses of a CP(CFG_REPLY), and how many attributes were malformed.
pub fn parse_reply(response: &[Payload]) -> (Vec<IpAddr>, usize) {
    let Some(reply) = config(response, ConfigType::Reply) else {
        return (Vec::new(), 0);
    };
    let mut addresses = Vec::new();
    let mut malformed = 0;
    for attribute in &reply.attributes {
        let value = attribute.value.as_slice();
        match attribute.kind {
            ConfigAttributeType::InternalIp4Server => match <[u8; 4]>::try_from(value) {
                Ok(octets) => addresses.push(IpAddr::from(octets)),
                Err(_) => malformed += 1,
            },
            ConfigAttributeType::InternalIp6Server => match <[u8; 16]>::try_from(value) {
                Ok(octets) => addresses.push(IpAddr::from(octets)),
                Err(_) => malformed += 1,
            },
            _ => {}
        }
    }
    (addresses, malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_reply_and_malformed_attributes() {
        let v4: IpAddr = "198.18.5.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let answer = reply(&[request()], &[v4, v6]).unwrap();
        assert_eq!(parse_reply(&[answer]), (vec![v4, v6], 0));
        // No request, or nothing configured: no reply.
        assert!(reply(&[], &[v4]).is_none());
        assert!(reply(&[request()], &[]).is_none());
        let bad = Payload::Config(Config {
            kind: ConfigType::Reply,
            attributes: vec![
                ConfigAttribute {
                    kind: ConfigAttributeType::InternalIp4Server,
                    value: vec![1, 2, 3],
                },
                ConfigAttribute {
                    kind: ConfigAttributeType::InternalIp6Server,
                    value: vec![0; 4],
                },
                ConfigAttribute {
                    kind: ConfigAttributeType::InternalIp4Server,
                    value: vec![198, 18, 5, 2],
                },
            ],
        });
        assert_eq!(
            parse_reply(&[bad]),
            (vec!["198.18.5.2".parse().unwrap()], 2)
        );
    }
}
