//! The IKE daemon: a mio loop doing the I/O (UDP sockets on ports 500 and 4500 with the RFC 3948
//! non-ESP marker on 4500, a management socket), the sans-IO engines on worker threads
//! (`shards`, so that Diffie-Hellman never blocks the loop), and the SA manager writing into the
//! shared region. Inbound SPIs come from the region's `get_spi`; the dataplane's reports of ESP
//! on unknown SPIs become INVALID_SPI notifications.
mod acquire_hold;
pub mod config;
mod management;
mod shards;

use crate::ikev2::{Event, IkeSaInfo, RandomSpis, SpiSource, NAT_KEEPALIVE};
use crate::sa_manager::{Action2Engine, ChildId, ChildLifetimes, SaManager};
use acquire_hold::AcquireHold;
use config::DaemonConfig;
use mio::net::{UdpSocket, UnixListener};
use mio::{Events, Interest, Poll, Token, Waker};
use shards::{Outbound, Shards};
use shared::layout::Capacities;
use shared::ops::Writer;
use shared::policy::SaTemplate;
use shared::region::Region;
use shared::sa::Mode;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const IKE: Token = Token(0);
const NAT_T: Token = Token(1);
const CONTROL: Token = Token(2);
/// An engine has events for the loop.
const WAKE: Token = Token(3);
/// RFC 3948 2.2: IKE on port 4500 starts with four zero bytes; ESP never does.
const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// The loop wakes at least this often.
const MAX_SLEEP: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("shared region: {0}")]
    Region(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// What an ACQUIRE for a peer starts ([`Daemon::acquire_answer`]).
enum AcquireAnswer {
    /// Nothing: an IKE SA with the peer is being set up, or its child SA is.
    Wait,
    /// Another child SA in this established IKE SA (our SPI).
    ChildIn(u64),
    /// A new IKE SA.
    IkeSa,
}

pub(crate) struct Daemon {
    pub config: DaemonConfig,
    pub shards: Shards,
    pub manager: Option<SaManager>,
    acquire_hold: AcquireHold,
    events: mpsc::Receiver<Event>,
    ike: UdpSocket,
    nat_t: UdpSocket,
}

impl Daemon {
    fn receive(&mut self, nat_t: bool, buf: &mut [u8]) {
        loop {
            let socket = if nat_t { &self.nat_t } else { &self.ike };
            let (len, from) = match socket.recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("iked: receive failed: {e}");
                    return;
                }
            };
            let (port, datagram) = if nat_t {
                if buf[..len] == NAT_KEEPALIVE {
                    continue;
                }
                // Anything without the marker is ESP, which the dataplane handles.
                if len < 4 || buf[..4] != NON_ESP_MARKER {
                    continue;
                }
                (self.config.nat_t_port, &buf[4..len])
            } else {
                (self.config.ike_port, &buf[..len])
            };
            let local = SocketAddr::new(self.config.listen, port);
            self.shards.deliver(local, from, datagram);
        }
    }

    fn child_id(ike_spi: u64, inbound_spi: u32) -> ChildId {
        ChildId {
            ike_spi,
            inbound_spi,
        }
    }

    fn handle_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match &event {
                Event::IkeSaEstablished { spi, peer } => {
                    eprintln!("iked: IKE SA {spi:016x} with {peer} established")
                }
                Event::IkeSaFailed { spi, peer, reason } => {
                    eprintln!("iked: IKE SA {spi:016x} with {peer} failed: {reason}")
                }
                Event::IkeSaDeleted { spi, peer } => {
                    eprintln!("iked: IKE SA {spi:016x} with {peer} deleted")
                }
                Event::ChildSaEstablished(child) => {
                    eprintln!(
                        "iked: child SA in {:08x} out {:08x} with {} ({:?}, encap {:?})",
                        child.inbound_spi, child.outbound_spi, child.peer, child.suite, child.encap
                    );
                    if self.config.log_keys {
                        let hex =
                            |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                        eprintln!(
                            "iked: keys in {:08x} encr={} integ={} out {:08x} encr={} integ={}",
                            child.inbound_spi,
                            hex(&child.inbound.encr),
                            hex(&child.inbound.integ),
                            child.outbound_spi,
                            hex(&child.outbound.encr),
                            hex(&child.outbound.integ)
                        );
                    }
                    if let Some(manager) = &mut self.manager {
                        match manager
                            .install(child)
                            .map(|()| manager.retire_orphans_of(child.remote.ip()))
                        {
                            Err(e) => eprintln!(
                                "iked: installing child SA {:08x} failed: {e}",
                                child.inbound_spi
                            ),
                            Ok(Err(e)) => eprintln!(
                                "iked: removing the previous iked's child SAs with {} failed (tried again with the next child SA): {e}",
                                child.remote.ip()
                            ),
                            Ok(Ok(0)) => {}
                            Ok(Ok(removed)) => eprintln!(
                                "iked: {removed} child SA(s) of the previous iked with {} removed",
                                child.remote.ip()
                            ),
                        }
                    }
                }
                Event::PeerVendor { spi, peer, vendor } => {
                    eprintln!("iked: IKE SA {spi:016x}: {peer} sent vendor ID {vendor}")
                }
                Event::Correlated { spi, original_spi } => {
                    eprintln!("iked: IKE SA {spi:016x} correlated with {original_spi:016x}")
                }
                Event::CorrelationFailed { spi, status } => {
                    eprintln!("iked: IKE SA {spi:016x}: correlation failed, status {status}")
                }
                Event::ServerAddresses { spi, addresses } => {
                    eprintln!("iked: IKE SA {spi:016x}: server addresses {addresses:?}")
                }
                Event::IkeSaRekeyed {
                    old_spi,
                    new_spi,
                    peer,
                } => {
                    eprintln!("iked: IKE SA {old_spi:016x} with {peer} rekeyed to {new_spi:016x}");
                    if let Some(manager) = &mut self.manager {
                        manager.ike_sa_rekeyed(*old_spi, *new_spi);
                    }
                }
                Event::RekeyCollision {
                    ike_spi,
                    child,
                    ours_redundant,
                } => eprintln!(
                    "iked: IKE SA {ike_spi:016x}: simultaneous rekey of {}, ours {}",
                    child.map_or("the IKE SA".to_string(), |spi| format!(
                        "child SA {spi:08x}"
                    )),
                    if *ours_redundant { "redundant" } else { "kept" }
                ),
                Event::InitialContact(contact) => {
                    eprintln!(
                        "iked: IKE SA {:016x} with {}: the peer sent INITIAL_CONTACT (RFC 7296 2.4), its other IKE SAs are stale",
                        contact.spi, contact.peer
                    );
                    // Its engine has deleted its own; the others may hold some too.
                    let home = self.shards.of_spi(contact.spi);
                    for shard in (0..self.shards.count()).filter(|s| *s != home) {
                        let contact = contact.clone();
                        self.shards.post(shard, move |e| {
                            e.apply_initial_contact(Instant::now(), &contact);
                        });
                    }
                }
                Event::DeletedOnInitialContact { spi, peer, by } => eprintln!(
                    "iked: IKE SA {spi:016x} with {peer} deleted without notice: the peer lost it (INITIAL_CONTACT in IKE SA {by:016x})"
                ),
                Event::ChildSaDeleted {
                    ike_spi,
                    inbound_spi,
                    ..
                } => {
                    eprintln!("iked: child SA {inbound_spi:08x} deleted");
                    if let Some(manager) = &mut self.manager {
                        if let Err(e) = manager.remove(Self::child_id(*ike_spi, *inbound_spi)) {
                            eprintln!("iked: removing child SA {inbound_spi:08x} failed: {e}");
                        }
                    }
                }
            }
        }
    }

    fn handle_region_actions(&mut self) {
        let Some(manager) = &mut self.manager else {
            return;
        };
        manager.release_stale_spis(Instant::now());
        for action in manager.poll_actions() {
            match action {
                Action2Engine::Initiate { template, .. } => {
                    let peer = self
                        .config
                        .engine
                        .peers
                        .iter()
                        .find(|p| p.remote_addr == Some(template.dst));
                    let Some(peer) = peer.map(|p| p.name.clone()) else {
                        continue;
                    };
                    let answer = self.acquire_answer(&peer);
                    if !matches!(answer, AcquireAnswer::Wait)
                        && !self.acquire_hold.start(&peer, Instant::now())
                    {
                        continue;
                    }
                    match answer {
                        AcquireAnswer::Wait => {}
                        AcquireAnswer::ChildIn(spi) => {
                            let shard = self.shards.of_spi(spi);
                            self.shards.post(shard, move |e| {
                                e.create_child(Instant::now(), spi);
                            });
                            eprintln!(
                                "iked: ACQUIRE for {}: child SA requested in IKE SA {spi:016x} with {peer}",
                                template.dst
                            );
                        }
                        AcquireAnswer::IkeSa => match self.initiate(&peer) {
                            Ok(spi) => eprintln!(
                                "iked: ACQUIRE for {}: IKE SA {spi:016x} with {peer} initiated",
                                template.dst
                            ),
                            Err(e) => eprintln!("iked: ACQUIRE for {}: {e}", template.dst),
                        },
                    }
                }
                Action2Engine::Delete(id) => {
                    self.shards.post(self.shards.of_spi(id.ike_spi), move |e| {
                        e.terminate_child(Instant::now(), id.ike_spi, id.inbound_spi);
                    });
                }
                Action2Engine::Rekey(id) => {
                    self.shards.post(self.shards.of_spi(id.ike_spi), move |e| {
                        e.rekey_child(Instant::now(), id.ike_spi, id.inbound_spi);
                    });
                }
                // The engine that holds an IKE SA with the peer tells it.
                Action2Engine::InvalidSpi { peer, spi } => {
                    for shard in 0..self.shards.count() {
                        self.shards.post(shard, move |e| {
                            if e.report_invalid_spi(Instant::now(), peer, spi) {
                                eprintln!("iked: ESP from {peer} on unknown SPI {spi:08x}: INVALID_SPI sent");
                            }
                        });
                    }
                }
            }
        }
    }

    /// What an ACQUIRE for `peer` starts. The dataplane repeats it while the SA is missing, so
    /// one IKE SA with a peer at a time (its child SA comes with it); an established IKE SA that
    /// lost its child SAs (deleted by the peer, idle) gets a new one (RFC 7296 1.3.1), which
    /// its engine starts only once.
    fn acquire_answer(&self, peer: &str) -> AcquireAnswer {
        let ike_sas: Vec<IkeSaInfo> = self
            .shards
            .call_all(|e| e.ike_sas())
            .into_iter()
            .flatten()
            .filter(|sa| sa.peer == peer)
            .collect();
        if ike_sas.is_empty() {
            return AcquireAnswer::IkeSa;
        }
        if ike_sas
            .iter()
            .any(|sa| !sa.established || !sa.children.is_empty())
        {
            return AcquireAnswer::Wait;
        }
        AcquireAnswer::ChildIn(ike_sas[0].our_spi())
    }

    /// Tells every engine that an IKE SA with `peer` starts ([`Engine::another_ike_sa_with`]);
    /// returns whether any of them has one already.
    fn another_ike_sa_with(&self, peer: &str) -> bool {
        let peer = peer.to_string();
        self.shards
            .call_all(move |e| e.another_ike_sa_with(&peer))
            .contains(&true)
    }

    /// Installs the trap rules of the peers configured with `trap`.
    fn install_traps(&mut self) -> Result<(), DaemonError> {
        let Some(manager) = &mut self.manager else {
            return Ok(());
        };
        for name in &self.config.trap {
            let Some(peer) = self.config.engine.peers.iter().find(|p| &p.name == name) else {
                continue;
            };
            let Some(remote) = peer.remote_addr else {
                continue;
            };
            let template = SaTemplate {
                mode: Mode::Tunnel,
                src: self.config.listen,
                dst: remote,
            };
            let ids = manager
                .install_trap(&peer.child.local_ts, &peer.child.remote_ts, template)
                .map_err(|e| DaemonError::Region(format!("trap rules for {name}: {e}")))?;
            eprintln!("iked: {} trap rule(s) for {name}", ids.len());
        }
        Ok(())
    }

    pub fn initiate(&mut self, peer: &str) -> Result<u64, String> {
        let remote = self
            .config
            .engine
            .peers
            .iter()
            .find(|p| p.name == peer)
            .and_then(|p| p.remote_addr)
            .ok_or_else(|| format!("no peer {peer:?} with a remote address"))?;
        let local = SocketAddr::new(self.config.listen, self.config.ike_port);
        let remote = SocketAddr::new(remote, self.config.ike_port);
        // RFC 7296 2.4: INITIAL_CONTACT only if no engine has an IKE SA with the peer.
        let first = !self.another_ike_sa_with(peer);
        let peer = peer.to_string();
        let shard = self.shards.next_initiator();
        self.shards
            .call(shard, move |e| {
                let now = Instant::now();
                match first {
                    true => e.initiate(now, &peer, local, remote),
                    false => e.initiate_beside_others(now, &peer, local, remote),
                }
                .map_err(|e| e.to_string())
            })
            .unwrap_or_else(|| Err("the engine did not answer".into()))
    }
}

/// Runs until the process is killed.
pub fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    let bind = |port| {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(config.listen, port))
            .map_err(io(format!("bind {}:{port}", config.listen)))?;
        socket
            .set_nonblocking(true)
            .map_err(io("non-blocking socket"))?;
        Ok::<_, DaemonError>(socket)
    };
    let outbound = Outbound {
        ike: bind(config.ike_port)?,
        nat_t: bind(config.nat_t_port)?,
        nat_t_port: config.nat_t_port,
    };
    let clone = |s: &std::net::UdpSocket| s.try_clone().map_err(io("clone socket"));
    let mut ike = UdpSocket::from_std(clone(&outbound.ike)?);
    let mut nat_t = UdpSocket::from_std(clone(&outbound.nat_t)?);
    let _ = std::fs::remove_file(&config.control_socket);
    let mut control = UnixListener::bind(&config.control_socket)
        .map_err(io(format!("bind {}", config.control_socket.display())))?;
    let mut poll = Poll::new().map_err(io("poll"))?;
    poll.registry()
        .register(&mut ike, IKE, Interest::READABLE)
        .map_err(io("register"))?;
    poll.registry()
        .register(&mut nat_t, NAT_T, Interest::READABLE)
        .map_err(io("register"))?;
    poll.registry()
        .register(&mut control, CONTROL, Interest::READABLE)
        .map_err(io("register"))?;
    let manager = match &config.region {
        Some(path) => {
            let region = Region::open_or_create(path, Capacities::default())
                .map_err(|e| DaemonError::Region(e.to_string()))?;
            let writer =
                Writer::attach(Arc::new(region)).map_err(|e| DaemonError::Region(e.to_string()))?;
            Some(SaManager::new(writer, ChildLifetimes::default()))
        }
        None => None,
    };
    // With a region, inbound SPIs are reserved in it so that the dataplane finds each SA in its
    // SPI's own slot.
    let spis = || -> Box<dyn SpiSource> {
        match &manager {
            Some(manager) => Box::new(manager.spi_source()),
            None => Box::new(RandomSpis),
        }
    };
    let waker = Arc::new(Waker::new(poll.registry(), WAKE).map_err(io("waker"))?);
    let (events_to_loop, engine_events) = mpsc::channel();
    let shards = Shards::start(
        &config.engine,
        config.workers,
        spis,
        &outbound,
        &events_to_loop,
        &waker,
    )
    .map_err(io("engine threads"))?;
    let initiate = config.initiate.clone();
    let mut daemon = Daemon {
        config,
        shards,
        manager,
        acquire_hold: AcquireHold::default(),
        events: engine_events,
        ike,
        nat_t,
    };
    if let Some(manager) = &mut daemon.manager {
        let adopted = manager.adopt_predecessor().map_err(|e| {
            DaemonError::Region(format!("taking over a previous iked's entries: {e}"))
        })?;
        if adopted > 0 {
            eprintln!("iked: {adopted} child SA(s) of a previous iked kept until their peers have new ones or they expire");
        }
    }
    daemon.install_traps()?;
    for peer in initiate {
        if let Err(e) = daemon.initiate(&peer) {
            eprintln!("iked: initiate {peer}: {e}");
        }
    }
    eprintln!(
        "iked: listening on {} ports {} and {}, {} engine threads",
        daemon.config.listen,
        daemon.config.ike_port,
        daemon.config.nat_t_port,
        daemon.shards.count()
    );
    let mut events = Events::with_capacity(64);
    let mut buf = vec![0u8; 65536];
    loop {
        daemon.handle_events();
        if let Err(e) = poll.poll(&mut events, Some(MAX_SLEEP)) {
            if e.kind() != ErrorKind::Interrupted {
                return Err(io("poll")(e));
            }
        }
        for event in events.iter() {
            match event.token() {
                IKE => daemon.receive(false, &mut buf),
                NAT_T => daemon.receive(true, &mut buf),
                CONTROL => management::accept(&mut daemon, &control),
                _ => {}
            }
        }
        daemon.handle_region_actions();
    }
}
