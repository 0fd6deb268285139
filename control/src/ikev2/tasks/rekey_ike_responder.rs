//! CREATE_CHILD_SA as responder, replacing the IKE SA (RFC 7296 1.3.2, 2.18). The old SA waits
//! for the initiator's delete. If our own rekey of it is in flight, the outcome waits for our
//! answer (2.8.2); an SA already replaced or being deleted refuses with TEMPORARY_FAILURE (2.25.2).
use crate::crypto::DhKey;
use crate::ikev2::engine::{Ctx, Keep};
use crate::ikev2::error::Failure;
use crate::ikev2::payloads::{ke, nonce, sa_payload};
use crate::ikev2::proposal::{ike_answer, select_ike};
use crate::ikev2::rekey::{self, Answered, NewIkeSa};
use crate::ikev2::sa::{IkeSa, Request};
use crate::ikev2::tasks::create_child_responder;
use crate::ikev2::tasks::ike_init_initiator::NONCE_LEN;
use crate::wire::ikev2::{KeyExchange, Payload};
use std::collections::HashMap;

pub fn handle_request(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    message_id: u32,
    inner: &[Payload],
    sas: &mut HashMap<u64, IkeSa>,
) -> Keep {
    let outcome = negotiate(ctx, sa, inner).map(|(mut new, payloads)| {
        if sa.rekey.pending.is_some() {
            sa.rekey.collision = Some(Answered {
                new_spi: new.our_spi,
                lowest_nonce: rekey::lowest(&new.ni, &new.nr),
            });
        } else {
            sa.rekey.successor = Some(new.our_spi);
            rekey::hand_over(ctx, sa, &mut new);
        }
        sas.insert(new.our_spi, new);
        payloads
    });
    create_child_responder::respond(ctx, sa, message_id, outcome);
    Keep::Yes
}

fn negotiate(
    ctx: &mut Ctx<'_>,
    sa: &IkeSa,
    inner: &[Payload],
) -> Result<(IkeSa, Vec<Payload>), Failure> {
    // 2.25.2: not while the SA is being deleted; and, like strongSwan, not while a request of
    // ours other than our own rekey of it is in flight, whose answer the old SA must still
    // receive.
    let other_request = matches!(&sa.outstanding, Some(o) if o.request != Request::RekeyIke);
    if sa.rekey.successor.is_some() || other_request || sa.queued.contains(&Request::DeleteIke) {
        return Err(Failure::Busy);
    }
    let proposed = sa_payload(inner).ok_or(Failure::Missing("SA"))?;
    let (number, algorithms) = select_ike(proposed, &ctx.config.peers[sa.peer].ike_proposals)?;
    let spi_i: [u8; 8] = proposed
        .proposals
        .iter()
        .find(|p| p.number == number)
        .and_then(|p| p.spi.as_slice().try_into().ok())
        .ok_or(Failure::NoProposalChosen)?;
    let their_ke = ke(inner).ok_or(Failure::Missing("KE"))?;
    if their_ke.group != algorithms.group {
        return Err(Failure::InvalidKe(algorithms.group.into()));
    }
    let ni = nonce(inner).ok_or(Failure::Missing("Nonce"))?;
    let dh = DhKey::generate(algorithms.group, ctx.rng)?;
    let g_ir = dh.shared_secret(&their_ke.data)?;
    let nr = ctx.random(NONCE_LEN);
    let spi_r = ctx.random_spi();
    let new = rekey::successor(
        ctx,
        sa,
        NewIkeSa {
            initiator: false,
            algorithms,
            spi_i: u64::from_be_bytes(spi_i),
            spi_r,
            ni,
            nr: &nr,
            g_ir: &g_ir,
        },
    )?;
    let payloads = vec![
        Payload::Sa(ike_answer(number, &algorithms, &spi_r.to_be_bytes())),
        Payload::Nonce(nr),
        Payload::Ke(KeyExchange {
            group: algorithms.group,
            data: dh.public_value()?,
        }),
    ];
    Ok((new, payloads))
}
