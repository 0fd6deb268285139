//! CREATE_CHILD_SA as initiator, rekeying a child SA (RFC 7296 1.3.3, 2.8): the new SA comes up
//! first, then the old one is deleted (make before break). No PFS. If the peer rekeyed the same
//! child meanwhile, the exchange with the lowest nonce made the redundant SA, which its initiator
//! deletes instead of the old one (2.8.1).
use crate::ikev2::engine::{Ctx, Event, Keep};
use crate::ikev2::error::Failure;
use crate::ikev2::payloads::{error_notify, nonce};
use crate::ikev2::proposal::child_sa_payload;
use crate::ikev2::rekey;
use crate::ikev2::sa::{IkeSa, PendingChild, Request};
use crate::ikev2::tasks::child;
use crate::ikev2::tasks::ike_init_initiator::NONCE_LEN;
use crate::ikev2::tasks::requests::send_queued;
use crate::wire::ikev2::{Notify, NotifyType, Payload, ProtocolId, TrafficSelectors};

/// HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr}; `None` if the child is gone.
pub fn rekey_request(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    old_inbound_spi: u32,
) -> Option<Vec<Payload>> {
    let old = sa
        .children
        .iter()
        .find(|c| c.inbound_spi == old_inbound_spi)?;
    let (local_ts, remote_ts) = (old.local_ts.clone(), old.remote_ts.clone());
    let new_inbound_spi = ctx.spis.allocate(ctx.rng, sa.local.ip(), sa.remote.ip());
    let ni = ctx.random(NONCE_LEN);
    let suites = &ctx.config.peers[sa.peer].child.suites;
    let payloads = vec![
        Payload::Notify(Notify {
            protocol: ProtocolId::Esp,
            kind: NotifyType::RekeySa,
            spi: old_inbound_spi.to_be_bytes().to_vec(),
            data: Vec::new(),
        }),
        Payload::Sa(child_sa_payload(suites, new_inbound_spi)),
        Payload::Nonce(ni.clone()),
        Payload::TsI(TrafficSelectors {
            selectors: local_ts,
        }),
        Payload::TsR(TrafficSelectors {
            selectors: remote_ts,
        }),
    ];
    sa.pending_child = Some(PendingChild {
        old_inbound_spi,
        new_inbound_spi,
        ni,
        collision: None,
    });
    Some(payloads)
}

pub fn handle_response(ctx: &mut Ctx<'_>, sa: &mut IkeSa, inner: &[Payload]) -> Keep {
    ctx.request_done(sa);
    let Some(pending) = sa.pending_child.take() else {
        return Keep::Yes;
    };
    let peer = ctx.peer_name(sa);
    let result = match nonce(inner) {
        Some(nr) => child::accept(
            ctx,
            sa,
            inner,
            peer,
            pending.new_inbound_spi,
            (&pending.ni, nr),
        )
        .map(|child| (child, rekey::lowest(&pending.ni, nr))),
        None => Err(error_notify(inner).map_or(Failure::Missing("Nonce"), Failure::PeerError)),
    };
    match result {
        Ok((new_child, our_lowest)) => {
            ctx.stats.child_sas_established += 1;
            sa.children.push(new_child.clone());
            ctx.events
                .push_back(Event::ChildSaEstablished(Box::new(new_child)));
            let ours_redundant = pending.collision.as_ref().is_some_and(|theirs| {
                rekey::report_collision(
                    ctx,
                    sa.our_spi,
                    Some(pending.old_inbound_spi),
                    &our_lowest,
                    &theirs.lowest_nonce,
                )
            });
            // RFC 7296 2.8: the initiator of the rekey deletes the old SA once the new one is
            // up; 2.8.1: unless its new SA is the redundant one, which it deletes instead.
            let delete = if ours_redundant {
                pending.new_inbound_spi
            } else {
                pending.old_inbound_spi
            };
            sa.queued.push_front(Request::DeleteChild {
                inbound_spi: delete,
            });
        }
        // The old child (or the peer's replacement of it) stays in use; the IKE SA is unaffected.
        Err(failure) => {
            ctx.spis.release(pending.new_inbound_spi, sa.local.ip());
            if failure == Failure::PeerError(NotifyType::TemporaryFailure) {
                rekey::defer(
                    ctx,
                    sa,
                    Request::RekeyChild {
                        old_inbound_spi: pending.old_inbound_spi,
                    },
                );
            }
            ctx.fail(sa, failure)
        }
    }
    send_queued(ctx, sa);
    Keep::Yes
}
