//! CREATE_CHILD_SA as responder (RFC 7296 1.3): a new or rekeyed child SA without PFS. The old
//! SA of a rekey stays until the initiator deletes it. IKE SA rekeying and KE payloads (PFS) are
//! answered with NO_PROPOSAL_CHOSEN; the IKE SA is never affected.
use crate::ikev2::engine::{Ctx, Event, Keep};
use crate::ikev2::error::Failure;
use crate::ikev2::payloads::{ke, nonce, notifies, sa_payload};
use crate::ikev2::sa::{ChildSa, IkeSa, Phase};
use crate::ikev2::tasks::child;
use crate::ikev2::tasks::ike_init_initiator::NONCE_LEN;
use crate::wire::ikev2::{ExchangeType, Notify, NotifyType, Payload, ProtocolId};

pub fn handle_request(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    message_id: u32,
    inner: &[Payload],
) -> Keep {
    let response = match negotiate(ctx, sa, inner) {
        Ok((new_child, payloads)) => {
            ctx.stats.child_sas_established += 1;
            sa.children.push(new_child.clone());
            ctx.events
                .push_back(Event::ChildSaEstablished(Box::new(new_child)));
            payloads
        }
        Err(failure) => {
            let (kind, data) = failure
                .notify()
                .unwrap_or((NotifyType::NoProposalChosen, vec![]));
            ctx.fail(sa, failure);
            vec![Payload::Notify(Notify::new(kind, data))]
        }
    };
    if let Ok(datagram) = sa.seal(
        ExchangeType::CreateChildSa,
        true,
        message_id,
        &response,
        ctx.rng,
    ) {
        ctx.send_response(sa, message_id, datagram);
    }
    ctx.arm_liveness(sa);
    Keep::Yes
}

fn negotiate(
    ctx: &mut Ctx<'_>,
    sa: &IkeSa,
    inner: &[Payload],
) -> Result<(ChildSa, Vec<Payload>), Failure> {
    if !matches!(sa.phase, Phase::Established) {
        return Err(Failure::Missing("established IKE SA"));
    }
    let proposed = sa_payload(inner).ok_or(Failure::Missing("SA"))?;
    if proposed
        .proposals
        .iter()
        .all(|p| p.protocol == ProtocolId::Ike)
    {
        return Err(Failure::Unsupported("IKE SA rekeying"));
    }
    if ke(inner).is_some() {
        return Err(Failure::Unsupported("PFS for child SAs"));
    }
    if let Some(rekey) = notifies(inner, NotifyType::RekeySa).next() {
        // The peer names its inbound SPI, our outbound one.
        let spi: [u8; 4] = rekey
            .spi
            .as_slice()
            .try_into()
            .map_err(|_| Failure::ChildSaNotFound)?;
        if !sa
            .children
            .iter()
            .any(|c| c.outbound_spi == u32::from_be_bytes(spi))
        {
            return Err(Failure::ChildSaNotFound);
        }
    }
    let ni = nonce(inner).ok_or(Failure::Missing("Nonce"))?.clone();
    let nr = ctx.random(NONCE_LEN);
    let peer = ctx.peer_name(sa);
    let (new_child, mut payloads) = child::respond(ctx, sa, inner, peer, (&ni, &nr))?;
    payloads.insert(1, Payload::Nonce(nr));
    Ok((new_child, payloads))
}
