//! Traffic selector narrowing (RFC 7296 2.9): the responder answers with the intersection of
//! what was proposed and what its policy allows; the initiator accepts only a subset of what it
//! proposed.
use super::error::Failure;
use crate::wire::ikev2::TrafficSelector;
use std::net::IpAddr;

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// The intersection of two selectors, if not empty. Protocol 0 means any.
fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    if !same_family(a.start, b.start) {
        return None;
    }
    let ip_protocol = match (a.ip_protocol, b.ip_protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let start = a.start.max(b.start);
    let end = a.end.min(b.end);
    let start_port = a.start_port.max(b.start_port);
    let end_port = a.end_port.min(b.end_port);
    (start <= end && start_port <= end_port).then_some(TrafficSelector {
        ip_protocol,
        start_port,
        end_port,
        start,
        end,
    })
}

/// Every non-empty intersection of a proposed selector with an allowed one.
pub fn narrow(
    proposed: &[TrafficSelector],
    allowed: &[TrafficSelector],
) -> Result<Vec<TrafficSelector>, Failure> {
    let narrowed: Vec<_> = proposed
        .iter()
        .flat_map(|p| allowed.iter().filter_map(move |a| intersect(p, a)))
        .collect();
    if narrowed.is_empty() {
        Err(Failure::TsUnacceptable)
    } else {
        Ok(narrowed)
    }
}

/// Whether every selector of `answer` lies inside one of `proposed`.
pub fn is_subset(answer: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !answer.is_empty()
        && answer
            .iter()
            .all(|s| proposed.iter().any(|p| intersect(s, p).as_ref() == Some(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn range(a: [u8; 4], b: [u8; 4], proto: u8, ports: (u16, u16)) -> TrafficSelector {
        TrafficSelector {
            ip_protocol: proto,
            start_port: ports.0,
            end_port: ports.1,
            start: IpAddr::V4(Ipv4Addr::from(a)),
            end: IpAddr::V4(Ipv4Addr::from(b)),
        }
    }

    #[test]
    fn narrowing_takes_the_intersection() {
        let proposed = [TrafficSelector::any(false)];
        let allowed = [range([198, 18, 1, 0], [198, 18, 1, 255], 6, (80, 443))];
        assert_eq!(narrow(&proposed, &allowed).unwrap(), allowed.to_vec());
        let disjoint = [range([198, 19, 0, 0], [198, 19, 0, 255], 0, (0, 65535))];
        assert_eq!(narrow(&disjoint, &allowed), Err(Failure::TsUnacceptable));
        let udp = [range([198, 18, 1, 0], [198, 18, 1, 255], 17, (0, 65535))];
        assert_eq!(narrow(&udp, &allowed), Err(Failure::TsUnacceptable));
        assert!(narrow(&[TrafficSelector::any(true)], &allowed).is_err());
        assert!(is_subset(&allowed, &proposed));
        assert!(!is_subset(&proposed, &allowed));
        assert!(!is_subset(&[], &proposed));
    }
}
