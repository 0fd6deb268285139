//! Answers to the INFORMATIONAL requests we start: delete the IKE SA, delete a child SA,
//! liveness check (RFC 7296 1.4, 2.4).
use crate::ikev2::engine::{Ctx, Event, Keep};
use crate::ikev2::sa::{IkeSa, Request};
use crate::ikev2::tasks::requests::send_queued;
use crate::wire::ikev2::Payload;

pub fn handle_response(ctx: &mut Ctx<'_>, sa: &mut IkeSa, _inner: &[Payload]) -> Keep {
    let Some(request) = sa.outstanding.as_ref().map(|o| o.request) else {
        return Keep::Yes;
    };
    ctx.request_done(sa);
    match request {
        Request::DeleteIke => {
            ctx.deleted(sa);
            return Keep::Remove;
        }
        Request::DeleteChild { inbound_spi } => {
            // RFC 7296 1.4.1: the SA pair is gone once the peer answered.
            if let Some(index) = sa
                .children
                .iter()
                .position(|c| c.inbound_spi == inbound_spi)
            {
                let child = sa.children.remove(index);
                ctx.events.push_back(Event::ChildSaDeleted {
                    ike_spi: sa.our_spi,
                    inbound_spi: child.inbound_spi,
                    outbound_spi: child.outbound_spi,
                });
            }
        }
        Request::Liveness => ctx.stats.liveness_answered_by_peer += 1,
        Request::InvalidSpi { .. } => ctx.stats.invalid_spi_sent += 1,
        Request::SaInit
        | Request::Auth
        | Request::RekeyChild { .. }
        | Request::NewChild { .. }
        | Request::RekeyIke => {}
    }
    send_queued(ctx, sa);
    Keep::Yes
}
