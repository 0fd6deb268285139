//! The IKE daemon: a mio loop around the sans-IO engine, UDP sockets on ports 500 and 4500
//! (RFC 3948 non-ESP marker on 4500), the SA manager writing into the shared region, and a
//! management socket. Inbound SPIs come from the region's `get_spi`; the dataplane's reports of
//! ESP on unknown SPIs become INVALID_SPI notifications. Diffie-Hellman runs on the loop thread
//! (no worker pool yet).
pub mod config;
mod management;

use crate::crypto::SystemRng;
use crate::ikev2::{Engine, Event, RandomSpis, SpiSource, Transmit, NAT_KEEPALIVE};
use crate::sa_manager::{Action2Engine, ChildId, ChildLifetimes, SaManager};
use config::DaemonConfig;
use mio::net::{UdpSocket, UnixListener};
use mio::{Events, Interest, Poll, Token};
use shared::layout::Capacities;
use shared::ops::Writer;
use shared::region::Region;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IKE: Token = Token(0);
const NAT_T: Token = Token(1);
const CONTROL: Token = Token(2);
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

pub(crate) struct Daemon {
    pub config: DaemonConfig,
    pub engine: Engine,
    pub manager: Option<SaManager>,
    ike: UdpSocket,
    nat_t: UdpSocket,
}

impl Daemon {
    fn send(&self, transmit: &Transmit) {
        let result = if transmit.bytes == NAT_KEEPALIVE {
            self.nat_t.send_to(&transmit.bytes, transmit.remote)
        } else if transmit.local.port() == self.config.nat_t_port {
            let mut datagram = NON_ESP_MARKER.to_vec();
            datagram.extend_from_slice(&transmit.bytes);
            self.nat_t.send_to(&datagram, transmit.remote)
        } else {
            self.ike.send_to(&transmit.bytes, transmit.remote)
        };
        if let Err(e) = result {
            eprintln!("iked: send to {} failed: {e}", transmit.remote);
        }
    }

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
            self.engine
                .handle_datagram(Instant::now(), local, from, datagram);
        }
    }

    fn child_id(ike_spi: u64, inbound_spi: u32) -> ChildId {
        ChildId {
            ike_spi,
            inbound_spi,
        }
    }

    fn handle_events(&mut self) {
        while let Some(event) = self.engine.poll_event() {
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
                        if let Err(e) = manager.install(child) {
                            eprintln!(
                                "iked: installing child SA {:08x} failed: {e}",
                                child.inbound_spi
                            );
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
                    if let Some(peer) = peer.map(|p| p.name.clone()) {
                        let local = SocketAddr::new(self.config.listen, self.config.ike_port);
                        let remote = SocketAddr::new(template.dst, self.config.ike_port);
                        if let Err(e) = self.engine.initiate(Instant::now(), &peer, local, remote) {
                            eprintln!("iked: ACQUIRE for {}: {e}", template.dst);
                        }
                    }
                }
                Action2Engine::Delete(id) => {
                    self.engine
                        .terminate_child(Instant::now(), id.ike_spi, id.inbound_spi);
                }
                Action2Engine::Rekey(id) => {
                    self.engine
                        .rekey_child(Instant::now(), id.ike_spi, id.inbound_spi);
                }
                Action2Engine::InvalidSpi { peer, spi } => {
                    if self.engine.report_invalid_spi(Instant::now(), peer, spi) {
                        eprintln!(
                            "iked: ESP from {peer} on unknown SPI {spi:08x}: INVALID_SPI sent"
                        );
                    }
                }
            }
        }
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
        self.engine
            .initiate(Instant::now(), peer, local, remote)
            .map_err(|e| e.to_string())
    }
}

/// Runs until the process is killed.
pub fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    let bind = |port| {
        UdpSocket::bind(SocketAddr::new(config.listen, port))
            .map_err(io(format!("bind {}:{port}", config.listen)))
    };
    let mut ike = bind(config.ike_port)?;
    let mut nat_t = bind(config.nat_t_port)?;
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
    let spis: Box<dyn SpiSource> = match &manager {
        Some(manager) => Box::new(manager.spi_source()),
        None => Box::new(RandomSpis),
    };
    let engine = Engine::new(config.engine.clone(), Box::new(SystemRng), spis);
    let initiate = config.initiate.clone();
    let mut daemon = Daemon {
        config,
        engine,
        manager,
        ike,
        nat_t,
    };
    for peer in initiate {
        if let Err(e) = daemon.initiate(&peer) {
            eprintln!("iked: initiate {peer}: {e}");
        }
    }
    eprintln!(
        "iked: listening on {} ports {} and {}",
        daemon.config.listen, daemon.config.ike_port, daemon.config.nat_t_port
    );
    let mut events = Events::with_capacity(64);
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(transmit) = daemon.engine.poll_transmit() {
            daemon.send(&transmit);
        }
        daemon.handle_events();
        let now = Instant::now();
        let sleep = daemon.engine.poll_timeout().map_or(MAX_SLEEP, |t| {
            t.saturating_duration_since(now).min(MAX_SLEEP)
        });
        if let Err(e) = poll.poll(&mut events, Some(sleep)) {
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
        daemon.engine.handle_timeout(Instant::now());
        daemon.handle_region_actions();
    }
}
