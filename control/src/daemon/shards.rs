//! The engines on worker threads, so that Diffie-Hellman and signatures never block the I/O loop
//! and every core works. Each thread owns one engine and the IKE SAs whose SPIs it chose (their
//! SPIs are its index modulo the number of threads, `SpiShard`); the I/O loop routes each datagram
//! by its SPI, a new IKE_SA_INIT request by the initiator's address and SPI (so that its
//! retransmissions meet the same engine). Engines send their datagrams themselves and pass their
//! events back to the loop through a channel and a mio waker.
use super::NON_ESP_MARKER;
use crate::crypto::SystemRng;
use crate::ikev2::{Engine, EngineConfig, Event, SpiShard, SpiSource, Transmit, NAT_KEEPALIVE};
use crate::wire::ikev2::{ExchangeType, Header};
use mio::Waker;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An engine thread waits for input at most this long, to run its timers.
const MAX_SLEEP: Duration = Duration::from_millis(500);
/// How long the loop waits for an engine to answer a management request.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The sockets engines send on; IKE on the NAT-T port gets the non-ESP marker (RFC 3948 2.2),
/// a NAT keepalive does not.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub ike: UdpSocket,
    pub nat_t: UdpSocket,
    pub nat_t_port: u16,
}

impl Outbound {
    pub fn try_clone(&self) -> std::io::Result<Outbound> {
        Ok(Outbound {
            ike: self.ike.try_clone()?,
            nat_t: self.nat_t.try_clone()?,
            nat_t_port: self.nat_t_port,
        })
    }

    pub fn send(&self, transmit: &Transmit) {
        let result = if transmit.bytes == NAT_KEEPALIVE {
            self.nat_t.send_to(&transmit.bytes, transmit.remote)
        } else if transmit.local.port() == self.nat_t_port {
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
}

type Job = Box<dyn FnOnce(&mut Engine) + Send>;

enum Input {
    Datagram {
        local: SocketAddr,
        remote: SocketAddr,
        bytes: Vec<u8>,
    },
    Job(Job),
}

pub(crate) struct Shards {
    inputs: Vec<Sender<Input>>,
    next_initiator: usize,
}

impl Shards {
    /// Starts `count` engine threads; `spis` gives each its source of inbound SPIs.
    pub fn start(
        config: &EngineConfig,
        count: usize,
        mut spis: impl FnMut() -> Box<dyn SpiSource>,
        outbound: &Outbound,
        events: &Sender<Event>,
        waker: &Arc<Waker>,
    ) -> std::io::Result<Shards> {
        let count = count.max(1);
        let mut inputs = Vec::with_capacity(count);
        for index in 0..count {
            let mut config = config.clone();
            config.spi_shard = SpiShard {
                index: index as u64,
                count: count as u64,
            };
            let engine = Engine::new(config, Box::new(SystemRng), spis());
            let (input, receiver) = mpsc::channel();
            let worker = Worker {
                engine,
                inputs: receiver,
                outbound: outbound.try_clone()?,
                events: events.clone(),
                waker: waker.clone(),
            };
            std::thread::Builder::new()
                .name(format!("iked-engine-{index}"))
                .spawn(move || worker.run())?;
            inputs.push(input);
        }
        Ok(Shards {
            inputs,
            next_initiator: 0,
        })
    }

    pub fn count(&self) -> usize {
        self.inputs.len()
    }

    /// The engine holding the IKE SA with our SPI `spi`.
    pub fn of_spi(&self, spi: u64) -> usize {
        (spi % self.inputs.len() as u64) as usize
    }

    /// The engine for a datagram: by our SPI, or for a new IKE_SA_INIT request by the initiator's
    /// address and SPI. Unparsable datagrams go to engine 0, which counts them.
    fn route(&self, remote: SocketAddr, datagram: &[u8]) -> usize {
        let Ok(header) = Header::parse(datagram) else {
            return 0;
        };
        if header.exchange == ExchangeType::IkeSaInit && !header.flags.response() {
            let mut hasher = DefaultHasher::new();
            (remote, header.spi_i).hash(&mut hasher);
            return (hasher.finish() % self.inputs.len() as u64) as usize;
        }
        self.of_spi(if header.flags.initiator() {
            header.spi_r
        } else {
            header.spi_i
        })
    }

    pub fn deliver(&self, local: SocketAddr, remote: SocketAddr, datagram: &[u8]) {
        let shard = self.route(remote, datagram);
        let _ = self.inputs[shard].send(Input::Datagram {
            local,
            remote,
            bytes: datagram.to_vec(),
        });
    }

    /// Runs `job` on engine `shard` without waiting.
    pub fn post(&self, shard: usize, job: impl FnOnce(&mut Engine) + Send + 'static) {
        let _ = self.inputs[shard].send(Input::Job(Box::new(job)));
    }

    /// Runs `job` on engine `shard` and returns its answer (`None` if the engine did not answer).
    pub fn call<T: Send + 'static>(
        &self,
        shard: usize,
        job: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Option<T> {
        let (answer, receiver) = mpsc::sync_channel(1);
        self.post(shard, move |engine| {
            let _ = answer.send(job(engine));
        });
        receiver.recv_timeout(CALL_TIMEOUT).ok()
    }

    /// Runs `job` on every engine; the answers in engine order.
    pub fn call_all<T: Send + 'static>(
        &self,
        job: impl Fn(&mut Engine) -> T + Send + Clone + 'static,
    ) -> Vec<T> {
        (0..self.count())
            .filter_map(|shard| self.call(shard, job.clone()))
            .collect()
    }

    /// The engine that starts the next IKE SA (round robin).
    pub fn next_initiator(&mut self) -> usize {
        self.next_initiator = (self.next_initiator + 1) % self.count();
        self.next_initiator
    }
}

struct Worker {
    engine: Engine,
    inputs: Receiver<Input>,
    outbound: Outbound,
    events: Sender<Event>,
    waker: Arc<Waker>,
}

impl Worker {
    /// Until the daemon drops its end of the input channel.
    fn run(mut self) {
        loop {
            self.flush();
            let now = Instant::now();
            let sleep = self.engine.poll_timeout().map_or(MAX_SLEEP, |t| {
                t.saturating_duration_since(now).min(MAX_SLEEP)
            });
            match self.inputs.recv_timeout(sleep) {
                Ok(Input::Datagram {
                    local,
                    remote,
                    bytes,
                }) => self
                    .engine
                    .handle_datagram(Instant::now(), local, remote, &bytes),
                Ok(Input::Job(job)) => job(&mut self.engine),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.engine.handle_timeout(Instant::now());
        }
    }

    fn flush(&mut self) {
        while let Some(transmit) = self.engine.poll_transmit() {
            self.outbound.send(&transmit);
        }
        let mut any = false;
        while let Some(event) = self.engine.poll_event() {
            any = true;
            let _ = self.events.send(event);
        }
        if any {
            let _ = self.waker.wake();
        }
    }
}
