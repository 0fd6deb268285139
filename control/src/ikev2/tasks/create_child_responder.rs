//! CREATE_CHILD_SA as responder (RFC 7296 1.3): a new or rekeyed child SA (1.3.1, 1.3.2), with
//! PFS when our child configuration has D-H groups, or the rekey of the IKE SA itself (handed to
//! `rekey_ike_responder`). The old SA of a child rekey stays until the initiator deletes it; if
//! we are rekeying the same child, the outcome waits for our own answer (2.8.1). A failure never
//! affects the IKE SA.
use crate::ikev2::engine::{Ctx, Event, Keep};
use crate::ikev2::error::Failure;
use crate::ikev2::payloads::{nonce, notifies, sa_payload};
use crate::ikev2::proposal::ChildDh;
use crate::ikev2::rekey::{self, Answered};
use crate::ikev2::sa::{ChildSa, IkeSa, Phase, Request};
use crate::ikev2::tasks::child;
use crate::ikev2::tasks::ike_init_initiator::NONCE_LEN;
use crate::ikev2::tasks::rekey_ike_responder;
use crate::wire::ikev2::{ExchangeType, Notify, NotifyType, Payload, ProtocolId};
use std::collections::HashMap;

pub fn handle_request(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    message_id: u32,
    inner: &[Payload],
    sas: &mut HashMap<u64, IkeSa>,
) -> Keep {
    let rekeys_ike = sa_payload(inner).is_some_and(|proposed| {
        !proposed.proposals.is_empty()
            && proposed
                .proposals
                .iter()
                .all(|p| p.protocol == ProtocolId::Ike)
    });
    if rekeys_ike && matches!(sa.phase, Phase::Established) {
        return rekey_ike_responder::handle_request(ctx, sa, message_id, inner, sas);
    }
    let outcome = negotiate(ctx, sa, inner).map(|(new_child, payloads, nonces)| {
        ctx.stats.child_sas_established += 1;
        note_collision(sa, inner, &new_child, nonces);
        sa.children.push(new_child.clone());
        ctx.events
            .push_back(Event::ChildSaEstablished(Box::new(new_child)));
        payloads
    });
    respond(ctx, sa, message_id, outcome);
    ctx.arm_liveness(sa);
    Keep::Yes
}

/// Sends the response to a CREATE_CHILD_SA request: the new SA's payloads, or the notify of the
/// failure that refused it (NO_PROPOSAL_CHOSEN if it names none), which the SA also records.
pub(crate) fn respond(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    message_id: u32,
    outcome: Result<Vec<Payload>, Failure>,
) {
    let response = outcome.unwrap_or_else(|failure| {
        let (kind, data) = failure
            .notify()
            .unwrap_or((NotifyType::NoProposalChosen, vec![]));
        ctx.fail(sa, failure);
        vec![Payload::Notify(Notify::new(kind, data))]
    });
    if let Ok(datagram) = sa.seal(
        ExchangeType::CreateChildSa,
        true,
        message_id,
        &response,
        ctx.rng,
    ) {
        ctx.send_response(sa, message_id, datagram);
    }
}

/// The child SA a REKEY_SA notify names by the peer's inbound SPI (our outbound one).
fn rekeyed_child<'a>(sa: &'a IkeSa, inner: &[Payload]) -> Option<Result<&'a ChildSa, Failure>> {
    let rekey = notifies(inner, NotifyType::RekeySa).next()?;
    let spi: Result<[u8; 4], _> = rekey.spi.as_slice().try_into();
    Some(
        spi.ok()
            .and_then(|spi| {
                let spi = u32::from_be_bytes(spi);
                sa.children.iter().find(|c| c.outbound_spi == spi)
            })
            .ok_or(Failure::ChildSaNotFound),
    )
}

/// 2.8.1: the peer rekeyed a child we are rekeying too; remember what its exchange made.
fn note_collision(
    sa: &mut IkeSa,
    inner: &[Payload],
    new_child: &ChildSa,
    nonces: (Vec<u8>, Vec<u8>),
) {
    let Some(Ok(old)) = rekeyed_child(sa, inner) else {
        return;
    };
    let old_inbound_spi = old.inbound_spi;
    if let Some(pending) = sa
        .pending_child
        .as_mut()
        .filter(|p| p.rekeys == Some(old_inbound_spi))
    {
        pending.collision = Some(Answered {
            new_spi: new_child.inbound_spi,
            lowest_nonce: rekey::lowest(&nonces.0, &nonces.1),
        });
    }
}

/// The new child, the answer's payloads and the exchange's nonces (Ni, Nr).
type Negotiated = (ChildSa, Vec<Payload>, (Vec<u8>, Vec<u8>));

fn negotiate(ctx: &mut Ctx<'_>, sa: &IkeSa, inner: &[Payload]) -> Result<Negotiated, Failure> {
    if !matches!(sa.phase, Phase::Established) {
        return Err(Failure::Missing("established IKE SA"));
    }
    // While this IKE SA is being replaced, its children are created on the new one.
    if sa.rekey.successor.is_some() || sa.rekey.pending.is_some() {
        return Err(Failure::Busy);
    }
    if let Some(old) = rekeyed_child(sa, inner) {
        // RFC 7296 2.25.1: a child we are deleting (or replaced already) is not rekeyed.
        let inbound_spi = old?.inbound_spi;
        let deleting = |r: &Request| *r == Request::DeleteChild { inbound_spi };
        if sa
            .outstanding
            .as_ref()
            .is_some_and(|o| deleting(&o.request))
            || sa.queued.iter().any(deleting)
        {
            return Err(Failure::Busy);
        }
    }
    let ni = nonce(inner).ok_or(Failure::Missing("Nonce"))?.clone();
    let nr = ctx.random(NONCE_LEN);
    let peer = ctx.peer_name(sa);
    let config = ctx.config;
    let dh = ChildDh::Groups(&config.peers[sa.peer].child.pfs_groups);
    let (new_child, mut payloads) = child::respond(ctx, sa, inner, peer, (&ni, &nr), dh)?;
    payloads.insert(1, Payload::Nonce(nr.clone()));
    Ok((new_child, payloads, (ni, nr)))
}
