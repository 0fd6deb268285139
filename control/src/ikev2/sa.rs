//! The state of one IKE SA and its child SAs, and protection of its messages.
use super::error::Failure;
use super::proposal::IkeAlgorithms;
use super::timer::Timers;
use crate::crypto::{derive_ike_keys, skeyseed, DhKey, IkeSaKeys, Prf, Rng, SkCipher};
use crate::wire::ikev2::{
    emit_chain, parse_chain, DhGroup, Encrypted, ExchangeType, Flags, Header, Message, Payload,
    TrafficSelector, IKEV2_VERSION,
};
use shared::sa::{Suite, UdpEncap};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;
use zeroize::Zeroizing;

/// Encryption and integrity keys of one direction of a child SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionKeys {
    pub encr: Zeroizing<Vec<u8>>,
    pub integ: Zeroizing<Vec<u8>>,
}

/// An established child SA pair, as handed to the SA manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSa {
    pub ike_spi: u64,
    pub peer: String,
    /// The SPI the peer sends to (ours).
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub suite: Suite,
    pub inbound: DirectionKeys,
    pub outbound: DirectionKeys,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    /// The IKE endpoints, which are also the tunnel endpoints.
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// UDP encapsulation when a NAT was detected (RFC 7296 2.23, RFC 3948).
    pub encap: Option<UdpEncap>,
}

pub(crate) struct Keys {
    pub prf: Prf,
    pub ike: IkeSaKeys,
    pub outbound: SkCipher,
    pub inbound: SkCipher,
}

/// Where the IKE SA is in its life.
pub(crate) enum Phase {
    /// Initiator: IKE_SA_INIT sent with this key exchange.
    InitSent {
        dh: DhKey,
        cookie: Option<Vec<u8>>,
    },
    /// Responder: IKE_SA_INIT answered, IKE_AUTH not yet received.
    HalfOpen,
    /// Initiator: IKE_AUTH sent proposing a child SA with this inbound SPI.
    AuthSent {
        child_spi: u32,
    },
    Established,
}

/// Requests this end starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    SaInit,
    Auth,
    DeleteIke,
    DeleteChild {
        inbound_spi: u32,
    },
    Liveness,
    /// CREATE_CHILD_SA replacing the child with this inbound SPI (RFC 7296 2.8). With PFS, the
    /// KE payload is of `ke_group`, or of the first configured group when `None`.
    RekeyChild {
        old_inbound_spi: u32,
        ke_group: Option<DhGroup>,
    },
    /// CREATE_CHILD_SA for another child SA with the configured traffic selectors (RFC 7296
    /// 1.3.1), PFS as for `RekeyChild`.
    NewChild {
        ke_group: Option<DhGroup>,
    },
    /// CREATE_CHILD_SA replacing this IKE SA (RFC 7296 1.3.2, 2.18).
    RekeyIke,
    /// INFORMATIONAL telling the peer that ESP arrived on an SPI we do not know (RFC 7296 2.21.4).
    InvalidSpi {
        spi: u32,
    },
}

/// Our CREATE_CHILD_SA request in flight.
pub(crate) struct PendingChild {
    /// Our inbound SPI of the child SA this one replaces; `None` for another child (1.3.1).
    pub rekeys: Option<u32>,
    pub new_inbound_spi: u32,
    pub ni: Vec<u8>,
    /// Our half of the PFS key exchange (RFC 7296 1.3.2), if any.
    pub dh: Option<DhKey>,
    /// The peer's rekey of the same child that we answered meanwhile (RFC 7296 2.8.1).
    pub collision: Option<super::rekey::Answered<u32>>,
}

pub(crate) struct Outstanding {
    pub request: Request,
    pub message_id: u32,
    /// The request's datagrams: one, or its fragments (RFC 7383).
    pub datagrams: Vec<Vec<u8>>,
    pub sends: u32,
}

pub(crate) struct IkeSa {
    pub our_spi: u64,
    pub spi_i: u64,
    pub spi_r: u64,
    pub initiator: bool,
    pub peer: usize,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub phase: Phase,
    pub algorithms: Option<IkeAlgorithms>,
    pub keys: Option<Keys>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub init_request: Vec<u8>,
    pub init_response: Vec<u8>,
    /// A NAT was detected in front of either end; IKE moves to port 4500 and ESP is UDP
    /// encapsulated.
    pub nat: bool,
    pub next_request_id: u32,
    pub expected_request_id: u32,
    /// The last response we sent, for retransmitted requests (RFC 7296 2.1).
    pub cached_response: Option<(u32, Vec<Vec<u8>>)>,
    pub outstanding: Option<Outstanding>,
    pub queued: VecDeque<Request>,
    pub children: Vec<ChildSa>,
    pub pending_child: Option<PendingChild>,
    /// Initiator: the original IKE SA to correlate with in IKE_AUTH ([MS-IKEE] 3.10).
    pub correlation: Option<super::correlation::CorrelationSource>,
    /// Our SPI of the IKE SA this one is correlated with; deleting that one deletes this one.
    pub correlated_with: Option<u64>,
    pub timers: Timers,
    pub last_heard: Instant,
    /// When this IKE SA's negotiation began here (our IKE_SA_INIT request sent or the peer's
    /// received; the rekey that made it).
    pub started_at: Instant,
    /// When the engine first saw this IKE SA established: an INITIAL_CONTACT deletes only the
    /// SAs established before its own SA started (RFC 7296 2.4).
    pub established_at: Option<Instant>,
    /// Initiator: IKE_AUTH carries N(INITIAL_CONTACT), as no other IKE SA with the peer existed
    /// when this one started (RFC 7296 2.4).
    pub initial_contact: bool,
    /// RFC 7383: the negotiated fragment size and the fragments being received.
    pub fragmentation: super::fragmentation::Fragmentation,
    /// Rekeying of this IKE SA (RFC 7296 2.18) and its collisions (2.8.2).
    pub rekey: super::rekey::RekeyState,
}

impl IkeSa {
    pub fn header(&self, exchange: ExchangeType, response: bool, message_id: u32) -> Header {
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: crate::wire::ikev2::PayloadType::None,
            version: IKEV2_VERSION,
            exchange,
            flags: Flags::new(self.initiator, response),
            message_id,
            length: 0,
        }
    }

    /// SKEYSEED and the seven keys (RFC 7296 2.14), and the two SK ciphers.
    pub fn derive_keys(&mut self, g_ir: &[u8]) -> Result<(), Failure> {
        let algorithms = self.algorithms.ok_or(Failure::NoProposalChosen)?;
        let seed = skeyseed(algorithms.prf, &self.ni, &self.nr, g_ir);
        self.install_keys(&seed)
    }

    /// The seven keys from SKEYSEED with this SA's nonces and SPIs (RFC 7296 2.14, 2.18), and the
    /// two SK ciphers.
    pub fn install_keys(&mut self, seed: &[u8]) -> Result<(), Failure> {
        let algorithms = self.algorithms.ok_or(Failure::NoProposalChosen)?;
        let ike = derive_ike_keys(
            algorithms.prf,
            seed,
            &self.ni,
            &self.nr,
            self.spi_i,
            self.spi_r,
            algorithms.key_lengths(),
        )?;
        let cipher = |encr: &[u8], integ: &[u8]| {
            SkCipher::new(
                algorithms.encryption,
                encr,
                algorithms.integrity.map(|i| (i, integ)),
            )
        };
        let initiator_cipher = cipher(&ike.sk_ei, &ike.sk_ai)?;
        let responder_cipher = cipher(&ike.sk_er, &ike.sk_ar)?;
        let (outbound, inbound) = if self.initiator {
            (initiator_cipher, responder_cipher)
        } else {
            (responder_cipher, initiator_cipher)
        };
        self.keys = Some(Keys {
            prf: algorithms.prf,
            ike,
            outbound,
            inbound,
        });
        Ok(())
    }

    /// An encrypted message: HDR, SK { inner }, or its fragments HDR, SKF { part } when it is
    /// longer than the negotiated fragment size (RFC 7383 2.5).
    pub fn seal(
        &mut self,
        exchange: ExchangeType,
        response: bool,
        message_id: u32,
        inner: &[Payload],
        rng: &mut dyn Rng,
    ) -> Result<Vec<Vec<u8>>, Failure> {
        let header = self.header(exchange, response, message_id);
        let keys = self.keys.as_mut().ok_or(Failure::Missing("keys"))?;
        let mut plaintext = Zeroizing::new(Vec::new());
        emit_chain(inner, &mut plaintext)?;
        let first_inner = inner
            .first()
            .map_or(crate::wire::ikev2::PayloadType::None, Payload::payload_type);
        let placeholder = vec![0u8; keys.outbound.sealed_len(plaintext.len())];
        let message = Message {
            header,
            payloads: vec![Payload::Encrypted(Encrypted {
                first_inner,
                data: placeholder,
            })],
        };
        if let Some(size) = self
            .fragmentation
            .size
            .filter(|s| message.buffer_len() > *s)
        {
            return Ok(super::fragmentation::seal_fragments(
                &mut keys.outbound,
                header,
                first_inner,
                &plaintext,
                size,
                rng,
            )?);
        }
        let mut bytes = message.to_bytes()?;
        keys.outbound.seal(&mut bytes, &plaintext, rng)?;
        Ok(vec![bytes])
    }

    /// The payloads inside the SK payload of a received message (which must be its last), or,
    /// once all fragments are in, inside its SKF payloads (RFC 7383 2.6); `None` while fragments
    /// are missing.
    pub fn open(
        &mut self,
        message: &Message,
        bytes: &[u8],
    ) -> Result<Option<Vec<Payload>>, Failure> {
        let keys = self.keys.as_ref().ok_or(Failure::Missing("keys"))?;
        match message.payloads.last() {
            Some(Payload::Encrypted(sk)) => {
                let plaintext = keys.inbound.open(bytes, sk.data.len())?;
                Ok(Some(parse_chain(sk.first_inner, &plaintext)?))
            }
            Some(Payload::EncryptedFragment(skf)) => self
                .fragmentation
                .receive(&keys.inbound, &message.header, skf, bytes)
                .map_err(|e| match e {
                    super::fragmentation::FragmentError::Crypto(c) => Failure::Crypto(c),
                    _ => Failure::Wire(crate::wire::ikev2::Error::Invalid("fragment")),
                }),
            _ => Err(Failure::Missing("Encrypted")),
        }
    }
}
