//! The requests this end starts, one at a time (RFC 7296 2.3: a window of one): the rest wait in
//! the SA's queue.
use crate::ikev2::engine::Ctx;
use crate::ikev2::sa::{IkeSa, Request};
use crate::ikev2::tasks::create_child_initiator;
use crate::wire::ikev2::{Delete, ExchangeType, Payload, ProtocolId};

/// Sends the next queued request if none is outstanding.
pub fn send_queued(ctx: &mut Ctx<'_>, sa: &mut IkeSa) {
    while sa.outstanding.is_none() {
        let Some(request) = sa.queued.pop_front() else {
            return;
        };
        let has_child = |spi: u32| sa.children.iter().any(|c| c.inbound_spi == spi);
        let (exchange, payloads) = match request {
            Request::DeleteIke => (
                ExchangeType::Informational,
                vec![Payload::Delete(Delete::Ike)],
            ),
            Request::DeleteChild { inbound_spi } if has_child(inbound_spi) => (
                ExchangeType::Informational,
                vec![Payload::Delete(Delete::Child {
                    protocol: ProtocolId::Esp,
                    spis: vec![inbound_spi],
                })],
            ),
            Request::Liveness => (ExchangeType::Informational, vec![]),
            Request::RekeyChild { old_inbound_spi } => {
                match create_child_initiator::rekey_request(ctx, sa, old_inbound_spi) {
                    Some(payloads) => (ExchangeType::CreateChildSa, payloads),
                    None => continue,
                }
            }
            Request::DeleteChild { .. } | Request::SaInit | Request::Auth => continue,
        };
        match sa.seal(exchange, false, sa.next_request_id, &payloads, ctx.rng) {
            Ok(datagram) => ctx.send_request(sa, request, datagram),
            Err(_) => return,
        }
    }
}
