//! Child SA negotiation shared by IKE_AUTH and CREATE_CHILD_SA: the responder's choice with
//! traffic selector narrowing (RFC 7296 2.9) and the optional PFS key exchange (1.3.1, 1.3.2),
//! the initiator's check of the answer, and KEYMAT (2.17) into the record handed to the SA
//! manager.
use crate::crypto::{child_keymat, DhKey, KeyLengths};
use crate::ikev2::engine::Ctx;
use crate::ikev2::error::Failure;
use crate::ikev2::payloads::{error_notify, ke, sa_payload, ts_i, ts_r};
use crate::ikev2::proposal::{accept_child_answer, child_sa_payload, select_child, ChildDh};
use crate::ikev2::sa::{ChildSa, DirectionKeys, IkeSa};
use crate::ikev2::ts::{is_subset, narrow};
use crate::wire::ikev2::{KeyExchange, Payload, TrafficSelector, TrafficSelectors};
use shared::sa::{Suite, UdpEncap};
use zeroize::Zeroizing;

/// What the KEYMAT of a child SA comes from besides SK_d (RFC 7296 2.17): the nonces of the
/// exchange that created it and, with PFS, the new shared secret g^ir.
#[derive(Clone, Copy)]
pub struct KeySource<'a> {
    pub ni: &'a [u8],
    pub nr: &'a [u8],
    pub g_ir: Option<&'a [u8]>,
}

/// Derives the KEYMAT of a child SA negotiated on `sa`. `local_ts`/`remote_ts` are this end's
/// view. `we_initiated` is our role in the exchange that created it, which the key directions
/// follow (RFC 7296 2.17: the initiator to responder keys first), not our role in the IKE SA:
/// either end may start a CREATE_CHILD_SA.
#[allow(clippy::too_many_arguments)]
pub fn establish(
    sa: &IkeSa,
    we_initiated: bool,
    source: KeySource<'_>,
    peer: String,
    suite: Suite,
    inbound_spi: u32,
    outbound_spi: u32,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
) -> Result<ChildSa, Failure> {
    let keys = sa.keys.as_ref().ok_or(Failure::Missing("keys"))?;
    let lengths = KeyLengths {
        encr: suite.enc_key_len(),
        integ: suite.auth_key_len(),
    };
    let keymat = child_keymat(
        keys.prf,
        &keys.ike.sk_d,
        source.g_ir,
        source.ni,
        source.nr,
        lengths,
    )?;
    let initiator_to_responder = DirectionKeys {
        encr: keymat.initiator_encr,
        integ: keymat.initiator_integ,
    };
    let responder_to_initiator = DirectionKeys {
        encr: keymat.responder_encr,
        integ: keymat.responder_integ,
    };
    let (outbound, inbound) = if we_initiated {
        (initiator_to_responder, responder_to_initiator)
    } else {
        (responder_to_initiator, initiator_to_responder)
    };
    Ok(ChildSa {
        ike_spi: sa.our_spi,
        peer,
        inbound_spi,
        outbound_spi,
        suite,
        inbound,
        outbound,
        local_ts,
        remote_ts,
        local: sa.local,
        remote: sa.remote,
        encap: sa.nat.then_some(UdpEncap {
            src_port: sa.local.port(),
            dst_port: sa.remote.port(),
        }),
    })
}

/// Responder: picks a suite (and with PFS a group, whose KE payload the peer must have sent:
/// otherwise INVALID_KE_PAYLOAD names the group, RFC 7296 1.3), narrows the selectors, allocates
/// our SPI; returns the child SA and the SA, [KEr,] TSi, TSr payloads of the answer.
pub fn respond(
    ctx: &mut Ctx<'_>,
    sa: &IkeSa,
    inner: &[Payload],
    peer: String,
    (ni, nr): (&[u8], &[u8]),
    dh: ChildDh<'_>,
) -> Result<(ChildSa, Vec<Payload>), Failure> {
    let config = &ctx.config.peers[sa.peer].child;
    let proposed = sa_payload(inner).ok_or(Failure::Missing("SA"))?;
    let their_ke = match dh {
        ChildDh::Ignored => None,
        ChildDh::Groups(_) => ke(inner),
    };
    let choice = select_child(proposed, &config.suites, dh, their_ke.map(|k| k.group))?;
    let tsi = narrow(
        &ts_i(inner).ok_or(Failure::Missing("TSi"))?.selectors,
        &config.remote_ts,
    )?;
    let tsr = narrow(
        &ts_r(inner).ok_or(Failure::Missing("TSr"))?.selectors,
        &config.local_ts,
    )?;
    // The key exchange before the SPI, which a failure here would leave allocated.
    let exchange = match choice.group {
        None => None,
        Some(group) => {
            let their_ke = their_ke.ok_or(Failure::Missing("KE"))?;
            if their_ke.group != group {
                return Err(Failure::InvalidKe(group.into()));
            }
            let ours = DhKey::generate(group, ctx.rng)?;
            let g_ir = ours.shared_secret(&their_ke.data)?;
            let ker = KeyExchange {
                group,
                data: ours.public_value()?,
            };
            Some((ker, g_ir))
        }
    };
    let inbound_spi = ctx.spis.allocate(ctx.rng, sa.local.ip(), sa.remote.ip());
    let mut answer = child_sa_payload(
        &[choice.suite],
        inbound_spi,
        ChildDh::Groups(choice.group.as_slice()),
    );
    answer.proposals[0].number = choice.number;
    let source = KeySource {
        ni,
        nr,
        g_ir: exchange.as_ref().map(|(_, g_ir)| g_ir.as_slice()),
    };
    let child = establish(
        sa,
        false,
        source,
        peer,
        choice.suite,
        inbound_spi,
        choice.peer_spi,
        tsr.clone(),
        tsi.clone(),
    );
    let child = match child {
        Ok(child) => child,
        Err(failure) => {
            ctx.spis.release(inbound_spi, sa.local.ip());
            return Err(failure);
        }
    };
    let mut payloads = vec![Payload::Sa(answer)];
    payloads.extend(exchange.map(|(ker, _)| Payload::Ke(ker)));
    payloads.push(Payload::TsI(TrafficSelectors { selectors: tsi }));
    payloads.push(Payload::TsR(TrafficSelectors { selectors: tsr }));
    Ok((child, payloads))
}

/// Initiator: the answer must pick one of our suites (with PFS, the group of our KE payload
/// `our_ke`, and carry the peer's KE of it) and only narrow our selectors.
#[allow(clippy::too_many_arguments)]
pub fn accept(
    ctx: &Ctx<'_>,
    sa: &IkeSa,
    inner: &[Payload],
    peer: String,
    inbound_spi: u32,
    (ni, nr): (&[u8], &[u8]),
    dh: ChildDh<'_>,
    our_ke: Option<&DhKey>,
) -> Result<ChildSa, Failure> {
    if let Some(error) = error_notify(inner) {
        return Err(Failure::PeerError(error));
    }
    let config = &ctx.config.peers[sa.peer].child;
    let answer = sa_payload(inner).ok_or(Failure::Missing("SA"))?;
    let (suite, outbound_spi, group) = accept_child_answer(answer, &config.suites, dh)?;
    let g_ir: Option<Zeroizing<Vec<u8>>> = match (group, our_ke) {
        (None, _) => None,
        (Some(group), Some(ours)) if ours.group() == group => {
            let their_ke = ke(inner).ok_or(Failure::Missing("KE"))?;
            if their_ke.group != group {
                return Err(Failure::NoProposalChosen);
            }
            Some(ours.shared_secret(&their_ke.data)?)
        }
        (Some(_), _) => return Err(Failure::NoProposalChosen),
    };
    let tsi = ts_i(inner).ok_or(Failure::Missing("TSi"))?;
    let tsr = ts_r(inner).ok_or(Failure::Missing("TSr"))?;
    // RFC 7296 2.9: the responder may only narrow what we proposed.
    if !is_subset(&tsi.selectors, &config.local_ts) || !is_subset(&tsr.selectors, &config.remote_ts)
    {
        return Err(Failure::TsUnacceptable);
    }
    let source = KeySource {
        ni,
        nr,
        g_ir: g_ir.as_ref().map(|g| g.as_slice()),
    };
    establish(
        sa,
        true,
        source,
        peer,
        suite,
        inbound_spi,
        outbound_spi,
        tsi.selectors.clone(),
        tsr.selectors.clone(),
    )
}
