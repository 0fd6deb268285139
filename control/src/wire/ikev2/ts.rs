//! The Traffic Selector payloads TSi and TSr (RFC 7296 3.13).
use super::Error;
use crate::wire::{registry, Reader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

registry! {
    /// Traffic selector types (RFC 7296 3.13.1).
    TsType: u8 {
        Ipv4AddrRange = 7,
        Ipv6AddrRange = 8,
    }
}

/// One address range with a protocol and a port range; `ip_protocol` 0 means any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    pub ip_protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
    pub start: IpAddr,
    pub end: IpAddr,
}

impl TrafficSelector {
    /// Every address of one family, every protocol and port.
    pub fn any(ipv6: bool) -> TrafficSelector {
        let (start, end) = if ipv6 {
            (
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::from(u128::MAX)),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::BROADCAST),
            )
        };
        TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start,
            end,
        }
    }

    /// One address, every protocol and port.
    pub fn host(addr: IpAddr) -> TrafficSelector {
        TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start: addr,
            end: addr,
        }
    }

    fn kind(&self) -> TsType {
        if self.start.is_ipv6() {
            TsType::Ipv6AddrRange
        } else {
            TsType::Ipv4AddrRange
        }
    }

    fn buffer_len(&self) -> usize {
        if self.start.is_ipv6() {
            40
        } else {
            16
        }
    }

    fn parse(r: &mut Reader<'_>) -> Result<TrafficSelector, Error> {
        let kind = TsType::from(r.u8()?);
        let ip_protocol = r.u8()?;
        let length = usize::from(r.u16()?);
        let start_port = r.u16()?;
        let end_port = r.u16()?;
        let (start, end) = match (kind, length) {
            (TsType::Ipv4AddrRange, 16) => (
                IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
                IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
            ),
            (TsType::Ipv6AddrRange, 40) => (
                IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
                IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
            ),
            (TsType::Unknown(_), _) => return Err(Error::Invalid("traffic selector type")),
            _ => return Err(Error::BadLength("traffic selector")),
        };
        Ok(TrafficSelector {
            ip_protocol,
            start_port,
            end_port,
            start,
            end,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.kind().into());
        out.push(self.ip_protocol);
        out.extend_from_slice(&(self.buffer_len() as u16).to_be_bytes());
        out.extend_from_slice(&self.start_port.to_be_bytes());
        out.extend_from_slice(&self.end_port.to_be_bytes());
        for addr in [self.start, self.end] {
            match addr {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrafficSelectors {
    pub selectors: Vec<TrafficSelector>,
}

impl TrafficSelectors {
    pub fn parse(body: &[u8]) -> Result<TrafficSelectors, Error> {
        let mut r = Reader::new(body, "TS payload");
        let count = r.u8()?;
        r.take(3)?;
        let selectors = (0..count)
            .map(|_| TrafficSelector::parse(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        if !r.is_empty() {
            return Err(Error::BadLength("TS payload"));
        }
        Ok(TrafficSelectors { selectors })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self
            .selectors
            .iter()
            .map(TrafficSelector::buffer_len)
            .sum::<usize>()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.selectors.len() as u8);
        out.extend_from_slice(&[0, 0, 0]);
        for selector in &self.selectors {
            selector.emit(out);
        }
    }
}
