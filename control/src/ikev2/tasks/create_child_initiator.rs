//! CREATE_CHILD_SA as initiator, rekeying a child SA (RFC 7296 1.3.3, 2.8): the new SA comes up
//! first, then the old one is deleted (make before break). No PFS.
use crate::ikev2::engine::{Ctx, Event, Keep};
use crate::ikev2::payloads::nonce;
use crate::ikev2::proposal::child_sa_payload;
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
        ),
        None => Err(crate::ikev2::error::Failure::Missing("Nonce")),
    };
    match result {
        Ok(new_child) => {
            ctx.stats.child_sas_established += 1;
            sa.children.push(new_child.clone());
            ctx.events
                .push_back(Event::ChildSaEstablished(Box::new(new_child)));
            // RFC 7296 2.8: the initiator of the rekey deletes the old SA once the new one is up.
            sa.queued.push_front(Request::DeleteChild {
                inbound_spi: pending.old_inbound_spi,
            });
        }
        // The old child stays in use; the IKE SA is unaffected.
        Err(failure) => ctx.fail(sa, failure),
    }
    send_queued(ctx, sa);
    Keep::Yes
}
