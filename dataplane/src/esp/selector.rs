//! The inbound selector check (RFC 4301 5.2): a decapsulated packet must match the traffic
//! selectors the SA was negotiated for (IKEv2 traffic selectors, RFC 7296 3.13.1).

use shared::sa::TrafficSelector;

use super::flow::{Flow, FlowAddr};

impl Flow {
    /// An inbound packet comes from the remote selector and goes to the local one.
    pub fn inbound_allowed(&self, local: &TrafficSelector, remote: &TrafficSelector) -> bool {
        let ports = self.ports.map(|(s, d)| (Some(s), Some(d))).unwrap_or((None, None));
        matches(remote, self.src, self.proto, ports.0) && matches(local, self.dst, self.proto, ports.1)
    }
}

fn matches(ts: &TrafficSelector, addr: FlowAddr, proto: u8, port: Option<u16>) -> bool {
    let (start, end) = (FlowAddr::from(ts.start), FlowAddr::from(ts.end));
    let in_range = start.is_ipv4() == addr.is_ipv4() && end.is_ipv4() == addr.is_ipv4() && start <= addr && addr <= end;
    let any_port = ts.start_port == 0 && ts.end_port == u16::MAX;
    let port_ok = match port {
        Some(p) => ts.start_port <= p && p <= ts.end_port,
        None => any_port,
    };
    in_range && (ts.proto == 0 || ts.proto == proto) && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(start: &str, end: &str, proto: u8, ports: (u16, u16)) -> TrafficSelector {
        TrafficSelector { start: start.parse().unwrap(), end: end.parse().unwrap(), proto, start_port: ports.0, end_port: ports.1 }
    }

    #[test]
    fn checks_addresses_protocol_and_ports() {
        let f = Flow { src: "198.18.1.5".parse().unwrap(), dst: "198.18.0.1".parse().unwrap(), proto: 17, ports: Some((5000, 53)) };
        let local = ts("198.18.0.0", "198.18.0.255", 17, (53, 53));
        let remote = ts("198.18.1.0", "198.18.1.255", 0, (0, u16::MAX));
        assert!(f.inbound_allowed(&local, &remote));
        assert!(!f.inbound_allowed(&remote, &local), "direction matters");
        assert!(!f.inbound_allowed(&ts("198.18.0.0", "198.18.0.255", 6, (0, u16::MAX)), &remote));
        assert!(!f.inbound_allowed(&ts("198.18.0.0", "198.18.0.255", 17, (54, 60)), &remote));
        assert!(!f.inbound_allowed(&ts("::", "ffff::", 0, (0, u16::MAX)), &remote), "family mismatch");
        let opaque = Flow { ports: None, ..f };
        assert!(!opaque.inbound_allowed(&local, &remote), "no ports only match any-port selectors");
    }
}
