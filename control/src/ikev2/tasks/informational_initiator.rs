//! INFORMATIONAL requests we start: delete the IKE SA, delete a child SA, liveness check
//! (RFC 7296 1.4, 2.4). One request at a time; the rest wait in the SA's queue.
use crate::ikev2::engine::{Ctx, Event, Keep};
use crate::ikev2::sa::{IkeSa, Request};
use crate::wire::ikev2::{Delete, ExchangeType, Payload, ProtocolId};

/// Sends the next queued request if none is outstanding.
pub fn send_queued(ctx: &mut Ctx<'_>, sa: &mut IkeSa) {
    while sa.outstanding.is_none() {
        let Some(request) = sa.queued.pop_front() else {
            return;
        };
        let payloads = match request {
            Request::DeleteIke => vec![Payload::Delete(Delete::Ike)],
            Request::DeleteChild { inbound_spi } => {
                if !sa.children.iter().any(|c| c.inbound_spi == inbound_spi) {
                    continue;
                }
                vec![Payload::Delete(Delete::Child {
                    protocol: ProtocolId::Esp,
                    spis: vec![inbound_spi],
                })]
            }
            Request::Liveness => vec![],
            Request::SaInit | Request::Auth => continue,
        };
        match sa.seal(
            ExchangeType::Informational,
            false,
            sa.next_request_id,
            &payloads,
            ctx.rng,
        ) {
            Ok(datagram) => ctx.send_request(sa, request, datagram),
            Err(_) => return,
        }
    }
}

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
        Request::Liveness | Request::SaInit | Request::Auth => {}
    }
    send_queued(ctx, sa);
    Keep::Yes
}
