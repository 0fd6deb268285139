//! Two IKEv2 engines wired back to back through an in-memory network with a virtual clock, with
//! the network's fate of each datagram (loss, duplication, delay, corruption) and a NAT. `lab`:
//! real `iked` and charon processes in network namespaces.
#![allow(dead_code)]

pub mod lab;
pub mod region;

use control::crypto::{Integ, Prf, SeededRng, SkEncryption};
use control::ikev2::{
    ChildConfig, Engine, EngineConfig, Event, IkeProposal, PeerConfig, RandomSpis, Transmit,
};
use control::wire::ikev2::{DhGroup, IdType, Identification, TrafficSelector};
use shared::sa::{AesKeySize, Integrity, Suite};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

pub const A_ADDR: &str = "198.18.0.1:500";
pub const B_ADDR: &str = "198.18.0.2:500";
/// Where the simulated NAT maps A's ports (A's view stays A_ADDR).
pub const A_PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
pub const NAT_PORT_OFFSET: u16 = 40000;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn id(name: &str) -> Identification {
    Identification {
        kind: IdType::Fqdn,
        data: name.as_bytes().to_vec(),
    }
}

pub fn subnet(third: u8) -> TrafficSelector {
    TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: u16::MAX,
        start: IpAddr::V4(Ipv4Addr::new(198, 18, third, 0)),
        end: IpAddr::V4(Ipv4Addr::new(198, 18, third, 255)),
    }
}

pub fn gcm_ecp256() -> IkeProposal {
    IkeProposal {
        encryption: SkEncryption::AesGcm16(32),
        integrity: None,
        prf: Prf::HmacSha256,
        groups: vec![DhGroup::Ecp256],
    }
}

pub fn cbc_modp2048() -> IkeProposal {
    IkeProposal {
        encryption: SkEncryption::AesCbc(32),
        integrity: Some(Integ::HmacSha256_128),
        prf: Prf::HmacSha256,
        groups: vec![DhGroup::Modp2048],
    }
}

pub const GCM: Suite = Suite::AesGcm {
    key: AesKeySize::Aes256,
    icv_len: 16,
};
pub const CBC: Suite = Suite::AesCbc {
    key: AesKeySize::Aes128,
    integrity: Integrity::HmacSha256_128,
};

pub fn peer(name: &str, local: &str, remote: &str, local_net: u8, remote_net: u8) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        remote_addr: None,
        local_id: id(local),
        remote_id: id(remote),
        psk: Zeroizing::new(b"a shared secret of decent length".to_vec()),
        pubkey: None,
        ike_proposals: vec![gcm_ecp256()],
        child: ChildConfig {
            suites: vec![GCM],
            pfs_groups: Vec::new(),
            local_ts: vec![subnet(local_net)],
            remote_ts: vec![subnet(remote_net)],
        },
        dpd_interval: Duration::from_secs(30),
        request_server_addresses: false,
        server_addresses: Vec::new(),
    }
}

/// What the network does to the n-th datagram (counted from 0 across both directions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Drop,
    Duplicate,
    /// Hold it back and deliver it after everything else in flight.
    Delay,
    /// Flip one byte in the middle.
    Corrupt,
}

/// Decides the fate of the n-th datagram.
pub type FateFn = Box<dyn FnMut(usize, &Transmit) -> Fate>;

pub struct Pair {
    pub now: Instant,
    pub a: Engine,
    pub b: Engine,
    pub nat: bool,
    pub fate: FateFn,
    pub sent: usize,
    pub a_events: Vec<Event>,
    pub b_events: Vec<Event>,
    /// Datagrams seen on the wire, as sent.
    pub log: Vec<Transmit>,
}

impl Pair {
    pub fn new(a_config: EngineConfig, b_config: EngineConfig) -> Pair {
        Pair {
            now: Instant::now(),
            a: Engine::new(a_config, Box::new(SeededRng::new(1)), Box::new(RandomSpis)),
            b: Engine::new(b_config, Box::new(SeededRng::new(2)), Box::new(RandomSpis)),
            nat: false,
            fate: Box::new(|_, _| Fate::Deliver),
            sent: 0,
            a_events: Vec::new(),
            b_events: Vec::new(),
            log: Vec::new(),
        }
    }

    /// The default pair with the given PFS groups for CREATE_CHILD_SA on A and B (RFC 7296 1.3),
    /// its IKE SA and first child SA established (the same whatever the groups: fixed seeds).
    pub fn established_with_pfs(a_groups: &[DhGroup], b_groups: &[DhGroup]) -> Pair {
        let mut a = peer("to-b", "a.example", "b.example", 1, 2);
        let mut b = peer("from-a", "b.example", "a.example", 2, 1);
        a.child.pfs_groups = a_groups.to_vec();
        b.child.pfs_groups = b_groups.to_vec();
        let mut pair = Pair::new(EngineConfig::new(vec![a]), EngineConfig::new(vec![b]));
        pair.initiate();
        pair.run(3, false);
        pair.assert_established();
        pair
    }

    pub fn default_pair() -> Pair {
        Pair::new(
            EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]),
            EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]),
        )
    }

    pub fn initiate(&mut self) -> u64 {
        self.a
            .initiate(self.now, "to-b", addr(A_ADDR), addr(B_ADDR))
            .unwrap()
    }

    /// The NAT rewrites A's address to A_PUBLIC and its port p to NAT_PORT_OFFSET + p. Returns
    /// the (local, remote) pair B sees.
    fn translate_from_a(&self, t: &Transmit) -> (SocketAddr, SocketAddr) {
        if self.nat {
            (
                t.remote,
                SocketAddr::new(IpAddr::V4(A_PUBLIC), NAT_PORT_OFFSET + t.local.port()),
            )
        } else {
            (t.remote, t.local)
        }
    }

    /// The way back: (local, remote) as A sees it.
    fn translate_to_a(&self, t: &Transmit) -> (SocketAddr, SocketAddr) {
        if self.nat {
            (
                SocketAddr::new(addr(A_ADDR).ip(), t.remote.port() - NAT_PORT_OFFSET),
                t.local,
            )
        } else {
            (t.remote, t.local)
        }
    }

    /// Moves datagrams until the network is quiet and no timer is due; then advances the
    /// virtual clock to the next timer if `advance` and repeats, at most `rounds` times.
    pub fn run(&mut self, rounds: usize, advance: bool) {
        for _ in 0..rounds {
            let mut in_flight: Vec<(bool, Transmit)> = Vec::new();
            let mut delayed: Vec<(bool, Transmit)> = Vec::new();
            loop {
                while let Some(t) = self.a.poll_transmit() {
                    in_flight.push((true, t));
                }
                while let Some(t) = self.b.poll_transmit() {
                    in_flight.push((false, t));
                }
                if in_flight.is_empty() {
                    if delayed.is_empty() {
                        break;
                    }
                    in_flight.append(&mut delayed);
                }
                for (from_a, t) in std::mem::take(&mut in_flight) {
                    let n = self.sent;
                    self.sent += 1;
                    self.log.push(t.clone());
                    // NAT keepalives are filtered by the I/O layer before any engine sees them.
                    if t.bytes == control::ikev2::NAT_KEEPALIVE {
                        continue;
                    }
                    let mut bytes = t.bytes.clone();
                    let copies = match (self.fate)(n, &t) {
                        Fate::Deliver => 1,
                        Fate::Drop => 0,
                        Fate::Duplicate => 2,
                        Fate::Delay => {
                            delayed.push((from_a, t));
                            continue;
                        }
                        Fate::Corrupt => {
                            let middle = bytes.len() / 2;
                            bytes[middle] ^= 0x40;
                            1
                        }
                    };
                    for _ in 0..copies {
                        if from_a {
                            let (local, remote) = self.translate_from_a(&t);
                            self.b.handle_datagram(self.now, local, remote, &bytes);
                        } else {
                            let (local, remote) = self.translate_to_a(&t);
                            self.a.handle_datagram(self.now, local, remote, &bytes);
                        }
                    }
                }
                self.collect();
            }
            self.collect();
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if advance || at <= self.now => {
                    self.now = self.now.max(at);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => return,
            }
        }
    }

    pub fn collect(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
    }

    pub fn children(events: &[Event]) -> Vec<control::ikev2::ChildSa> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::ChildSaEstablished(c) => Some((**c).clone()),
                _ => None,
            })
            .collect()
    }

    pub fn count(events: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
        events.iter().filter(|e| pred(e)).count()
    }

    /// Both ends have exactly one IKE SA and one child SA, with mirrored SPIs and keys.
    pub fn assert_established(&self) -> (control::ikev2::ChildSa, control::ikev2::ChildSa) {
        let established = |e: &Event| matches!(e, Event::IkeSaEstablished { .. });
        assert_eq!(
            Pair::count(&self.a_events, established),
            1,
            "A: {:?}",
            self.a_events
        );
        assert_eq!(
            Pair::count(&self.b_events, established),
            1,
            "B: {:?}",
            self.b_events
        );
        let (a, b) = (
            Pair::children(&self.a_events),
            Pair::children(&self.b_events),
        );
        assert_eq!((a.len(), b.len()), (1, 1));
        let (a, b) = (a[0].clone(), b[0].clone());
        assert_eq!(a.outbound_spi, b.inbound_spi);
        assert_eq!(a.inbound_spi, b.outbound_spi);
        assert_eq!(a.outbound, b.inbound);
        assert_eq!(a.inbound, b.outbound);
        assert_ne!(a.outbound, a.inbound);
        assert_eq!(a.suite, b.suite);
        assert_eq!(a.outbound.encr.len(), a.suite.enc_key_len());
        assert_eq!(a.outbound.integ.len(), a.suite.auth_key_len());
        (a, b)
    }
}
