//! The packet path of one lcore, independent of DPDK: it takes a frame received on a port (or
//! sent by the kernel on the exception interface) and says where it goes, editing it in place.
//!
//! - From a port: parse Ethernet/VLAN; ARP and traffic to the gateway's own addresses that is not
//!   ESP (IKE, ICMP, neighbour discovery) go to the exception path; ESP and ESP-in-UDP to us are
//!   looked up by (SPI, destination), decrypted and their inner packet checked against the SA's
//!   selectors (the ESP core); other traffic from the protected side is classified by the SPD
//!   (bypass, discard, protect) and encrypted; cleartext from the unprotected side must match an
//!   inbound bypass rule (RFC 4301 5.2).
//! - From the exception interface: what the kernel sends goes out on its port, through the
//!   outbound SPD too (so a transport-mode SA protects the gateway's own traffic).
//! - Then: route (longest prefix), next-hop MAC, Ethernet header (and VLAN tag).
//! - A packet whose TTL expires, or that is too big for its path (the port's MTU, after ESP
//!   for protected traffic), becomes an ICMP error back to its sender (`icmp_error`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use shared::event::{Event, ExchangeInfoFlags, FlowTuple, SaKey};
use shared::reader::Reader;
use shared::sad::SaHandle;
use shared::region::now_ns;
use shared::sa::{Direction, Mode};

use super::burst_crypto::{Unopened, Unsealed};
use super::counters::{bump, GatewayDrop, LcoreCounters, Reason};
use super::ether::{Arp, Frame, Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use super::icmp_error::{self, ErrorRateLimit, IcmpError};
use super::neighbour_solicitation;
use super::event_limit::UnknownSpiLimit;
use super::round_traffic::RoundTraffic;
use super::routing::{NeighbourCache, Neighbours, Net, Routes};
use super::sa_cache::{PreparedSas, SaCache};
use super::spd_classifier::{Classifier, Decision, Matched};
use super::spd_flow_cache::SpdFlowCache;
use super::Side;
use crate::buf::PacketBuf;
use crate::esp::decrypt::{check_sequence, classify, decapsulate, finish_opened, open_error, Classified, Decapsulated};
use crate::esp::encrypt::{encapsulate, encapsulate_unsealed, exceeds_mtu};
use crate::esp::suite::{BurstPacket, BurstVec, OpenError, Transform};
use crate::esp::flow::{Flow, FlowAddr};
use crate::nd::{InboundVerdict, NdHook, NegotiationDiscovery, OutboundVerdict};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::ipv4_fragment::{self, SplitError};
use crate::wire::{checksum, ipv6};
use crate::wire::proto;

/// Where a processed frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Out of the port of this side; the buffer holds the complete frame.
    Transmit(Side),
    /// To the kernel through the exception interface of this side.
    Exception(Side),
    Drop(Reason),
    /// An IPv4 packet without DF too large for its tunnel-mode SA: the buffer holds it (its
    /// TTL decremented); the caller cuts it into fragments with [`Pipeline::next_fragment`],
    /// which seals each one (RFC 4301 8.1: fragmenting before encryption). (The plan stays in
    /// the pipeline: a verdict small enough for registers costs nothing per packet.)
    Fragment,
    /// An ESP packet waiting to be opened with the rest of its burst ([`Pipeline::take_unopened`],
    /// only with [`Pipeline::crypto_in_bursts`]).
    Open,
}

/// How to fragment and seal the packet of a [`Verdict::Fragment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FragmentPlan {
    /// The outbound SA the packet's rule chose.
    sa: SaHandle,
    /// The largest fragment that fits through it.
    max_len: usize,
}

/// One port's link-layer setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideSetup {
    pub mac: Mac,
    pub vlan: Option<u16>,
    /// The gateway's addresses on this side, with their subnets.
    pub addresses: Vec<Net>,
    /// The largest IP packet the port sends.
    pub mtu: u16,
}

/// What every lcore's pipeline is built from.
#[derive(Debug, Clone)]
pub struct Setup {
    pub protected: SideSetup,
    pub unprotected: SideSetup,
    /// Static routes; the subnets of the sides' addresses are added as connected routes.
    pub routes: Routes,
    pub neighbours: HashMap<(Side, IpAddr), Mac>,
    /// UDP ports carrying ESP (RFC 3948), normally [4500].
    pub encap_ports: Vec<u16>,
    /// ICMP errors each lcore sends per second at most (RFC 1812 4.3.2.8, RFC 4443 2.4(f)).
    pub icmp_errors_per_sec: u32,
}

impl Setup {
    pub fn side(&self, side: Side) -> &SideSetup {
        match side {
            Side::Protected => &self.protected,
            Side::Unprotected => &self.unprotected,
        }
    }
}

/// What all lcores of a process share.
#[derive(Debug, Default)]
pub struct Shared {
    pub neighbours: Arc<Neighbours>,
    pub sas: Arc<PreparedSas>,
    /// Negotiation discovery ([MS-IKEE] 3.7): the flow state table, when enabled.
    pub nd: Option<Arc<NegotiationDiscovery>>,
}

/// Where a packet that gets an ICMP error came from, which says the error's source address and
/// how it may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// In cleartext on the port of this side: the error is from the gateway's address there.
    Port(Side),
    /// Out of an SA: the error is from the gateway's protected-side address and goes back only
    /// under ESP (never a secured flow's packet in cleartext).
    Decrypted,
    /// From the gateway's own kernel (exception interface): the error goes back to it.
    Host,
}

/// How often (per lcore and next hop) a missing neighbour is solicited, an ACQUIRE repeated, and
/// a packet for the same unknown SPI reported.
const RETRY_NS: u64 = 200_000_000;

/// How often an lcore adds its SA traffic to the region's counters. Not every round: the counters
/// of an SA that several lcores use share a cache line, and a round can be a single burst.
const SA_FLUSH_NS: u64 = 100_000;

/// One lcore's pipeline.
#[derive(Debug)]
pub struct Pipeline {
    reader: Reader,
    setup: Arc<Setup>,
    classifier: Classifier,
    /// The classifier's answers for recent flows.
    spd_cache: SpdFlowCache,
    sas: SaCache,
    neighbours: NeighbourCache,
    counters: Arc<LcoreCounters>,
    now_ns: u64,
    /// Next hops to resolve: taken by the I/O loop, which sends ARP requests.
    solicit: Vec<(Side, IpAddr)>,
    last_solicit: HashMap<(Side, IpAddr), u64>,
    last_acquire: HashMap<u32, u64>,
    unknown_spi: UnknownSpiLimit,
    /// The addresses whose packets go to an exception interface, and which one.
    local: LocalAddresses,
    /// Packets and bytes per SA since the last flush, added to the region every SA_FLUSH_NS.
    sa_traffic: RoundTraffic,
    next_sa_flush_ns: u64,
    nd: Option<NdHook>,
    icmp_limit: ErrorRateLimit,
    /// The plan of the last `Verdict::Fragment`, until its last fragment is sealed.
    fragment_plan: Option<FragmentPlan>,
    /// Whether packets of AES-CBC SAs are sealed and opened in bursts ([`Pipeline::crypto_in_bursts`]).
    burst_crypto: bool,
    /// The frame just handled, if it was left unsealed.
    unsealed: Option<Unsealed>,
    /// The frame just handled, if it waits to be opened.
    unopened: Option<Unopened>,
}

/// The flow of the IP packet at the start of `pkt`.
#[inline(always)]
fn flow_of(pkt: &[u8]) -> Result<Flow, Reason> {
    Flow::of(pkt).map_err(|_| Reason::Gateway(GatewayDrop::MalformedIp))
}

fn is_neighbour_discovery(flow: &Flow) -> bool {
    // ICMPv6 types 133-137 (RFC 4861): router/neighbour solicitation and advertisement, redirect.
    flow.proto == proto::ICMPV6 && matches!(flow.ports, Some((tc, _)) if (133..=137).contains(&(tc >> 8)))
}

impl Pipeline {
    pub fn new(reader: Reader, setup: Arc<Setup>, shared: &Shared, counters: Arc<LcoreCounters>) -> Pipeline {
        let neighbours = NeighbourCache::new(shared.neighbours.clone(), setup.neighbours.clone());
        let local = local_addresses(&setup);
        let icmp_limit = ErrorRateLimit::new(setup.icmp_errors_per_sec);
        let classifier = Classifier::compile(&reader.spd());
        Pipeline {
            reader,
            setup,
            classifier,
            spd_cache: SpdFlowCache::default(),
            sas: SaCache::new(shared.sas.clone()),
            neighbours,
            counters,
            now_ns: now_ns(),
            solicit: Vec::new(),
            last_solicit: HashMap::new(),
            last_acquire: HashMap::new(),
            unknown_spi: UnknownSpiLimit::new(RETRY_NS),
            local,
            sa_traffic: RoundTraffic::default(),
            next_sa_flush_ns: 0,
            nd: shared.nd.clone().map(NdHook::new),
            icmp_limit,
            fragment_plan: None,
            burst_crypto: false,
            unsealed: None,
            unopened: None,
        }
    }

    /// From now on, packets of SAs whose transform works `in_bursts` (AES-CBC) stop at the cipher
    /// ([`burst_crypto`](super::burst_crypto)). After each frame the caller takes what
    /// [`take_unsealed`](Self::take_unsealed) and [`take_unopened`](Self::take_unopened) say of
    /// it; once the burst is in, it opens the unopened frames ([`to_open`](Self::to_open),
    /// [`open_burst`](Self::open_burst)), finishes those ([`resume_opened`](Self::resume_opened))
    /// and seals the unsealed ones ([`to_seal`](Self::to_seal), [`seal_burst`](Self::seal_burst)),
    /// before it sends any frame of the burst.
    pub fn crypto_in_bursts(&mut self) {
        self.burst_crypto = true;
    }

    /// Whether the frame just handled was left unsealed (each call forgets it). Such a frame must
    /// be sealed ([`to_seal`](Self::to_seal)) before it is sent.
    #[inline]
    pub fn take_unsealed(&mut self) -> Option<Unsealed> {
        self.unsealed.take()
    }

    /// The frame just handled, if its verdict was [`Verdict::Open`] (each call forgets it).
    #[inline]
    pub fn take_unopened(&mut self) -> Option<Unopened> {
        self.unopened.take()
    }

    /// The packet of a frame left unsealed, for [`seal_burst`](Self::seal_burst): `frame` is the
    /// frame, `u` what [`take_unsealed`](Self::take_unsealed) said of it. `None` (counted as a
    /// drop) if its SA is gone or the frame is shorter than its ESP packet: the frame must not be
    /// sent.
    #[inline]
    pub fn to_seal<'a>(&'a self, frame: &'a mut [u8], u: &Unsealed) -> Option<BurstPacket<'a>> {
        let packet = u.burst_packet(&self.sas, frame);
        if packet.is_none() {
            self.counters.count_drop(crate::DropReason::SealFailed.into());
        }
        packet
    }

    /// Seals the packets of frames left unsealed in this round ([`to_seal`](Self::to_seal));
    /// returns for each whether it was sealed (one that was not is counted as a drop and must not
    /// be sent).
    pub fn seal_burst(&self, pending: &mut [BurstPacket<'_>]) -> BurstVec<bool> {
        let sealed = Transform::seal_burst(pending);
        for _ in sealed.iter().filter(|ok| !**ok) {
            self.counters.count_drop(crate::DropReason::SealFailed.into());
        }
        sealed
    }

    /// The packet of a frame waiting to be opened, for [`open_burst`](Self::open_burst), as
    /// [`to_seal`](Self::to_seal); `None` if its SA is gone (pass `None` to
    /// [`resume_opened`](Self::resume_opened)).
    #[inline]
    pub fn to_open<'a>(&'a self, frame: &'a mut [u8], u: &Unopened) -> Option<BurstPacket<'a>> {
        u.burst_packet(&self.sas, frame)
    }

    /// Opens the packets of frames of this round that wait for it ([`to_open`](Self::to_open));
    /// returns each one's result, for [`resume_opened`](Self::resume_opened).
    pub fn open_burst(&self, pending: &mut [BurstPacket<'_>]) -> BurstVec<Result<(), OpenError>> {
        Transform::open_burst(pending)
    }

    /// Finishes a frame that waited to be opened, given what opening it gave (`None`: its SA is
    /// gone): the rest of the inbound path, as for any ESP packet. Returns its final verdict.
    pub fn resume_opened<B: PacketBuf>(&mut self, pkt: &mut B, u: &Unopened, opened: Option<Result<(), OpenError>>) -> Verdict {
        let decapsulated = match (opened, self.sas.prepared_inbound(u.sa)) {
            (Some(Ok(())), Some(sa)) => finish_opened(sa, &u.loc, pkt, u.seq),
            (Some(Err(e)), _) => Err(open_error(e)),
            _ => return self.account(Verdict::Drop(GatewayDrop::SaChanged.into())),
        };
        let verdict = self.decapsulated(u.sa, pkt, u.src_mac, u.len, decapsulated).unwrap_or_else(Verdict::Drop);
        self.account(verdict)
    }

    pub fn counters(&self) -> &LcoreCounters {
        &self.counters
    }

    /// Call before each round of bursts: picks up a new SPD snapshot and learned neighbours.
    pub fn begin_round(&mut self) {
        let view = self.reader.spd();
        if view.version != self.classifier.version() {
            self.classifier = Classifier::compile(&view);
        }
        self.neighbours.refresh();
        self.now_ns = now_ns();
        if let Some(nd) = &mut self.nd {
            nd.age_step(self.now_ns);
        }
    }

    /// Call after each round: the lcore holds nothing from the region's SPD any more (QSBR).
    pub fn end_round(&mut self) {
        self.publish_replay_tops();
        if self.now_ns >= self.next_sa_flush_ns {
            self.next_sa_flush_ns = self.now_ns + SA_FLUSH_NS;
            let (reader, now_ns) = (&self.reader, self.now_ns);
            self.sa_traffic.drain(|h, packets, bytes| add_sa_traffic(reader, h, packets, bytes, now_ns));
        }
        self.reader.quiescent();
        // Every frame of the round has been sealed or dropped.
        self.sas.release_replaced();
    }

    /// Records in the region, for each inbound SA, the highest sequence number accepted since
    /// the last call that is not there yet (`RoundTraffic`: once per SA and TX burst, not per
    /// packet, which on an SA that several lcores receive would take the line from the others
    /// every time). Call before any frame handled since leaves: a restarted dataplane starts the
    /// SA's anti-replay window at its `replay_top`, so no packet this one forwarded is new to it.
    pub fn publish_replay_tops(&mut self) {
        let reader = &self.reader;
        self.sa_traffic.take_replay_tops(|h, seq| {
            if reader.sad().is_current(h) {
                reader.runtime(h).raise_replay_top(seq);
            }
        });
    }

    /// Counts one packet of `bytes` for the SA behind `h` (added to the region within
    /// SA_FLUSH_NS). An inbound packet's number `seq` is recorded now or by the next
    /// [`Self::publish_replay_tops`].
    #[inline(always)]
    fn count_sa(&mut self, h: SaHandle, bytes: u64, seq: Option<u64>) {
        let (reader, now_ns) = (&self.reader, self.now_ns);
        let record_now = self.sa_traffic.count(h, bytes, seq, |old, packets, bytes| add_sa_traffic(reader, old, packets, bytes, now_ns));
        if let (true, Some(seq)) = (record_now, seq) {
            reader.runtime(h).raise_replay_top(seq);
        }
    }

    /// Next hops the I/O loop should send a solicitation for.
    pub fn take_solicitations(&mut self) -> Vec<(Side, IpAddr)> {
        std::mem::take(&mut self.solicit)
    }

    /// Builds, into `pkt` (empty, with room for 90 bytes), the request for the link-layer address
    /// of `target` on `side`: an ARP request (RFC 826) for IPv4, a Neighbor Solicitation
    /// (RFC 4861 7.2.2) for IPv6. False if the side has no address of the target's family.
    pub fn solicitation<B: PacketBuf>(&self, side: Side, target: IpAddr, pkt: &mut B) -> bool {
        let s = self.setup.side(side);
        let l2 = Frame::len_for(s.vlan);
        // RFC 4861 7.2.2: a source on the target's link if there is one, else any of ours.
        match (target, self.source_address(side, target)) {
            (IpAddr::V4(target), Some(IpAddr::V4(ours))) => {
                if !pkt.append(l2 + super::ether::ARP_LEN) {
                    return false;
                }
                let data = pkt.data_mut();
                Frame::emit(&mut data[..l2], Mac::BROADCAST, s.mac, s.vlan, ETHERTYPE_ARP);
                let arp = Arp { op: super::ether::ARP_REQUEST, sender_mac: s.mac, sender_ip: ours, target_mac: Mac::default(), target_ip: target };
                arp.emit(&mut data[l2..]);
                true
            }
            (IpAddr::V6(target), Some(IpAddr::V6(ours))) => {
                if !pkt.append(l2 + neighbour_solicitation::PACKET_LEN) {
                    return false;
                }
                let data = pkt.data_mut();
                let group = neighbour_solicitation::solicited_node(target);
                Frame::emit(&mut data[..l2], neighbour_solicitation::multicast_mac(group), s.mac, s.vlan, ETHERTYPE_IPV6);
                let mut packet = [0u8; neighbour_solicitation::PACKET_LEN];
                neighbour_solicitation::emit(&mut packet, ours, s.mac, target);
                data[l2..].copy_from_slice(&packet);
                true
            }
            _ => false,
        }
    }

    /// A frame received on the port of `side`.
    pub fn from_port<B: PacketBuf>(&mut self, side: Side, pkt: &mut B) -> Verdict {
        bump(&self.counters.rx, 1);
        let verdict = self.port_frame(side, pkt).unwrap_or_else(Verdict::Drop);
        self.account(verdict)
    }

    /// A frame the kernel sent on the exception interface of `side`.
    pub fn from_host<B: PacketBuf>(&mut self, side: Side, pkt: &mut B) -> Verdict {
        bump(&self.counters.from_host, 1);
        let verdict = self.host_frame(side, pkt).unwrap_or_else(Verdict::Drop);
        self.account(verdict)
    }

    fn account(&self, verdict: Verdict) -> Verdict {
        match verdict {
            Verdict::Drop(reason) => self.counters.count_drop(reason),
            Verdict::Exception(_) => bump(&self.counters.exception, 1),
            Verdict::Transmit(_) | Verdict::Fragment | Verdict::Open => {}
        }
        verdict
    }

    /// One step of the last [`Verdict::Fragment`]: cuts the first fragment off the packet in
    /// `pkt` (RFC 791), moves the rest into `rest` (an empty buffer) and seals the fragment.
    /// Returns the fragment's verdict and whether `rest` now holds the rest, to pass in as the
    /// next step's `pkt`; the last piece, which fits, is sealed as it is.
    pub fn next_fragment<B: PacketBuf, R: PacketBuf>(&mut self, pkt: &mut B, rest: &mut R) -> (Verdict, bool) {
        let Some(plan) = self.fragment_plan else {
            return (self.account(Verdict::Drop(GatewayDrop::MtuExceeded.into())), false);
        };
        let split = ipv4_fragment::split(pkt, rest, plan.max_len);
        let more = split.is_ok();
        if !more {
            self.fragment_plan = None;
        }
        match split {
            Ok(()) | Err(SplitError::Fits) => {}
            Err(SplitError::NoRoom) => return (self.account(Verdict::Drop(GatewayDrop::NoBuffer.into())), false),
            Err(_) => return (self.account(Verdict::Drop(GatewayDrop::MtuExceeded.into())), false),
        }
        bump(&self.counters.fragments, 1);
        let verdict = self.seal(plan.sa, pkt, None, false).unwrap_or_else(Verdict::Drop);
        (self.account(verdict), more)
    }

    fn port_frame<B: PacketBuf>(&mut self, side: Side, pkt: &mut B) -> Result<Verdict, Reason> {
        let frame = Frame::parse(pkt.data()).ok_or(GatewayDrop::MalformedFrame)?;
        if frame.vlan != self.setup.side(side).vlan {
            return Err(GatewayDrop::WrongVlan.into());
        }
        pkt.adj(frame.header_len);
        match frame.ethertype {
            ETHERTYPE_ARP => {
                let arp = Arp::parse(pkt.data()).ok_or(GatewayDrop::MalformedFrame)?;
                if self.on_link(side, arp.sender_ip.into()) {
                    self.neighbours.learn(side, arp.sender_ip.into(), arp.sender_mac);
                }
                self.frame_for_host(side, frame.src, ETHERTYPE_ARP, pkt)
            }
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
                let flow = flow_of(pkt.data())?;
                if side == Side::Protected {
                    // Most such packets are classified; their flow's entry is rarely in L1 when
                    // there are many flows (BENCHMARKS.md, "Fifteenth session").
                    self.spd_cache.prefetch(&self.classifier, Direction::Out, &flow);
                }
                if is_neighbour_discovery(&flow) {
                    let src = flow.src.ip();
                    if !src.is_unspecified() && self.on_link(side, src) {
                        self.neighbours.learn(side, src, frame.src);
                    }
                    return self.frame_for_host(side, frame.src, frame.ethertype, pkt);
                }
                match side {
                    Side::Unprotected => self.unprotected_ingress(pkt, frame.src, &flow),
                    Side::Protected => match self.local_side(flow.dst, Some(side)) {
                        Some(local) => self.frame_for_host(local, frame.src, frame.ethertype, pkt),
                        None => self.outbound(pkt, &flow, Origin::Port(Side::Protected)),
                    },
                }
            }
            _ => Err(GatewayDrop::UnsupportedEthertype.into()),
        }
    }

    fn host_frame<B: PacketBuf>(&mut self, side: Side, pkt: &mut B) -> Result<Verdict, Reason> {
        let frame = Frame::parse(pkt.data()).ok_or(GatewayDrop::MalformedFrame)?;
        pkt.adj(frame.header_len);
        let passthrough = |this: &mut Self, pkt: &mut B| this.frame_for_port(side, frame.dst, frame.ethertype, pkt);
        match frame.ethertype {
            ETHERTYPE_ARP => passthrough(self, pkt),
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
                let flow = flow_of(pkt.data())?;
                if is_neighbour_discovery(&flow) {
                    return passthrough(self, pkt);
                }
                match self.spd_cache.classify(&self.classifier, Direction::Out, &flow) {
                    // The gateway's own traffic (IKE, ICMP) needs no rule; a protect rule
                    // still applies to it.
                    None => passthrough(self, pkt),
                    Some(_) => self.outbound(pkt, &flow, Origin::Host),
                }
            }
            _ => Err(GatewayDrop::UnsupportedEthertype.into()),
        }
    }

    /// Traffic arriving on the unprotected port.
    fn unprotected_ingress<B: PacketBuf>(&mut self, pkt: &mut B, src_mac: Mac, flow: &Flow) -> Result<Verdict, Reason> {
        let local = self.local_side(flow.dst, Some(Side::Unprotected));
        let encap = flow.proto == proto::UDP && matches!(flow.ports, Some((_, d)) if self.setup.encap_ports.contains(&d));
        if local.is_some() && (flow.proto == proto::ESP || encap) {
            return self.inbound_esp(pkt, src_mac);
        }
        // Cleartext: RFC 4301 5.2, it must match an inbound bypass rule; for a protect rule,
        // negotiation discovery ([MS-IKEE] 3.7.4.2) may accept it.
        let matched = self.spd_cache.classify(&self.classifier, Direction::In, flow);
        let nd_accepts = match (&mut self.nd, matched) {
            (Some(nd), Some(m)) if matches!(m.decision, Decision::Protect { .. }) => {
                nd.inbound_cleartext(m.policy_id, m.flags, flow, self.now_ns) == InboundVerdict::Accept
            }
            _ => false,
        };
        let verdict = match (matched.map(|m| m.decision), local) {
            (Some(Decision::Bypass), _) | (None, Some(_)) => None,
            (Some(Decision::Protect { .. }), _) if nd_accepts => None,
            (Some(Decision::Discard), _) => Some(GatewayDrop::PolicyDiscard),
            (Some(Decision::Protect { .. }), _) => Some(GatewayDrop::CleartextForProtected),
            (None, None) => Some(GatewayDrop::NoPolicy),
        };
        if let Some(drop) = verdict {
            return Err(drop.into());
        }
        let ethertype = ethertype_of(pkt.data());
        match local {
            Some(side) => self.frame_for_host(side, src_mac, ethertype, pkt),
            None => {
                let origin = Origin::Port(Side::Unprotected);
                if let Some(error) = self.hop(pkt, origin)? {
                    return Ok(error);
                }
                bump(&self.counters.bypassed, 1);
                self.route(pkt, flow.dst, Some(origin))
            }
        }
    }

    fn inbound_esp<B: PacketBuf>(&mut self, pkt: &mut B, src_mac: Mac) -> Result<Verdict, Reason> {
        let loc = match classify(pkt.data(), &self.setup.encap_ports)? {
            Classified::Ike => return self.frame_for_host(Side::Unprotected, src_mac, ethertype_of(pkt.data()), pkt),
            Classified::Keepalive => return Err(GatewayDrop::Keepalive.into()),
            Classified::Esp(loc) => loc,
        };
        let h = match self.reader.lookup(loc.spi, &loc.dst(pkt.data()).into()) {
            Ok(Some(h)) => h,
            Ok(None) => {
                // Rate-limited (event_limit); the drop itself is always counted.
                if self.unknown_spi.allow(loc.spi, self.now_ns) {
                    let (src, dst) = (loc.src(pkt.data()), loc.dst(pkt.data()));
                    let _ = self.reader.emit(&Event::UnknownSpi { sa: SaKey { spi: loc.spi, dst }, src });
                }
                return Err(crate::DropReason::UnknownSpi.into());
            }
            Err(_) => return Err(GatewayDrop::SaChanged.into()),
        };
        let sa = self.sas.inbound(&self.reader, h)?;
        let len = pkt.len() as u64;
        let decapsulated = if self.burst_crypto && sa.transform.opens_in_bursts() {
            match check_sequence(sa, &loc, pkt) {
                Ok(seq) => {
                    self.unopened = Some(Unopened { sa: h, loc, seq, src_mac, len });
                    return Ok(Verdict::Open);
                }
                Err(reason) => Err(reason),
            }
        } else {
            decapsulate(sa, &loc, pkt)
        };
        self.decapsulated(h, pkt, src_mac, len, decapsulated)
    }

    /// The inbound path after decapsulation under the SA `h` of a packet of `len` bytes. Inlined:
    /// called, it read the result it was passed right after its caller wrote it, a
    /// store-forwarding stall on a sixth of its samples (BENCHMARKS.md, "Twelfth session").
    #[inline]
    fn decapsulated<B: PacketBuf>(&mut self, h: SaHandle, pkt: &mut B, src_mac: Mac, len: u64, decapsulated: Result<Decapsulated, crate::DropReason>) -> Result<Verdict, Reason> {
        let decapsulated = match decapsulated {
            Ok(d) => d,
            Err(reason) => {
                if let Some(d) = reason.sa_drop() {
                    self.reader.runtime(h).count_drops(d, 1);
                }
                return Err(reason.into());
            }
        };
        self.count_sa(h, len, Some(decapsulated.seq));
        bump(&self.counters.decrypted, 1);
        let flow = &decapsulated.flow;
        if let Some(nd) = &mut self.nd {
            nd.inbound_protected(&self.reader, h, flow, self.now_ns);
        }
        match self.local_side(flow.dst, None) {
            Some(side) => self.frame_for_host(side, src_mac, ethertype_of(pkt.data()), pkt),
            None => {
                if let Some(error) = self.hop(pkt, Origin::Decrypted)? {
                    return Ok(error);
                }
                self.route(pkt, flow.dst, Some(Origin::Decrypted))
            }
        }
    }

    /// Outbound SPD processing of a cleartext packet: forwarded from the protected port, the
    /// gateway's own, or its ICMP error about a packet that came out of an SA (never cleartext).
    fn outbound<B: PacketBuf>(&mut self, pkt: &mut B, flow: &Flow, origin: Origin) -> Result<Verdict, Reason> {
        let matched = self.spd_cache.classify(&self.classifier, Direction::Out, flow);
        // The single decision point where negotiation discovery ([MS-IKEE] 3.7) will plug in.
        let decision = self.outbound_decision(matched, flow)?;
        let transit = origin == Origin::Port(Side::Protected);
        if transit && !matches!(decision, Decision::Discard) {
            if let Some(error) = self.hop(pkt, origin)? {
                return Ok(error);
            }
        }
        match decision {
            Decision::Bypass => {
                bump(&self.counters.bypassed, 1);
                self.route(pkt, flow.dst, Some(origin))
            }
            Decision::Discard => Err(GatewayDrop::PolicyDiscard.into()),
            Decision::Protect { reqid } => {
                let h = self.reader.outbound(reqid).map_err(|_| GatewayDrop::SaChanged)?;
                // Negotiation discovery rules: [MS-IKEE] 3.7.4.1 (its ACQUIREs are its own).
                if let (Some(nd), Some(m)) = (&mut self.nd, matched.filter(Matched::nd_outbound)) {
                    match nd.outbound(&self.reader, m.policy_id, m.flags, flow, h, self.now_ns) {
                        OutboundVerdict::SendClear if origin == Origin::Decrypted => {
                            return Err(GatewayDrop::IcmpErrorUnprotected.into());
                        }
                        OutboundVerdict::SendClear => {
                            bump(&self.counters.bypassed, 1);
                            return self.route(pkt, flow.dst, Some(origin));
                        }
                        OutboundVerdict::Hold => return Err(GatewayDrop::NoSa.into()),
                        OutboundVerdict::Encapsulate | OutboundVerdict::Rfc4301 => {}
                    }
                }
                let h = match h {
                    Some(h) => h,
                    None => {
                        if let Some(m) = matched {
                            self.acquire(&m, flow);
                        }
                        return Err(GatewayDrop::NoSa.into());
                    }
                };
                self.seal(h, pkt, Some(origin), self.burst_crypto)
            }
        }
    }

    /// Encrypts `pkt` with the outbound SA `h` and routes it. With an `mtu_check`, a packet too
    /// large for the SA is not sent (RFC 4301 8.2.1): an IPv4 packet without DF in tunnel mode
    /// is fragmented first (`Verdict::Fragment`), others get the path MTU error.
    /// With `defer` (and [`Pipeline::crypto_in_bursts`]), a packet whose SA works in bursts is left
    /// unsealed for the I/O loop.
    fn seal<B: PacketBuf>(&mut self, h: SaHandle, pkt: &mut B, mtu_check: Option<Origin>, defer: bool) -> Result<Verdict, Reason> {
        let (sa, seq) = self.sas.outbound(&self.reader, h)?;
        if let Some(origin) = mtu_check {
            // (The sequence number just taken stays unused: a gap, which the receiver's window
            // accepts.)
            if let Some(largest) = exceeds_mtu(sa, pkt.data(), usize::from(self.setup.unprotected.mtu)) {
                let fragmentable = sa.mode == Mode::Tunnel && Ipv4Packet::new_checked(pkt.data()).is_ok_and(|p| !p.dont_fragment());
                if fragmentable {
                    self.fragment_plan = Some(FragmentPlan { sa: h, max_len: largest });
                    return Ok(Verdict::Fragment);
                }
                return self.too_big(pkt, largest, origin);
            }
        }
        let (runtime, dst) = (self.reader.runtime(h), sa.dst);
        let encapsulated = if defer { encapsulate_unsealed(sa, seq, pkt) } else { encapsulate(sa, seq, pkt).map(|()| None) };
        match encapsulated {
            Err(reason) => {
                if let Some(d) = reason.sa_drop() {
                    runtime.count_drops(d, 1);
                }
                return Err(reason.into());
            }
            Ok(Some(esp_at)) => self.unsealed = Some(Unsealed::new(h, seq, pkt.len() - esp_at)),
            Ok(None) => {}
        }
        self.count_sa(h, pkt.len() as u64, None);
        bump(&self.counters.encrypted, 1);
        self.route(pkt, dst.into(), None)
    }

    /// The outbound decision for a flow, given the rule that matched (if any). Transit traffic
    /// that matches no rule is discarded (RFC 4301 4.4.1: the SPD's default).
    fn outbound_decision(&self, matched: Option<Matched>, _flow: &Flow) -> Result<Decision, Reason> {
        matched.map(|m| m.decision).ok_or(GatewayDrop::NoPolicy.into())
    }

    fn acquire(&mut self, m: &Matched, flow: &Flow) {
        let last = self.last_acquire.entry(m.policy_id).or_insert(0);
        if self.now_ns.saturating_sub(*last) < RETRY_NS {
            return;
        }
        *last = self.now_ns;
        let (src_port, dst_port) = flow.ports.unwrap_or((0, 0));
        let flags = ExchangeInfoFlags { nd_boundary: m.boundary(), guarantee_encryption: m.guaranteed_encryption() };
        let flow = FlowTuple { src: flow.src.ip(), dst: flow.dst.ip(), proto: flow.proto, src_port, dst_port };
        // A full ring is counted by the region; the next packet retries after RETRY_NS.
        let _ = self.reader.emit(&Event::Acquire { policy_id: m.policy_id, flow, flags });
    }

    /// Decrements the TTL or hop limit of a packet being forwarded. When it expires (RFC 1812
    /// 5.3.1, RFC 4443 3.3), the packet becomes the time-exceeded error to its sender: its verdict.
    fn hop<B: PacketBuf>(&mut self, pkt: &mut B, origin: Origin) -> Result<Option<Verdict>, Reason> {
        match decrement_ttl(pkt.data_mut()) {
            Err(Reason::Gateway(GatewayDrop::TtlExpired)) => {
                self.icmp_error(pkt, IcmpError::TimeExceeded, GatewayDrop::TtlExpired, origin).map(Some)
            }
            other => other.map(|()| None),
        }
    }

    /// A packet larger than `mtu`, the most its path carries. IPv6, and IPv4 with DF set, get the
    /// path MTU error (RFC 1191, RFC 4443 3.2). IPv4 without DF here (cleartext, or transport
    /// mode) would need fragmenting, which the gateway does only under a tunnel-mode SA, and IPv6
    /// below the minimum MTU fragmenting under IPv6 (RFC 8200 5): both are dropped and counted.
    fn too_big<B: PacketBuf>(&mut self, pkt: &mut B, mtu: usize, origin: Origin) -> Result<Verdict, Reason> {
        let ip = pkt.data();
        let signalled = match ip.first().map(|b| b >> 4) {
            Some(4) => ip.get(6).is_some_and(|flags| flags & 0x40 != 0),
            _ => mtu >= icmp_error::IPV6_MIN_MTU,
        };
        if !signalled {
            return Err(GatewayDrop::MtuExceeded.into());
        }
        let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
        self.icmp_error(pkt, IcmpError::TooBig { mtu }, GatewayDrop::MtuExceeded, origin)
    }

    /// Answers the packet in `pkt`, dropped for `dropped`, with `error` to its sender, within the
    /// lcore's rate. The error leaves as the gateway's own traffic does, through the outbound SPD;
    /// about a packet that came out of an SA, only under ESP.
    fn icmp_error<B: PacketBuf>(&mut self, pkt: &mut B, error: IcmpError, dropped: GatewayDrop, origin: Origin) -> Result<Verdict, Reason> {
        let Some(to) = icmp_error::reportable(pkt.data(), error) else { return Err(dropped.into()) };
        let source = match origin {
            Origin::Port(side) => self.source_address(side, to),
            Origin::Decrypted => self.source_address(Side::Protected, to),
            // The kernel's packet is from one of the gateway's addresses.
            Origin::Host => Some(to),
        };
        let Some(source) = source else { return Err(dropped.into()) };
        if !self.icmp_limit.allow(self.now_ns) {
            bump(&self.counters.icmp_errors_limited, 1);
            return Err(dropped.into());
        }
        if !icmp_error::build(pkt, error, source) {
            return Err(dropped.into());
        }
        self.counters.count_drop(dropped.into());
        let flow = flow_of(pkt.data())?;
        let matched = self.spd_cache.classify(&self.classifier, Direction::Out, &flow);
        let protected = matches!(matched, Some(m) if matches!(m.decision, Decision::Protect { .. }));
        let verdict = match matched {
            _ if origin == Origin::Decrypted && !protected => Err(GatewayDrop::IcmpErrorUnprotected.into()),
            None => self.route(pkt, flow.dst, None),
            // The error is the gateway's own packet (its TTL is not decremented).
            Some(_) => self.outbound(pkt, &flow, if origin == Origin::Decrypted { origin } else { Origin::Host }),
        };
        if matches!(verdict, Ok(Verdict::Transmit(_) | Verdict::Exception(_))) {
            bump(&self.counters.icmp_errors, 1);
        }
        verdict
    }

    /// The gateway's address on `side` to send to `to` from: one on `to`'s subnet if there is
    /// one, else the first of its family.
    fn source_address(&self, side: Side, to: IpAddr) -> Option<IpAddr> {
        let ours = || self.setup.side(side).addresses.iter().filter(|n| n.addr.is_ipv4() == to.is_ipv4());
        ours().find(|n| n.contains(to)).or_else(|| ours().next()).map(|n| n.addr)
    }

    /// Routes the IP packet in `pkt` to `dst`, its destination, and gives it its Ethernet header.
    /// The caller knows `dst` from the header it just parsed or wrote (read back from the packet,
    /// it would stall on store forwarding). A packet too big for the port it leaves on gets an
    /// ICMP error if it was forwarded in cleartext (`origin`).
    fn route<B: PacketBuf>(&mut self, pkt: &mut B, dst: FlowAddr, origin: Option<Origin>) -> Result<Verdict, Reason> {
        if let Some(side) = self.local_side(dst, None) {
            let mac = self.setup.side(side).mac;
            return self.frame_for_host(side, mac, ethertype_of(pkt.data()), pkt);
        }
        let (side, next_hop) = self.setup.routes.lookup(dst).ok_or(GatewayDrop::NoRoute)?;
        let mtu = self.setup.side(side).mtu;
        if exceeds(pkt.data(), mtu) {
            return match origin {
                Some(origin) => self.too_big(pkt, usize::from(mtu), origin),
                None => Err(GatewayDrop::MtuExceeded.into()),
            };
        }
        let Some(mac) = self.neighbours.lookup(side, next_hop) else {
            let next_hop = next_hop.ip();
            let last = self.last_solicit.entry((side, next_hop)).or_insert(0);
            if self.now_ns.saturating_sub(*last) >= RETRY_NS {
                *last = self.now_ns;
                self.solicit.push((side, next_hop));
            }
            return Err(GatewayDrop::NoNeighbour.into());
        };
        let ethertype = ethertype_of(pkt.data());
        self.frame_for_port(side, mac, ethertype, pkt)
    }

    /// Puts the Ethernet header (and the port's VLAN tag) in front of the payload in `pkt`.
    fn frame_for_port<B: PacketBuf>(&mut self, side: Side, dst: Mac, ethertype: u16, pkt: &mut B) -> Result<Verdict, Reason> {
        let s = self.setup.side(side);
        let l2 = Frame::len_for(s.vlan);
        // Never a frame the port's MTU does not allow (the kernel's included).
        if exceeds(pkt.data(), s.mtu) {
            return Err(GatewayDrop::MtuExceeded.into());
        }
        if !pkt.prepend(l2) {
            return Err(crate::DropReason::NoRoom.into());
        }
        Frame::emit(&mut pkt.data_mut()[..l2], dst, s.mac, s.vlan, ethertype);
        Ok(Verdict::Transmit(side))
    }

    /// Gives the payload in `pkt` an untagged Ethernet header addressed to the exception
    /// interface (which carries the port's MAC).
    fn frame_for_host<B: PacketBuf>(&mut self, side: Side, src: Mac, ethertype: u16, pkt: &mut B) -> Result<Verdict, Reason> {
        let l2 = Frame::len_for(None);
        if !pkt.prepend(l2) {
            return Err(crate::DropReason::NoRoom.into());
        }
        Frame::emit(&mut pkt.data_mut()[..l2], self.setup.side(side).mac, src, None, ethertype);
        Ok(Verdict::Exception(side))
    }

    /// The side whose exception interface takes packets for `dst`: one of our addresses, or a
    /// broadcast or multicast address on the side the packet `arrived` on. The address is matched
    /// by reference in its own width: copying a just-parsed `IpAddr` whole reads it back across
    /// the narrower stores that wrote it, a store-forwarding stall per packet.
    fn local_side(&self, dst: FlowAddr, arrived: Option<Side>) -> Option<Side> {
        self.local.side_of(dst).or_else(|| arrived.filter(|_| dst.ip().is_multicast()))
    }

    fn on_link(&self, side: Side, ip: IpAddr) -> bool {
        self.setup.side(side).addresses.iter().any(|n| n.contains(ip))
    }
}

/// Adds traffic to the counters of the SA behind `h`, unless its slot holds another SA by now (the
/// traffic of an SA deleted since is dropped, never counted for its successor). Called inside a
/// round, before `quiescent`.
fn add_sa_traffic(reader: &Reader, h: SaHandle, packets: u64, bytes: u64, now_ns: u64) {
    if reader.sad().is_current(h) {
        reader.runtime(h).count(packets, bytes, now_ns);
    }
}

/// The gateway's own addresses per side, with the IPv4 subnet and limited broadcast addresses
/// of its subnets (not on /31 and /32 point-to-point links), in the order sides are checked.
#[derive(Debug, Default)]
struct LocalAddresses {
    addresses: Vec<(FlowAddr, Side)>,
    /// A bit for each last byte among `addresses`: most packets are for none of them, and one
    /// bit test says so without a scan (it is asked two or three times a packet).
    last_bytes: [u64; 4],
}

impl LocalAddresses {
    fn add(&mut self, addr: FlowAddr, side: Side) {
        self.addresses.push((addr, side));
        let last = addr.0 as u8;
        self.last_bytes[usize::from(last >> 6)] |= 1 << (last & 63);
    }

    /// The side of `dst`, if it is one of the addresses (the first side that has it).
    fn side_of(&self, dst: FlowAddr) -> Option<Side> {
        let last = dst.0 as u8;
        if self.last_bytes[usize::from(last >> 6)] >> (last & 63) & 1 == 0 {
            return None;
        }
        self.addresses.iter().find(|(a, _)| *a == dst).map(|&(_, side)| side)
    }
}

fn local_addresses(setup: &Setup) -> LocalAddresses {
    let mut local = LocalAddresses::default();
    for side in [Side::Protected, Side::Unprotected] {
        for net in &setup.side(side).addresses {
            local.add(net.addr.into(), side);
            if let (IpAddr::V4(a), true) = (net.addr, net.len < 31) {
                let subnet_broadcast = Ipv4Addr::from(u32::from(a) | u32::MAX >> net.len);
                local.add(subnet_broadcast.into(), side);
                local.add(Ipv4Addr::BROADCAST.into(), side);
            }
        }
    }
    local
}

/// Whether the IP packet at the start of `ip` is longer than `mtu` (any link-layer padding
/// behind it aside; an ARP packet never is).
fn exceeds(ip: &[u8], mtu: u16) -> bool {
    let mtu = usize::from(mtu);
    let ip_len = match (ip.first().map(|b| b >> 4), ip.get(2..6)) {
        (Some(4), Some(l)) => usize::from(u16::from_be_bytes([l[0], l[1]])),
        (Some(6), Some(l)) => ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([l[2], l[3]])),
        _ => ip.len(),
    };
    ip.len() > mtu && ip_len > mtu
}

fn ethertype_of(ip: &[u8]) -> u16 {
    if ip.first().map(|b| b >> 4) == Some(6) {
        ETHERTYPE_IPV6
    } else {
        ETHERTYPE_IPV4
    }
}

/// Decrements the TTL or hop limit of a forwarded packet (RFC 1812 5.3.1, RFC 8200 3).
fn decrement_ttl(ip: &mut [u8]) -> Result<(), Reason> {
    let expired = Reason::Gateway(GatewayDrop::TtlExpired);
    match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= 20 => {
            if ip[8] <= 1 {
                return Err(expired);
            }
            let old = [ip[8], ip[9]];
            ip[8] -= 1;
            let sum = checksum::update(u16::from_be_bytes([ip[10], ip[11]]), &old, &[ip[8], ip[9]]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            Ok(())
        }
        Some(6) if ip.len() >= 40 => {
            if ip[7] <= 1 {
                return Err(expired);
            }
            ip[7] -= 1;
            Ok(())
        }
        _ => Err(GatewayDrop::MalformedIp.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_are_found_by_value_not_by_last_byte() {
        let mut local = LocalAddresses::default();
        let a = |s: &str| s.parse::<FlowAddr>().unwrap();
        local.add(a("198.18.1.1"), Side::Protected);
        local.add(a("198.18.0.1"), Side::Unprotected);
        local.add(a("2001:db8::1"), Side::Unprotected);
        local.add(a("255.255.255.255"), Side::Protected);
        assert_eq!(local.side_of(a("198.18.1.1")), Some(Side::Protected));
        assert_eq!(local.side_of(a("198.18.0.1")), Some(Side::Unprotected));
        assert_eq!(local.side_of(a("2001:db8::1")), Some(Side::Unprotected));
        assert_eq!(local.side_of(a("255.255.255.255")), Some(Side::Protected));
        // The same last byte as an address of ours, or of the broadcast address, is not enough.
        assert_eq!(local.side_of(a("198.18.2.1")), None);
        assert_eq!(local.side_of(a("198.18.2.255")), None);
        assert_eq!(local.side_of(a("::ffff:0:1")), None);
        // Nor is any other address.
        assert_eq!(local.side_of(a("198.18.1.2")), None);
    }
}
