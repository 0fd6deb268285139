//! IKE_AUTH as responder with a pre-shared key or a certificate (RFC 7296 1.2, 2.15):
//! authenticate the initiator, then negotiate the first child SA with traffic selector narrowing
//! (2.9).
use crate::ikev2::auth::{
    our_auth, peer_proves, verify_psk_auth, OurProof, PeerAnnouncements, PeerProof,
};
use crate::ikev2::correlation;
use crate::ikev2::engine::{Ctx, Event, Keep};
use crate::ikev2::error::Failure;
use crate::ikev2::payloads::{auth, id_i};
use crate::ikev2::proposal::ChildDh;
use crate::ikev2::sa::{IkeSa, Phase};
use crate::ikev2::server_addresses;
use crate::ikev2::tasks::child;
use crate::ikev2::timer::Timer;
use crate::wire::ikev2::{ExchangeType, Notify, NotifyType, Payload};
use zeroize::Zeroizing;

/// `original` is the established IKE SA a Correlation payload names (our SPI, its SK_ai).
pub fn handle_request(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    message_id: u32,
    inner: &[Payload],
    original: Option<(u64, Zeroizing<Vec<u8>>)>,
) -> Keep {
    if !matches!(sa.phase, Phase::HalfOpen) {
        return reply(
            ctx,
            sa,
            message_id,
            vec![error(Failure::Missing("IKE_AUTH state"))],
        );
    }
    if let Err(failure) = authenticate(ctx, sa, inner) {
        reply(ctx, sa, message_id, vec![error(failure.clone())]);
        ctx.fail(sa, failure);
        return Keep::Remove;
    }
    let config = &ctx.config.peers[sa.peer];
    let Some(keys) = sa.keys.as_ref() else {
        return Keep::Remove;
    };
    let ours = OurProof {
        id: &config.local_id,
        our_sa_init: &sa.init_response,
        peer_nonce: &sa.ni,
        our_sk_p: &keys.ike.sk_pr,
    };
    let announced = PeerAnnouncements::of(&sa.init_request, inner);
    // HDR, SK {IDr, [CERT+], AUTH, ...}
    let mut response = vec![Payload::IdR(config.local_id.clone())];
    match our_auth(keys.prf, config, &ours, &announced) {
        Ok(auth) => response.extend(auth),
        Err(failure) => {
            reply(ctx, sa, message_id, vec![error(failure.clone())]);
            ctx.fail(sa, failure);
            return Keep::Remove;
        }
    }
    response.extend(server_addresses::reply(inner, &config.server_addresses));
    sa.phase = Phase::Established;
    sa.timers.clear(Timer::HalfOpen);
    let peer = ctx.peer_name(sa);
    let (ni, nr) = (sa.ni.clone(), sa.nr.clone());
    // RFC 7296 1.2: the first child SA's keys come from the IKE SA; D-H transforms are ignored.
    let child = child::respond(ctx, sa, inner, peer.clone(), (&ni, &nr), ChildDh::Ignored);
    match &child {
        Ok((child, answer)) => {
            response.extend(answer.iter().cloned());
            sa.children.push(child.clone());
        }
        Err(failure) => response.push(error(failure.clone())),
    }
    // [MS-IKEE] 3.10: a failed correlation is reported at the end of the exchange.
    if let Some(status) = correlate(ctx, sa, inner, original) {
        response.push(Payload::Notify(Notify::new(
            NotifyType::MsNotifyStatus,
            status.to_be_bytes().to_vec(),
        )));
    }
    let keep = reply(ctx, sa, message_id, response);
    ctx.stats.ike_sas_established += 1;
    ctx.events.push_back(Event::IkeSaEstablished {
        spi: sa.our_spi,
        peer,
    });
    match child {
        Ok((child, _)) => {
            ctx.stats.child_sas_established += 1;
            ctx.events
                .push_back(Event::ChildSaEstablished(Box::new(child)));
        }
        // A child SA failure leaves the IKE SA up (RFC 7296 1.2).
        Err(failure) => ctx.fail(sa, failure),
    }
    ctx.arm_liveness(sa);
    keep
}

fn error(failure: Failure) -> Payload {
    let (kind, data) = failure
        .notify()
        .unwrap_or((crate::wire::ikev2::NotifyType::InvalidSyntax, vec![]));
    Payload::Notify(Notify::new(kind, data))
}

fn reply(ctx: &mut Ctx<'_>, sa: &mut IkeSa, message_id: u32, payloads: Vec<Payload>) -> Keep {
    match sa.seal(ExchangeType::IkeAuth, true, message_id, &payloads, ctx.rng) {
        Ok(datagram) => {
            ctx.send_response(sa, message_id, datagram);
            Keep::Yes
        }
        Err(_) => Keep::Remove,
    }
}

fn authenticate(ctx: &Ctx<'_>, sa: &IkeSa, inner: &[Payload]) -> Result<(), Failure> {
    let config = &ctx.config.peers[sa.peer];
    let id = id_i(inner).ok_or(Failure::Missing("IDi"))?;
    let received = auth(inner).ok_or(Failure::Missing("AUTH"))?;
    let keys = sa.keys.as_ref().ok_or(Failure::Missing("keys"))?;
    let proof = PeerProof {
        id,
        auth: received,
        certs: PeerProof::certs_of(inner),
        peer_sa_init: &sa.init_request,
        our_nonce: &sa.nr,
        peer_sk_p: &keys.ike.sk_pi,
    };
    peer_proves(
        keys.prf,
        config,
        &proof,
        ctx.config.wall_clock.unix_at(ctx.now),
    )
}

/// Checks a Correlation payload against the original IKE SA; returns the failure status, if any.
fn correlate(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    inner: &[Payload],
    original: Option<(u64, Zeroizing<Vec<u8>>)>,
) -> Option<u32> {
    let payload = inner.iter().find_map(|p| match p {
        Payload::Correlation(c) => Some(c),
        _ => None,
    })?;
    let Some((original_spi, key)) = original else {
        return Some(correlation::STATUS_NO_SUCH_SA);
    };
    let prf = sa.keys.as_ref()?.prf;
    let expected = correlation::hash(
        prf,
        &key,
        (sa.spi_i, sa.spi_r),
        (payload.original_spi_i, payload.original_spi_r),
    );
    if !verify_psk_auth(&expected, &payload.hash) {
        return Some(correlation::STATUS_BAD_HASH);
    }
    sa.correlated_with = Some(original_spi);
    ctx.events.push_back(Event::Correlated {
        spi: sa.our_spi,
        original_spi,
    });
    None
}
