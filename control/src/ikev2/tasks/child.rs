//! Child SA negotiation shared by IKE_AUTH and CREATE_CHILD_SA: the responder's choice with
//! traffic selector narrowing (RFC 7296 2.9), the initiator's check of the answer, and KEYMAT
//! (2.17) into the record handed to the SA manager.
use crate::crypto::{child_keymat, KeyLengths};
use crate::ikev2::engine::Ctx;
use crate::ikev2::error::Failure;
use crate::ikev2::payloads::{error_notify, sa_payload, ts_i, ts_r};
use crate::ikev2::proposal::{accept_child_answer, child_sa_payload, select_child};
use crate::ikev2::sa::{ChildSa, DirectionKeys, IkeSa};
use crate::ikev2::ts::{is_subset, narrow};
use crate::wire::ikev2::{Payload, TrafficSelector, TrafficSelectors};
use shared::sa::{Suite, UdpEncap};

/// Derives the KEYMAT of a child SA negotiated on `sa` without PFS, from the nonces of the
/// exchange that created it. `local_ts`/`remote_ts` are this end's view. `we_initiated` is our
/// role in that exchange, which the key directions follow (RFC 7296 2.17: the initiator to
/// responder keys first), not our role in the IKE SA: either end may start a CREATE_CHILD_SA.
#[allow(clippy::too_many_arguments)]
pub fn establish(
    sa: &IkeSa,
    we_initiated: bool,
    (ni, nr): (&[u8], &[u8]),
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
    let keymat = child_keymat(keys.prf, &keys.ike.sk_d, None, ni, nr, lengths)?;
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

/// Responder: picks a suite, narrows the selectors, allocates our SPI; returns the child SA and
/// the SA, TSi, TSr payloads of the answer.
pub fn respond(
    ctx: &mut Ctx<'_>,
    sa: &IkeSa,
    inner: &[Payload],
    peer: String,
    nonces: (&[u8], &[u8]),
) -> Result<(ChildSa, Vec<Payload>), Failure> {
    let config = &ctx.config.peers[sa.peer].child;
    let proposed = sa_payload(inner).ok_or(Failure::Missing("SA"))?;
    let (number, suite, outbound_spi) = select_child(proposed, &config.suites)?;
    let tsi = narrow(
        &ts_i(inner).ok_or(Failure::Missing("TSi"))?.selectors,
        &config.remote_ts,
    )?;
    let tsr = narrow(
        &ts_r(inner).ok_or(Failure::Missing("TSr"))?.selectors,
        &config.local_ts,
    )?;
    let inbound_spi = ctx.spis.allocate(ctx.rng, sa.local.ip(), sa.remote.ip());
    let mut answer = child_sa_payload(&[suite], inbound_spi);
    answer.proposals[0].number = number;
    let child = establish(
        sa,
        false,
        nonces,
        peer,
        suite,
        inbound_spi,
        outbound_spi,
        tsr.clone(),
        tsi.clone(),
    )?;
    let payloads = vec![
        Payload::Sa(answer),
        Payload::TsI(TrafficSelectors { selectors: tsi }),
        Payload::TsR(TrafficSelectors { selectors: tsr }),
    ];
    Ok((child, payloads))
}

/// Initiator: the answer must pick one of our suites and only narrow our selectors.
pub fn accept(
    ctx: &Ctx<'_>,
    sa: &IkeSa,
    inner: &[Payload],
    peer: String,
    inbound_spi: u32,
    nonces: (&[u8], &[u8]),
) -> Result<ChildSa, Failure> {
    if let Some(error) = error_notify(inner) {
        return Err(Failure::PeerError(error));
    }
    let config = &ctx.config.peers[sa.peer].child;
    let answer = sa_payload(inner).ok_or(Failure::Missing("SA"))?;
    let (suite, outbound_spi) = accept_child_answer(answer, &config.suites)?;
    let tsi = ts_i(inner).ok_or(Failure::Missing("TSi"))?;
    let tsr = ts_r(inner).ok_or(Failure::Missing("TSr"))?;
    // RFC 7296 2.9: the responder may only narrow what we proposed.
    if !is_subset(&tsi.selectors, &config.local_ts) || !is_subset(&tsr.selectors, &config.remote_ts)
    {
        return Err(Failure::TsUnacceptable);
    }
    establish(
        sa,
        true,
        nonces,
        peer,
        suite,
        inbound_spi,
        outbound_spi,
        tsi.selectors.clone(),
        tsr.selectors.clone(),
    )
}
