//! CREATE_CHILD_SA as initiator, for another child SA with the configured traffic selectors (RFC
//! 7296 1.3.1) or rekeying a child SA (1.3.3, 2.8): the new SA comes up first, then the old one
//! is deleted (make before break). A refused new child leaves the IKE SA as it was (1.3.1,
//! 2.21.3). With PFS configured, the request
//! carries a KE payload and the new keys include g^ir (1.3.2, 2.17); an INVALID_KE_PAYLOAD
//! answer naming another of our groups makes us retry with it (1.3). If the peer rekeyed the same
//! child meanwhile, the exchange with the lowest nonce made the redundant SA, which its initiator
//! deletes instead of the old one (2.8.1).
use crate::crypto::DhKey;
use crate::ikev2::engine::{Ctx, Event, Keep};
use crate::ikev2::error::Failure;
use crate::ikev2::payloads::{error_notify, nonce, requested_group};
use crate::ikev2::proposal::{child_sa_payload, ChildDh};
use crate::ikev2::rekey;
use crate::ikev2::sa::{IkeSa, PendingChild, Request};
use crate::ikev2::tasks::child;
use crate::ikev2::tasks::ike_init_initiator::NONCE_LEN;
use crate::ikev2::tasks::requests::send_queued;
use crate::wire::ikev2::{
    DhGroup, KeyExchange, Notify, NotifyType, Payload, ProtocolId, TrafficSelectors,
};

/// HDR, SK {[N(REKEY_SA),] SA, Ni, [KEi,] TSi, TSr}: with REKEY_SA and the old child's
/// traffic selectors when it `rekeys` our child SA of that inbound SPI (`None` if that child is
/// gone), else with the configured ones. The KE payload is of `ke_group`, or of our first PFS
/// group.
pub fn request(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    rekeys: Option<u32>,
    ke_group: Option<DhGroup>,
) -> Option<Vec<Payload>> {
    let child = &ctx.config.peers[sa.peer].child;
    let (local_ts, remote_ts) = match rekeys {
        Some(old_inbound_spi) => {
            let old = sa
                .children
                .iter()
                .find(|c| c.inbound_spi == old_inbound_spi)?;
            (old.local_ts.clone(), old.remote_ts.clone())
        }
        None => (child.local_ts.clone(), child.remote_ts.clone()),
    };
    let new_inbound_spi = ctx.spis.allocate(ctx.rng, sa.local.ip(), sa.remote.ip());
    let ni = ctx.random(NONCE_LEN);
    let dh = match ke_group.or(child.pfs_groups.first().copied()) {
        Some(group) => Some(DhKey::generate(group, ctx.rng).ok()?),
        None => None,
    };
    let kei = match &dh {
        Some(dh) => Some(Payload::Ke(KeyExchange {
            group: dh.group(),
            data: dh.public_value().ok()?,
        })),
        None => None,
    };
    let rekey_sa = rekeys.map(|old_inbound_spi| {
        Payload::Notify(Notify {
            protocol: ProtocolId::Esp,
            kind: NotifyType::RekeySa,
            spi: old_inbound_spi.to_be_bytes().to_vec(),
            data: Vec::new(),
        })
    });
    let mut payloads: Vec<Payload> = rekey_sa.into_iter().collect();
    payloads.extend([
        Payload::Sa(child_sa_payload(
            &child.suites,
            new_inbound_spi,
            ChildDh::Groups(&child.pfs_groups),
        )),
        Payload::Nonce(ni.clone()),
    ]);
    payloads.extend(kei);
    payloads.extend([
        Payload::TsI(TrafficSelectors {
            selectors: local_ts,
        }),
        Payload::TsR(TrafficSelectors {
            selectors: remote_ts,
        }),
    ]);
    sa.pending_child = Some(PendingChild {
        rekeys,
        new_inbound_spi,
        ni,
        dh,
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
    let config = ctx.config;
    let pfs_groups = &config.peers[sa.peer].child.pfs_groups;
    let result = match nonce(inner) {
        Some(nr) => child::accept(
            ctx,
            sa,
            inner,
            peer,
            pending.new_inbound_spi,
            (&pending.ni, nr),
            ChildDh::Groups(pfs_groups),
            pending.dh.as_ref(),
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
            if let Some(old_inbound_spi) = pending.rekeys {
                let ours_redundant = pending.collision.as_ref().is_some_and(|theirs| {
                    rekey::report_collision(
                        ctx,
                        sa.our_spi,
                        Some(old_inbound_spi),
                        &our_lowest,
                        &theirs.lowest_nonce,
                    )
                });
                // RFC 7296 2.8: the initiator of the rekey deletes the old SA once the new one
                // is up; 2.8.1: unless its new SA is the redundant one, which it deletes instead.
                let delete = if ours_redundant {
                    pending.new_inbound_spi
                } else {
                    old_inbound_spi
                };
                sa.queued.push_front(Request::DeleteChild {
                    inbound_spi: delete,
                });
            }
        }
        // The old child (or the peer's replacement of it) stays in use; the IKE SA is unaffected.
        Err(failure) => {
            ctx.spis.release(pending.new_inbound_spi, sa.local.ip());
            let retry = |ke_group| match pending.rekeys {
                Some(old_inbound_spi) => Request::RekeyChild {
                    old_inbound_spi,
                    ke_group,
                },
                None => Request::NewChild { ke_group },
            };
            if let Some(group) = retry_group(pfs_groups, &pending, inner) {
                sa.queued.push_front(retry(Some(group)));
            } else {
                if failure == Failure::PeerError(NotifyType::TemporaryFailure) {
                    rekey::defer(ctx, sa, retry(None));
                }
                ctx.fail(sa, failure)
            }
        }
    }
    send_queued(ctx, sa);
    Keep::Yes
}

/// RFC 7296 1.3: after INVALID_KE_PAYLOAD, the group to retry with, if it is another of ours.
/// Only the first attempt (with our first group) is retried, so that a peer cannot keep us
/// switching groups.
fn retry_group(
    pfs_groups: &[DhGroup],
    pending: &PendingChild,
    inner: &[Payload],
) -> Option<DhGroup> {
    let sent = pending.dh.as_ref()?.group();
    if pfs_groups.first() != Some(&sent) {
        return None;
    }
    requested_group(inner).filter(|g| *g != sent && pfs_groups.contains(g))
}
