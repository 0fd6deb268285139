//! The sans-IO IKEv2 engine (ARCHITECTURE.md section 3): datagrams and time in, datagrams,
//! events and the next deadline out. No sockets, no clock reads; randomness is injected.
use super::config::EngineConfig;
use super::error::Failure;
use super::rekey;
use super::sa::{ChildSa, IkeSa, Phase, Request};
use super::tasks;
use super::timer::Timer;
use crate::crypto::{Prf, Rng};
use crate::wire::ikev2::{ExchangeType, Header, Message, NotifyType, Payload};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A datagram to send from `local` to `remote`. On port 4500 the I/O layer prepends the
/// non-ESP marker (RFC 3948 2.2) to everything but a NAT keepalive ([`NAT_KEEPALIVE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    IkeSaEstablished {
        spi: u64,
        peer: String,
    },
    IkeSaFailed {
        spi: u64,
        peer: String,
        reason: Failure,
    },
    IkeSaDeleted {
        spi: u64,
        peer: String,
    },
    ChildSaEstablished(Box<ChildSa>),
    ChildSaDeleted {
        ike_spi: u64,
        inbound_spi: u32,
        outbound_spi: u32,
    },
    /// The peer sent a vendor ID we recognise ([MS-IKEE] 1.7).
    PeerVendor {
        spi: u64,
        peer: String,
        vendor: super::vendor::Vendor,
    },
    /// This IKE SA was correlated with the original one ([MS-IKEE] 3.10).
    Correlated {
        spi: u64,
        original_spi: u64,
    },
    /// Correlation failed (status of the 0x3039 notify); the IKE SA stays.
    CorrelationFailed {
        spi: u64,
        status: u32,
    },
    /// The responder's internal server addresses ([MS-IKEE] 3.11).
    ServerAddresses {
        spi: u64,
        addresses: Vec<IpAddr>,
    },
    /// The IKE SA `old_spi` was replaced by `new_spi` (RFC 7296 2.18): its child SAs now belong
    /// to the new one (their `ike_spi` changes); the old one is deleted without them.
    IkeSaRekeyed {
        old_spi: u64,
        new_spi: u64,
        peer: String,
    },
    /// Both ends rekeyed the same SA at once (RFC 7296 2.8.1 for a child, named by the old
    /// inbound SPI; 2.8.2 for the IKE SA); `ours_redundant` if our exchange made the redundant SA.
    RekeyCollision {
        ike_spi: u64,
        child: Option<u32>,
        ours_redundant: bool,
    },
    /// The peer of a new IKE SA sent N(INITIAL_CONTACT) (RFC 7296 2.4); this engine has
    /// already deleted its stale IKE SAs, the daemon passes it on to its other engines
    /// ([`Engine::apply_initial_contact`]).
    InitialContact(InitialContact),
    /// This IKE SA and its child SAs were deleted without telling the peer, which sent
    /// INITIAL_CONTACT in the IKE SA `by` (RFC 7296 2.4). Its `IkeSaDeleted` and
    /// `ChildSaDeleted` events follow.
    DeletedOnInitialContact {
        spi: u64,
        peer: String,
        by: u64,
    },
}

/// N(INITIAL_CONTACT) in the peer's IKE_AUTH message (RFC 7296 2.4): the peer has no IKE SA with
/// us but the new one, so every other one with the same authenticated identity is stale, and so
/// are its child SAs. The identity is the peer configuration's `remote_id`, which the peer's ID
/// payload had to equal to authenticate: every configuration with that remote ID counts (as
/// responder, the configuration is chosen by the peer's address, which a rebooted peer may
/// have changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialContact {
    /// Our SPI of the new IKE SA.
    pub spi: u64,
    /// The name of the peer configuration.
    pub peer: String,
    /// When the new IKE SA's negotiation began. Only IKE SAs established by then are stale: one
    /// that came up while it was negotiated is from the peer's new life too, as an initiator
    /// may finish several IKE SAs in any order, the one that says INITIAL_CONTACT last.
    pub started_at: Instant,
    /// Stale-looking IKE SAs that stay: the one the new SA reauthenticates (RFC 7296 2.8.3), the
    /// one it is correlated with ([MS-IKEE] 3.10).
    pub spared: Vec<u64>,
}

/// RFC 3948 2.3: the one-byte NAT keepalive, sent without the non-ESP marker.
pub const NAT_KEEPALIVE: [u8; 1] = [0xFF];
/// RFC 3948 4: the default keepalive interval.
const NAT_KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(20);

/// Counters an operator can read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub datagrams_received: u64,
    pub malformed: u64,
    pub unknown_spi: u64,
    pub unexpected_message_id: u64,
    pub integrity_failures: u64,
    pub retransmissions_sent: u64,
    pub retransmitted_requests_answered: u64,
    pub cookies_sent: u64,
    pub ike_sas_established: u64,
    pub child_sas_established: u64,
    pub negotiations_failed: u64,
    /// Malformed [MS-IKEE] 3.11 attributes, ignored without affecting the IKE SA.
    pub config_attributes_ignored: u64,
    /// Our liveness checks the peer answered, and the peer's we answered (RFC 7296 2.4).
    pub liveness_answered_by_peer: u64,
    pub liveness_answered: u64,
    pub unknown_vendor_ids: u64,
    /// INVALID_SPI notifications (RFC 7296 2.21.4) we sent and the peer answered, the reports
    /// the rate limit held back, and the ones the peer sent us.
    pub invalid_spi_sent: u64,
    pub invalid_spi_rate_limited: u64,
    pub invalid_spi_received: u64,
    /// AUTHENTICATION_FAILED notifications sent to responders whose IKE_AUTH response did not
    /// authenticate them, and received from initiators that ours did not (RFC 7296 2.21.2).
    pub authentication_failed_sent: u64,
    pub authentication_failed_received: u64,
}

/// Where inbound child SA SPIs come from (the shared region's allocator in the daemon).
pub trait SpiSource: Send {
    fn allocate(&mut self, rng: &mut dyn Rng, local: IpAddr, remote: IpAddr) -> u32;
    /// An allocated SPI that no child SA will use (the negotiation failed or timed out).
    fn release(&mut self, _spi: u32, _local: IpAddr) {}
}

/// Random SPIs above the reserved range 1-255 (RFC 4303 2.1).
#[derive(Debug, Default)]
pub struct RandomSpis;

impl SpiSource for RandomSpis {
    fn allocate(&mut self, rng: &mut dyn Rng, _local: IpAddr, _remote: IpAddr) -> u32 {
        loop {
            let mut bytes = [0u8; 4];
            rng.fill(&mut bytes);
            let spi = u32::from_be_bytes(bytes);
            if spi >= 256 {
                return spi;
            }
        }
    }
}

/// A read-only view of an IKE SA for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaInfo {
    pub spi_i: u64,
    pub spi_r: u64,
    pub initiator: bool,
    pub peer: String,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub established: bool,
    pub nat: bool,
    pub children: Vec<ChildSa>,
}

impl IkeSaInfo {
    /// The SPI this end chose, which names the IKE SA here.
    pub fn our_spi(&self) -> u64 {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }
}

/// What the exchange handlers get besides the SA.
pub(crate) struct Ctx<'a> {
    pub now: Instant,
    pub config: &'a EngineConfig,
    pub rng: &'a mut dyn Rng,
    pub spis: &'a mut dyn SpiSource,
    pub transmits: &'a mut VecDeque<Transmit>,
    pub events: &'a mut VecDeque<Event>,
    pub stats: &'a mut Stats,
}

impl Ctx<'_> {
    pub fn random(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        self.rng.fill(&mut bytes);
        bytes
    }

    /// A random IKE SPI of this engine's shard (`EngineConfig::spi_shard`).
    pub fn random_spi(&mut self) -> u64 {
        let shard = self.config.spi_shard;
        loop {
            let mut bytes = [0u8; 8];
            self.rng.fill(&mut bytes);
            let random = u64::from_be_bytes(bytes);
            let spi = random - random % shard.count + shard.index;
            if spi != 0 {
                return spi;
            }
        }
    }

    pub fn peer_name(&self, sa: &IkeSa) -> String {
        self.config.peers[sa.peer].name.clone()
    }

    /// Sends a request with the SA's current message ID and arms retransmission.
    pub fn send_request(&mut self, sa: &mut IkeSa, request: Request, datagrams: Vec<Vec<u8>>) {
        sa.outstanding = Some(super::sa::Outstanding {
            request,
            message_id: sa.next_request_id,
            datagrams: datagrams.clone(),
            sends: 1,
        });
        sa.timers
            .set(Timer::Retransmit, self.now + self.config.retransmit.base);
        sa.timers.clear(Timer::Liveness);
        self.send_all(sa.local, sa.remote, datagrams);
    }

    /// The datagrams of one message (several when it is fragmented, RFC 7383).
    pub fn send_all(&mut self, local: SocketAddr, remote: SocketAddr, datagrams: Vec<Vec<u8>>) {
        self.transmits
            .extend(datagrams.into_iter().map(|bytes| Transmit {
                local,
                remote,
                bytes,
            }));
    }

    /// Sends a response and keeps it for retransmitted requests.
    pub fn send_response(&mut self, sa: &mut IkeSa, message_id: u32, datagrams: Vec<Vec<u8>>) {
        sa.cached_response = Some((message_id, datagrams.clone()));
        self.send_all(sa.local, sa.remote, datagrams);
    }

    /// The outstanding request got its answer: the next request takes the next message ID.
    pub fn request_done(&mut self, sa: &mut IkeSa) {
        sa.outstanding = None;
        sa.next_request_id = sa.next_request_id.wrapping_add(1);
        sa.timers.clear(Timer::Retransmit);
        self.arm_liveness(sa);
    }

    pub fn arm_liveness(&mut self, sa: &mut IkeSa) {
        if sa.nat
            && matches!(sa.phase, Phase::Established)
            && sa.timers.next_of(Timer::NatKeepalive).is_none()
        {
            sa.timers
                .set(Timer::NatKeepalive, self.now + NAT_KEEPALIVE_INTERVAL);
        }
        if matches!(sa.phase, Phase::Established) {
            let interval = self.config.peers[sa.peer].dpd_interval;
            sa.timers.set(Timer::Liveness, sa.last_heard + interval);
        }
    }

    pub fn fail(&mut self, sa: &IkeSa, reason: Failure) {
        self.stats.negotiations_failed += 1;
        let peer = self.peer_name(sa);
        self.events.push_back(Event::IkeSaFailed {
            spi: sa.our_spi,
            peer,
            reason,
        });
    }

    /// Reports the vendor IDs of a message from the peer.
    pub fn vendor_ids(&mut self, sa: &IkeSa, payloads: &[crate::wire::ikev2::Payload]) {
        for payload in payloads {
            if let crate::wire::ikev2::Payload::VendorId(data) = payload {
                match super::vendor::recognise(data) {
                    Some(vendor) => {
                        let peer = self.peer_name(sa);
                        self.events.push_back(Event::PeerVendor {
                            spi: sa.our_spi,
                            peer,
                            vendor,
                        });
                    }
                    None => self.stats.unknown_vendor_ids += 1,
                }
            }
        }
    }

    /// Reports the IKE SA and all its children gone.
    pub fn deleted(&mut self, sa: &IkeSa) {
        for child in &sa.children {
            self.events.push_back(Event::ChildSaDeleted {
                ike_spi: sa.our_spi,
                inbound_spi: child.inbound_spi,
                outbound_spi: child.outbound_spi,
            });
        }
        let peer = self.peer_name(sa);
        self.events.push_back(Event::IkeSaDeleted {
            spi: sa.our_spi,
            peer,
        });
    }
}

/// Whether a handled message leaves the SA in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    Yes,
    Remove,
}

pub struct Engine {
    config: EngineConfig,
    rng: Box<dyn Rng>,
    spis: Box<dyn SpiSource>,
    sas: HashMap<u64, IkeSa>,
    /// Responder: our SPI by (peer address, SPIi), to recognise retransmitted IKE_SA_INIT
    /// requests (RFC 7296 2.1).
    by_initiator: HashMap<(SocketAddr, u64), u64>,
    /// Responder SAs waiting for IKE_AUTH (RFC 7296 2.6: the cookie threshold counts them).
    half_open: usize,
    /// RFC 7296 2.6: cookies are keyed with a local secret.
    cookie_secret: [u8; 32],
    /// When we last sent INVALID_SPI to each peer address (RFC 7296 2.21.4: rate-limited).
    invalid_spi_sent_at: HashMap<IpAddr, Instant>,
    /// Our SPI of the IKE SA whose IKE_AUTH message from the peer, being handled, carried
    /// N(INITIAL_CONTACT) and established it.
    initial_contact: Option<u64>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("ike_sas", &self.sas.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Engine {
    pub fn new(config: EngineConfig, mut rng: Box<dyn Rng>, spis: Box<dyn SpiSource>) -> Engine {
        let mut cookie_secret = [0u8; 32];
        rng.fill(&mut cookie_secret);
        Engine {
            config,
            rng,
            spis,
            sas: HashMap::new(),
            by_initiator: HashMap::new(),
            half_open: 0,
            cookie_secret,
            invalid_spi_sent_at: HashMap::new(),
            initial_contact: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn ctx(&mut self, now: Instant) -> (Ctx<'_>, &mut HashMap<u64, IkeSa>) {
        (
            Ctx {
                now,
                config: &self.config,
                rng: self.rng.as_mut(),
                spis: self.spis.as_mut(),
                transmits: &mut self.transmits,
                events: &mut self.events,
                stats: &mut self.stats,
            },
            &mut self.sas,
        )
    }

    /// Starts an IKE SA with the named peer; returns our SPI. It carries N(INITIAL_CONTACT) if
    /// this engine holds no other IKE SA with the peer's identity (RFC 7296 2.4).
    pub fn initiate(
        &mut self,
        now: Instant,
        peer: &str,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<u64, Failure> {
        self.start_ike_sa(now, peer, local, remote, true)
    }

    /// Like [`Engine::initiate`], for a caller that knows of another IKE SA with the peer (on
    /// another engine): no INITIAL_CONTACT, which would make the peer delete that one.
    pub fn initiate_beside_others(
        &mut self,
        now: Instant,
        peer: &str,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<u64, Failure> {
        self.start_ike_sa(now, peer, local, remote, false)
    }

    /// Another IKE SA with the peer `peer_name` starts, here or on another engine: ours that have
    /// not sent their IKE_AUTH request yet no longer say INITIAL_CONTACT, or the peer would delete
    /// the other one should it come up first (RFC 7296 2.4). Returns whether this engine has an
    /// IKE SA with the peer.
    pub fn another_ike_sa_with(&mut self, peer_name: &str) -> bool {
        self.config
            .peers
            .iter()
            .position(|p| p.name == peer_name)
            .is_some_and(|index| self.another_ike_sa_starts(index))
    }

    /// (The peer is its identity, the remote ID: another configuration with the same one
    /// counts, as at the receiving end.)
    fn another_ike_sa_starts(&mut self, peer: usize) -> bool {
        let peers = &self.config.peers;
        let identity = &peers[peer].remote_id;
        let mut any = false;
        for sa in self
            .sas
            .values_mut()
            .filter(|sa| peers[sa.peer].remote_id == *identity)
        {
            any = true;
            if matches!(sa.phase, Phase::InitSent { .. }) {
                sa.initial_contact = false;
            }
        }
        any
    }

    fn start_ike_sa(
        &mut self,
        now: Instant,
        peer: &str,
        local: SocketAddr,
        remote: SocketAddr,
        may_be_first: bool,
    ) -> Result<u64, Failure> {
        let index = self
            .config
            .peers
            .iter()
            .position(|p| p.name == peer)
            .ok_or(Failure::Missing("peer configuration"))?;
        let others = self.another_ike_sa_starts(index);
        let first = may_be_first && !others;
        let (mut ctx, sas) = self.ctx(now);
        let mut sa = tasks::ike_init_initiator::start(&mut ctx, index, local, remote)?;
        sa.initial_contact = first;
        let spi = sa.our_spi;
        sas.insert(spi, sa);
        Ok(spi)
    }

    /// Starts an IKE SA correlated with the established IKE SA `original` ([MS-IKEE] 3.10).
    pub fn initiate_correlated(
        &mut self,
        now: Instant,
        peer: &str,
        local: SocketAddr,
        remote: SocketAddr,
        original: u64,
    ) -> Result<u64, Failure> {
        let source = self
            .sas
            .get(&original)
            .filter(|sa| matches!(sa.phase, Phase::Established))
            .and_then(|sa| {
                let keys = sa.keys.as_ref()?;
                Some(super::correlation::CorrelationSource {
                    original_spi_i: sa.spi_i,
                    original_spi_r: sa.spi_r,
                    key: keys.ike.sk_ai.clone(),
                })
            })
            .ok_or(Failure::Missing("established original IKE SA"))?;
        let spi = self.initiate(now, peer, local, remote)?;
        if let Some(sa) = self.sas.get_mut(&spi) {
            sa.correlation = Some(source);
            sa.correlated_with = Some(original);
        }
        Ok(spi)
    }

    /// Deletes an IKE SA and its children (RFC 7296 1.4.1).
    pub fn terminate(&mut self, now: Instant, spi: u64) -> bool {
        self.queue_request(now, spi, Request::DeleteIke)
    }

    /// Deletes one child SA, named by our inbound SPI.
    pub fn terminate_child(&mut self, now: Instant, ike_spi: u64, inbound_spi: u32) -> bool {
        self.queue_request(now, ike_spi, Request::DeleteChild { inbound_spi })
    }

    /// Replaces a child SA, named by our inbound SPI, with a new one (RFC 7296 2.8).
    pub fn rekey_child(&mut self, now: Instant, ike_spi: u64, inbound_spi: u32) -> bool {
        self.queue_request(
            now,
            ike_spi,
            Request::RekeyChild {
                old_inbound_spi: inbound_spi,
                ke_group: None,
            },
        )
    }

    /// Starts another child SA with the peer's configured traffic selectors in the IKE SA
    /// (RFC 7296 1.3.1), unless one is already under way there.
    pub fn create_child(&mut self, now: Instant, ike_spi: u64) -> bool {
        let under_way = |sa: &IkeSa| {
            sa.pending_child
                .as_ref()
                .is_some_and(|p| p.rekeys.is_none())
                || sa
                    .queued
                    .iter()
                    .chain(&sa.rekey.deferred)
                    .any(|r| matches!(r, Request::NewChild { .. }))
        };
        if self.sas.get(&ike_spi).is_some_and(under_way) {
            return true;
        }
        self.queue_request(now, ike_spi, Request::NewChild { ke_group: None })
    }

    /// Sends a liveness check now.
    pub fn check_liveness(&mut self, now: Instant, spi: u64) -> bool {
        self.queue_request(now, spi, Request::Liveness)
    }

    /// Replaces the IKE SA with a new one that takes its child SAs (RFC 7296 1.3.2, 2.18).
    pub fn rekey_ike(&mut self, now: Instant, spi: u64) -> bool {
        self.queue_request(now, spi, Request::RekeyIke)
    }

    /// Reauthenticates the peer (RFC 7296 2.8.3): a new IKE SA with IKE_SA_INIT and IKE_AUTH
    /// between the same endpoints, its child SA made from the configuration; the old IKE SA and
    /// its children are deleted once the new one is up. Returns the new IKE SA's SPI.
    pub fn reauthenticate(&mut self, now: Instant, spi: u64) -> Result<u64, Failure> {
        let (peer, local, remote) = self
            .sas
            .get(&spi)
            .filter(|sa| matches!(sa.phase, Phase::Established) && sa.rekey.successor.is_none())
            .map(|sa| (self.config.peers[sa.peer].name.clone(), sa.local, sa.remote))
            .ok_or(Failure::Missing("established IKE SA"))?;
        let new = self.initiate(now, &peer, local, remote)?;
        if let Some(sa) = self.sas.get_mut(&new) {
            sa.rekey.reauth_of = Some(spi);
        }
        Ok(new)
    }

    /// The dataplane got ESP from `peer` on an SPI it does not know: tell the peer in an
    /// INFORMATIONAL exchange if we have an IKE SA with it, at most once per
    /// `invalid_spi_interval` per peer (RFC 7296 2.21.4). Returns whether one was queued.
    pub fn report_invalid_spi(&mut self, now: Instant, peer: IpAddr, spi: u32) -> bool {
        let interval = self.config.invalid_spi_interval;
        let recent = |at: &Instant| now.saturating_duration_since(*at) < interval;
        if self.invalid_spi_sent_at.get(&peer).is_some_and(recent) {
            self.stats.invalid_spi_rate_limited += 1;
            return false;
        }
        let ike_spi = self
            .sas
            .values()
            .filter(|sa| {
                sa.remote.ip() == peer
                    && matches!(sa.phase, Phase::Established)
                    && sa.rekey.successor.is_none()
            })
            .max_by_key(|sa| sa.children.len())
            .map(|sa| sa.our_spi);
        let Some(ike_spi) = ike_spi else {
            return false;
        };
        self.invalid_spi_sent_at.retain(|_, at| recent(at));
        self.invalid_spi_sent_at.insert(peer, now);
        self.queue_request(now, ike_spi, Request::InvalidSpi { spi })
    }

    fn queue_request(&mut self, now: Instant, spi: u64, request: Request) -> bool {
        let (mut ctx, sas) = self.ctx(now);
        let Some(sa) = sas.get_mut(&spi) else {
            return false;
        };
        if !matches!(sa.phase, Phase::Established) || sa.rekey.successor.is_some() {
            return false;
        }
        sa.queued.push_back(request);
        tasks::requests::send_queued(&mut ctx, sa);
        true
    }

    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        self.stats.datagrams_received += 1;
        let Ok(header) = Header::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        if header.exchange == ExchangeType::IkeSaInit && !header.flags.response() {
            let secret = self.cookie_secret;
            let half_open_count = self.half_open;
            let existing = self.by_initiator.get(&(remote, header.spi_i)).copied();
            let (mut ctx, sas) = self.ctx(now);
            if let Some(spi) = existing {
                tasks::ike_init_responder::retransmitted(&mut ctx, sas.get(&spi), &header);
                return;
            }
            if let Some(sa) = tasks::ike_init_responder::handle(
                &mut ctx,
                &secret,
                half_open_count,
                local,
                remote,
                bytes,
            ) {
                self.by_initiator.insert((remote, sa.spi_i), sa.our_spi);
                self.half_open += 1;
                self.sas.insert(sa.our_spi, sa);
            }
            return;
        }
        let our_spi = if header.flags.initiator() {
            header.spi_r
        } else {
            header.spi_i
        };
        let Some(mut sa) = self.sas.remove(&our_spi) else {
            self.stats.unknown_spi += 1;
            return;
        };
        let was_half_open = matches!(sa.phase, Phase::HalfOpen);
        let keep = self.process(now, &mut sa, local, remote, &header, bytes);
        self.put_back(now, sa, keep, was_half_open);
    }

    /// Returns a handled SA to the table, or forgets it, keeping the responder indexes true.
    fn put_back(&mut self, now: Instant, sa: IkeSa, keep: Keep, was_half_open: bool) {
        let initial_contact = self.initial_contact.take() == Some(sa.our_spi);
        let half_open_now = keep == Keep::Yes && matches!(sa.phase, Phase::HalfOpen);
        if was_half_open && !half_open_now {
            self.half_open -= 1;
        }
        match keep {
            Keep::Yes => {
                let mut sa = sa;
                let lifetime = self.config.ike_lifetime;
                let (mut ctx, sas) = self.ctx(now);
                // Whatever a replaced SA still gets (a child SA its last exchange made, requests
                // about children) belongs to its successor (RFC 7296 2.18).
                rekey::hand_over_to_successor(&mut ctx, &mut sa, sas);
                if let Some(lifetime) = lifetime
                    .filter(|_| matches!(sa.phase, Phase::Established) && !sa.rekey.lifetime_armed)
                {
                    // Up to a tenth early at random, so both ends rarely rekey together.
                    let mut jitter = [0u8; 2];
                    ctx.rng.fill(&mut jitter);
                    let early = lifetime / 10 * u32::from(u16::from_be_bytes(jitter)) / 65535;
                    sa.timers.set(Timer::Rekey, now + lifetime - early);
                    sa.rekey.lifetime_armed = true;
                }
                if matches!(sa.phase, Phase::Established) && sa.established_at.is_none() {
                    sa.established_at = Some(now);
                }
                let replaced = matches!(sa.phase, Phase::Established)
                    .then(|| sa.rekey.reauth_of.take())
                    .flatten();
                let contact = initial_contact.then(|| InitialContact {
                    spi: sa.our_spi,
                    peer: ctx.peer_name(&sa),
                    started_at: sa.started_at,
                    spared: replaced.into_iter().chain(sa.correlated_with).collect(),
                });
                self.sas.insert(sa.our_spi, sa);
                if let Some(contact) = contact {
                    self.events
                        .push_back(Event::InitialContact(contact.clone()));
                    self.apply_initial_contact(now, &contact);
                }
                if let Some(old) = replaced {
                    self.terminate(now, old);
                }
            }
            Keep::Remove => {
                // Inbound SPIs reserved for child SAs that will never exist.
                if let Phase::AuthSent { child_spi } = sa.phase {
                    self.spis.release(child_spi, sa.local.ip());
                }
                if let Some(pending) = &sa.pending_child {
                    self.spis.release(pending.new_inbound_spi, sa.local.ip());
                }
                let spi = sa.our_spi;
                if !sa.initiator {
                    self.by_initiator.retain(|_, ours| *ours != spi);
                }
                // [MS-IKEE] 3.10: the correlating IKE SAs go with the original, unless the
                // original was rekeyed: then they follow it to its successor (RFC 7296 2.18).
                let correlated: Vec<u64> = self
                    .sas
                    .values()
                    .filter(|s| s.correlated_with == Some(spi))
                    .map(|s| s.our_spi)
                    .collect();
                for other in correlated {
                    if let Some(s) = self.sas.get_mut(&other) {
                        s.correlated_with = sa.rekey.successor;
                    }
                    if sa.rekey.successor.is_none() {
                        self.terminate(now, other);
                    }
                }
            }
        }
    }

    fn process(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        bytes: &[u8],
    ) -> Keep {
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(_) => {
                self.stats.malformed += 1;
                return Keep::Yes;
            }
        };
        let (mut ctx, sas) = self.ctx(now);
        if header.flags.response() {
            let Some(outstanding) = &sa.outstanding else {
                ctx.stats.unexpected_message_id += 1;
                return Keep::Yes;
            };
            if outstanding.message_id != header.message_id {
                ctx.stats.unexpected_message_id += 1;
                return Keep::Yes;
            }
            if outstanding.request == Request::SaInit {
                return tasks::ike_init_initiator::handle_response(&mut ctx, sa, &message, bytes);
            }
            let request = outstanding.request;
            let Some(inner) = open(&mut ctx, sa, &message, bytes) else {
                return Keep::Yes;
            };
            sa.last_heard = now;
            return match request {
                Request::Auth => {
                    let keep = tasks::ike_auth_initiator::handle_response(&mut ctx, sa, &inner);
                    self.initial_contact = initial_contact(sa, &inner);
                    keep
                }
                Request::RekeyChild { .. } | Request::NewChild { .. } => {
                    tasks::create_child_initiator::handle_response(&mut ctx, sa, &inner)
                }
                Request::RekeyIke => {
                    tasks::rekey_ike_initiator::handle_response(&mut ctx, sa, &inner, sas)
                }
                _ => tasks::informational_initiator::handle_response(&mut ctx, sa, &inner),
            };
        }
        // A request from the peer (RFC 7296 2.2: a window of one).
        if header.message_id.wrapping_add(1) == sa.expected_request_id {
            // RFC 7383 2.6.1: a request retransmitted in fragments is answered once, on its
            // first fragment.
            let first_fragment = !matches!(
                message.payloads.last(),
                Some(Payload::EncryptedFragment(f)) if f.number != 1
            );
            if let Some((id, response)) = &sa.cached_response {
                if *id == header.message_id && first_fragment {
                    ctx.stats.retransmitted_requests_answered += 1;
                    let response = response.clone();
                    ctx.send_all(local, remote, response);
                }
            }
            return Keep::Yes;
        }
        if header.message_id != sa.expected_request_id {
            ctx.stats.unexpected_message_id += 1;
            return Keep::Yes;
        }
        let Some(inner) = open(&mut ctx, sa, &message, bytes) else {
            return Keep::Yes;
        };
        // RFC 7296 2.11/2.23: answer where the request came from; a NAT may have moved it.
        sa.local = local;
        sa.remote = remote;
        sa.last_heard = now;
        sa.expected_request_id = sa.expected_request_id.wrapping_add(1);
        // [MS-IKEE] 3.10: the established IKE SA a Correlation payload names, with its SK_ai.
        let original = inner
            .iter()
            .find_map(|p| match p {
                Payload::Correlation(c) => Some(c),
                _ => None,
            })
            .and_then(|c| {
                sas.values().find(|o| {
                    o.spi_i == c.original_spi_i
                        && o.spi_r == c.original_spi_r
                        && matches!(o.phase, Phase::Established)
                })
            })
            .and_then(|o| Some((o.our_spi, o.keys.as_ref()?.ike.sk_ai.clone())));
        match header.exchange {
            ExchangeType::IkeAuth => {
                let keep = tasks::ike_auth_responder::handle_request(
                    &mut ctx,
                    sa,
                    header.message_id,
                    &inner,
                    original,
                );
                self.initial_contact = initial_contact(sa, &inner);
                keep
            }
            ExchangeType::Informational => tasks::informational_responder::handle_request(
                &mut ctx,
                sa,
                header.message_id,
                &inner,
                sas,
            ),
            ExchangeType::CreateChildSa => tasks::create_child_responder::handle_request(
                &mut ctx,
                sa,
                header.message_id,
                &inner,
                sas,
            ),
            // An exchange type we do not know: refuse it without touching the IKE SA.
            _ => tasks::informational_responder::refuse(
                &mut ctx,
                sa,
                header.exchange,
                header.message_id,
                NotifyType::InvalidSyntax,
            ),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.timers.next().is_some_and(|t| t <= now))
            .map(|(spi, _)| *spi)
            .collect();
        for spi in due {
            let Some(mut sa) = self.sas.remove(&spi) else {
                continue;
            };
            let was_half_open = matches!(sa.phase, Phase::HalfOpen);
            let (mut ctx, _) = self.ctx(now);
            let mut keep = Keep::Yes;
            for timer in sa.timers.expired(now) {
                keep = match timer {
                    Timer::Retransmit => retransmit(&mut ctx, &mut sa),
                    Timer::Liveness => {
                        if sa.outstanding.is_none() {
                            sa.queued.push_back(Request::Liveness);
                            tasks::requests::send_queued(&mut ctx, &mut sa);
                        }
                        Keep::Yes
                    }
                    Timer::NatKeepalive => {
                        ctx.transmits.push_back(Transmit {
                            local: sa.local,
                            remote: sa.remote,
                            bytes: NAT_KEEPALIVE.to_vec(),
                        });
                        sa.timers
                            .set(Timer::NatKeepalive, now + NAT_KEEPALIVE_INTERVAL);
                        Keep::Yes
                    }
                    Timer::HalfOpen => {
                        ctx.fail(&sa, Failure::Timeout);
                        Keep::Remove
                    }
                    Timer::Rekey => {
                        if sa.rekey.successor.is_none() {
                            sa.queued.push_back(Request::RekeyIke);
                            tasks::requests::send_queued(&mut ctx, &mut sa);
                        }
                        Keep::Yes
                    }
                    Timer::Retry => {
                        let deferred = std::mem::take(&mut sa.rekey.deferred);
                        sa.queued.extend(deferred);
                        tasks::requests::send_queued(&mut ctx, &mut sa);
                        Keep::Yes
                    }
                };
                if keep == Keep::Remove {
                    break;
                }
            }
            self.put_back(now, sa, keep, was_half_open);
        }
    }

    /// Deletes the IKE SAs `contact` makes stale, with their child SAs, without telling the peer
    /// (it no longer has them, RFC 7296 2.4): established ones with the same authenticated
    /// identity (a configuration with the same remote ID), established by `contact.started_at`, neither the new one nor a spared one. Returns
    /// how many were deleted.
    pub fn apply_initial_contact(&mut self, now: Instant, contact: &InitialContact) -> usize {
        // The authenticated identity: every configuration with the same remote ID counts.
        let Some(identity) = self
            .config
            .peers
            .iter()
            .find(|p| p.name == contact.peer)
            .map(|p| p.remote_id.clone())
        else {
            return 0;
        };
        let stale: Vec<u64> = self
            .sas
            .values()
            .filter(|sa| {
                sa.our_spi != contact.spi
                    && !contact.spared.contains(&sa.our_spi)
                    && matches!(sa.phase, Phase::Established)
                    && sa.established_at.is_some_and(|at| at <= contact.started_at)
                    && self.config.peers[sa.peer].remote_id == identity
            })
            .map(|sa| sa.our_spi)
            .collect();
        // All out of the table first, so that none of them is told to the peer as the
        // correlated SA of another ([MS-IKEE] 3.10, `put_back`).
        let stale: Vec<IkeSa> = stale
            .iter()
            .filter_map(|spi| self.sas.remove(spi))
            .collect();
        let deleted = stale.len();
        for sa in stale {
            let (mut ctx, _) = self.ctx(now);
            ctx.events.push_back(Event::DeletedOnInitialContact {
                spi: sa.our_spi,
                peer: ctx.peer_name(&sa),
                by: contact.spi,
            });
            ctx.deleted(&sa);
            self.put_back(now, sa, Keep::Remove, false);
        }
        deleted
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sas.values().filter_map(|sa| sa.timers.next()).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn ike_sas(&self) -> Vec<IkeSaInfo> {
        self.sas
            .values()
            .map(|sa| IkeSaInfo {
                spi_i: sa.spi_i,
                spi_r: sa.spi_r,
                initiator: sa.initiator,
                peer: self.config.peers[sa.peer].name.clone(),
                local: sa.local,
                remote: sa.remote,
                established: matches!(sa.phase, Phase::Established),
                nat: sa.nat,
                children: sa.children.clone(),
            })
            .collect()
    }

    /// The cookie for an IKE_SA_INIT request (RFC 7296 2.6): prf(secret, Ni | IPi | SPIi).
    pub(crate) fn cookie(secret: &[u8], nonce: &[u8], remote: SocketAddr, spi_i: u64) -> Vec<u8> {
        let ip = match remote.ip() {
            IpAddr::V4(ip) => ip.octets().to_vec(),
            IpAddr::V6(ip) => ip.octets().to_vec(),
        };
        Prf::HmacSha256
            .compute(secret, &[nonce, &ip, &spi_i.to_be_bytes()])
            .to_vec()
    }
}

/// Our SPI of `sa` if the peer's IKE_AUTH message that established it carried N(INITIAL_CONTACT)
/// (RFC 7296 2.4; the initiator sends it, but it counts wherever it comes).
fn initial_contact(sa: &IkeSa, inner: &[Payload]) -> Option<u64> {
    let contact = crate::ikev2::payloads::notifies(inner, NotifyType::InitialContact)
        .next()
        .is_some();
    (contact && matches!(sa.phase, Phase::Established)).then_some(sa.our_spi)
}

/// Resends the outstanding request with exponential backoff; gives up after the configured
/// number of sends (RFC 7296 2.1, 2.4).
fn retransmit(ctx: &mut Ctx<'_>, sa: &mut IkeSa) -> Keep {
    let policy = ctx.config.retransmit;
    let Some(outstanding) = sa.outstanding.as_mut() else {
        return Keep::Yes;
    };
    if outstanding.sends >= policy.tries {
        ctx.fail(sa, Failure::Timeout);
        if matches!(sa.phase, Phase::Established) {
            ctx.deleted(sa);
        }
        return Keep::Remove;
    }
    outstanding.sends += 1;
    ctx.stats.retransmissions_sent += 1;
    let delay = policy.base * 2u32.saturating_pow(outstanding.sends - 1);
    sa.timers.set(Timer::Retransmit, ctx.now + delay);
    let datagrams = outstanding.datagrams.clone();
    ctx.send_all(sa.local, sa.remote, datagrams);
    Keep::Yes
}

/// The inner payloads of a protected message, counting what fails; `None` also while the
/// fragments of a message are still coming in (RFC 7383 2.6).
fn open(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    message: &Message,
    bytes: &[u8],
) -> Option<Vec<Payload>> {
    match sa.open(message, bytes) {
        Ok(inner) => inner,
        Err(Failure::Crypto(_)) => {
            ctx.stats.integrity_failures += 1;
            None
        }
        Err(_) => {
            ctx.stats.malformed += 1;
            None
        }
    }
}
