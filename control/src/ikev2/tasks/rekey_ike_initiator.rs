//! CREATE_CHILD_SA as initiator, replacing the IKE SA (RFC 7296 1.3.2, 2.18): the new IKE SA
//! takes the child SAs, then the old one is deleted. When the peer rekeyed the same IKE SA at the
//! same time, the exchange with the lowest nonce made the redundant SA (2.8.2).
use crate::crypto::DhKey;
use crate::ikev2::config::IkeProposal;
use crate::ikev2::engine::{Ctx, Keep};
use crate::ikev2::error::Failure;
use crate::ikev2::payloads::{error_notify, ke, nonce, sa_payload};
use crate::ikev2::proposal::{accept_ike_answer, ike_sa_payload, IkeAlgorithms};
use crate::ikev2::rekey::{self, NewIkeSa, PendingIkeRekey};
use crate::ikev2::sa::{IkeSa, Request};
use crate::ikev2::tasks::ike_init_initiator::NONCE_LEN;
use crate::ikev2::tasks::requests::send_queued;
use crate::wire::ikev2::{KeyExchange, Payload};
use std::collections::HashMap;

/// HDR, SK {SA, Ni, KEi}; `None` when this SA is already being replaced. The KE payload is of
/// the current SA's group, which the peer accepted before, and the first proposal is the current
/// SA's algorithms (as strongSwan does): a peer that answers in the order of the proposals would
/// otherwise pick our first configured one, whose group may not be the KE's, and refuse the KE
/// (RFC 7296 1.3) at every rekey when the original initiator preferred other algorithms.
pub fn request(ctx: &mut Ctx<'_>, sa: &mut IkeSa) -> Option<Vec<Payload>> {
    if sa.rekey.successor.is_some() || sa.rekey.pending.is_some() {
        return None;
    }
    let current = sa.algorithms?;
    let group = current.group;
    let dh = DhKey::generate(group, ctx.rng).ok()?;
    let public = dh.public_value().ok()?;
    let new_spi = ctx.random_spi();
    let ni = ctx.random(NONCE_LEN);
    let proposals = current_first(&current, &ctx.config.peers[sa.peer].ike_proposals);
    let payloads = vec![
        Payload::Sa(ike_sa_payload(&proposals, &new_spi.to_be_bytes())),
        Payload::Nonce(ni.clone()),
        Payload::Ke(KeyExchange {
            group,
            data: public,
        }),
    ];
    sa.rekey.pending = Some(PendingIkeRekey { new_spi, ni, dh });
    Some(payloads)
}

/// The SA's current algorithms as a proposal of their own, then the configured proposals.
fn current_first(current: &IkeAlgorithms, configured: &[IkeProposal]) -> Vec<IkeProposal> {
    let first = IkeProposal {
        encryption: current.encryption,
        integrity: current.integrity,
        prf: current.prf,
        groups: vec![current.group],
    };
    std::iter::once(first.clone())
        .chain(configured.iter().filter(|p| **p != first).cloned())
        .collect()
}

pub fn handle_response(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    inner: &[Payload],
    sas: &mut HashMap<u64, IkeSa>,
) -> Keep {
    ctx.request_done(sa);
    let Some(pending) = sa.rekey.pending.take() else {
        return Keep::Yes;
    };
    match new_sa(ctx, sa, &pending, inner) {
        Ok(mut new) => {
            let ours_redundant = match sa.rekey.collision.take() {
                Some(theirs) => {
                    let ours = rekey::lowest(&new.ni, &new.nr);
                    let redundant =
                        rekey::report_collision(ctx, sa.our_spi, None, &ours, &theirs.lowest_nonce);
                    if redundant {
                        sa.rekey.successor = Some(theirs.new_spi);
                    }
                    redundant
                }
                None => false,
            };
            if ours_redundant {
                // 2.8.2: we delete the SA we made; the peer, whose rekey won, deletes the old one.
                new.queued.push_back(Request::DeleteIke);
                send_queued(ctx, &mut new);
                rekey::hand_over_to_successor(ctx, sa, sas);
            } else {
                sa.rekey.successor = Some(new.our_spi);
                rekey::hand_over(ctx, sa, &mut new);
                sa.queued.push_front(Request::DeleteIke);
            }
            sas.insert(new.our_spi, new);
        }
        Err(failure) => {
            ctx.fail(sa, failure);
            match sa.rekey.collision.take() {
                // The peer's rekey stands; the peer deletes this SA.
                Some(theirs) => {
                    sa.rekey.successor = Some(theirs.new_spi);
                    rekey::hand_over_to_successor(ctx, sa, sas);
                }
                None => rekey::defer(ctx, sa, Request::RekeyIke),
            }
        }
    }
    send_queued(ctx, sa);
    Keep::Yes
}

/// HDR, SK {SA, Nr, KEr}: the responder's choice must be one of ours, with its new SPI and a KE
/// of the group we sent.
fn new_sa(
    ctx: &mut Ctx<'_>,
    sa: &IkeSa,
    pending: &PendingIkeRekey,
    inner: &[Payload],
) -> Result<IkeSa, Failure> {
    if let Some(error) = error_notify(inner) {
        return Err(Failure::PeerError(error));
    }
    let answer = sa_payload(inner).ok_or(Failure::Missing("SA"))?;
    let algorithms = accept_ike_answer(answer, &ctx.config.peers[sa.peer].ike_proposals)?;
    let spi_r: [u8; 8] = answer.proposals[0]
        .spi
        .as_slice()
        .try_into()
        .map_err(|_| Failure::NoProposalChosen)?;
    let their_ke = ke(inner).ok_or(Failure::Missing("KE"))?;
    let nr = nonce(inner).ok_or(Failure::Missing("Nonce"))?;
    if their_ke.group != pending.dh.group() || algorithms.group != pending.dh.group() {
        return Err(Failure::NoProposalChosen);
    }
    let g_ir = pending.dh.shared_secret(&their_ke.data)?;
    rekey::successor(
        ctx,
        sa,
        NewIkeSa {
            initiator: true,
            algorithms,
            spi_i: pending.new_spi,
            spi_r: u64::from_be_bytes(spi_r),
            ni: &pending.ni,
            nr,
            g_ir: &g_ir,
        },
    )
}
